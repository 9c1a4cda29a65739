// Prefill attention on tensor cores (FlashAttention-2 scheme, mma.sync
// m16n8k16 with f16 or bf16 operands and f32 accumulators).
//
// Grid (ceil(nQ / 128), nHeads); a block owns 128 query rows: MT m16 tiles
// (16 * MT rows) per warp, 128 / (16 * MT) warps, key tiles of BC. Q (rounded
// from f32 to the K/V dtype) stays in shared memory; K/V tiles are
// double-buffered with cp.async. S = Q K^T lives in registers, the online
// softmax rescales the register accumulator O, and P (rounded to the K/V
// dtype) feeds P V straight from the S registers (the m16n8 accumulator
// layout of S is the m16k16 operand layout of P). Each K/V fragment read from
// shared memory feeds MT row tiles. Rows of shared memory are padded by 16
// bytes so ldmatrix is conflict-free. Variants (DeviceAttention::variant):
// 0 = MT 2, BC 32 (default, 4 warps); 1 = MT 1, BC 64 (8 warps, 2 blocks/SM,
// 128 registers); 2 = as 1 at 1 block/SM (170 registers).
// Causal: tiles past a block's last visible key are skipped; heavy query
// tiles are scheduled first.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <mutex>

#include <cmath>
#include <cstdint>

