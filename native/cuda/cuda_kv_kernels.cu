// Kernels of the device KV cache: key mass, policy scores, top-k selection
// (CUB segmented radix sorts) and compaction. Shapes: cuda_kv_kernels.h.
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>

#include "cuda_check.cuh"
#include "cuda_kv_common.cuh"
#include "cuda_kv_kernels.h"

namespace tp::cuda {
namespace {

using namespace kvk;
constexpr int kMassRows = 16;  // query rows per shared-memory chunk of the mass kernel

// One thread per key p of head blockIdx.y; the block's query rows pass
// through shared memory kMassRows at a time. D = headDim (compile time).
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) key_mass_kernel(MassLaunch m) {
  __shared__ float qs[kMassRows][D];
  __shared__ float ls[kMassRows];
  const int h = blockIdx.y;
  const int64_t p = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int len = m.layer.lens[h];
  if (int64_t(blockIdx.x) * kThreads >= len) return;  // the whole block is past this head's rows
  const int64_t use = m.last > 0 ? min(min(m.last, int64_t(len)), m.rows) : m.rows;
  const int64_t first = m.rows - use;
  const T* krow = static_cast<const T*>(m.layer.k) + (int64_t(h) * m.layer.cap + (p < len ? p : 0)) * D;
  float total = 0.0f;
  for (int64_t g = 0; g < m.group; ++g) {
    const int64_t qh = int64_t(h) * m.group + g;
    for (int64_t i0 = first; i0 < m.rows; i0 += kMassRows) {
      const int n = int(min(int64_t(kMassRows), m.rows - i0));
      __syncthreads();
      for (int e = threadIdx.x; e < n * D; e += kThreads) qs[e / D][e % D] = m.q[(qh * m.rows + i0 + e / D) * D + e % D];
      if (threadIdx.x < n) ls[threadIdx.x] = m.lse[qh * m.rows + i0 + threadIdx.x];
      __syncthreads();
      if (p >= len) continue;
      float acc[kMassRows];
#pragma unroll
      for (int r = 0; r < kMassRows; ++r) acc[r] = 0.0f;
      for (int d = 0; d < D; ++d) {
        const float kd = to_f32(krow[d]);
#pragma unroll
        for (int r = 0; r < kMassRows; ++r) acc[r] = fmaf(qs[r][d], kd, acc[r]);
      }
      for (int r = 0; r < n; ++r) {
        const int64_t i = i0 + r;
        const bool sees = !m.causal || p <= len - m.rows + i;
        if (sees && ls[r] != -INFINITY) total += expf(acc[r] * m.scale - ls[r]);
      }
    }
  }
  if (p < len) {
    if (m.count) total *= m.count[int64_t(h) * m.layer.cap + p];
    float* dst = m.mass + int64_t(h) * m.layer.cap + p;
    *dst = m.accumulate ? *dst + total : total;
  }
}

template <typename T>
__global__ void scores_kernel(ScoreLaunch s) {
  const int h = blockIdx.y;
  const int64_t p = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t len = s.layer.lens[h];
  if (p >= len) return;
  const int64_t at = int64_t(h) * s.layer.cap + p;
  float x = 0.0f;
  switch (s.scorer) {
    case DeviceScorer::StreamingLlm:
      x = static_cast<float>(p < s.sinks ? len : p);
      break;
    case DeviceScorer::Knorm: {
      const T* row = static_cast<const T*>(s.layer.k) + at * s.layer.head_dim;
      float sq = 0.0f;
      for (int64_t d = 0; d < s.layer.head_dim; ++d) {
        const float v = to_f32(row[d]);
        sq = fmaf(v, v, sq);
      }
      x = -sqrtf(sq);
      break;
    }
    case DeviceScorer::Mass:
      x = s.mass[at];
      if (p >= len - s.recent) x = INFINITY;
      break;
    case DeviceScorer::Tova:
      x = s.mass[at] * s.mass_scale;
      break;
    case DeviceScorer::SnapKv: {
      const int64_t w = min(s.window, min(s.rows, len));
      const int64_t prefix = len - w;
      if (p >= prefix) {
        x = INFINITY;
        break;
      }
      const float inv = 1.0f / static_cast<float>(w * s.group);
      const int64_t left = s.kernel / 2;
      const int64_t lo = max(p - left, int64_t(0)), hi = min(p - left + s.kernel, prefix);
      const float* m = s.mass + int64_t(h) * s.layer.cap;
      float acc = s.max_pool ? m[lo] * inv : 0.0f;
      for (int64_t t = lo; t < hi; ++t) {
        const float v = m[t] * inv;
        acc = s.max_pool ? fmaxf(acc, v) : acc + v;
      }
      x = s.max_pool ? acc : acc / static_cast<float>(s.kernel);
      break;
    }
  }
  s.scores[at] = x + 0.0f;  // -0 -> +0: the radix sort orders them, the CPU does not
}

__global__ void count_nan_kernel(const float* scores, const int32_t* lens, int64_t cap, int32_t* count) {
  const int h = blockIdx.y;
  const int64_t p = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (p < lens[h] && isnan(scores[int64_t(h) * cap + p])) atomicAdd(count, 1);
}

__global__ void iota_rows_kernel(int32_t* ids, int64_t cap) {
  const int64_t p = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (p < cap) ids[int64_t(blockIdx.y) * cap + p] = static_cast<int32_t>(p);
}

__global__ void take_prefix_kernel(const int32_t* sorted, int64_t cap, const int32_t* keep, int64_t stride, int32_t* sel) {
  const int h = blockIdx.y;
  const int64_t j = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (j < keep[h]) sel[int64_t(h) * stride + j] = sorted[int64_t(h) * cap + j];
}

// One thread per 16-byte piece of a kept row (K and V), plus the row's
// position, mass and count from the piece-0 thread.
__global__ void gather_rows_kernel(GatherLaunch g) {
  const int h = blockIdx.y;
  const int64_t pieces = g.row_bytes / 16;
  const int64_t t = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t j = t / pieces, c = t % pieces;
  if (j >= g.keep[h]) return;
  const int64_t src = int64_t(h) * g.cap + g.sel[int64_t(h) * g.stride + j];
  const int64_t dst = int64_t(h) * g.stride + j;
  reinterpret_cast<uint4*>(g.k_out)[dst * pieces + c] = reinterpret_cast<const uint4*>(g.k)[src * pieces + c];
  reinterpret_cast<uint4*>(g.v_out)[dst * pieces + c] = reinterpret_cast<const uint4*>(g.v)[src * pieces + c];
  if (c == 0) {
    g.pos_out[dst] = g.pos[src];
    g.mass_out[dst] = g.mass[src];
    g.count_out[dst] = g.count[src];
  }
}

__global__ void fill_f32_kernel(float* dst, int64_t n, float x) {
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i < n) dst[i] = x;
}

