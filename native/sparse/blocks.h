// Block retrieval: an inference-only form of Landmark Attention (Mohtashami
// and Jaggi 2023, "Landmark Attention: Random-Access Infinite Context Length
// for Transformers"; code: github.com/epfml/landmark-attention,
// llama/llama_mem.py for the cached inference path).
//
// The paper trains a landmark token per block of 50 tokens (a grouped
// softmax makes its key stand for the block) and retrieves the top-k blocks
// per head by q . k_landmark. Without training there is no landmark key, so
// each block of B consecutive tokens of one KV head is represented by two
// things kept beside the cache:
//   mean[c]          the mean of the block's keys (a landmark-like centroid)
//   lo[c], hi[c]     Quest's element-wise min and max (quest.h)
// and a query row q scores the block by
//   score_row = mix * bound + (1 - mix) * (q . mean),
//   bound     = sum_c max(q[c] * hi[c], q[c] * lo[c])
// Both terms bracket the block's log-mean-exp of its logits (up to the
// scale): q . mean <= log((1/B) sum_j exp(q . k_j)) <= max_j q . k_j <= bound
// (Jensen below, the bound above), so the default mix 0.5 is the midpoint of
// that interval: the mean keeps diffuse blocks ranked by their average, the
// bound keeps a block holding one sharp key from being averaged away.
// The rows (the KV head's group of query heads x query rows) combine by sum
// (default) or max, as Quest's gqa. The top max(1, floor(budget / B)) blocks
// are attended exactly (softmax over their tokens only, original positions:
// no re-positioning), the sink block(s) and the local window always in.
//
// What differs from the paper (docs/sparse.md): no trained landmark tokens
// and no grouped softmax (one ordinary softmax over the retrieved tokens);
// blocks of the RoPE'd cache, attended at their original positions (the
// paper stores un-rotated keys and re-positions the retrieved blocks); one
// block set per KV head for the whole group and every query row (the paper
// selects per head and per query, the offload mode per chunk); the sink
// block and a local window are forced (the paper has the current block only).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/dtype.h"
#include "../core/status.h"
#include "quest.h"

namespace tp::sparse {

struct BlockOptions {
  int64_t budget = 0;
  int64_t block_size = 64;  // B
  int64_t sinks = 1;        // the blocks holding the first `sinks` tokens (default: block 0)
  int64_t recent = 64;      // the blocks holding the newest max(recent, nQ, 1) tokens (the local window)
  GqaCombine gqa = GqaCombine::Sum;
  float mix = 0.5f;         // weight of the bound; 1 - mix of the mean key's score
};

Status check_block_options(const BlockOptions& o, const char* prefix);

// The page-selection options with the same budget, sizes and forced blocks.
inline QuestOptions block_pages(const BlockOptions& o) {
  QuestOptions q;
  q.budget = o.budget;
  q.page_size = o.block_size;
  q.sinks = o.sinks;
  q.recent = o.recent;
  q.gqa = o.gqa;
  return q;
}

// Scores of every block of a summary kept with sums (PageSummary::with_sums).
// `buf` is scratch of at least 3 * d floats.
void score_blocks(const PageSummary& s, SummaryFormat f, int64_t d, int64_t block_size, const float* const* q, int64_t rows,
                  GqaCombine gqa, float mix, float* scores, float* buf);

// One row's block score from f32 lo, hi and mean rows.
float block_row_score(const float* q, const float* lo, const float* hi, const float* mean, int64_t d, float mix);

// Stateless summaries of k [nKvHeads, nKv, headDim] (f32 | f16 | bf16,
// strided rows): lo, hi [nKvHeads, blocks, headDim] in k's dtype (exact),
// mean f32 [nKvHeads, blocks, headDim] (f32 sum in row order / rows).
struct BlockSummarizeParams {
  int64_t n_kv_heads = 0, n_kv = 0, head_dim = 0, block_size = 64;
  const void* k = nullptr;
  DType dtype = DType::F32;
  int64_t k_head_stride = 0, k_row_stride = 0, k_len = 0;
  void* lo = nullptr;
  void* hi = nullptr;
  float* mean = nullptr;
  int64_t out_len = 0;  // elements of lo, hi and mean each
};
Status block_summarize(const BlockSummarizeParams& p);

// Stateless selection: q f32 [nHeads, nQ, headDim] (strided), the summaries
// above of nKv tokens; writes indices [nKvHeads, nSel] (the same count for
// every head).
struct BlockSelectParams {
  int64_t n_heads = 0, n_kv_heads = 0, n_q = 0, head_dim = 0, n_kv = 0;
  const float* q = nullptr;
  int64_t q_head_stride = 0, q_row_stride = 0, q_len = 0;
  const void* lo = nullptr;
  const void* hi = nullptr;
  DType dtype = DType::F32;
  const float* mean = nullptr;
  int64_t sum_len = 0;  // elements of lo, hi and mean each
  BlockOptions opts;
  int32_t* indices = nullptr;
  int64_t indices_len = 0;
};
Status block_select(const BlockSelectParams& p, int64_t* n_sel_out);

}  // namespace tp::sparse
