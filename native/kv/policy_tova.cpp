// TOVA (Oren et al. 2024, "Transformers are Multi-State RNNs"): keep the keys
// the LAST query attends to most. Score = softmax probability of key p for the
// last query row, averaged over the query heads of the KV head's group (the
// last query is position nKv - 1, so it sees every key).
#include <vector>

#include "kv_common.h"

namespace tp::kv {

Status score_tova(const KvScoreParams& p) {
  std::vector<float> mass;
  const Status s = attention_mass(p, 1, mass);
  if (!s.is_ok()) return s;
  const float inv = 1.0f / static_cast<float>(p.n_heads / p.n_kv_heads);
  for (int64_t x = 0; x < p.n_kv_heads * p.n_kv; ++x) p.scores[x] = mass[static_cast<size_t>(x)] * inv;
  return Status::ok();
}

}  // namespace tp::kv
