// The KnModel file format, version 1. Little-endian throughout.
//
//   header   "TPKN" | u16 version | u16 maxOrder | u64 trainedBytes
//            | u64 payloadBytes | u64 hash (FNV-1a 64 of every byte of the
//              file but these 8, so any single changed byte is caught)
//            | per order k = 0..maxOrder: u32 nContexts, u32 nEntries,
//              u32 dRaw[3], u32 dCont[3] (16.16 fixed point)
//   payload  per order k, per context in (parent, x) order:
//              k >= 1: varint (parent - previous parent), u8 x
//              varint nEntries, then per entry: u8 sym, varint raw,
//              and varint cont when k < maxOrder
//
// Every size in the header is checked against the file length before
// anything is allocated; the hash, the sort orders, the parents and
// the counts are checked while parsing. Varints are LEB128, minimal, <= 32 bits.
#include <cstring>
#include <string>

#include "kn_model.h"

namespace tp::coding {
namespace {

constexpr char kMagic[4] = {'T', 'P', 'K', 'N'};
constexpr size_t kFixedHeader = 32;
constexpr size_t kOrderHeader = 32;

size_t header_size(int max_order) { return kFixedHeader + kOrderHeader * static_cast<size_t>(max_order + 1); }


void put_varint(std::vector<uint8_t>* o, uint64_t v) {
  while (v >= 0x80) {
    o->push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  o->push_back(static_cast<uint8_t>(v));
}

void put_u16(std::vector<uint8_t>* o, uint16_t v) {
  for (int i = 0; i < 2; ++i) o->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u32(std::vector<uint8_t>* o, uint32_t v) {
  for (int i = 0; i < 4; ++i) o->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>* o, uint64_t v) {
  for (int i = 0; i < 8; ++i) o->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Bounds-checked payload reader; the first error sticks.
struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  std::string err;
  bool ok() const { return err.empty(); }
  void fail(const std::string& m) {
    if (err.empty()) err = m;
  }
  uint8_t byte() {
    if (p >= end) {
      fail("the payload ends early");
      return 0;
    }
    return *p++;
  }
  uint32_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (p >= end) {
        fail("the payload ends early");
        return 0;
      }
      const uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        if (b == 0 && shift > 0) fail("a varint is not minimal");
        if (v > 0xffffffffull) fail("a varint exceeds 32 bits");
        return static_cast<uint32_t>(v);
      }
    }
    fail("a varint is longer than 5 bytes");
    return 0;
  }
};

// FNV-1a 64 of data[0..n) without bytes [24, 32) (the hash field).
uint64_t file_hash(const uint8_t* data, size_t n);

}  // namespace

namespace {
uint64_t file_hash(const uint8_t* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    if (i == 24) i = 32;
    if (i >= n) break;
    h = (h ^ data[i]) * 0x100000001b3ull;
  }
  return h;
}
}  // namespace

size_t kn_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

uint64_t kn_serialized_size(const KnTables& t) {
  uint64_t size = header_size(t.max_order);
  for (int k = 0; k <= t.max_order; ++k) {
    const KnOrderTable& o = t.orders[k];
    const bool has_cont = k < t.max_order;
    uint32_t prev_parent = 0;
    for (size_t c = 0; c < o.contexts(); ++c) {
      if (k >= 1) {
        size += kn_varint_size(o.parent[c] - prev_parent) + 1;
        prev_parent = o.parent[c];
      }
      size += kn_varint_size(o.entry_begin[c + 1] - o.entry_begin[c]);
    }
    for (size_t e = 0; e < o.entries(); ++e) {
      size += 1 + kn_varint_size(o.raw[e]);
      if (has_cont) size += kn_varint_size(o.cont[e]);
    }
  }
  return size;
}

