// SnapKV (Li et al. 2024, "SnapKV: LLM Knows What You are Looking for Before
// Generation"). w = min(window, nQ) observation queries (the last w
// positions, causal). For each key p before the window: the softmax
// probability averaged over the w queries and the query heads of the group,
// then pooled over positions with a `kernel`-wide window centred on p
// (offsets -floor(kernel/2) .. kernel-1-floor(kernel/2)); positions outside
// [0, nKv - w) count as 0 for 'avg' (divisor always kernel, like torch
// avg_pool1d with zero padding) and are skipped for 'max'. The window's own
// w tokens get +infinity (forced kept).
#include <algorithm>
#include <vector>

#include "kv_common.h"

namespace tp::kv {

Status score_snapkv(const KvScoreParams& p) {
  const int64_t w = std::min(p.window, p.n_q);
  std::vector<float> mass;
  const Status s = attention_mass(p, w, mass);
  if (!s.is_ok()) return s;
  const float inv = 1.0f / static_cast<float>(w * (p.n_heads / p.n_kv_heads));
  const int64_t prefix = p.n_kv - w;
  const int64_t left = p.kernel / 2;
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    const float* m = mass.data() + h * p.n_kv;
    for (int64_t pos = 0; pos < prefix; ++pos) {
      const int64_t lo = std::max<int64_t>(pos - left, 0);
      const int64_t hi = std::min<int64_t>(pos - left + p.kernel, prefix);
      float acc = p.pooling == KvPooling::Max ? m[lo] * inv : 0.0f;
      for (int64_t t = lo; t < hi; ++t) {
        const float x = m[t] * inv;
        if (p.pooling == KvPooling::Max) acc = std::max(acc, x);
        else acc += x;
      }
      p.scores[h * p.n_kv + pos] = p.pooling == KvPooling::Max ? acc : acc / static_cast<float>(p.kernel);
    }
  }
  force_from(p, prefix);
  return Status::ok();
}

}  // namespace tp::kv
