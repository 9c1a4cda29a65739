// Argument readers shared by the bindings: each throws a JS TypeError or
// RangeError naming the field, what was expected and what was received.
#pragma once
#include "napi_config.h"

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

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

// Phase one of reading a params object: every listed field is read once
// (running every getter, Proxy trap and array-element accessor now) into a
// fresh object of plain data properties, and phase two (the typed readers
// below, the pointers) reads only that snapshot, where no JS can run. So no
// getter can shrink, detach or free a buffer after its pointer is taken.
// Arrays are copied element by element (strides, docs, drafts); an object
// inside an array (drafts[i]) is copied the same way, one level deep. Other
// objects (typed arrays, handles) are kept as they are: reading them runs no JS.
constexpr uint32_t kMaxSnapshotArray = 1u << 24;

inline void DefineOwn(Napi::Object target, napi_value key, napi_value value) {
  napi_property_descriptor d = {nullptr, key, nullptr, nullptr, nullptr, value, napi_default_jsproperty, nullptr};
  const napi_status s = napi_define_properties(target.Env(), target, 1, &d);
  if (s != napi_ok) throw Napi::Error::New(target.Env());
}

inline Napi::Value SnapshotValue(Napi::Env env, Napi::Value v, const std::string& name, int depth);

inline Napi::Object SnapshotObject(Napi::Env env, Napi::Object o, const std::string& name, int depth) {
  Napi::Object copy = Napi::Object::New(env);
  napi_value keys = nullptr;
  if (napi_get_all_property_names(env, o, napi_key_own_only, static_cast<napi_key_filter>(napi_key_enumerable | napi_key_skip_symbols),
                                  napi_key_numbers_to_strings, &keys) != napi_ok) {
    throw Napi::Error::New(env);
  }
  Napi::Array names(env, keys);
  const uint32_t n = names.Length();
  if (n > 64) throw Napi::RangeError::New(env, name + ": expected an object with at most 64 fields, received " + std::to_string(n));
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value key = names.Get(i);
    DefineOwn(copy, key, SnapshotValue(env, o.Get(key), name + "." + key.ToString().Utf8Value(), depth - 1));
  }
  return copy;
}

inline Napi::Value SnapshotValue(Napi::Env env, Napi::Value v, const std::string& name, int depth) {
  if (!v.IsArray()) return v;
  if (depth <= 0) throw Napi::TypeError::New(env, name + ": expected no array nested this deep");
  Napi::Array a = v.As<Napi::Array>();
  const uint32_t n = a.Length();
  if (n > kMaxSnapshotArray) {
    throw Napi::RangeError::New(env, name + ": expected at most " + std::to_string(kMaxSnapshotArray) + " elements, received " + std::to_string(n));
  }
  Napi::Array copy = Napi::Array::New(env, n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value e = a.Get(i);
    const std::string at = name + "[" + std::to_string(i) + "]";
    if (e.IsObject() && !e.IsArray() && !e.IsTypedArray() && !e.IsFunction() && !e.IsArrayBuffer()) {
      e = SnapshotObject(env, e.As<Napi::Object>(), at, depth);
    } else {
      e = SnapshotValue(env, e, at, depth - 1);
    }
    DefineOwn(copy, Napi::String::New(env, std::to_string(i)), e);
  }
  return copy;
}

// The snapshot of o's fields `names` (absent fields stay absent).
inline Napi::Object Snapshot(Napi::Object o, std::initializer_list<const char*> names) {
  Napi::Env env = o.Env();
  Napi::Object copy = Napi::Object::New(env);
  for (const char* name : names) {
    Napi::Value v = o.Get(name);
    if (v.IsUndefined()) continue;
    DefineOwn(copy, Napi::String::New(env, name), SnapshotValue(env, v, name, 3));
  }
  return copy;
}

// ParamsArg then Snapshot: the params of one call, every getter already run.
inline Napi::Object SnapshotParams(const Napi::CallbackInfo& info, std::initializer_list<const char*> names) {
  return Snapshot(ParamsArg(info), names);
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
  int64_t element_bytes = 0;
  // The whole backing ArrayBuffer [buffer, buffer + buffer_bytes): two views
  // of one buffer overlap for the aliasing rule whatever their offsets.
  const char* buffer = nullptr;
  size_t buffer_bytes = 0;
  const char* name = "";
  Napi::Value value;
  size_t bytes() const { return static_cast<size_t>(length * element_bytes); }
};

inline const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_float32_array: return "a Float32Array";
    case napi_uint16_array: return "a Uint16Array";
    case napi_uint8_array: return "a Uint8Array";
    case napi_int32_array: return "an Int32Array";
    case napi_uint32_array: return "a Uint32Array";
    case napi_float64_array: return "a Float64Array";
    default: return "a typed array";
  }
}

inline int64_t element_size(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: return 8;
    default: return 4;
  }
}

// The raw facts of a typed array, read without running any JS. A typed array
// over a SharedArrayBuffer is refused with an error naming the argument:
// another thread could change an index or a length between the kernel's
// check and its use, so shared memory is never read in place.
struct RawTypedArray {
  napi_typedarray_type type = napi_uint8_array;
  void* data = nullptr;
  size_t length = 0;  // elements
  const char* buffer = nullptr;
  size_t buffer_bytes = 0;
};

