// EMS, the scoring half (Li et al. 2024, "EMS: Adaptive Evict-then-Merge
// Strategy for Head-wise KV Cache Compression Based on Global-Local
// Importance"): a Global-Local score that combines accumulated attention from
// all observed queries (global: biased toward early tokens by the causal
// mask) with the attention of the last window of queries (local: biased
// toward recent tokens by positional decay). The evict-then-merge step is not
// here (it is the caller's / KvCache's).
//
//   global = key_mass when given, else the causal key mass of all nQ queries
//   local  = causal key mass of the last w = min(window, nQ) queries
// Each is divided by its per-head total, so both are distributions over the
// keys (the total of a causal mass is rows * group: the per-query average);
// score = (global + local) / 2 (reduction Avg, the default: the paper's
// "combines accumulated attention scores from both global and local" read as
// a sum) or max(global, local), for keys before the window; the window's w
// keys get +infinity (forced kept, as in SnapKV).
//
// The normalisation and the combination rule are this library's reading of
// the paper's abstract; its method section could not be consulted here. A
// head whose total is 0 contributes 0.
#include <algorithm>
#include <vector>

#include "kv_common.h"

namespace tp::kv {

namespace {

// Per-head totals: out[h] = 1 / sum_p m[h][p], or 0 for an all-zero head.
std::vector<double> inverse_totals(const KvScoreParams& p, const float* m) {
  std::vector<double> inv(static_cast<size_t>(p.n_kv_heads), 0.0);
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    double sum = 0.0;
    for (int64_t pos = 0; pos < p.n_kv; ++pos) sum += m[h * p.n_kv + pos];
    inv[static_cast<size_t>(h)] = sum > 0.0 ? 1.0 / sum : 0.0;
  }
  return inv;
}

}  // namespace

Status score_ems(const KvScoreParams& p) {
  const int64_t w = std::min(p.window, p.n_q);
  std::vector<float> local, global_mass;
  Status s = attention_mass(p, w, local);
  if (!s.is_ok()) return s;
  const float* global = p.key_mass;
  if (!global) {
    s = attention_mass(p, p.n_q, global_mass);
    if (!s.is_ok()) return s;
    global = global_mass.data();
  }
  const std::vector<double> inv_g = inverse_totals(p, global);
  const std::vector<double> inv_l = inverse_totals(p, local.data());
  const int64_t prefix = p.n_kv - w;
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t pos = 0; pos < prefix; ++pos) {
      const int64_t x = h * p.n_kv + pos;
      const double g = global[x] * inv_g[static_cast<size_t>(h)];
      const double l = local[static_cast<size_t>(x)] * inv_l[static_cast<size_t>(h)];
      p.scores[x] = static_cast<float>(p.reduction == KvPooling::Max ? std::max(g, l) : 0.5 * (g + l));
    }
  }
  force_from(p, prefix);
  return Status::ok();
}

}  // namespace tp::kv
