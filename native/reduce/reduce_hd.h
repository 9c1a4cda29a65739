// The per-element logic of the visual-token reduction kernels (issue 19),
// TP_HD so that one source runs in the CUDA kernels (native/cuda/
// cuda_reduce.cu) and in their host model (reduce_device_model.h, run by
// test/unit/vision-device-model.test.ts without a GPU). Every float operation
// is written with an explicit rounding (fmaf, *_rn), so the device and the
// host model give the same bits; the CPU operators of native/reduce/ (SIMD,
// other summation orders) agree with both to rounding, and every rule below
// (ties, NaN, zero vectors) is theirs.
//
// Rules (the official code each follows is cited where it is used):
//  - row norm: float64 sum of squares over 32 lanes (lane j: elements j,
//    j + 32, ...), lanes reduced as l[j] += l[j + 16], += l[j + 8], ...;
//    x * (1 / sqrt(ss)) in float64 rounded to f32; a zero row stays zero
//    (similarity.h l2_normalize_rows, up to the order of the f64 sum);
//  - dot: acc = fmaf(a[k], b[k], acc) for k = 0..d-1 (one rounding per step);
//    dot(a, b) == dot(b, a) bit for bit, so a self-similarity is symmetric;
//  - argmax: higher value first, lower index on ties, NaN as -inf (torch.max /
//    torch.argmax return the first maximum); a total order, so any reduction
//    tree gives the same winner;
//  - top-k: the 64-bit rank key of native/sparse/quest_hd.h (value, then the
//    lower index; NaN as -inf, -0 as +0) and its MSB-first radix select.
#pragma once
#include <cmath>
#include <cstdint>

#include "../core/half.h"
#include "../core/hd.h"
#include "../sparse/quest_hd.h"

namespace tp::reduce::hd {

using sparse::hd::digit_of;
using sparse::hd::pick_digit;
using sparse::hd::prefix_mask;
using sparse::hd::rank_key;

constexpr int kLanes = 32;  // lanes of the row-norm reduction (one warp on the device)

// float64 a * b and a + b rounded once each (nvcc would contract them into a
// double fma; x86-64's baseline has no fma to contract into).
#if defined(__CUDA_ARCH__)
TP_HD double dmul_rn(double a, double b) { return __dmul_rn(a, b); }
TP_HD double dadd_rn(double a, double b) { return __dadd_rn(a, b); }
TP_HD float fma_rn(float a, float b, float c) { return __fmaf_rn(a, b, c); }
#else
inline double dmul_rn(double a, double b) { return a * b; }
inline double dadd_rn(double a, double b) { return a + b; }
inline float fma_rn(float a, float b, float c) { return std::fmaf(a, b, c); }
#endif

TP_HD float neg_inf() { return bits_to_f32(0xff800000u); }
TP_HD float pos_inf() { return bits_to_f32(0x7f800000u); }

// -- row normalisation ---------------------------------------------------------

// Lane `lane`'s partial sum of squares of a row x[0, d).
TP_HD double sumsq_lane(const float* x, int64_t d, int lane) {
  double s = 0.0;
  for (int64_t k = lane; k < d; k += kLanes) s = dadd_rn(s, dmul_rn(double(x[k]), double(x[k])));
  return s;
}

// The scale of a row from its sum of squares: 1 / sqrt(ss), 0 for a zero row.
TP_HD double inv_norm(double ss) { return ss > 0.0 ? 1.0 / sqrt(ss) : 0.0; }

TP_HD float scaled(float x, double inv) { return float(dmul_rn(double(x), inv)); }

// -- dot products ----------------------------------------------------------------

// acc after k = k0..k1-1 of the sequential fma chain (the device's tiles run
// the same chain a shared-memory tile at a time).
TP_HD float dot_chain(const float* a, const float* b, int64_t k0, int64_t k1, float acc) {
  for (int64_t k = k0; k < k1; ++k) acc = fma_rn(a[k], b[k], acc);
  return acc;
}
TP_HD float dot(const float* a, const float* b, int64_t d) { return dot_chain(a, b, 0, d, 0.0f); }

// -- argmax ------------------------------------------------------------------------

// Whether (v, j) beats the current best (best, bj): higher first, lower index
// on ties, NaN as -inf; bj < 0 (nothing yet) always loses.
TP_HD bool beats(float v, int64_t j, float best, int64_t bj) {
  if (bj < 0) return true;
  if (v != v) v = neg_inf();
  if (best != best) best = neg_inf();
  return v > best || (v == best && j < bj);
}

// -- ToMe (facebookresearch/ToMe, tome/merge.py bipartite_soft_matching) --------------
// A = tokens 0, 2, 4, ... (ceil(n / 2)), B = tokens 1, 3, ... (floor(n / 2));
// r = min(r, (n - protected) / 2); with a class token A row 0 never merges
// (the official scores[..., 0, :] = -inf).
TP_HD int64_t tome_r(int64_t n, int64_t r, bool protect_first) {
  const int64_t cap = (n - (protect_first ? 1 : 0)) / 2;
  return r < 0 ? 0 : r < cap ? r : cap > 0 ? cap : 0;
}
TP_HD bool tome_candidate(int64_t i, bool protect_first) { return !(protect_first && i == 0); }

// The size-weighted mean of B row j's channel c and the A rows merged into it
// (merge_wavg: x * size summed, then divided by the summed size), in
// ascending A order: acc = b * sb, acc += a_i * s_i, / (sb + sum s_i).
TP_HD void wavg_start(float b, float sb, float* acc, float* size) {
  *acc = mul_rn(b, sb);
  *size = sb;
}
TP_HD void wavg_add(float a, float sa, float* acc, float* size) {
  *acc = add_rn(*acc, mul_rn(a, sa));
  *size = add_rn(*size, sa);
}
TP_HD float wavg_end(float acc, float size) { return acc / size; }

// -- DivPrune (vbdi/divprune, divprune.py DivPrune) ----------------------------------------
// Distance 1 - cosine. Step 0 scores each token by its largest distance to
// any token (topk(k=1, dim=0) of the distance matrix); every later step by
// its smallest distance to the picked set; the argmax is picked. The running
// minimum starts at the step-0 score (which bounds every distance of the
// token, so min(score0, d(p0, j)) == d(p0, j)). Picked tokens are never
// picked again (ours; see docs/vision-cuda.md).
TP_HD float distance(float cosine) { return 1.0f - cosine; }
TP_HD float dmax(float best, float v) {  // NaN ignored
  return v > best ? v : best;
}
TP_HD float dmin(float cur, float v) {  // NaN ignored
  return v < cur ? v : cur;
}

// -- k-means (VQToken) -----------------------------------------------------------------------
// Assignment: argmax cosine over the K centroids (beats); update: per
// centroid the sum of its tokens (original rows, ascending token order,
// add_rn) and their count.

}  // namespace tp::reduce::hd
