// Byte-level BPE encoding (see bpe.h). O(n^2) per pre-token of n bytes, as
// tiktoken's byte_pair_merge: pre-tokens are short.
#include "bpe.h"

#include <cstring>
#include <limits>

namespace tp::text {
namespace {

uint64_t hash_bytes(const uint8_t* p, int64_t n) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (int64_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h ^ (h >> 29);
}

uint64_t hash_pair(int32_t a, int32_t b) {
  uint64_t h = (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

uint64_t table_slots(int64_t entries) {
  uint64_t s = 16;
  while (s < static_cast<uint64_t>(entries) * 2) s *= 2;
  return s;
}

constexpr int64_t kNone = std::numeric_limits<int64_t>::max();

}  // namespace

void ByteHash::build(const uint8_t* blob, const int64_t* offsets, const uint8_t* ordinary, int32_t size) {
  blob_ = blob;
  offsets_ = offsets;
  slots_.assign(table_slots(size), -1);
  mask_ = slots_.size() - 1;
  for (int32_t id = 0; id < size; id++) {
    const int64_t len = offsets[id + 1] - offsets[id];
    if (!ordinary[id] || len == 0) continue;
    const uint8_t* p = blob + offsets[id];
    uint64_t s = hash_bytes(p, len) & mask_;
    for (;;) {
      const int32_t other = slots_[s];
      if (other < 0) {
        slots_[s] = id;
        break;
      }
      // a duplicate byte string keeps the lowest id (the first inserted)
      if (offsets[other + 1] - offsets[other] == len && std::memcmp(blob + offsets[other], p, static_cast<size_t>(len)) == 0) break;
      s = (s + 1) & mask_;
    }
  }
}

int32_t ByteHash::find(const uint8_t* p, int64_t n) const {
  if (slots_.empty() || n <= 0) return -1;
  uint64_t s = hash_bytes(p, n) & mask_;
  for (;;) {
    const int32_t id = slots_[s];
    if (id < 0) return -1;
    if (offsets_[id + 1] - offsets_[id] == n && std::memcmp(blob_ + offsets_[id], p, static_cast<size_t>(n)) == 0) return id;
    s = (s + 1) & mask_;
  }
}

void PairHash::reserve(int64_t pairs) {
  slots_.assign(table_slots(pairs), Slot{});
  mask_ = slots_.size() - 1;
  count_ = 0;
}

void PairHash::set(int32_t left, int32_t right, int32_t rank, int32_t merged) {
  uint64_t s = hash_pair(left, right) & mask_;
  while (slots_[s].left >= 0 && !(slots_[s].left == left && slots_[s].right == right)) s = (s + 1) & mask_;
  if (slots_[s].left < 0) count_++;
  slots_[s] = Slot{left, right, rank, merged};
}

bool PairHash::find(int32_t left, int32_t right, int32_t* rank, int32_t* merged) const {
  if (slots_.empty()) return false;
  uint64_t s = hash_pair(left, right) & mask_;
  for (;;) {
    const Slot& e = slots_[s];
    if (e.left < 0) return false;
    if (e.left == left && e.right == right) {
      *rank = e.rank;
      *merged = e.merged;
      return true;
    }
    s = (s + 1) & mask_;
  }
}

Status bpe_build(const uint8_t* blob, int64_t blob_len, const int32_t* offsets, const uint8_t* ordinary, int32_t size,
                 const int32_t* merges, int64_t n_merges, bool ignore_merges, BpeVocab* out) {
  if (size < 256) return Status::invalid("bpe: a byte-level vocabulary has at least 256 tokens, received " + num(size));
  if (offsets[0] != 0 || offsets[size] != blob_len) return Status::invalid("bpe: offsets must start at 0 and end at the blob length");
  for (int32_t id = 0; id < size; id++) {
    if (offsets[id + 1] < offsets[id]) return Status::invalid("bpe: offsets must be non-decreasing (id " + num(id) + ")");
  }
  BpeVocab& v = *out;
  v.size = size;
  v.blob.assign(blob, blob + blob_len);
  v.offsets.assign(offsets, offsets + size + 1);
  v.ordinary.assign(ordinary, ordinary + size);
  v.ids.build(v.blob.data(), v.offsets.data(), v.ordinary.data(), size);
  for (int b = 0; b < 256; b++) {
    const uint8_t byte = static_cast<uint8_t>(b);
    v.byte_ids[b] = v.ids.find(&byte, 1);
    if (v.byte_ids[b] < 0) return Status::invalid("bpe: byte " + num(b) + " is not a token (not a byte-level vocabulary)");
  }
  v.by_pairs = merges != nullptr;
  v.ignore_merges = v.by_pairs ? ignore_merges : true;
  if (v.by_pairs) {
    v.pairs.reserve(n_merges);
    std::vector<uint8_t> joined;
    for (int64_t r = 0; r < n_merges; r++) {
      const int32_t a = merges[2 * r], b = merges[2 * r + 1];
      if (a < 0 || a >= size || b < 0 || b >= size || !v.ordinary[a] || !v.ordinary[b]) {
        return Status::invalid("bpe: merge " + num(r) + " names an id that is not an ordinary token");
      }
      joined.assign(v.blob.begin() + v.offsets[a], v.blob.begin() + v.offsets[a + 1]);
      joined.insert(joined.end(), v.blob.begin() + v.offsets[b], v.blob.begin() + v.offsets[b + 1]);
      const int32_t m = v.ids.find(joined.data(), static_cast<int64_t>(joined.size()));
      if (m < 0) return Status::invalid("bpe: merge " + num(r) + " gives a byte string that is not a token");
      v.pairs.set(a, b, static_cast<int32_t>(r), m);
    }
  }
  return Status::ok();
}

namespace {

// tiktoken's byte_pair_merge: bounds of parts, rank of joining part k with k + 1.
void merge_by_ranks(const BpeVocab& v, const uint8_t* p, int64_t n, BpeScratch* sc, std::vector<int32_t>* out) {
  std::vector<int64_t>& bounds = sc->bounds;
  std::vector<int64_t>& ranks = sc->ranks;
  bounds.resize(static_cast<size_t>(n + 1));
  for (int64_t i = 0; i <= n; i++) bounds[i] = i;
  auto rank_at = [&](size_t k) -> int64_t {
    if (k + 2 >= bounds.size()) return kNone;
    const int32_t id = v.ids.find(p + bounds[k], bounds[k + 2] - bounds[k]);
    return id < 0 ? kNone : id;
  };
  ranks.resize(static_cast<size_t>(n));
  for (size_t k = 0; k < ranks.size(); k++) ranks[k] = rank_at(k);
  for (;;) {
    int64_t best = kNone;
    size_t at = 0;
    for (size_t k = 0; k < ranks.size(); k++) {
      if (ranks[k] < best) {
        best = ranks[k];
        at = k;
      }
    }
    if (best == kNone) break;
    bounds.erase(bounds.begin() + static_cast<std::ptrdiff_t>(at + 1));
    ranks.erase(ranks.begin() + static_cast<std::ptrdiff_t>(at + 1));
    ranks[at] = rank_at(at);
    if (at > 0) ranks[at - 1] = rank_at(at - 1);
  }
  for (size_t k = 0; k + 1 < bounds.size(); k++) out->push_back(v.ids.find(p + bounds[k], bounds[k + 1] - bounds[k]));
}

// HF merge_all: symbol ids, apply the lowest-index listed merge, leftmost on ties.
void merge_by_pairs(const BpeVocab& v, const uint8_t* p, int64_t n, BpeScratch* sc, std::vector<int32_t>* out) {
  std::vector<int32_t>& parts = sc->parts;
  parts.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) parts[i] = v.byte_ids[p[i]];
  for (;;) {
    int32_t best = std::numeric_limits<int32_t>::max();
    int32_t best_id = -1;
    size_t at = 0;
    for (size_t k = 0; k + 1 < parts.size(); k++) {
      int32_t r, m;
      if (v.pairs.find(parts[k], parts[k + 1], &r, &m) && r < best) {
        best = r;
        best_id = m;
        at = k;
      }
    }
    if (best_id < 0) break;
    parts[at] = best_id;
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at + 1));
  }
  out->insert(out->end(), parts.begin(), parts.end());
}

}  // namespace

