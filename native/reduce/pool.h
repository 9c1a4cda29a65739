// LLaVolta pooling: 1-D average pooling of visual tokens with kernel =
// stride = s. Follows Beckschen/LLaVolta llava/model/language_model/llava_llama.py
// (visual_avg_pool1d: torch avg_pool1d over the token axis, no padding,
// floor mode, so the last n mod s tokens are dropped; the position ids are
// pooled the same way and cast back to integers, i.e. truncated).
//
//   x f32 [t, n, d] -> out f32 [t, m, d], m = floor(n / s):
//     out[i] = mean(x[i*s .. i*s+s))          (plain mean, as avg_pool1d)
//   positions i32 [t, n] (optional) -> out_positions i32 [t, m]:
//     trunc(mean(positions[i*s .. i*s+s)))    (float64 mean; see docs)
//   out_sizes f32 [t, m]: s, or the sum of the input sizes when given
//   assignment i32 [t, n]: floor(j / s), or -1 for the dropped tail.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

struct PoolParams {
  const float* x = nullptr;            // [t, n, d]
  const float* sizes = nullptr;        // [t, n] or nullptr
  const int32_t* positions = nullptr;  // [t, n] or nullptr
  int64_t t = 1, n = 0, d = 0, stride = 1;
  float* out_x = nullptr;              // [t, m, d]
  float* out_sizes = nullptr;          // [t, m]
  int32_t* out_positions = nullptr;    // [t, m] (when positions given)
  int32_t* assignment = nullptr;       // [t, n]
};

Status avg_pool_tokens(const PoolParams& p);

}  // namespace tp::reduce
