// The vision kernels (issue 19) on the device and their host model:
//   visionKernels(params) -> result
// params: op (0 normalize, 1 dot, 2 tome, 3 divprune, 4 kmeans, 5 topk),
// device (0 the host model of the kernels, native/reduce/reduce_device_model;
// 1 the CUDA device, code ERR_NO_CUDA without one; 2 the device when there
// is one, else the host model), x f32 (op's shape, cuda_reduce.h), n, d, and
// per op: b f32 + nb (dot: b rows; kmeans: centroids), normalize (dot),
// tokens f32 + dt, sizes f32 (optional), r, protectFirst (tome), k (divprune,
// topk), rows (topk; x is scores [rows, n]).
// result: { device: 'cpu' | 'cuda', kernelMs, out?, outSizes?, nodeMax?,
// nodeIdx?, idx?, counts? } (cuda_reduce.h names the fields per op).
// Inputs are copied before anything runs; internal (tests and benchmarks).
#include <cstring>
#include <string>

#include "../cuda/cuda_probe.h"
#include "../cuda/cuda_reduce.h"
#include "../reduce/reduce_device_model.h"
#include "bindings.h"
#include "napi_args.h"

namespace tp::binding {
namespace {

using cuda::VisionJob;
using cuda::VisionOp;

constexpr int64_t kMaxElems = int64_t(1) << 31;  // per input array (f32 elements)

int64_t IntIn(Napi::Object o, const char* name, int64_t lo, int64_t hi) {
  const int64_t v = GetInt(o, name);
  if (v < lo || v > hi) {
    throw Napi::RangeError::New(o.Env(), std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                             "], received " + std::to_string(v));
  }
  return v;
}

// o[name] as a Float32Array of exactly `count` elements, copied.
std::vector<float> F32Exactly(Napi::Object o, const char* name, int64_t count, const std::string& shape) {
  const TypedArrayView v = GetTypedArray(o, name, napi_float32_array, true);
  if (v.length != count) {
    throw Napi::RangeError::New(o.Env(), std::string(name) + ": expected " + std::to_string(count) + " elements (" + shape + "), received " +
                                             std::to_string(v.length));
  }
  const float* p = static_cast<const float*>(v.data);
  return std::vector<float>(p, p + count);
}

Napi::Float32Array F32Out(Napi::Env env, const std::vector<float>& v) {
  Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
  return a;
}
Napi::Int32Array I32Out(Napi::Env env, const std::vector<int32_t>& v) {
  Napi::Int32Array a = Napi::Int32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
  return a;
}

Napi::Value VisionKernels(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object p = SnapshotParams(info, {"op", "device", "x", "n", "d", "b", "nb", "normalize", "tokens", "dt", "sizes", "r",
                                          "protectFirst", "k", "rows"});
  VisionJob j;
  const int64_t op = IntIn(p, "op", 0, 5);
  const int64_t device = IntIn(p, "device", 0, 2);
  j.op = static_cast<VisionOp>(op);
  j.n = IntIn(p, "n", 0, kMaxElems);
  j.d = j.op == VisionOp::TopK ? 0 : IntIn(p, "d", 0, kMaxElems);
  if (j.op == VisionOp::TopK) {
    j.rows = IntIn(p, "rows", 0, kMaxElems);
    if (j.rows * j.n > kMaxElems) throw Napi::RangeError::New(env, "rows * n: expected at most 2^31, received " + std::to_string(j.rows * j.n));
    j.x = F32Exactly(p, "x", j.rows * j.n, "[rows, n]");
    j.k = IntIn(p, "k", 0, kMaxElems);
  } else {
    if (j.n * j.d > kMaxElems) throw Napi::RangeError::New(env, "n * d: expected at most 2^31, received " + std::to_string(j.n * j.d));
    j.x = F32Exactly(p, "x", j.n * j.d, "[n, d]");
  }
  switch (j.op) {
    case VisionOp::Dot:
    case VisionOp::KMeans:
      j.nb = IntIn(p, "nb", j.op == VisionOp::KMeans ? 1 : 0, kMaxElems);
      if (j.nb * j.d > kMaxElems) throw Napi::RangeError::New(env, "nb * d: expected at most 2^31, received " + std::to_string(j.nb * j.d));
      if (j.n * j.nb > kMaxElems) throw Napi::RangeError::New(env, "n * nb: expected at most 2^31, received " + std::to_string(j.n * j.nb));
      j.b = F32Exactly(p, "b", j.nb * j.d, "[nb, d]");
      if (j.op == VisionOp::Dot) j.normalize = GetBool(p, "normalize");
      break;
    case VisionOp::Tome:
      j.dt = IntIn(p, "dt", 0, kMaxElems);
      if (j.n * j.dt > kMaxElems) throw Napi::RangeError::New(env, "n * dt: expected at most 2^31, received " + std::to_string(j.n * j.dt));
      j.tokens = F32Exactly(p, "tokens", j.n * j.dt, "[n, dt]");
      if (!p.Get("sizes").IsUndefined()) {
        j.sizes = F32Exactly(p, "sizes", j.n, "[n]");
        for (size_t i = 0; i < j.sizes.size(); ++i) {
          if (!(j.sizes[i] > 0.0f) || !std::isfinite(j.sizes[i])) {
            throw Napi::RangeError::New(env, "sizes[" + std::to_string(i) + "]: expected a finite number > 0, received " +
                                                 std::to_string(j.sizes[i]));
          }
        }
      }
      j.r = IntIn(p, "r", 0, kMaxElems);
      j.protect_first = GetBool(p, "protectFirst");
      if (cuda::tome_na(j.n) * cuda::tome_nb(j.n) > kMaxElems) throw Napi::RangeError::New(env, "n: expected ceil(n / 2) * floor(n / 2) <= 2^31");
      break;
    case VisionOp::DivPrune:
      j.k = IntIn(p, "k", 0, kMaxElems);
      if (j.n * j.n > kMaxElems) throw Napi::RangeError::New(env, "n: expected n * n <= 2^31, received n = " + std::to_string(j.n));
      break;
    default: break;
  }
  bool on_device = device == 1;
  if (device != 0) {
    const CudaStatus c = cuda_status();
    const bool have = c.compiled && c.device_count > 0;
    if (device == 1 && !have) {
      Napi::Error e = Napi::Error::New(env, std::string("visionKernels: no CUDA device available (") +
                                                (c.compiled ? c.error : std::string("this build has no CUDA backend; npm run build:cuda builds it")) + ")");
      e.Set("code", "ERR_NO_CUDA");
      throw e;
    }
    on_device = have;
  }
  const Status s = GuardAlloc(env, [&] { return on_device ? cuda::run_on_device(&j) : reduce::run_host_model(&j); });
  if (!s.is_ok()) {
    if (s.code == StatusCode::InvalidArgument) ThrowStatus(env, s);
    Napi::Error e = Napi::Error::New(env, s.message);
    e.Set("code", StatusCodeName(s.code));
    throw e;
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("device", on_device ? "cuda" : "cpu");
  r.Set("kernelMs", j.kernel_ms);
  switch (j.op) {
    case VisionOp::Normalize:
    case VisionOp::Dot: r.Set("out", F32Out(env, j.out)); break;
    case VisionOp::Tome:
      r.Set("nodeMax", F32Out(env, j.node_max));
      r.Set("nodeIdx", I32Out(env, j.node_idx));
      r.Set("idx", I32Out(env, j.idx));
      r.Set("out", F32Out(env, j.out));
      r.Set("outSizes", F32Out(env, j.out_sizes));
      break;
    case VisionOp::KMeans:
      r.Set("idx", I32Out(env, j.idx));
      r.Set("out", F32Out(env, j.out));
      r.Set("counts", I32Out(env, j.counts));
      break;
    default: r.Set("idx", I32Out(env, j.idx)); break;
  }
  return r;
}

}  // namespace

void RegisterReduceDeviceModel(Napi::Env env, Napi::Object exports) {
  exports.Set("visionKernels", Napi::Function::New(env, Guarded<VisionKernels>, "visionKernels"));
}

}  // namespace tp::binding
