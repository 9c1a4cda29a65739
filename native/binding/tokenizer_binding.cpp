// The tokenizer core (native/text/bpe.h, token_trie.h) for lib/tokenizer/:
//   tokCoreNew(blob: Uint8Array, offsets: Int32Array(size + 1), ordinary: Uint8Array(size),
//              merges: Int32Array(2 * nMerges) | undefined, ignoreMerges: boolean) -> handle
//   tokCoreEncode(handle, bytes: Uint8Array, starts: Int32Array) -> Int32Array of ids
//   tokCoreIdOf(handle, bytes: Uint8Array) -> id or -1
//   tokCoreWithPrefix(handle, bytes: Uint8Array) -> Int32Array (tokens starting with bytes)
//   tokCorePrefixOf(handle, bytes: Uint8Array) -> Int32Array (tokens that are prefixes of bytes)
// The handle is an External recognised by a type tag, never by its shape.
// Positional arguments: every view is read before any pointer is used, and
// no JS runs in between. The core copies what it keeps.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../text/bpe.h"
#include "../text/token_trie.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

constexpr napi_type_tag kTokCoreTag = {0x7b3e19c5a20d4f86ull, 0xd14a6c0e93f2b758ull};

struct TokCore {
  text::BpeVocab bpe;
  text::TokenTrie trie;
};

TokCore* CoreArg(const Napi::CallbackInfo& info) {
  Napi::Value v = info[0];
  bool ok = false;
  if (v.IsExternal() && napi_check_object_type_tag(v.Env(), v, &kTokCoreTag, &ok) == napi_ok && ok) {
    return v.As<Napi::External<TokCore>>().Data();
  }
  throw Napi::TypeError::New(info.Env(), "core: expected a tokenizer core handle (tokCoreNew), received " + describe(v));
}

Napi::Int32Array ToInt32Array(Napi::Env env, const std::vector<int32_t>& ids) {
  Napi::Int32Array out = Napi::Int32Array::New(env, ids.size());
  if (!ids.empty()) std::memcpy(out.Data(), ids.data(), ids.size() * sizeof(int32_t));
  return out;
}

Napi::Value TokCoreNew(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const TypedArrayView blob = ValueTypedArray(info[0], "blob", napi_uint8_array, true);
  const TypedArrayView offsets = ValueTypedArray(info[1], "offsets", napi_int32_array, true);
  const TypedArrayView ordinary = ValueTypedArray(info[2], "ordinary", napi_uint8_array, true);
  const TypedArrayView merges = ValueTypedArray(info[3], "merges", napi_int32_array, false);
  if (!info[4].IsBoolean()) throw Napi::TypeError::New(env, "ignoreMerges: expected a boolean, received " + describe(info[4]));
  const bool ignore_merges = info[4].As<Napi::Boolean>().Value();
  const int64_t size = ordinary.length;
  if (size < 1 || size > INT32_MAX - 1) throw Napi::RangeError::New(env, "ordinary: expected 1 .. 2^31 - 2 entries, received " + std::to_string(size));
  if (offsets.length != size + 1) {
    throw Napi::RangeError::New(env, "offsets: expected ordinary.length + 1 = " + std::to_string(size + 1) + " entries, received " + std::to_string(offsets.length));
  }
  if (merges.present && merges.length % 2 != 0) throw Napi::RangeError::New(env, "merges: expected an even length (pairs), received " + std::to_string(merges.length));
  const int32_t* offs = static_cast<const int32_t*>(offsets.data);
  std::vector<int32_t> offsets_copy(offs, offs + size + 1);  // checked again by bpe_build
  // Checked here too, so that the error names the argument (bpe_build's says "bpe:").
  for (int64_t i = 0; i <= size; i++) {
    const bool bad = i == 0 ? offs[0] != 0 : (offs[i] < offs[i - 1] || offs[i] > blob.length || (i == size && offs[i] != blob.length));
    if (bad) {
      throw Napi::RangeError::New(env, "offsets[" + std::to_string(i) + "]: expected non-decreasing offsets from 0 to blob.length = " + std::to_string(blob.length) +
                                           ", received " + std::to_string(offs[i]));
    }
  }
  const int32_t* mp = static_cast<const int32_t*>(merges.data);
  for (int64_t i = 0; merges.present && i < merges.length; i++) {
    if (mp[i] < 0 || mp[i] >= size) {
      throw Napi::RangeError::New(env, "merges[" + std::to_string(i) + "]: expected a token id in [0, " + std::to_string(size) + "), received " + std::to_string(mp[i]));
    }
  }
  auto core = std::make_unique<TokCore>();
  Status s = text::bpe_build(static_cast<const uint8_t*>(blob.data), blob.length, offsets_copy.data(), static_cast<const uint8_t*>(ordinary.data),
                             static_cast<int32_t>(size), merges.present ? static_cast<const int32_t*>(merges.data) : nullptr, merges.length / 2,
                             ignore_merges, &core->bpe);
  if (!s.is_ok()) ThrowStatus(env, s);
  s = core->trie.build(core->bpe.blob.data(), core->bpe.offsets.data(), core->bpe.ordinary.data(), core->bpe.size);
  if (!s.is_ok()) ThrowStatus(env, s);
  Napi::External<TokCore> handle = Napi::External<TokCore>::New(env, core.release(), [](Napi::Env, TokCore* c) { delete c; });
  if (napi_type_tag_object(env, handle, &kTokCoreTag) != napi_ok) throw Napi::Error::New(env, "tokCoreNew: cannot tag the handle");
  return handle;
}

