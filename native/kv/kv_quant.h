// KIVI-style quantization (Liu et al. 2024, "KIVI: A Tuning-Free Asymmetric
// 2bit Quantization for KV Cache"): keys per channel, values per token,
// asymmetric min/scale in f16, codes of 8 or 4 bits.
//
// A block holds `group` consecutive tokens of one (layer, head):
//   k_codes  int8: [group, rowBytes] u8; int4: [ceil(group / 8) token octets,
//            ceil(headDim / 8) channel octets, 8 tokens, 4 bytes]: byte b of
//            token tt holds channel 8k + b (low nibble) and 8k + 4 + b (high
//            nibble), so one 32-byte load holds 8 channels of 8 tokens and a
//            maddubs with 4 broadcast q bytes leaves each token's partial dot
//            in its own lanes (no horizontal reduction)
//   v_codes  int8: [group, rowBytes]; int4: [ceil(group / 2) token pairs,
//            v_pair_bytes]: per pair, channel blocks of 32 channels, 32 bytes
//            each (the last block may be narrower): byte 2j + (t & 1) holds
//            channel j of the block (low nibble) and channel j + 16 (high
//            nibble) of token t. One maddubs of a pair's nibbles with the two
//            tokens' weights gives 16 channels' partial sums, no reduction.
//   k_scale, k_min  f16 [headDim]                      one per channel
//   v_scale, v_min  f16 [ceil(headDim / group), group] one per channel group and token
// x = min + scale * code; code = round((x - min) / scale), clamped.
//
// The per-element code (offsets, codes, and kv_quant_block.h's quantize and
// dequantize) is TP_HD: the device KV cache runs the same arithmetic.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/hd.h"

namespace tp::kv {

struct QuantLayout {
  int64_t head_dim = 0, group = 0, bits = 0;
  int64_t row_bytes = 0;      // int8: code bytes of one token row (keys and values)
  int64_t v_pair_bytes = 0;   // int4 values: code bytes of one token pair (all channels)
  int64_t k_octet_bytes = 0;  // int4 keys: code bytes of one token octet (all channels)
  int64_t v_groups = 0;       // channel groups of one value row
  int64_t k_codes = 0, v_codes = 0, k_scale = 0, k_min = 0, v_scale = 0, v_min = 0;  // byte offsets
  int64_t block_bytes = 0;
};

QuantLayout make_quant_layout(int64_t head_dim, int64_t group, int64_t bits);

// int4 values: byte offset of (token t, channel c) in a block, and its nibble
// shift (0 or 4). Channel block cb = c / 32 of width w splits at h = ceil(w / 2).
TP_HD int64_t v4_offset(const QuantLayout& L, int64_t t, int64_t c, int* shift) {
  const int64_t cb = c >> 5, j = c & 31;
  const int64_t w = L.head_dim - cb * 32 < 32 ? L.head_dim - cb * 32 : 32;
  const int64_t h = (w + 1) / 2;
  *shift = j < h ? 0 : 4;
  return L.v_codes + (t >> 1) * L.v_pair_bytes + cb * 32 + 2 * (j < h ? j : j - h) + (t & 1);
}

// int4 keys: byte offset of (token t, channel c) in a block, and its nibble shift.
TP_HD int64_t k4_offset(const QuantLayout& L, int64_t t, int64_t c, int* shift) {
  *shift = (c & 4) != 0 ? 4 : 0;
  return L.k_codes + (t >> 3) * L.k_octet_bytes + (c >> 3) * 32 + (t & 7) * 4 + (c & 3);
}

// Key code of token t, channel c of a block.
TP_HD uint8_t k_code(const QuantLayout& L, const uint8_t* block, int64_t t, int64_t c) {
  if (L.bits == 8) return block[L.k_codes + t * L.row_bytes + c];
  int shift;
  const int64_t at = k4_offset(L, t, c, &shift);
  return (block[at] >> shift) & 0x0f;
}

// Value code of token t, channel c of a block.
TP_HD uint8_t v_code(const QuantLayout& L, const uint8_t* block, int64_t t, int64_t c) {
  if (L.bits == 8) return block[L.v_codes + t * L.row_bytes + c];
  int shift;
  const int64_t at = v4_offset(L, t, c, &shift);
  return (block[at] >> shift) & 0x0f;
}

// Quantizes `group` token rows k, v (f32 [group, headDim]) into one block
// (quantize_block_fast: the CPU's vectorisable form).
void quantize_block(const QuantLayout& L, const float* k, const float* v, uint8_t* block);
// The two forms, for tests: fast (channels innermost, vectorised) and the
// shared per-element reference quantize_block_with (kv_quant_block.h).
// Bit-identical on finite input.
void quantize_block_fast(const QuantLayout& L, const float* k, const float* v, uint8_t* block);
void quantize_block_reference(const QuantLayout& L, const float* k, const float* v, uint8_t* block);

// Dequantizes rows [r0, r0 + n) of a block to f32 [n, headDim] (k or v may be null).
void dequantize_rows(const QuantLayout& L, const uint8_t* block, int64_t r0, int64_t n, float* k, float* v);

}  // namespace tp::kv
