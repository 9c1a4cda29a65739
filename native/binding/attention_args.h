// Reader of the flat attention parameter object (lib/native.ts
// NativeAttentionParams), shared by attention(), attentionAsync() and
// cudaAttention(). Every field is re-checked; the kernel's validator then
// proves all reads and writes stay inside the buffers.
#pragma once
#include "napi_config.h"

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

  // No output may share memory with an input or another output.
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
  return o;
}

}  // namespace tp::binding
