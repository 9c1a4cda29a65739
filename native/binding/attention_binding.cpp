// attention(params) and attentionAsync(params): the flat parameter object of
// lib/native.ts (NativeAttentionParams), or the positional form
// (NativeAttentionArgs: a Float64Array header, then the arrays) lib/attention.ts
// uses on every call. Every field is re-checked here; the
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
  if (IsAttentionArgs(info)) {
    ParseAttentionArgs(info, parsed);
  } else {
    ParseAttention(info, parsed);
  }
  const Status s = run_attention(parsed.params);
  if (!s.is_ok()) ThrowStatus(info.Env(), s);
  return info.Env().Undefined();
}

// Runs on a copy of the inputs and writes the outputs back when it settles
// (async_work.h), so the caller may touch its arrays meanwhile.
class AttentionWorker : public PromiseWork {
 public:
  AttentionWorker(Napi::Env env, ParsedAttention&& parsed) : PromiseWork(env, "tokenpress:attention"), parsed_(std::move(parsed)) {}

 private:
  Status Run() override { return run_attention(parsed_.params); }
  Napi::Value Build(Napi::Env env) override {
    const Status c = parsed_.stage->Commit(env);
    if (!c.is_ok()) throw Napi::Error(env, OutputChangedError(env, c));
    return env.Undefined();
  }
  ParsedAttention parsed_;
};

Napi::Value AttentionAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ParsedAttention parsed;
  parsed.stage = std::make_unique<Staging>();
  try {
    GuardAlloc(env, [&] {
      if (IsAttentionArgs(info)) {
        ParseAttentionArgs(info, parsed);
      } else {
        ParseAttention(info, parsed);
      }
    });
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
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Guarded<Attention>, "attention"));
  exports.Set("attentionAsync", Napi::Function::New(env, Guarded<AttentionAsync>, "attentionAsync"));
}

}  // namespace tp::binding
