// backendInfo, setThreads, setIsa.
#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../cuda/cuda_probe.h"
#include "bindings.h"

namespace tp::binding {
namespace {

Napi::Value BackendInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("isa", isa_name(active_isa()));
  out.Set("detectedIsa", isa_name(detected_isa()));
  const CpuFeatures& f = cpu_features();
  Napi::Object feats = Napi::Object::New(env);
  feats.Set("avx2", f.avx2);
  feats.Set("fma", f.fma);
  feats.Set("f16c", f.f16c);
  feats.Set("avx512f", f.avx512f);
  feats.Set("avx512bw", f.avx512bw);
  feats.Set("avx512vl", f.avx512vl);
  feats.Set("avx512dq", f.avx512dq);
  feats.Set("avx512fp16", f.avx512fp16);
  feats.Set("avx512bf16", f.avx512bf16);
  feats.Set("amxTile", f.amx_tile);
  out.Set("features", feats);
  out.Set("threads", ThreadPool::instance().size());
  const CudaStatus cuda = cuda_status();
  Napi::Object c = Napi::Object::New(env);
  c.Set("compiled", cuda.compiled);
  c.Set("deviceCount", cuda.device_count);
  c.Set("error", cuda.error);
  c.Set("devices", cuda.devices);
  out.Set("cuda", c);
  return out;
}

void SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "n: expected an integer in [1, 1024]");
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1 && n <= 1024) || n != static_cast<int>(n)) {
    throw Napi::RangeError::New(info.Env(), "n: expected an integer in [1, 1024], received " + std::to_string(n));
  }
  ThreadPool::instance().resize(static_cast<int>(n));
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "isa: expected a string");
  IsaLevel level;
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (!parse_isa(name.c_str(), &level)) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), set_active_isa(level));
}

}  // namespace

void RegisterSystem(Napi::Env env, Napi::Object exports) {
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfo, "backendInfo"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
}

}  // namespace tp::binding
