// attention(params) and attentionAsync(params): the flat parameter object of
// lib/native.ts (NativeAttentionParams). Every field is re-checked here; the
// kernel's validator proves all reads and writes stay inside the buffers.
#include <cmath>
#include <string>
#include <vector>

#include "../attention/attention.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

struct ParsedAttention {
  AttentionParams params;
  bool keep = false;  // async: hold references so the buffers outlive the call
  std::vector<Napi::Reference<Napi::Value>> keep_alive;
};

template <typename T>
T* take(ParsedAttention& out, const TypedArrayView& view) {
  if (!view.present) return nullptr;
  if (out.keep) out.keep_alive.push_back(Napi::Persistent(view.value));
  return static_cast<T*>(view.data);
}

void parse(const Napi::CallbackInfo& info, ParsedAttention& out) {
  Napi::Env env = info.Env();
  Napi::Object o = ParamsArg(info);
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

  p.q = take<const float>(out, q);
  p.k = take<const void>(out, k);
  p.v = take<const void>(out, v);
  p.out = take<float>(out, res);
  p.lse = take<float>(out, lse);
  p.key_mass = take<float>(out, mass);
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
  // Arrays that alias the output must not be inputs: the kernel writes out
  // while it still reads them.
  const auto aliases = [&](const TypedArrayView& in) { return in.length > 0 && res.length > 0 && in.data == res.data; };
  if (aliases(q) || aliases(k) || aliases(v)) {
    throw Napi::RangeError::New(env, "out: expected a buffer distinct from q, k and v");
  }
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  ParsedAttention parsed;
  parse(info, parsed);
  const Status s = run_attention(parsed.params);
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return info.Env().Undefined();
}

class AttentionWorker : public Napi::AsyncWorker {
 public:
  AttentionWorker(Napi::Env env, ParsedAttention&& parsed)
      : Napi::AsyncWorker(env, "tokenpress:attention"), parsed_(std::move(parsed)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override { status_ = run_attention(parsed_.params); }
  void OnOK() override {
    if (status_.is_ok()) deferred_.Resolve(Env().Undefined());
    else deferred_.Reject(StatusError(Env(), status_));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  ParsedAttention parsed_;
  Napi::Promise::Deferred deferred_;
  Status status_;
};

Napi::Value AttentionAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ParsedAttention parsed;
  parsed.keep = true;
  try {
    parse(info, parsed);
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  }
  // Validate on the main thread so argument errors reject before any work.
  const Status s = validate_attention(parsed.params);
  if (!s.is_ok()) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(StatusError(env, s));
    return deferred.Promise();
  }
  auto* worker = new AttentionWorker(env, std::move(parsed));
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionAsync", Napi::Function::New(env, AttentionAsync, "attentionAsync"));
}

}  // namespace tp::binding
