// Split-KV flash-decoding on the GPU (f32 q, f16/bf16 K/V, f32 math).
//
// Grid (splits, nKvHeads, slices); block kDecodeWarps warps. A block reads
// keys [split * chunk, +chunk) of one KV head once and serves up to 8 query
// rows of that head's group (GQA heads x nQ queries: a "slice"). Within a
// warp, D/8 lanes share one key (8 dims each, one 16-byte load of K and one
// of V), so a warp covers 256/D keys per load and U loads per step; the
// online-softmax state (max, sum) is warp-uniform, the accumulator per lane.
// Warps are merged through shared memory, splits by decode_merge_kernel.
// Splits: one full wave of resident blocks (occupancy API), equal chunks.
// Sparse decode (indices): keys are the listed positions, gathered per row.
// Logits are kept in the log2 domain (q pre-scaled by scale * log2(e)).
//
// Options off the default path: softcap and treeMask select kernel
// instantiations with X = true (the default X = false kernels compile to the
// same code as before these options existed: every added line sits behind
// `if constexpr (X)` or reads an X-only member); returnKeyMass adds a third
// kernel (decode_mass_kernel) after the merge, which re-reads K once and
// turns each (row, key) logit into exp(logit - lse) with the merged lse.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <mutex>
#include <string>
#include <type_traits>

#include "cuda_check.cuh"
#include "cuda_kernels.h"

namespace tp::cuda {
namespace {

constexpr int kDecodeWarps = 4;
constexpr int kDecodeStages = 4;  // cp.async pipeline depth (variant 1)
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
  const int* indices;  // [nKvHeads, n_keys] key positions, or null (dense: key = position)
  const int* head_len;  // [nKvHeads] keys of each KV head (dense only), or null: n_kv for all
  int64_t head_stride;  // elements between KV heads of k and v
  int n_kv, n_keys, n_q, chunk, splits, group, rows_per_group;
  float qk_scale;
  bool causal;
};

// Options off the default path, a second kernel parameter: the default
// kernels take an empty NoExtras there, so DecodeArgs (and their code) stay
// as they were.
struct DecodeExtras {
  const unsigned char* tree;  // [n_q, n_q] u8: tree node t visible to query i, or null
  float softcap2;             // softcap * log2(e): the cap in the log2 domain; 0 = off
  float* key_mass;            // [nKvHeads, n_kv] (decode_mass_kernel), or null
  const float* mass_lse;      // [nHeads * nQ] natural-log lse of each row (decode_mass_kernel)
  const float* key_count;     // [nKvHeads, count_stride] tokens each key stands for (logit + log2(count)), or null
  int64_t count_stride;
};
struct NoExtras {};
template <bool X>
using ExtrasOf = std::conditional_t<X, DecodeExtras, NoExtras>;

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

// 2^x on the SFU (ex2.approx, relative error ~2^-22; 2^-inf = +0).
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
// 16-byte async copy global -> shared; src_bytes 0 zero-fills.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// One warp's share of a split: its q rows, its online-softmax state and
// accumulator. Keys of a warp step: base + u * KPW + kg (u < U).
// X: the softcap / treeMask instantiation (X-only members and code are
// compiled out of the default X = false kernels).
template <typename T, int D, int R, bool X = false>
struct DecodeWarp {
  static constexpr int LPK = D / 8;     // lanes per key (8 dims each)
  static constexpr int KPW = 32 / LPK;  // keys per warp per 16-byte load
  static constexpr int U = unroll_for(R);
  static constexpr int STEP = KPW * U;  // keys per warp step

  float qf[R][8];
  int limit[R];  // last visible key of each row (-1: row absent)
  float m[R], l[R], acc[R][8];
  int warp, lane, sub, kg;
  // X only: query index of each row, the tree's first key position (n_kv_h -
  // nQ), the tree table, the log2-domain cap and its inverse.
  int qi[R];
  int diag, n_q;
  const unsigned char* tree;
  float cap2, inv_cap2;
  const float* count;  // this KV head's key counts, or null

