// Reader of the flat attention parameter object (lib/native.ts
// NativeAttentionParams), shared by attention(), attentionAsync() and
// cudaAttention(). Every field is re-checked; the kernel's validator then
// proves all reads and writes stay inside the buffers.
#pragma once
#include "napi_config.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "../attention/attention.h"
#include "async_work.h"
#include "napi_args.h"

namespace tp::binding {

struct ParsedAttention {
  AttentionParams params;
  // async: inputs copied, outputs computed into copies (async_work.h)
  std::unique_ptr<Staging> stage;
};

template <typename T>
inline T* take(ParsedAttention& out, const TypedArrayView& view, bool output = false) {
  if (!view.present) return nullptr;
  if (!out.stage) return static_cast<T*>(view.data);
  return static_cast<T*>(output ? out.stage->Out(view) : const_cast<void*>(out.stage->In(view)));
}

// The arrays' checks and pointers, shared by both forms: no output may share
// memory with an input or another output; async calls take staged copies.
inline void TakeAttentionArrays(Napi::Env env, ParsedAttention& out, const TypedArrayView& q, const TypedArrayView& k,
                                const TypedArrayView& v, const TypedArrayView& res, const TypedArrayView& lse,
                                const TypedArrayView& mass, const TypedArrayView& bmask, const TypedArrayView& amask,
                                const TypedArrayView& tree, const TypedArrayView& idx) {
  AttentionParams& p = out.params;
  RefuseOverlap(env, {&res, &lse, &mass}, {&q, &k, &v, &bmask, &amask, &tree, &idx});
  p.q = take<const float>(out, q);
  p.k = take<const void>(out, k);
  p.v = take<const void>(out, v);
  p.out = take<float>(out, res, true);
  p.lse = take<float>(out, lse, true);
  p.key_mass = take<float>(out, mass, true);
  p.bool_mask = take<const uint8_t>(out, bmask);
  p.additive_mask = take<const float>(out, amask);
  p.tree_parents = take<const int32_t>(out, tree);
  p.indices = take<const int32_t>(out, idx);
  p.q_len = q.length;
  p.k_len = k.length;
  p.v_len = v.length;
  p.out_len = res.length;
  p.lse_len = lse.length;
  p.key_mass_len = mass.length;
  p.mask_len = bmask.present ? bmask.length : amask.length;
  p.tree_len = tree.length;
  p.indices_len = idx.length;
}

// Reads every field first (running every getter: SnapshotParams), then takes
// the pointers. Returns the snapshot (cudaAttention reads path and variant
// from it). Set out.stage before the call for an async call.
inline Napi::Object ParseAttention(const Napi::CallbackInfo& info, ParsedAttention& out) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"nHeads", "nKvHeads", "nQ", "nKv", "headDim", "nSel", "kDtype", "vDtype", "qStrides",
                                         "kStrides", "vStrides", "scale", "softcap", "causal", "q", "k", "v", "out", "lse",
                                         "keyMass", "boolMask", "additiveMask", "treeParents", "indices", "path", "variant"});
  AttentionParams& p = out.params;
  p.n_heads = GetInt(o, "nHeads");
  p.n_kv_heads = GetInt(o, "nKvHeads");
  p.n_q = GetInt(o, "nQ");
  p.n_kv = GetInt(o, "nKv");
  p.head_dim = GetInt(o, "headDim");
  p.n_sel = GetInt(o, "nSel");
  p.k_dtype = ParseDtype(o, "kDtype");
  p.v_dtype = ParseDtype(o, "vDtype");
  ParseStrides(o, "qStrides", &p.q_head_stride, &p.q_row_stride);
  ParseStrides(o, "kStrides", &p.k_head_stride, &p.k_row_stride);
  ParseStrides(o, "vStrides", &p.v_head_stride, &p.v_row_stride);
  p.scale = static_cast<float>(GetNumber(o, "scale"));
  p.softcap = static_cast<float>(GetNumber(o, "softcap"));
  p.causal = GetBool(o, "causal");

  const auto ktype = FloatArrayType(p.k_dtype);
  const auto vtype = FloatArrayType(p.v_dtype);
  // In this order (argument evaluation order is unspecified): the first bad array is the one named.
  const TypedArrayView q = GetTypedArray(o, "q", napi_float32_array, true);
  const TypedArrayView k = GetTypedArray(o, "k", ktype, true);
  const TypedArrayView v = GetTypedArray(o, "v", vtype, true);
  const TypedArrayView res = GetTypedArray(o, "out", napi_float32_array, true);
  const TypedArrayView lse = GetTypedArray(o, "lse", napi_float32_array, false);
  const TypedArrayView mass = GetTypedArray(o, "keyMass", napi_float32_array, false);
  const TypedArrayView bmask = GetTypedArray(o, "boolMask", napi_uint8_array, false);
  const TypedArrayView amask = GetTypedArray(o, "additiveMask", napi_float32_array, false);
  const TypedArrayView tree = GetTypedArray(o, "treeParents", napi_int32_array, false);
  const TypedArrayView idx = GetTypedArray(o, "indices", napi_int32_array, false);
  TakeAttentionArrays(env, out, q, k, v, res, lse, mass, bmask, amask, tree, idx);
  return o;
}

