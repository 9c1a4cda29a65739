// ToMe bipartite soft matching + merge_wavg (tome.h). Official rule:
// facebookresearch/ToMe tome/merge.py; see docs/vision-tome.md for where we differ.
#include "tome.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "../core/thread_pool.h"
#include "similarity.h"

namespace tp::reduce {

int64_t tome_effective_r(int64_t n, int64_t r, bool class_token) {
  const int64_t prot = class_token ? 1 : 0;
  const int64_t cap = n - prot > 0 ? (n - prot) / 2 : 0;
  if (r < 0) return 0;
  return r < cap ? r : cap;
}

void tome_best_partner(const float* scores, int64_t na, int64_t nb, bool class_token, float* node_max, int32_t* node_idx) {
  for (int64_t a = 0; a < na; a++) {
    const float* row = scores + a * nb;
    float best = -std::numeric_limits<float>::infinity();
    int32_t arg = 0;
    for (int64_t b = 0; b < nb; b++) {
      if (row[b] > best) {
        best = row[b];
        arg = static_cast<int32_t>(b);
      }
    }
    node_max[a] = best;
    node_idx[a] = arg;
  }
  if (class_token && na > 0) {
    node_max[0] = -std::numeric_limits<float>::infinity();
    node_idx[0] = 0;
  }
}

void tome_rank(const float* node_max, int64_t na, int32_t* order) {
  std::iota(order, order + na, 0);
  std::stable_sort(order, order + na, [node_max](int32_t i, int32_t j) { return node_max[i] > node_max[j]; });
}

namespace {

// One frame: x [n, d], metric [n, dm], sizes [n] or null -> out_x [m, d], out_sizes [m], assignment [n].
void tome_frame(const float* x, const float* metric, int64_t dm, const float* sizes, int64_t n, int64_t d, int64_t r, bool class_token,
                int64_t sketch, float* out_x, float* out_sizes, int32_t* assign) {
  const int64_t na = (n + 1) / 2, nb = n / 2, m = n - r;
  if (r == 0) {
    // Nothing merged (the official code returns the input unchanged).
    std::copy(x, x + n * d, out_x);
    for (int64_t i = 0; i < n; i++) {
      out_sizes[i] = sizes ? sizes[i] : 1.0f;
      assign[i] = static_cast<int32_t>(i);
    }
    return;
  }
  // Normalised A (even) and B (odd) metric rows, then their cosine matrix.
  std::vector<float> sketched;
  if (sketch > 0 && sketch < dm) {
    // CountSketch of every metric row to `sketch` columns (one pass).
    std::vector<uint32_t> bucket(dm);
    std::vector<float> sign(dm);
    for (int64_t k = 0; k < dm; k++) tome_sketch_slot(static_cast<uint32_t>(k), static_cast<uint32_t>(sketch), &bucket[k], &sign[k]);
    sketched.assign(n * sketch, 0.0f);
    for (int64_t i = 0; i < n; i++) {
      const float* row = metric + i * dm;
      float* o = sketched.data() + i * sketch;
      for (int64_t k = 0; k < dm; k++) o[bucket[k]] += sign[k] * row[k];
    }
    metric = sketched.data();
    dm = sketch;
  }
  std::vector<float> an(na * dm), bn(nb * dm), scores(na * nb);
  for (int64_t a = 0; a < na; a++) std::copy(metric + 2 * a * dm, metric + (2 * a + 1) * dm, an.data() + a * dm);
  for (int64_t b = 0; b < nb; b++) std::copy(metric + (2 * b + 1) * dm, metric + (2 * b + 2) * dm, bn.data() + b * dm);
  l2_normalize_rows(an.data(), na, dm, an.data());
  l2_normalize_rows(bn.data(), nb, dm, bn.data());
  dot_matrix(an.data(), na, bn.data(), nb, dm, scores.data());
  std::vector<float> node_max(na);
  std::vector<int32_t> node_idx(na), order(na);
  tome_best_partner(scores.data(), na, nb, class_token, node_max.data(), node_idx.data());
  tome_rank(node_max.data(), na, order.data());
  // Unmerged A rows, in rank order (ascending with class_token, as the official sort).
  const int64_t nu = na - r;
  std::vector<int32_t> unm(order.begin() + r, order.end());
  if (class_token) std::sort(unm.begin(), unm.end());
  auto sz = [sizes](int64_t i) -> float { return sizes ? sizes[i] : 1.0f; };
  for (int64_t u = 0; u < nu; u++) {
    const int64_t src = 2 * static_cast<int64_t>(unm[u]);
    std::copy(x + src * d, x + (src + 1) * d, out_x + u * d);
    out_sizes[u] = sz(src);
    assign[src] = static_cast<int32_t>(u);
  }
  // B rows: size-weighted sums, then divided by the summed size.
  for (int64_t b = 0; b < nb; b++) {
    const int64_t src = 2 * b + 1;
    const float s = sz(src);
    float* o = out_x + (nu + b) * d;
    const float* xi = x + src * d;
    for (int64_t k = 0; k < d; k++) o[k] = s * xi[k];
    out_sizes[nu + b] = s;
    assign[src] = static_cast<int32_t>(nu + b);
  }
  for (int64_t e = 0; e < r; e++) {
    const int32_t a = order[e];
    const int64_t src = 2 * static_cast<int64_t>(a);
    const int64_t row = nu + node_idx[a];
    const float s = sz(src);
    float* o = out_x + row * d;
    const float* xi = x + src * d;
    for (int64_t k = 0; k < d; k++) o[k] += s * xi[k];
    out_sizes[row] += s;
    assign[src] = static_cast<int32_t>(row);
  }
  for (int64_t b = 0; b < nb; b++) {
    const float inv = 1.0f / out_sizes[nu + b];
    float* o = out_x + (nu + b) * d;
    for (int64_t k = 0; k < d; k++) o[k] *= inv;
  }
  (void)m;
}

struct FrameJob {
  const TomeParams* p;
  int64_t r, m;
};

void frame_task(void* ctx, int64_t f, int /*worker*/) {
  const FrameJob& j = *static_cast<const FrameJob*>(ctx);
  const TomeParams& p = *j.p;
  const float* metric = p.metric ? p.metric + f * p.n * p.dm : p.x + f * p.n * p.d;
  const int64_t dm = p.metric ? p.dm : p.d;
  tome_frame(p.x + f * p.n * p.d, metric, dm, p.sizes ? p.sizes + f * p.n : nullptr, p.n, p.d, j.r, p.class_token, p.sketch_dim, p.out_x + f * j.m * p.d,
             p.out_sizes + f * j.m, p.assignment + f * p.n);
}

}  // namespace

Status tome_merge(const TomeParams& p) {
  if (p.t < 0 || p.n < 0 || p.d < 0 || p.dm < 0) return Status::invalid("tome: expected t, n, d, dm >= 0");
  if (p.n > INT32_MAX) return Status::invalid("tome: expected n < 2^31");
  if (p.t == 0 || p.n == 0) return Status::ok();
  if (!p.x || !p.out_x || !p.out_sizes || !p.assignment) return Status::invalid("tome: x and the outputs are required");
  if (p.metric && p.dm < 1) return Status::invalid("tome: a metric needs dm >= 1");
  if (p.sketch_dim < 0 || p.sketch_dim > UINT32_MAX / 2) return Status::invalid("tome: expected sketchDim in [0, 2^31)");
  const int64_t r = tome_effective_r(p.n, p.r, p.class_token);
  FrameJob job{&p, r, p.n - r};
  // Frames in parallel; a frame's own dot_matrix then runs inline (nested
  // parallel_for), so a single frame gets the pool through dot_matrix instead.
  if (p.t == 1) {
    frame_task(&job, 0, 0);
  } else {
    ThreadPool& pool = ThreadPool::instance();
    pool.parallel_for(p.t, &frame_task, &job, pool.size());
  }
  return Status::ok();
}

}  // namespace tp::reduce