  // n_kv_h: the keys of this KV head (the causal limit counts from its end).
  __device__ __forceinline__ void init(const DecodeArgs& a, const ExtrasOf<X>& x, int kvh, int slice, int n_kv_h) {
    warp = threadIdx.x >> 5;
    lane = threadIdx.x & 31;
    sub = lane % LPK;
    kg = lane / LPK;
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
        limit[r] = a.causal ? n_kv_h - a.n_q + i : INT_MAX;
        if constexpr (X) qi[r] = i;
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) qf[r][e] = 0.0f;
        limit[r] = -1;
      }
      m[r] = -INFINITY;
      l[r] = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] = 0.0f;
    }
    if constexpr (X) {
      diag = n_kv_h - a.n_q;
      n_q = a.n_q;
      tree = x.tree;
      cap2 = x.softcap2;
      inv_cap2 = x.softcap2 > 0.0f ? 1.0f / x.softcap2 : 0.0f;
      count = x.key_count ? x.key_count + int64_t(kvh) * x.count_stride : nullptr;
    }
  }

  // X only: the log2-domain logit s of present row r and a key at position
  // pos that passed the causal limit, after softcap (cap * tanh(s / cap), as
  // the CPU: the cap is scaled by log2(e) with s) and the tree mask (keys at
  // positions >= diag are tree node pos - diag; -inf unless that node is the
  // row's query or one of its ancestors).
  // A key standing for several merged tokens (count) weighs count times as
  // much: + log2(count) after the softcap (the CPU adds log(count) as an
  // additive mask).
  __device__ __forceinline__ float extra(float s, int r, int pos) const {
    if (cap2 > 0.0f) s = cap2 * tanhf(s * inv_cap2);
    if (count) s += log2f(__ldg(count + pos));
    if (tree) {
      const int t = pos - diag;  // < nQ: pos < the head's keys
      if (t >= 0 && !__ldg(tree + int64_t(qi[r]) * n_q + t)) s = -INFINITY;
    }
    return s;
  }

  // Scores, online softmax and P V for the warp step starting at key `base`;
  // keys >= end, or whose position pos[u] is past a row's limit (causal), are
  // masked (their K/V words may be 0).
  __device__ __forceinline__ void step(int base, int end, const int (&pos)[U], const uint4 (&kr)[U], const uint4 (&vr)[U]) {
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
      const int key = base + u * KPW + kg;
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int off = LPK / 2; off >= 1; off >>= 1) s[u][r] += __shfl_xor_sync(kFull, s[u][r], off);
        if (key >= end || pos[u] > limit[r]) s[u][r] = -INFINITY;
        else if constexpr (X) s[u][r] = extra(s[u][r], r, pos[u]);
      }
    }
    // Online softmax; max and sum are shared by the whole warp.
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
      const float alpha = fast_exp2(m[r] - m_new);
      l[r] *= alpha;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[r][e] *= alpha;
      m[r] = m_new;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float p = fast_exp2(s[u][r] - m_new);
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

  // Merges the warps of the block through `smem` (kDecodeWarps * R * (D + 2)
  // floats; the caller synchronised) and writes the split's partial rows.
  __device__ __forceinline__ void finish(const DecodeArgs& a, float* smem, int kvh, int slice, int split) {
    float* sm_acc = smem;                            // [W][R][D]
    float* sm_m = smem + kDecodeWarps * R * D;       // [W][R]
    float* sm_l = sm_m + kDecodeWarps * R;           // [W][R]
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int off = 16; off >= LPK; off >>= 1) {  // sum over the key groups (same max)
        l[r] += __shfl_xor_sync(kFull, l[r], off);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[r][e] += __shfl_xor_sync(kFull, acc[r][e], off);
      }
    }
    if (kg == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
#pragma unroll
        for (int e = 0; e < 8; ++e) sm_acc[(warp * R + r) * D + sub * 8 + e] = acc[r][e];
      }
    }
    if (lane == 0) {
#pragma unroll
      for (int r = 0; r < R; ++r) {
        sm_m[warp * R + r] = m[r];
        sm_l[warp * R + r] = l[r];
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < R * D; idx += blockDim.x) {
      const int r = idx / D, d = idx % D;
      const int rr = slice * R + r;
      if (rr >= a.rows_per_group) continue;
      float M = -INFINITY;
      for (int w = 0; w < kDecodeWarps; ++w) M = fmaxf(M, sm_m[w * R + r]);
      float O = 0.0f, L = 0.0f;
      if (M != -INFINITY) {
        for (int w = 0; w < kDecodeWarps; ++w) {
          const float f = fast_exp2(sm_m[w * R + r] - M);
          O = fmaf(sm_acc[(w * R + r) * D + d], f, O);
          L = fmaf(sm_l[w * R + r], f, L);
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
};

// Key position of key `key` of KV head `kvh` (indexed: clamped to [0, nKv)
// as a safety net; the host validates the indices).
__device__ __forceinline__ int key_position(const DecodeArgs& a, int kvh, int key) {
  if (!a.indices) return key;
  const int p = __ldg(a.indices + int64_t(kvh) * a.n_keys + key);
  return min(max(p, 0), a.n_kv - 1);
}

// Keys of KV head kvh: its own length when lengths are given (dense), else all.
__device__ __forceinline__ int head_keys(const DecodeArgs& a, int kvh) {
  return a.head_len ? min(max(__ldg(a.head_len + kvh), 0), a.n_keys) : a.n_keys;
}

template <int D, int R>
__host__ __device__ constexpr int finish_floats() { return kDecodeWarps * R * (D + 2); }

// Variant 0 (default): each warp loads its K/V words straight from global
// memory into registers (U loads of K and of V per lane in flight), then
// computes. Measured on an H200 (bench/gpu-check.sh): 79% of the copy
// bandwidth at 128k keys, 56% at 32k.
template <typename T, int D, int R, bool X>
__global__ void __launch_bounds__(kDecodeWarps * 32) decode_split_kernel(DecodeArgs a, ExtrasOf<X> x) {
  using Warp = DecodeWarp<T, D, R, X>;
  constexpr int U = Warp::U;
  __shared__ float smem[finish_floats<D, R>()];
  const int split = blockIdx.x, kvh = blockIdx.y, slice = blockIdx.z;
  const int n_keys = head_keys(a, kvh);
  Warp w;
  w.init(a, x, kvh, slice, a.head_len ? n_keys : a.n_kv);
  const T* kbase = static_cast<const T*>(a.k) + int64_t(kvh) * a.head_stride + w.sub * 8;
  const T* vbase = static_cast<const T*>(a.v) + int64_t(kvh) * a.head_stride + w.sub * 8;
  const int begin = split * a.chunk;
  const int end = min(n_keys, begin + a.chunk);
  for (int base = begin + w.warp * Warp::STEP; base < end; base += kDecodeWarps * Warp::STEP) {
    uint4 kr[U], vr[U];
    int pos[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int key = base + u * Warp::KPW + w.kg;
      if (key < end) {
        pos[u] = key_position(a, kvh, key);
        kr[u] = __ldg(reinterpret_cast<const uint4*>(kbase + int64_t(pos[u]) * D));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(vbase + int64_t(pos[u]) * D));
      } else {
        pos[u] = 0;
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      }
    }
    w.step(base, end, pos, kr, vr);
  }
  w.finish(a, smem, kvh, slice, split);
}

// Variant 1: the block streams K/V tiles of TILE keys through a
// kDecodeStages-deep cp.async pipeline in shared memory, loads for later tiles
// in flight while warps compute. Warp w takes keys [w * STEP, +STEP) of each
// tile. Measured slower than variant 0 at 128k keys (54% of the copy
// bandwidth; the per-tile block barrier paces the block) and slightly faster
// at 32k (60%); kept as a tested alternative for tuning.
template <typename T, int D, int R>
struct PipelineShape {
  static constexpr int TILE = kDecodeWarps * DecodeWarp<T, D, R>::STEP;
  static constexpr size_t stage_bytes = size_t(2) * TILE * D * sizeof(T);
  static constexpr size_t finish_bytes = size_t(finish_floats<D, R>()) * sizeof(float);
  static constexpr size_t smem_bytes = kDecodeStages * stage_bytes > finish_bytes ? kDecodeStages * stage_bytes : finish_bytes;
};

template <typename T, int D, int R, bool X>
__global__ void __launch_bounds__(kDecodeWarps * 32) decode_pipelined_kernel(DecodeArgs a, ExtrasOf<X> x) {
  using Warp = DecodeWarp<T, D, R, X>;
  using Shape = PipelineShape<T, D, R>;
  constexpr int U = Warp::U;
  constexpr int TILE = Shape::TILE;
  constexpr int S = kDecodeStages;
  extern __shared__ uint4 smem_raw[];
  T* stages = reinterpret_cast<T*>(smem_raw);  // [S][K, V][TILE][D]
  const int split = blockIdx.x, kvh = blockIdx.y, slice = blockIdx.z;
  const int n_keys = head_keys(a, kvh);
  Warp w;
  w.init(a, x, kvh, slice, a.head_len ? n_keys : a.n_kv);
  const T* kh = static_cast<const T*>(a.k) + int64_t(kvh) * a.head_stride;
  const T* vh = static_cast<const T*>(a.v) + int64_t(kvh) * a.head_stride;
  const int begin = split * a.chunk;
  const int end = min(n_keys, begin + a.chunk);
  const int n_tiles = end > begin ? (end - begin + TILE - 1) / TILE : 0;

  // Every thread commits one group per call (empty past the last tile), so
  // wait_group counts stay uniform.
  auto issue = [&](int t) {
    if (t < n_tiles) {
      T* sk = stages + size_t(t % S) * 2 * TILE * D;
      T* sv = sk + TILE * D;
      const int key0 = begin + t * TILE;
      for (int c = threadIdx.x; c < TILE * D / 8; c += kDecodeWarps * 32) {
        const int row = c / (D / 8), col = (c % (D / 8)) * 8;
        const int key = key0 + row;
        const bool ok = key < end;
        const int64_t off = int64_t(ok ? key_position(a, kvh, key) : 0) * D + col;
        cp_async16(sk + row * D + col, kh + off, ok ? 16 : 0);
        cp_async16(sv + row * D + col, vh + off, ok ? 16 : 0);
      }
    }
    cp_async_commit();
  };
#pragma unroll
  for (int t = 0; t < S - 1; ++t) issue(t);
  for (int t = 0; t < n_tiles; ++t) {
    cp_async_wait<S - 2>();
    __syncthreads();      // tile t visible to all; everyone is done with tile t - 1
    issue(t + S - 1);     // refills the slot tile t - 1 used
    const T* sk = stages + size_t(t % S) * 2 * TILE * D;
    const T* sv = sk + TILE * D;
    uint4 kr[U], vr[U];
    int pos[U];
    const int base = begin + t * TILE + w.warp * Warp::STEP;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int row = w.warp * Warp::STEP + u * Warp::KPW + w.kg;
      kr[u] = *reinterpret_cast<const uint4*>(sk + row * D + w.sub * 8);
      vr[u] = *reinterpret_cast<const uint4*>(sv + row * D + w.sub * 8);
      // Positions matter only for the causal limit (INT_MAX otherwise) and
      // the tree mask (X kernels).
      const int key = base + u * Warp::KPW + w.kg;
      bool need_pos = a.causal;
      if constexpr (X) need_pos = need_pos || x.tree;
      pos[u] = need_pos && a.indices && key < end ? key_position(a, kvh, key) : key;
    }
    w.step(base, end, pos, kr, vr);
  }
  cp_async_wait<0>();
  __syncthreads();  // stage buffers are reused by finish()
  w.finish(a, reinterpret_cast<float*>(smem_raw), kvh, slice, split);
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
      const float f = fast_exp2(pm[s] - M);
      L = fmaf(pl[s], f, L);
      O = fmaf(part_o[(row * splits + s) * D + d], f, O);
    }
  }
  out[row * D + d] = L > 0.0f ? O / L : 0.0f;
  if (lse && d == 0) lse[row] = L > 0.0f ? (M + log2f(L)) * kLn2 : -INFINITY;
}