// The positional form (lib/native.ts NativeAttentionArgs): a Float64Array
// header of the numbers (kHeaderFields order), then q, k, v, out, lse,
// keyMass, boolMask, additiveMask, treeParents, indices (undefined where
// absent). Positional arguments and typed arrays run no JS when read, so no
// snapshot is needed: the header is copied first, then every value is checked
// as the object form checks it, with the same messages.
constexpr const char* kHeaderFields[] = {"nHeads",      "nKvHeads",    "nQ",          "nKv",         "headDim",     "nSel",
                                         "kDtype",      "vDtype",      "qStrides[0]", "qStrides[1]", "kStrides[0]", "kStrides[1]",
                                         "vStrides[0]", "vStrides[1]", "scale",       "softcap",     "causal"};
constexpr size_t kHeaderLen = sizeof(kHeaderFields) / sizeof(kHeaderFields[0]);
constexpr size_t kAttentionArgs = 11;

// True for the positional form: a Float64Array first (the object form takes a params object).
inline bool IsAttentionArgs(const Napi::CallbackInfo& info) {
  return info.Length() >= 1 && info[0].IsTypedArray() && info[0].As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
}

inline int64_t HeaderInt(Napi::Env env, double d, const char* name) { return ToInt(Napi::Number::New(env, d), name); }

inline DType HeaderDtype(Napi::Env env, double d, const char* name) {
  const int64_t code = HeaderInt(env, d, name);
  if (code < 0 || code > 2) {
    throw Napi::RangeError::New(env, std::string(name) + ": expected 0 (f32), 1 (f16) or 2 (bf16), received " + std::to_string(code));
  }
  return static_cast<DType>(code);
}

inline void ParseAttentionArgs(const Napi::CallbackInfo& info, ParsedAttention& out) {
  Napi::Env env = info.Env();
  if (info.Length() != kAttentionArgs) {
    throw Napi::TypeError::New(env, "attention: expected 11 arguments (header, q, k, v, out, lse, keyMass, boolMask, additiveMask, "
                                    "treeParents, indices), received " + std::to_string(info.Length()));
  }
  const TypedArrayView hv = ValueTypedArray(info[0], "header", napi_float64_array, true);
  if (hv.length != static_cast<int64_t>(kHeaderLen)) {
    throw Napi::RangeError::New(env, "header.length: expected " + std::to_string(kHeaderLen) + ", received " + std::to_string(hv.length));
  }
  double h[kHeaderLen];
  std::memcpy(h, hv.data, sizeof h);
  // Numbers that are integers in a double are the common case: test them
  // without making a JS value (ToInt builds the message on failure).
  auto integer = [&](size_t i) {
    const double d = h[i];
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) return static_cast<int64_t>(d);
    return HeaderInt(env, d, kHeaderFields[i]);
  };
  AttentionParams& p = out.params;
  p.n_heads = integer(0);
  p.n_kv_heads = integer(1);
  p.n_q = integer(2);
  p.n_kv = integer(3);
  p.head_dim = integer(4);
  p.n_sel = integer(5);
  p.k_dtype = HeaderDtype(env, h[6], "kDtype");
  p.v_dtype = HeaderDtype(env, h[7], "vDtype");
  p.q_head_stride = integer(8);
  p.q_row_stride = integer(9);
  p.k_head_stride = integer(10);
  p.k_row_stride = integer(11);
  p.v_head_stride = integer(12);
  p.v_row_stride = integer(13);
  p.scale = static_cast<float>(h[14]);
  p.softcap = static_cast<float>(h[15]);
  if (h[16] != 0 && h[16] != 1) {
    throw Napi::TypeError::New(env, "causal: expected a boolean (0 or 1 in the header), received " + describe(Napi::Number::New(env, h[16])));
  }
  p.causal = h[16] == 1;

  const auto ktype = FloatArrayType(p.k_dtype);
  const auto vtype = FloatArrayType(p.v_dtype);
  // In this order (argument evaluation order is unspecified): the first bad array is the one named.
  const TypedArrayView q = ValueTypedArray(info[1], "q", napi_float32_array, true);
  const TypedArrayView k = ValueTypedArray(info[2], "k", ktype, true);
  const TypedArrayView v = ValueTypedArray(info[3], "v", vtype, true);
  const TypedArrayView res = ValueTypedArray(info[4], "out", napi_float32_array, true);
  const TypedArrayView lse = ValueTypedArray(info[5], "lse", napi_float32_array, false);
  const TypedArrayView mass = ValueTypedArray(info[6], "keyMass", napi_float32_array, false);
  const TypedArrayView bmask = ValueTypedArray(info[7], "boolMask", napi_uint8_array, false);
  const TypedArrayView amask = ValueTypedArray(info[8], "additiveMask", napi_float32_array, false);
  const TypedArrayView tree = ValueTypedArray(info[9], "treeParents", napi_int32_array, false);
  const TypedArrayView idx = ValueTypedArray(info[10], "indices", napi_int32_array, false);
  TakeAttentionArrays(env, out, q, k, v, res, lse, mass, bmask, amask, tree, idx);
}

}  // namespace tp::binding
