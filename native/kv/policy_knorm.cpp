// Knorm (Devoto et al. 2024, "A Simple and Effective L2 Norm-Based Strategy
// for KV Cache Compression"): keys with a small L2 norm draw the most
// attention, so score = -||k|| (f32 accumulation).
#include <cmath>

#include "kv_common.h"

namespace tp::kv {

Status score_knorm(const KvScoreParams& p) {
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t pos = 0; pos < p.n_kv; ++pos) {
      const int64_t base = h * p.k_head_stride + pos * p.k_row_stride;
      float sum = 0.0f;
      for (int64_t j = 0; j < p.head_dim; ++j) {
        const float x = load(p.k, p.k_dtype, base + j);
        sum += x * x;
      }
      p.scores[h * p.n_kv + pos] = -std::sqrt(sum);
    }
  }
  return Status::ok();
}

}  // namespace tp::kv
