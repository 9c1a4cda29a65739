// tokenKnTrain(params), tokenKnNext(params): the token-level Kneser-Ney model
// of native/text/token_kn.h. The model is a plain { blob: Uint32Array,
// discounts: Float64Array } the caller owns; every query re-validates it
// (token_kn_next), so a damaged or hostile blob is an error, never a bad read.
//
//   tokenKnTrain({ tokens: Uint32Array, vocab, order }) -> { blob, discounts }
//   tokenKnNext({ blob, discounts, context: Uint32Array, out: Float64Array [vocab] }) -> undefined
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../text/token_kn.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

Napi::Value TokenKnTrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "vocab", "order"});
  const int64_t vocab = GetInt(o, "vocab");
  const int64_t order = GetInt(o, "order");
  if (vocab < 1 || vocab > text::kTokenKnMaxVocab) throw Napi::RangeError::New(env, "vocab: expected an integer in [1, 2^24], received " + std::to_string(vocab));
  if (order < 1 || order > text::kTokenKnMaxOrder) throw Napi::RangeError::New(env, "order: expected an integer in [1, 8], received " + std::to_string(order));
  const TypedArrayView tokens = GetTypedArray(o, "tokens", napi_uint32_array, true);
  std::vector<uint32_t> blob;
  std::vector<double> discounts;
  const Status s = text::token_kn_train(static_cast<const uint32_t*>(tokens.data), static_cast<size_t>(tokens.length),
                                        static_cast<uint32_t>(vocab), static_cast<int>(order), &blob, &discounts);
  if (!s.is_ok()) ThrowStatus(env, s);
  Napi::Uint32Array b = Napi::Uint32Array::New(env, blob.size());
  std::memcpy(b.Data(), blob.data(), blob.size() * sizeof(uint32_t));
  Napi::Float64Array d = Napi::Float64Array::New(env, discounts.size());
  std::memcpy(d.Data(), discounts.data(), discounts.size() * sizeof(double));
  Napi::Object out = Napi::Object::New(env);
  out.Set("blob", b);
  out.Set("discounts", d);
  return out;
}

Napi::Value TokenKnNext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"blob", "discounts", "context", "out"});
  const TypedArrayView blob = GetTypedArray(o, "blob", napi_uint32_array, true);
  const TypedArrayView discounts = GetTypedArray(o, "discounts", napi_float64_array, true);
  const TypedArrayView context = GetTypedArray(o, "context", napi_uint32_array, true);
  const TypedArrayView out = GetTypedArray(o, "out", napi_float64_array, true);
  RefuseOverlap(env, {&out}, {&blob, &discounts, &context});
  const Status s = text::token_kn_next(static_cast<const uint32_t*>(blob.data), static_cast<size_t>(blob.length),
                                       static_cast<const double*>(discounts.data), static_cast<size_t>(discounts.length),
                                       static_cast<const uint32_t*>(context.data), static_cast<size_t>(context.length),
                                       static_cast<double*>(out.data), static_cast<size_t>(out.length));
  if (!s.is_ok()) ThrowStatus(env, s);
  return env.Undefined();
}

}  // namespace

void RegisterTokenKn(Napi::Env env, Napi::Object exports) {
  exports.Set("tokenKnTrain", Napi::Function::New(env, Guarded<TokenKnTrain>, "tokenKnTrain"));
  exports.Set("tokenKnNext", Napi::Function::New(env, Guarded<TokenKnNext>, "tokenKnNext"));
}

}  // namespace tp::binding
