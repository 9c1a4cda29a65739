// Random eviction: the floor every policy must beat. Deterministic per seed
// on every machine: score[h][p] = splitmix64(seed + (h * nKv + p + 1) *
// golden) >> 40, scaled to [0, 1) (24 bits, exact in f32).
#include "kv_common.h"

namespace tp::kv {

namespace {
uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

Status score_random(const KvScoreParams& p) {
  const uint64_t golden = 0x9e3779b97f4a7c15ull;
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t pos = 0; pos < p.n_kv; ++pos) {
      const uint64_t counter = static_cast<uint64_t>(h * p.n_kv + pos) + 1;
      const uint64_t r = splitmix64(p.seed + counter * golden);
      p.scores[h * p.n_kv + pos] = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);
    }
  }
  return Status::ok();
}

}  // namespace tp::kv
