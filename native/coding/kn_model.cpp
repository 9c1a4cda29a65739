// KnModel queries: the interpolated Kneser-Ney recursion unrolled into a sum.
//
// With W_top = 1 and W_{k-1} = W_k gamma_k, the recursion in kn_model.h is
//   P(b) = sum_k W_k max(n_k(b) - D, 0) / n_k(c) + W_{-1} / 256.
// Orders 0 and 1 (and the uniform order -1) are folded at load time into two
// dense rows per byte c: P_1(b | c) with raw counts at order 1 (for queries
// with one byte of context) and with continuation counts (for longer ones).
// A query looks up its orders >= 2 in a hash table (all at once, so the
// memory accesses overlap), walks the weights down, writes the order-1 row
// scaled by W_1, then adds the few entries of each longer context.
//
// Fixed point, all integer: per-entry terms e = floor(2^24 max(n - D, 0) / n(c))
// for orders >= 2, dense rows and gammas in 2^31 units, weights with
// probability 1 = 2^30. Every byte gets +1, so the masses sum to at most
// 2^30 + 256 < 2^31 (each level's terms sum to at most its weight).
#include <algorithm>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "../core/cpu_features.h"
#include "kn_model.h"

namespace tp::coding {
namespace {

constexpr uint64_t kOne31 = 1ull << 31;

// Discounted entries of one context in 2^31 units: e[i] for each entry, and
// the returned gamma. counts holds n(c b) for its entries; d is D1, D2, D3+
// in 16.16. With x = (n << 16) - D <= T = n(c) << 16, e = (x * R) >> 31 where
// R = floor(2^62 / T): one division per context, and every term rounds down
// so the terms and gamma never sum above 2^31. A context whose counts are
// all zero (continuation counts of n-grams seen only at the start of the
// text) passes all its weight down: gamma = 1.
uint32_t discount_row(const uint32_t* counts, uint32_t n, const uint32_t d[3], uint32_t* e) {
  uint64_t total = 0, g = 0;
  for (uint32_t i = 0; i < n; ++i) total += counts[i];
  if (total == 0) {
    for (uint32_t i = 0; i < n; ++i) e[i] = 0;
    return static_cast<uint32_t>(kOne31);
  }
  const uint64_t total16 = total << 16;  // < 2^48
  const uint64_t recip = (uint64_t{1} << 62) / total16;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t c = counts[i];
    if (c == 0) {
      e[i] = 0;
      continue;
    }
    const uint64_t disc = d[std::min<uint32_t>(c, 3) - 1];
    const uint64_t c16 = static_cast<uint64_t>(c) << 16;
    e[i] = static_cast<uint32_t>(((c16 - std::min(disc, c16)) * recip) >> 31);
    g += std::min(disc, c16);
  }
  return static_cast<uint32_t>(std::min<uint64_t>((g * recip) >> 31, kOne31));
}

// out[b] = ((w * row[b]) >> 31) + 1 for w <= 2^30, row[b] <= 2^31, computed
// as the high half of (2w) * row[b]. The same numbers on every path; the
// SIMD ones take the 32x32->64 products of even lanes, then of odd lanes
// shifted down, and merge the high halves without shuffles.
#if !defined(__x86_64__) && !defined(_M_X64)
[[maybe_unused]] void scale_row_scalar(const uint32_t* row, uint64_t w, uint32_t* out) {
  const uint64_t w2 = w << 1;
  for (int s = 0; s < kAlphabet; ++s) out[s] = static_cast<uint32_t>((w2 * row[s]) >> 32) + 1;
}
#else
void scale_row_sse2(const uint32_t* row, uint64_t w, uint32_t* out) {
  const __m128i w2 = _mm_set1_epi64x(static_cast<long long>(w << 1));
  const __m128i hi_mask = _mm_set1_epi64x(static_cast<long long>(0xffffffff00000000ull));
  const __m128i one = _mm_set1_epi32(1);
  for (int s = 0; s < kAlphabet; s += 4) {
    const __m128i r = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + s));
    const __m128i even = _mm_srli_epi64(_mm_mul_epu32(r, w2), 32);
    const __m128i odd = _mm_and_si128(_mm_mul_epu32(_mm_srli_epi64(r, 32), w2), hi_mask);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + s), _mm_add_epi32(_mm_or_si128(even, odd), one));
  }
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((target("avx2")))
#endif
void scale_row_avx2(const uint32_t* row, uint64_t w, uint32_t* out) {
  const __m256i w2 = _mm256_set1_epi64x(static_cast<long long>(w << 1));
  const __m256i one = _mm256_set1_epi32(1);
  for (int s = 0; s < kAlphabet; s += 8) {
    const __m256i r = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + s));
    const __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(r, w2), 32);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(r, 32), w2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + s), _mm256_add_epi32(_mm256_blend_epi32(even, odd, 0xaa), one));
  }
}
#endif

