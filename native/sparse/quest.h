// Quest: query-aware page selection for sparse decoding (Tang et al. 2024,
// "Quest: Query-Aware Sparsity for Efficient Long-Context LLM Inference";
// code: github.com/mit-han-lab/Quest).
//
// Read in the official code: evaluation/quest_attention.py (the PyTorch
// simulation: per chunk of `chunk_size` keys the element-wise max of
// sign(q) * k, scored against |q|, top max(3, budget / chunk) chunks),
// quest/utils/controller.py (the kernel path: `page_budget` counts the last,
// partially filled page, which is always attended; top-k runs over the
// other pages only), quest/ops/csrc/estimate.cu and page.cu (per page
// element-wise min and max of the keys, kept in a metadata cache beside the
// KV pages). Page size 16 in every script.
//
// Per page of P consecutive tokens of one KV head:
//   lo[c] = min over the page's keys of k[c], hi[c] = max of k[c]
// A query q's score of the page is the upper bound of q . k over its keys:
//   bound(page) = sum_c max(q[c] * hi[c], q[c] * lo[c])
// The pages with the highest bounds are attended exactly (softmax over
// their tokens only).
//
// What differs from the paper's code (docs/sparse.md):
// - GQA: one page set per KV head, from its group's query heads (and query
//   rows), their bounds combined by max or sum (the official code repeats
//   the KV heads and selects per query head, so a KV row may be read by
//   several heads' page sets).
// - budget -> pages: max(1, floor(budget / P)) pages including the current
//   one (the kernel path; the simulation's floor of 3 pages is not kept).
// - Sinks and a recent window (whole pages) can be forced in; the current
//   page (the newest token's) always is.
// - Ties in the bound: the lower page index wins (deterministic).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/dtype.h"
#include "../core/status.h"
#include "../kv/kv_grow.h"

