// Token-level correlation-guided compression (tokencorr.h). The n x n key
// cosine matrix is tp::reduce::dot_matrix on normalised keys, computed in
// blocks of 256 rows so memory stays O(256 n).
#include "tokencorr.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kmeans.h"  // Mulberry32
#include "similarity.h"

namespace tp::reduce {

double percentile_linear(const float* v, int64_t n, double q) {
  std::vector<double> s(v, v + n);
  std::sort(s.begin(), s.end());
  const double pos = q * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  const int64_t hi = std::min(lo + 1, n - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - static_cast<double>(lo));
}

Status tokencorr_frame(const float* keys, int64_t n, int64_t dk, const float* deep, const float* shallow, const TokenCorrOptions& opt,
                       uint8_t* keep, int64_t* kept, int64_t* repetitive) {
  *kept = 0;
  *repetitive = 0;
  if (n <= 0) return Status::ok();
  std::fill(keep, keep + n, 0);
  // 1. repetitiveness.
  std::vector<float> kn(static_cast<size_t>(n) * dk);
  l2_normalize_rows(keys, n, dk, kn.data());
  constexpr int64_t kBlock = 256;
  std::vector<float> sim(static_cast<size_t>(std::min(n, kBlock)) * n);
  const float thr = static_cast<float>(opt.sim_threshold);
  int64_t rep = 0;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t rows = std::min(kBlock, n - i0);
    dot_matrix(kn.data() + i0 * dk, rows, kn.data(), n, dk, sim.data());
    for (int64_t r = 0; r < rows; r++) {
      int64_t c = 0;
      const float* row = sim.data() + r * n;
      for (int64_t j = 0; j < n; j++) c += (j != i0 + r && row[j] > thr) ? 1 : 0;
      if (c >= opt.count_limit) rep++;
    }
  }
  *repetitive = rep;
  const double density = 1.0 - static_cast<double>(rep) / static_cast<double>(n);
  const int64_t budget = std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(n) * density)));
  // 2. global branch: IQR outliers of the deep attention, top first.
  const double q1 = percentile_linear(deep, n, 0.25), q3 = percentile_linear(deep, n, 0.75);
  const double fence = q3 + opt.iqr_factor * (q3 - q1);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < n; i++)
    if (static_cast<double>(deep[i]) > fence) out.push_back(i);
  std::sort(out.begin(), out.end(), [&](int64_t a, int64_t b) { return deep[a] > deep[b] || (deep[a] == deep[b] && a < b); });
  int64_t taken = 0;
  for (int64_t i : out) {
    if (taken == budget) break;
    keep[i] = 1;
    taken++;
  }
  // 3. local branch: weighted draws without replacement by the shallow attention.
  Mulberry32 rng(opt.seed);
  std::vector<double> w(n);
  for (int64_t i = 0; i < n; i++) w[i] = keep[i] ? 0.0 : std::max(0.0, static_cast<double>(shallow[i]));
  while (taken < budget) {
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += w[i];
    const bool flat = !(total > 0);
    if (flat) {
      total = 0;
      for (int64_t i = 0; i < n; i++) total += keep[i] ? 0.0 : 1.0;
    }
    const double target = rng.next() * total;
    double acc = 0;
    int64_t pick = -1;
    for (int64_t i = 0; i < n; i++) {
      if (keep[i]) continue;
      acc += flat ? 1.0 : w[i];
      pick = i;  // the last candidate when rounding leaves acc <= target
      if (acc > target) break;
    }
    if (pick < 0) break;
    keep[pick] = 1;
    w[pick] = 0;
    taken++;
  }
  *kept = taken;
  return Status::ok();
}

}  // namespace tp::reduce