Status kn_serialize(const KnTables& t, std::vector<uint8_t>* out) {
  if (t.max_order < 1 || t.max_order > kKnMaxOrderLimit || t.orders.size() != static_cast<size_t>(t.max_order + 1)) {
    return Status::invalid("kn_serialize: bad max order");
  }
  std::vector<uint8_t> payload;
  payload.reserve(kn_serialized_size(t));
  for (int k = 0; k <= t.max_order; ++k) {
    const KnOrderTable& o = t.orders[k];
    const bool has_cont = k < t.max_order;
    uint32_t prev_parent = 0;
    for (size_t c = 0; c < o.contexts(); ++c) {
      if (k >= 1) {
        put_varint(&payload, o.parent[c] - prev_parent);
        payload.push_back(o.x[c]);
        prev_parent = o.parent[c];
      }
      put_varint(&payload, o.entry_begin[c + 1] - o.entry_begin[c]);
      for (uint32_t e = o.entry_begin[c]; e < o.entry_begin[c + 1]; ++e) {
        payload.push_back(o.sym[e]);
        put_varint(&payload, o.raw[e]);
        if (has_cont) put_varint(&payload, o.cont[e]);
      }
    }
  }
  out->clear();
  out->reserve(header_size(t.max_order) + payload.size());
  out->insert(out->end(), kMagic, kMagic + 4);
  put_u16(out, static_cast<uint16_t>(kKnFileVersion));
  put_u16(out, static_cast<uint16_t>(t.max_order));
  put_u64(out, t.trained_bytes);
  put_u64(out, payload.size());
  put_u64(out, 0);  // the hash, filled in below
  for (int k = 0; k <= t.max_order; ++k) {
    const KnOrderTable& o = t.orders[k];
    put_u32(out, static_cast<uint32_t>(o.contexts()));
    put_u32(out, static_cast<uint32_t>(o.entries()));
    for (int r = 0; r < 3; ++r) put_u32(out, o.d_raw[r]);
    for (int r = 0; r < 3; ++r) put_u32(out, o.d_cont[r]);
  }
  out->insert(out->end(), payload.begin(), payload.end());
  const uint64_t h = file_hash(out->data(), out->size());
  for (int i = 0; i < 8; ++i) (*out)[24 + i] = static_cast<uint8_t>(h >> (8 * i));
  return Status::ok();
}

