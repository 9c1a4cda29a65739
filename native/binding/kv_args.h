// Reads the policy option fields shared by kvScore and KvCache.compress
// (lib/native.ts NativeKvPolicyOptions) into KvScoreParams.
#pragma once
#include <string>

#include "../kv/kv_policy.h"
#include "napi_args.h"

namespace tp::binding {

inline void ParsePolicyOptions(Napi::Object o, KvScoreParams* p) {
  Napi::Env env = o.Env();
  p->sinks = GetInt(o, "sinks");
  p->recent = GetInt(o, "recent");
  p->window = GetInt(o, "window");
  p->kernel = GetInt(o, "kernel");
  const int64_t pooling = GetInt(o, "pooling");
  if (pooling != 0 && pooling != 1) throw Napi::RangeError::New(env, "pooling: expected 0 (avg) or 1 (max), received " + std::to_string(pooling));
  p->pooling = static_cast<KvPooling>(pooling);
  const int64_t seed = GetInt(o, "seed");
  if (seed < 0) throw Napi::RangeError::New(env, "seed: expected a non-negative integer, received " + std::to_string(seed));
  p->seed = static_cast<uint64_t>(seed);
}

}  // namespace tp::binding
