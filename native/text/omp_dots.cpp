// Block dot products for batched OMP (omp.h): the correlations of a group of
// targets with every atom, and Gram columns of newly picked atoms. Both are
// a thin GEMM [n_vecs, dim] x [dim, n_rows], the dominant cost of OMP.
//
// The AVX2 micro-kernel holds a 4-row x 3-vector tile in 12 accumulators:
// per 8 floats of dim it does 7 loads for 12 FMAs, so it runs at the FMA
// rate, not the load rate. Rows are walked in chunks of 8 so that a chunk
// (8 * dim floats) stays in L2 while every vector passes over it; each row
// is read from memory once per call. The ISA is chosen at run time with a
// function attribute (no #pragma reaches the rest of the unity file).
#include <cstdint>

#include "../core/cpu_features.h"
#include "omp.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TP_OMP_X86 1
#endif

namespace tp::text {
namespace {

constexpr int64_t kOmpRowChunk = 8;

void dots_scalar(const float* rows, int64_t n_rows, int64_t dim, const float* const* vecs, int n_vecs, float* const* outs) {
  for (int64_t r = 0; r < n_rows; r++) {
    const float* a = rows + r * dim;
    for (int v = 0; v < n_vecs; v++) {
      const float* b = vecs[v];
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      int64_t d = 0;
      for (; d + 4 <= dim; d += 4) {
        s0 += a[d] * b[d];
        s1 += a[d + 1] * b[d + 1];
        s2 += a[d + 2] * b[d + 2];
        s3 += a[d + 3] * b[d + 3];
      }
      for (; d < dim; d++) s0 += a[d] * b[d];
      outs[v][r] = (s0 + s1) + (s2 + s3);
    }
  }
}

#if TP_OMP_X86
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 x) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Tail of dim past the last multiple of 8.
inline float dot_tail(const float* a, const float* b, int64_t from, int64_t dim) {
  float s = 0;
  for (int64_t d = from; d < dim; d++) s += a[d] * b[d];
  return s;
}

// R rows x V vecs tile (R <= 4, V <= 3), compile-time sizes so the
// accumulators stay in registers.
template <int R, int V>
__attribute__((target("avx2,fma"))) void tile_avx2(const float* rows, int64_t r0, int64_t dim, const float* const* vecs, int v0,
                                                   float* const* outs) {
  __m256 acc[R][V];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < V; j++) acc[i][j] = _mm256_setzero_ps();
  const float* a[R];
  for (int i = 0; i < R; i++) a[i] = rows + (r0 + i) * dim;
  const float* b[V];
  for (int j = 0; j < V; j++) b[j] = vecs[v0 + j];
  const int64_t d8 = dim & ~int64_t(7);
  for (int64_t d = 0; d < d8; d += 8) {
    __m256 bv[V];
    for (int j = 0; j < V; j++) bv[j] = _mm256_loadu_ps(b[j] + d);
    for (int i = 0; i < R; i++) {
      const __m256 av = _mm256_loadu_ps(a[i] + d);
      for (int j = 0; j < V; j++) acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
    }
  }
  for (int i = 0; i < R; i++)
    for (int j = 0; j < V; j++) outs[v0 + j][r0 + i] = hsum8(acc[i][j]) + dot_tail(a[i], b[j], d8, dim);
}

template <int R>
__attribute__((target("avx2,fma"))) void row_tile_avx2(const float* rows, int64_t r0, int64_t dim, const float* const* vecs, int n_vecs,
                                                       float* const* outs) {
  int v = 0;
  for (; v + 3 <= n_vecs; v += 3) tile_avx2<R, 3>(rows, r0, dim, vecs, v, outs);
  if (n_vecs - v == 2) tile_avx2<R, 2>(rows, r0, dim, vecs, v, outs);
  else if (n_vecs - v == 1) tile_avx2<R, 1>(rows, r0, dim, vecs, v, outs);
}

__attribute__((target("avx2,fma"))) void dots_avx2(const float* rows, int64_t n_rows, int64_t dim, const float* const* vecs, int n_vecs,
                                                   float* const* outs) {
  for (int64_t c0 = 0; c0 < n_rows; c0 += kOmpRowChunk) {
    const int64_t c1 = c0 + kOmpRowChunk < n_rows ? c0 + kOmpRowChunk : n_rows;
    int64_t r = c0;
    for (; r + 4 <= c1; r += 4) row_tile_avx2<4>(rows, r, dim, vecs, n_vecs, outs);
    for (; r < c1; r++) row_tile_avx2<1>(rows, r, dim, vecs, n_vecs, outs);
  }
}
#endif

}  // namespace

void omp_dots(const float* rows, int64_t n_rows, int64_t dim, const float* const* vecs, int n_vecs, float* const* outs) {
  if (n_rows <= 0 || n_vecs <= 0) return;
#if TP_OMP_X86
  if (active_isa() >= IsaLevel::Avx2) {
    dots_avx2(rows, n_rows, dim, vecs, n_vecs, outs);
    return;
  }
#endif
  dots_scalar(rows, n_rows, dim, vecs, n_vecs, outs);
}

}  // namespace tp::text
