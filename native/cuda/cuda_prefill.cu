// Prefill attention on tensor cores (FlashAttention-2 scheme, mma.sync
// m16n8k16 with f16 or bf16 operands and f32 accumulators).
//
// Grid (ceil(nQ / BR), nHeads); block 8 warps, BR = 128 query rows (16 per
// warp), key tiles of BC = 64. Q (rounded from f32 to the K/V dtype) stays in
// shared memory; K/V tiles are double-buffered with cp.async. S = Q K^T lives
// in registers, the online softmax rescales the register accumulator O, and
// P (rounded to the K/V dtype) feeds P V straight from the S registers (the
// m16n8 accumulator layout of S is the m16k16 operand layout of P). Rows of
// shared memory are padded by 16 bytes so ldmatrix is conflict-free.
// 2 blocks per SM by default (128 registers: launch bounds); headDim 128
// can trade that for 182 registers at 1 block per SM (prefill_blocks_per_sm).
// Causal: tiles past a block's last visible key are skipped; heavy query
// tiles are scheduled first.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace tp::cuda {
namespace {

constexpr int kBr = 128;
constexpr int kBc = 64;
constexpr int kWarps = 8;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct PrefillArgs {
  const float* q;
  const void* k;
  const void* v;
  float* out;
  float* lse;
  int n_q, n_kv, group;
  float qk_scale;
  bool causal;
};

template <typename T> struct Mma;

template <> struct Mma<__half> {
  static __device__ __forceinline__ void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

template <> struct Mma<__nv_bfloat16> {
  static __device__ __forceinline__ void run(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// 16-byte async copy; src_bytes 0 zero-fills the destination.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

template <typename T, int D>
__device__ __forceinline__ void load_kv_tile(T* sk, T* sv, const T* k, const T* v, int tile, int n_kv) {
  constexpr int S = D + 8;
  constexpr int CHUNKS = kBc * D / 8;  // 16-byte chunks per tile
  for (int c = threadIdx.x; c < CHUNKS; c += kWarps * 32) {
    const int row = c / (D / 8), col = (c % (D / 8)) * 8;
    const int key = tile * kBc + row;
    const int src_key = key < n_kv ? key : n_kv - 1;
    const int bytes = key < n_kv ? 16 : 0;
    cp_async16(sk + row * S + col, k + int64_t(src_key) * D + col, bytes);
    cp_async16(sv + row * S + col, v + int64_t(src_key) * D + col, bytes);
  }
}

template <typename T, int D, int MIN_BLOCKS>
__global__ void __launch_bounds__(kWarps * 32, MIN_BLOCKS) prefill_kernel(PrefillArgs a) {
  constexpr int S = D + 8;  // padded row (elements)
  constexpr int NT = kBc / 8;  // n8 tiles of S per warp
  constexpr int DT = D / 8;    // n8 tiles of O per warp
  extern __shared__ uint4 smem_raw[];
  T* sq = reinterpret_cast<T*>(smem_raw);
  T* sk = sq + kBr * S;   // [2][kBc][S]
  T* sv = sk + 2 * kBc * S;  // [2][kBc][S]

  const int qtile = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y;
  const int kvh = head / a.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int q0 = qtile * kBr;
  const int offset = a.n_kv - a.n_q;  // key position of query 0

  const T* k = static_cast<const T*>(a.k) + int64_t(kvh) * a.n_kv * D;
  const T* v = static_cast<const T*>(a.v) + int64_t(kvh) * a.n_kv * D;

  // Visible key range of the block.
  const int last_row = min(q0 + kBr, a.n_q) - 1;
  const int kmax = a.causal ? min(a.n_kv - 1, offset + last_row) : a.n_kv - 1;
  const int n_tiles = kmax < 0 ? 0 : kmax / kBc + 1;
  if (n_tiles > 0) {
    load_kv_tile<T, D>(sk, sv, k, v, 0, a.n_kv);
    cp_async_commit();
  }

  // Q tile: f32 -> T, zero rows past nQ.
  const float* qg = a.q + int64_t(head) * a.n_q * D;
  for (int c = threadIdx.x; c < kBr * D / 4; c += kWarps * 32) {
    const int row = c / (D / 4), col = (c % (D / 4)) * 4;
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (q0 + row < a.n_q) x = *reinterpret_cast<const float4*>(qg + int64_t(q0 + row) * D + col);
    uint2 packed;
    packed.x = Mma<T>::pack(x.x, x.y);
    packed.y = Mma<T>::pack(x.z, x.w);
    *reinterpret_cast<uint2*>(sq + row * S + col) = packed;
  }

  float o[DT][4];
#pragma unroll
  for (int i = 0; i < DT; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY};
  float l[2] = {0.0f, 0.0f};
  const int row0 = q0 + warp * 16 + g;  // rows g and g + 8 of the warp
  int lim[2];
  lim[0] = a.causal ? offset + row0 : a.n_kv - 1;
  lim[1] = a.causal ? offset + row0 + 8 : a.n_kv - 1;
  const int block_lim = a.causal ? offset + q0 : a.n_kv - 1;  // smallest row limit in the block

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      load_kv_tile<T, D>(sk + (buf ^ 1) * kBc * S, sv + (buf ^ 1) * kBc * S, k, v, j + 1, a.n_kv);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* skb = sk + buf * kBc * S;
    const T* svb = sv + buf * kBc * S;

    // S = Q K^T for this warp's 16 rows and the tile's 64 keys.
    float s[NT][4];
#pragma unroll
    for (int i = 0; i < NT; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t af[4];
      ldmatrix_x4(af, sq + (warp * 16 + (lane & 15)) * S + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t bf[4];
        ldmatrix_x4(bf, skb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * S + kk * 16 + ((lane >> 3) & 1) * 8);
        Mma<T>::run(s[2 * np], af, bf[0], bf[1]);
        Mma<T>::run(s[2 * np + 1], af, bf[2], bf[3]);
      }
    }

    // Scale into the log2 domain; mask keys past nKv or past a row's limit.
    const int key0 = j * kBc;
    const bool need_mask = key0 + kBc - 1 > block_lim || key0 + kBc > a.n_kv;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[nt][e] * a.qk_scale;
        if (need_mask) {
          const int key = key0 + nt * 8 + 2 * t + (e & 1);
          if (key >= a.n_kv || key > lim[e >> 1]) x = -INFINITY;
        }
        s[nt][e] = x;
      }
    }

    // Online softmax per row (a row's 64 values live in the 4 lanes of a quad).
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * h], s[nt][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m[h], mx);
      const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // all masked so far: keep exp2 finite
      const float alpha = exp2f(m[h] - m_use);
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const float p0 = exp2f(s[nt][2 * h] - m_use);
        const float p1 = exp2f(s[nt][2 * h + 1] - m_use);
        s[nt][2 * h] = p0;
        s[nt][2 * h + 1] = p1;
        sum += p0 + p1;
      }
      l[h] = l[h] * alpha + sum;
      m[h] = m_new;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        o[dt][2 * h] *= alpha;
        o[dt][2 * h + 1] *= alpha;
      }
    }

    // O += P V: P's operand fragments come from the S accumulators.
