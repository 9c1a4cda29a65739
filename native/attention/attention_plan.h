// What every ISA variant of the attention kernel shares: the validated
// parameters plus derived facts, with raw pointers only (no STL) so the ISA
// translation units never instantiate library code under their own flags.
#pragma once
#include <cstdint>

#include "attention.h"

namespace tp {

// Decode path: keys per (KV head, chunk), and the most query rows per KV
// head (group * nQ) for which the decode path is used. Chunks are 256 keys,
// or 1024 when at most 8 rows share a KV head and there are still at least
// 32 chunks in all: K and V are then read in 4x longer runs (a core reads two
// streams faster in long bursts), with work left for every thread. The
// choice depends on the shapes only, never on the thread count.
constexpr int64_t kMaxChunk = 256;
constexpr int64_t kLongChunk = 1024;
constexpr int64_t kLongChunkMaxRows = 8;
constexpr int64_t kLongChunkMinChunks = 32;
constexpr int64_t kMaxDecodeRows = 32;

struct AttentionPlan {
  const AttentionParams* p = nullptr;
  int64_t group = 1;        // nHeads / nKvHeads
  int64_t n_keys = 0;       // keys each KV head attends over: nSel or nKv
  int64_t diag = 0;         // nKv - nQ: query i sits at key position diag + i
  bool any_mask = false;    // bool / additive mask or tree present
  const uint8_t* tree_visible = nullptr;  // [nQ][nQ]: tree node a visible to query i
  // Decode path: rows = group * nQ query rows per KV head, keys in chunks.
  bool decode = false;
  int64_t rows = 0;
  int64_t chunk = 0;
  int64_t n_chunks = 0;
};

// Key position of the s-th attended key of KV head kvh.
inline int64_t key_position(const AttentionPlan& plan, int64_t kvh, int64_t s) {
  const AttentionParams& p = *plan.p;
  return p.indices ? p.indices[kvh * p.n_sel + s] : s;
}

// Whether a mask (not the causal rule) can hide or bias a key at a position
// up to max_pos: a bool / additive mask anywhere, a tree only among the
// newest nQ keys (positions >= diag), so the tiles and chunks before a tree
// (a speculative step's committed context) skip the per-key checks.
inline bool mask_reaches(const AttentionPlan& plan, int64_t max_pos) {
  const AttentionParams& p = *plan.p;
  return p.bool_mask || p.additive_mask || (p.tree_parents && max_pos >= plan.diag);
}

// Whether query i may attend key position pos under causal / mask / tree, and
// the additive bias (0 without an additive mask). Returns -inf when masked.
inline float key_bias(const AttentionPlan& plan, int64_t i, int64_t pos) {
  const AttentionParams& p = *plan.p;
  constexpr float kNegInf = -__builtin_huge_valf();
  if (p.causal && pos > plan.diag + i) return kNegInf;
  if (p.bool_mask && !p.bool_mask[i * p.n_kv + pos]) return kNegInf;
  if (plan.tree_visible && pos >= plan.diag && !plan.tree_visible[i * p.n_q + (pos - plan.diag)]) return kNegInf;
  return p.additive_mask ? p.additive_mask[i * p.n_kv + pos] : 0.0f;
}

// ISA entry points (attention_scalar.cpp, attention_avx2.cpp, attention_avx512.cpp).
namespace attn_scalar { void run(const AttentionPlan& plan); }
namespace attn_avx2 { void run(const AttentionPlan& plan); }
namespace attn_avx512 { void run(const AttentionPlan& plan); }

}  // namespace tp
