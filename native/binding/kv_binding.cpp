// kvScore(params), kvSelect(params), kvCompact(params): the flat parameter
// objects of lib/native.ts (NativeKvScoreParams, ...). Sizes and indices are
// re-checked by the kernels' validators before any buffer is touched.
#include <string>

#include "../kv/kv_policy.h"
#include "bindings.h"
#include "kv_args.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

Napi::Value KvScore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"policy", "nKvHeads", "nKv", "headDim", "nHeads", "nQ", "kDtype", "vDtype", "kStrides",
                                         "vStrides", "sinks", "recent", "window", "kernel", "pooling", "epsilon",
                                         "useCovariance", "useVnorm", "reduction", "seed", "k", "v", "q", "keyMass", "draftQ",
                                         "scores", "qStrides", "draftQStrides", "nDraft"});
  Napi::Value name = o.Get("policy");
  if (!name.IsString()) throw Napi::TypeError::New(env, "policy: expected a string, received " + describe(name));
  const std::string policy = name.As<Napi::String>().Utf8Value();
  KvScoreParams p;
  p.n_kv_heads = GetInt(o, "nKvHeads");
  p.n_kv = GetInt(o, "nKv");
  p.head_dim = GetInt(o, "headDim");
  p.n_heads = GetInt(o, "nHeads");
  p.n_q = GetInt(o, "nQ");
  p.k_dtype = ParseDtype(o, "kDtype");
  p.v_dtype = ParseDtype(o, "vDtype");
  ParseStrides(o, "kStrides", &p.k_head_stride, &p.k_row_stride);
  ParseStrides(o, "vStrides", &p.v_head_stride, &p.v_row_stride);
  ParsePolicyOptions(o, &p);

  const TypedArrayView k = GetTypedArray(o, "k", FloatArrayType(p.k_dtype), true);
  const TypedArrayView v = GetTypedArray(o, "v", FloatArrayType(p.v_dtype), true);
  const TypedArrayView q = GetTypedArray(o, "q", napi_float32_array, false);
  const TypedArrayView mass = GetTypedArray(o, "keyMass", napi_float32_array, false);
  const TypedArrayView draft = GetTypedArray(o, "draftQ", napi_float32_array, false);
  const TypedArrayView scores = GetTypedArray(o, "scores", napi_float32_array, true);
  if (q.present) ParseStrides(o, "qStrides", &p.q_head_stride, &p.q_row_stride);
  if (draft.present) {
    ParseStrides(o, "draftQStrides", &p.draft_head_stride, &p.draft_row_stride);
    p.n_draft = GetInt(o, "nDraft");
  }
  p.k = k.data; p.k_len = k.length;
  p.v = v.data; p.v_len = v.length;
  p.q = q.present ? static_cast<const float*>(q.data) : nullptr;
  p.q_len = q.length;
  p.key_mass = mass.present ? static_cast<const float*>(mass.data) : nullptr;
  p.key_mass_len = mass.length;
  p.draft_q = draft.present ? static_cast<const float*>(draft.data) : nullptr;
  p.draft_q_len = draft.length;
  p.scores = static_cast<float*>(scores.data);
  p.scores_len = scores.length;
  RefuseOverlap(env, {&scores}, {&k, &v, &q, &mass, &draft});
  const Status s = run_kv_score(policy.c_str(), p);
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

Napi::Value KvSelect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"nKvHeads", "nKv", "nKeep", "scores", "out"});
  const int64_t n_kv_heads = GetInt(o, "nKvHeads");
  const int64_t n_kv = GetInt(o, "nKv");
  const int64_t n_keep = GetInt(o, "nKeep");
  const TypedArrayView scores = GetTypedArray(o, "scores", napi_float32_array, true);
  const TypedArrayView out = GetTypedArray(o, "out", napi_int32_array, true);
  RefuseOverlap(env, {&out}, {&scores});
  const Status s = run_kv_select(static_cast<const float*>(scores.data), scores.length, n_kv_heads, n_kv, n_keep,
                                 static_cast<int32_t*>(out.data), out.length);
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

Napi::Value KvCompact(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"nKvHeads", "nKv", "headDim", "nKeep", "dtype", "strides", "src", "indices", "dst"});
  KvCompactParams p;
  p.n_kv_heads = GetInt(o, "nKvHeads");
  p.n_kv = GetInt(o, "nKv");
  p.head_dim = GetInt(o, "headDim");
  p.n_keep = GetInt(o, "nKeep");
  p.dtype = ParseDtype(o, "dtype");
  ParseStrides(o, "strides", &p.head_stride, &p.row_stride);
  const TypedArrayView src = GetTypedArray(o, "src", FloatArrayType(p.dtype), true);
  const TypedArrayView idx = GetTypedArray(o, "indices", napi_int32_array, true);
  const TypedArrayView dst = GetTypedArray(o, "dst", FloatArrayType(p.dtype), true);
  RefuseOverlap(env, {&dst}, {&src, &idx});
  p.src = src.data; p.src_len = src.length;
  p.indices = static_cast<const int32_t*>(idx.data); p.indices_len = idx.length;
  p.dst = dst.data; p.dst_len = dst.length;
  const Status s = run_kv_compact(p);
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

}  // namespace

void RegisterKv(Napi::Env env, Napi::Object exports) {
  exports.Set("kvScore", Napi::Function::New(env, Guarded<KvScore>, "kvScore"));
  exports.Set("kvSelect", Napi::Function::New(env, Guarded<KvSelect>, "kvSelect"));
  exports.Set("kvCompact", Napi::Function::New(env, Guarded<KvCompact>, "kvCompact"));
}

}  // namespace tp::binding
