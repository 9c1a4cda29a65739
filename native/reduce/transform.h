// Token Transforming: a many-to-many transformation matrix W [m, n] from n
// source tokens to m outputs, Y = W-weighted means. The official repository
// (AuroraZengfh/TokenTransforming) has only a README; this is OUR READING of
// the paper (docs/vision-tome.md): pruning (one-hot rows, dropped columns
// zero) and merging (each column one-hot) are special cases of the same
// apply step.
//
// transform_build, on each frame of x f32 [t, n, d] with m target indices:
//   sim[i, j] = cos(x[target_i], x[j])         (tp::reduce::dot_matrix)
//   for each source j: its top_k targets by sim (lower i on ties) get
//   W[i, j] = softmax_i(sim[i, j] / tau) over those k; the rest 0, so every
//   column sums to 1 (mass conservation).
// transform_apply, for any W f32 [t, m, n] (entries >= 0):
//   out_sizes[i] = sum_j W[i, j] s_j,  out_x[i] = sum_j W[i, j] s_j x_j / out_sizes[i]
//   (s = input sizes or 1; a row of zero mass gives a zero token of size 0),
//   assignment[j] = argmax_i W[i, j] (lowest i on ties), -1 for a zero column.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

struct TransformApplyParams {
  const float* w = nullptr;      // [t, m, n]
  const float* x = nullptr;      // [t, n, d]
  const float* sizes = nullptr;  // [t, n] or nullptr
  int64_t t = 1, m = 0, n = 0, d = 0;
  float* out_x = nullptr;         // [t, m, d]
  float* out_sizes = nullptr;     // [t, m]
  int32_t* assignment = nullptr;  // [t, n]
};

struct TransformBuildParams {
  const float* x = nullptr;          // [t, n, d]
  const int32_t* targets = nullptr;  // [t, m], each in [0, n)
  int64_t t = 1, m = 0, n = 0, d = 0;
  int64_t top_k = 1;  // clipped to m
  float tau = 0.1f;   // > 0
  float* out_w = nullptr;  // [t, m, n]
};

// Per-column weights from a similarity column (pure; shared with the CUDA port):
// sim and w are strided by `stride` (the column of an [m, n] matrix).
void transform_column(const float* sim, int64_t m, int64_t stride, int64_t top_k, float tau, float* w);

Status transform_build(const TransformBuildParams& p);
Status transform_apply(const TransformApplyParams& p);

}  // namespace tp::reduce
