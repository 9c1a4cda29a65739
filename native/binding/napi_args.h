// Argument readers shared by the bindings: each throws a JS TypeError or
// RangeError naming the field, what was expected and what was received.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "../core/dtype.h"
#include "../core/status.h"

namespace tp::binding {

inline std::string describe(Napi::Value v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) {  // as JS prints it: 1.5, NaN, -Infinity
    if (std::isnan(v.As<Napi::Number>().DoubleValue())) return "NaN";
    return v.ToString().Utf8Value();
  }
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
  if (v.IsTypedArray()) return "a typed array of another element type";
  if (v.IsArray()) return "an array";
  if (v.IsFunction()) return "a function";
  return "an object";
}

// An integer-valued number with |v| <= 2^53.
inline int64_t ToInt(Napi::Value v, const char* name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(name) + ": expected an integer, received " + describe(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9007199254740992.0) {
    throw Napi::RangeError::New(v.Env(), std::string(name) + ": expected an integer, received " + describe(v));
  }
  return static_cast<int64_t>(d);
}

inline int64_t GetInt(Napi::Object o, const char* name) { return ToInt(o.Get(name), name); }

inline double GetNumber(Napi::Object o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(name) + ": expected a number, received " + describe(v));
  return v.As<Napi::Number>().DoubleValue();
}

inline bool GetBool(Napi::Object o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(name) + ": expected a boolean, received " + describe(v));
  return v.As<Napi::Boolean>().Value();
}

// The one flat parameter object every native entry point takes.
inline Napi::Object ParamsArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "params: expected an object");
  return info[0].As<Napi::Object>();
}

// A dtype code of lib/native.ts DTYPE_CODE.
inline DType ParseDtype(Napi::Object obj, const char* name) {
  const int64_t code = GetInt(obj, name);
  if (code < 0 || code > 2) {
    throw Napi::RangeError::New(obj.Env(), std::string(name) + ": expected 0 (f32), 1 (f16) or 2 (bf16), received " + std::to_string(code));
  }
  return static_cast<DType>(code);
}

// [headStride, rowStride] in elements (signs are checked by the validators).
inline void ParseStrides(Napi::Object obj, const char* name, int64_t* head, int64_t* row) {
  Napi::Value v = obj.Get(name);
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) {
    throw Napi::TypeError::New(obj.Env(), std::string(name) + ": expected [headStride, rowStride], received " + describe(v));
  }
  Napi::Array a = v.As<Napi::Array>();
  *head = ToInt(a.Get(uint32_t(0)), name);
  *row = ToInt(a.Get(uint32_t(1)), name);
}

// The typed array that holds elements of a float dtype.
inline napi_typedarray_type FloatArrayType(DType t) { return t == DType::F32 ? napi_float32_array : napi_uint16_array; }

struct TypedArrayView {
  bool present = false;
  void* data = nullptr;
  int64_t length = 0;  // elements
  Napi::Value value;
};

inline const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return "a Float32Array";
    case napi_uint16_array: return "a Uint16Array";
    case napi_uint8_array: return "a Uint8Array";
    case napi_int32_array: return "an Int32Array";
    default: return "a typed array";
  }
}

// Reads o[name] as a typed array of exactly `type`; absent (undefined) is
// allowed unless `required`.
inline TypedArrayView GetTypedArray(Napi::Object o, const char* name, napi_typedarray_type type, bool required) {
  TypedArrayView view;
  Napi::Value v = o.Get(name);
  if (v.IsUndefined() && !required) return view;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(o.Env(), std::string(name) + ": expected " + typed_array_name(type) + ", received " + describe(v));
  }
  Napi::TypedArray a = v.As<Napi::TypedArray>();
  Napi::ArrayBuffer buffer = a.ArrayBuffer();
  view.present = true;
  view.length = static_cast<int64_t>(a.ElementLength());
  view.data = buffer.Data() == nullptr ? nullptr : static_cast<char*>(buffer.Data()) + a.ByteOffset();
  if (view.data == nullptr || view.length == 0) {
    // Empty or detached: still present (kernels test presence by pointer),
    // with no element that may be read or written.
    alignas(64) static char empty[64];
    view.data = empty;
    view.length = 0;
  }
  view.value = v;
  return view;
}

// The JS `code` of a non-argument status.
inline const char* StatusCodeName(StatusCode c) {
  switch (c) {
    case StatusCode::OutOfMemory: return "ERR_OUT_OF_MEMORY";
    case StatusCode::Device: return "ERR_CUDA";
    case StatusCode::Unsupported: return "ERR_UNSUPPORTED";
    default: return "ERR_NATIVE";
  }
}

inline Napi::Value StatusError(Napi::Env env, const Status& s) {
  Napi::Error e = s.code == StatusCode::InvalidArgument ? Napi::RangeError::New(env, s.message) : Napi::Error::New(env, s.message);
  if (s.code != StatusCode::InvalidArgument) e.Set("code", StatusCodeName(s.code));
  return e.Value();
}

[[noreturn]] inline void ThrowStatus(Napi::Env env, const Status& s) { throw Napi::Error(env, StatusError(env, s)); }

// Runs fn on the main thread; a failed allocation (hostile sizes, a full
// machine) becomes a JS Error with code ERR_OUT_OF_MEMORY instead of
// terminating the process (node-addon-api only converts Napi::Error).
template <typename Fn>
auto GuardAlloc(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    ThrowStatus(env, Status::out_of_memory("out of memory"));
  } catch (const std::length_error&) {
    ThrowStatus(env, Status::out_of_memory("out of memory: a requested size is too large"));
  }
}

}  // namespace tp::binding
