// Recoverable Compression (recoverable.h). Cost: three LOFs on n scores
// (O(n log n)), one dot_matrix of centres x rest keys, and passes over x.
#include "recoverable.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lof.h"
#include "similarity.h"

namespace tp::reduce {
namespace {

// The top `m` positions of score[0, len) by (score desc, position asc), in that order.
std::vector<int64_t> top_positions(const float* score, int64_t len, int64_t m) {
  std::vector<int64_t> idx(len);
  for (int64_t i = 0; i < len; i++) idx[i] = i;
  m = std::min(m, len);
  auto better = [&](int64_t a, int64_t b) { return score[a] > score[b] || (score[a] == score[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), better);
  idx.resize(m);
  return idx;
}

// floor(len * (outliers / len)) in float64, as int(N * ratio) in the official code.
int64_t lof_count(const float* v, int64_t len, int64_t scale, const RecoverableOptions& opt) {
  if (len == 0) return 0;
  const int64_t o = lof_outliers_1d(v, len, opt.lof_neighbors, opt.lof_threshold, nullptr);
  const double ratio = static_cast<double>(o) / static_cast<double>(len);
  return static_cast<int64_t>(std::floor(static_cast<double>(scale) * ratio));
}

}  // namespace

void recoverable_text_scores(const float* x, int64_t n, int64_t d, const float* text, float* scores) {
  if (n <= 0) return;
  std::vector<float> xn(static_cast<size_t>(n) * d), tn(d);
  l2_normalize_rows(x, n, d, xn.data());
  l2_normalize_rows(text, 1, d, tn.data());
  dot_matrix(xn.data(), n, tn.data(), 1, d, scores);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  for (int64_t i = 0; i < n; i++) scores[i] *= scale;
}

Status recoverable_frame(const float* x, int64_t n, int64_t d, const float* keys, int64_t dk, const float* cls, const float* text_scores,
                         const RecoverableOptions& opt, const RecoverableOut& out) {
  for (int i = 0; i < 3; i++) out.counts[i] = 0;
  if (n <= 0) return Status::ok();
  if (keys == nullptr) {
    keys = x;
    dk = d;
  }
  // 1. main = top(LOF ratio) by attention u top(LOF ratio) by text.
  std::vector<char> is_main(n, 0);
  for (int64_t i : top_positions(cls, n, lof_count(cls, n, n, opt))) is_main[i] = 1;
  for (int64_t i : top_positions(text_scores, n, lof_count(text_scores, n, n, opt))) is_main[i] = 1;
  int64_t rows = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!is_main[i]) continue;
    out.main_idx[rows] = static_cast<int32_t>(i);
    std::copy(x + i * d, x + (i + 1) * d, out.tokens + rows * d);
    out.sizes[rows] = 1.0f;
    out.assignment[i] = static_cast<int32_t>(rows);
    rows++;
  }
  const int64_t n_main = rows;
  // 2. rest, its attention and text scores; centres by attention.
  std::vector<int64_t> rest;
  for (int64_t i = 0; i < n; i++)
    if (!is_main[i]) rest.push_back(i);
  const int64_t nr = static_cast<int64_t>(rest.size());
  out.counts[0] = static_cast<int32_t>(rows);
  out.counts[1] = static_cast<int32_t>(n_main);
  if (nr == 0) return Status::ok();
  std::vector<float> ra(nr), rs(nr);
  for (int64_t j = 0; j < nr; j++) {
    ra[j] = cls[rest[j]];
    rs[j] = static_cast<float>(opt.text_weight * text_scores[rest[j]]);
  }
  const int64_t left = std::min(lof_count(ra.data(), nr, n, opt), nr);
  const std::vector<int64_t> centres = top_positions(ra.data(), nr, left);  // positions in rest, descending attention
  std::vector<char> is_centre(nr, 0);
  for (int64_t c : centres) is_centre[c] = 1;
  // Candidate list of centre i (official order): the other centres, then R \ C ascending.
  std::vector<int64_t> others;
  for (int64_t j = 0; j < nr; j++)
    if (!is_centre[j]) others.push_back(j);
  const int64_t nc = static_cast<int64_t>(centres.size());
  // 3. cos(k_centre, k_candidate) for every centre against every rest token (rest order).
  std::vector<float> kr(static_cast<size_t>(nr) * dk), kc(static_cast<size_t>(nc) * dk), sim(static_cast<size_t>(nc) * nr);
  for (int64_t j = 0; j < nr; j++) std::copy(keys + rest[j] * dk, keys + (rest[j] + 1) * dk, kr.data() + j * dk);
  l2_normalize_rows(kr.data(), nr, dk, kr.data());
  for (int64_t c = 0; c < nc; c++) std::copy(kr.data() + centres[c] * dk, kr.data() + (centres[c] + 1) * dk, kc.data() + c * dk);
  dot_matrix(kc.data(), nc, kr.data(), nr, dk, sim.data());
  // best score per absorbed source, for the assignment (first centre on ties).
  std::vector<float> best(nr, -INFINITY);
  std::vector<int64_t> owner(nr, -1);
  std::vector<float> cand_score;
  std::vector<int64_t> cand;
  std::vector<double> acc(d);
  for (int64_t c = 0; c < nc; c++) {
    cand.clear();
    cand_score.clear();
    for (int64_t e = 0; e < nc; e++) {
      if (e == c) continue;
      cand.push_back(centres[e]);
    }
    for (int64_t j : others) cand.push_back(j);
    for (int64_t j : cand) cand_score.push_back(sim[c * nr + j] + rs[j]);
    const std::vector<int64_t> pick = top_positions(cand_score.data(), static_cast<int64_t>(cand.size()), opt.cluster_size);
    const int64_t src = rest[centres[c]];
    for (int64_t j = 0; j < d; j++) acc[j] = x[src * d + j];
    for (int64_t p : pick) {
      const int64_t j = cand[p];
      const double w = ra[j];
      const float* xj = x + rest[j] * d;
      for (int64_t q = 0; q < d; q++) acc[q] += w * xj[q];
      if (!is_centre[j] && cand_score[p] > best[j]) {
        best[j] = cand_score[p];
        owner[j] = c;
      }
    }
    float* o = out.tokens + (n_main + c) * d;
    for (int64_t j = 0; j < d; j++) o[j] = static_cast<float>(acc[j]);
    out.centre_idx[c] = static_cast<int32_t>(src);
    out.assignment[src] = static_cast<int32_t>(n_main + c);
    out.sizes[n_main + c] = 1.0f;
  }
  // 4. the extra token: attention-weighted sum of R \ C.
  const int64_t extra = n_main + nc;
  std::fill(acc.begin(), acc.end(), 0.0);
  out.sizes[extra] = 0.0f;
  for (int64_t j : others) {
    const double w = ra[j];
    const float* xj = x + rest[j] * d;
    for (int64_t q = 0; q < d; q++) acc[q] += w * xj[q];
    const int64_t row = owner[j] >= 0 ? n_main + owner[j] : extra;
    out.assignment[rest[j]] = static_cast<int32_t>(row);
    out.sizes[row] += 1.0f;
  }
  float* o = out.tokens + extra * d;
  for (int64_t j = 0; j < d; j++) o[j] = static_cast<float>(acc[j]);
  out.counts[0] = static_cast<int32_t>(extra + 1);
  out.counts[2] = static_cast<int32_t>(nc);
  return Status::ok();
}

}  // namespace tp::reduce