namespace tp::sparse {

enum class GqaCombine : int { Max = 0, Sum = 1 };

struct QuestOptions {
  int64_t budget = 0;      // tokens (>= 1): floor(budget / P) pages, at least 1
  int64_t page_size = 16;  // P
  int64_t sinks = 0;       // the pages holding the first `sinks` tokens are always attended
  int64_t recent = 1;      // the pages holding the newest max(recent, 1) tokens are always attended
  GqaCombine gqa = GqaCombine::Sum;  // measured better than Max (docs/sparse.md)
};

// Checks budget, page size, sinks, recent and gqa; messages name the option.
Status check_quest_options(const QuestOptions& o, const char* prefix);

inline int64_t page_count(int64_t n, int64_t page_size) { return (n + page_size - 1) / page_size; }

// The pages to attend for one KV head of n tokens: the forced pages (sinks,
// recent window, the newest `n_q` tokens' pages), then the best others by
// `scores` [pages] (higher first, lower index on ties; NaN counts as -inf)
// up to max(1, floor(budget / P)) pages in all. `pages` gets them ascending.
// All pages when there are no more than the page budget.
void select_pages(const float* scores, int64_t n, int64_t n_q, const QuestOptions& o, std::vector<int64_t>& pages,
                  std::vector<int64_t>& scratch);

// Token indices of the pages (ascending), appended to `out`.
void pages_to_tokens(const std::vector<int64_t>& pages, int64_t n, int64_t page_size, std::vector<int32_t>& out);

// Element-wise min / max of n f32 rows [n, d] folded into lo, hi (init:
// start from the first row).
void fold_rows(const float* rows, int64_t n, int64_t d, float* lo, float* hi, bool init);
// fold_rows over n rows of dtype t (f32 | f16 | bf16), decoded exactly,
// row r at element r * stride.
void fold_stored_rows(const void* rows, DType t, int64_t n, int64_t d, int64_t stride, float* lo, float* hi, bool init);
// f32 bounds to f16, rounding to nearest even (f32_to_f16).
void bounds_to_f16(const float* x, int64_t d, uint16_t* out);

// Page summaries of one KV head in a compact storage format (the KV cache
// keeps one per (layer, head) once a sparse attend asked for them):
//   F32 / F16 / BF16: lo, hi rows in the cache's row dtype (exact: the min
//     and max of stored values are stored values): 2 rows per P keys.
//   U8: int8 / int4 caches: per page one f32 base and step, and u8 codes
//     rounded outwards (lo down, hi up), so the decoded bounds still bound
//     the dequantized keys: 2 * headDim + 8 bytes per page.
// Completed pages are stored; the newest, partial page is kept exactly in
// f32 (open_lo, open_hi) and stored once it fills.
enum class SummaryFormat : int { F32 = 0, F16 = 1, BF16 = 2, U8 = 3 };

// Summary storage grows 2 rows a page, a page at a time: populated page
// mappings from 64 KiB (kv_grow.h), so an append never pays the first-touch
// fault of a fresh 4 KiB page (about 10 us each in these VMs: it made the
// upkeep of a 512-token append cost more than the append).
template <typename T>
using SummaryVec = std::vector<T, kv::PageAlloc<T, size_t{64} << 10>>;

struct PageSummary {
  int64_t rows = 0;  // keys folded in (a prefix of the head's rows)
  int64_t stored = 0;  // completed pages in lo / hi
  SummaryVec<uint8_t> lo, hi;  // [capacity pages, d] of the format's element
  std::vector<float> affine;    // U8: [capacity pages, 2] (base, step)
  std::vector<float> open_lo, open_hi;  // [d]: the partial page (rows % P != 0)
  // Block retrieval (blocks.h) also keeps each page's f32 key sum (its mean
  // key times its row count), summed in row order: [capacity pages, d], and
  // the partial page's in open_sum. Off for Quest-only layers.
  bool with_sums = false;
  SummaryVec<float> sums;
  std::vector<float> open_sum;
};

size_t summary_elem_bytes(SummaryFormat f);

// Drops the rows past `keep` (a rows prefix stays valid; the page holding
// row `keep` is refolded from its start). Cannot fail.
void summary_truncate(PageSummary& s, int64_t keep, int64_t page_size);

// Folds rows [s.rows, n) read by `read(first, count, float* out [count, d])`
// (count <= P). Capacity grows to at least `capacity_rows` / P pages
// (sized like the key storage, so summaries stay 2 / P of it). On failure
// (allocation) the summary is left empty (rows 0) and an error returned.
template <typename Read>
Status summary_sync(PageSummary& s, SummaryFormat f, int64_t page_size, int64_t d, int64_t n, int64_t capacity_rows, Read&& read);
// The same with the rows folded by the caller, fold(first, count, init)
// into s.open_lo / s.open_hi (no sums): a float cache folds its stored rows
// in place, without decoding them into a buffer first.
template <typename Fold>
Status summary_sync_fold(PageSummary& s, SummaryFormat f, int64_t page_size, int64_t d, int64_t n, int64_t capacity_rows,
                         Fold&& fold);

// Page p's bounds as f32 rows (stored pages are decoded into lo, hi; the
// open page is returned in place). Returns the two row pointers.
void summary_page(const PageSummary& s, SummaryFormat f, int64_t d, int64_t p, float* lo_buf, float* hi_buf, const float** lo,
                  const float** hi);

// Stores a completed page from exact f32 rows (U8: outward rounding).
void summary_store_page(PageSummary& s, SummaryFormat f, int64_t d, int64_t p, const float* lo, const float* hi);

// Bytes the summary holds (capacity).
int64_t summary_bytes(const PageSummary& s);

// Scores of every page of a summary for the weight pairs ab [pairs, 2, d]
// (quest_score.h: bound_weights of the group's query rows). `buf` is
// scratch of at least 2 * d floats.
void score_summary(const PageSummary& s, SummaryFormat f, int64_t d, int64_t page_size, const float* ab, int64_t pairs, float* scores,
                   float* buf);

// Stateless form: summaries of k [nKvHeads, nKv, headDim] (f32 | f16 |
// bf16, strided rows) written as lo, hi [nKvHeads, pages, headDim] of the
// same dtype (exact).
struct SummarizeParams {
  int64_t n_kv_heads = 0, n_kv = 0, head_dim = 0, page_size = 16;
  const void* k = nullptr;
  DType dtype = DType::F32;
  int64_t k_head_stride = 0, k_row_stride = 0, k_len = 0;
  void* lo = nullptr;
  void* hi = nullptr;
  int64_t out_len = 0;  // elements of lo and of hi
};
Status summarize(const SummarizeParams& p);

// Stateless selection: q f32 [nHeads, nQ, headDim] (strided), summaries lo,
// hi [nKvHeads, pages, headDim] (dtype, contiguous) of nKv tokens; writes
// indices [nKvHeads, nSel] (every head selects the same count: n_sel_out).
struct SelectParams {
  int64_t n_heads = 0, n_kv_heads = 0, n_q = 0, head_dim = 0, n_kv = 0;
  const float* q = nullptr;
  int64_t q_head_stride = 0, q_row_stride = 0, q_len = 0;
  const void* lo = nullptr;
  const void* hi = nullptr;
  DType dtype = DType::F32;
  int64_t sum_len = 0;  // elements of lo and of hi
  QuestOptions opts;
  int32_t* indices = nullptr;
  int64_t indices_len = 0;  // room: at least nKvHeads * selected_count(...)
};
// Tokens one head selects (the same for every head of the stateless form).
int64_t selected_count(int64_t n_kv, int64_t n_q, const QuestOptions& o);
Status select(const SelectParams& p, int64_t* n_sel_out);

}  // namespace tp::sparse

#include "quest_sync.inl"