template <typename T>
const void* mass_kernel_for(int64_t head_dim) {
  switch (head_dim) {
    case 64: return reinterpret_cast<const void*>(&key_mass_kernel<T, 64>);
    case 128: return reinterpret_cast<const void*>(&key_mass_kernel<T, 128>);
    default: return reinterpret_cast<const void*>(&key_mass_kernel<T, 256>);
  }
}


}  // namespace

Status launch_key_mass(const MassLaunch& m) {
  if (m.layer.max_len == 0 || m.rows == 0) return Status::ok();
  const void* fn = m.layer.dtype == DType::BF16 ? mass_kernel_for<__nv_bfloat16>(m.layer.head_dim)
                   : m.layer.dtype == DType::F32  ? mass_kernel_for<float>(m.layer.head_dim)
                                                  : mass_kernel_for<__half>(m.layer.head_dim);
  MassLaunch arg = m;
  void* args[] = {&arg};
  TP_CUDA_TRY(cudaLaunchKernel(fn, head_grid(m.layer.max_len, m.layer.n_kv_heads), dim3(kThreads), args, 0, nullptr), "launch key_mass_kernel");
  return Status::ok();
}

Status launch_scores(const ScoreLaunch& s) {
  if (s.layer.max_len == 0) return Status::ok();
  const dim3 grid = head_grid(s.layer.max_len, s.layer.n_kv_heads);
  if (s.layer.dtype == DType::BF16) scores_kernel<__nv_bfloat16><<<grid, kThreads>>>(s);
  else if (s.layer.dtype == DType::F32) scores_kernel<float><<<grid, kThreads>>>(s);
  else scores_kernel<__half><<<grid, kThreads>>>(s);
  return launched("launch scores_kernel");
}