// returnKeyMass: grid and key chunks of the split kernel; each warp takes KPW
// keys per iteration, re-reads K only, recomputes the R rows' log2-domain
// logits exactly as the split kernel does (same products and shuffles, then
// softcap and masks), and adds sum over the rows of exp2(logit - lse2) to
// key_mass[kvh][pos] (atomically: slices of one group and repeated indices
// meet at one position). Rows that see no key (lse -inf) add 0.
template <typename T, int D, int R>
__global__ void __launch_bounds__(kDecodeWarps * 32) decode_mass_kernel(DecodeArgs a, DecodeExtras x) {
  using Warp = DecodeWarp<T, D, R, true>;
  constexpr int LPK = Warp::LPK, KPW = Warp::KPW;
  const int split = blockIdx.x, kvh = blockIdx.y, slice = blockIdx.z;
  const int n_keys = head_keys(a, kvh);
  Warp w;
  w.init(a, x, kvh, slice, a.head_len ? n_keys : a.n_kv);
  float lse2[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int rr = slice * R + r;
    lse2[r] = INFINITY;  // exp2(logit - inf) = 0: absent rows and rows that see nothing
    if (rr < a.rows_per_group) {
      const int g = rr / a.n_q, i = rr % a.n_q;
      const float L = x.mass_lse[(int64_t(kvh) * a.group + g) * a.n_q + i];
      if (L != -INFINITY) lse2[r] = L * kLog2e;
    }
  }
  const T* kbase = static_cast<const T*>(a.k) + int64_t(kvh) * a.head_stride + w.sub * 8;
  float* mass = x.key_mass + int64_t(kvh) * a.n_kv;
  const int begin = split * a.chunk;
  const int end = min(n_keys, begin + a.chunk);
  for (int base = begin + w.warp * KPW; base < end; base += kDecodeWarps * KPW) {  // warp-uniform
    const int key = base + w.kg;
    int pos = 0;
    uint4 kr = make_uint4(0, 0, 0, 0);
    if (key < end) {
      pos = key_position(a, kvh, key);
      kr = __ldg(reinterpret_cast<const uint4*>(kbase + int64_t(pos) * D));
    }
    float kf[8];
    to_float8(kr, kf, static_cast<const T*>(nullptr));
    float sum = 0.0f;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      float s = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) s = fmaf(w.qf[r][e], kf[e], s);
#pragma unroll
      for (int off = LPK / 2; off >= 1; off >>= 1) s += __shfl_xor_sync(kFull, s, off);
      if (key >= end || pos > w.limit[r]) continue;
      s = w.extra(s, r, pos);
      sum += fast_exp2(s - lse2[r]);
    }
    if (w.sub == 0 && key < end && sum > 0.0f) atomicAdd(mass + pos, sum);
  }
}

