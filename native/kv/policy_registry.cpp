// The one table of KV eviction policies. Adding a policy: one policy_*.cpp
// with its score function, one row here, one config in lib/kv/policies.ts,
// one row in test/unit/kv-stateless.test.ts.
#include <cstring>

#include "kv_policy.h"

namespace tp {
namespace kv {
Status score_streamingllm(const KvScoreParams& p);
Status score_knorm(const KvScoreParams& p);
Status score_random(const KvScoreParams& p);
Status score_tova(const KvScoreParams& p);
Status score_h2o(const KvScoreParams& p);
Status score_snapkv(const KvScoreParams& p);
Status score_expected_attention(const KvScoreParams& p);
Status score_speckv(const KvScoreParams& p);
Status score_ems(const KvScoreParams& p);
}  // namespace kv

namespace {
//   name                  score                          needs q  key_mass  needs draft
constexpr KvPolicy kPolicies[] = {
    {"streamingllm",       kv::score_streamingllm,       false, false, false},
    {"knorm",              kv::score_knorm,              false, false, false},
    {"random",             kv::score_random,             false, false, false},
    {"tova",               kv::score_tova,               true,  false, false},
    {"h2o",                kv::score_h2o,                false, true,  false},
    {"snapkv",             kv::score_snapkv,             true,  false, false},
    {"expected_attention", kv::score_expected_attention, true,  false, false},
    {"speckv",             kv::score_speckv,             false, false, true},
    {"ems",                kv::score_ems,                true,  true,  false},
};
}  // namespace

const KvPolicy* find_kv_policy(const char* name) {
  for (const KvPolicy& p : kPolicies) {
    if (std::strcmp(p.name, name) == 0) return &p;
  }
  return nullptr;
}

}  // namespace tp
