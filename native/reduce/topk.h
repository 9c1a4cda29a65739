// Top-k selection shared by the pruning operators (issue 19; docs/vision-select.md).
//
// The rule: the k largest scores win; equal scores rank the lower index
// first (the order torch.argmax / a stable descending sort give; torch.topk
// leaves ties unspecified); NaN ranks below every number (-inf included).
// Output: the k winning indices in ASCENDING index order (the spatial /
// sequence order the operators restore), or in rank order (topk_ranked).
// Header-only, no allocation beyond the caller's scratch: vis-cluster and
// vis-cuda read it. Per element logic is `ranks_before`.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace tp::reduce {

// Whether (a, ia) ranks before (b, ib): larger score first, NaN last, ties to the lower index.
inline bool ranks_before(float a, int64_t ia, float b, int64_t ib) {
  const bool na = std::isnan(a), nb = std::isnan(b);
  if (na != nb) return nb;  // the number ranks before the NaN
  if (!na && a != b) return a > b;
  return ia < ib;
}

// scratch: n int32 entries. out: k entries, ascending indices. k is clamped to [0, n].
inline int64_t topk_indices(const float* s, int64_t n, int64_t k, int32_t* out, int32_t* scratch) {
  if (k > n) k = n;
  if (k <= 0) return 0;
  for (int64_t i = 0; i < n; i++) scratch[i] = static_cast<int32_t>(i);
  auto cmp = [s](int32_t x, int32_t y) { return ranks_before(s[x], x, s[y], y); };
  if (k < n) std::nth_element(scratch, scratch + (k - 1), scratch + n, cmp);
  std::sort(scratch, scratch + k);
  std::copy(scratch, scratch + k, out);
  return k;
}

// The same, but out holds the winners in rank order (best first).
inline int64_t topk_ranked(const float* s, int64_t n, int64_t k, int32_t* out, int32_t* scratch) {
  if (k > n) k = n;
  if (k <= 0) return 0;
  for (int64_t i = 0; i < n; i++) scratch[i] = static_cast<int32_t>(i);
  auto cmp = [s](int32_t x, int32_t y) { return ranks_before(s[x], x, s[y], y); };
  std::partial_sort(scratch, scratch + k, scratch + n, cmp);
  std::copy(scratch, scratch + k, out);
  return k;
}

// Python's round(x) for x >= 0 (half to even), as the official scripts size
// their budgets with round(ratio * n).
inline int64_t python_round(double x) {
  const double f = std::floor(x);
  const double diff = x - f;
  if (diff > 0.5) return static_cast<int64_t>(f) + 1;
  if (diff < 0.5) return static_cast<int64_t>(f);
  const int64_t fi = static_cast<int64_t>(f);
  return (fi % 2 == 0) ? fi : fi + 1;
}

}  // namespace tp::reduce
