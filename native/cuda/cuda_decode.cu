// Split-KV flash-decoding on the GPU (f32 q, f16/bf16 K/V, f32 math).
//
// Grid (splits, nKvHeads, slices); block kDecodeWarps warps. A block reads
// keys [split * chunk, +chunk) of one KV head once and serves up to 8 query
// rows of that head's group (GQA heads x nQ queries: a "slice"). Within a
// warp, D/8 lanes share one key (8 dims each, one 16-byte load of K and one
// of V), so a warp covers 256/D keys per load and U loads per step; the
// online-softmax state (max, sum) is warp-uniform, the accumulator per lane.
// Warps are merged through shared memory, splits by decode_merge_kernel.
// Logits are kept in the log2 domain (q pre-scaled by scale * log2(e)).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace tp::cuda {
namespace {

constexpr int kDecodeWarps = 4;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr unsigned kFull = 0xffffffffu;

// Keys each lane loads per step: fewer for 8-row slices (registers).
__host__ __device__ constexpr int unroll_for(int rows) { return rows >= 8 ? 2 : 4; }

struct DecodeArgs {
  const float* q;
  const void* k;
  const void* v;
  float* part_o;  // [nHeads * nQ][splits][D]
  float* part_m;  // [nHeads * nQ][splits]   (log2 domain)
  float* part_l;  // [nHeads * nQ][splits]
  int n_kv, n_q, chunk, splits, group, rows_per_group;
  float qk_scale;
  bool causal;
};

__device__ __forceinline__ void to_float8(const uint4& raw, float f[8], const __half*) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 x = __half22float2(h[i]);
    f[2 * i] = x.x;
    f[2 * i + 1] = x.y;
  }
}

__device__ __forceinline__ void to_float8(const uint4& raw, float f[8], const __nv_bfloat16*) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 x = __bfloat1622float2(h[i]);
    f[2 * i] = x.x;
    f[2 * i + 1] = x.y;
  }
}

template <typename T, int D, int R>
__global__ void __launch_bounds__(kDecodeWarps * 32) decode_split_kernel(DecodeArgs a) {
  constexpr int LPK = D / 8;   // lanes per key
  constexpr int KPW = 32 / LPK;  // keys per warp per load
  constexpr int U = unroll_for(R);
  constexpr int STEP = KPW * U;  // keys per warp step
  __shared__ float sm_acc[kDecodeWarps][R][D];
  __shared__ float sm_m[kDecodeWarps][R];
  __shared__ float sm_l[kDecodeWarps][R];

  const int split = blockIdx.x;
  const int kvh = blockIdx.y;
  const int slice = blockIdx.z;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int sub = lane % LPK;  // which 8 dims
  const int kg = lane / LPK;   // which key of the load

  float qf[R][8];
  int limit[R];  // last visible key of each row (-1: row absent)
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int rr = slice * R + r;
    if (rr < a.rows_per_group) {
      const int g = rr / a.n_q, i = rr % a.n_q;
      const float* qp = a.q + (int64_t(kvh) * a.group + g) * a.n_q * D + int64_t(i) * D + sub * 8;
      const float4 x0 = *reinterpret_cast<const float4*>(qp);
      const float4 x1 = *reinterpret_cast<const float4*>(qp + 4);
      qf[r][0] = x0.x * a.qk_scale; qf[r][1] = x0.y * a.qk_scale; qf[r][2] = x0.z * a.qk_scale; qf[r][3] = x0.w * a.qk_scale;
      qf[r][4] = x1.x * a.qk_scale; qf[r][5] = x1.y * a.qk_scale; qf[r][6] = x1.z * a.qk_scale; qf[r][7] = x1.w * a.qk_scale;
      limit[r] = a.causal ? a.n_kv - a.n_q + i : a.n_kv - 1;
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) qf[r][e] = 0.0f;
      limit[r] = -1;
    }
  }

  const T* kbase = static_cast<const T*>(a.k) + int64_t(kvh) * a.n_kv * D + sub * 8;
  const T* vbase = static_cast<const T*>(a.v) + int64_t(kvh) * a.n_kv * D + sub * 8;
  const int begin = split * a.chunk;
  const int end = min(a.n_kv, begin + a.chunk);

  float m[R], l[R], acc[R][8];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[r][e] = 0.0f;
  }

  for (int base = begin + warp * STEP; base < end; base += kDecodeWarps * STEP) {
    uint4 kr[U], vr[U];
    // Issue every load of the step before using any (memory-level parallelism).
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int key = base + u * KPW + kg;
      if (key < end) {
        kr[u] = __ldg(reinterpret_cast<const uint4*>(kbase + int64_t(key) * D));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(vbase + int64_t(key) * D));
      } else {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
    float s[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[8];
      to_float8(kr[u], kf, static_cast<const T*>(nullptr));
#pragma unroll
      for (int r = 0; r < R; ++r) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot = fmaf(qf[r][e], kf[e], dot);
        s[u][r] = dot;
      }
    }
    // Sum the partial dots of the LPK lanes that share a key.
