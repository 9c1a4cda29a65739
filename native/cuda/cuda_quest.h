// Quest on the device KV cache (cuda_quest.cu): page summaries, page scores,
// the per-KV-head top-k and the mass bookkeeping of a sparse attend, as host
// launchers on the default stream. The arithmetic and the selection rule are
// native/sparse/quest_hd.h (TP_HD), which the CPU tests run through its host
// model. Layouts, per layer:
//   k           T [nKvHeads, cap, headDim]        (T = f16 or bf16; int caches: blocks + f16 tail)
//   lens        i32 [nKvHeads] (device)
//   lo, hi      T [nKvHeads, page_cap, headDim]   page p of head h at (h * page_cap + p) * headDim
//               (int caches: u8 codes, see QuestSummaryLaunch)
//   q           f32 [nKvHeads * rows, headDim]    the rows of KV head h: h * rows + (j * nQ + i)
//   ab          f32 [nKvHeads, E, 2, headDim]     E = 1 ('sum') or rows ('max')
//   scores      f32 [nKvHeads, page_cap]
//   indices     i32 [nKvHeads, stride]            selected rows, ascending
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "../core/status.h"
#include "../kv/kv_quant.h"

namespace tp::cuda {

// Summaries of pages [first_page, max_pages) of every head (a head's pages
// past ceil(lens[h] / P) are skipped), each recomputed from its rows.
// Float caches: lo, hi in the cache's dtype. Int caches (quant set): the
// keys dequantized as the CPU reads them (blocks, then the f16 tail), every
// completed page stored as u8 codes lo, hi [nKvHeads, page_cap, headDim] with
// affine (base, step) f32 [nKvHeads, page_cap, 2], the partial page exactly
// in open f32 [nKvHeads, 2, headDim] (lo then hi): the CPU's U8 format
// (native/sparse/quest_u8_hd.h).
struct QuestQuantKeys {
  kv::QuantLayout layout;
  const uint8_t* blocks = nullptr;
  int64_t blocks_cap = 0;
  const int32_t* n_blocks = nullptr;  // device [nKvHeads]
  const uint16_t* tail_k = nullptr;   // f16 [nKvHeads, tail_rows, headDim]
  int64_t tail_rows = 0;
};
struct QuestSummaryLaunch {
  const void* k = nullptr;
  DType dtype = DType::F16;
  int64_t n_kv_heads = 0, cap = 0, head_dim = 0;
  const int32_t* lens = nullptr;
  int64_t page_size = 16, first_page = 0, max_pages = 0;
  void* lo = nullptr;
  void* hi = nullptr;
  int64_t page_cap = 0;
  bool quant = false;  // int caches: keys from qk, the U8 format
  QuestQuantKeys qk;
  float* affine = nullptr;
  float* open = nullptr;
};
Status launch_quest_summaries(const QuestSummaryLaunch& a);

// Scores of pages [0, ceil(lens[h] / P)) of every head: the prep kernel
// (q -> ab, the CPU's bound_weights) then half a warp per page (the CPU's bits).
struct QuestScoreLaunch {
  const float* q = nullptr;
  int64_t n_kv_heads = 0, rows = 0, head_dim = 0;
  int gqa = 1;  // 0 max, 1 sum
  float* ab = nullptr;
  const void* lo = nullptr;
  const void* hi = nullptr;
  DType dtype = DType::F16;
  int64_t page_cap = 0, page_size = 16, max_pages = 0;
  const int32_t* lens = nullptr;
  float* scores = nullptr;
  bool u8 = false;  // int caches: the U8 format (affine, open as in QuestSummaryLaunch)
  const float* affine = nullptr;
  const float* open = nullptr;
};
Status launch_quest_scores(const QuestScoreLaunch& a);

// The selection of every head (one block per head): indices[h][0, m_h) with
// m_h = hd::selected_tokens (the rest of the row untouched).
struct QuestTopkLaunch {
  const float* scores = nullptr;
  int64_t page_cap = 0, n_kv_heads = 0;
  const int32_t* lens = nullptr;
  int64_t n_q = 1, budget = 0, page_size = 16, sinks = 0, recent = 1;
  int32_t* indices = nullptr;
  int64_t stride = 0;
};
Status launch_quest_topk(const QuestTopkLaunch& a);

// mass[h * mass_stride + p] += src[h * src_stride + p] for p < lens[h]
// (the key mass of a sparse attend: zero where no row attended).
Status launch_add_mass(const float* src, int64_t src_stride, float* mass, int64_t mass_stride, const int32_t* lens, int64_t heads,
                       int64_t max_len);

}  // namespace tp::cuda