#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace tp::cuda {
namespace {

constexpr int kBr = 128;
constexpr int kBc = 64;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct PrefillArgs {
  const float* q;
  const void* k;
  const void* v;
  float* out;
  float* lse;
  const int* head_len;  // [nKvHeads] keys per KV head, or null: n_kv for all
  int64_t head_stride;  // elements between KV heads of k and v
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

template <typename T, int D, int BC, int THREADS>
__device__ __forceinline__ void load_kv_tile(T* sk, T* sv, const T* k, const T* v, int tile, int n_kv) {
  constexpr int S = D + 8;
  constexpr int CHUNKS = BC * D / 8;  // 16-byte chunks per tile
  for (int c = threadIdx.x; c < CHUNKS; c += THREADS) {
    const int row = c / (D / 8), col = (c % (D / 8)) * 8;
    const int key = tile * BC + row;
    const int src_key = key < n_kv ? key : n_kv - 1;
    const int bytes = key < n_kv ? 16 : 0;
    cp_async16(sk + row * S + col, k + int64_t(src_key) * D + col, bytes);
    cp_async16(sv + row * S + col, v + int64_t(src_key) * D + col, bytes);
  }
}

// 2^x on the SFU (ex2.approx, relative error ~2^-22; 2^-inf = +0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// MT m16 tiles (16 * MT query rows) per warp; kBr / (16 * MT) warps.
template <typename T, int D, int MT, int BC, int MIN_BLOCKS>
__global__ void __launch_bounds__(kBr / (16 * MT) * 32, MIN_BLOCKS) prefill_kernel(PrefillArgs a) {
  constexpr int WARPS = kBr / (16 * MT);
  constexpr int THREADS = WARPS * 32;
  constexpr int S = D + 8;     // padded row (elements)
  constexpr int NT = BC / 8;  // n8 tiles of S per m tile
  constexpr int DT = D / 8;    // n8 tiles of O per m tile
  extern __shared__ uint4 smem_raw[];
  T* sq = reinterpret_cast<T*>(smem_raw);
  T* sk = sq + kBr * S;      // [2][BC][S]
  T* sv = sk + 2 * BC * S;  // [2][BC][S]

  const int qtile = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y;
  const int kvh = head / a.group;
  // This KV head's keys (its own length in a KV cache view).
  const int n_kv = a.head_len ? min(max(__ldg(a.head_len + kvh), 0), a.n_kv) : a.n_kv;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int q0 = qtile * kBr;
  const int offset = n_kv - a.n_q;  // key position of query 0

  const T* k = static_cast<const T*>(a.k) + int64_t(kvh) * a.head_stride;
  const T* v = static_cast<const T*>(a.v) + int64_t(kvh) * a.head_stride;

  // Visible key range of the block.
  const int last_row = min(q0 + kBr, a.n_q) - 1;
  const int kmax = a.causal ? min(n_kv - 1, offset + last_row) : n_kv - 1;
  const int n_tiles = kmax < 0 ? 0 : kmax / BC + 1;
  if (n_tiles > 0) {
    load_kv_tile<T, D, BC, THREADS>(sk, sv, k, v, 0, n_kv);
    cp_async_commit();
  }

  // Q tile: f32 -> T, zero rows past nQ.
  const float* qg = a.q + int64_t(head) * a.n_q * D;
  for (int c = threadIdx.x; c < kBr * D / 4; c += THREADS) {
    const int row = c / (D / 4), col = (c % (D / 4)) * 4;
    float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
    if (q0 + row < a.n_q) x = *reinterpret_cast<const float4*>(qg + int64_t(q0 + row) * D + col);
    uint2 packed;
    packed.x = Mma<T>::pack(x.x, x.y);
    packed.y = Mma<T>::pack(x.z, x.w);
    *reinterpret_cast<uint2*>(sq + row * S + col) = packed;
  }

  const int wrow = warp * 16 * MT;  // first row of the warp in the tile
  float o[MT][DT][4];
  float m[MT][2], l[MT][2];
  int lim[MT][2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int i = 0; i < DT; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      m[mt][h] = -INFINITY;
      l[mt][h] = 0.0f;
      lim[mt][h] = a.causal ? offset + q0 + wrow + mt * 16 + g + 8 * h : n_kv - 1;
    }
  }
  const int block_lim = a.causal ? offset + q0 : n_kv - 1;  // smallest row limit in the block

  for (int j = 0; j < n_tiles; ++j) {
    const int buf = j & 1;
    if (j + 1 < n_tiles) {
      load_kv_tile<T, D, BC, THREADS>(sk + (buf ^ 1) * BC * S, sv + (buf ^ 1) * BC * S, k, v, j + 1, n_kv);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* skb = sk + buf * BC * S;
    const T* svb = sv + buf * BC * S;

    // S = Q K^T for the warp's rows and the tile's 64 keys; each K fragment
    // feeds all MT row tiles.
    float s[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int i = 0; i < NT; ++i) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.0f;
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t af[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(af[mt], sq + (wrow + mt * 16 + (lane & 15)) * S + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t bf[4];
        ldmatrix_x4(bf, skb + (np * 16 + (lane & 7) + (lane >> 4) * 8) * S + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Mma<T>::run(s[mt][2 * np], af[mt], bf[0], bf[1]);
          Mma<T>::run(s[mt][2 * np + 1], af[mt], bf[2], bf[3]);
        }
      }
    }

    // Scale into the log2 domain; mask keys past nKv or past a row's limit.
    const int key0 = j * BC;
    const bool need_mask = key0 + BC - 1 > block_lim || key0 + BC > n_kv;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[mt][nt][e] * a.qk_scale;
          if (need_mask) {
            const int key = key0 + nt * 8 + 2 * t + (e & 1);
            if (key >= n_kv || key > lim[mt][e >> 1]) x = -INFINITY;
          }
          s[mt][nt][e] = x;
        }
      }
    }

    // Online softmax per row (a row's 64 values live in the 4 lanes of a quad).
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[mt][h], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;  // all masked so far: keep exp2 finite
        const float alpha = fast_exp2(m[mt][h] - m_use);
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
          const float p0 = fast_exp2(s[mt][nt][2 * h] - m_use);
          const float p1 = fast_exp2(s[mt][nt][2 * h + 1] - m_use);
          s[mt][nt][2 * h] = p0;
          s[mt][nt][2 * h + 1] = p1;
          sum += p0 + p1;
        }
        l[mt][h] = l[mt][h] * alpha + sum;
        m[mt][h] = m_new;
#pragma unroll
        for (int dt = 0; dt < DT; ++dt) {
          o[mt][dt][2 * h] *= alpha;
          o[mt][dt][2 * h + 1] *= alpha;
        }
      }
    }

    // O += P V: P's operand fragments come from the S accumulators; each V
    // fragment feeds all MT row tiles.
