// attention(params) and attentionAsync(params): the flat parameter object of
// lib/native.ts (NativeAttentionParams). Every field is re-checked here; the
// kernel's validator proves all reads and writes stay inside the buffers.
#include <cmath>
#include <string>
#include <vector>

#include "../attention/attention.h"
#include "attention_args.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

Napi::Value Attention(const Napi::CallbackInfo& info) {
  ParsedAttention parsed;
  ParseAttention(info, parsed);
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
    ParseAttention(info, parsed);
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
