// Native handle checks: an ObjectWrap is recognised by a type tag that
// napi_type_tag_object keeps with the object inside the engine, never by its
// prototype (Object.setPrototypeOf can make any handle pass instanceof).
// Every instance method of a handle class is registered through Method<>,
// which checks `this` before it is unwrapped, so calling one class's method
// on another class's object is a TypeError, not a type confusion.
#pragma once
#include "napi_config.h"

#include <string>

#include "napi_args.h"

namespace tp::binding {

// The tags (random 128-bit values, one per class).
constexpr napi_type_tag kKvCacheTag = {0x5f1b8a2c93d04e61ull, 0xa7c3e9f0126b48d5ull};
constexpr napi_type_tag kByteModelTag = {0x2d6e91f4b8a3c057ull, 0x93b0f2c64e1d7a8bull};
constexpr napi_type_tag kStepperTag = {0xc84f0a3e17d92b65ull, 0x4e2a9d7bc0f35168ull};

inline bool HasTag(Napi::Value v, const napi_type_tag& tag) {
  if (!v.IsObject()) return false;
  bool ok = false;
  return napi_check_object_type_tag(v.Env(), v, &tag, &ok) == napi_ok && ok;
}

// Tags a freshly constructed handle (end of its constructor).
inline void TagHandle(Napi::Value self, const napi_type_tag& tag) {
  if (napi_type_tag_object(self.Env(), self, &tag) != napi_ok) throw Napi::Error::New(self.Env());
}

// The T behind v, or a TypeError "<arg>: expected a <cls>, received ...".
template <typename T>
T* UnwrapChecked(Napi::Value v, const napi_type_tag& tag, const char* arg, const char* cls) {
  if (HasTag(v, tag)) {
    T* p = T::Unwrap(v.As<Napi::Object>());
    if (p != nullptr) return p;
  }
  throw Napi::TypeError::New(v.Env(), std::string(arg) + ": expected a " + cls + ", received " + describe(v));
}

// An instance method that checks `this` by tag, then runs under GuardAlloc.
template <typename T, Napi::Value (T::*M)(const Napi::CallbackInfo&)>
Napi::Value Method(const Napi::CallbackInfo& info) {
  T* self = UnwrapChecked<T>(info.This(), T::kTag, "this", T::kClassName);
  return GuardAlloc(info.Env(), [&] { return (self->*M)(info); });
}

// Defines the methods on ctor.prototype as plain functions (a class
// template cannot hold function values, and node-addon-api's InstanceMethod
// unwraps `this` before any check could run).
struct MethodSpec {
  const char* name;
  Napi::Value (*fn)(const Napi::CallbackInfo&);
};
inline void AddMethods(Napi::Env env, Napi::Function ctor, std::initializer_list<MethodSpec> methods) {
  Napi::Object proto = ctor.Get("prototype").As<Napi::Object>();
  for (const MethodSpec& m : methods) {
    proto.DefineProperty(Napi::PropertyDescriptor::Value(m.name, Napi::Function::New(env, m.fn, m.name),
                                                         static_cast<napi_property_attributes>(napi_writable | napi_configurable)));
  }
}

}  // namespace tp::binding
