// cudaBenchAttention: time the device attention on device-resident random
// K/V with CUDA events, and measure the device's own limits in the same call
// (cudaMemcpy device-to-device and a streaming read kernel), so the caller
// can quote "% of measured bandwidth" from one run.
//
// Decode shapes read every K/V byte once per call; the K/V are replicated
// into enough copies that one rotation reads >= 1 GiB (the H200's L2 is
// 60 MB), and each timed call reads the next copy.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "cuda_probe.h"

namespace tp::cuda {
namespace {

__device__ __forceinline__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

// Uniform values in [-amp, amp): f32 or the high/low half of an f32 as
// f16/bf16 bits (dtype 1: f16 from the value, 2: bf16 by truncation).
__global__ void random_fill(void* p, int64_t n, int dtype, float amp, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float x = (hash32(seed * 0x9e3779b97f4a7c15ull + uint64_t(i)) * (1.0f / 4294967296.0f) * 2.0f - 1.0f) * amp;
    if (dtype == 0) {
      static_cast<float*>(p)[i] = x;
    } else if (dtype == 1) {
      static_cast<__half*>(p)[i] = __float2half_rn(x);
    } else {
      uint32_t u;
      memcpy(&u, &x, 4);
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(u >> 16);
    }
  }
}

// Random key positions in [0, n_kv) for the sparse decode benchmark.
__global__ void random_positions(int32_t* p, int64_t n, int n_kv, uint64_t seed) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    p[i] = static_cast<int32_t>(hash32(seed * 0x9e3779b97f4a7c15ull + uint64_t(i)) % uint32_t(n_kv));
  }
}

// Streaming read: each thread sums 16-byte words; one value per block is
// written so the loads cannot be dropped.
__global__ void read_kernel(const uint4* p, int64_t n, unsigned* sink) {
  unsigned acc = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint4 w = __ldg(p + i);
    acc ^= w.x ^ w.y ^ w.z ^ w.w;
  }
  if (acc == 0x9e3779b9u) sink[blockIdx.x] = acc;  // practically never: keeps the loads
}

double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

class Events {
 public:
  ~Events() {
    for (cudaEvent_t e : ev_) cudaEventDestroy(e);
  }
  Status make(size_t n) {
    for (size_t i = 0; i < n; ++i) {
      cudaEvent_t e;
      TP_CUDA_TRY(cudaEventCreate(&e), "cudaEventCreate");
      ev_.push_back(e);
    }
    return Status::ok();
  }
  cudaEvent_t operator[](size_t i) const { return ev_[i]; }

 private:
  std::vector<cudaEvent_t> ev_;
};

// Times `iters` calls of fn(i) after `warmup`; fills the per-call ms.
template <typename Fn>
Status time_calls(int warmup, int iters, Fn fn, std::vector<float>* ms) {
  for (int i = 0; i < warmup; ++i) {
    Status s = fn(i);
    if (!s.is_ok()) return s;
  }
  Events ev;
  Status s = ev.make(size_t(iters) * 2);
  if (!s.is_ok()) return s;
  for (int i = 0; i < iters; ++i) {
    TP_CUDA_TRY(cudaEventRecord(ev[2 * i]), "cudaEventRecord");
    s = fn(warmup + i);
    if (!s.is_ok()) return s;
    TP_CUDA_TRY(cudaEventRecord(ev[2 * i + 1]), "cudaEventRecord");
  }
  TP_CUDA_TRY(cudaDeviceSynchronize(), "timed calls");
  ms->resize(iters);
  for (int i = 0; i < iters; ++i) TP_CUDA_TRY(cudaEventElapsedTime(&(*ms)[i], ev[2 * i], ev[2 * i + 1]), "cudaEventElapsedTime");
  return Status::ok();
}

Status fill(void* p, int64_t n, int dtype, float amp, uint64_t seed) {
  random_fill<<<1024, 256>>>(p, n, dtype, amp, seed);
  return check(cudaGetLastError(), "launch random_fill");
}

Status measure_limits(int64_t bytes, BenchResult* r) {
  bytes = bytes / 16 * 16;
  DeviceBuffer a, b, sink;
  Status s = a.alloc(size_t(bytes), "cudaMalloc(bandwidth src)");
  if (s.is_ok()) s = b.alloc(size_t(bytes), "cudaMalloc(bandwidth dst)");
  if (s.is_ok()) s = sink.alloc(4096 * sizeof(unsigned), "cudaMalloc(sink)");
  if (s.is_ok()) s = fill(a.get(), bytes / 4, 0, 1.0f, 7);
  if (!s.is_ok()) return s;
  std::vector<float> ms;
  s = time_calls(2, 10, [&](int) { return check(cudaMemcpyAsync(b.get(), a.get(), size_t(bytes), cudaMemcpyDeviceToDevice), "cudaMemcpyAsync"); }, &ms);
  if (!s.is_ok()) return s;
  r->copy_bytes_per_s = 2.0 * double(bytes) / (median(ms) * 1e-3);
  int sms = std::max(multiprocessor_count(), 1);
  s = time_calls(2, 10, [&](int) {
    read_kernel<<<unsigned(sms * 8), 512>>>(a.as<uint4>(), bytes / 16, sink.as<unsigned>());
    return check(cudaGetLastError(), "launch read_kernel");
  }, &ms);
  if (!s.is_ok()) return s;
  r->read_bytes_per_s = double(bytes) / (median(ms) * 1e-3);
  return Status::ok();
}

double visible_pairs(const BenchConfig& c) {
  if (c.n_sel > 0) return double(c.n_q) * double(c.n_sel);  // sparse benchmark: non-causal
  if (!c.causal) return double(c.n_q) * double(c.n_kv);
  double total = 0;
  for (int64_t i = 0; i < c.n_q; ++i) total += double(std::max<int64_t>(0, std::min<int64_t>(c.n_kv, c.n_kv - c.n_q + i + 1)));
  return total;
}

}  // namespace

