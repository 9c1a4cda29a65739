// SpecKV (Galim et al. 2025, "Draft-based Approximate Inference for LLMs"):
// a small draft model writes an approximate continuation; its tokens' queries
// (computed by the target model) show which keys the real answer will read.
// Observation rows: every draft query (they follow the prompt, so each sees
// all nKv keys) plus, when prompt queries are given, the last
// w = min(window, nQ) of them (causal), as in the paper, whose window is the
// last window_size prompt tokens followed by the draft tokens. Per key before
// the window: the softmax probability reduced over the observation rows and
// the group's heads (max or mean), then pooled like SnapKV over `kernel`
// positions (max or avg); the window's w keys get +infinity (forced kept).
// Defaults follow the paper's experiments: window 32, kernel 7, max pooling,
// max reduction.
//
// Simplification: a draft query's softmax runs over the nKv cached keys only;
// in the paper it also covers the draft tokens' own keys (causally), which
// this stateless API does not receive.
#include <algorithm>
#include <vector>

#include "kv_common.h"

namespace tp::kv {

Status score_speckv(const KvScoreParams& p) {
  const int64_t w = p.q ? std::min(p.window, p.n_q) : 0;
  const bool take_max = p.reduction == KvPooling::Max;
  std::vector<float> acc;
  try {
    acc.assign(static_cast<size_t>(p.n_kv_heads * p.n_kv), 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("speckv: cannot allocate scratch");
  }
  QueryRows draft;
  draft.q = p.draft_q;
  draft.head_stride = p.draft_head_stride;
  draft.row_stride = p.draft_row_stride;
  draft.n_rows = p.n_draft;
  draft.last_visible = -1;  // every key
  Status s = reduce_probs(p, draft, take_max, acc);
  if (!s.is_ok()) return s;
  if (w > 0) {
    QueryRows window;
    window.q = p.q + (p.n_q - w) * p.q_row_stride;
    window.head_stride = p.q_head_stride;
    window.row_stride = p.q_row_stride;
    window.n_rows = w;
    window.last_visible = p.n_kv - w;  // causal: row r is position nKv - w + r
    s = reduce_probs(p, window, take_max, acc);
    if (!s.is_ok()) return s;
  }
  const float scale = take_max ? 1.0f : 1.0f / static_cast<float>((p.n_draft + w) * (p.n_heads / p.n_kv_heads));
  const int64_t prefix = p.n_kv - w;
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    pool_prefix(acc.data() + h * p.n_kv, scale, prefix, p.kernel, p.pooling, p.scores + h * p.n_kv);
  }
  force_from(p, prefix);
  return Status::ok();
}

}  // namespace tp::kv