// KIVI rows read in place (DeviceQuantKv): 8 channels c0..c0+7 of token t of
// a block, dequantized as the CPU does (min + scale * code, rounded once
// each: kv_quant_block.h), then rounded to f16 so step() runs unchanged.
__device__ __forceinline__ float f16_at(const uint8_t* p) { return __half2float(__ushort_as_half(__ldg(reinterpret_cast<const unsigned short*>(p)))); }

__device__ __forceinline__ uint4 pack_f16x8(const float (&x)[8]) {
  uint4 r;
  __half2* h = reinterpret_cast<__half2*>(&r);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2half2_rn(x[2 * i], x[2 * i + 1]);
  return r;
}

template <int BITS>
__device__ __forceinline__ void load_quant_row(const DeviceQuantKv& q, const uint8_t* blk, int t, int c0, uint4& kr, uint4& vr) {
  uint32_t kc[8], vc[8];
  if constexpr (BITS == 8) {
    const uint2 k8 = __ldg(reinterpret_cast<const uint2*>(blk + q.k_codes + int64_t(t) * q.row_bytes + c0));
    const uint2 v8 = __ldg(reinterpret_cast<const uint2*>(blk + q.v_codes + int64_t(t) * q.row_bytes + c0));
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      kc[i] = (k8.x >> (8 * i)) & 0xff;
      kc[4 + i] = (k8.y >> (8 * i)) & 0xff;
      vc[i] = (v8.x >> (8 * i)) & 0xff;
      vc[4 + i] = (v8.y >> (8 * i)) & 0xff;
    }
  } else {
    // Keys: one 4-byte word per token octet and channel octet: byte i holds
    // channel c0 + i (low nibble) and c0 + 4 + i (high nibble).
    const uint32_t k4 = __ldg(reinterpret_cast<const unsigned*>(blk + q.k_codes + int64_t(t >> 3) * q.k_octet_bytes + (c0 >> 3) * 32 + (t & 7) * 4));
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      kc[i] = (k4 >> (8 * i)) & 0xf;
      kc[4 + i] = (k4 >> (8 * i + 4)) & 0xf;
    }
    // Values: per token pair and 32-channel block, byte 2j + (t & 1) holds
    // channel j (low nibble) and j + 16 (high nibble).
    const int j0 = c0 & 31, jj = j0 < 16 ? j0 : j0 - 16, shift = j0 < 16 ? 0 : 4;
    const uint4 raw = __ldg(reinterpret_cast<const uint4*>(blk + q.v_codes + int64_t(t >> 1) * q.v_pair_bytes + (c0 >> 5) * 32 + 2 * jj));
    const uint8_t* b = reinterpret_cast<const uint8_t*>(&raw);
