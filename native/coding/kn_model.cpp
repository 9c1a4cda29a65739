// KnModel queries: the interpolated Kneser-Ney recursion unrolled into a sum.
//
// With W_top = 1 and W_{k-1} = W_k gamma_k, the recursion in kn_model.h is
//   P(b) = sum_k W_k max(n_k(b) - D, 0) / n_k + W_{-1} / 256,
// so a query walks the context down the orders once for the weights, writes
// the dense order-0 (+ uniform) row scaled by W_0, then adds the few entries
// of each longer context. Per-entry terms e = floor(2^31 (n - D) / n(c)) and
// gamma = floor(2^31 G / n(c)) are precomputed at load time (entries keep 24
// bits: e >> 7), so a query does
// only 64-bit multiplies and shifts. Probability 1 is 2^30 in the output and
// every byte gets +1, so the masses sum to at most 2^30 + 256 < 2^31.
#include <algorithm>
#include <cstring>

#include "kn_model.h"

namespace tp::coding {
namespace {

constexpr uint64_t kOne31 = 1ull << 31;

// floor(a * 2^31 / b) for a < 2^50, b >= 1, exact.
uint64_t scaled_div(uint64_t a, uint64_t b) {
#if defined(__SIZEOF_INT128__)
  return static_cast<uint64_t>((static_cast<unsigned __int128>(a) << 31) / b);
#else
  uint64_t q = a / b, rem = a % b;
  for (int i = 0; i < 31; ++i) {  // long division, one bit at a time (load time only)
    q <<= 1;
    rem <<= 1;
    if (rem >= b) {
      rem -= b;
      q |= 1;
    }
  }
  return q;
#endif
}

// Discounted entries of one context: e[i] for each entry and gamma, 2^31 = 1.
// counts holds n(c b) for the context's entries; d is D1, D2, D3+ in 16.16.
// A context whose counts are all zero (continuation counts of n-grams seen
// only at the start of the text) passes all its weight down: gamma = 1.
uint32_t discount_row(const uint32_t* counts, uint32_t n, const uint32_t d[3], uint32_t* e) {
  uint64_t total = 0, g = 0;
  for (uint32_t i = 0; i < n; ++i) total += counts[i];
  if (total == 0) {
    for (uint32_t i = 0; i < n; ++i) e[i] = 0;
    return static_cast<uint32_t>(kOne31);
  }
  const uint64_t total16 = total << 16;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t c = counts[i];
    if (c == 0) {
      e[i] = 0;
      continue;
    }
    const uint64_t disc = d[std::min<uint32_t>(c, 3) - 1];
    const uint64_t c16 = static_cast<uint64_t>(c) << 16;
    e[i] = static_cast<uint32_t>(scaled_div(c16 - std::min(disc, c16), total16));
    g += disc;
  }
  return static_cast<uint32_t>(std::min<uint64_t>(scaled_div(g, total16), kOne31));
}

}  // namespace

Status KnModel::from_bytes(const uint8_t* data, size_t n, std::unique_ptr<KnModel>* out) {
  KnTables t;
  Status s = kn_parse(data, n, &t);
  if (!s.is_ok()) return s;
  std::unique_ptr<KnModel> m(new KnModel());
  m->bytes_.assign(data, data + n);
  m->identity_ = kn_hash64(data, n);
  m->build(t);
  *out = std::move(m);
  return Status::ok();
}

namespace {
inline uint64_t fmix64(uint64_t h) {  // MurmurHash3's finalizer
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}
constexpr uint64_t kHashSeed = 0x243f6a8885a308d3ull;
inline uint64_t hash_step(uint64_t a, uint8_t byte, int k) { return (a ^ byte) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(k); }
}  // namespace

// Hash of the last k bytes of ctx[0..len), most recent byte first.
uint64_t KnModel::context_hash(const uint8_t* ctx, int len, int k) {
  uint64_t a = kHashSeed;
  for (int j = 1; j <= k; ++j) a = hash_step(a, ctx[len - j], j);
  return fmix64(a);
}

uint32_t KnModel::find(const uint8_t* ctx, int len, int k, uint64_t hash) const {
  const uint64_t mask = (uint64_t{1} << slot_bits_) - 1;
  const uint32_t fp = static_cast<uint32_t>(hash >> 32);
  for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t v = slots_[i];
    if (v == 0) return 0;
    if (static_cast<uint32_t>(v >> 32) != fp) continue;
    const uint32_t off = static_cast<uint32_t>(v);
    if ((blob_[off] & 0xff) != static_cast<uint32_t>(k)) continue;
    const uint8_t* key = reinterpret_cast<const uint8_t*>(&blob_[off + 3]);
    if (std::memcmp(key, ctx + len - k, k) == 0) return off;
  }
}

