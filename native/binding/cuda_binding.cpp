// Internal GPU entry points (compiled in every build):
//   cudaAttention(params)       NativeAttentionParams + path: copies the host
//                               inputs to the device, runs, copies out / lse
//                               back (synchronous; used by test/gpu).
//   cudaBenchAttention(params)  device-resident K/V of a shape, the kernel
//                               timed with CUDA events, and the device's copy
//                               and read bandwidth measured in the same call.
// Without the CUDA build or without a device both throw an Error with code
// 'ERR_NO_CUDA' and the reason; CUDA failures throw code 'ERR_CUDA'.
#include <string>

#include "../cuda/cuda_attention.h"
#include "../cuda/cuda_kv_cache.h"
#include "../cuda/cuda_probe.h"
#include "attention_args.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

void RequireDevice(Napi::Env env, const char* fn) {
  const CudaStatus c = cuda_status();
  if (c.compiled && c.device_count > 0) return;
  Napi::Error e = Napi::Error::New(env, std::string(fn) + ": no CUDA device available (" +
                                            (c.compiled ? c.error : std::string("this build has no CUDA backend; npm run build:cuda builds it")) + ")");
  e.Set("code", "ERR_NO_CUDA");
  throw e;
}

[[noreturn]] void ThrowCuda(Napi::Env env, const Status& s) {
  if (s.code == StatusCode::InvalidArgument) ThrowStatus(env, s);
  Napi::Error e = Napi::Error::New(env, s.message);
  e.Set("code", s.code == StatusCode::OutOfMemory ? "ERR_OUT_OF_MEMORY" : s.code == StatusCode::Unsupported ? "ERR_UNSUPPORTED" : "ERR_CUDA");
  throw e;
}

// params.path: undefined or 0 (auto), 1 (decode), 2 (prefill).
cuda::AttentionPath ParsePath(Napi::Object o) {
  if (o.Get("path").IsUndefined()) return cuda::AttentionPath::Auto;
  const int64_t code = GetInt(o, "path");
  if (code < 0 || code > 2) {
    throw Napi::RangeError::New(o.Env(), "path: expected 0 (auto), 1 (decode) or 2 (prefill), received " + std::to_string(code));
  }
  return static_cast<cuda::AttentionPath>(code);
}

int64_t GetIntIn(Napi::Object o, const char* name, int64_t lo, int64_t hi);

// params.variant: undefined or 0 (default kernels), 1, 2 (cuda_attention.h).
int ParseVariant(Napi::Object o) {
  if (o.Get("variant").IsUndefined()) return 0;
  return static_cast<int>(GetIntIn(o, "variant", 0, 2));
}

int64_t GetIntIn(Napi::Object o, const char* name, int64_t lo, int64_t hi) {
  const int64_t v = GetInt(o, name);
  if (v < lo || v > hi) {
    throw Napi::RangeError::New(o.Env(), std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                             std::to_string(hi) + "], received " + std::to_string(v));
  }
  return v;
}

Napi::Value CudaAttention(const Napi::CallbackInfo& info) {
  ParsedAttention parsed;
  // Argument errors come first, device or not; path and variant come from
  // the snapshot, so no getter runs after the pointers are taken.
  const Napi::Object o = ParseAttention(info, parsed);
  const cuda::AttentionPath path = ParsePath(o);
  const int variant = ParseVariant(o);
  RequireDevice(info.Env(), "cudaAttention");
  const Status s = cuda::attention_on_device(parsed.params, path, variant);
  if (!s.is_ok()) ThrowCuda(info.Env(), s);
  return info.Env().Undefined();
}

Napi::Value CudaBenchAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = SnapshotParams(info, {"nHeads", "nKvHeads", "nQ", "nKv", "headDim", "kvDtype", "causal", "path", "splits",
                                         "variant", "nSel", "warmup", "iters", "bandwidthBytes"});
  cuda::BenchConfig c;
  c.n_heads = GetIntIn(o, "nHeads", 1, 65535);
  c.n_kv_heads = GetIntIn(o, "nKvHeads", 1, 65535);
  c.n_q = GetIntIn(o, "nQ", 1, int64_t(1) << 30);
  c.n_kv = GetIntIn(o, "nKv", 1, int64_t(1) << 30);
  c.head_dim = GetIntIn(o, "headDim", 1, 1024);
  const int64_t dtype = GetIntIn(o, "kvDtype", 1, 2);
  c.kv_dtype = static_cast<DType>(dtype);
  c.causal = GetBool(o, "causal");
  c.path = ParsePath(o);
  if (!o.Get("splits").IsUndefined()) c.decode_splits = GetIntIn(o, "splits", 0, int64_t(1) << 20);
  c.variant = ParseVariant(o);
  if (!o.Get("nSel").IsUndefined()) c.n_sel = GetIntIn(o, "nSel", 0, int64_t(1) << 30);
  c.warmup = static_cast<int>(GetIntIn(o, "warmup", 0, 1000));
  c.iters = static_cast<int>(GetIntIn(o, "iters", 1, 10000));
  c.bandwidth_bytes = GetIntIn(o, "bandwidthBytes", 1 << 20, int64_t(1) << 36);
  RequireDevice(env, "cudaBenchAttention");
  cuda::BenchResult r;
  const Status s = cuda::bench_attention(c, &r);
  if (!s.is_ok()) ThrowCuda(env, s);
  Napi::Object out = Napi::Object::New(env);
  out.Set("kernelMs", r.kernel_ms);
  out.Set("kernelMinMs", r.kernel_min_ms);
  out.Set("bytes", r.bytes);
  out.Set("flops", r.flops);
  out.Set("copyBytesPerS", r.copy_bytes_per_s);
  out.Set("readBytesPerS", r.read_bytes_per_s);
  out.Set("splits", r.splits);
  out.Set("path", r.path == static_cast<int>(cuda::AttentionPath::Prefill) ? "prefill" : "decode");
  out.Set("device", std::string(r.device));
  return out;
}

}  // namespace

// cudaFailAllocationsAfter(n): tests only (cuda_kv_cache.h).
Napi::Value CudaFailAllocationsAfter(const Napi::CallbackInfo& info) {
  cuda::fail_device_allocations_after(info.Length() > 0 ? ToInt(info[0], "n") : -1);
  return info.Env().Undefined();
}

void RegisterCuda(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaFailAllocationsAfter", Napi::Function::New(env, Guarded<CudaFailAllocationsAfter>, "cudaFailAllocationsAfter"));
  exports.Set("cudaAttention", Napi::Function::New(env, Guarded<CudaAttention>, "cudaAttention"));
  exports.Set("cudaBenchAttention", Napi::Function::New(env, Guarded<CudaBenchAttention>, "cudaBenchAttention"));
}

}  // namespace tp::binding
