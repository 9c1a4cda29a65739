// Row normalisation and dot-product matrices for the reduction operators
// (similarity.h). The inner kernel is text::omp_dots (native/text/omp_dots.cpp:
// a thin GEMM with an AVX2 + FMA 4x3 register tile, chosen at run time);
// this file adds the threading over row blocks.
#include "similarity.h"

#include <cmath>

#include "../core/thread_pool.h"
#include "../text/omp.h"

namespace tp::reduce {

void l2_normalize_rows(const float* x, int64_t n, int64_t d, float* out) {
  for (int64_t i = 0; i < n; i++) {
    const float* row = x + i * d;
    double ss = 0;
    for (int64_t k = 0; k < d; k++) ss += static_cast<double>(row[k]) * row[k];
    const double inv = ss > 0 ? 1.0 / std::sqrt(ss) : 0.0;
    float* o = out + i * d;
    for (int64_t k = 0; k < d; k++) o[k] = static_cast<float>(row[k] * inv);
  }
}

namespace {

constexpr int64_t kRowsPerTask = 16;

struct DotJob {
  const float* a;
  int64_t na;
  const float* b;
  int64_t nb;
  int64_t d;
  float* out;
};

// One task: rows [i0, i0 + 16) of a against every row of b.
void dot_block(void* ctx, int64_t task, int /*worker*/) {
  const DotJob& j = *static_cast<const DotJob*>(ctx);
  const int64_t i0 = task * kRowsPerTask;
  const int64_t i1 = i0 + kRowsPerTask < j.na ? i0 + kRowsPerTask : j.na;
  const float* vecs[kRowsPerTask];
  float* outs[kRowsPerTask];
  const int n = static_cast<int>(i1 - i0);
  for (int v = 0; v < n; v++) {
    vecs[v] = j.a + (i0 + v) * j.d;
    outs[v] = j.out + (i0 + v) * j.nb;
  }
  text::omp_dots(j.b, j.nb, j.d, vecs, n, outs);
}

}  // namespace

void dot_matrix(const float* a, int64_t na, const float* b, int64_t nb, int64_t d, float* out) {
  if (na <= 0 || nb <= 0) return;
  if (d == 0) {
    for (int64_t i = 0; i < na * nb; i++) out[i] = 0.0f;
    return;
  }
  DotJob job{a, na, b, nb, d, out};
  const int64_t tasks = (na + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool& pool = ThreadPool::instance();
  pool.parallel_for(tasks, &dot_block, &job, pool.size());
}

}  // namespace tp::reduce
