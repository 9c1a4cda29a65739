// ToMe: bipartite soft matching and size-weighted merging of visual tokens.
// Follows facebookresearch/ToMe tome/merge.py (bipartite_soft_matching,
// merge_wavg, merge_source) for one merge step; schedules (tome/utils.py
// parse_r) and the multi-layer driver live in lib/vision/tome.ts.
//
// One step on each frame of x f32 [t, n, d]:
//   metric rows (x itself, or a separate metric f32 [t, n, dm]) are L2-normalised;
//   A = even positions (na = ceil(n/2)), B = odd positions (nb = floor(n/2));
//   score[a, b] = cos(A_a, B_b) (tp::reduce::dot_matrix); each A token's best B
//   partner (lowest b on ties); with class_token, A_0 (token 0) scores -inf;
//   A tokens ranked by best score, descending (stable: lower a first on ties);
//   the first r are merged into their partners, the rest stay ("unmerged").
//   Output rows (m = n - r): [unmerged A in rank order (ascending position
//   order with class_token, as the official code sorts them), then all B].
//   Merged row = sum(s_i x_i) / sum(s_i) over the B token and the A tokens
//   merged into it; sizes add. assignment[i] = output row of source i.
// r is clipped to floor((n - protected) / 2), protected = class_token ? 1 : 0.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// The r the official code applies: min(r, floor((n - protected) / 2)), >= 0.
int64_t tome_effective_r(int64_t n, int64_t r, bool class_token);

struct TomeParams {
  const float* x = nullptr;       // [t, n, d]
  const float* metric = nullptr;  // [t, n, dm], or nullptr: x is the metric
  const float* sizes = nullptr;   // [t, n] (each > 0), or nullptr: all 1
  int64_t t = 1, n = 0, d = 0, dm = 0;
  int64_t r = 0;  // requested merges per frame (clipped as above)
  bool class_token = false;
  // > 0 and < the metric width: match on a CountSketch of the metric to this
  // width (tome_sketch_slot) instead of the full metric, an option for speed
  // (one pass to sketch, then the similarity at the sketch width).
  int64_t sketch_dim = 0;
  float* out_x = nullptr;         // [t, m, d], m = n - tome_effective_r(n, r)
  float* out_sizes = nullptr;     // [t, m]
  int32_t* assignment = nullptr;  // [t, n]
};

// Runs one ToMe step on every frame. Threads over frames when t > 1 (each
// frame's similarity single-threaded), over the rows of the similarity when
// t == 1. Returns invalid for bad shapes; never aborts.
Status tome_merge(const TomeParams& p);

// The CountSketch slot of metric column k: bucket in [0, sketch_dim) and sign
// (+1 / -1) from a fixed 32-bit mix of k (lib/vision/reference/tome.ts repeats it).
inline void tome_sketch_slot(uint32_t k, uint32_t sketch_dim, uint32_t* bucket, float* sign) {
  uint32_t h = k * 0x9E3779B1u;
  h ^= h >> 15;
  h *= 0x85EBCA77u;
  h ^= h >> 13;
  h *= 0xC2B2AE3Du;
  h ^= h >> 16;
  *bucket = (h & 0x7FFFFFFFu) % sketch_dim;
  *sign = (h >> 31) ? -1.0f : 1.0f;
}

// Pure per-frame pieces (shared with the CUDA port): the best B partner of
// each A row of a score matrix [na, nb] and the stable descending ranking.
void tome_best_partner(const float* scores, int64_t na, int64_t nb, bool class_token, float* node_max, int32_t* node_idx);
void tome_rank(const float* node_max, int64_t na, int32_t* order);

}  // namespace tp::reduce