#pragma unroll
    for (int kc = 0; kc < kBc / 16; ++kc) {
      uint32_t pa[4];
      pa[0] = Mma<T>::pack(s[2 * kc][0], s[2 * kc][1]);
      pa[1] = Mma<T>::pack(s[2 * kc][2], s[2 * kc][3]);
      pa[2] = Mma<T>::pack(s[2 * kc + 1][0], s[2 * kc + 1][1]);
      pa[3] = Mma<T>::pack(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, svb + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S + dp * 16 + (lane >> 4) * 8);
        Mma<T>::run(o[2 * dp], pa, vb[0], vb[1]);
        Mma<T>::run(o[2 * dp + 1], pa, vb[2], vb[3]);
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this buffer
  }

  // Row sums over the quad, then normalise and store.
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 1);
    l[h] += __shfl_xor_sync(0xffffffffu, l[h], 2);
  }
  float* og = a.out + int64_t(head) * a.n_q * D;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + 8 * h;
    if (row >= a.n_q) continue;
    const float inv = l[h] > 0.0f ? 1.0f / l[h] : 0.0f;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      float2 val = make_float2(o[dt][2 * h] * inv, o[dt][2 * h + 1] * inv);
      *reinterpret_cast<float2*>(og + int64_t(row) * D + dt * 8 + 2 * t) = val;
    }
    if (a.lse && t == 0) {
      a.lse[int64_t(head) * a.n_q + row] = l[h] > 0.0f ? (m[h] + log2f(l[h])) * kLn2 : -INFINITY;
    }
  }
}

template <typename T, int D, int MIN_BLOCKS>
Status launch_typed(const DeviceAttention& a) {
  constexpr int S = D + 8;
  constexpr size_t smem = size_t(kBr + 4 * kBc) * S * sizeof(T);
  auto kernel = &prefill_kernel<T, D, MIN_BLOCKS>;
  static bool smem_configured = false;  // once per process (one device: cudaSetDevice(0))
  if (!smem_configured) {
    TP_CUDA_TRY(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(smem)),
                "cudaFuncSetAttribute(prefill smem)");
    smem_configured = true;
  }
  PrefillArgs args;
  args.q = a.q;
  args.k = a.k;
  args.v = a.v;
  args.out = a.out;
  args.lse = a.lse;
  args.n_q = static_cast<int>(a.n_q);
  args.n_kv = static_cast<int>(a.n_kv);
  args.group = static_cast<int>(a.n_heads / a.n_kv_heads);
  args.qk_scale = a.scale * kLog2e;
  args.causal = a.causal;
  const dim3 grid(static_cast<unsigned>((a.n_q + kBr - 1) / kBr), static_cast<unsigned>(a.n_heads));
  void* kargs[] = {&args};
  TP_CUDA_TRY(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, dim3(kWarps * 32), kargs, smem, nullptr),
              "launch prefill_kernel");
  return Status::ok();
}

}  // namespace

Status launch_prefill(const DeviceAttention& a) {
  const bool bf16 = a.kv_dtype == DType::BF16;
  if (a.head_dim == 64) return bf16 ? launch_typed<__nv_bfloat16, 64, 2>(a) : launch_typed<__half, 64, 2>(a);
  if (a.prefill_blocks_per_sm == 1) return bf16 ? launch_typed<__nv_bfloat16, 128, 1>(a) : launch_typed<__half, 128, 1>(a);
  return bf16 ? launch_typed<__nv_bfloat16, 128, 2>(a) : launch_typed<__half, 128, 2>(a);
}

}  // namespace tp::cuda
