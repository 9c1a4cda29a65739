// Shared primitives of the visual-token reduction operators (issue 19):
// row normalisation and the dot-product matrix of two row sets, the
// dominant cost of ToMe (N/2 x N/2 x D), DivPrune (N x N x D) and k-means
// (N x K x D). Every operator in native/reduce/ builds on these two, so there
// is one SIMD kernel to make fast (a cache-blocked AVX2 + FMA kernel).
//
// Shapes are row-major f32. Threads over blocks of rows of `a` through the
// shared pool (setThreads); results do not depend on the thread count (each
// output element is one dot product computed in a fixed order).
#pragma once
#include <cstdint>

namespace tp::reduce {

// out[i, :] = x[i, :] / ||x[i, :]||_2 (float64 norm); a zero row stays zero.
// x [n, d] -> out [n, d]; out may equal x (in place).
void l2_normalize_rows(const float* x, int64_t n, int64_t d, float* out);

// out[i * nb + j] = <a[i, :], b[j, :]> for a [na, d], b [nb, d] -> out [na, nb].
// a, b and out must not overlap out. With normalised rows this is the cosine
// similarity matrix. Cache-blocked (similarity.cpp); threads over blocks of
// 128 rows of a.
void dot_matrix(const float* a, int64_t na, const float* b, int64_t nb, int64_t d, float* out);

// The symmetric Gram matrix out = x x^T [n, n] for x [n, d]: half of
// dot_matrix(x, x)'s work (the upper block triangle, then mirrored), and
// out[i, j] == out[j, i] bit for bit. out must not overlap x.
void gram_matrix(const float* x, int64_t n, int64_t d, float* out);

}  // namespace tp::reduce
