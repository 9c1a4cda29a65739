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
//  - argmax and top-k: higher value first, lower index on ties (torch.max /
//    torch.argmax return the first maximum), NaN below every number (-inf
//    included), -0 equal to +0: the CPU operators' ranks_before
//    (native/reduce/topk.h); a total order, so any reduction tree gives the
//    host's winner; the top-k is an MSB-first radix select on a 64-bit rank
//    key of that order (the digit steps of native/sparse/quest_hd.h).
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

// -- argmax and top-k -------------------------------------------------------------

// Whether (v, j) ranks before (w, k): the larger first, NaN after every
// number, the lower index on ties (-0 == +0).
TP_HD bool ranks_before(float v, int64_t j, float w, int64_t k) {
  const bool nv = v != v, nw = w != w;
  if (nv != nw) return nw;
  if (!nv && v != w) return v > w;
  return j < k;
}

// Whether (v, j) beats the current best (best, bj); bj < 0 (nothing yet) always loses.
TP_HD bool beats(float v, int64_t j, float best, int64_t bj) { return bj < 0 || ranks_before(v, j, best, bj); }

// A unique 64-bit key per (score, index), larger = ranks before: the
// order-preserving bits of the score (NaN below -inf, -0 as +0), then the
// complement of the index (index < 2^32).
TP_HD uint64_t rank_key(float score, int64_t i) {
  uint32_t u = 0;  // NaN: below -inf's key 0x007fffff
  if (score == score) {
    if (score == 0.0f) score = 0.0f;
    u = f32_to_bits(score);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  }
  return (uint64_t(u) << 32) | uint64_t(0xffffffffu - uint32_t(i));
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

// -- DivPrune (vbdi/divprune, LLaVA/llava/model/llava_arch.py DivPrune) ------------------
// Distance 1 - cosine. Step 0 scores each token by its distance to its
// nearest OTHER token (the official topk(2, dim=0, largest=False).values[1]:
// the second smallest of its column, the smallest being its own ~0); step 1
// by its distance to the first pick; every later step by the smallest
// distance to the picked set; the best untaken token is picked (as the CPU
// divprune_greedy, native/reduce/divprune.cpp).
TP_HD float distance(float cosine) { return 1.0f - cosine; }
TP_HD float dmax(float best, float v) {  // NaN ignored
  return v > best ? v : best;
}
TP_HD float dmin(float cur, float v) {  // NaN ignored
  return v < cur ? v : cur;
}
// A token whose self-similarity is NaN (a NaN or infinite value) scores NaN
// at step 0, so it ranks after every other token from then on (its NaN
// running minimum never changes); the CPU greedy ranks such tokens last too.
TP_HD float nearest_or_nan(float nearest, float self_similarity) {
  return self_similarity != self_similarity ? self_similarity : nearest;
}

// -- k-means (VQToken) -----------------------------------------------------------------------
// Assignment: argmax cosine over the K centroids (beats); update: per
// centroid the mean of its NORMALISED tokens, summed in float64 in ascending
// token order and divided in float64 (native/reduce/kmeans.cpp), and their
// count; an empty centroid gets zeros (the caller keeps its old centroid).
TP_HD float mean_of(double sum, int32_t count) { return count > 0 ? float(sum / double(count)) : 0.0f; }

}  // namespace tp::reduce::hd
