// Helpers shared by the policy files (not part of the public kv API).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/half.h"
#include "kv_policy.h"

namespace tp::kv {

// Element j of row (head, pos) of a K or V view, as f32.
inline float load(const void* base, DType t, int64_t offset) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[offset];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[offset]);
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[offset]);
  }
  return 0.0f;
}

// mass[kvHead * nKv + p] = softmax probability of key p summed over the last
// n_last queries (causal: query i of the window is position nKv - n_last + i)
// and the query heads of the group, from the attention kernel (scale
// 1/sqrt(headDim)). Requires p.q.
Status attention_mass(const KvScoreParams& p, int64_t n_last, std::vector<float>& mass);

// Every position of each head at or after `from` gets +infinity (forced kept).
void force_from(const KvScoreParams& p, int64_t from);

}  // namespace tp::kv
