// H2O (Zhang et al. 2023, "Heavy-Hitter Oracle"): keep the keys with the most
// accumulated attention (kvpress ObservedAttentionPress) plus a window of
// recent tokens. Score = key_mass when given, else the causal key mass of
// the given queries (attention_mass); the last `recent` positions
// get +infinity (forced kept).
#include <algorithm>
#include <vector>

#include "kv_common.h"

namespace tp::kv {

Status score_h2o(const KvScoreParams& p) {
  const int64_t n = p.n_kv_heads * p.n_kv;
  if (p.key_mass) {
    std::copy(p.key_mass, p.key_mass + n, p.scores);
  } else {
    std::vector<float> mass;
    const Status s = attention_mass(p, p.n_q, mass);
    if (!s.is_ok()) return s;
    std::copy(mass.begin(), mass.end(), p.scores);
  }
  force_from(p, p.n_kv - p.recent);
  return Status::ok();
}

}  // namespace tp::kv
