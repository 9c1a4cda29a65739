// Token Transforming (transform.h): our reading of the paper, see the header
// and docs/vision-tome.md. Similarities through tp::reduce::dot_matrix.
#include "transform.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/thread_pool.h"
#include "similarity.h"

namespace tp::reduce {

void transform_column(const float* sim, int64_t m, int64_t stride, int64_t top_k, float tau, float* w) {
  const int64_t k = top_k < m ? top_k : m;
  // Selection of the k largest, lower index first on ties (k is small: insertion).
  std::vector<int64_t> pick;
  pick.reserve(static_cast<size_t>(k));
  for (int64_t i = 0; i < m; i++) {
    w[i * stride] = 0.0f;
    const float s = sim[i * stride];
    if (static_cast<int64_t>(pick.size()) < k) {
      auto pos = pick.end();
      while (pos != pick.begin() && sim[*(pos - 1) * stride] < s) --pos;
      pick.insert(pos, i);
    } else if (k > 0 && s > sim[pick.back() * stride]) {
      pick.pop_back();
      auto pos = pick.end();
      while (pos != pick.begin() && sim[*(pos - 1) * stride] < s) --pos;
      pick.insert(pos, i);
    }
  }
  if (pick.empty()) return;
  const double top = sim[pick.front() * stride];
  double total = 0;
  std::vector<double> e(pick.size());
  for (size_t q = 0; q < pick.size(); q++) {
    e[q] = std::exp((static_cast<double>(sim[pick[q] * stride]) - top) / tau);
    total += e[q];
  }
  for (size_t q = 0; q < pick.size(); q++) w[pick[q] * stride] = static_cast<float>(e[q] / total);
}

namespace {

void build_frame(const TransformBuildParams& p, int64_t f) {
  const int64_t m = p.m, n = p.n, d = p.d;
  const float* x = p.x + f * n * d;
  std::vector<float> tn(m * d), xn(n * d);
  for (int64_t i = 0; i < m; i++) {
    const int64_t src = p.targets[f * m + i];
    std::copy(x + src * d, x + (src + 1) * d, tn.data() + i * d);
  }
  l2_normalize_rows(tn.data(), m, d, tn.data());
  l2_normalize_rows(x, n, d, xn.data());
  float* w = p.out_w + f * m * n;
  std::vector<float> sim(m * n);
  dot_matrix(tn.data(), m, xn.data(), n, d, sim.data());
  for (int64_t j = 0; j < n; j++) transform_column(sim.data() + j, m, n, p.top_k, p.tau, w + j);
}

void build_task(void* ctx, int64_t f, int /*worker*/) { build_frame(*static_cast<const TransformBuildParams*>(ctx), f); }

void apply_rows(const TransformApplyParams& p, int64_t f, int64_t i0, int64_t i1) {
  const int64_t m = p.m, n = p.n, d = p.d;
  const float* w = p.w + f * m * n;
  const float* x = p.x + f * n * d;
  std::vector<double> acc(d);
  for (int64_t i = i0; i < i1; i++) {
    std::fill(acc.begin(), acc.end(), 0.0);
    double mass = 0;
    const float* wr = w + i * n;
    for (int64_t j = 0; j < n; j++) {
      if (wr[j] == 0.0f) continue;  // sparse W: only the nonzeros cost a row pass
      const double c = static_cast<double>(wr[j]) * (p.sizes ? p.sizes[f * n + j] : 1.0f);
      mass += c;
      const float* xj = x + j * d;
      for (int64_t k = 0; k < d; k++) acc[k] += c * xj[k];
    }
    float* o = p.out_x + (f * m + i) * d;
    const double inv = mass > 0 ? 1.0 / mass : 0.0;
    for (int64_t k = 0; k < d; k++) o[k] = static_cast<float>(acc[k] * inv);
    p.out_sizes[f * m + i] = static_cast<float>(mass);
  }
}

void assign_frame(const TransformApplyParams& p, int64_t f) {
  const float* w = p.w + f * p.m * p.n;
  for (int64_t j = 0; j < p.n; j++) {
    int32_t best = -1;
    float bw = 0.0f;
    for (int64_t i = 0; i < p.m; i++) {
      if (w[i * p.n + j] > bw) {
        bw = w[i * p.n + j];
        best = static_cast<int32_t>(i);
      }
    }
    p.assignment[f * p.n + j] = best;
  }
}

struct ApplyJob {
  const TransformApplyParams* p;
  int64_t blocks_per_frame, rows_per_block;
};

void apply_task(void* ctx, int64_t task, int /*worker*/) {
  const ApplyJob& j = *static_cast<const ApplyJob*>(ctx);
  const int64_t f = task / j.blocks_per_frame, b = task % j.blocks_per_frame;
  const int64_t i0 = b * j.rows_per_block, i1 = std::min(j.p->m, i0 + j.rows_per_block);
  apply_rows(*j.p, f, i0, i1);
  if (b == 0) assign_frame(*j.p, f);
}

}  // namespace

Status transform_build(const TransformBuildParams& p) {
  if (p.t < 0 || p.n < 0 || p.d < 0 || p.m < 0) return Status::invalid("transform: expected t, m, n, d >= 0");
  if (p.top_k < 1) return Status::invalid("transform: expected topK >= 1");
  if (!(p.tau > 0) || !std::isfinite(p.tau)) return Status::invalid("transform: expected a finite tau > 0");
  if (p.t == 0 || p.m == 0 || p.n == 0) return Status::ok();
  if (!p.x || !p.targets || !p.out_w) return Status::invalid("transform: missing buffers");
  for (int64_t i = 0; i < p.t * p.m; i++) {
    if (p.targets[i] < 0 || p.targets[i] >= p.n) return Status::invalid("targets: expected indices in [0, n)");
  }
  if (p.t == 1) {
    build_frame(p, 0);
  } else {
    ThreadPool& pool = ThreadPool::instance();
    pool.parallel_for(p.t, &build_task, const_cast<TransformBuildParams*>(&p), pool.size());
  }
  return Status::ok();
}

Status transform_apply(const TransformApplyParams& p) {
  if (p.t < 0 || p.n < 0 || p.d < 0 || p.m < 0) return Status::invalid("transform: expected t, m, n, d >= 0");
  if (p.t == 0) return Status::ok();
  if (p.m == 0) {
    for (int64_t i = 0; i < p.t * p.n; i++) p.assignment[i] = -1;
    return Status::ok();
  }
  if (!p.w || !p.out_sizes || !p.assignment || (p.n > 0 && !p.x)) return Status::invalid("transform: missing buffers");
  const int64_t rows = 16;
  ApplyJob job{&p, (p.m + rows - 1) / rows, rows};
  ThreadPool& pool = ThreadPool::instance();
  pool.parallel_for(p.t * job.blocks_per_frame, &apply_task, &job, pool.size());
  return Status::ok();
}

}  // namespace tp::reduce