#pragma unroll
    for (int i = 0; i < 8; ++i) vc[i] = (b[2 * i + (t & 1)] >> shift) & 0xf;
  }
  const uint4 ks = __ldg(reinterpret_cast<const uint4*>(blk + q.k_scale + 2 * c0));
  const uint4 km = __ldg(reinterpret_cast<const uint4*>(blk + q.k_min + 2 * c0));
  const __half* hs = reinterpret_cast<const __half*>(&ks);
  const __half* hm = reinterpret_cast<const __half*>(&km);
  const int64_t at = int64_t(c0 / q.group) * q.group + t;  // the value group of channels c0..c0+7 (group % 8 == 0)
  const float vs = f16_at(blk + q.v_scale + 2 * at), vm = f16_at(blk + q.v_min + 2 * at);
  float kf[8], vf[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    kf[i] = __fadd_rn(__half2float(hm[i]), __fmul_rn(__half2float(hs[i]), static_cast<float>(kc[i])));
    vf[i] = __fadd_rn(vm, __fmul_rn(vs, static_cast<float>(vc[i])));
  }
  kr = pack_f16x8(kf);
  vr = pack_f16x8(vf);
}

// The split kernel over KIVI blocks + the f16 tail (variant 0's loads).
template <int D, int R, int BITS>
__global__ void __launch_bounds__(kDecodeWarps * 32) decode_quant_kernel(DecodeArgs a, DeviceQuantKv q) {
  using Warp = DecodeWarp<__half, D, R, false>;
  constexpr int U = Warp::U;
  __shared__ float smem[finish_floats<D, R>()];
  const int split = blockIdx.x, kvh = blockIdx.y, slice = blockIdx.z;
  const int n_keys = head_keys(a, kvh);
  Warp w;
  w.init(a, NoExtras{}, kvh, slice, a.head_len ? n_keys : a.n_kv);
  const int quantized = __ldg(q.n_blocks + kvh) * q.group;
  const uint8_t* blocks = q.blocks + int64_t(kvh) * q.blocks_cap * q.block_bytes;
  const int c0 = w.sub * 8;
  const __half* tk = reinterpret_cast<const __half*>(q.tail_k) + int64_t(kvh) * q.tail_rows * D + c0;
  const __half* tv = reinterpret_cast<const __half*>(q.tail_v) + int64_t(kvh) * q.tail_rows * D + c0;
  const int begin = split * a.chunk;
  const int end = min(n_keys, begin + a.chunk);
  for (int base = begin + w.warp * Warp::STEP; base < end; base += kDecodeWarps * Warp::STEP) {
    uint4 kr[U], vr[U];
    int pos[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int key = base + u * Warp::KPW + w.kg;
      pos[u] = key < end ? key : 0;
      if (key >= end) {
        kr[u] = make_uint4(0, 0, 0, 0);
        vr[u] = make_uint4(0, 0, 0, 0);
      } else if (key < quantized) {
        load_quant_row<BITS>(q, blocks + int64_t(key / q.group) * q.block_bytes, key % q.group, c0, kr[u], vr[u]);
      } else {
        kr[u] = __ldg(reinterpret_cast<const uint4*>(tk + int64_t(key - quantized) * D));
        vr[u] = __ldg(reinterpret_cast<const uint4*>(tv + int64_t(key - quantized) * D));
      }
    }
    w.step(base, end, pos, kr, vr);
  }
  w.finish(a, smem, kvh, slice, split);
}

