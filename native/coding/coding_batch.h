// Batch entry points: many independent documents (or windows) at once,
// spread over the thread pool. Each item's result depends only on its own
// input and the model, never on the thread count or the schedule.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/status.h"
#include "byte_model.h"

namespace tp::coding {

struct ByteSpan {
  const uint8_t* data;
  size_t size;
};

// Tokens are t-bit groups (8 <= t <= 32) of the packed window bits, most
// significant first; the last token is zero-padded.
struct TokenStream {
  std::vector<uint32_t> tokens;
  size_t windows = 0;
};

Status equal_info_encode_batch(const ByteModel& model, const std::vector<ByteSpan>& docs, int window_bits,
                               int token_bits, std::vector<TokenStream>* out);

// Tokens from packed window bits (nbits of them): t-bit groups, most
// significant first, the last one zero-padded.
void bits_to_tokens(const std::vector<uint8_t>& bytes, size_t nbits, int token_bits, std::vector<uint32_t>* tokens);

// The packed window bits of a token list, after checking it: every token
// < 2^t, the count is exactly what whole windows need, and the padding is
// zero. *windows receives the window count.
Status tokens_to_bits(const uint32_t* tokens, size_t n, int window_bits, int token_bits, std::vector<uint8_t>* bits,
                      size_t* windows);

// Decodes every window of every stream in parallel. max_bytes bounds each
// document's output (InvalidArgument beyond it).
Status equal_info_decode_batch(const ByteModel& model, const std::vector<std::vector<uint8_t>>& bits,
                               const std::vector<size_t>& windows, int window_bits, size_t max_bytes,
                               std::vector<std::vector<uint8_t>>* out);

Status static_encode_batch(const ByteModel& model, const std::vector<ByteSpan>& docs,
                           std::vector<std::vector<uint8_t>>* out);
Status static_decode_batch(const ByteModel& model, const std::vector<ByteSpan>& payloads,
                           const std::vector<size_t>& lengths, std::vector<std::vector<uint8_t>>* out);

}  // namespace tp::coding
