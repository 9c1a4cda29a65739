// Quest kernels of the device KV cache (cuda_quest.h). Every float operation
// and the selection rule come from native/sparse/quest_hd.h (TP_HD), which the
// host tests (test/unit/sparse-quest-device.test.ts) check against the CPU
// Quest bit for bit.
#include <cuda_runtime.h>

#include "../kv/kv_quant_block.h"
#include "../sparse/quest_hd.h"
#include "../sparse/quest_u8_hd.h"
#include "cuda_block_scan.cuh"
#include "cuda_check.cuh"
#include "cuda_kv_common.cuh"
#include "cuda_quest.h"

namespace tp::cuda {
namespace {

using namespace kvk;
namespace qh = sparse::hd;

constexpr int kScorePages = 8;     // pages per block of the score kernel (one per half warp)
constexpr int kTopkThreads = 512;  // threads of the per-head top-k block

__host__ __device__ int dtype_code(DType t) { return t == DType::F32 ? 0 : t == DType::F16 ? 1 : 2; }

// One block per (page, head); thread c folds channel c over the page's rows.
template <typename T>
__global__ void quest_summary_kernel(QuestSummaryLaunch a) {
  const int h = blockIdx.y;
  const int64_t pg = a.first_page + blockIdx.x;
  const int64_t n = a.lens[h], P = a.page_size, d = a.head_dim;
  const int64_t r0 = pg * P;
  if (r0 >= n) return;
  const int64_t r1 = min(n, r0 + P);
  const T* k = static_cast<const T*>(a.k) + int64_t(h) * a.cap * d;
  T* lo = static_cast<T*>(a.lo) + (int64_t(h) * a.page_cap + pg) * d;
  T* hi = static_cast<T*>(a.hi) + (int64_t(h) * a.page_cap + pg) * d;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    float l = 0.0f, u = 0.0f;
    for (int64_t r = r0; r < r1; ++r) qh::fold(to_f32(k[r * d + c]), &l, &u, r == r0);
    from_f32(l, lo + c);  // exact: l and u are stored values
    from_f32(u, hi + c);
  }
}

// Int caches: one block per (page, head); the page's keys dequantized as the
// CPU reads them (kv::dequant_k for rows in blocks, the f16 tail after),
// folded per channel; a completed page stored in the U8 format (base = the
// smallest lo, top = the largest hi, in channel order as the CPU; hd::u8_step
// and hd::u8_codes), a partial page exactly into open.
constexpr int kMaxHeadDim = 256;
__global__ void quest_summary_u8_kernel(QuestSummaryLaunch a) {
  __shared__ float s_lo[kMaxHeadDim], s_hi[kMaxHeadDim];
  __shared__ float s_base, s_step;
  const int h = blockIdx.y;
  const int64_t pg = a.first_page + blockIdx.x;
  const int64_t n = a.lens[h], P = a.page_size, d = a.head_dim;
  const int64_t r0 = pg * P;
  if (r0 >= n) return;  // the whole block leaves: no barrier is skipped by part of it
  const int64_t r1 = min(n, r0 + P);
  const QuestQuantKeys& q = a.qk;
  const int64_t g = q.layout.group, in_blocks = int64_t(q.n_blocks[h]) * g;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
    float l = 0.0f, u = 0.0f;
    for (int64_t r = r0; r < r1; ++r) {
      float x;
      if (r < in_blocks) {
        x = kv::dequant_k(q.layout, q.blocks + (int64_t(h) * q.blocks_cap + r / g) * q.layout.block_bytes, r % g, c);
      } else {
        x = f16_to_f32(q.tail_k[(int64_t(h) * q.tail_rows + r - in_blocks) * d + c]);
      }
      qh::fold(x, &l, &u, r == r0);
    }
    s_lo[c] = l;
    s_hi[c] = u;
  }
  __syncthreads();
  if (r1 - r0 < P) {  // the open page: exact
    float* open = a.open + int64_t(h) * 2 * d;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
      open[c] = s_lo[c];
      open[d + c] = s_hi[c];
    }
    return;
  }
  if (threadIdx.x == 0) {
    float base = s_lo[0], top = s_hi[0];
    for (int64_t c = 1; c < d; ++c) {
      base = s_lo[c] < base ? s_lo[c] : base;  // std::min / std::max in channel order (-0 and +0 as the CPU)
      top = top < s_hi[c] ? s_hi[c] : top;
    }
    s_base = base;
    s_step = qh::u8_step(base, top);
    float* aff = a.affine + (int64_t(h) * a.page_cap + pg) * 2;
    aff[0] = base;
    aff[1] = s_step;
  }
  __syncthreads();
  uint8_t* lo = static_cast<uint8_t*>(a.lo) + (int64_t(h) * a.page_cap + pg) * d;
  uint8_t* hi = static_cast<uint8_t*>(a.hi) + (int64_t(h) * a.page_cap + pg) * d;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) qh::u8_codes(s_lo[c], s_hi[c], s_base, s_step, lo + c, hi + c);
}

