// CPU attention over full, strided or index-selected (sparse) KV caches.
//
// Shapes (row-major, innermost dimension contiguous, other strides free):
//   q    f32           [nHeads,   nQ,  headDim]
//   k, v f32|f16|bf16  [nKvHeads, nKv, headDim]
//   out  f32           [nHeads,   nQ,  headDim] (contiguous)
//   lse  f32           [nHeads,   nQ]           (optional, natural log)
//   key_mass f32       [nKvHeads, nKv]          (optional, overwritten)
// GQA: query head h reads KV head h / (nHeads / nKvHeads).
//
// Visibility of key position p to query i (all given rules must hold):
//   causal:  p <= nKv - nQ + i
//   mask:    bool_mask[i * nKv + p] != 0, or additive_mask[i * nKv + p] > -inf
//   tree:    p < nKv - nQ, or p - (nKv - nQ) is i or an ancestor of i
//   indices: only positions listed in indices[kvHead * nSel + s] take part
// Logits: s = (q . k) * scale, then softcap * tanh(s / softcap) if softcap > 0,
// then + additive_mask. A query that sees no key gets a zero row and lse -inf.
// key_mass[kvHead][p] = sum over the queries and the query heads of the group
// of softmax(s)[p].
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "../core/status.h"

namespace tp {

// Most nodes a treeMask may have (its ancestor table takes nQ^2 bytes).
constexpr int64_t kMaxTreeNodes = 4096;

struct AttentionParams {
  int64_t n_heads = 0, n_kv_heads = 0, n_q = 0, n_kv = 0, head_dim = 0;

  const float* q = nullptr;
  int64_t q_head_stride = 0, q_row_stride = 0;  // in elements
  const void* k = nullptr;
  DType k_dtype = DType::F32;
  int64_t k_head_stride = 0, k_row_stride = 0;
  const void* v = nullptr;
  DType v_dtype = DType::F32;
  int64_t v_head_stride = 0, v_row_stride = 0;

  float scale = 1.0f;
  float softcap = 0.0f;  // 0: off
  bool causal = false;
  const uint8_t* bool_mask = nullptr;    // [nQ, nKv]
  const float* additive_mask = nullptr;  // [nQ, nKv]
  const int32_t* tree_parents = nullptr; // [nQ], parent < i or -1
  const int32_t* indices = nullptr;      // [nKvHeads, nSel], each in [0, nKv)
  int64_t n_sel = 0;

  float* out = nullptr;
  float* lse = nullptr;
  float* key_mass = nullptr;

  // Per-KV-head base pointers (internal callers such as the KV cache, whose
  // heads live in separate buffers): when set, K / V row (h, pos) is at
  // k_heads[h] + pos * k_row_stride (head strides unused), and k_len / v_len
  // count the elements of each head's buffer. k / v must still be non-null.
  const void* const* k_heads = nullptr;
  const void* const* v_heads = nullptr;

  // Element counts of the buffers above, as the caller received them; the
  // validator proves every access stays inside them. 0 for absent buffers.
  int64_t q_len = 0, k_len = 0, v_len = 0, out_len = 0, lse_len = 0, key_mass_len = 0;
  int64_t mask_len = 0, tree_len = 0, indices_len = 0;
};

// Checks the invariants memory safety depends on (sizes, index ranges, tree
// shape). The binding calls it before touching any buffer.
Status validate_attention(const AttentionParams& p);

// Runs attention on the shared thread pool with the active ISA.
Status run_attention(const AttentionParams& p);

}  // namespace tp