inline RawTypedArray ReadTypedArray(Napi::Env env, Napi::Value v, const std::string& name) {
  RawTypedArray r;
  napi_value ab = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, v, &r.type, &r.length, &r.data, &ab, &offset) != napi_ok) {
    throw Napi::TypeError::New(env, name + ": expected a typed array, received " + describe(v));
  }
  bool plain = false;
  if (napi_is_arraybuffer(env, ab, &plain) != napi_ok || !plain) {
    throw Napi::TypeError::New(env, name + ": expected " + typed_array_name(r.type) +
                                        " over an ArrayBuffer, received one over a SharedArrayBuffer (copy it first, e.g. " +
                                        "new Float32Array(view))");
  }
  void* base = nullptr;
  if (napi_get_arraybuffer_info(env, ab, &base, &r.buffer_bytes) != napi_ok) {
    throw Napi::TypeError::New(env, name + ": could not read the typed array's buffer");
  }
  r.buffer = static_cast<const char*>(base);
  if (r.data == nullptr || r.length == 0) r.data = nullptr;
  return r;
}

// Reads v as a typed array of exactly `type` named `name` in errors; absent
// (undefined) is allowed unless `required`. Call it only when no JS can run
// between taking the pointer and the kernel's use of it (every field of a
// params object read first, or positional arguments).
inline TypedArrayView ValueTypedArray(Napi::Value v, const char* name, napi_typedarray_type type, bool required) {
  TypedArrayView view;
  if (v.IsUndefined() && !required) return view;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw Napi::TypeError::New(v.Env(), std::string(name) + ": expected " + typed_array_name(type) + ", received " + describe(v));
  }
  const RawTypedArray r = ReadTypedArray(v.Env(), v, name);
  view.present = true;
  view.name = name;
  view.element_bytes = element_size(type);
  view.length = static_cast<int64_t>(r.length);
  view.data = r.data;
  view.buffer = r.buffer;
  view.buffer_bytes = r.buffer_bytes;
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

// Reads o[name] as a typed array of exactly `type`; absent (undefined) is
// allowed unless `required`. Call it only after every field of the params
// object has been read (Snapshot): no JS may run between taking the pointer
// and the kernel's use of it.
inline TypedArrayView GetTypedArray(Napi::Object o, const char* name, napi_typedarray_type type, bool required) {
  return ValueTypedArray(o.Get(name), name, type, required);
}

// True when a and b, both non-empty, live in one backing buffer (any offsets).
inline bool SharesBuffer(const TypedArrayView& a, const TypedArrayView& b) {
  if (!a.present || !b.present || a.length == 0 || b.length == 0) return false;
  return a.buffer < b.buffer + b.buffer_bytes && b.buffer < a.buffer + a.buffer_bytes;
}

// The aliasing rule: no output may share memory with any input or with
// another output (kernels write outputs while they still read inputs; two
// views of one ArrayBuffer are refused whatever their offsets).
inline void RefuseOverlap(Napi::Env env, std::initializer_list<const TypedArrayView*> outputs,
                          std::initializer_list<const TypedArrayView*> inputs) {
  for (auto o = outputs.begin(); o != outputs.end(); ++o) {
    for (const TypedArrayView* in : inputs) {
      if (SharesBuffer(**o, *in)) {
        throw Napi::RangeError::New(env, std::string((*o)->name) + ": expected an output that shares no memory with the input " +
                                             in->name + ", received a view of the same ArrayBuffer");
      }
    }
    for (auto p = o + 1; p != outputs.end(); ++p) {
      if (SharesBuffer(**o, **p)) {
        throw Napi::RangeError::New(env, std::string((*p)->name) + ": expected an output that shares no memory with the output " +
                                             (*o)->name + ", received a view of the same ArrayBuffer");
      }
    }
  }
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
// machine) becomes a JS Error with code ERR_OUT_OF_MEMORY, a refused thread
// (std::system_error) one with code ERR_THREADS, instead of terminating the
// process (node-addon-api only converts Napi::Error).
template <typename Fn>
auto GuardAlloc(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    ThrowStatus(env, Status::out_of_memory("out of memory"));
  } catch (const std::length_error&) {
    ThrowStatus(env, Status::out_of_memory("out of memory: a requested size is too large"));
  } catch (const std::system_error& e) {
    Napi::Error err = Napi::Error::New(env, std::string("the system refused a resource (a thread?): ") + e.what());
    err.Set("code", "ERR_THREADS");
    throw err;
  } catch (const std::exception& e) {
    Napi::Error err = Napi::Error::New(env, std::string("native error: ") + e.what());
    err.Set("code", "ERR_NATIVE");
    throw err;
  }
}

// A plain entry point wrapped in GuardAlloc: Napi::Function::New(env, Guarded<Fn>).
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  return GuardAlloc(info.Env(), [&] { return Fn(info); });
}

}  // namespace tp::binding
