// dynamicBpe(params): batch-level BPE (native/text/dynamic_bpe.h) with the
// pair-validity rule supplied by JS. params: tokens (Int32Array, all
// sequences back to back), offsets (Float64Array [nSeq + 1]), firstNewId,
// maxMerges, targetTotal, minCount, isValidPairs(a, b) -> Uint8Array (a and b
// Int32Arrays of pair halves; one call for the input's pairs, then one per
// merge for the pairs it created), onMerge(a, b, id, count). Synchronous: the
// validity rule runs the tokenizer's JS pre-tokenizer, so the work cannot
// leave the main thread. Inputs are copied
// before the first callback runs, so a callback that changes or detaches
// them changes nothing here; a callback that throws (or returns anything but
// a Uint8Array of one entry per pair) stops the run and its error is rethrown.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../text/dynamic_bpe.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

struct DynBpeCallbacks {
  Napi::Env env;
  Napi::Function is_valid;
  Napi::Function on_merge;
  std::optional<Napi::Error> error;
};

// Asks isValidPairs(a: Int32Array, b: Int32Array) -> Uint8Array (1 = may merge) for n pairs.
int DynBpeOracleJs(void* ctx, const int32_t* a, const int32_t* b, int64_t n, uint8_t* out) {
  auto* c = static_cast<DynBpeCallbacks*>(ctx);
  Napi::HandleScope scope(c->env);
  try {
    Napi::Int32Array ja = Napi::Int32Array::New(c->env, static_cast<size_t>(n));
    Napi::Int32Array jb = Napi::Int32Array::New(c->env, static_cast<size_t>(n));
    std::copy(a, a + n, ja.Data());
    std::copy(b, b + n, jb.Data());
    Napi::Value v = c->is_valid.Call({ja, jb});
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      c->error = Napi::TypeError::New(c->env, "isValidPairs: expected a Uint8Array result, received " + describe(v));
      return -1;
    }
    const RawTypedArray r = ReadTypedArray(c->env, v, "isValidPairs result");
    if (static_cast<int64_t>(r.length) != n) {
      c->error = Napi::RangeError::New(c->env, "isValidPairs: expected a result of " + std::to_string(n) + " entries, received " + std::to_string(r.length));
      return -1;
    }
    if (n > 0) std::copy(static_cast<const uint8_t*>(r.data), static_cast<const uint8_t*>(r.data) + n, out);
    return 0;
  } catch (const Napi::Error& e) {
    c->error = e;
    return -1;
  }
}

int DynBpeOnMergeJs(void* ctx, int32_t a, int32_t b, int32_t id, int64_t count) {
  auto* c = static_cast<DynBpeCallbacks*>(ctx);
  Napi::HandleScope scope(c->env);
  try {
    c->on_merge.Call({Napi::Number::New(c->env, a), Napi::Number::New(c->env, b), Napi::Number::New(c->env, id),
                      Napi::Number::New(c->env, static_cast<double>(count))});
    return 0;
  } catch (const Napi::Error& e) {
    c->error = e;
    return -1;
  }
}

Napi::Function GetFunction(Napi::Object o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsFunction()) throw Napi::TypeError::New(o.Env(), std::string(name) + ": expected a function, received " + describe(v));
  return v.As<Napi::Function>();
}

// A new typed array of element type E holding v.
template <typename E, typename T>
Napi::TypedArrayOf<E> CopyOut(Napi::Env env, const std::vector<T>& v) {
  Napi::TypedArrayOf<E> arr = Napi::TypedArrayOf<E>::New(env, v.size());
  E* d = arr.Data();
  for (size_t i = 0; i < v.size(); i++) d[i] = static_cast<E>(v[i]);
  return arr;
}

