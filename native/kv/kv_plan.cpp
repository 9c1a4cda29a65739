#include "kv_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kv_dots.h"
#include "kv_topk.h"

namespace tp::kv {

int64_t uniform_keep(const CompressRequest& r, int64_t n) {
  if (r.keep >= 0) return std::min(r.keep, n);
  return n - static_cast<int64_t>(std::floor(static_cast<double>(n) * r.ratio));
}

int64_t pyramid_keep(int64_t n, int64_t target, int64_t window, double beta, int64_t layer, int64_t n_layers) {
  if (n_layers < 2 || target >= n) return std::min(target, n);
  const double t = static_cast<double>(target);
  double min_num = t / beta;
  double max_num = 2.0 * t - min_num;
  if (max_num >= static_cast<double>(n - window)) {
    max_num = static_cast<double>(n - window);
    min_num = 2.0 * t - max_num;
  }
  if (!(static_cast<double>(n) >= max_num && max_num >= min_num && min_num >= static_cast<double>(window))) return target;
  const double steps = (max_num - min_num) / static_cast<double>(n_layers - 1);
  const int64_t k = static_cast<int64_t>(std::nearbyint(max_num - static_cast<double>(layer) * steps));
  return std::clamp<int64_t>(k, 1, n);
}

void adakv_counts(const std::vector<const float*>& scores, const std::vector<int64_t>& lens,
                  const std::vector<int64_t>& keep, double alpha, std::vector<int64_t>& counts) {
  const size_t heads = scores.size();
  counts.assign(heads, 0);
  int64_t budget = 0, total = 0;
  for (size_t h = 0; h < heads; ++h) total += lens[h];
  // Every token's score, head after head (the position order breaks ties:
  // the lower head, then the earlier row); protected ones get +max.
  std::vector<float> all(static_cast<size_t>(total));
  std::vector<uint32_t> keys;
  int64_t at = 0;
  for (size_t h = 0; h < heads; ++h) {
    const int64_t n = lens[h];
    const int64_t s = std::min(static_cast<int64_t>(static_cast<double>(keep[h]) * alpha), n);
    budget += keep[h];
    const float* sc = scores[h];
    const TopK top = top_k(sc, n, s, keys);
    int64_t ties = top.ties;
    for (int64_t r = 0; r < n; ++r) {
      all[static_cast<size_t>(at + r)] = top.keeps(keys[static_cast<size_t>(r)], ties) ? std::numeric_limits<float>::max() : sc[r];
    }
    at += n;
  }
  budget = std::min(budget, total);
  const TopK top = top_k(all.data(), total, budget, keys);
  int64_t ties = top.ties;
  at = 0;
  for (size_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < lens[h]; ++r) counts[h] += top.keeps(keys[static_cast<size_t>(at + r)], ties) ? 1 : 0;
    at += lens[h];
  }
}

Status select_rows(const float* scores, int64_t n, int64_t keep, HeadPlan& plan) {
  for (int64_t r = 0; r < n; ++r) {
    if (std::isnan(scores[r])) return Status::invalid("scores: expected numbers, received NaN at row " + std::to_string(r));
  }
  keep = std::clamp<int64_t>(keep, 0, n);
  std::vector<uint32_t> keys;
  const TopK top = top_k(scores, n, keep, keys);
  int64_t ties = top.ties;
  plan.keep.clear();
  plan.evicted.clear();
  plan.keep.reserve(static_cast<size_t>(keep));
  plan.evicted.reserve(static_cast<size_t>(n - keep));
  for (int64_t r = 0; r < n; ++r) (top.keeps(keys[static_cast<size_t>(r)], ties) ? plan.keep : plan.evicted).push_back(static_cast<int32_t>(r));
  plan.target.assign(plan.evicted.size(), -1);
  return Status::ok();
}

void nearest_targets(const float* k, int64_t head_dim, double threshold, HeadPlan& plan) {
  plan.target.assign(plan.evicted.size(), -1);
  if (plan.keep.empty() || plan.evicted.empty()) return;
  // Kept keys transposed (vector lanes of the dots kernel), and 1 / their norm.
  const int64_t n_keep = static_cast<int64_t>(plan.keep.size());
  const int64_t ld = (n_keep + kDotsRowAlign - 1) / kDotsRowAlign * kDotsRowAlign;
  std::vector<float> qt(static_cast<size_t>(head_dim * ld), 0.0f), inv_norm(static_cast<size_t>(ld), 0.0f);
  for (int64_t j = 0; j < n_keep; ++j) {
    const float* a = k + static_cast<int64_t>(plan.keep[j]) * head_dim;
    double s = 0;
    for (int64_t c = 0; c < head_dim; ++c) {
      s += static_cast<double>(a[c]) * a[c];
      qt[static_cast<size_t>(c * ld + j)] = a[c];
    }
    inv_norm[static_cast<size_t>(j)] = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
  }
  const size_t ne = plan.evicted.size();
  std::vector<int32_t> best(ne);
  std::vector<float> best_dot(ne);
  NearestPlan np;
  np.head_dim = head_dim;
  np.n_rows_pad = ld;
  np.n_keep = n_keep;
  np.n_evicted = static_cast<int64_t>(ne);
  np.k = k;
  np.evicted = plan.evicted.data();
  np.qt = qt.data();
  np.inv_norm = inv_norm.data();
  np.best = best.data();
  np.best_dot = best_dot.data();
  run_nearest(np);  // x's own norm does not change the argmax
  for (size_t e = 0; e < ne; ++e) {
    const float* x = k + static_cast<int64_t>(plan.evicted[e]) * head_dim;
    double xx = 0;
    for (int64_t c = 0; c < head_dim; ++c) xx += static_cast<double>(x[c]) * x[c];
    const double cos = xx > 0 ? best_dot[e] / std::sqrt(xx) : 0.0;
    plan.target[e] = cos >= threshold ? best[e] : -1;
  }
}

}  // namespace tp::kv
