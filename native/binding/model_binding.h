// ByteModelHandle: a frozen byte model (native/coding/kn_model.h) as a JS
// object, exported on the addon as `ByteModel` (lib/coding/model.ts wraps it).
// The coder bindings take one as an argument: FromValue checks it and
// model() shares the immutable model with native code (thread-safe reads).
#pragma once
#include "napi_config.h"

#include <cstdint>
#include <memory>

#include "../coding/kn_model.h"

namespace tp::binding {

class ByteModelHandle : public Napi::ObjectWrap<ByteModelHandle> {
 public:
  static const napi_type_tag kTag;  // handles.h: kByteModelTag
  static constexpr const char* kClassName = "ByteModel";
  static Napi::Function Init(Napi::Env env);
  // A new JS ByteModel object owning `model`.
  static Napi::Object NewInstance(Napi::Env env, std::shared_ptr<const coding::KnModel> model);
  // The handle inside v; throws a TypeError naming `arg` when v is not a ByteModel.
  static ByteModelHandle* FromValue(Napi::Value v, const char* arg = "model");

  explicit ByteModelHandle(const Napi::CallbackInfo& info);
  // Drops the model, then frees its device copies if nothing else holds it
  // (native/cuda/cuda_equal_info.h).
  ~ByteModelHandle() override;

  std::shared_ptr<const coding::ByteModel> model() const { return model_; }
  const coding::KnModel& kn() const { return *model_; }
  uint64_t identity() const { return model_->identity(); }

 private:
  static Napi::Value FromBytes(const Napi::CallbackInfo& info);
  Napi::Value Serialize(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Masses(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value BenchMasses(const Napi::CallbackInfo& info);

  std::shared_ptr<const coding::KnModel> model_;
};

// "0123456789abcdef": the 16 lowercase hex digits of a model identity.
std::string IdentityHex(uint64_t id);

}  // namespace tp::binding
