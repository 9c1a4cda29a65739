// KIVI-style quantization (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric
// 2bit Quantization for KV Cache"): keys per channel, values per token,
// asymmetric min/scale in f16, codes of 8 or 4 bits.
//
// A block holds `group` consecutive tokens of one (layer, head):
//   k_codes  [group, rowBytes]         u8; int4: byte j holds channel j (low nibble)
//                                      and channel j + rowBytes (high nibble)
//   v_codes  int8: [group, rowBytes]; int4: [headDim, ceil(group / 2)], packed
//            along tokens (token 2i in the low nibble): channel-major, so the
//            int4 kernel dots token weights with a channel's codes
//   k_scale, k_min  f16 [headDim]                      one per channel
//   v_scale, v_min  f16 [group, ceil(headDim / group)] one per token and channel group
// x = min + scale * code; code = round((x - min) / scale), clamped.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tp::kv {

struct QuantLayout {
  int64_t head_dim = 0, group = 0, bits = 0;
  int64_t row_bytes = 0;      // code bytes of one token row (keys; int8 values)
  int64_t v_col_bytes = 0;    // int4 values: code bytes of one channel (group tokens)
  int64_t v_groups = 0;       // channel groups of one value row
  int64_t k_codes = 0, v_codes = 0, k_scale = 0, k_min = 0, v_scale = 0, v_min = 0;  // byte offsets
  int64_t block_bytes = 0;
};

QuantLayout make_quant_layout(int64_t head_dim, int64_t group, int64_t bits);

// Value code of token t, channel c of a block.
inline uint8_t v_code(const QuantLayout& L, const uint8_t* block, int64_t t, int64_t c) {
  if (L.bits == 8) return block[L.v_codes + t * L.row_bytes + c];
  const uint8_t b = block[L.v_codes + c * L.v_col_bytes + t / 2];
  return (t & 1) == 0 ? (b & 0x0f) : (b >> 4);
}

// Quantizes `group` token rows k, v (f32 [group, headDim]) into one block.
void quantize_block(const QuantLayout& L, const float* k, const float* v, uint8_t* block);

// Dequantizes rows [r0, r0 + n) of a block to f32 [n, headDim] (k or v may be null).
void dequantize_rows(const QuantLayout& L, const uint8_t* block, int64_t r0, int64_t n, float* k, float* v);

}  // namespace tp::kv
