// KV-cache compression, stateless: per-token scores from one policy, top-k
// selection, and compaction of K / V to the kept rows.
//
// Shapes (row-major, innermost dimension contiguous, other strides free):
//   k, v      f32|f16|bf16 [nKvHeads, nKv, headDim]
//   q         f32          [nHeads,   nQ,  headDim]  optional: the last nQ
//                                                    positions (observation window)
//   key_mass  f32          [nKvHeads, nKv]           optional, contiguous
//   draft_q   f32          [nHeads,   nDraft, headDim] optional: queries of
//                                                    future / draft tokens, which
//                                                    see every key (speckv)
//   scores    f32          [nKvHeads, nKv]           contiguous, higher = keep
//   indices   i32          [nKvHeads, nKeep]         contiguous, ascending per head
// GQA: query head h reads KV head h / (nHeads / nKvHeads).
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "../core/status.h"

namespace tp {

enum class KvPooling : int { Avg = 0, Max = 1 };

struct KvScoreParams {
  int64_t n_heads = 0, n_kv_heads = 0, n_q = 0, n_kv = 0, head_dim = 0;
  const float* q = nullptr;  // null when no queries were given
  int64_t q_head_stride = 0, q_row_stride = 0;
  const void* k = nullptr;
  DType k_dtype = DType::F32;
  int64_t k_head_stride = 0, k_row_stride = 0;
  const void* v = nullptr;
  DType v_dtype = DType::F32;
  int64_t v_head_stride = 0, v_row_stride = 0;
  const float* key_mass = nullptr;  // null when absent
  const float* draft_q = nullptr;   // null when no draft queries were given
  int64_t n_draft = 0, draft_head_stride = 0, draft_row_stride = 0;

  // Policy options (each policy reads its own).
  int64_t sinks = 4;     // streamingllm
  int64_t recent = 32;   // h2o
  int64_t window = 32;   // snapkv
  int64_t kernel = 5;    // snapkv
  KvPooling pooling = KvPooling::Avg;
  uint64_t seed = 0;     // random
  float epsilon = 0.0f;        // expected_attention: added before the value-norm factor
  bool use_covariance = true;  // expected_attention
  bool use_vnorm = true;       // expected_attention
  // speckv: max or mean over the observation rows and the group's heads;
  // ems: how the global and local scores combine (max or mean). The TS layer
  // always sets it (speckv default max, ems default mean).
  KvPooling reduction = KvPooling::Max;

  float* scores = nullptr;

  // Element counts of the buffers as received (0 when absent).
  int64_t q_len = 0, k_len = 0, v_len = 0, key_mass_len = 0, scores_len = 0, draft_q_len = 0;
};

// One scoring function. Called only after validate_kv_score succeeded.
using KvScoreFn = Status (*)(const KvScoreParams& p);

struct KvPolicy {
  const char* name;
  KvScoreFn score;
  bool needs_queries;   // fails without q
  bool accepts_key_mass; // uses key_mass when given (else q is required)
  bool needs_draft;      // fails without draft_q
};

// The one table of policies (policy_registry.cpp); null when unknown.
const KvPolicy* find_kv_policy(const char* name);

// Checks sizes and options, then runs the policy's score function.
Status run_kv_score(const char* policy, const KvScoreParams& p);

// Top-n_keep positions of each head (higher score first, the earlier
// position first among equal scores), written ascending. Rejects NaN.
Status run_kv_select(const float* scores, int64_t scores_len, int64_t n_kv_heads, int64_t n_kv,
                     int64_t n_keep, int32_t* out, int64_t out_len);

// Gathers rows: dst[h][j] = src[h][indices[h][j]] for one tensor, bit for bit.
struct KvCompactParams {
  int64_t n_kv_heads = 0, n_kv = 0, head_dim = 0, n_keep = 0;
  const void* src = nullptr;
  DType dtype = DType::F32;
  int64_t head_stride = 0, row_stride = 0, src_len = 0;
  const int32_t* indices = nullptr;
  int64_t indices_len = 0;
  void* dst = nullptr;  // contiguous [nKvHeads, nKeep, headDim]
  int64_t dst_len = 0;
};
Status run_kv_compact(const KvCompactParams& p);

}  // namespace tp