Status bench_attention(const BenchConfig& c, BenchResult* r) {
  if (cuda_status().device_count < 1) return Status::internal("cuda bench: no CUDA device: " + cuda_status().error);
  if (c.warmup < 0 || c.iters < 1 || c.n_kv < 1 || c.n_q < 1) return Status::invalid("cuda bench: expected warmup >= 0, iters >= 1, nQ >= 1, nKv >= 1");
  TP_CUDA_TRY(cudaSetDevice(0), "cudaSetDevice");
  cudaDeviceProp prop;
  TP_CUDA_TRY(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::strncpy(r->device, prop.name, sizeof(r->device) - 1);

  DeviceAttention a;
  a.n_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.n_q = c.n_q;
  a.n_kv = c.n_kv;
  a.head_dim = c.head_dim;
  a.kv_dtype = c.kv_dtype;
  a.scale = 1.0f / std::sqrt(float(c.head_dim));
  a.causal = c.causal;
  a.path = c.path;
  a.decode_splits = c.decode_splits;
  a.variant = c.variant;
  static const int32_t dummy_index = 0;
  if (c.n_sel > 0) {
    if (c.causal) return Status::invalid("cuda bench: the sparse benchmark is non-causal");
    a.indices = &dummy_index;
    a.n_sel = c.n_sel;
  }
  static const float dummy = 0;
  a.q = &dummy;
  a.k = a.v = &dummy;
  a.out = const_cast<float*>(&dummy);
  Status s = check_device_attention(a);
  if (!s.is_ok()) return s;
  const AttentionPath path = resolve_path(a);
  r->path = static_cast<int>(path);

  const int64_t kv_elems = c.n_kv_heads * c.n_kv * c.head_dim;
  const int64_t kv_bytes = kv_elems * 2;
  const int64_t q_elems = c.n_heads * c.n_q * c.head_dim;
  // Decode rotates through copies so that one rotation reads >= 1 GiB.
  const int64_t copies = path == AttentionPath::Decode ? std::min<int64_t>(16, std::max<int64_t>(1, ((int64_t(1) << 30) + 2 * kv_bytes - 1) / (2 * kv_bytes))) : 1;
  std::vector<DeviceBuffer> ks(copies), vs(copies);
  DeviceBuffer dq, dout, dlse, dws, didx;
  if (c.n_sel > 0) {
    s = didx.alloc(size_t(c.n_kv_heads * c.n_sel) * sizeof(int32_t), "cudaMalloc(indices)");
    if (!s.is_ok()) return s;
    random_positions<<<1024, 256>>>(didx.as<int32_t>(), c.n_kv_heads * c.n_sel, static_cast<int>(c.n_kv), 5);
    TP_CUDA_TRY(cudaGetLastError(), "launch random_positions");
    a.indices = didx.as<int32_t>();
  }
  for (int64_t i = 0; i < copies; ++i) {
    s = ks[i].alloc(size_t(kv_bytes), "cudaMalloc(k)");
    if (s.is_ok()) s = vs[i].alloc(size_t(kv_bytes), "cudaMalloc(v)");
    const int code = c.kv_dtype == DType::BF16 ? 2 : 1;
    if (s.is_ok()) s = fill(ks[i].get(), kv_elems, code, 1.0f, 100 + 2 * i);
    if (s.is_ok()) s = fill(vs[i].get(), kv_elems, code, 1.0f, 101 + 2 * i);
    if (!s.is_ok()) return s;
  }
  s = dq.alloc(size_t(q_elems) * 4, "cudaMalloc(q)");
  if (s.is_ok()) s = dout.alloc(size_t(q_elems) * 4, "cudaMalloc(out)");
  if (s.is_ok()) s = dlse.alloc(size_t(c.n_heads * c.n_q) * 4, "cudaMalloc(lse)");
  if (s.is_ok()) s = fill(dq.get(), q_elems, 0, 1.0f, 1);
  if (!s.is_ok()) return s;
  a.q = dq.as<float>();
  a.k = ks[0].get();
  a.v = vs[0].get();
  a.out = dout.as<float>();
  a.lse = dlse.as<float>();
  size_t ws_bytes = 0;
  s = device_attention_workspace(a, &ws_bytes);
  if (s.is_ok()) s = dws.alloc(ws_bytes, "cudaMalloc(workspace)");
  if (!s.is_ok()) return s;
  if (path == AttentionPath::Decode) r->splits = static_cast<int>(plan_decode(a, multiprocessor_count()).splits);

  std::vector<float> ms;
  s = time_calls(c.warmup, c.iters, [&](int i) {
    a.k = ks[i % copies].get();
    a.v = vs[i % copies].get();
    return launch_device_attention(a, dws.get(), ws_bytes);
  }, &ms);
  if (!s.is_ok()) return s;
  r->kernel_ms = median(ms);
  r->kernel_min_ms = *std::min_element(ms.begin(), ms.end());
  const double kv_read = c.n_sel > 0 ? 2.0 * double(c.n_kv_heads * c.n_sel * c.head_dim) * 2 + double(c.n_kv_heads * c.n_sel) * 4
                                    : 2.0 * double(kv_bytes);
  r->bytes = kv_read + 2.0 * double(q_elems) * 4 + double(c.n_heads * c.n_q) * 4;
  r->flops = 4.0 * double(c.head_dim) * double(c.n_heads) * visible_pairs(c);
  return measure_limits(c.bandwidth_bytes, r);
}

}  // namespace tp::cuda