Status launch_count_nan(const float* scores, const int32_t* lens, int64_t n_kv_heads, int64_t cap, int64_t max_len, int32_t* count) {
  if (max_len == 0) return Status::ok();
  count_nan_kernel<<<head_grid(max_len, n_kv_heads), kThreads>>>(scores, lens, cap, count);
  return launched("launch count_nan_kernel");
}

Status launch_iota_rows(int32_t* row_ids, int64_t n_kv_heads, int64_t cap) {
  iota_rows_kernel<<<head_grid(cap, n_kv_heads), kThreads>>>(row_ids, cap);
  return launched("launch iota_rows_kernel");
}

Status launch_take_prefix(const int32_t* sorted, int64_t cap, const int32_t* keep, int64_t n_kv_heads, int64_t stride,
                          int64_t max_keep, int32_t* sel) {
  if (max_keep == 0) return Status::ok();
  take_prefix_kernel<<<head_grid(max_keep, n_kv_heads), kThreads>>>(sorted, cap, keep, stride, sel);
  return launched("launch take_prefix_kernel");
}

Status launch_gather_rows(const GatherLaunch& g) {
  if (g.max_keep == 0) return Status::ok();
  gather_rows_kernel<<<head_grid(g.max_keep * (g.row_bytes / 16), g.n_kv_heads), kThreads>>>(g);
  return launched("launch gather_rows_kernel");
}

Status launch_fill(float* dst, int64_t n, float x) {
  if (n == 0) return Status::ok();
  fill_f32_kernel<<<head_grid(n, 1), kThreads>>>(dst, n, x);
  return launched("launch fill_f32_kernel");
}

Status selection_temp_bytes(int64_t n_kv_heads, int64_t cap, int64_t stride, size_t* bytes) {
  size_t a = 0, b = 0;
  const int segs = static_cast<int>(n_kv_heads);
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairsDescending(nullptr, a, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
                                                                 static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                                                 static_cast<int>(n_kv_heads * cap), segs, static_cast<const int32_t*>(nullptr),
                                                                 static_cast<const int32_t*>(nullptr)),
              "cub SortPairsDescending (size)");
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortKeys(nullptr, b, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                                      static_cast<int>(n_kv_heads * stride), segs, static_cast<const int32_t*>(nullptr),
                                                      static_cast<const int32_t*>(nullptr)),
              "cub SortKeys (size)");
  *bytes = a > b ? a : b;
  return Status::ok();
}

Status launch_select(const SelectLaunch& s) {
  const int segs = static_cast<int>(s.n_kv_heads);
  size_t bytes = s.temp_bytes;
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairsDescending(s.temp, bytes, s.scores, s.scores_out, s.ids, s.ids_out,
                                                                 static_cast<int>(s.n_kv_heads * s.cap), segs, s.begin, s.end),
              "cub SortPairsDescending");
  Status st = launch_take_prefix(s.ids_out, s.cap, s.keep, s.n_kv_heads, s.stride, s.max_keep, s.sel_tmp);
  if (!st.is_ok()) return st;
  bytes = s.temp_bytes;
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortKeys(s.temp, bytes, s.sel_tmp, s.sel, static_cast<int>(s.n_kv_heads * s.stride), segs,
                                                      s.sel_begin, s.sel_end),
              "cub SortKeys");
  return Status::ok();
}

}  // namespace tp::cuda
