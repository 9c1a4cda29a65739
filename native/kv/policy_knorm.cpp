// Knorm (Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy
// for KV Cache Compression"): keys with a small L2 norm draw the most
// attention, so score = -||k|| (f32 accumulation).
#include <cmath>
#include <new>
#include <vector>

#include "kv_common.h"
#include "kv_dots.h"

namespace tp::kv {

Status score_knorm(const KvScoreParams& p) {
  const KeyRows k{p.k, p.k_dtype, p.k_head_stride, p.k_row_stride};
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    float* out = p.scores + h * p.n_kv;
    row_sq_norms(k, h, 0, p.n_kv, p.head_dim, out);  // vectorised sum of squares
    for (int64_t pos = 0; pos < p.n_kv; ++pos) out[pos] = -std::sqrt(out[pos]);
  }
  return Status::ok();
}

}  // namespace tp::kv
