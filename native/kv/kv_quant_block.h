// KIVI block quantization, one implementation for the CPU (kv_quant.cpp) and
// the device KV cache (native/cuda/cuda_kv_quant.cu): TP_HD, products and
// sums rounded like the CPU's (mul_rn / add_rn, no FMA), so a block quantized
// on the GPU is byte for byte the CPU's. Layout: kv_quant.h.
#pragma once
#include <cstdint>

#include "../core/half.h"
#include "kv_quant.h"

namespace tp::kv {

namespace quant_detail {

TP_HD float clampf(float x, float lo, float hi) { return x < lo ? lo : (hi < x ? hi : x); }

// Rounds min and scale through f16 (as stored) and saturates at the f16 range.
TP_HD void params(float lo, float hi, int64_t levels, uint16_t* min_bits, uint16_t* scale_bits, float* mn, float* sc) {
  const float kMax = 65504.0f;
  lo = clampf(lo, -kMax, kMax);
  hi = clampf(hi, -kMax, kMax);
  *min_bits = f32_to_f16(lo);
  *mn = f16_to_f32(*min_bits);
  float scale = (hi - *mn) / static_cast<float>(levels);
  scale = clampf(scale, 0.0f, kMax);
  *scale_bits = f32_to_f16(scale);
  *sc = f16_to_f32(*scale_bits);
  // f16 rounding may shrink the scale so that hi no longer fits: round up one ulp.
  if (*sc > 0.0f && add_rn(*mn, mul_rn(*sc, static_cast<float>(levels))) < hi && *scale_bits < 0x7bff) {
    *scale_bits = static_cast<uint16_t>(*scale_bits + 1);
    *sc = f16_to_f32(*scale_bits);
  }
}

TP_HD uint8_t encode(float x, float mn, float inv, int64_t levels) {
  if (!(inv > 0.0f)) return 0;
  const float c = round_half_even(mul_rn(x - mn, inv));
  return static_cast<uint8_t>(clampf(c, 0.0f, static_cast<float>(levels)));
}

TP_HD void put_nibble_or_byte(uint8_t* block, int64_t at, int shift, int bits, uint8_t code) {
  if (bits == 8) {
    block[at] = code;
    return;
  }
  uint8_t& b = block[at];
  b = static_cast<uint8_t>((b & (0xf0 >> shift)) | (code << shift));
}

TP_HD void set_f16(uint8_t* block, int64_t offset, int64_t i, uint16_t bits) {
  block[offset + 2 * i] = static_cast<uint8_t>(bits & 0xff);
  block[offset + 2 * i + 1] = static_cast<uint8_t>(bits >> 8);
}

TP_HD float get_f16(const uint8_t* block, int64_t offset, int64_t i) {
  return f16_to_f32(static_cast<uint16_t>(block[offset + 2 * i] | (block[offset + 2 * i + 1] << 8)));
}

}  // namespace quant_detail

// f32 rows [group, headDim] with row stride ld, as quantize_block_with reads them.
struct F32Rows {
  const float* p;
  int64_t ld;
  TP_HD float operator()(int64_t t, int64_t c) const { return p[t * ld + c]; }
};

// Quantizes the `group` token rows given by k(t, c), v(t, c) (f32 values)
// into one zeroed-then-filled block.
template <typename KAt, typename VAt>
TP_HD void quantize_block_with(const QuantLayout& L, const KAt& k, const VAt& v, uint8_t* block) {
  using namespace quant_detail;
  const int64_t d = L.head_dim, g = L.group, levels = (int64_t(1) << L.bits) - 1;
  for (int64_t i = 0; i < L.block_bytes; ++i) block[i] = 0;
  // Keys: one (min, scale) per channel over the group's tokens.
  for (int64_t c = 0; c < d; ++c) {
    float lo = k(0, c), hi = k(0, c);
    for (int64_t t = 1; t < g; ++t) {
      const float x = k(t, c);
      lo = x < lo ? x : lo;
      hi = hi < x ? x : hi;
    }
    float mn, sc;
    uint16_t mb, sb;
    params(lo, hi, levels, &mb, &sb, &mn, &sc);
    set_f16(block, L.k_min, c, mb);
    set_f16(block, L.k_scale, c, sb);
    const float inv = sc > 0.0f ? 1.0f / sc : 0.0f;
    for (int64_t t = 0; t < g; ++t) {
      int shift = 0;
      const int64_t at = L.bits == 8 ? L.k_codes + t * L.row_bytes + c : k4_offset(L, t, c, &shift);
      put_nibble_or_byte(block, at, shift, static_cast<int>(L.bits), encode(k(t, c), mn, inv, levels));
    }
  }
  // Values: one (min, scale) per token and group of `group` channels.
  for (int64_t t = 0; t < g; ++t) {
    for (int64_t cg = 0; cg < L.v_groups; ++cg) {
      const int64_t c0 = cg * g, c1 = d < c0 + g ? d : c0 + g;
      float lo = v(t, c0), hi = v(t, c0);
      for (int64_t c = c0 + 1; c < c1; ++c) {
        const float x = v(t, c);
        lo = x < lo ? x : lo;
        hi = hi < x ? x : hi;
      }
      float mn, sc;
      uint16_t mb, sb;
      const int64_t at = cg * g + t;
      params(lo, hi, levels, &mb, &sb, &mn, &sc);
      set_f16(block, L.v_min, at, mb);
      set_f16(block, L.v_scale, at, sb);
      const float inv = sc > 0.0f ? 1.0f / sc : 0.0f;
      for (int64_t c = c0; c < c1; ++c) {
        int shift = 0;
        const int64_t off = L.bits == 8 ? L.v_codes + t * L.row_bytes + c : v4_offset(L, t, c, &shift);
        put_nibble_or_byte(block, off, shift, static_cast<int>(L.bits), encode(v(t, c), mn, inv, levels));
      }
    }
  }
}

// Quantizes `group` token rows k, v (f32 [group, headDim], row stride ld).
TP_HD void quantize_block_rows(const QuantLayout& L, const float* k, const float* v, int64_t ld, uint8_t* block) {
  quantize_block_with(L, F32Rows{k, ld}, F32Rows{v, ld}, block);
}

// Key and value of token t, channel c of a block, dequantized (min + scale * code).
TP_HD float dequant_k(const QuantLayout& L, const uint8_t* block, int64_t t, int64_t c) {
  return add_rn(quant_detail::get_f16(block, L.k_min, c), mul_rn(quant_detail::get_f16(block, L.k_scale, c), static_cast<float>(k_code(L, block, t, c))));
}
TP_HD float dequant_v(const QuantLayout& L, const uint8_t* block, int64_t t, int64_t c) {
  const int64_t at = (c / L.group) * L.group + t;
  return add_rn(quant_detail::get_f16(block, L.v_min, at), mul_rn(quant_detail::get_f16(block, L.v_scale, at), static_cast<float>(v_code(L, block, t, c))));
}

}  // namespace tp::kv
