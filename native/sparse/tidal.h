// TidalDecode: position-persistent sparse attention (Yang et al. 2024,
// "TidalDecode: Fast and Accurate LLM Decoding with Position Persistent
// Sparse Attention", arXiv 2410.05076; code: github.com/DerrickYLJ/TidalDecode).
//
// Read in the official code: src/tidal_build/modify_llama.py
// (llama_tidal_attention_forward, enable_llama_tidal_attention). In one
// decode step, layers < sparse_layer_start (2) attend fully; the layer
// sparse_layer_start and the correction layer (13 of 32 in enable_tidal and
// the LongBench scripts; 9 in the HF forward's default) attend fully and
// keep, per query head, the top_k positions of the pre-softmax scores
// q . k / sqrt(D) (torch.topk over attn_weights, causal mask added) as a
// mask; every other layer attends only to the masked-in positions of the
// latest selection. Prefill is dense. GQA: the official code repeats the KV
// heads (repeat_kv) and selects per query head.
//
// Here (docs/sparse.md):
// - The top-k comes out of the selection layer's own full-attention pass:
//   the attention kernel's key mass, i.e. the softmax probabilities of each
//   key summed over the KV head's group of query heads and its query rows.
//   One position set per KV head (each KV row read once by the group). For a
//   group of one query head and one query row this is the official per-head
//   top-k (softmax is monotonic), up to probabilities that round to the same
//   f32 value (then the lower index wins).
// - Sinks and a recent window (tokens) can be forced in; the current token
//   (the newest max(recent, nQ) tokens, recent >= 1 by default) always is,
//   as in the kernel path (top budget - 1 plus the last token).
// - Ties: higher weight first, the lower token index on ties; NaN ranks last.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/status.h"
#include "quest.h"

namespace tp::sparse {

struct TokenSelectOptions {
  int64_t budget = 0;  // tokens per KV head, forced ones included
  int64_t sinks = 0;   // the first `sinks` tokens are always selected
  int64_t recent = 1;  // the newest max(recent, nQ, 1) tokens are always selected
};

Status check_token_options(const TokenSelectOptions& o, const char* prefix);

// Tokens one head of n tokens selects: n when n <= budget, else
// max(budget, forced).
int64_t token_selected_count(int64_t n, int64_t n_q, const TokenSelectOptions& o);

// The forced tokens, then the best others by `weights` [n] (higher first,
// lower index on ties, NaN last) up to the budget; `out` gets them ascending.
void select_tokens(const float* weights, int64_t n, int64_t n_q, const TokenSelectOptions& o, std::vector<int32_t>& out,
                   std::vector<int32_t>& scratch);

// Stateless selection from the weights a full pass returned: w f32
// [nKvHeads, rows, nKv] (rows = the group's query heads x query rows, e.g.
// probabilities [nHeads, nQ, nKv] viewed per KV head, or attention()'s
// keyMass [nKvHeads, nKv] with rows 1), combined over the rows by `gqa`
// (sum or max); writes indices [nKvHeads, count] ascending.
struct TidalSelectParams {
  int64_t n_kv_heads = 0, rows = 0, n_kv = 0, n_q = 1;
  const float* w = nullptr;
  int64_t w_len = 0;
  TokenSelectOptions opts;
  GqaCombine gqa = GqaCombine::Sum;
  int32_t* indices = nullptr;
  int64_t indices_len = 0;
};
Status tidal_select(const TidalSelectParams& p, int64_t* n_sel_out);

}  // namespace tp::sparse