struct SplitKernel {
  const void* fn;
  size_t smem;  // dynamic shared memory bytes
};

// Kernel choice. kind 0: the split kernel of `variant` (X = false), 1: the
// same with X = true (softcap / treeMask), 2: decode_mass_kernel, 3 / 4: the
// KIVI int8 / int4 kernel (f16 tails).
template <typename T, int D, int R>
SplitKernel split_kernel_of(int variant, int kind) {
  if (kind == 2) return {reinterpret_cast<const void*>(&decode_mass_kernel<T, D, R>), 0};
  if constexpr (std::is_same_v<T, __half>) {
    if (kind == 3) return {reinterpret_cast<const void*>(&decode_quant_kernel<D, R, 8>), 0};
    if (kind == 4) return {reinterpret_cast<const void*>(&decode_quant_kernel<D, R, 4>), 0};
  } else {
    if (kind == 3 || kind == 4) return {nullptr, 0};  // KIVI tails are f16 (check_device_attention refuses others)
  }
  if (kind == 1) {
    if (variant == 1) return {reinterpret_cast<const void*>(&decode_pipelined_kernel<T, D, R, true>), PipelineShape<T, D, R>::smem_bytes};
    return {reinterpret_cast<const void*>(&decode_split_kernel<T, D, R, true>), 0};
  }
  if (variant == 1) return {reinterpret_cast<const void*>(&decode_pipelined_kernel<T, D, R, false>), PipelineShape<T, D, R>::smem_bytes};
  return {reinterpret_cast<const void*>(&decode_split_kernel<T, D, R, false>), 0};
}

