// Local Outlier Factor on 1-D scores, as Recoverable Compression uses it for
// its automatic keep ratios (find_max_derivative_position in
// banjiuyufen/Recoverable-Compression llava/model/multimodal_encoder/clip_encoder.py:
// sklearn.neighbors.LocalOutlierFactor(n_neighbors=10, contamination='auto')
// .fit_predict, ratio = outliers / n). With contamination 'auto' sklearn's
// offset is -1.5: a point is an outlier when its LOF > 1.5.
//
// sklearn's rule: k = min(n_neighbors, n - 1) nearest other points; k-distance;
// reach(p, o) = max(kdist(o), |p - o|); lrd(p) = 1 / (mean reach + 1e-10);
// LOF(p) = mean over neighbours o of lrd(o) / lrd(p). Ours computes in
// float64 and breaks distance ties by the lower index (sklearn's tree order
// is unspecified); neighbours are found on the sorted values in O(n k).
#pragma once
#include <cstdint>

namespace tp::reduce {

// Number of outliers among values[0, n) (LOF > threshold, threshold 1.5 for
// contamination 'auto'). lof_out [n] (optional) receives every LOF. n < 2: 0.
int64_t lof_outliers_1d(const float* values, int64_t n, int n_neighbors, double threshold, double* lof_out);

}  // namespace tp::reduce
