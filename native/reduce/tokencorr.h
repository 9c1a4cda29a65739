// Token-level correlation-guided compression for documents (issue 19).
//
// Official: JiuTian-VL/TokenCorrCompressor holds only a README (no code);
// the rule follows the paper (Zhang et al., "Token-level Correlation-guided
// Compression for Efficient Multimodal Document Understanding"), per
// sub-image crop:
//  - pattern repetitiveness: cosine similarity of the patch keys; patch i is
//    repetitive when at least `count_limit` other patches have cosine >
//    `sim_threshold` (both OUR choice: 0.8 and 1); r = repetitive fraction;
//    information density 1 - r sets the crop's budget
//    keep = max(1, round(n (1 - r))) (OUR choice of the mapping);
//  - global branch: deep-layer [CLS] attention, patches above
//    Q3 + 1.5 IQR (numpy linear percentiles) are kept first (the top by
//    attention when they exceed the budget);
//  - local branch: the rest of the budget is drawn without replacement with
//    probability proportional to the shallow-layer [CLS] attention
//    (mulberry32 stream from `seed`; uniform when the weights sum to 0).
// The paper's weighted aggregation of the sampled tokens is not done: the
// result is a pruning (kept indices).
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

struct TokenCorrOptions {
  double sim_threshold = 0.8;  // ours
  int count_limit = 1;         // ours
  double iqr_factor = 1.5;     // Tukey's fence
  uint32_t seed = 0;
};

// keys [n, dk], deep [n], shallow [n] -> keep [n] (1 = kept), *kept, *repetitive (count of repetitive patches).
Status tokencorr_frame(const float* keys, int64_t n, int64_t dk, const float* deep, const float* shallow, const TokenCorrOptions& opt,
                       uint8_t* keep, int64_t* kept, int64_t* repetitive);

// numpy's default (linear) percentile q in [0, 1] of v [n] (n >= 1).
double percentile_linear(const float* v, int64_t n, double q);

}  // namespace tp::reduce