// Follows the active ISA (setIsa / TOKENPRESS_ISA) like the other kernels,
// so tests can check that every path gives the same integers.
inline void scale_row(const uint32_t* row, uint64_t w, uint32_t* out) {
#if defined(__x86_64__) || defined(_M_X64)
  if (active_isa() >= IsaLevel::Avx2) scale_row_avx2(row, w, out);
  else scale_row_sse2(row, w, out);
#else
  scale_row_scalar(row, w, out);
#endif
}

// The functor kn_masses takes on the CPU.
struct ScaleRowSimd {
  void operator()(const uint32_t* row, uint64_t w, uint32_t* out) const { scale_row(row, w, out); }
};

}  // namespace

Status KnModel::from_bytes(const uint8_t* data, size_t n, std::unique_ptr<KnModel>* out) {
  KnTables t;
  uint64_t hash = 0;
  Status s = kn_parse(data, n, &t, &hash);
  if (!s.is_ok()) return s;
  std::unique_ptr<KnModel> m(new KnModel());
  m->bytes_.assign(data, data + n);
  m->identity_ = hash;  // the file's own hash: it covers every other byte
  m->build(t);
  *out = std::move(m);
  return Status::ok();
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
    if (k < 2) continue;
    n_ctx += o.contexts();
    words += o.contexts() * (3 + (k + 3) / 4) + o.entries() * (k + 1 < t.orders.size() ? 2 : 1);
  }
  std::vector<uint32_t> blob(1, 0);  // built here, then copied onto large pages
  blob.reserve(words);
  slot_bits_ = 4;
  while ((uint64_t{1} << slot_bits_) < 2 * n_ctx + 16) ++slot_bits_;
  slots_.assign_zero(uint64_t{1} << slot_bits_);
  const uint64_t mask = (uint64_t{1} << slot_bits_) - 1;

  std::vector<uint32_t> row(kAlphabet);
  // Order 0 with the uniform order -1 folded in: e(b) + gamma / 256.
  const KnOrderTable& o0 = t.orders[0];
  const uint32_t n0 = o0.entry_begin.size() > 1 ? o0.entry_begin[1] : 0;
  uint32_t g = discount_row(o0.raw.data(), n0, o0.d_raw, row.data());
  for (int s = 0; s < kAlphabet; ++s) root_raw_[s] = g >> 8;
  for (uint32_t i = 0; i < n0; ++i) root_raw_[o0.sym[i]] += row[i];
  g = discount_row(o0.cont.data(), n0, o0.d_cont, row.data());
  for (int s = 0; s < kAlphabet; ++s) root_cont_[s] = g >> 8;
  for (uint32_t i = 0; i < n0; ++i) root_cont_[o0.sym[i]] += row[i];
  // Order 1 rows over order 0 (continuation counts there); a missing byte passes through.
  const KnOrderTable& o1 = t.orders[1];
  const bool o1_cont = t.max_order > 1;
  rows1_.assign_zero(2 * kAlphabet * kAlphabet);
  for (int c = 0; c < kAlphabet; ++c) {
    std::copy(root_cont_, root_cont_ + kAlphabet, &rows1_[(0 * kAlphabet + c) * kAlphabet]);
    std::copy(root_cont_, root_cont_ + kAlphabet, &rows1_[(1 * kAlphabet + c) * kAlphabet]);
  }
  for (size_t c = 0; c < o1.contexts(); ++c) {
    const uint32_t b = o1.entry_begin[c], n = o1.entry_begin[c + 1] - b;
    for (int kind = 0; kind < 2; ++kind) {  // 0: raw counts, 1: continuation counts
      if (kind == 1 && !o1_cont) continue;
      const uint32_t gk = kind == 0 ? discount_row(&o1.raw[b], n, o1.d_raw, row.data())
                                    : discount_row(&o1.cont[b], n, o1.d_cont, row.data());
      uint32_t* dst = &rows1_[(static_cast<size_t>(kind) * kAlphabet + o1.x[c]) * kAlphabet];
      for (int s = 0; s < kAlphabet; ++s) dst[s] = static_cast<uint32_t>((static_cast<uint64_t>(gk) * root_cont_[s]) >> 31);
      for (uint32_t i = 0; i < n; ++i) dst[o1.sym[b + i]] += row[i];
    }
  }

  // Order 2: dense rows over order 1 (continuation counts there) for its
  // kMaxDense2 most frequent contexts (ties: lower index), so the commonest
  // queries skip one lookup and their longest sparse list. Every order-2
  // context also gets its record below (used when it is not dense).
  idx2_.assign(kAlphabet * kAlphabet, -1);
  if (t.max_order >= 2) {
    const KnOrderTable& o2 = t.orders[2];
    std::vector<std::pair<uint64_t, uint32_t>> by_count;  // (-count, index) sorts most frequent first
    for (size_t c = 0; c < o2.contexts(); ++c) {
      uint64_t total = 0;
      for (uint32_t e = o2.entry_begin[c]; e < o2.entry_begin[c + 1]; ++e) total += o2.raw[e];
      by_count.push_back({~total, static_cast<uint32_t>(c)});
    }
    std::sort(by_count.begin(), by_count.end());
    const size_t n_dense = std::min<size_t>(by_count.size(), kMaxDense2);
    rows2_.assign_zero(n_dense * 2 * kAlphabet);
    const bool has_cont = t.max_order > 2;
    for (size_t d = 0; d < n_dense; ++d) {
      const uint32_t c = by_count[d].second;
      const uint32_t b = o2.entry_begin[c], n = o2.entry_begin[c + 1] - b;
      const uint8_t recent = o1.x[o2.parent[c]], older = o2.x[c];
      const uint32_t* below = &rows1_[(static_cast<size_t>(1) * kAlphabet + recent) * kAlphabet];
      for (int kind = 0; kind < 2; ++kind) {  // 0: raw counts, 1: continuation counts
        const bool raw = kind == 0 || !has_cont;
        const uint32_t gk = raw ? discount_row(&o2.raw[b], n, o2.d_raw, row.data())
                                : discount_row(&o2.cont[b], n, o2.d_cont, row.data());
        uint32_t* dst = &rows2_[(d * 2 + kind) * kAlphabet];
        for (int s = 0; s < kAlphabet; ++s) dst[s] = static_cast<uint32_t>((static_cast<uint64_t>(gk) * below[s]) >> 31);
        for (uint32_t i = 0; i < n; ++i) dst[o2.sym[b + i]] += row[i];
      }
      idx2_[older << 8 | recent] = static_cast<int32_t>(d);
    }
  }

  // Orders >= 2: one blob record each, found through the hash table.
  std::vector<uint8_t> prev_keys, keys;  // the context bytes of every context of order k - 1 and k
  prev_keys.assign(o1.x.begin(), o1.x.end());
  for (size_t k = 2; k < t.orders.size(); ++k) {
    const KnOrderTable& o = t.orders[k];
    const bool has_cont = k + 1 < t.orders.size();
    keys.assign(o.contexts() * k, 0);
    for (size_t c = 0; c < o.contexts(); ++c) {
      const uint32_t b = o.entry_begin[c], n = o.entry_begin[c + 1] - b;
      uint8_t* key = &keys[c * k];  // oldest byte first: x, then the parent's bytes
      key[0] = o.x[c];
      std::memcpy(key + 1, &prev_keys[static_cast<size_t>(o.parent[c]) * (k - 1)], k - 1);
      const uint32_t off = static_cast<uint32_t>(blob.size());
      blob.resize(off + 3 + (k + 3) / 4, 0);
      std::memcpy(&blob[off + 3], key, k);
      const uint32_t g_raw = discount_row(&o.raw[b], n, o.d_raw, row.data());
      for (uint32_t i = 0; i < n; ++i) blob.push_back(std::min<uint32_t>(row[i] >> 7, 0xffffff) << 8 | o.sym[b + i]);
      uint32_t n_cont = 0, g_cont = static_cast<uint32_t>(kOne31);
      if (has_cont) {
        g_cont = discount_row(&o.cont[b], n, o.d_cont, row.data());
        for (uint32_t i = 0; i < n; ++i) {
          if (row[i] == 0) continue;  // a zero continuation count
          blob.push_back(std::min<uint32_t>(row[i] >> 7, 0xffffff) << 8 | o.sym[b + i]);
          ++n_cont;
        }
      }
      blob[off] = static_cast<uint32_t>(k) | n << 8 | n_cont << 20;
      blob[off + 1] = g_raw;
      blob[off + 2] = g_cont;
      const uint64_t h = kn_query::context_hash(key, static_cast<int>(k), static_cast<int>(k));
      uint64_t i = h & mask;
      while (slots_[i] != 0) i = (i + 1) & mask;
      slots_[i] = (h >> 32) << 32 | off;
    }
    prev_keys.swap(keys);
  }
  blob_.assign_zero(blob.size());
  std::copy(blob.begin(), blob.end(), blob_.data());
  set_view();
}

void KnModel::set_view() {
  KnView& v = view_;
  v.blob = blob_.data();
  v.blob_words = blob_.size();
  v.slots = slots_.data();
  v.slot_bits = slot_bits_;
  v.root_raw = root_raw_;
  v.rows1 = rows1_.data();
  v.rows2 = rows2_.data();
  v.rows2_words = rows2_.size();
  v.idx2 = idx2_.data();
  v.max_order = max_order_;
}

void KnModel::masses(const uint8_t* ctx, int len, uint32_t* out) const {
  kn_masses(view_, ctx, len, out, ScaleRowSimd{});
}

}  // namespace tp::coding
