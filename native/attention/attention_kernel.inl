// The attention kernels, written once over a small vector interface `Ops`
// (ops_scalar.h, ops_avx2.h, ops_avx512.h) and compiled once per ISA inside
// namespace tp::attn_<isa>. Only raw pointers and our own helpers are used
// here: library templates would be instantiated under ISA-specific flags.
//
// Two paths (see attention.h for the shapes and the visibility rules):
//  - decode (few query rows per KV head): flash-decoding. The keys of each
//    KV head are cut into fixed chunks; each (KV head, chunk) task reads its
//    K and V rows once for all group * nQ query rows and leaves a partial
//    (max, sum, unnormalised output) that a merge step combines by
//    log-sum-exp. Chunks do not depend on the thread count, so neither do
//    the results.
//  - prefill: flash-attention tiles. Each (query head, block of BQ query rows)
//    task walks key tiles of BK keys with an online softmax, skipping tiles a
//    causal mask hides entirely. Scores are computed transposed, S^T[key][row]
//    = K . Q^T, so the softmax bookkeeping runs across rows in vector lanes.
// f16 / bf16 keys and values are widened in registers (decode) or per tile
// (prefill); the cache itself is never expanded.

using V = Ops::V;
constexpr int W = Ops::W;
constexpr float kNegInf = -__builtin_huge_valf();
constexpr float kPosInf = __builtin_huge_valf();
constexpr int64_t kBlockKeys = 64;   // prefill key tile (BK)
constexpr int kMaxPvVectors = 8;      // decode P.V register block (vectors)

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline float max_f(float a, float b) { return a > b ? a : b; }

// ---------------------------------------------------------------------------
// Row access by element type. `row` points at element 0 of a row.
template <DType D> struct Row;
template <> struct Row<DType::F32> {
  static V load(const void* row, int64_t d) { return Ops::load(static_cast<const float*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_n(static_cast<const float*>(row) + d, n); }
  static float at(const void* row, int64_t d) { return static_cast<const float*>(row)[d]; }
};
template <> struct Row<DType::F16> {
  static V load(const void* row, int64_t d) { return Ops::load_f16(static_cast<const uint16_t*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_f16_n(static_cast<const uint16_t*>(row) + d, n); }
  static float at(const void* row, int64_t d) { return f16_to_f32(static_cast<const uint16_t*>(row)[d]); }
};
template <> struct Row<DType::BF16> {
  static V load(const void* row, int64_t d) { return Ops::load_bf16(static_cast<const uint16_t*>(row) + d); }
  static V load_n(const void* row, int64_t d, int n) { return Ops::load_bf16_n(static_cast<const uint16_t*>(row) + d, n); }
  static float at(const void* row, int64_t d) { return bf16_to_f32(static_cast<const uint16_t*>(row)[d]); }
};

// Software prefetch of a whole row: one thread alone cannot keep enough
// cache misses in flight to reach the memory bandwidth on row-by-row reads.
inline void prefetch_row(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 3);
}

inline const void* row_ptr(const void* base, DType t, int64_t offset) {
  return static_cast<const char*>(base) + offset * static_cast<int64_t>(dtype_size(t));
}

// K / V row `pos` of KV head `kvh`: one strided tensor, or per-head buffers.
inline const void* k_row(const AttentionParams& p, int64_t kvh, int64_t pos) {
  return p.k_heads ? row_ptr(p.k_heads[kvh], p.k_dtype, pos * p.k_row_stride) : row_ptr(p.k, p.k_dtype, kvh * p.k_head_stride + pos * p.k_row_stride);
}
inline const void* v_row(const AttentionParams& p, int64_t kvh, int64_t pos) {
  return p.v_heads ? row_ptr(p.v_heads[kvh], p.v_dtype, pos * p.v_row_stride) : row_ptr(p.v, p.v_dtype, kvh * p.v_head_stride + pos * p.v_row_stride);
}

// Widens hd elements of a row into dst (f32) and zero-pads dst to dp.
template <DType D>
void widen_row(const void* row, int64_t hd, int64_t dp, float* dst) {
  int64_t d = 0;
  for (; d + W <= hd; d += W) Ops::store(dst + d, Row<D>::load(row, d));
  if (d < hd) Ops::store(dst + d, Row<D>::load_n(row, d, static_cast<int>(hd - d)));
  for (d = ceil_div(hd, W) * W; d < dp; d += W) Ops::store(dst + d, Ops::zero());
}

inline void apply_softcap(float* s, int64_t n, float cap) {
  const float inv = 1.0f / cap;
  for (int64_t j = 0; j < n; ++j) s[j] = cap * std::tanh(s[j] * inv);
}

#include "attention_decode.inl"
#include "attention_prefill.inl"

// ===========================================================================
template <DType KD, DType VD>
void run_typed(const AttentionPlan& pl) {
  if (pl.decode) run_decode<KD, VD>(pl);
  else run_prefill<KD, VD>(pl);
}

template <DType KD>
void run_with_k(const AttentionPlan& pl) {
  switch (pl.p->v_dtype) {
    case DType::F32: run_typed<KD, DType::F32>(pl); break;
    case DType::F16: run_typed<KD, DType::F16>(pl); break;
    case DType::BF16: run_typed<KD, DType::BF16>(pl); break;
  }
}

void run(const AttentionPlan& pl) {
  switch (pl.p->k_dtype) {
    case DType::F32: run_with_k<DType::F32>(pl); break;
    case DType::F16: run_with_k<DType::F16>(pl); break;
    case DType::BF16: run_with_k<DType::BF16>(pl); break;
  }
}
