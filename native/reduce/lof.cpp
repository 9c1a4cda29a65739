// 1-D Local Outlier Factor (lof.h). Neighbours come from the values sorted by
// (value, index): walking left and right from a point gives two sequences
// each ordered by (distance, index) once the left side visits every run of
// equal values in ascending index order, so merging them yields the k
// nearest by (distance, index) exactly.
#include "lof.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace tp::reduce {

int64_t lof_outliers_1d(const float* values, int64_t n, int n_neighbors, double threshold, double* lof_out) {
  if (n < 2 || n_neighbors < 1) {
    for (int64_t i = 0; i < n && lof_out; i++) lof_out[i] = 1.0;
    return 0;
  }
  const int64_t k = std::min<int64_t>(n_neighbors, n - 1);
  std::vector<int64_t> ord(n);
  for (int64_t i = 0; i < n; i++) ord[i] = i;
  std::sort(ord.begin(), ord.end(), [&](int64_t a, int64_t b) { return values[a] < values[b] || (values[a] == values[b] && a < b); });
  std::vector<int64_t> nb(static_cast<size_t>(n * k));
  std::vector<double> nd(static_cast<size_t>(n * k)), kdist(n), lrd(n);
  std::vector<int64_t> pos(n);
  for (int64_t s = 0; s < n; s++) pos[ord[s]] = s;
  for (int64_t p = 0; p < n; p++) {
    const double vp = values[p];
    const int64_t sp = pos[p];
    // Left: current run [la, lb] of equal values, visited from la upwards (li).
    int64_t lb = sp - 1, la = 0, li = 0;
    auto open_left = [&]() {
      if (lb < 0) return;
      la = lb;
      while (la > 0 && values[ord[la - 1]] == values[ord[lb]]) la--;
      li = la;
    };
    open_left();
    int64_t r = sp + 1;
    for (int64_t c = 0; c < k; c++) {
      const bool has_l = lb >= 0, has_r = r < n;
      int64_t pick;
      bool left;
      if (has_l && has_r) {
        const int64_t il = ord[li], ir = ord[r];
        const double dl = std::fabs(vp - static_cast<double>(values[il])), dr = std::fabs(static_cast<double>(values[ir]) - vp);
        left = dl < dr || (dl == dr && il < ir);
        pick = left ? il : ir;
      } else {
        left = has_l;
        pick = left ? ord[li] : ord[r];
      }
      if (left) {
        if (++li > lb) {
          lb = la - 1;
          open_left();
        }
      } else {
        r++;
      }
      nb[p * k + c] = pick;
      nd[p * k + c] = std::fabs(vp - static_cast<double>(values[pick]));
    }
    kdist[p] = nd[p * k + k - 1];
  }
  for (int64_t p = 0; p < n; p++) {
    double s = 0;
    for (int64_t c = 0; c < k; c++) s += std::max(kdist[nb[p * k + c]], nd[p * k + c]);
    lrd[p] = 1.0 / (s / static_cast<double>(k) + 1e-10);
  }
  int64_t outliers = 0;
  for (int64_t p = 0; p < n; p++) {
    double s = 0;
    for (int64_t c = 0; c < k; c++) s += lrd[nb[p * k + c]] / lrd[p];
    const double lof = s / static_cast<double>(k);
    if (lof_out) lof_out[p] = lof;
    if (lof > threshold) outliers++;
  }
  return outliers;
}

}  // namespace tp::reduce