Napi::Value DynamicBpe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"tokens", "offsets", "firstNewId", "maxMerges", "targetTotal", "minCount", "isValidPairs", "onMerge"});
  const int64_t first_new_id = GetInt(o, "firstNewId");
  const int64_t max_merges = GetInt(o, "maxMerges");
  const int64_t target_total = GetInt(o, "targetTotal");
  const int64_t min_count = GetInt(o, "minCount");
  DynBpeCallbacks cb{env, GetFunction(o, "isValidPairs"), GetFunction(o, "onMerge"), std::nullopt};
  const TypedArrayView tokens = GetTypedArray(o, "tokens", napi_int32_array, true);
  const TypedArrayView offsets = GetTypedArray(o, "offsets", napi_float64_array, true);
  if (offsets.length < 1) throw Napi::RangeError::New(env, "offsets: expected nSeq + 1 >= 1 entries, received 0");
  if (tokens.length >= INT32_MAX) throw Napi::RangeError::New(env, "tokens: expected fewer than 2^31 - 1 tokens, received " + std::to_string(tokens.length));
  // Copies: the callbacks below run JS, which may change or detach the caller's arrays.
  const auto* tok_src = static_cast<const int32_t*>(tokens.data);
  const std::vector<int32_t> tok(tok_src, tok_src + tokens.length);
  std::vector<int64_t> off(static_cast<size_t>(offsets.length));
  const auto* off_src = static_cast<const double*>(offsets.data);
  for (int64_t i = 0; i < offsets.length; i++) {
    const double d = off_src[i];
    if (!(d >= 0 && d <= static_cast<double>(tokens.length)) || d != static_cast<double>(static_cast<int64_t>(d))) {
      throw Napi::RangeError::New(env, "offsets[" + std::to_string(i) + "]: expected an integer in [0, " + std::to_string(tokens.length) + "], received " +
                                           describe(Napi::Number::New(env, d)));
    }
    off[static_cast<size_t>(i)] = static_cast<int64_t>(d);
  }
  if (first_new_id < 0 || first_new_id > INT32_MAX) {
    throw Napi::RangeError::New(env, "firstNewId: expected an integer in [0, 2^31), received " + std::to_string(first_new_id));
  }
  // The kernel refuses these too, but in one message that names no argument.
  if (max_merges < 0 || max_merges > INT32_MAX - first_new_id) {
    throw Napi::RangeError::New(env, "maxMerges: expected an integer in [0, 2^31 - 1 - firstNewId = " + std::to_string(INT32_MAX - first_new_id) + "], received " +
                                         std::to_string(max_merges));
  }
  if (target_total < 0) throw Napi::RangeError::New(env, "targetTotal: expected an integer >= 0, received " + std::to_string(target_total));
  if (min_count < 1) throw Napi::RangeError::New(env, "minCount: expected an integer >= 1, received " + std::to_string(min_count));
  text::DynBpeInput in;
  in.tokens = tok.data();
  in.n = static_cast<int64_t>(tok.size());
  in.offsets = off.data();
  in.n_seq = offsets.length - 1;
  in.first_new_id = static_cast<int32_t>(first_new_id);
  in.max_merges = max_merges;
  in.target_total = target_total;
  in.min_count = min_count;
  text::DynBpeOutput out;
  const Status s = text::dynamic_bpe(in, DynBpeOracleJs, DynBpeOnMergeJs, &cb, &out);
  if (cb.error) throw *cb.error;
  if (!s.is_ok()) ThrowStatus(env, s);
  Napi::Object r = Napi::Object::New(env);
  r.Set("tokens", CopyOut<int32_t>(env, out.tokens));
  r.Set("starts", CopyOut<int32_t>(env, out.starts));
  r.Set("offsets", CopyOut<double>(env, out.offsets));
  r.Set("mergeA", CopyOut<int32_t>(env, out.merge_a));
  r.Set("mergeB", CopyOut<int32_t>(env, out.merge_b));
  r.Set("mergeCount", CopyOut<double>(env, out.merge_count));
  r.Set("mergeApplied", CopyOut<double>(env, out.merge_applied));
  return r;
}

}  // namespace

void RegisterDynamicBpe(Napi::Env env, Napi::Object exports) {
  exports.Set("dynamicBpe", Napi::Function::New(env, Guarded<DynamicBpe>, "dynamicBpe"));
}

}  // namespace tp::binding
