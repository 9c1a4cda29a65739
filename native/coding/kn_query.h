// The KnModel query (kn_model.h, kn_model.cpp) over plain arrays, header-only
// and TP_HD, so the CPU model and the CUDA decoder (equal_info_portable.h)
// compute the masses with the very same integer steps.
//
// KnView holds the query structures of one model (host pointers for the CPU,
// device pointers for a device copy, see native/cuda/cuda_equal_info.h):
//   blob      u32 [blob_words]       context records of orders >= 2 (kn_model.h)
//   slots     u64 [2^slot_bits]      hash table (fingerprint << 32 | record offset), 0 = empty
//   root_raw  u32 [256]              order 0 (+ uniform), raw counts, 2^31 = 1
//   rows1     u32 [2][256][256]      order 1 over order 0, raw / continuation counts
//   rows2     u32 [rows2_rows][2][256]  dense order-2 rows over order 1
//   idx2      i32 [256 * 256]        (older byte << 8 | recent byte) -> dense order-2 row, or -1
// The row scaling out[b] = ((2w * row[b]) >> 32) + 1 is a functor: the CPU
// passes its SIMD version (same integers), the device the scalar one below.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/hd.h"
#include "byte_model.h"

namespace tp::coding {

constexpr int kKnQueryMaxOrder = 12;  // == kKnMaxOrderLimit (kn_model.h)

struct KnView {
  const uint32_t* blob = nullptr;
  const uint64_t* slots = nullptr;
  int slot_bits = 0;
  const uint32_t* root_raw = nullptr;
  const uint32_t* rows1 = nullptr;
  const uint32_t* rows2 = nullptr;
  const int32_t* idx2 = nullptr;
  int max_order = 0;
  // Element counts (for copies; the query does not read them).
  size_t blob_words = 0;
  size_t rows2_words = 0;
};

// The scalar row scaling: out[b] = ((2w * row[b]) >> 32) + 1 for w <= 2^30.
struct ScaleRowScalar {
  TP_HD void operator()(const uint32_t* row, uint64_t w, uint32_t* out) const {
    const uint64_t w2 = w << 1;
    for (int s = 0; s < kAlphabet; ++s) out[s] = static_cast<uint32_t>((w2 * row[s]) >> 32) + 1;
  }
};

namespace kn_query {

constexpr uint64_t kHashSeed = 0x243f6a8885a308d3ull;

TP_HD uint64_t fmix64(uint64_t h) {  // MurmurHash3's finalizer
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

TP_HD uint64_t hash_step(uint64_t a, uint8_t byte, int k) {
  return (a ^ byte) * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(k);
}

// A cache hint on the host; nothing on the device.
TP_HD void prefetch(const void* p) {
#if !defined(__CUDA_ARCH__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

// Hash of the last k bytes of ctx[0..len), most recent byte first.
TP_HD uint64_t context_hash(const uint8_t* ctx, int len, int k) {
  uint64_t a = kHashSeed;
  for (int j = 1; j <= k; ++j) a = hash_step(a, ctx[len - j], j);
  return fmix64(a);
}

// Record offset of the order-k context ending ctx[0..len), 0 if absent. The
// key words hold the k bytes in memory order (as the model stored them with
// memcpy), written byte by byte so host and device agree.
TP_HD uint32_t find(const KnView& m, const uint8_t* ctx, int len, int k, uint64_t hash) {
  uint32_t key[(kKnQueryMaxOrder + 3) / 4] = {0, 0, 0};
  uint8_t* key_bytes = reinterpret_cast<uint8_t*>(key);
  for (int i = 0; i < k; ++i) key_bytes[i] = ctx[len - k + i];
  const int words = (k + 3) / 4;
  const uint64_t mask = (uint64_t{1} << m.slot_bits) - 1;
  const uint32_t fp = static_cast<uint32_t>(hash >> 32);
  for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
    const uint64_t v = m.slots[i];
    if (v == 0) return 0;
    if (static_cast<uint32_t>(v >> 32) != fp) continue;
    const uint32_t off = static_cast<uint32_t>(v);
    const uint32_t* rec = m.blob + off;
    if ((rec[0] & 0xff) != static_cast<uint32_t>(k)) continue;
    bool same = true;
    for (int w = 0; w < words; ++w) same &= rec[3 + w] == key[w];
    if (same) return off;
  }
}

}  // namespace kn_query

// masses[256] for the byte after ctx[0..len) (kn_model.cpp explains the
// sums). Reads only the most recent max_order bytes.
template <typename ScaleRow>
TP_HD void kn_masses(const KnView& m, const uint8_t* ctx, int len, uint32_t* out, const ScaleRow& scale_row) {
  using namespace kn_query;
  if (len < 0) len = 0;
  if (len > m.max_order) {  // read only the most recent max_order bytes
    ctx += len - m.max_order;
    len = m.max_order;
  }
  if (len == 0) {
    scale_row(m.root_raw, uint64_t{1} << 30, out);
    return;
  }
  // A dense order-2 row covers orders 0..2; otherwise order 2 is looked up like the longer ones.
  int32_t dense2 = -1;
  if (len >= 2) dense2 = m.idx2[static_cast<size_t>(ctx[len - 2]) << 8 | ctx[len - 1]];
  const int first_sparse = dense2 >= 0 ? 3 : 2;
  // All orders' hash slots first (independent loads the CPU overlaps), then the records.
  const uint64_t mask = (uint64_t{1} << m.slot_bits) - 1;
  uint64_t hash[kKnQueryMaxOrder + 1];
  uint64_t a = hash_step(kHashSeed, ctx[len - 1], 1);
  for (int k = 2; k <= len; ++k) {
    a = hash_step(a, ctx[len - k], k);
    hash[k] = fmix64(a);
    if (k >= first_sparse) prefetch(&m.slots[hash[k] & mask]);
  }
  uint32_t off[kKnQueryMaxOrder + 1];
  int depth = first_sparse - 1;
  for (int k = first_sparse; k <= len; ++k) {
    off[k] = find(m, ctx, len, k, hash[k]);
    if (off[k] == 0) break;  // a kept context's shorter contexts are kept too
    prefetch(&m.blob[off[k]]);
    depth = k;
  }
  // Weights from the top present order down; the top queried order uses raw counts.
  uint64_t w[kKnQueryMaxOrder + 1];
  uint64_t weight = 1ull << 30;
  for (int k = depth; k >= first_sparse; --k) {
    w[k] = weight;
    weight = (weight * m.blob[off[k] + (k == len ? 1 : 2)]) >> 31;
  }
  if (dense2 >= 0) {
    scale_row(&m.rows2[(static_cast<size_t>(dense2) * 2 + (len == 2 ? 0 : 1)) * kAlphabet], weight, out);
  } else {
    const int kind = len == 1 ? 0 : 1;
    scale_row(&m.rows1[(static_cast<size_t>(kind) * kAlphabet + ctx[len - 1]) * kAlphabet], weight, out);
  }
  for (int k = first_sparse; k <= depth; ++k) {
    const uint32_t* rec = &m.blob[off[k]];
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