void KnModel::build(const KnTables& t) {
  max_order_ = t.max_order;
  info_.max_order = t.max_order;
  info_.bytes = bytes_.size();
  info_.identity = identity_;
  info_.trained_bytes = t.trained_bytes;
  size_t n_ctx = 0, words = 1;
  for (size_t k = 0; k < t.orders.size(); ++k) {
    const KnOrderTable& o = t.orders[k];
    info_.contexts.push_back(o.contexts());
    info_.entries.push_back(o.entries());
    if (k == 0) continue;
    n_ctx += o.contexts();
    words += o.contexts() * (3 + (k + 3) / 4) + o.entries() * (k + 1 < t.orders.size() ? 2 : 1);
  }
  blob_.assign(1, 0);
  blob_.reserve(words);
  slot_bits_ = 4;
  while ((uint64_t{1} << slot_bits_) < 2 * n_ctx + 16) ++slot_bits_;
  slots_.assign(uint64_t{1} << slot_bits_, 0);
  const uint64_t mask = (uint64_t{1} << slot_bits_) - 1;

  std::vector<uint32_t> row(kAlphabet);
  std::vector<uint8_t> prev_keys, keys;  // the context bytes of every context of order k - 1 and k
  for (size_t k = 0; k < t.orders.size(); ++k) {
    const KnOrderTable& o = t.orders[k];
    const bool has_cont = k + 1 < t.orders.size();
    keys.assign(o.contexts() * k, 0);
    for (size_t c = 0; c < o.contexts(); ++c) {
      const uint32_t b = o.entry_begin[c], n = o.entry_begin[c + 1] - b;
      if (k == 0) {
        // Order 0, dense, with the uniform order -1 folded in: e(b) + gamma / 256.
        uint32_t g = discount_row(&o.raw[b], n, o.d_raw, row.data());
        for (int s = 0; s < kAlphabet; ++s) root_raw_[s] = g >> 8;
        for (uint32_t i = 0; i < n; ++i) root_raw_[o.sym[b + i]] += row[i];
        g = has_cont ? discount_row(&o.cont[b], n, o.d_cont, row.data()) : static_cast<uint32_t>(kOne31);
        for (int s = 0; s < kAlphabet; ++s) root_cont_[s] = g >> 8;
        for (uint32_t i = 0; has_cont && i < n; ++i) root_cont_[o.sym[b + i]] += row[i];
        continue;
      }
      uint8_t* key = &keys[c * k];  // oldest byte first: x, then the parent's bytes
      key[0] = o.x[c];
      std::memcpy(key + 1, &prev_keys[static_cast<size_t>(o.parent[c]) * (k - 1)], k - 1);
      const uint32_t off = static_cast<uint32_t>(blob_.size());
      blob_.push_back(0);
      blob_.push_back(0);
      blob_.push_back(static_cast<uint32_t>(kOne31));
      const size_t key_at = blob_.size();
      blob_.resize(key_at + (k + 3) / 4, 0);
      std::memcpy(&blob_[key_at], key, k);
      const uint32_t g_raw = discount_row(&o.raw[b], n, o.d_raw, row.data());
      for (uint32_t i = 0; i < n; ++i) blob_.push_back(std::min<uint32_t>(row[i] >> 7, 0xffffff) << 8 | o.sym[b + i]);
      uint32_t n_cont = 0, g_cont = static_cast<uint32_t>(kOne31);
      if (has_cont) {
        g_cont = discount_row(&o.cont[b], n, o.d_cont, row.data());
        for (uint32_t i = 0; i < n; ++i) {
          if (row[i] == 0) continue;  // a zero continuation count
          blob_.push_back(std::min<uint32_t>(row[i] >> 7, 0xffffff) << 8 | o.sym[b + i]);
          ++n_cont;
        }
      }
      blob_[off] = static_cast<uint32_t>(k) | n << 8 | n_cont << 20;
      blob_[off + 1] = g_raw;
      blob_[off + 2] = g_cont;
      const uint64_t h = context_hash(key, static_cast<int>(k), static_cast<int>(k));
      uint64_t i = h & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = (h >> 32) << 32 | off;
    }
    prev_keys.swap(keys);
  }
}

void KnModel::masses(const uint8_t* ctx, int len, uint32_t* out) const {
  if (len < 0) len = 0;
  if (len > max_order_) {  // read only the most recent max_order bytes
    ctx += len - max_order_;
    len = max_order_;
  }
  // All orders' hash slots first (independent loads the CPU overlaps), then the records.
  const uint64_t mask = (uint64_t{1} << slot_bits_) - 1;
  uint64_t hash[kKnMaxOrderLimit + 1];
  uint64_t a = kHashSeed;
  for (int k = 1; k <= len; ++k) {
    a = hash_step(a, ctx[len - k], k);
    hash[k] = fmix64(a);
    __builtin_prefetch(&slots_[hash[k] & mask]);
  }
  uint32_t off[kKnMaxOrderLimit + 1];
  int depth = 0;
  for (int k = 1; k <= len; ++k) {
    off[k] = find(ctx, len, k, hash[k]);
    if (off[k] == 0) break;  // a kept context's shorter contexts are kept too
    depth = k;
  }
  // Weights from the top present order down; the top queried order uses raw counts.
  uint64_t w[kKnMaxOrderLimit + 1];
  uint64_t weight = 1ull << 30;
  for (int k = depth; k >= 1; --k) {
    w[k] = weight;
    weight = (weight * blob_[off[k] + (k == len ? 1 : 2)]) >> 31;
  }
  const uint32_t* dense = len == 0 ? root_raw_ : root_cont_;
  for (int s = 0; s < kAlphabet; ++s) out[s] = static_cast<uint32_t>((weight * dense[s]) >> 31) + 1;
  for (int k = 1; k <= depth; ++k) {
    const uint32_t* rec = &blob_[off[k]];
    const uint32_t n_raw = (rec[0] >> 8) & 0xfff, n_cont = rec[0] >> 20;
    const uint32_t* e = rec + 3 + (k + 3) / 4;
    uint32_t n = n_raw;
    if (k != len) {
      e += n_raw;
      n = n_cont;
    }
    const uint64_t wk = w[k];
    for (uint32_t i = 0; i < n; ++i) out[e[i] & 0xff] += static_cast<uint32_t>((wk * (e[i] >> 8)) >> 24);
  }
}

}  // namespace tp::coding