template <typename T, int D>
SplitKernel pick_split_kernel(int rows, int variant, int kind) {
  switch (rows) {
    case 1: return split_kernel_of<T, D, 1>(variant, kind);
    case 2: return split_kernel_of<T, D, 2>(variant, kind);
    case 4: return split_kernel_of<T, D, 4>(variant, kind);
    default: return split_kernel_of<T, D, 8>(variant, kind);
  }
}

template <typename T>
SplitKernel pick_split_kernel(int head_dim, int rows, int variant, int kind) {
  switch (head_dim) {
    case 64: return pick_split_kernel<T, 64>(rows, variant, kind);
    case 128: return pick_split_kernel<T, 128>(rows, variant, kind);
    default: return pick_split_kernel<T, 256>(rows, variant, kind);
  }
}

// Whether the split kernel needs its X instantiation (softcap or treeMask).
bool needs_extras(const DeviceAttention& a) { return a.softcap > 0.0f || a.tree_visible != nullptr || a.key_count != nullptr; }

SplitKernel split_kernel(const DeviceAttention& a, int rows, int kind) {
  const int d = static_cast<int>(a.head_dim);
  return a.kv_dtype == DType::BF16 ? pick_split_kernel<__nv_bfloat16>(d, rows, a.variant, kind)
                                   : pick_split_kernel<__half>(d, rows, a.variant, kind);
}

SplitKernel split_kernel(const DeviceAttention& a, int rows) {
  if (a.quant) return split_kernel(a, rows, a.quant->bits == 8 ? 3 : 4);
  return split_kernel(a, rows, needs_extras(a) ? 1 : 0);
}

// Per kernel, once per process (one device): the dynamic shared memory
// opt-in and the resident blocks per SM (under a lock: any thread may launch).
struct KernelInfo {
  const void* fn;
  int blocks_per_sm;
};

