// Native handle checks: an ObjectWrap is recognised by a type tag that
// napi_type_tag_object keeps with the object inside the engine, never by its
// prototype (Object.setPrototypeOf can make any handle pass instanceof).
// Every instance method of a handle class is registered through Method<>,
// which checks `this` before it is unwrapped, so calling one class's method
// on another class's object is a TypeError, not a type confusion.
#pragma once
#include <napi.h>

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

// The prototype entry for Method<T, M> (use inside DefineClass).
template <typename T, Napi::Value (T::*M)(const Napi::CallbackInfo&)>
typename Napi::ObjectWrap<T>::PropertyDescriptor MethodEntry(Napi::Env env, const char* name) {
  return Napi::ObjectWrap<T>::InstanceValue(name, Napi::Function::New(env, Method<T, M>, name), napi_default);
}

}  // namespace tp::binding
