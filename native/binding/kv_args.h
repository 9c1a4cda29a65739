// Reads the policy option fields shared by kvScore and KvCache.compress
// (lib/native.ts NativeKvPolicyOptions) into KvScoreParams.
#pragma once
#include <cmath>
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
  // Options of the later policies: optional, defaults as in KvScoreParams.
  if (!o.Get("epsilon").IsUndefined()) {
    p->epsilon = static_cast<float>(GetNumber(o, "epsilon"));
    if (!(p->epsilon >= 0.0f) || !std::isfinite(p->epsilon)) throw Napi::RangeError::New(env, "epsilon: expected a finite number >= 0");
  }
  if (!o.Get("useCovariance").IsUndefined()) p->use_covariance = GetBool(o, "useCovariance");
  if (!o.Get("useVnorm").IsUndefined()) p->use_vnorm = GetBool(o, "useVnorm");
  if (!o.Get("reduction").IsUndefined()) {
    const int64_t reduction = GetInt(o, "reduction");
    if (reduction != 0 && reduction != 1) throw Napi::RangeError::New(env, "reduction: expected 0 (mean) or 1 (max), received " + std::to_string(reduction));
    p->reduction = static_cast<KvPooling>(reduction);
  }
  const int64_t seed = GetInt(o, "seed");
  if (seed < 0) throw Napi::RangeError::New(env, "seed: expected a non-negative integer, received " + std::to_string(seed));
  p->seed = static_cast<uint64_t>(seed);
}

}  // namespace tp::binding
