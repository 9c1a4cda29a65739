// Merging of evicted rows on the device: nearest kept row by cosine (a tiled
// dot-product argmax), evicted rows grouped by target (CUB stable radix
// sorts), and the count-weighted means in the CPU's order. Semantics:
// cuda_kv_merge.h.
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <climits>
#include <cmath>

#include "cuda_check.cuh"
#include "cuda_kv_common.cuh"
#include "cuda_kv_merge.h"

namespace tp::cuda {
namespace {

using namespace kvk;

constexpr int kTileE = 64, kTileK = 64, kChunkD = 32, kNearThreads = 256;

// First index in sorted[0, n) whose value is >= x.
__device__ __forceinline__ int lower_bound(const int32_t* sorted, int n, int x) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// flags[h * cap + r] = 1 if row r is kept, else 0; ids = r.
__global__ void kept_flags_kernel(MergePlanView p, int32_t* flags, int32_t* ids) {
  const int h = blockIdx.y;
  const int r = blockIdx.x * kThreads + threadIdx.x;
  if (r >= p.lens[h]) return;
  const int nk = p.keep[h];
  const int32_t* s = p.sel + int64_t(h) * p.stride;
  const int at = lower_bound(s, nk, r);
  flags[int64_t(h) * p.cap + r] = at < nk && s[at] == r ? 1 : 0;
  ids[int64_t(h) * p.cap + r] = r;
}

// 1 / ||k|| of each kept row (double sum, like the CPU), 0 for a zero row.
template <typename T>
__global__ void kept_inv_norm_kernel(MergePlanView p, float* inv_norm) {
  const int h = blockIdx.y;
  const int j = blockIdx.x * kThreads + threadIdx.x;
  if (j >= p.keep[h]) return;
  const T* row = static_cast<const T*>(p.k) + (int64_t(h) * p.cap + p.sel[int64_t(h) * p.stride + j]) * p.head_dim;
  double s = 0;
  for (int64_t c = 0; c < p.head_dim; ++c) {
    const double x = to_f32(row[c]);
    s += x * x;
  }
  inv_norm[int64_t(h) * p.stride + j] = s > 0 ? static_cast<float>(1.0 / sqrt(s)) : 0.0f;
}

// Block: kTileE evicted rows of head blockIdx.y against every kept row, in
// kTileK x kChunkD tiles (headDim a multiple of kChunkD: 64, 128, 256);
// products and sums rounded separately in channel order, like the CPU's
// run_nearest, so the argmax agrees bit for bit; thread (ty, tx) of 16 x 16 owns 4 evicted rows x 4
// kept columns. evicted: the head's evicted rows (ascending) at
// evicted[h * cap + e]. Writes target[h * cap + e] (kept slot or -1) and
// rows[h * cap + e] = the evicted row.
template <typename T>
__global__ void __launch_bounds__(kNearThreads) nearest_kernel(MergePlanView p, const int32_t* evicted, const float* inv_norm,
                                                                int32_t* target, int32_t* rows) {
  __shared__ float es[kTileE][kChunkD + 1];
  __shared__ float ks[kTileK][kChunkD + 1];
  __shared__ float bv[kTileE][16];
  __shared__ int bj[kTileE][16];
  const int h = blockIdx.y;
  const int nk = p.keep[h];
  const int ev = p.lens[h] - nk;
  const int e0 = blockIdx.x * kTileE;
  if (e0 >= ev) return;  // uniform over the block
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const T* kh = static_cast<const T*>(p.k) + int64_t(h) * p.cap * p.head_dim;
  const int32_t* ev_rows = evicted + int64_t(h) * p.cap;
  const int32_t* kept = p.sel + int64_t(h) * p.stride;
  float best[4];
  int best_j[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    best[i] = -INFINITY;
    best_j[i] = -1;
  }
  for (int k0 = 0; k0 < nk; k0 += kTileK) {
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) acc[i][jj] = 0.0f;
    for (int d0 = 0; d0 < p.head_dim; d0 += kChunkD) {
      __syncthreads();
      for (int idx = threadIdx.x; idx < kTileE * kChunkD; idx += kNearThreads) {
        const int r = idx / kChunkD, c = idx % kChunkD;
        const int e = e0 + r, j = k0 + r;
        es[r][c] = e < ev ? to_f32(kh[int64_t(ev_rows[e]) * p.head_dim + d0 + c]) : 0.0f;
        ks[r][c] = j < nk ? to_f32(kh[int64_t(kept[j]) * p.head_dim + d0 + c]) : 0.0f;
      }
      __syncthreads();
#pragma unroll 8
      for (int c = 0; c < kChunkD; ++c) {
        float kv[4];
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) kv[jj] = ks[tx * 4 + jj][c];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float x = es[ty * 4 + i][c];
#pragma unroll
          for (int jj = 0; jj < 4; ++jj) acc[i][jj] = __fadd_rn(acc[i][jj], __fmul_rn(x, kv[jj]));  // the CPU's unfused a*b + c
        }
      }
    }
    // Columns ascend within a thread, so a strict > keeps the first maximum.
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
      const int j = k0 + tx * 4 + jj;
      if (j >= nk) continue;
      const float w = inv_norm[int64_t(h) * p.stride + j];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float val = acc[i][jj] * w;
        if (val > best[i]) {
          best[i] = val;
          best_j[i] = j;
        }
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    bv[ty * 4 + i][tx] = best[i];
    bj[ty * 4 + i][tx] = best_j[i];
  }
  __syncthreads();
  if (threadIdx.x >= kTileE) return;
  const int r = threadIdx.x, e = e0 + r;
  if (e >= ev) return;
  float B = -INFINITY;
  int J = -1;
  for (int t = 0; t < 16; ++t) {
    const int j = bj[r][t];
    const float v = bv[r][t];
    if (j >= 0 && (J < 0 || v > B || (v == B && j < J))) {
      B = v;
      J = j;
    }
  }
  const int row = ev_rows[e];
  double xx = 0;
  for (int64_t c = 0; c < p.head_dim; ++c) {
    const double x = to_f32(kh[int64_t(row) * p.head_dim + c]);
    xx += x * x;
  }
  const double cos = xx > 0 ? B / sqrt(xx) : 0.0;
  const int t = J >= 0 && cos >= p.threshold ? J : -1;
  target[int64_t(h) * p.cap + e] = t;
  rows[int64_t(h) * p.cap + e] = row;
  if (t >= 0) atomicOr(p.head_merges + h, 1);
}

