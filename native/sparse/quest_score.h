// Quest page scoring: the page bound as a dot product (quest_score.cpp).
//
// For a page with element-wise key bounds lo <= hi (finite) and a query row q:
//   bound = sum_c max(q[c] * hi[c], q[c] * lo[c])
//         = dot(hi, max(q, 0)) + dot(lo, min(q, 0))
// (q[c] >= 0 picks hi[c], q[c] < 0 picks lo[c]; the other term is an exact
// zero). So scoring every page is a matrix-vector product over the summary
// rows: they stream once at memory speed, with no per-channel max. GQA 'sum'
// adds the group's rows first, A = sum_r max(q_r, 0) and B = sum_r min(q_r,
// 0) (row order), and scores each page with one (A, B) pair; 'max' keeps
// one pair per row and takes the largest of the rows' bounds (row order,
// std::max). The weights are "pairs" [nPairs, 2, d]: A then B.
//
// One canonical summation order, so that the scalar, AVX2 and AVX-512 paths
// give the same bits and a selection does not depend on the machine: 16
// lanes; lane j accumulates the channels c = j, j + 16, j + 32, ... in
// ascending order as acc = fma(hi[c], A[c], acc), then acc = fma(lo[c],
// B[c], acc) (one rounding each); then the lanes reduce as l[j] += l[j + 8]
// (j < 8), l[j] += l[j + 4] (j < 4), l[j] += l[j + 2] (j < 2), l[0] += l[1].
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "quest.h"

namespace tp::sparse {

// Weight pairs for `rows` query rows combined by `gqa`: 1 for sum, rows for max.
inline int64_t bound_pairs(int64_t rows, GqaCombine gqa) { return gqa == GqaCombine::Sum ? 1 : rows; }

// ab [bound_pairs(rows, gqa), 2, d] from the query rows q[r][0..d).
void bound_weights(const float* const* q, int64_t rows, int64_t d, GqaCombine gqa, float* ab);

// One page from f32 bound rows, in the canonical order (pairs combined by
// gqa: max over the pairs, or the single pair's bound).
float bound_page_f32(const float* lo, const float* hi, const float* ab, int64_t pairs, int64_t d);

// Scores of pages [0, pages) of contiguous lo, hi [pages, d] rows of dtype t
// (f32 | f16 | bf16): the SIMD path where the machine has one (AVX-512 or
// AVX2 + FMA + F16C, d a multiple of 8), bit-identical to bound_page_f32.
// Long heads split over the thread pool (inline when called from a pool
// task).
void score_rows(const void* lo, const void* hi, DType t, int64_t pages, int64_t d, const float* ab, int64_t pairs, float* scores);

}  // namespace tp::sparse
