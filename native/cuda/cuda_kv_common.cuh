// Launch and element helpers shared by the device KV cache's kernel files
// (cuda_kv_kernels.cu, cuda_kv_merge.cu, cuda_kv_quant.cu).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.cuh"

namespace tp::cuda::kvk {

constexpr int kThreads = 128;  // threads per block of the elementwise kernels

// Grid over n items per head (at least one block) x heads.
inline dim3 head_grid(int64_t n, int64_t heads, int per = kThreads) {
  return dim3(static_cast<unsigned>((n > 0 ? n + per - 1 : per) / per), static_cast<unsigned>(heads));
}

// The status of the last launch.
inline Status launched(const char* what) { return check(cudaGetLastError(), what); }

__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ void from_f32(float x, __half* out) { *out = __float2half_rn(x); }
__device__ __forceinline__ void from_f32(float x, __nv_bfloat16* out) { *out = __float2bfloat16_rn(x); }
__device__ __forceinline__ void from_f32(float x, float* out) { *out = x; }

}  // namespace tp::cuda::kvk