// ranges[(h * stride + j) * 2 + {0, 1}] = the span of kept slot j in the
// head's targets sorted ascending (drops, -1, come first).
__global__ void ranges_kernel(MergePlanView p, const int32_t* sorted_targets) {
  const int h = blockIdx.y;
  const int j = blockIdx.x * kThreads + threadIdx.x;
  if (j >= p.keep[h]) return;
  const int ev = p.lens[h] - p.keep[h];
  const int32_t* t = sorted_targets + int64_t(h) * p.cap;
  p.ranges[(int64_t(h) * p.stride + j) * 2] = lower_bound(t, ev, j);
  p.ranges[(int64_t(h) * p.stride + j) * 2 + 1] = lower_bound(t, ev, j + 1);
}

__global__ void head_merges_from_ranges_kernel(const int32_t* ranges, int64_t stride, int32_t* head_merges) {
  const int h = blockIdx.y;
  const int64_t j = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (j < stride && ranges[(int64_t(h) * stride + j) * 2 + 1] > ranges[(int64_t(h) * stride + j) * 2]) atomicOr(head_merges + h, 1);
}

// One thread per (kept slot j, channel c) of head blockIdx.y; channel 0 also
// merges mass and count. No contraction: __fmul_rn / __fadd_rn as the CPU.
template <typename T>
__global__ void merge_apply_kernel(MergeApply m) {
  const int h = blockIdx.y;
  if (!m.head_merges[h]) return;
  const int64_t t = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t j = t / m.head_dim, c = t % m.head_dim;
  if (j >= m.keep[h]) return;
  const int64_t base = int64_t(h) * m.cap;
  const int r = m.sel[int64_t(h) * m.stride + j];
  const int lo = m.ranges[(int64_t(h) * m.stride + j) * 2], hi = m.ranges[(int64_t(h) * m.stride + j) * 2 + 1];
  const T* K = static_cast<const T*>(m.k);
  const T* V = static_cast<const T*>(m.v);
  float w = m.count[base + r];
  float xk = __fmul_rn(to_f32(K[(base + r) * m.head_dim + c]), w);
  float xv = __fmul_rn(to_f32(V[(base + r) * m.head_dim + c]), w);
  float mass = m.mass[base + r];
  for (int q = lo; q < hi; ++q) {
    const int64_t src = base + m.merged_rows[base + q];
    const float ws = m.count[src];
    xk = __fadd_rn(xk, __fmul_rn(ws, to_f32(K[src * m.head_dim + c])));
    xv = __fadd_rn(xv, __fmul_rn(ws, to_f32(V[src * m.head_dim + c])));
    w = __fadd_rn(w, ws);
    mass = __fadd_rn(mass, m.mass[src]);
  }
  const float inv = __fdiv_rn(1.0f, w);
  const int64_t dst = int64_t(h) * m.stride + j;
  from_f32(__fmul_rn(xk, inv), static_cast<T*>(m.k_out) + dst * m.head_dim + c);
  from_f32(__fmul_rn(xv, inv), static_cast<T*>(m.v_out) + dst * m.head_dim + c);
  if (c == 0) {
    m.mass_out[dst] = mass;
    m.count_out[dst] = w;
  }
}

}  // namespace

