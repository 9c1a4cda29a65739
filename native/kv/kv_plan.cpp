#include "kv_plan.h"

#include <algorithm>
#include <cmath>
#include <limits>

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
  if (plan.keep.empty()) return;
  std::vector<float> inv_norm(plan.keep.size());
  for (size_t j = 0; j < plan.keep.size(); ++j) {
    const float* a = k + static_cast<int64_t>(plan.keep[j]) * head_dim;
    double s = 0;
    for (int64_t c = 0; c < head_dim; ++c) s += static_cast<double>(a[c]) * a[c];
    inv_norm[j] = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
  }
  for (size_t e = 0; e < plan.evicted.size(); ++e) {
    const float* x = k + static_cast<int64_t>(plan.evicted[e]) * head_dim;
    float best = -std::numeric_limits<float>::infinity();
    int32_t arg = 0;
    double xx = 0;
    for (int64_t c = 0; c < head_dim; ++c) xx += static_cast<double>(x[c]) * x[c];
    for (size_t j = 0; j < plan.keep.size(); ++j) {
      const float* a = k + static_cast<int64_t>(plan.keep[j]) * head_dim;
      // Eight independent partial sums: the compiler vectorizes this loop.
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t c = 0;
      for (; c + 8 <= head_dim; c += 8) {
        for (int j = 0; j < 8; ++j) part[j] += x[c + j] * a[c + j];
      }
      float dot = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      for (; c < head_dim; ++c) dot += x[c] * a[c];
      const float cos = dot * inv_norm[j];  // x's own norm does not change the argmax
      if (cos > best) {
        best = cos;
        arg = static_cast<int32_t>(j);
      }
    }
    const double cos = xx > 0 ? best / std::sqrt(xx) : 0.0;
    plan.target[e] = cos >= threshold ? arg : -1;
  }
}

}  // namespace tp::kv
