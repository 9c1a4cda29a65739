// DivPrune: greedy max-min diversity subset of visual tokens (issue 19).
// Official: vbdi/divprune, LLaVA/llava/model/llava_arch.py (`DivPrune`).
//
// Per frame, tokens x [n, d] -> keep indices (ascending). Distance
// d_ij = 1 - cos(x_i, x_j). First pick: the token whose nearest OTHER token
// is farthest (the official second-smallest entry of its column, the
// smallest being its own 0). Then repeatedly the unselected token whose
// minimum distance to the selected set is largest. Ties go to the lower
// index (torch.argmax). Budget: keep = round(ratio * n), ratio 0.098.
//
// Cost: the n x n cosine matrix (tp::reduce::dot_matrix, O(n^2 d)) and the
// greedy O(keep * n). The first pick needs every token's nearest-neighbour
// distance, so the whole matrix is needed by the exact rule; computing the
// greedy's columns lazily would save memory only (docs/vision-select.md).
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// Greedy on a precomputed similarity matrix sim [n, n] (cosines; distance
// is 1 - sim). picks: keep entries, in PICK order. min_dist: n floats of
// scratch. selected: n bytes of scratch. keep <= n.
void divprune_greedy(const float* sim, int64_t n, int64_t keep, int32_t* picks, float* min_dist, uint8_t* selected);

// x [t, n, d] -> out [t, keep] ascending per frame. Threads inside each
// frame's similarity matrix (the pool); frames run one after the other
// (the n x n matrix is the memory: one frame at a time).
Status divprune(const float* x, int64_t t, int64_t n, int64_t d, int64_t keep, int32_t* out);

}  // namespace tp::reduce