Status merge_temp_bytes(int64_t n_kv_heads, int64_t cap, size_t* bytes) {
  *bytes = 0;
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairs(nullptr, *bytes, static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                                       static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                                       static_cast<int>(n_kv_heads * cap), static_cast<int>(n_kv_heads),
                                                       static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(nullptr)),
              "cub SortPairs (size)");
  return Status::ok();
}

Status launch_merge_plan(const MergePlanView& p, const MergeScratch& s) {
  const int64_t n = p.n_kv_heads * p.cap;
  const int segs = static_cast<int>(p.n_kv_heads);
  TP_CUDA_TRY(cudaMemsetAsync(p.head_merges, 0, size_t(p.n_kv_heads) * 4), "cudaMemsetAsync(head merges)");
  if (p.max_evicted == 0 || p.max_len == 0) return Status::ok();
  // Evicted rows, ascending: a stable sort of (kept flag, row) per head.
  kept_flags_kernel<<<head_grid(p.max_len, p.n_kv_heads), kThreads>>>(p, s.a, s.b);
  Status st = launched("launch kept_flags_kernel");
  if (!st.is_ok()) return st;
  size_t bytes = s.temp_bytes;
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairs(s.temp, bytes, s.a, s.c, s.b, s.d, static_cast<int>(n), segs, p.row_begin, p.row_end, 0, 1),
              "cub SortPairs (evicted rows)");
  if (p.dtype == DType::BF16) kept_inv_norm_kernel<__nv_bfloat16><<<head_grid(p.max_keep, p.n_kv_heads), kThreads>>>(p, s.inv_norm);
  else if (p.dtype == DType::F32) kept_inv_norm_kernel<float><<<head_grid(p.max_keep, p.n_kv_heads), kThreads>>>(p, s.inv_norm);
  else kept_inv_norm_kernel<__half><<<head_grid(p.max_keep, p.n_kv_heads), kThreads>>>(p, s.inv_norm);
  st = launched("launch kept_inv_norm_kernel");
  if (!st.is_ok()) return st;
  // Targets into a (keys), evicted rows into b (values).
  const dim3 grid = head_grid(p.max_evicted, p.n_kv_heads, kTileE);
  if (p.dtype == DType::BF16) nearest_kernel<__nv_bfloat16><<<grid, kNearThreads>>>(p, s.d, s.inv_norm, s.a, s.b);
  else if (p.dtype == DType::F32) nearest_kernel<float><<<grid, kNearThreads>>>(p, s.d, s.inv_norm, s.a, s.b);
  else nearest_kernel<__half><<<grid, kNearThreads>>>(p, s.d, s.inv_norm, s.a, s.b);
  st = launched("launch nearest_kernel");
  if (!st.is_ok()) return st;
  // Group by target, rows ascending within a target (stable).
  bytes = s.temp_bytes;
  TP_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortPairs(s.temp, bytes, s.a, s.c, s.b, p.merged_rows, static_cast<int>(n), segs, p.row_begin, p.ev_end),
              "cub SortPairs (targets)");
  ranges_kernel<<<head_grid(p.max_keep, p.n_kv_heads), kThreads>>>(p, s.c);
  return launched("launch ranges_kernel");
}

Status launch_head_merges_from_ranges(const int32_t* ranges, int64_t n_kv_heads, int64_t stride, int64_t max_keep, int32_t* head_merges) {
  TP_CUDA_TRY(cudaMemsetAsync(head_merges, 0, size_t(n_kv_heads) * 4), "cudaMemsetAsync(head merges)");
  if (max_keep == 0) return Status::ok();
  head_merges_from_ranges_kernel<<<head_grid(stride, n_kv_heads), kThreads>>>(ranges, stride, head_merges);
  return launched("launch head_merges_from_ranges_kernel");
}

Status launch_merge_apply(const MergeApply& m) {
  if (m.max_keep == 0) return Status::ok();
  const dim3 grid = head_grid(m.max_keep * m.head_dim, m.n_kv_heads);
  if (m.dtype == DType::BF16) merge_apply_kernel<__nv_bfloat16><<<grid, kThreads>>>(m);
  else if (m.dtype == DType::F32) merge_apply_kernel<float><<<grid, kThreads>>>(m);
  else merge_apply_kernel<__half><<<grid, kThreads>>>(m);
  return launched("launch merge_apply_kernel");
}

}  // namespace tp::cuda