Status bpe_encode_piece(const BpeVocab& v, const uint8_t* p, int64_t n, BpeScratch* scratch, std::vector<int32_t>* out) {
  if (n <= 0) return Status::ok();
  if (v.ignore_merges) {
    const int32_t whole = v.ids.find(p, n);
    if (whole >= 0) {
      out->push_back(whole);
      return Status::ok();
    }
  }
  if (v.by_pairs) merge_by_pairs(v, p, n, scratch, out);
  else merge_by_ranks(v, p, n, scratch, out);
  return Status::ok();
}

Status bpe_encode_pieces(const BpeVocab& v, const uint8_t* bytes, int64_t n, const int32_t* starts, int64_t n_starts,
                         std::vector<int32_t>* out) {
  if (n == 0) return n_starts == 0 ? Status::ok() : Status::invalid("starts: expected none for empty bytes");
  if (n_starts < 1 || starts[0] != 0) return Status::invalid("starts: expected ascending offsets starting with 0");
  for (int64_t k = 1; k < n_starts; k++) {
    if (starts[k] <= starts[k - 1] || starts[k] >= n) return Status::invalid("starts: expected strictly ascending offsets below the byte length");
  }
  BpeScratch scratch;
  out->reserve(out->size() + static_cast<size_t>(n / 3 + 1));
  for (int64_t k = 0; k < n_starts; k++) {
    const int64_t a = starts[k];
    const int64_t b = k + 1 < n_starts ? starts[k + 1] : n;
    Status s = bpe_encode_piece(v, bytes + a, b - a, &scratch, out);
    if (!s.is_ok()) return s;
  }
  return Status::ok();
}

}  // namespace tp::text
