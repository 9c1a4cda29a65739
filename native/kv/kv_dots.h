// Query-key dot-product kernels for KV scoring, without the P.V half of
// attention: softmax probability mass per key (snapkv, tova, h2o, ems,
// speckv, pyramidkv, adakv scorers), quadratic-form logits (expected
// attention) and row norms (knorm, value norms). Written once over the Ops
// vector interface of native/attention and compiled per ISA
// (kv_dots_scalar.cpp, kv_dots_avx2.cpp, kv_dots_avx512.cpp); this header
// and kv_dots.cpp are the portable side: validation-free plans with raw
// pointers, and the run-time ISA dispatch.
//
// Shapes (element strides, innermost dimension contiguous):
//   k     f32|f16|bf16 [nKvHeads, nKv, headDim]
//   rows  f32          [nKvHeads][headDim][nRowsPad]  query rows transposed,
//                      already scaled, zero padded (rows are vector lanes)
#pragma once
#include <cstdint>

#include "../core/dtype.h"

namespace tp::kv {

// Rows are padded to a multiple of this many lanes on every ISA (1, 8, 16).
constexpr int64_t kDotsRowAlign = 16;
// Keys per task of the mass kernel (also the granularity of its softmax statistics).
constexpr int64_t kDotsChunk = 512;

struct KeyRows {
  const void* data = nullptr;
  DType dtype = DType::F32;
  int64_t head_stride = 0, row_stride = 0;
};

// Softmax mass of n_rows query rows per KV head over that head's keys.
// limit[r] = the last key position row r sees (-1: none, a padding row).
// acc[kvh * n_kv + p] (+)= sum over rows of prob (take_max: max over rows).
// KV heads run one after another, each over the pool by key chunks, so the
// scratch holds one head: e [nKv * nRowsPad], stats [nChunks * nRowsPad * 2].
struct MassPlan {
  int64_t n_kv_heads = 0, n_kv = 0, head_dim = 0, n_rows_pad = 0;
  KeyRows k;
  const float* qt = nullptr;     // [nKvHeads][headDim][nRowsPad]
  const int64_t* limit = nullptr;  // [nKvHeads][nRowsPad]
  bool take_max = false;
  float* acc = nullptr;          // [nKvHeads][nKv]
  float* e = nullptr;            // scratch: e[p][r] = exp(s - chunk max of row r)
  float* stats = nullptr;        // scratch: per (chunk, row) max (then the factor), and sum
};
void run_mass(const MassPlan& plan);

// logits[kvh][g][p] = sum_r lin[g][r] * s + sq[g][r] * s^2, s = rows_r . k_p,
// for keys p in [first, n_kv) (written at index p - first). Segment g's
// coefficients are 0 outside its rows [g * segment, (g + 1) * segment), which
// need not be aligned to vectors (no padding between segments).
struct QuadPlan {
  int64_t n_kv_heads = 0, n_kv = 0, first = 0, head_dim = 0, n_rows_pad = 0, n_segments = 0, segment = 0;
  KeyRows k;
  const float* qt = nullptr;   // [nKvHeads][headDim][nRowsPad]
  const float* lin = nullptr;  // [nKvHeads][nSegments][nRowsPad]
  const float* sq = nullptr;   // [nKvHeads][nSegments][nRowsPad]
  float* logits = nullptr;     // [nKvHeads][nSegments][nKv - first]
};
void run_quad(const QuadPlan& plan);

// Nearest kept key of each evicted key by cosine similarity (merge targets):
// best[e] = the first j < nKeep maximising (k[evicted[e]] . kept_j) * inv_norm[j],
// best_dot[e] = that maximum. k: one head, f32 [n][headDim] contiguous.
struct NearestPlan {
  int64_t head_dim = 0, n_rows_pad = 0, n_keep = 0, n_evicted = 0;
  const float* k = nullptr;
  const int32_t* evicted = nullptr;  // [nEvicted] rows of k
  const float* qt = nullptr;         // kept keys transposed [headDim][nRowsPad], zero padded
  const float* inv_norm = nullptr;   // [nRowsPad]
  int32_t* best = nullptr;           // [nEvicted]
  float* best_dot = nullptr;         // [nEvicted]
};
void run_nearest(const NearestPlan& plan);

// out[p] = sum over the n_seg rows of logits (each [n]) of softmax(row)[p],
// times `scale`. One call per KV head (no threading inside).
void softmax_sum(const float* logits, int64_t n_seg, int64_t n, float scale, float* out);

// out[p] = sum_j x[p][j]^2 (f32) for rows p in [first, first + n) of one head.
void row_sq_norms(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t head_dim, float* out);

// out[t * headDim + j] = x[head][first + t][j] as f32, for t < n (contiguous out).
void rows_to_f32(const KeyRows& x, int64_t head, int64_t first, int64_t n, int64_t head_dim, float* out);

// ISA entry points.
namespace dots_scalar {
void run_mass(const MassPlan&);
void rows_to_f32(const KeyRows&, int64_t, int64_t, int64_t, int64_t, float*);
void run_nearest(const NearestPlan&);
void run_quad(const QuadPlan&);
void softmax_sum(const float*, int64_t, int64_t, float, float*);
void row_sq_norms(const KeyRows&, int64_t, int64_t, int64_t, int64_t, float*);
}  // namespace dots_scalar
namespace dots_avx2 {
void run_mass(const MassPlan&);
void rows_to_f32(const KeyRows&, int64_t, int64_t, int64_t, int64_t, float*);
void run_nearest(const NearestPlan&);
void run_quad(const QuadPlan&);
void softmax_sum(const float*, int64_t, int64_t, float, float*);
void row_sq_norms(const KeyRows&, int64_t, int64_t, int64_t, int64_t, float*);
}  // namespace dots_avx2
namespace dots_avx512 {
void run_mass(const MassPlan&);
void rows_to_f32(const KeyRows&, int64_t, int64_t, int64_t, int64_t, float*);
void run_nearest(const NearestPlan&);
void run_quad(const QuadPlan&);
void softmax_sum(const float*, int64_t, int64_t, float, float*);
void row_sq_norms(const KeyRows&, int64_t, int64_t, int64_t, int64_t, float*);
}  // namespace dots_avx512

}  // namespace tp::kv
