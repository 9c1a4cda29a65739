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
// and the query heads of the group (scale 1/sqrt(headDim)), from the
// probabilities-only kernel (reduce_probs). Requires p.q.
Status attention_mass(const KvScoreParams& p, int64_t n_last, std::vector<float>& mass);

// Every position of each head at or after `from` gets +infinity (forced kept).
void force_from(const KvScoreParams& p, int64_t from);

// Rows of f32 query vectors [nHeads, nRows, headDim] (kv_probs.cpp). Row r
// sees key positions p <= last_visible + r, or every key when last_visible < 0.
struct QueryRows {
  const float* q = nullptr;
  int64_t head_stride = 0, row_stride = 0, n_rows = 0;
  int64_t last_visible = -1;
};

// For each KV head and key position, reduces the softmax probabilities
// (scale 1/sqrt(headDim)) of every row of `rows` over the group's query
// heads into acc[kvHead * nKv + p]: the running max when take_max, else the
// running sum. acc must hold nKvHeads * nKv floats (initialised by the caller;
// 0 is neutral for both, probabilities being >= 0).
Status reduce_probs(const KvScoreParams& p, const QueryRows& rows, bool take_max, std::vector<float>& acc);

// SnapKV-style 1-D pooling of m[0, prefix) times `scale` into out[0, prefix):
// a kernel-wide window at offsets -floor(kernel/2) .. kernel-1-floor(kernel/2);
// positions outside [0, prefix) count as 0 for Avg (divisor always kernel)
// and are skipped for Max.
void pool_prefix(const float* m, float scale, int64_t prefix, int64_t kernel, KvPooling how, float* out);

}  // namespace tp::kv
