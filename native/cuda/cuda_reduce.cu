// The vision kernels (cuda_reduce.h): row normalisation, the tiled dot /
// cosine matrix, row argmax, the radix top-k, ToMe's size-weighted merge,
// DivPrune's greedy max-min and the k-means centroid means. Every float
// operation and rule is native/reduce/reduce_hd.h (TP_HD), which the host
// model (native/reduce/reduce_device_model.cpp) runs in the same order, so
// test/unit/vision-device-model.test.ts checks this arithmetic on the CPU
// and test/gpu/cuda-vision.test.ts checks the device against the host model
// bit for bit.
#include <cuda_runtime.h>

#include <vector>

#include "../reduce/reduce_hd.h"
#include "cuda_block_scan.cuh"
#include "cuda_check.cuh"
#include "cuda_reduce.h"

namespace tp::cuda {
namespace {

namespace rh = reduce::hd;

constexpr unsigned kFull = 0xffffffffu;
constexpr int kWarpsPerBlock = 8;  // normalize / argmax / nearest: a warp per row
constexpr int kTile = 64;          // dot: 64 x 64 outputs per block,
constexpr int kTileK = 16;         // 16 k per shared-memory step,
constexpr int kMicro = 4;          // 4 x 4 per thread (256 threads)
constexpr int kTopkThreads = 512;
constexpr int kStepThreads = 256;  // DivPrune step: tokens per block

Status launched(const char* what) { return check(cudaGetLastError(), what); }
unsigned blocks_for(int64_t n, int64_t per) { return static_cast<unsigned>((n + per - 1) / per); }

// A warp per row: lane j sums j, j + 32, ... (rh::sumsq_lane), shuffles down
// 16, 8, ..., 1 (the host model's tree), lane 0's sum broadcast.
__global__ void normalize_kernel(const float* x, int64_t n, int64_t d, int64_t ld, float* out) {
  const int lane = threadIdx.x & 31;
  const int64_t i = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (i >= n) return;  // whole warps leave together
  const float* row = x + i * ld;
  double v = rh::sumsq_lane(row, d, lane);
#pragma unroll
  for (int w = 16; w >= 1; w >>= 1) v = rh::dadd_rn(v, __shfl_down_sync(kFull, v, w));
  const double inv = rh::inv_norm(__shfl_sync(kFull, v, 0));
  for (int64_t k = lane; k < d; k += 32) out[i * d + k] = rh::scaled(row[k], inv);
}

// out[i, j] = rh::dot(a_i, b_j): each output's fma chain runs k = 0..d-1 in
// order, a shared-memory tile of 16 k at a time (never past d, so the chain
// is the host model's exactly).
__global__ void __launch_bounds__(256) dot_kernel(const float* a, int64_t na, int64_t lda, const float* b, int64_t nb, int64_t ldb,
                                                  int64_t d, float* out) {
  __shared__ float as[kTileK][kTile + 4];
  __shared__ float bs[kTileK][kTile + 4];
  const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
  const int64_t i0 = int64_t(blockIdx.y) * kTile, j0 = int64_t(blockIdx.x) * kTile;
  float acc[kMicro][kMicro];
#pragma unroll
  for (int u = 0; u < kMicro; ++u)
#pragma unroll
    for (int v = 0; v < kMicro; ++v) acc[u][v] = 0.0f;
  for (int64_t k0 = 0; k0 < d; k0 += kTileK) {
    const int kn = int(d - k0 < kTileK ? d - k0 : kTileK);
    for (int e = threadIdx.x; e < kTile * kTileK; e += blockDim.x) {
      const int r = e / kTileK, kk = e % kTileK;
      const int64_t ia = i0 + r, jb = j0 + r;
      as[kk][r] = (ia < na && kk < kn) ? a[ia * lda + k0 + kk] : 0.0f;
      bs[kk][r] = (jb < nb && kk < kn) ? b[jb * ldb + k0 + kk] : 0.0f;
    }
    __syncthreads();
    for (int kk = 0; kk < kn; ++kk) {
      float av[kMicro], bv[kMicro];
#pragma unroll
      for (int u = 0; u < kMicro; ++u) av[u] = as[kk][ty * kMicro + u];
#pragma unroll
      for (int v = 0; v < kMicro; ++v) bv[v] = bs[kk][tx * kMicro + v];
#pragma unroll
      for (int u = 0; u < kMicro; ++u)
#pragma unroll
        for (int v = 0; v < kMicro; ++v) acc[u][v] = rh::fma_rn(av[u], bv[v], acc[u][v]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int u = 0; u < kMicro; ++u) {
    const int64_t i = i0 + ty * kMicro + u;
    if (i >= na) continue;
#pragma unroll
    for (int v = 0; v < kMicro; ++v) {
      const int64_t j = j0 + tx * kMicro + v;
      if (j < nb) out[i * nb + j] = acc[u][v];
    }
  }
}

// The better of two (value, index) candidates (rh::beats; index < 0: none).
__device__ void take_better(float* v, int64_t* j, float ov, int64_t oj) {
  if (oj >= 0 && rh::beats(ov, oj, *v, *j)) {
    *v = ov;
    *j = oj;
  }
}
__device__ void warp_best(float* v, int64_t* j) {
#pragma unroll
  for (int w = 16; w >= 1; w >>= 1) {
    const float ov = __shfl_down_sync(kFull, *v, w);
    const long long oj = __shfl_down_sync(kFull, static_cast<long long>(*j), w);
    take_better(v, j, ov, oj);
  }
}

// A warp per row of s [rows, cols]: the best column (a total order, so the
// lanes' split gives the host model's answer); skip_first: row 0 is (-inf, 0).
__global__ void row_argmax_kernel(const float* s, int64_t rows, int64_t cols, bool skip_first, float* best, int32_t* arg) {
  const int lane = threadIdx.x & 31;
  const int64_t i = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (i >= rows) return;
  float v = rh::neg_inf();
  int64_t a = -1;
  if (!(skip_first && i == 0)) {
    for (int64_t j = lane; j < cols; j += 32) take_better(&v, &a, s[i * cols + j], j);
  }
  warp_best(&v, &a);
  if (lane == 0) {
    if (skip_first && i == 0) a = cols > 0 ? 0 : -1;
    if (best) best[i] = v;
    arg[i] = static_cast<int32_t>(a);
  }
}


// A block per row of scores (row r at scores + r * n): the k best of
// [first, n) by rank key (k-th largest key by the radix select, digits picked
// by thread 0 with rh::pick_digit), written ascending to out + r * k.
// k <= n - first (the host clamps it).
__global__ void __launch_bounds__(kTopkThreads) topk_kernel(const float* scores, int64_t n, int64_t k, bool skip_first, int32_t* out) {
  __shared__ uint32_t hist[256];
  __shared__ unsigned long long s_prefix;
  __shared__ long long s_k;
  __shared__ int warp_sums[kTopkThreads / 32];
  const int tid = threadIdx.x;
  const float* sc = scores + int64_t(blockIdx.x) * n;
  int32_t* o = out + int64_t(blockIdx.x) * k;
  const int64_t first = skip_first ? 1 : 0, cand = n - first;
  if (k <= 0) return;
  uint64_t threshold = 0;
  if (k < cand) {
    if (tid == 0) {
      s_prefix = 0;
      s_k = k;
    }
    for (int pass = 0; pass < 8; ++pass) {
      for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
      __syncthreads();
      const uint64_t prefix = s_prefix, mask = rh::prefix_mask(pass);
      for (int64_t i = first + tid; i < n; i += blockDim.x) {
        const uint64_t key = rh::rank_key(sc[i], i);
        if ((key & mask) == prefix) atomicAdd(&hist[rh::digit_of(key, pass)], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        int64_t kl = s_k;
        const int digit = rh::pick_digit(hist, &kl);
        s_k = kl;
        s_prefix = prefix | (uint64_t(digit) << (56 - 8 * pass));
      }
      __syncthreads();
    }
    threshold = s_prefix;
  }
  int64_t base = 0;
  for (int64_t t0 = first; t0 < n; t0 += blockDim.x) {
    const int64_t i = t0 + tid;
    const bool take = i < n && rh::rank_key(sc[i], i) >= threshold;
    int total = 0;
    const int rank = block_exclusive_scan(take ? 1 : 0, warp_sums, &total);
    if (take) o[base + rank] = static_cast<int32_t>(i);
    base += total;
  }
}

// A block per (dst row q, 256 channels): B token 2q + 1 and the A rows of src
// (ascending) whose partner is q, size-weighted (rh::wavg_*). The block scans
// src 256 entries at a time, gathers that tile's members into shared memory
// in src order (a block scan), then every channel folds them in that order;
// every thread runs the size chain, thread 0 of channel block 0 writes it.
constexpr int kMergeThreads = 256;
__global__ void __launch_bounds__(kMergeThreads) tome_merge_kernel(const float* tokens, const float* sizes, int64_t dt, const int32_t* src,
                                                                   int64_t m, const int32_t* node_idx, float* out, float* out_sizes) {
  __shared__ int32_t members[kMergeThreads];
  __shared__ int warp_sums[kMergeThreads / 32];
  const int64_t q = blockIdx.x, bt = 2 * q + 1;
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  float acc, size;
  rh::wavg_start(c < dt ? tokens[bt * dt + c] : 0.0f, sizes ? sizes[bt] : 1.0f, &acc, &size);
  for (int64_t t0 = 0; t0 < m; t0 += blockDim.x) {
    const int64_t e = t0 + threadIdx.x;
    const bool mine = e < m && node_idx[src[e]] == q;
    int total = 0;
    const int rank = block_exclusive_scan(mine ? 1 : 0, warp_sums, &total);
    if (mine) members[rank] = src[e];
    __syncthreads();
    for (int u = 0; u < total; ++u) {
      const int64_t i = members[u];
      rh::wavg_add(c < dt ? tokens[2 * i * dt + c] : 0.0f, sizes ? sizes[2 * i] : 1.0f, &acc, &size);
    }
    __syncthreads();
  }
  if (c < dt) out[q * dt + c] = rh::wavg_end(acc, size);
  if (blockIdx.y == 0 && threadIdx.x == 0) out_sizes[q] = size;
}

// DivPrune step 0: a warp per token t, mind[t] = the distance to its nearest
// other token, from row t of the (symmetric) cosine matrix s [n, n] (a
// minimum: any order gives the same; n = 1: +inf; a token with a NaN or
// infinite value: NaN, ranked last).
__global__ void nearest_kernel(const float* s, int64_t n, float* mind) {
  const int lane = threadIdx.x & 31;
  const int64_t t = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  if (t >= n) return;
  float m = rh::pos_inf();
  for (int64_t i = lane; i < n; i += 32) {
    if (i != t) m = rh::dmin(m, rh::distance(s[t * n + i]));
  }
#pragma unroll
  for (int w = 16; w >= 1; w >>= 1) m = rh::dmin(m, __shfl_down_sync(kFull, m, w));
  if (lane == 0) mind[t] = rh::nearest_or_nan(m, s[t * n + t]);
}

// The best of a block's (v, j) pairs into (*v, *j) of thread 0.
__device__ void block_best(float* v, int64_t* j) {
  __shared__ float sv[32];
  __shared__ long long sj[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  warp_best(v, j);
  if (lane == 0) {
    sv[warp] = *v;
    sj[warp] = *j;
  }
  __syncthreads();
  if (warp == 0) {
    *v = lane < warps ? sv[lane] : rh::neg_inf();
    *j = lane < warps ? sj[lane] : -1;
    warp_best(v, j);
  }
}

// DivPrune step `step` over a block of tokens: the newest pick's distances
// set into mind (step 1) or folded into it (step > 1), then the block's best
// untaken token.
__global__ void __launch_bounds__(kStepThreads) divprune_step_kernel(const float* s, int64_t n, float* mind, const uint8_t* taken,
                                                                     const int32_t* picks, int64_t step, float* part_v, int64_t* part_j) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  float v = rh::neg_inf();
  int64_t j = -1;
  if (t < n) {
    float m = mind[t];
    if (step > 0) {
      const float dp = rh::distance(s[int64_t(picks[step - 1]) * n + t]);
      m = step == 1 ? dp : rh::dmin(m, dp);
      mind[t] = m;
    }
    if (!taken[t]) {
      v = m;
      j = t;
    }
  }
  block_best(&v, &j);
  if (threadIdx.x == 0) {
    part_v[blockIdx.x] = v;
    part_j[blockIdx.x] = j;
  }
}

// One block: the best of the step's block results is the pick.
__global__ void divprune_pick_kernel(const float* part_v, const int64_t* part_j, int64_t parts, int32_t* picks, int64_t step,
                                     uint8_t* taken) {
  float v = rh::neg_inf();
  int64_t j = -1;
  for (int64_t p = threadIdx.x; p < parts; p += blockDim.x) take_better(&v, &j, part_v[p], part_j[p]);
  block_best(&v, &j);
  if (threadIdx.x == 0) {
    picks[step] = static_cast<int32_t>(j);
    if (j >= 0) taken[j] = 1;
  }
}

// A block per (centroid c, 256 channels): the mean of its normalised tokens
// (float64 sum in ascending token order, rh::mean_of) and, from channel block
// 0, their count.
__global__ void centroid_means_kernel(const float* xn, int64_t n, int64_t d, const int32_t* assign, float* means, int32_t* counts) {
  const int64_t c = blockIdx.x;
  const int64_t e = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  double acc = 0.0;
  int32_t cnt = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (assign[i] != c) continue;
    ++cnt;
    if (e < d) acc = rh::dadd_rn(acc, double(xn[i * d + e]));
  }
  if (e < d) means[c * d + e] = rh::mean_of(acc, cnt);
  if (blockIdx.y == 0 && threadIdx.x == 0) counts[c] = cnt;
}

// -- host side ----------------------------------------------------------------

template <typename T>
Status upload(DeviceBuffer* buf, const std::vector<T>& host, const char* what) {
  if (host.empty()) return Status::ok();
  Status s = buf->alloc(host.size() * sizeof(T), what);
  if (!s.is_ok()) return s;
  return check(cudaMemcpy(buf->get(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), what);
}
template <typename T>
Status alloc(DeviceBuffer* buf, int64_t count, const char* what) {
  return buf->alloc(size_t(count > 0 ? count : 0) * sizeof(T), what);
}
template <typename T>
Status download(std::vector<T>* host, const DeviceBuffer& buf, int64_t count, const char* what) {
  host->assign(size_t(count > 0 ? count : 0), T());
  if (count <= 0) return Status::ok();
  return check(cudaMemcpy(host->data(), buf.get(), size_t(count) * sizeof(T), cudaMemcpyDeviceToHost), what);
}

Status normalize(const float* x, int64_t n, int64_t d, int64_t ld, float* out) {
  if (n <= 0) return Status::ok();
  normalize_kernel<<<blocks_for(n, kWarpsPerBlock), kWarpsPerBlock * 32>>>(x, n, d, ld, out);
  return launched("launch normalize_kernel");
}
Status dot(const float* a, int64_t na, int64_t lda, const float* b, int64_t nb, int64_t ldb, int64_t d, float* out) {
  if (na <= 0 || nb <= 0) return Status::ok();
  const dim3 grid(blocks_for(nb, kTile), blocks_for(na, kTile));
  dot_kernel<<<grid, 256>>>(a, na, lda, b, nb, ldb, d, out);
  return launched("launch dot_kernel");
}
Status row_argmax(const float* s, int64_t rows, int64_t cols, bool skip_first, float* best, int32_t* arg) {
  if (rows <= 0) return Status::ok();
  row_argmax_kernel<<<blocks_for(rows, kWarpsPerBlock), kWarpsPerBlock * 32>>>(s, rows, cols, skip_first, best, arg);
  return launched("launch row_argmax_kernel");
}
Status topk(const float* scores, int64_t rows, int64_t n, int64_t k, bool skip_first, int32_t* out) {
  if (rows <= 0 || k <= 0) return Status::ok();
  topk_kernel<<<static_cast<unsigned>(rows), kTopkThreads>>>(scores, n, k, skip_first, out);
  return launched("launch topk_kernel");
}

#define TP_OK(expr)                  \
  do {                               \
    ::tp::Status s_ = (expr);        \
    if (!s_.is_ok()) return s_;      \
  } while (0)

Status run_tome(VisionJob* j) {
  const int64_t n = j->n, d = j->d, dt = j->dt, na = tome_na(n), nb = tome_nb(n);
  const int64_t r = rh::tome_r(n, j->r, j->protect_first);
  DeviceBuffer x, mn, s, tok, sz, nmax, nidx, src, out, osz;
  TP_OK(upload(&x, j->x, "cudaMalloc/cudaMemcpy (metric)"));
  TP_OK(upload(&tok, j->tokens, "cudaMalloc/cudaMemcpy (tokens)"));
  TP_OK(upload(&sz, j->sizes, "cudaMalloc/cudaMemcpy (sizes)"));
  TP_OK(alloc<float>(&mn, n * d, "cudaMalloc (normalised metric)"));
  TP_OK(alloc<float>(&s, na * nb, "cudaMalloc (scores)"));
  TP_OK(alloc<float>(&nmax, na, "cudaMalloc (node_max)"));
  TP_OK(alloc<int32_t>(&nidx, na, "cudaMalloc (node_idx)"));
  TP_OK(alloc<int32_t>(&src, r, "cudaMalloc (src)"));
  TP_OK(alloc<float>(&out, nb * dt, "cudaMalloc (dst)"));
  TP_OK(alloc<float>(&osz, nb, "cudaMalloc (dst sizes)"));
  TP_OK(normalize(x.as<float>(), n, d, d, mn.as<float>()));
  TP_OK(dot(mn.as<float>(), na, 2 * d, mn.as<float>() + d, nb, 2 * d, d, s.as<float>()));
  TP_OK(row_argmax(s.as<float>(), na, nb, j->protect_first, nmax.as<float>(), nidx.as<int32_t>()));
  TP_OK(topk(nmax.as<float>(), 1, na, r, j->protect_first, src.as<int32_t>()));
  if (nb > 0) {
    const dim3 grid(static_cast<unsigned>(nb), blocks_for(dt > 0 ? dt : 1, kMergeThreads));
    tome_merge_kernel<<<grid, kMergeThreads>>>(tok.as<float>(), j->sizes.empty() ? nullptr : sz.as<float>(), dt, src.as<int32_t>(), r,
                                     nidx.as<int32_t>(), out.as<float>(), osz.as<float>());
    TP_OK(launched("launch tome_merge_kernel"));
  }
  TP_OK(download(&j->node_max, nmax, na, "cudaMemcpy (node_max)"));
  TP_OK(download(&j->node_idx, nidx, na, "cudaMemcpy (node_idx)"));
  TP_OK(download(&j->idx, src, r, "cudaMemcpy (src)"));
  TP_OK(download(&j->out, out, nb * dt, "cudaMemcpy (dst)"));
  return download(&j->out_sizes, osz, nb, "cudaMemcpy (dst sizes)");
}

Status run_divprune(VisionJob* j) {
  const int64_t n = j->n, d = j->d, k = j->k < n ? j->k : n;
  const int64_t parts = blocks_for(n, kStepThreads);
  DeviceBuffer x, xn, s, mind, taken, picks, pv, pj;
  TP_OK(upload(&x, j->x, "cudaMalloc/cudaMemcpy (tokens)"));
  TP_OK(alloc<float>(&xn, n * d, "cudaMalloc (normalised tokens)"));
  TP_OK(alloc<float>(&s, n * n, "cudaMalloc (cosine matrix)"));
  TP_OK(alloc<float>(&mind, n, "cudaMalloc (min distances)"));
  TP_OK(alloc<uint8_t>(&taken, n, "cudaMalloc (taken)"));
  TP_OK(alloc<int32_t>(&picks, k, "cudaMalloc (picks)"));
  TP_OK(alloc<float>(&pv, parts, "cudaMalloc (partials)"));
  TP_OK(alloc<int64_t>(&pj, parts, "cudaMalloc (partials)"));
  if (n > 0) TP_CUDA_TRY(cudaMemset(taken.get(), 0, size_t(n)), "cudaMemset (taken)");
  TP_OK(normalize(x.as<float>(), n, d, d, xn.as<float>()));
  TP_OK(dot(xn.as<float>(), n, d, xn.as<float>(), n, d, d, s.as<float>()));
  if (n > 0) {
    nearest_kernel<<<blocks_for(n, kWarpsPerBlock), kWarpsPerBlock * 32>>>(s.as<float>(), n, mind.as<float>());
    TP_OK(launched("launch nearest_kernel"));
  }
  for (int64_t step = 0; step < k; ++step) {
    divprune_step_kernel<<<static_cast<unsigned>(parts), kStepThreads>>>(s.as<float>(), n, mind.as<float>(), taken.as<uint8_t>(),
                                                                        picks.as<int32_t>(), step, pv.as<float>(), pj.as<int64_t>());
    TP_OK(launched("launch divprune_step_kernel"));
    divprune_pick_kernel<<<1, 256>>>(pv.as<float>(), pj.as<int64_t>(), parts, picks.as<int32_t>(), step, taken.as<uint8_t>());
    TP_OK(launched("launch divprune_pick_kernel"));
  }
  return download(&j->idx, picks, k, "cudaMemcpy (picks)");
}

Status run_kmeans(VisionJob* j) {
  const int64_t n = j->n, d = j->d, K = j->nb;
  DeviceBuffer x, c, xn, cn, s, assign, sums, counts;
  TP_OK(upload(&x, j->x, "cudaMalloc/cudaMemcpy (tokens)"));
  TP_OK(upload(&c, j->b, "cudaMalloc/cudaMemcpy (centroids)"));
  TP_OK(alloc<float>(&xn, n * d, "cudaMalloc (normalised tokens)"));
  TP_OK(alloc<float>(&cn, K * d, "cudaMalloc (normalised centroids)"));
  TP_OK(alloc<float>(&s, n * K, "cudaMalloc (cosines)"));
  TP_OK(alloc<int32_t>(&assign, n, "cudaMalloc (assignment)"));
  TP_OK(alloc<float>(&sums, K * d, "cudaMalloc (sums)"));
  TP_OK(alloc<int32_t>(&counts, K, "cudaMalloc (counts)"));
  TP_OK(normalize(x.as<float>(), n, d, d, xn.as<float>()));
  TP_OK(normalize(c.as<float>(), K, d, d, cn.as<float>()));
  TP_OK(dot(xn.as<float>(), n, d, cn.as<float>(), K, d, d, s.as<float>()));
  TP_OK(row_argmax(s.as<float>(), n, K, false, nullptr, assign.as<int32_t>()));
  if (K > 0) {
    const dim3 grid(static_cast<unsigned>(K), blocks_for(d > 0 ? d : 1, 256));
    centroid_means_kernel<<<grid, 256>>>(xn.as<float>(), n, d, assign.as<int32_t>(), sums.as<float>(), counts.as<int32_t>());
    TP_OK(launched("launch centroid_means_kernel"));
  }
  TP_OK(download(&j->idx, assign, n, "cudaMemcpy (assignment)"));
  TP_OK(download(&j->out, sums, K * d, "cudaMemcpy (sums)"));
  return download(&j->counts, counts, K, "cudaMemcpy (counts)");
}

Status run_simple(VisionJob* j) {
  DeviceBuffer x, b, an, bn, out;
  TP_OK(upload(&x, j->x, "cudaMalloc/cudaMemcpy (x)"));
  switch (j->op) {
    case VisionOp::Normalize:
      TP_OK(alloc<float>(&out, j->n * j->d, "cudaMalloc (out)"));
      TP_OK(normalize(x.as<float>(), j->n, j->d, j->d, out.as<float>()));
      return download(&j->out, out, j->n * j->d, "cudaMemcpy (out)");
    case VisionOp::Dot: {
      TP_OK(upload(&b, j->b, "cudaMalloc/cudaMemcpy (b)"));
      TP_OK(alloc<float>(&out, j->n * j->nb, "cudaMalloc (out)"));
      const float* pa = x.as<float>();
      const float* pb = b.as<float>();
      if (j->normalize) {
        TP_OK(alloc<float>(&an, j->n * j->d, "cudaMalloc (normalised a)"));
        TP_OK(alloc<float>(&bn, j->nb * j->d, "cudaMalloc (normalised b)"));
        TP_OK(normalize(pa, j->n, j->d, j->d, an.as<float>()));
        TP_OK(normalize(pb, j->nb, j->d, j->d, bn.as<float>()));
        pa = an.as<float>();
        pb = bn.as<float>();
      }
      TP_OK(dot(pa, j->n, j->d, pb, j->nb, j->d, j->d, out.as<float>()));
      return download(&j->out, out, j->n * j->nb, "cudaMemcpy (out)");
    }
    case VisionOp::TopK: {
      const int64_t k = j->k < j->n ? j->k : j->n;
      TP_OK(alloc<int32_t>(&out, j->rows * k, "cudaMalloc (indices)"));
      TP_OK(topk(x.as<float>(), j->rows, j->n, k, false, out.as<int32_t>()));
      return download(&j->idx, out, j->rows * k, "cudaMemcpy (indices)");
    }
    default: return Status::invalid("vision kernels: unknown op");
  }
}

}  // namespace

Status run_on_device(VisionJob* j) {
  cudaEvent_t start = nullptr, stop = nullptr;
  TP_CUDA_TRY(cudaEventCreate(&start), "cudaEventCreate");
  Status s = check(cudaEventCreate(&stop), "cudaEventCreate");
  if (s.is_ok()) s = check(cudaEventRecord(start), "cudaEventRecord");
  if (s.is_ok()) {
    switch (j->op) {
      case VisionOp::Tome: s = run_tome(j); break;
      case VisionOp::DivPrune: s = run_divprune(j); break;
      case VisionOp::KMeans: s = run_kmeans(j); break;
      default: s = run_simple(j); break;
    }
  }
  if (s.is_ok()) s = check(cudaEventRecord(stop), "cudaEventRecord");
  if (s.is_ok()) s = check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  float ms = 0;
  if (s.is_ok()) s = check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
  j->kernel_ms = ms;  // uploads and downloads included (they are synchronous copies)
  cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  return s;
}

}  // namespace tp::cuda
