// CoreMatching (corematch.h).
#include "corematch.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

namespace tp::reduce {
namespace {

inline bool active(const float* act, const float* up, int64_t idx) {
  if (up == nullptr) return act[idx] > 0.0f;
  const double g = act[idx];
  return g / (1.0 + std::exp(-g)) * static_cast<double>(up[idx]) > 0.0;
}

}  // namespace

void corematch_scores(const float* act, const float* up, int64_t inter, int64_t query, int64_t start, int64_t len, float* scores) {
  const int64_t words = (inter + 63) / 64;
  std::vector<uint64_t> qbits(words, 0), rbits(words);
  for (int64_t i = 0; i < inter; i++)
    if (active(act, up, query * inter + i)) qbits[i >> 6] |= uint64_t(1) << (i & 63);
  for (int64_t j = 0; j < len; j++) {
    const int64_t row = (start + j) * inter;
    std::fill(rbits.begin(), rbits.end(), 0);
    for (int64_t i = 0; i < inter; i++)
      if (active(act, up, row + i)) rbits[i >> 6] |= uint64_t(1) << (i & 63);
    int64_t c = 0;
    for (int64_t w = 0; w < words; w++) c += __builtin_popcountll(qbits[w] & rbits[w]);
    scores[j] = static_cast<float>(c);
  }
}

double corematch_elbow(const float* scores, int64_t len, int64_t* elbow_rank) {
  *elbow_rank = 0;
  if (len <= 0) return INFINITY;
  std::vector<double> s(scores, scores + len);
  std::sort(s.begin(), s.end(), std::greater<double>());
  // Unit chord from (0, s0) to (len-1, s_last); a zero chord (len 1) is NaN
  // in the official code, where argmax of NaNs is 0: the elbow is the first point.
  const double lx = static_cast<double>(len - 1), ly = s[len - 1] - s[0];
  const double norm = std::sqrt(lx * lx + ly * ly);
  if (!(norm > 0)) return s[0];
  const double ux = lx / norm, uy = ly / norm;
  double best = -1;
  for (int64_t i = 0; i < len; i++) {
    const double px = static_cast<double>(i), py = s[i] - s[0];
    const double proj = px * ux + py * uy;
    const double ex = px - proj * ux, ey = py - proj * uy;
    const double dist = std::sqrt(ex * ex + ey * ey);
    if (dist > best) {
      best = dist;
      *elbow_rank = i;
    }
  }
  return s[*elbow_rank];
}

}  // namespace tp::reduce