Status kn_parse(const uint8_t* data, size_t n, KnTables* out, uint64_t* hash) {
  auto bad = [](const std::string& what) { return Status::invalid("not a valid tokenpress byte model: " + what); };
  if (n < kFixedHeader) return bad("the file is " + std::to_string(n) + " bytes, shorter than the 32-byte header");
  if (std::memcmp(data, kMagic, 4) != 0) return bad("the magic is not \"TPKN\"");
  const uint32_t version = static_cast<uint32_t>(get_le(data + 4, 2));
  if (version != kKnFileVersion) {
    return bad("format version " + std::to_string(version) + " (this build reads version " + std::to_string(kKnFileVersion) + ")");
  }
  const int max_order = static_cast<int>(get_le(data + 6, 2));
  if (max_order < 1 || max_order > kKnMaxOrderLimit) {
    return bad("max order " + std::to_string(max_order) + " is outside [1, " + std::to_string(kKnMaxOrderLimit) + "]");
  }
  const size_t hsize = header_size(max_order);
  if (n < hsize) return bad("the file is " + std::to_string(n) + " bytes, shorter than its " + std::to_string(hsize) + "-byte header");
  const uint64_t trained = get_le(data + 8, 8);
  const uint64_t payload_bytes = get_le(data + 16, 8);
  const uint64_t stored_hash = get_le(data + 24, 8);
  if (payload_bytes != n - hsize) {
    return bad("the header says " + std::to_string(payload_bytes) + " payload bytes, the file has " + std::to_string(n - hsize));
  }
  // Sizes first: every context takes >= 1 byte (>= 3 above order 0) and
  // every entry >= 2, so the counts are bounded by the payload length.
  uint64_t min_bytes = 0;
  uint32_t n_ctx[kKnMaxOrderLimit + 1], n_ent[kKnMaxOrderLimit + 1];
  for (int k = 0; k <= max_order; ++k) {
    const uint8_t* h = data + kFixedHeader + kOrderHeader * k;
    n_ctx[k] = static_cast<uint32_t>(get_le(h, 4));
    n_ent[k] = static_cast<uint32_t>(get_le(h + 4, 4));
    for (int r = 0; r < 6; ++r) {
      const uint64_t d = get_le(h + 8 + 4 * r, 4);
      if (d > static_cast<uint64_t>(r % 3 + 1) << 16) return bad("order " + std::to_string(k) + " has a discount above its count");
    }
    min_bytes += static_cast<uint64_t>(n_ctx[k]) * (k == 0 ? 1 : 3) + static_cast<uint64_t>(n_ent[k]) * 2;
  }
  if (n_ctx[0] != 1) return bad("order 0 must have exactly one context, the header says " + std::to_string(n_ctx[0]));
  if (min_bytes > payload_bytes) return bad("the header's context and entry counts need more bytes than the payload has");
  const uint8_t* payload = data + hsize;
  if (file_hash(data, n) != stored_hash) return bad("the hash does not match (the file is corrupt or was changed)");

  KnTables t;
  t.max_order = max_order;
  t.trained_bytes = trained;
  t.orders.resize(max_order + 1);
  Reader r{payload, payload + payload_bytes, {}};
  for (int k = 0; k <= max_order && r.ok(); ++k) {
    KnOrderTable& o = t.orders[k];
    const bool has_cont = k < max_order;
    const std::string where = "order " + std::to_string(k) + ": ";
    for (int q = 0; q < 3; ++q) {
      const uint8_t* h = data + kFixedHeader + kOrderHeader * k;
      o.d_raw[q] = static_cast<uint32_t>(get_le(h + 8 + 4 * q, 4));
      o.d_cont[q] = static_cast<uint32_t>(get_le(h + 20 + 4 * q, 4));
    }
    o.parent.resize(n_ctx[k]);
    o.x.resize(n_ctx[k]);
    o.entry_begin.resize(static_cast<size_t>(n_ctx[k]) + 1);
    o.sym.resize(n_ent[k]);
    o.raw.resize(n_ent[k]);
    if (has_cont) o.cont.resize(n_ent[k]);
    uint32_t parent = 0, e = 0;
    for (uint32_t c = 0; c < n_ctx[k] && r.ok(); ++c) {
      uint8_t x = 0;
      if (k >= 1) {
        const uint32_t delta = r.varint();
        x = r.byte();
        if (delta > n_ctx[k - 1] - parent) return bad(where + "a parent index is out of range");
        parent += delta;
        if (parent >= n_ctx[k - 1]) return bad(where + "a parent index is out of range");
        if (c > 0 && delta == 0 && x <= o.x[c - 1]) return bad(where + "contexts are not sorted");
      }
      o.parent[c] = parent;
      o.x[c] = x;
      o.entry_begin[c] = e;
      const uint32_t count = r.varint();
      if (count > kAlphabet || (k >= 1 && count == 0)) return bad(where + "a context has " + std::to_string(count) + " entries");
      if (count > n_ent[k] - e) return bad(where + "more entries than the header says");
      for (uint32_t j = 0; j < count && r.ok(); ++j, ++e) {
        o.sym[e] = r.byte();
        o.raw[e] = r.varint();
        if (has_cont) o.cont[e] = r.varint();
        if (j > 0 && o.sym[e] <= o.sym[e - 1]) return bad(where + "entries are not sorted");
        if (o.raw[e] == 0) return bad(where + "an entry has a zero count");
        if (has_cont && o.cont[e] > o.raw[e]) return bad(where + "a continuation count exceeds its raw count");
      }
    }
    if (!r.ok()) break;
    if (e != n_ent[k]) return bad(where + "fewer entries than the header says");
    o.entry_begin[n_ctx[k]] = e;
  }
  if (!r.ok()) return bad(r.err);
  if (r.p != r.end) return bad("bytes left after the last order");
  // Counts of one context must sum below 2^32 (the query tables use 32-bit totals... in 64 bits, but keep files sane).
  for (int k = 0; k <= max_order; ++k) {
    const KnOrderTable& o = t.orders[k];
    for (size_t c = 0; c < o.contexts(); ++c) {
      uint64_t sum = 0;
      for (uint32_t e = o.entry_begin[c]; e < o.entry_begin[c + 1]; ++e) sum += o.raw[e];
      if (sum > 0xffffffffull) return bad("order " + std::to_string(k) + ": a context's counts sum above 2^32");
    }
  }
  *out = std::move(t);
  *hash = stored_hash;
  return Status::ok();
}

}  // namespace tp::coding
