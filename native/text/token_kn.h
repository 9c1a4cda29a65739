// Token-level Kneser-Ney: the byte model's interpolated KN with modified
// discounts (native/coding/kn_model.h) over V token ids instead of 256 bytes,
// in float64 (no fixed point: the coders never quantize these rows directly).
//
// Orders: order k predicts a token from the k tokens before it (k = 0..N-1,
// an N-gram model). For a query with L tokens of context the top order is
// min(L, N-1) and uses raw counts; orders below it use continuation counts
// (how many distinct tokens precede the n-gram):
//
//   P_k(w | h) = max(n_k(h w) - D_k(n), 0) / n_k(h) + gamma_k(h) P_{k-1}(w | h')
//   gamma_k(h) = (D1 N1(h) + D2 N2(h) + D3 N3+(h)) / n_k(h),   P_{-1}(w) = 1 / V
//
// h' drops the oldest token of h, Nr(h) counts the tokens seen r times (3+:
// at least 3) after h, D are Chen & Goodman's estimates from the
// count-of-counts of each order and kind (Y = n1 / (n1 + 2 n2),
// D_r = r - (r + 1) Y n_{r+1} / n_r, clamped to [0, r]; the byte model's
// fallbacks 0.5, 1, 1.5 when a count-of-count is 0). A context absent from
// the model, or whose counts of that kind are all 0, passes its weight down.
// Every row is then mixed with a uniform floor, P = (1 - 2^-20) P_KN + 2^-20 / V:
// with Chen & Goodman's estimates a discount can be 0 (D2, D3+ clamp at 0
// when n3 or n4 is large), and a context whose entries all carry a zero
// discount has gamma = 0, which would give unseen tokens probability 0 (the
// byte model gets the same guarantee from its +1 per byte).
// Raw counts of order k come from positions i >= k, continuation counts
// from i >= k + 1 (as in kn_model_train.cpp).
//
// The model is a flat uint32 blob plus a float64 discount table, owned by the
// caller (JS typed arrays), and every query re-validates what it reads
// (header sums, entry ranges, ids < V): a damaged blob gives an
// InvalidArgument status, never an out-of-bounds read.
//
// Blob (uint32 words):
//   [magic, N, V, 0, then for k = 0..N-1: nCtx_k, nEnt_k]
//   then for k = 0..N-1: ctx_k [nCtx_k * k] (contexts, oldest token first,
//   sorted lexicographically), begin_k [nCtx_k + 1] (entry ranges),
//   sym_k [nEnt_k] (next token, increasing within a context), raw_k [nEnt_k],
//   cont_k [nEnt_k].
// Discounts (float64): [N][2][3]: order, kind (0 raw, 1 continuation), D1 D2 D3+.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/status.h"

namespace tp::text {

constexpr int kTokenKnMaxOrder = 8;
constexpr uint32_t kTokenKnMagic = 0x4e4b4b54u;  // "TKKN"
constexpr uint32_t kTokenKnMaxVocab = 1u << 24;
constexpr double kTokenKnFloor = 1.0 / 1048576.0;  // 2^-20

// Trains an order-`order` model on tokens[0..n) (ids < vocab). Deterministic.
Status token_kn_train(const uint32_t* tokens, size_t n, uint32_t vocab, int order, std::vector<uint32_t>* blob,
                      std::vector<double>* discounts);

// out[0..vocab) = P(. | ctx[0..len)) (only the last N-1 tokens are read).
// out_len must equal the blob's V; ctx ids must be < V.
Status token_kn_next(const uint32_t* blob, size_t words, const double* discounts, size_t n_discounts, const uint32_t* ctx,
                     size_t len, double* out, size_t out_len);

}  // namespace tp::text