#pragma unroll
    for (int kc = 0; kc < BC / 16; ++kc) {
      uint32_t pa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        pa[mt][0] = Mma<T>::pack(s[mt][2 * kc][0], s[mt][2 * kc][1]);
        pa[mt][1] = Mma<T>::pack(s[mt][2 * kc][2], s[mt][2 * kc][3]);
        pa[mt][2] = Mma<T>::pack(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
        pa[mt][3] = Mma<T>::pack(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < D / 16; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, svb + (kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S + dp * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          Mma<T>::run(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
          Mma<T>::run(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this buffer
  }

  // Row sums over the quad, then normalise and store.
  float* og = a.out + int64_t(head) * a.n_q * D;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float lh = l[mt][h];
      lh += __shfl_xor_sync(0xffffffffu, lh, 1);
      lh += __shfl_xor_sync(0xffffffffu, lh, 2);
      const int row = q0 + wrow + mt * 16 + g + 8 * h;
      if (row >= a.n_q) continue;
      const float inv = lh > 0.0f ? 1.0f / lh : 0.0f;
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        const float2 val = make_float2(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
        *reinterpret_cast<float2*>(og + int64_t(row) * D + dt * 8 + 2 * t) = val;
      }
      if (a.lse && t == 0) {
        a.lse[int64_t(head) * a.n_q + row] = lh > 0.0f ? (m[mt][h] + log2f(lh)) * kLn2 : -INFINITY;
      }
    }
  }
}

template <typename T, int D, int MT, int BC, int MIN_BLOCKS>
Status launch_typed(const DeviceAttention& a) {
  constexpr int S = D + 8;
  constexpr int THREADS = kBr / (16 * MT) * 32;
  constexpr size_t smem = size_t(kBr + 4 * BC) * S * sizeof(T);
  auto kernel = &prefill_kernel<T, D, MT, BC, MIN_BLOCKS>;
  static std::once_flag smem_configured;  // once per process (one device: cudaSetDevice(0)), from any thread
  Status configured = Status::ok();
  std::call_once(smem_configured, [&] {
    configured = check(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(smem)),
                       "cudaFuncSetAttribute(prefill smem)");
  });
  if (!configured.is_ok()) return configured;
  PrefillArgs args;
  args.q = a.q;
  args.k = a.k;
  args.v = a.v;
  args.out = a.out;
  args.lse = a.lse;
  args.n_q = static_cast<int>(a.n_q);
  args.n_kv = static_cast<int>(a.n_kv);
  args.head_len = a.head_len;
  args.head_stride = a.kv_head_stride > 0 ? a.kv_head_stride : a.n_kv * a.head_dim;
  args.group = static_cast<int>(a.n_heads / a.n_kv_heads);
  args.qk_scale = a.scale * kLog2e;
  args.causal = a.causal;
  const dim3 grid(static_cast<unsigned>((a.n_q + kBr - 1) / kBr), static_cast<unsigned>(a.n_heads));
  void* kargs[] = {&args};
  TP_CUDA_TRY(cudaLaunchKernel(reinterpret_cast<const void*>(kernel), grid, dim3(THREADS), kargs, smem, nullptr),
              "launch prefill_kernel");
  return Status::ok();
}

template <typename T>
Status launch_variant(const DeviceAttention& a) {
  // 0 (default): 32 rows per warp, 32-key tiles (measured fastest at headDim
  // 128: 294 TFLOP/s vs 272 for variant 1 on an H200); 1: 16 rows per warp,
  // 64-key tiles, 2 blocks/SM; 2: as 1 at 1 block/SM (headDim 128 only).
  if (a.head_dim == 64) {
    if (a.variant == 0) return launch_typed<T, 64, 2, 32, 2>(a);
    return launch_typed<T, 64, 1, kBc, 2>(a);
  }
  if (a.variant == 0) return launch_typed<T, 128, 2, 32, 1>(a);
  if (a.variant == 2) return launch_typed<T, 128, 1, kBc, 1>(a);
  return launch_typed<T, 128, 1, kBc, 2>(a);
}

}  // namespace

Status launch_prefill(const DeviceAttention& a) {
  return a.kv_dtype == DType::BF16 ? launch_variant<__nv_bfloat16>(a) : launch_variant<__half>(a);
}

}  // namespace tp::cuda