Status kernel_info(const SplitKernel& k, int* blocks_per_sm) {
  if (!k.fn) return Status::invalid("cuda decode: no kernel for this combination");
  static std::mutex lock;  // device KV caches call from worker threads too
  std::lock_guard<std::mutex> guard(lock);
  static KernelInfo cache[160];  // 48 split kernels of each X, 24 mass kernels, 24 KIVI kernels
  static int cached = 0;
  for (int i = 0; i < cached; ++i) {
    if (cache[i].fn == k.fn) {
      *blocks_per_sm = cache[i].blocks_per_sm;
      return Status::ok();
    }
  }
  if (k.smem > 48 * 1024) {
    TP_CUDA_TRY(cudaFuncSetAttribute(k.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(k.smem)),
                "cudaFuncSetAttribute(decode smem)");
  }
  int per_sm = 0;
  TP_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k.fn, kDecodeWarps * 32, k.smem),
              "cudaOccupancyMaxActiveBlocksPerMultiprocessor(decode)");
  per_sm = std::max(per_sm, 1);
  if (cached < 160) cache[cached++] = {k.fn, per_sm};
  *blocks_per_sm = per_sm;
  return Status::ok();
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
  int per_sm = 2;
  if (!kernel_info(split_kernel(a, p.slice_rows), &per_sm).is_ok()) per_sm = 2;  // the launch reports the error
  const int64_t target = int64_t(std::max(sm_count, 1)) * per_sm;
  const int64_t base_blocks = a.n_kv_heads * p.slices;
  int64_t splits = a.decode_splits > 0 ? a.decode_splits : std::max<int64_t>(1, (target + base_blocks - 1) / base_blocks);
  const int64_t min_chunk = std::max<int64_t>(256, step_keys);
  const int64_t n_keys = a.indices ? a.n_sel : a.n_kv;
  splits = std::min(splits, std::max<int64_t>(1, (n_keys + min_chunk - 1) / min_chunk));
  int64_t chunk = (n_keys + splits - 1) / splits;
  chunk = (chunk + step_keys - 1) / step_keys * step_keys;
  p.chunk = std::max<int64_t>(chunk, step_keys);
  p.splits = std::max<int64_t>(1, (n_keys + p.chunk - 1) / p.chunk);
  p.workspace_bytes = static_cast<size_t>(a.n_heads * a.n_q * p.splits * (a.head_dim + 2)) * sizeof(float);
  // returnKeyMass without lse: the merged lse rows go to scratch.
  if (a.key_mass && !a.lse) p.workspace_bytes += static_cast<size_t>(a.n_heads * a.n_q) * sizeof(float);
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
  args.indices = a.indices;
  args.head_len = a.head_len;
  args.head_stride = a.kv_head_stride > 0 ? a.kv_head_stride : a.n_kv * a.head_dim;
  args.n_kv = static_cast<int>(a.n_kv);
  args.n_keys = static_cast<int>(a.indices ? a.n_sel : a.n_kv);
  args.n_q = static_cast<int>(a.n_q);
  args.chunk = static_cast<int>(plan.chunk);
  args.splits = static_cast<int>(plan.splits);
  args.group = static_cast<int>(a.n_heads / a.n_kv_heads);
  args.rows_per_group = static_cast<int>(plan.rows_per_group);
  args.qk_scale = a.scale * kLog2e;
  args.causal = a.causal;
  DecodeExtras extras;
  extras.tree = a.tree_visible;
  extras.softcap2 = a.softcap > 0.0f ? a.softcap * kLog2e : 0.0f;
  extras.key_mass = a.key_mass;
  extras.key_count = a.key_count;
  extras.count_stride = a.key_count_stride;
  // The key mass needs every row's lse: the caller's buffer, else scratch
  // after the partials (plan_decode counted it).
  float* lse = a.lse ? a.lse : a.key_mass ? args.part_l + rows * plan.splits : nullptr;
  extras.mass_lse = lse;
  NoExtras no_extras;

  const dim3 grid(static_cast<unsigned>(plan.splits), static_cast<unsigned>(a.n_kv_heads), static_cast<unsigned>(plan.slices));
  const bool with_extras = needs_extras(a);
  DeviceQuantKv quant = a.quant ? *a.quant : DeviceQuantKv{};
  void* split_args[] = {&args, a.quant ? static_cast<void*>(&quant) : with_extras ? static_cast<void*>(&extras) : static_cast<void*>(&no_extras)};
  const SplitKernel kernel = split_kernel(a, plan.slice_rows);
  int per_sm = 0;
  Status s = kernel_info(kernel, &per_sm);
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaLaunchKernel(kernel.fn, grid, dim3(kDecodeWarps * 32), split_args, kernel.smem, nullptr),
              "launch decode split kernel");
  const float* po = args.part_o;
  const float* pm = args.part_m;
  const float* pl = args.part_l;
  int splits = args.splits;
  float* out = a.out;
  void* merge_args[] = {&po, &pm, &pl, &splits, &out, &lse};
  TP_CUDA_TRY(cudaLaunchKernel(merge_kernel(a.head_dim), dim3(static_cast<unsigned>(rows)), dim3(static_cast<unsigned>(a.head_dim)),
                               merge_args, 0, nullptr),
              "launch decode_merge_kernel");
  if (a.key_mass) {
    TP_CUDA_TRY(cudaMemsetAsync(a.key_mass, 0, size_t(a.n_kv_heads * a.n_kv) * sizeof(float)), "cudaMemsetAsync(key_mass)");
    const SplitKernel mk = split_kernel(a, plan.slice_rows, 2);
    void* mass_args[] = {&args, &extras};
    TP_CUDA_TRY(cudaLaunchKernel(mk.fn, grid, dim3(kDecodeWarps * 32), mass_args, 0, nullptr), "launch decode_mass_kernel");
  }
  return Status::ok();
}

}  // namespace tp::cuda