#pragma unroll
    for (int u = 0; u < U; ++u) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int off = LPK / 2; off >= 1; off >>= 1) s[u][r] += __shfl_xor_sync(kFull, s[u][r], off);
        const int key = base + u * KPW + kg;
        if (key >= end || key > limit[r]) s[u][r] = -INFINITY;
      }
    }
    // Online softmax, state shared by the whole warp.
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float mx = s[0][r];
#pragma unroll
      for (int u = 1; u < U; ++u) mx = fmaxf(mx, s[u][r]);
#pragma unroll
      for (int off = 16; off >= LPK; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(kFull, mx, off));
      const float m_new = fmaxf(m[r], mx);
      if (m_new == -INFINITY) {  // nothing visible yet for this row
#pragma unroll
        for (int u = 0; u < U; ++u) s[u][r] = 0.0f;
        continue;
      }
      const float alpha = exp2f(m[r] - m_new);
      l[r] *= alpha;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] *= alpha;
      m[r] = m_new;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float p = exp2f(s[u][r] - m_new);
        s[u][r] = p;
        l[r] += p;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float vf[8];
      to_float8(vr[u], vf, static_cast<const T*>(nullptr));
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r][e] = fmaf(s[u][r], vf[e], acc[r][e]);
      }
    }
  }

  // Sum over the key groups of the warp (same max: plain sums).
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int off = 16; off >= LPK; off >>= 1) {
      l[r] += __shfl_xor_sync(kFull, l[r], off);
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] += __shfl_xor_sync(kFull, acc[r][e], off);
    }
  }
  if (kg == 0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int e = 0; e < 8; ++e) sm_acc[warp][r][sub * 8 + e] = acc[r][e];
    }
  }
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      sm_m[warp][r] = m[r];
      sm_l[warp][r] = l[r];
    }
  }
  __syncthreads();

  for (int idx = threadIdx.x; idx < R * D; idx += blockDim.x) {
    const int r = idx / D, d = idx % D;
    const int rr = slice * R + r;
    if (rr >= a.rows_per_group) continue;
    float M = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) M = fmaxf(M, sm_m[w][r]);
    float O = 0.0f, L = 0.0f;
    if (M != -INFINITY) {
      for (int w = 0; w < kDecodeWarps; ++w) {
        const float f = exp2f(sm_m[w][r] - M);
        O = fmaf(sm_acc[w][r][d], f, O);
        L = fmaf(sm_l[w][r], f, L);
      }
    }
    const int g = rr / a.n_q, i = rr % a.n_q;
    const int64_t row = (int64_t(kvh) * a.group + g) * a.n_q + i;
    a.part_o[(row * a.splits + split) * D + d] = O;
    if (d == 0) {
      a.part_m[row * a.splits + split] = M;
      a.part_l[row * a.splits + split] = L;
    }
  }
}

// One block per output row (head, query), one thread per dim.
template <int D>
__global__ void __launch_bounds__(D) decode_merge_kernel(const float* part_o, const float* part_m, const float* part_l,
                                                         int splits, float* out, float* lse) {
  const int64_t row = blockIdx.x;
  const int d = threadIdx.x;
  const float* pm = part_m + row * splits;
  const float* pl = part_l + row * splits;
  float M = -INFINITY;
  for (int s = 0; s < splits; ++s) M = fmaxf(M, pm[s]);
  float O = 0.0f, L = 0.0f;
  if (M != -INFINITY) {
    for (int s = 0; s < splits; ++s) {
      const float f = exp2f(pm[s] - M);
      L = fmaf(pl[s], f, L);
      O = fmaf(part_o[(row * splits + s) * D + d], f, O);
    }
  }
  out[row * D + d] = L > 0.0f ? O / L : 0.0f;
  if (lse && d == 0) lse[row] = L > 0.0f ? (M + log2f(L)) * kLn2 : -INFINITY;
}

template <typename T, int D, int R>
const void* split_kernel_ptr() { return reinterpret_cast<const void*>(&decode_split_kernel<T, D, R>); }

template <typename T, int D>
const void* pick_split_kernel(int rows) {
  switch (rows) {
    case 1: return split_kernel_ptr<T, D, 1>();
    case 2: return split_kernel_ptr<T, D, 2>();
    case 4: return split_kernel_ptr<T, D, 4>();
    default: return split_kernel_ptr<T, D, 8>();
  }
}

