// LLaVolta 1-D average pooling (pool.h). Official: Beckschen/LLaVolta
// llava/model/language_model/llava_llama.py visual_avg_pool1d.
#include "pool.h"

#include <cmath>

#include "../core/thread_pool.h"

namespace tp::reduce {
namespace {

void pool_frame(const PoolParams& p, int64_t f) {
  const int64_t s = p.stride, m = p.n / s, d = p.d;
  const float* x = p.x + f * p.n * d;
  float* out = p.out_x + f * m * d;
  const float inv = 1.0f / static_cast<float>(s);
  for (int64_t i = 0; i < m; i++) {
    float* o = out + i * d;
    const float* x0 = x + i * s * d;
    for (int64_t k = 0; k < d; k++) o[k] = x0[k];
    for (int64_t j = 1; j < s; j++) {
      const float* xj = x0 + j * d;
      for (int64_t k = 0; k < d; k++) o[k] += xj[k];
    }
    for (int64_t k = 0; k < d; k++) o[k] *= inv;
    double size = 0, pos = 0;
    for (int64_t j = 0; j < s; j++) {
      size += p.sizes ? p.sizes[f * p.n + i * s + j] : 1.0;
      if (p.positions) pos += p.positions[f * p.n + i * s + j];
    }
    p.out_sizes[f * m + i] = static_cast<float>(size);
    if (p.positions) p.out_positions[f * m + i] = static_cast<int32_t>(std::trunc(pos / static_cast<double>(s)));
  }
  for (int64_t j = 0; j < p.n; j++) p.assignment[f * p.n + j] = j < m * s ? static_cast<int32_t>(j / s) : -1;
}

void pool_task(void* ctx, int64_t f, int /*worker*/) { pool_frame(*static_cast<const PoolParams*>(ctx), f); }

// One frame, threaded over blocks of output rows (a copy of p restricted to rows).
struct RowJob {
  const PoolParams* p;
  int64_t rows_per_task;
};

void row_task(void* ctx, int64_t task, int /*worker*/) {
  const RowJob& j = *static_cast<const RowJob*>(ctx);
  const PoolParams& p = *j.p;
  const int64_t m = p.n / p.stride;
  const int64_t i0 = task * j.rows_per_task, i1 = i0 + j.rows_per_task < m ? i0 + j.rows_per_task : m;
  PoolParams q = p;
  q.n = (i1 - i0) * p.stride;
  q.x = p.x + i0 * p.stride * p.d;
  q.sizes = p.sizes ? p.sizes + i0 * p.stride : nullptr;
  q.positions = p.positions ? p.positions + i0 * p.stride : nullptr;
  q.out_x = p.out_x + i0 * p.d;
  q.out_sizes = p.out_sizes + i0;
  q.out_positions = p.out_positions ? p.out_positions + i0 : nullptr;
  q.assignment = p.assignment + i0 * p.stride;
  pool_frame(q, 0);
  // pool_frame wrote local row numbers: shift them to the frame's.
  for (int64_t k = 0; k < q.n; k++) q.assignment[k] += static_cast<int32_t>(i0);
}

}  // namespace

Status avg_pool_tokens(const PoolParams& p) {
  if (p.t < 0 || p.n < 0 || p.d < 0) return Status::invalid("pool: expected t, n, d >= 0");
  if (p.stride < 1) return Status::invalid("pool: expected stride >= 1");
  if (p.n > INT32_MAX) return Status::invalid("pool: expected n < 2^31");
  if (p.t == 0 || p.n == 0) return Status::ok();
  if (!p.x || !p.out_sizes || !p.assignment || (p.positions && !p.out_positions)) return Status::invalid("pool: missing buffers");
  ThreadPool& pool = ThreadPool::instance();
  if (p.t > 1) {
    pool.parallel_for(p.t, &pool_task, const_cast<PoolParams*>(&p), pool.size());
    return Status::ok();
  }
  const int64_t m = p.n / p.stride;
  for (int64_t j = m * p.stride; j < p.n; j++) p.assignment[j] = -1;
  if (m == 0) return Status::ok();
  RowJob job{&p, 64};
  pool.parallel_for((m + 63) / 64, &row_task, &job, pool.size());
  return Status::ok();
}

}  // namespace tp::reduce
