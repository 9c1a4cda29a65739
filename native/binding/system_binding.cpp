// backendInfo, setThreads, setIsa.
#include <string>
#include <system_error>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../cuda/cuda_probe.h"
#include "bindings.h"
#include "napi_args.h"

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
  feats.Set("avx512vnni", f.avx512vnni);
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

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "n: expected an integer in [1, 1024]");
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1 && n <= 1024) || n != static_cast<int>(n)) {
    throw Napi::RangeError::New(info.Env(), "n: expected an integer in [1, 1024], received " + std::to_string(n));
  }
  try {
    ThreadPool::instance().resize(static_cast<int>(n));
  } catch (const std::system_error& e) {
    // The system refused a thread (ulimit, memory): the pool is unchanged
    // (or, if even its old threads could not restart, smaller) and usable.
    Napi::Error err = Napi::Error::New(info.Env(), std::string("n: ") + e.what() + " (the system refused a thread)");
    err.Set("code", "ERR_THREADS");
    throw err;
  }
  return info.Env().Undefined();
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
  exports.Set("backendInfo", Napi::Function::New(env, Guarded<BackendInfo>, "backendInfo"));
  exports.Set("setThreads", Napi::Function::New(env, Guarded<SetThreads>, "setThreads"));
  exports.Set("setIsa", Napi::Function::New(env, Guarded<SetIsa>, "setIsa"));
}

}  // namespace tp::binding
