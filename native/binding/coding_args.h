// Argument readers for the coding bindings: lists of byte arrays and of
// token arrays, and the model. Each throws a JS error naming the field.
#pragma once
#include "napi_config.h"

#include <memory>
#include <string>
#include <vector>

#include "../coding/byte_model.h"
#include "../coding/coding_batch.h"
#include "model_binding.h"
#include "napi_args.h"

namespace tp::binding {

// One document's bytes: a view into JS memory (sync calls) or an owned
// copy (async calls and steppers, so later JS writes cannot race).
struct ByteInput {
  std::vector<uint8_t> owned;
  const uint8_t* data = nullptr;
  size_t size = 0;
  coding::ByteSpan span() const { return {data, size}; }
};

inline std::vector<ByteInput> GetByteList(Napi::Object o, const char* name, bool copy) {
  Napi::Value v = o.Get(name);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(name) + ": expected an array of Uint8Array, received " + describe(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<ByteInput> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    const std::string at = std::string(name) + "[" + std::to_string(i) + "]";
    if (!e.IsTypedArray() || e.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(o.Env(), at + ": expected a Uint8Array, received " + describe(e));
    }
    const RawTypedArray u = ReadTypedArray(o.Env(), e, at);
    const uint8_t* p = static_cast<const uint8_t*>(u.data);
    out[i].size = p == nullptr ? 0 : u.length;
    if (copy) {
      out[i].owned.assign(p, p + out[i].size);
      out[i].data = out[i].owned.data();
    } else {
      out[i].data = p;
    }
  }
  return out;
}

// Token arrays (Uint8Array, Uint16Array or Uint32Array), always copied to 32-bit.
inline std::vector<std::vector<uint32_t>> GetTokenList(Napi::Object o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsArray()) throw Napi::TypeError::New(o.Env(), std::string(name) + ": expected an array of token arrays, received " + describe(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::vector<uint32_t>> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    const std::string at = std::string(name) + "[" + std::to_string(i) + "]";
    if (!e.IsTypedArray()) throw Napi::TypeError::New(o.Env(), at + ": expected a Uint16Array or Uint32Array, received " + describe(e));
    const RawTypedArray t = ReadTypedArray(o.Env(), e, at);
    const size_t n = t.data == nullptr ? 0 : t.length;
    out[i].resize(n);
    switch (t.type) {
      case napi_uint8_array: { auto* p = static_cast<const uint8_t*>(t.data); for (size_t k = 0; k < n; k++) out[i][k] = p[k]; break; }
      case napi_uint16_array: { auto* p = static_cast<const uint16_t*>(t.data); for (size_t k = 0; k < n; k++) out[i][k] = p[k]; break; }
      case napi_uint32_array: { auto* p = static_cast<const uint32_t*>(t.data); for (size_t k = 0; k < n; k++) out[i][k] = p[k]; break; }
      default: throw Napi::TypeError::New(o.Env(), at + ": expected a Uint16Array or Uint32Array, received " + describe(e));
    }
  }
  return out;
}

inline std::shared_ptr<const coding::ByteModel> GetModel(Napi::Object o) {
  return ByteModelHandle::FromValue(o.Get("model"))->model();
}

// windowBits in [16, 2048] and tokenBits in [8, min(32, windowBits)].
inline void GetWindowParams(Napi::Object o, int* window_bits, int* token_bits) {
  const int64_t b = GetInt(o, "windowBits");
  if (b < coding::kMinWindowBits || b > coding::kMaxWindowBits) {
    throw Napi::RangeError::New(o.Env(), "windowBits: expected an integer in [16, 2048], received " + std::to_string(b));
  }
  const int64_t t = GetInt(o, "tokenBits");
  if (t < 8 || t > 32 || t > b) {
    throw Napi::RangeError::New(o.Env(), "tokenBits: expected an integer in [8, min(32, windowBits)], received " + std::to_string(t));
  }
  *window_bits = static_cast<int>(b);
  *token_bits = static_cast<int>(t);
}

inline Napi::Value TokensToJs(Napi::Env env, const std::vector<uint32_t>& tokens, int token_bits) {
  if (token_bits <= 16) {
    Napi::Uint16Array a = Napi::Uint16Array::New(env, tokens.size());
    for (size_t i = 0; i < tokens.size(); i++) a[i] = static_cast<uint16_t>(tokens[i]);
    return a;
  }
  Napi::Uint32Array a = Napi::Uint32Array::New(env, tokens.size());
  for (size_t i = 0; i < tokens.size(); i++) a[i] = tokens[i];
  return a;
}

inline Napi::Uint8Array BytesToJs(Napi::Env env, const std::vector<uint8_t>& bytes) {
  Napi::Uint8Array a = Napi::Uint8Array::New(env, bytes.size());
  if (!bytes.empty()) std::memcpy(a.Data(), bytes.data(), bytes.size());
  return a;
}

}  // namespace tp::binding