// ab of every head (hd::weights_channel, the CPU's bound_weights): a thread per channel.
__global__ void quest_prep_kernel(QuestScoreLaunch a) {
  const int h = blockIdx.x;
  const int64_t d = a.head_dim, R = a.rows;
  const qh::QueryRows q{a.q + int64_t(h) * R * d, d};
  float* ab = a.ab + int64_t(h) * qh::effective_rows(R, a.gqa) * 2 * d;
  for (int64_t c = threadIdx.x; c < d; c += blockDim.x) qh::weights_channel(q, R, d, a.gqa, c, ab);
}

// One page's score by a half warp (lane = 0..15 of it, mask = its lanes).
template <typename Load>
__device__ float half_warp_score(const Load& lo, const Load& hi, const float* ab, int64_t pairs, int64_t d, int lane, unsigned mask) {
  float best = 0.0f;
  for (int64_t k = 0; k < pairs; ++k) {
    float v = qh::lane_partial(lo, hi, ab + k * 2 * d, d, lane);
#pragma unroll
    for (int w = qh::kLanes / 2; w >= 1; w >>= 1) v = add_rn(v, __shfl_down_sync(mask, v, w, qh::kLanes));
    best = qh::combine(best, v, k);
  }
  return best;
}

// Half a warp per page: lane j of the 16 is the canonical lane j
// (hd::lane_partial), the shuffles are hd::reduce_lanes' additions
// (l[j] + l[j + 8], then + l[j + 4], ...), pairs combined in order: the CPU's
// scores bit for bit.
__global__ void quest_score_kernel(QuestScoreLaunch a) {
  const int h = blockIdx.y, lane = threadIdx.x & (qh::kLanes - 1);
  const int64_t pg = int64_t(blockIdx.x) * kScorePages + (threadIdx.x >> 4);
  const int64_t n = a.lens[h], d = a.head_dim;
  // Whole half warps leave together, so the 16-wide shuffles below stay full.
  if (pg >= (n + a.page_size - 1) / a.page_size) return;
  const int64_t pairs = qh::effective_rows(a.rows, a.gqa);
  const float* ab = a.ab + int64_t(h) * pairs * 2 * d;
  const unsigned mask = 0xffffu << (threadIdx.x & 16);
  const int64_t page = int64_t(h) * a.page_cap + pg;
  float best;
  if (!a.u8) {
    const size_t row = size_t(page * d) * (a.dtype == DType::F32 ? 4 : 2);
    const int code = dtype_code(a.dtype);
    best = half_warp_score(qh::RowLoad{static_cast<const uint8_t*>(a.lo) + row, code}, qh::RowLoad{static_cast<const uint8_t*>(a.hi) + row, code},
                           ab, pairs, d, lane, mask);
  } else if ((pg + 1) * a.page_size <= n) {  // a completed page: u8 codes
    const float base = a.affine[page * 2], step = a.affine[page * 2 + 1];
    best = half_warp_score(qh::U8Load{static_cast<const uint8_t*>(a.lo) + page * d, base, step},
                           qh::U8Load{static_cast<const uint8_t*>(a.hi) + page * d, base, step}, ab, pairs, d, lane, mask);
  } else {  // the open page: exact f32
    const float* open = a.open + int64_t(h) * 2 * d;
    best = half_warp_score(qh::RowLoad{open, 0}, qh::RowLoad{open + d, 0}, ab, pairs, d, lane, mask);
  }
  if (lane == 0) a.scores[page] = best;
}


