// DivPrune (divprune.h). Official: vbdi/divprune LLaVA/llava/model/llava_arch.py.
#include "divprune.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "similarity.h"

namespace tp::reduce {

void divprune_greedy(const float* sim, int64_t n, int64_t keep, int32_t* picks, float* min_dist, uint8_t* selected) {
  if (keep <= 0 || n <= 0) return;
  std::fill(selected, selected + n, uint8_t{0});
  // First pick: largest distance to the nearest other token (row i of the
  // symmetric matrix stands for the official column i). n = 1: the only token.
  int64_t best = 0;
  float best_score = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; i++) {
    const float* row = sim + i * n;
    float nearest = std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; j++) {
      if (j == i) continue;
      const float dist = 1.0f - row[j];
      if (dist < nearest) nearest = dist;
    }
    if (nearest > best_score) {  // strict: ties keep the lower index
      best_score = nearest;
      best = i;
    }
  }
  picks[0] = static_cast<int32_t>(best);
  selected[best] = 1;
  const float* first = sim + best * n;
  for (int64_t j = 0; j < n; j++) min_dist[j] = 1.0f - first[j];
  for (int64_t s = 1; s < keep; s++) {
    int64_t pick = -1;
    float pick_score = 0;
    for (int64_t j = 0; j < n; j++) {
      if (selected[j]) continue;
      if (pick < 0 || min_dist[j] > pick_score) {
        pick = j;
        pick_score = min_dist[j];
      }
    }
    picks[s] = static_cast<int32_t>(pick);
    selected[pick] = 1;
    const float* row = sim + pick * n;
    for (int64_t j = 0; j < n; j++) {
      const float dist = 1.0f - row[j];
      if (dist < min_dist[j]) min_dist[j] = dist;
    }
  }
}

Status divprune(const float* x, int64_t t, int64_t n, int64_t d, int64_t keep, int32_t* out) {
  if (t < 0 || n < 0 || d < 0 || keep < 0 || keep > n) return Status::invalid("divprune: bad sizes");
  if (keep == 0 || t == 0) return Status::ok();
  std::vector<float> xn(static_cast<size_t>(n * d));
  std::vector<float> sim(static_cast<size_t>(n * n));
  std::vector<float> min_dist(static_cast<size_t>(n));
  std::vector<uint8_t> selected(static_cast<size_t>(n));
  for (int64_t f = 0; f < t; f++) {
    l2_normalize_rows(x + f * n * d, n, d, xn.data());
    dot_matrix(xn.data(), n, xn.data(), n, d, sim.data());
    int32_t* o = out + f * keep;
    divprune_greedy(sim.data(), n, keep, o, min_dist.data(), selected.data());
    std::sort(o, o + keep);
  }
  return Status::ok();
}

}  // namespace tp::reduce
