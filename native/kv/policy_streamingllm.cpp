// StreamingLLM (Xiao et al. 2023, "Efficient Streaming Language Models with
// Attention Sinks"): keep the first `sinks` tokens and the most recent ones.
// Scores: sink p -> nKv (all sinks rank above every other token), otherwise
// p (later = higher), so any budget keeps the sinks, then the newest tokens.
#include "kv_common.h"

namespace tp::kv {

Status score_streamingllm(const KvScoreParams& p) {
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t pos = 0; pos < p.n_kv; ++pos) {
      p.scores[h * p.n_kv + pos] = static_cast<float>(pos < p.sinks ? p.n_kv : pos);
    }
  }
  return Status::ok();
}

}  // namespace tp::kv
