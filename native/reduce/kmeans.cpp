// k-means with cosine distance and VQToken's codebook (kmeans.h). The
// assignment step is tp::reduce::dot_matrix (tokens x normalised centroids);
// the k-means++ distances are one matrix-vector product per new centroid.
#include "kmeans.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "similarity.h"

namespace tp::reduce {
namespace {

// Index of the first maximum of row [k] (argmin of 1 - cos).
inline int32_t argmax_row(const float* row, int k) {
  int32_t best = 0;
  for (int c = 1; c < k; c++) {
    if (row[c] > row[best]) best = c;
  }
  return best;
}

// Sum of squares of a row in float64.
inline double sq_norm(const float* x, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) s += static_cast<double>(x[j]) * x[j];
  return s;
}

// k-means++ (KMeansTorch.sample_init_centroids): first centre uniform, then
// each next one drawn with weight (min squared distance to the centres) + 1e-6.
void kmeanspp(const float* xn, int64_t n, int64_t d, int k, Mulberry32& rng, float* centroids) {
  std::vector<double> mind(n, INFINITY), norms(n);
  std::vector<float> dots(n);
  for (int64_t i = 0; i < n; i++) norms[i] = sq_norm(xn + i * d, d);
  int64_t pick = std::min<int64_t>(static_cast<int64_t>(rng.next() * n), n - 1);
  for (int c = 0; c < k; c++) {
    if (c > 0) {
      double total = 0;
      for (int64_t i = 0; i < n; i++) total += mind[i] + 1e-6;
      const double target = rng.next() * total;
      double acc = 0;
      pick = n - 1;
      for (int64_t i = 0; i < n; i++) {
        acc += mind[i] + 1e-6;
        if (acc > target) {
          pick = i;
          break;
        }
      }
    }
    const float* p = xn + pick * d;
    std::copy(p, p + d, centroids + static_cast<int64_t>(c) * d);
    if (c + 1 == k) break;
    dot_matrix(xn, n, p, 1, d, dots.data());
    const double pn = norms[pick];
    for (int64_t i = 0; i < n; i++) {
      const double d2 = std::max(0.0, norms[i] + pn - 2.0 * dots[i]);
      if (d2 < mind[i]) mind[i] = d2;
    }
  }
}

}  // namespace

Status kmeans_cosine(const float* xn, int64_t n, int64_t d, const KMeansOptions& opt, Mulberry32& rng, float* centroids,
                     int32_t* labels, int* iterations) {
  *iterations = 0;
  const int k = static_cast<int>(std::min<int64_t>(opt.k, n));
  if (n <= 0 || k <= 0) return Status::ok();
  kmeanspp(xn, n, d, k, rng, centroids);
  std::vector<float> cn(static_cast<size_t>(k) * d), sims(static_cast<size_t>(n) * k);
  std::vector<double> sums(static_cast<size_t>(k) * d);
  std::vector<int64_t> counts(k);
  for (int it = 0; it < opt.max_iter; it++) {
    *iterations = it + 1;
    l2_normalize_rows(centroids, k, d, cn.data());
    dot_matrix(xn, n, cn.data(), k, d, sims.data());
    for (int64_t i = 0; i < n; i++) labels[i] = argmax_row(sims.data() + i * k, k);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t i = 0; i < n; i++) {
      double* s = sums.data() + static_cast<int64_t>(labels[i]) * d;
      const float* x = xn + i * d;
      for (int64_t j = 0; j < d; j++) s[j] += x[j];
      counts[labels[i]]++;
    }
    double shift = 0;
    for (int c = 0; c < k; c++) {
      if (counts[c] == 0) continue;  // an empty cluster keeps its centroid
      float* cc = centroids + static_cast<int64_t>(c) * d;
      const double* s = sums.data() + static_cast<int64_t>(c) * d;
      for (int64_t j = 0; j < d; j++) {
        const float v = static_cast<float>(s[j] / static_cast<double>(counts[c]));
        const double diff = static_cast<double>(cc[j]) - v;
        shift += diff * diff;
        sums[static_cast<size_t>(c) * d + j] = v;  // keep the new value until we know whether to move
      }
    }
    if (std::sqrt(shift) < opt.tol) break;  // converged: centroids stay as they were (official)
    for (int c = 0; c < k; c++) {
      if (counts[c] == 0) continue;
      float* cc = centroids + static_cast<int64_t>(c) * d;
      const double* s = sums.data() + static_cast<int64_t>(c) * d;
      for (int64_t j = 0; j < d; j++) cc[j] = static_cast<float>(s[j]);
    }
  }
  return Status::ok();
}

