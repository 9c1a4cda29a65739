// KIVI-style quantization (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric
// 2bit Quantization for KV Cache"): keys per channel, values per token,
// asymmetric min/scale in f16, codes of 8 or 4 bits.
//
// A block holds `group` consecutive tokens of one (layer, head):
//   k_codes  [group, rowBytes]         u8, 4-bit codes packed low nibble first
//   v_codes  [group, rowBytes]
//   k_scale, k_min  f16 [headDim]                      one per channel
//   v_scale, v_min  f16 [group, ceil(headDim / group)] one per token and channel group
// x = min + scale * code; code = round((x - min) / scale), clamped.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tp::kv {

struct QuantLayout {
  int64_t head_dim = 0, group = 0, bits = 0;
  int64_t row_bytes = 0;      // code bytes of one token row
  int64_t v_groups = 0;       // channel groups of one value row
  int64_t k_codes = 0, v_codes = 0, k_scale = 0, k_min = 0, v_scale = 0, v_min = 0;  // byte offsets
  int64_t block_bytes = 0;
};

QuantLayout make_quant_layout(int64_t head_dim, int64_t group, int64_t bits);

// Quantizes `group` token rows k, v (f32 [group, headDim]) into one block.
void quantize_block(const QuantLayout& L, const float* k, const float* v, uint8_t* block);

// Dequantizes rows [r0, r0 + n) of a block to f32 [n, headDim] (k or v may be null).
void dequantize_rows(const QuantLayout& L, const uint8_t* block, int64_t r0, int64_t n, float* k, float* v);

}  // namespace tp::kv
