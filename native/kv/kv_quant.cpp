#include "kv_quant.h"

#include "kv_quant_block.h"

#include <cstring>
#include <vector>

namespace tp::kv {
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

namespace {

// round_half_even(y) clamped to [0, levels], as quant_detail::encode computes
// it, without branches: y + 1.5 * 2^23 - 1.5 * 2^23 rounds to the nearest
// integer, ties to even, for |y| < 2^22; past that the clamp decides alone
// (an infinity too). NaN cannot occur (finite input, finite inverse scale).
inline float encode_nb(float x, float mn, float inv, float levels) {
  const float y = (x - mn) * inv;
  const float r = (y + 12582912.0f) - 12582912.0f;
  const float c = r < 0.0f ? 0.0f : (levels < r ? levels : r);
  return inv > 0.0f ? c : 0.0f;
}

}  // namespace

// The CPU's block quantizer: quantize_block_with (kv_quant_block.h, shared
// with the device cache) restructured so the per-element work vectorises:
// key min / max and codes run with channels innermost, codes land in a
// [group, headDim] byte array first and are then placed (int4 nibbles via the
// layout's offsets). Bit-identical to quantize_block_with: the same f32
// operations in the same order per element, the same select semantics for
// min / max (ties keep the first value, so -0 / +0 come out the same), and
// the same params() for every (min, scale) pair. test/unit/kv-cache-append
// and the quantizer hook check it against quantize_block_with.
void quantize_block_fast(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  using namespace quant_detail;
  const int64_t d = L.head_dim, g = L.group, levels = (int64_t(1) << L.bits) - 1;
  const float flevels = static_cast<float>(levels);
  for (int64_t i = 0; i < L.block_bytes; ++i) block[i] = 0;
  // Scratch on the stack for the common shapes, else the heap.
  constexpr int64_t kStack = 4096;
  float lo_s[kStack / 8], hi_s[kStack / 8], mn_s[kStack / 8], inv_s[kStack / 8];
  uint8_t codes_s[kStack];
  std::vector<float> heap;
  std::vector<uint8_t> heap_codes;
  float *lo = lo_s, *hi = hi_s, *mn = mn_s, *inv = inv_s;
  uint8_t* codes = codes_s;
  if (d > kStack / 8 || g * d > kStack) {
    heap.resize(static_cast<size_t>(4 * d));
    heap_codes.resize(static_cast<size_t>(g * d));
    lo = heap.data(); hi = lo + d; mn = hi + d; inv = mn + d;
    codes = heap_codes.data();
  }
  // Keys: (min, scale) per channel over the group's tokens.
  for (int64_t c = 0; c < d; ++c) lo[c] = hi[c] = k[c];
  for (int64_t t = 1; t < g; ++t) {
    const float* row = k + t * d;
    for (int64_t c = 0; c < d; ++c) {
      const float x = row[c];
      lo[c] = x < lo[c] ? x : lo[c];
      hi[c] = hi[c] < x ? x : hi[c];
    }
  }
  for (int64_t c = 0; c < d; ++c) {
    float m, sc;
    uint16_t mb, sb;
    params(lo[c], hi[c], levels, &mb, &sb, &m, &sc);
    set_f16(block, L.k_min, c, mb);
    set_f16(block, L.k_scale, c, sb);
    mn[c] = m;
    inv[c] = sc > 0.0f ? 1.0f / sc : 0.0f;
  }
  for (int64_t t = 0; t < g; ++t) {
    const float* row = k + t * d;
    uint8_t* out = codes + t * d;
    for (int64_t c = 0; c < d; ++c) out[c] = static_cast<uint8_t>(encode_nb(row[c], mn[c], inv[c], flevels));
  }
  if (L.bits == 8) {
    for (int64_t t = 0; t < g; ++t) std::memcpy(block + L.k_codes + t * L.row_bytes, codes + t * d, static_cast<size_t>(d));
  } else {
    for (int64_t t = 0; t < g; ++t) {
      for (int64_t c = 0; c < d; ++c) {
        int shift = 0;
        const int64_t at = k4_offset(L, t, c, &shift);
        put_nibble_or_byte(block, at, shift, 4, codes[t * d + c]);
      }
    }
  }
  // Values: (min, scale) per token and group of `group` channels; the min /
  // max scan stays sequential (its tie order is part of the result).
  for (int64_t t = 0; t < g; ++t) {
    const float* row = v + t * d;
    uint8_t* out = codes + t * d;
    for (int64_t cg = 0; cg < L.v_groups; ++cg) {
      const int64_t c0 = cg * g, c1 = d < c0 + g ? d : c0 + g;
      float vlo = row[c0], vhi = row[c0];
      for (int64_t c = c0 + 1; c < c1; ++c) {
        const float x = row[c];
        vlo = x < vlo ? x : vlo;
        vhi = vhi < x ? x : vhi;
      }
      float m, sc;
      uint16_t mb, sb;
      const int64_t at = cg * g + t;
      params(vlo, vhi, levels, &mb, &sb, &m, &sc);
      set_f16(block, L.v_min, at, mb);
      set_f16(block, L.v_scale, at, sb);
      const float iv = sc > 0.0f ? 1.0f / sc : 0.0f;
      for (int64_t c = c0; c < c1; ++c) out[c] = static_cast<uint8_t>(encode_nb(row[c], m, iv, flevels));
    }
  }
  if (L.bits == 8) {
    for (int64_t t = 0; t < g; ++t) std::memcpy(block + L.v_codes + t * L.row_bytes, codes + t * d, static_cast<size_t>(d));
  } else {
    for (int64_t t = 0; t < g; ++t) {
      for (int64_t c = 0; c < d; ++c) {
        int shift = 0;
        const int64_t off = v4_offset(L, t, c, &shift);
        put_nibble_or_byte(block, off, shift, 4, codes[t * d + c]);
      }
    }
  }
}

void quantize_block_reference(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  quantize_block_rows(L, k, v, L.head_dim, block);
}

void quantize_block(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  quantize_block_fast(L, k, v, block);
}

void dequantize_rows(const QuantLayout& L, const uint8_t* block, int64_t r0, int64_t n, float* k, float* v) {
  const int64_t d = L.head_dim;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < d; ++c) {
      if (k) k[r * d + c] = dequant_k(L, block, r0 + r, c);
      if (v) v[r * d + c] = dequant_v(L, block, r0 + r, c);
    }
  }
}

}  // namespace tp::kv