// One block per head (hd::model_select): the radix select of the k-th best
// candidate key (histograms in shared memory, the digit picked by thread 0),
// then the selected pages' tokens in page order.
__global__ void __launch_bounds__(kTopkThreads) quest_topk_kernel(QuestTopkLaunch a) {
  __shared__ uint32_t hist[256];
  __shared__ unsigned long long s_prefix;
  __shared__ long long s_k;
  __shared__ int warp_sums[kTopkThreads / 32];
  const int h = blockIdx.x, tid = threadIdx.x;
  const int64_t n = a.lens[h], P = a.page_size;
  const qh::PagePlan p = qh::plan_pages(n, a.n_q, a.budget, P, a.sinks, a.recent);
  const float* sc = a.scores + int64_t(h) * a.page_cap;
  const int64_t mid_begin = qh::imin(p.sink_end, p.recent_begin);
  uint64_t threshold = ~uint64_t(0);
  if (!p.all && p.k > 0) {
    if (tid == 0) {
      s_prefix = 0;
      s_k = p.k;
    }
    for (int pass = 0; pass < 8; ++pass) {
      for (int i = tid; i < 256; i += blockDim.x) hist[i] = 0;
      __syncthreads();
      const uint64_t prefix = s_prefix, mask = qh::prefix_mask(pass);
      for (int64_t pg = mid_begin + tid; pg < p.recent_begin; pg += blockDim.x) {
        const uint64_t key = qh::rank_key(sc[pg], pg);
        if ((key & mask) == prefix) atomicAdd(&hist[qh::digit_of(key, pass)], 1u);
      }
      __syncthreads();
      if (tid == 0) {
        int64_t k = s_k;
        const int digit = qh::pick_digit(hist, &k);
        s_k = k;
        s_prefix = prefix | (uint64_t(digit) << (56 - 8 * pass));
      }
      __syncthreads();
    }
    threshold = s_prefix;
  }
  int32_t* out = a.indices + int64_t(h) * a.stride;
  int64_t base = 0;  // selected pages before this tile (every one but the last is full)
  for (int64_t t0 = 0; t0 < p.pages; t0 += blockDim.x) {
    const int64_t pg = t0 + tid;
    const bool take = pg < p.pages && (qh::forced_page(p, pg) || (pg >= mid_begin && pg < p.recent_begin && qh::rank_key(sc[pg], pg) >= threshold));
    int total = 0;
    const int rank = block_exclusive_scan(take ? 1 : 0, warp_sums, &total);
    if (take) {
      const int64_t first = pg * P, end = qh::imin(n, first + P), at = (base + rank) * P;
      for (int64_t t = first; t < end; ++t) out[at + t - first] = static_cast<int32_t>(t);
    }
    base += total;
  }
}

__global__ void add_mass_kernel(const float* src, int64_t src_stride, float* mass, int64_t mass_stride, const int32_t* lens) {
  const int h = blockIdx.y;
  const int64_t p = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (p >= lens[h]) return;
  mass[int64_t(h) * mass_stride + p] += src[int64_t(h) * src_stride + p];
}

}  // namespace

Status launch_quest_summaries(const QuestSummaryLaunch& a) {
  if (a.max_pages <= a.first_page || a.n_kv_heads == 0) return Status::ok();
  const dim3 grid(static_cast<unsigned>(a.max_pages - a.first_page), static_cast<unsigned>(a.n_kv_heads));
  const unsigned threads = static_cast<unsigned>(a.head_dim < kThreads ? a.head_dim : kThreads);
  if (a.quant) {
    if (a.head_dim > kMaxHeadDim) return Status::invalid("quest summaries: expected headDim <= 256");
    quest_summary_u8_kernel<<<grid, threads>>>(a);
    return launched("launch quest_summary_u8_kernel");
  }
  switch (a.dtype) {
    case DType::F16: quest_summary_kernel<__half><<<grid, threads>>>(a); break;
    case DType::BF16: quest_summary_kernel<__nv_bfloat16><<<grid, threads>>>(a); break;
    default: return Status::invalid("quest summaries: expected f16 or bf16 keys");
  }
  return launched("launch quest_summary_kernel");
}

Status launch_quest_scores(const QuestScoreLaunch& a) {
  if (a.max_pages <= 0 || a.n_kv_heads == 0) return Status::ok();
  if (!a.u8 && a.dtype != DType::F16 && a.dtype != DType::BF16) return Status::invalid("quest scores: expected f16, bf16 or u8 summaries");
  const unsigned threads = static_cast<unsigned>(a.head_dim < kThreads ? a.head_dim : kThreads);
  quest_prep_kernel<<<static_cast<unsigned>(a.n_kv_heads), threads>>>(a);
  Status s = launched("launch quest_prep_kernel");
  if (!s.is_ok()) return s;
  const dim3 grid(static_cast<unsigned>((a.max_pages + kScorePages - 1) / kScorePages), static_cast<unsigned>(a.n_kv_heads));
  quest_score_kernel<<<grid, kScorePages * qh::kLanes>>>(a);
  return launched("launch quest_score_kernel");
}

Status launch_quest_topk(const QuestTopkLaunch& a) {
  if (a.n_kv_heads == 0) return Status::ok();
  quest_topk_kernel<<<static_cast<unsigned>(a.n_kv_heads), kTopkThreads>>>(a);
  return launched("launch quest_topk_kernel");
}

Status launch_add_mass(const float* src, int64_t src_stride, float* mass, int64_t mass_stride, const int32_t* lens, int64_t heads,
                       int64_t max_len) {
  if (heads == 0 || max_len == 0) return Status::ok();
  add_mass_kernel<<<head_grid(max_len, heads), kThreads>>>(src, src_stride, mass, mass_stride, lens);
  return launched("launch add_mass_kernel");
}

}  // namespace tp::cuda