namespace {

// Codebook = mean of the normalised tokens of each code (vq_token.py), counts.
void codebook_means(const float* xn, int64_t n, int64_t d, int k, const int32_t* labels, float* codebook, float* counts) {
  std::vector<double> sums(static_cast<size_t>(k) * d, 0.0);
  std::vector<int64_t> cnt(k, 0);
  for (int64_t i = 0; i < n; i++) {
    double* s = sums.data() + static_cast<int64_t>(labels[i]) * d;
    for (int64_t j = 0; j < d; j++) s[j] += xn[i * d + j];
    cnt[labels[i]]++;
  }
  for (int c = 0; c < k; c++) {
    const double inv = cnt[c] > 0 ? 1.0 / static_cast<double>(cnt[c]) : 0.0;
    for (int64_t j = 0; j < d; j++) codebook[static_cast<int64_t>(c) * d + j] = static_cast<float>(sums[static_cast<size_t>(c) * d + j] * inv);
    counts[c] = static_cast<float>(cnt[c]);
  }
}

// Sum of squared distances of each row to its centroid (the elbow's distortion).
double distortion(const float* xn, int64_t n, int64_t d, const float* centroids, const int32_t* labels) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    const float* c = centroids + static_cast<int64_t>(labels[i]) * d;
    for (int64_t j = 0; j < d; j++) {
      const double diff = static_cast<double>(xn[i * d + j]) - c[j];
      s += diff * diff;
    }
  }
  return s;
}

}  // namespace

Status vqtoken(const float* tokens, int64_t rows, int64_t d, const VqTokenOptions& opt, float* codebook, float* counts,
               int32_t* codes, int* k_out, int* iterations) {
  *k_out = 0;
  *iterations = 0;
  if (opt.k < 1 || opt.max_iter < 1 || !(opt.tol >= 0)) return Status::invalid("vqtoken: k >= 1, maxIter >= 1 and tol >= 0 required");
  if (opt.adaptive && opt.max_k < 14) return Status::invalid("vqtoken: adaptive K needs maxK >= 14 (three K values from 12)");
  if (rows <= 0) return Status::ok();
  std::vector<float> xn(static_cast<size_t>(rows) * d);
  l2_normalize_rows(tokens, rows, d, xn.data());
  Mulberry32 rng(opt.seed);
  KMeansOptions ko;
  ko.max_iter = opt.max_iter;
  ko.tol = opt.tol;
  int k = opt.k;
  if (opt.adaptive) {
    // AdaptiveKMeansTorch(method="elbow").find_best_K: one run per K in
    // [12, maxK] on the same random stream, distortion with the returned centroids.
    std::vector<double> dist;
    std::vector<float> cent(static_cast<size_t>(opt.max_k) * d);
    int it = 0;
    for (int kk = 12; kk <= opt.max_k; kk++) {
      ko.k = kk;
      Status s = kmeans_cosine(xn.data(), rows, d, ko, rng, cent.data(), codes, &it);
      if (!s.is_ok()) return s;
      dist.push_back(distortion(xn.data(), rows, d, cent.data(), codes));
    }
    // diffs2[i] = (D[i+2] - D[i+1]) - (D[i+1] - D[i]); first argmax.
    int best = 0;
    double best_v = -INFINITY;
    for (size_t i = 0; i + 2 < dist.size(); i++) {
      const double v = (dist[i + 2] - dist[i + 1]) - (dist[i + 1] - dist[i]);
      if (v > best_v) {
        best_v = v;
        best = static_cast<int>(i);
      }
    }
    k = std::max(best + 4, 12);  // compute_elbow returns argmax + 2, find_best_K adds 2, then max(., 12)
  }
  ko.k = k;
  const int kk = static_cast<int>(std::min<int64_t>(k, rows));
  Status s = kmeans_cosine(xn.data(), rows, d, ko, rng, codebook, codes, iterations);
  if (!s.is_ok()) return s;
  codebook_means(xn.data(), rows, d, kk, codes, codebook, counts);
  *k_out = kk;
  return Status::ok();
}

}  // namespace tp::reduce
