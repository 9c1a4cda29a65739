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
// Cost: the n x n cosine matrix (gram_symmetric: the upper half of
// tp::reduce::dot_matrix's work, O(n^2 d / 2)) and the
// greedy O(keep * n). The first pick needs every token's nearest-neighbour
// distance, so the whole matrix is needed by the exact rule; computing the
// greedy's columns lazily would save memory only (docs/vision-select.md).
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::reduce {

// x x^T [n, n] for row-major x [n, d]: the upper triangle through
// text::omp_dots (the kernel under dot_matrix), mirrored: half of
// dot_matrix(x, n, x, n, d) and exactly symmetric. Threaded (the pool).
void gram_symmetric(const float* x, int64_t n, int64_t d, float* out);

// Greedy on a precomputed similarity matrix sim [n, n] (cosines; distance
// is 1 - sim). picks: keep entries, in PICK order. min_dist: n floats of
// scratch. selected: n bytes of scratch. keep <= n.
void divprune_greedy(const float* sim, int64_t n, int64_t keep, int32_t* picks, float* min_dist, uint8_t* selected);

// r [p, d]: the fixed random Gaussian projection of the metric_dim option
// (splitmix64, seed 0x5eed..., Box-Muller): the same matrix on every call.
void divprune_projection(int64_t p, int64_t d, float* r);

// x [t, n, d] -> out [t, keep] ascending per frame. Threads inside each
// frame's similarity matrix (the pool); frames run one after the other
// (the n x n matrix is the memory: one frame at a time). metric_dim > 0:
// an APPROXIMATION, the cosines of the normalised rows projected to
// metric_dim dimensions by divprune_projection (cost n d p + n^2 p / 2
// instead of n^2 d / 2); 0 (the default) is the exact rule.
Status divprune(const float* x, int64_t t, int64_t n, int64_t d, int64_t keep, int32_t* out, int64_t metric_dim = 0);

}  // namespace tp::reduce
