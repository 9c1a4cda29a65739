// Top-k token ids of each row of a logits matrix f32 [rows, vocab].
// Order: larger logit first, ties to the lower token id. NaN and -Infinity
// are never chosen (a -Infinity logit is a token the target can never emit;
// NaN is no information), so a row with fewer than k other entries is padded
// with -1. Rows run on the thread pool when the matrix is large.
#pragma once
#include <cstdint>

namespace tp::spec {

constexpr int kMaxTopK = 64;

// out: int32 [rows, k], k in [1, kMaxTopK].
void top_k_rows(const float* logits, int64_t rows, int64_t vocab, int k, int32_t* out);

}  // namespace tp::spec