Napi::Value TokCoreEncode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TokCore* core = CoreArg(info);
  const TypedArrayView bytes = ValueTypedArray(info[1], "bytes", napi_uint8_array, true);
  const TypedArrayView starts = ValueTypedArray(info[2], "starts", napi_int32_array, true);
  std::vector<int32_t> ids;
  const Status s = text::bpe_encode_pieces(core->bpe, static_cast<const uint8_t*>(bytes.data), bytes.length,
                                           static_cast<const int32_t*>(starts.data), starts.length, &ids);
  if (!s.is_ok()) ThrowStatus(env, s);
  return ToInt32Array(env, ids);
}

Napi::Value TokCoreIdOf(const Napi::CallbackInfo& info) {
  TokCore* core = CoreArg(info);
  const TypedArrayView bytes = ValueTypedArray(info[1], "bytes", napi_uint8_array, true);
  return Napi::Number::New(info.Env(), core->bpe.ids.find(static_cast<const uint8_t*>(bytes.data), bytes.length));
}

Napi::Value TokCoreWithPrefix(const Napi::CallbackInfo& info) {
  TokCore* core = CoreArg(info);
  const TypedArrayView bytes = ValueTypedArray(info[1], "bytes", napi_uint8_array, true);
  std::vector<int32_t> ids;
  core->trie.with_prefix(static_cast<const uint8_t*>(bytes.data), bytes.length, &ids);
  return ToInt32Array(info.Env(), ids);
}

Napi::Value TokCorePrefixOf(const Napi::CallbackInfo& info) {
  TokCore* core = CoreArg(info);
  const TypedArrayView bytes = ValueTypedArray(info[1], "bytes", napi_uint8_array, true);
  std::vector<int32_t> ids;
  core->trie.prefixes_of(static_cast<const uint8_t*>(bytes.data), bytes.length, &ids);
  return ToInt32Array(info.Env(), ids);
}

}  // namespace

void RegisterTokenizer(Napi::Env env, Napi::Object exports) {
  exports.Set("tokCoreNew", Napi::Function::New(env, Guarded<TokCoreNew>, "tokCoreNew"));
  exports.Set("tokCoreEncode", Napi::Function::New(env, Guarded<TokCoreEncode>, "tokCoreEncode"));
  exports.Set("tokCoreIdOf", Napi::Function::New(env, Guarded<TokCoreIdOf>, "tokCoreIdOf"));
  exports.Set("tokCoreWithPrefix", Napi::Function::New(env, Guarded<TokCoreWithPrefix>, "tokCoreWithPrefix"));
  exports.Set("tokCorePrefixOf", Napi::Function::New(env, Guarded<TokCorePrefixOf>, "tokCorePrefixOf"));
}

}  // namespace tp::binding