template <typename T>
const void* pick_split_kernel(int head_dim, int rows) {
  switch (head_dim) {
    case 64: return pick_split_kernel<T, 64>(rows);
    case 128: return pick_split_kernel<T, 128>(rows);
    default: return pick_split_kernel<T, 256>(rows);
  }
}

const void* split_kernel(const DeviceAttention& a, int rows) {
  const int d = static_cast<int>(a.head_dim);
  return a.kv_dtype == DType::BF16 ? pick_split_kernel<__nv_bfloat16>(d, rows) : pick_split_kernel<__half>(d, rows);
}

const void* merge_kernel(int64_t head_dim) {
  switch (head_dim) {
    case 64: return reinterpret_cast<const void*>(&decode_merge_kernel<64>);
    case 128: return reinterpret_cast<const void*>(&decode_merge_kernel<128>);
    default: return reinterpret_cast<const void*>(&decode_merge_kernel<256>);
  }
}

}  // namespace

DecodePlan plan_decode(const DeviceAttention& a, int sm_count) {
  DecodePlan p;
  p.rows_per_group = a.n_heads / a.n_kv_heads * a.n_q;
  // Rows per block: the next power of two, at most 8 (larger groups: slices).
  p.slice_rows = p.rows_per_group >= 5 ? 8 : p.rows_per_group >= 3 ? 4 : p.rows_per_group == 2 ? 2 : 1;
  p.slices = static_cast<int>((p.rows_per_group + p.slice_rows - 1) / p.slice_rows);
  const int64_t step_keys = int64_t(kDecodeWarps) * (256 / a.head_dim) * unroll_for(p.slice_rows);
  // One full wave of resident blocks, each over an equal key chunk.
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, split_kernel(a, p.slice_rows), kDecodeWarps * 32, 0) != cudaSuccess ||
      per_sm < 1) {
    cudaGetLastError();
    per_sm = 2;
  }
  const int64_t target = int64_t(std::max(sm_count, 1)) * per_sm;
  const int64_t base_blocks = a.n_kv_heads * p.slices;
  int64_t splits = a.decode_splits > 0 ? a.decode_splits : std::max<int64_t>(1, (target + base_blocks - 1) / base_blocks);
  const int64_t min_chunk = std::max<int64_t>(256, step_keys);
  splits = std::min(splits, std::max<int64_t>(1, (a.n_kv + min_chunk - 1) / min_chunk));
  int64_t chunk = (a.n_kv + splits - 1) / splits;
  chunk = (chunk + step_keys - 1) / step_keys * step_keys;
  p.chunk = std::max<int64_t>(chunk, step_keys);
  p.splits = std::max<int64_t>(1, (a.n_kv + p.chunk - 1) / p.chunk);
  p.workspace_bytes = static_cast<size_t>(a.n_heads * a.n_q * p.splits * (a.head_dim + 2)) * sizeof(float);
  return p;
}

Status launch_decode(const DeviceAttention& a, const DecodePlan& plan, void* workspace) {
  DecodeArgs args;
  args.q = a.q;
  args.k = a.k;
  args.v = a.v;
  const int64_t rows = a.n_heads * a.n_q;
  float* ws = static_cast<float*>(workspace);
  args.part_o = ws;
  args.part_m = ws + rows * plan.splits * a.head_dim;
  args.part_l = args.part_m + rows * plan.splits;
  args.n_kv = static_cast<int>(a.n_kv);
  args.n_q = static_cast<int>(a.n_q);
  args.chunk = static_cast<int>(plan.chunk);
  args.splits = static_cast<int>(plan.splits);
  args.group = static_cast<int>(a.n_heads / a.n_kv_heads);
  args.rows_per_group = static_cast<int>(plan.rows_per_group);
  args.qk_scale = a.scale * kLog2e;
  args.causal = a.causal;

  const dim3 grid(static_cast<unsigned>(plan.splits), static_cast<unsigned>(a.n_kv_heads), static_cast<unsigned>(plan.slices));
  void* split_args[] = {&args};
  TP_CUDA_TRY(cudaLaunchKernel(split_kernel(a, plan.slice_rows), grid, dim3(kDecodeWarps * 32), split_args, 0, nullptr),
              "launch decode_split_kernel");
  const float* po = args.part_o;
  const float* pm = args.part_m;
  const float* pl = args.part_l;
  int splits = args.splits;
  float* out = a.out;
  float* lse = a.lse;
  void* merge_args[] = {&po, &pm, &pl, &splits, &out, &lse};
  TP_CUDA_TRY(cudaLaunchKernel(merge_kernel(a.head_dim), dim3(static_cast<unsigned>(rows)), dim3(static_cast<unsigned>(a.head_dim)),
                               merge_args, 0, nullptr),
              "launch decode_merge_kernel");
  return Status::ok();
}

}  // namespace tp::cuda
