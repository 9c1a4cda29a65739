#include "kv_quant.h"

#include <algorithm>
#include <cmath>

#include "../core/half.h"

namespace tp::kv {
namespace {

// Rounds min and scale through f16 (as stored) and saturates at the f16 range.
void quant_params(float lo, float hi, int64_t levels, uint16_t* min_bits, uint16_t* scale_bits, float* mn, float* sc) {
  constexpr float kMax = 65504.0f;
  lo = std::clamp(lo, -kMax, kMax);
  hi = std::clamp(hi, -kMax, kMax);
  *min_bits = f32_to_f16(lo);
  *mn = f16_to_f32(*min_bits);
  float scale = (hi - *mn) / static_cast<float>(levels);
  scale = std::clamp(scale, 0.0f, kMax);
  *scale_bits = f32_to_f16(scale);
  *sc = f16_to_f32(*scale_bits);
  // f16 rounding may shrink the scale so that hi no longer fits: round up one ulp.
  if (*sc > 0.0f && *mn + *sc * levels < hi && *scale_bits < 0x7bff) {
    *scale_bits = static_cast<uint16_t>(*scale_bits + 1);
    *sc = f16_to_f32(*scale_bits);
  }
}

uint8_t encode(float x, float mn, float inv, int64_t levels) {
  if (!(inv > 0.0f)) return 0;
  const float c = std::nearbyint((x - mn) * inv);
  return static_cast<uint8_t>(std::clamp(c, 0.0f, static_cast<float>(levels)));
}

// Key code of token t, channel c (layout in kv_quant.h).
void put_k_code(const QuantLayout& L, uint8_t* block, int64_t t, int64_t c, uint8_t code) {
  if (L.bits == 8) {
    block[L.k_codes + t * L.row_bytes + c] = code;
    return;
  }
  int shift;
  uint8_t& b = block[k4_offset(L, t, c, &shift)];
  b = static_cast<uint8_t>((b & (0xf0 >> shift)) | (code << shift));
}

uint16_t* f16_at(uint8_t* block, int64_t offset) { return reinterpret_cast<uint16_t*>(block + offset); }
const uint16_t* f16_at(const uint8_t* block, int64_t offset) { return reinterpret_cast<const uint16_t*>(block + offset); }

}  // namespace

QuantLayout make_quant_layout(int64_t head_dim, int64_t group, int64_t bits) {
  QuantLayout L;
  L.head_dim = head_dim;
  L.group = group;
  L.bits = bits;
  L.row_bytes = bits == 8 ? head_dim : (head_dim + 1) / 2;
  L.v_groups = (head_dim + group - 1) / group;
  L.k_codes = 0;
  const int64_t last_w = head_dim - (head_dim - 1) / 32 * 32;  // width of the last 32-channel block
  L.v_pair_bytes = (head_dim - 1) / 32 * 32 + 2 * ((last_w + 1) / 2);
  L.k_octet_bytes = (head_dim + 7) / 8 * 32;
  L.v_codes = L.k_codes + (bits == 8 ? group * L.row_bytes : (group + 7) / 8 * L.k_octet_bytes);
  const int64_t v_bytes = bits == 8 ? group * L.row_bytes : (group + 1) / 2 * L.v_pair_bytes;
  // f16 arrays start 2-byte aligned.
  L.k_scale = (L.v_codes + v_bytes + 1) / 2 * 2;
  L.k_min = L.k_scale + 2 * head_dim;
  L.v_scale = L.k_min + 2 * head_dim;
  L.v_min = L.v_scale + 2 * group * L.v_groups;
  L.block_bytes = (L.v_min + 2 * group * L.v_groups + 63) / 64 * 64;
  return L;
}

void quantize_block(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  const int64_t d = L.head_dim, g = L.group, levels = (int64_t(1) << L.bits) - 1;
  std::fill(block, block + L.block_bytes, uint8_t(0));
  // Keys: one (min, scale) per channel over the group's tokens.
  for (int64_t c = 0; c < d; ++c) {
    float lo = k[c], hi = k[c];
    for (int64_t t = 1; t < g; ++t) {
      lo = std::min(lo, k[t * d + c]);
      hi = std::max(hi, k[t * d + c]);
    }
    float mn, sc;
    quant_params(lo, hi, levels, f16_at(block, L.k_min) + c, f16_at(block, L.k_scale) + c, &mn, &sc);
    const float inv = sc > 0.0f ? 1.0f / sc : 0.0f;
    for (int64_t t = 0; t < g; ++t) put_k_code(L, block, t, c, encode(k[t * d + c], mn, inv, levels));
  }
  // Values: one (min, scale) per token and group of `group` channels.
  for (int64_t t = 0; t < g; ++t) {
    const float* row = v + t * d;
    for (int64_t cg = 0; cg < L.v_groups; ++cg) {
      const int64_t c0 = cg * g, c1 = std::min(d, c0 + g);
      float lo = row[c0], hi = row[c0];
      for (int64_t c = c0 + 1; c < c1; ++c) {
        lo = std::min(lo, row[c]);
        hi = std::max(hi, row[c]);
      }
      float mn, sc;
      const int64_t at = cg * g + t;
      quant_params(lo, hi, levels, f16_at(block, L.v_min) + at, f16_at(block, L.v_scale) + at, &mn, &sc);
      const float inv = sc > 0.0f ? 1.0f / sc : 0.0f;
      for (int64_t c = c0; c < c1; ++c) {
        const uint8_t code = encode(row[c], mn, inv, levels);
        if (L.bits == 8) {
          block[L.v_codes + t * L.row_bytes + c] = code;
        } else {
          int shift;
          uint8_t& b = block[v4_offset(L, t, c, &shift)];
          b = static_cast<uint8_t>((b & (0xf0 >> shift)) | (code << shift));
        }
      }
    }
  }
}

void dequantize_rows(const QuantLayout& L, const uint8_t* block, int64_t r0, int64_t n, float* k, float* v) {
  const int64_t d = L.head_dim;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t t = r0 + r;
    if (k) {
      for (int64_t c = 0; c < d; ++c) {
        k[r * d + c] = f16_to_f32(f16_at(block, L.k_min)[c]) + f16_to_f32(f16_at(block, L.k_scale)[c]) * k_code(L, block, t, c);
      }
    }
    if (v) {
      for (int64_t c = 0; c < d; ++c) {
        const int64_t at = (c / L.group) * L.group + t;
        v[r * d + c] = f16_to_f32(f16_at(block, L.v_min)[at]) + f16_to_f32(f16_at(block, L.v_scale)[at]) * v_code(L, block, t, c);
      }
    }
  }
}

}  // namespace tp::kv
