#include "kv_quant.h"

#include "kv_quant_block.h"

#include <cstring>
#include <vector>

#include "../core/cpu_features.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define TP_KV_QUANT_X86 1
#else
#define TP_KV_QUANT_X86 0
#endif

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
static void quantize_block_portable(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  using namespace quant_detail;
  const int64_t d = L.head_dim, g = L.group, levels = (int64_t(1) << L.bits) - 1;
  const float flevels = static_cast<float>(levels);
  std::memset(block, 0, static_cast<size_t>(L.block_bytes));
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

#if TP_KV_QUANT_X86
namespace {

// AVX2 + F16C block quantizer for the common shapes (headDim a multiple of
// 32, group a multiple of 8 dividing headDim, headDim <= 1024): the same f32
// operations per element as quantize_block_with, 8 lanes at a time.
//   - min / max: _mm256_min_ps(x, lo) is `x < lo ? x : lo` and
//     _mm256_max_ps(x, hi) is `hi < x ? x : hi` (MINPS / MAXPS return the
//     second operand on ties), so key scans (lanes = channels, tokens in
//     order) are the sequential scan exactly. Value scans (channels of one
//     token) reduce in a tree: equal values have equal bits except for
//     -0 / +0, so when the minimum (maximum) is zero the sequential scan's
//     answer, the first zero of the group, is put back.
//   - params: F16C conversions round to nearest even like half.h on every
//     non-NaN input (the inputs are clamped finite), clamps keep -0 where
//     clampf keeps it, and mn + sc * levels is computed unfused (this code
//     is built without the fma target, so no contraction can happen).
//   - codes: round(y) to nearest even with _mm256_round_ps equals
//     (y + 1.5 * 2^23) - 1.5 * 2^23 for |y| < 2^22 and beyond that both are
//     clamped to the same end.
constexpr int64_t kSimdMaxDim = 1024;

bool simd_shape_ok(const QuantLayout& L) {
  return L.head_dim % 32 == 0 && L.group % 8 == 0 && L.head_dim % L.group == 0 && L.head_dim <= kSimdMaxDim;
}

// (min, scale) of n ranges [lo, hi) as quant_detail::params, 8 at a time
// (n a multiple of 8): f16 bits into min_bits / scale_bits, mn and the
// inverse scale (0 when the scale is 0) into mn / inv.
__attribute__((target("avx2,f16c"))) void params8(const float* lo, const float* hi, int64_t n, float levels, uint16_t* min_bits,
                                                   uint16_t* scale_bits, float* mn, float* inv) {
  const __m256 kmax = _mm256_set1_ps(65504.0f), nkmax = _mm256_set1_ps(-65504.0f), zero = _mm256_setzero_ps();
  const __m256 lv = _mm256_set1_ps(levels);
  const __m128i top = _mm_set1_epi16(0x7bff), one = _mm_set1_epi16(1);
  constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  for (int64_t i = 0; i < n; i += 8) {
    // clampf(x, -kMax, kMax): max(x, -kMax) then min(., kMax) keeps x (and -0) inside.
    const __m256 l = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(lo + i), nkmax), kmax);
    const __m256 h = _mm256_min_ps(_mm256_max_ps(_mm256_loadu_ps(hi + i), nkmax), kmax);
    const __m128i mb = _mm256_cvtps_ph(l, kRne);
    const __m256 m = _mm256_cvtph_ps(mb);
    __m256 scale = _mm256_div_ps(_mm256_sub_ps(h, m), lv);
    // clampf(scale, 0, kMax): a negative scale becomes +0, -0 stays -0.
    scale = _mm256_blendv_ps(scale, zero, _mm256_cmp_ps(scale, zero, _CMP_LT_OQ));
    scale = _mm256_min_ps(scale, kmax);
    __m128i sb = _mm256_cvtps_ph(scale, kRne);
    __m256 sc = _mm256_cvtph_ps(sb);
    // Round the scale up one f16 ulp when mn + sc * levels < hi (and sc > 0, bits < 0x7bff).
    __m256 prod = _mm256_mul_ps(sc, lv);
    __asm__("" : "+x"(prod));  // keep the product rounded on its own (no FMA)
    const __m256 reach = _mm256_add_ps(m, prod);
    const __m256 up = _mm256_and_ps(_mm256_cmp_ps(sc, zero, _CMP_GT_OQ), _mm256_cmp_ps(reach, h, _CMP_LT_OQ));
    const __m128i up16 = _mm_packs_epi32(_mm256_castsi256_si128(_mm256_castps_si256(up)), _mm256_extractf128_si256(_mm256_castps_si256(up), 1));
    const __m128i below = _mm_cmplt_epi16(sb, top);  // bits < 0x7bff (signed compare: bits are <= 0x7bff here)
    sb = _mm_add_epi16(sb, _mm_and_si128(_mm_and_si128(up16, below), one));
    sc = _mm256_cvtph_ps(sb);
    const __m256 pos = _mm256_cmp_ps(sc, zero, _CMP_GT_OQ);
    const __m256 iv = _mm256_and_ps(_mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_blendv_ps(_mm256_set1_ps(1.0f), sc, pos)), pos);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(min_bits + i), mb);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(scale_bits + i), sb);
    _mm256_storeu_ps(mn + i, m);
    _mm256_storeu_ps(inv + i, iv);
  }
}

// 8 codes of x[0..8) with (mn, inv) per lane, as quant_detail::encode, as int32 lanes.
__attribute__((target("avx2,f16c"))) inline __m256i encode8(const float* x, __m256 m, __m256 iv, __m256 lv) {
  constexpr int kRne = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m256 zero = _mm256_setzero_ps();
  const __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x), m), iv);
  const __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_round_ps(y, kRne), zero), lv);
  // inv == 0 (scale 0): code 0.
  return _mm256_cvttps_epi32(_mm256_and_ps(r, _mm256_cmp_ps(iv, zero, _CMP_GT_OQ)));
}

// 32 codes of x[0..32) (lane quarters q with (m[q], iv[q])) as 32 bytes.
__attribute__((target("avx2,f16c"))) inline __m256i encode32(const float* x, const __m256* m, const __m256* iv, __m256 lv) {
  const __m256i a = encode8(x, m[0], iv[0], lv), b = encode8(x + 8, m[1], iv[1], lv);
  const __m256i c = encode8(x + 16, m[2], iv[2], lv), d = encode8(x + 24, m[3], iv[3], lv);
  const __m256i p = _mm256_packus_epi16(_mm256_packus_epi32(a, b), _mm256_packus_epi32(c, d));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// int4 keys: token t's codes row (d bytes) into the block's nibble layout:
// channel octet j is one 32-bit word, byte b = code[8j + b] | code[8j + 4 + b] << 4.
inline void pack_k4_row(const QuantLayout& L, const uint8_t* codes, int64_t t, uint8_t* block) {
  uint8_t* dst = block + L.k_codes + (t >> 3) * L.k_octet_bytes + (t & 7) * 4;
  for (int64_t j = 0; j < L.head_dim / 8; ++j) {
    uint64_t q;
    std::memcpy(&q, codes + 8 * j, 8);
    const uint32_t w = static_cast<uint32_t>(q | (q >> 28));
    std::memcpy(dst + j * 32, &w, 4);
  }
}

// int4 values: tokens t0 = 2p and t0 + 1 (codes rows a, b) into pair p: per
// 32-channel block, byte 2j + (t & 1) = code[j] | code[j + 16] << 4.
__attribute__((target("avx2,f16c"))) inline void pack_v4_pair(const QuantLayout& L, const uint8_t* a, const uint8_t* b, int64_t p, uint8_t* block) {
  uint8_t* dst = block + L.v_codes + p * L.v_pair_bytes;
  for (int64_t cb = 0; cb < L.head_dim / 32; ++cb) {
    const __m128i alo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 32 * cb));
    const __m128i ahi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 32 * cb + 16));
    const __m128i pa = _mm_or_si128(alo, _mm_slli_epi16(ahi, 4));
    __m128i pb = _mm_setzero_si128();
    if (b) {
      const __m128i blo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * cb));
      const __m128i bhi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 32 * cb + 16));
      pb = _mm_or_si128(blo, _mm_slli_epi16(bhi, 4));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 32 * cb), _mm_unpacklo_epi8(pa, pb));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 32 * cb + 16), _mm_unpackhi_epi8(pa, pb));
  }
}

// Horizontal min / max of 8 lanes.
__attribute__((target("avx2,f16c"))) inline float hmin8(__m256 x) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
__attribute__((target("avx2,f16c"))) inline float hmax8(__m256 x) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}
// The sequential scan's answer when the extreme is zero: the first zero.
inline float first_zero(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] == 0.0f) return x[i];
  }
  return 0.0f;
}

__attribute__((target("avx2,f16c"))) void quantize_block_avx2(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
  const int64_t d = L.head_dim, g = L.group, vg = L.v_groups;
  const float levels = static_cast<float>((int64_t(1) << L.bits) - 1);
  const __m256 lv = _mm256_set1_ps(levels);
  alignas(32) float lo[kSimdMaxDim], hi[kSimdMaxDim], mn[kSimdMaxDim], inv[kSimdMaxDim];
  alignas(32) uint16_t mb[kSimdMaxDim], sb[kSimdMaxDim];
  std::memset(block, 0, static_cast<size_t>(L.block_bytes));
  // Codes of one token (int8: straight into the block) or of two (int4 value pairs).
  alignas(32) uint8_t row[2][kSimdMaxDim];

  // Keys: (min, scale) per channel over the group's tokens, in token order.
  for (int64_t c = 0; c < d; c += 8) {
    __m256 l = _mm256_loadu_ps(k + c), h = l;
    for (int64_t t = 1; t < g; ++t) {
      const __m256 x = _mm256_loadu_ps(k + t * d + c);
      l = _mm256_min_ps(x, l);
      h = _mm256_max_ps(x, h);
    }
    _mm256_store_ps(lo + c, l);
    _mm256_store_ps(hi + c, h);
  }
  params8(lo, hi, d, levels, mb, sb, mn, inv);
  std::memcpy(block + L.k_min, mb, static_cast<size_t>(2 * d));
  std::memcpy(block + L.k_scale, sb, static_cast<size_t>(2 * d));
  for (int64_t t = 0; t < g; ++t) {
    uint8_t* out = L.bits == 8 ? block + L.k_codes + t * L.row_bytes : row[0];
    for (int64_t c = 0; c < d; c += 32) {
      const __m256 m[4] = {_mm256_load_ps(mn + c), _mm256_load_ps(mn + c + 8), _mm256_load_ps(mn + c + 16), _mm256_load_ps(mn + c + 24)};
      const __m256 iv[4] = {_mm256_load_ps(inv + c), _mm256_load_ps(inv + c + 8), _mm256_load_ps(inv + c + 16), _mm256_load_ps(inv + c + 24)};
      const __m256i codes = encode32(k + t * d + c, m, iv, lv);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), codes);
    }
    if (L.bits == 4) pack_k4_row(L, row[0], t, block);
  }

  // Values: (min, scale) per token and group of g channels, at cg * g + t.
  for (int64_t t = 0; t < g; ++t) {
    const float* x = v + t * d;
    for (int64_t cg = 0; cg < vg; ++cg) {
      const float* xg = x + cg * g;
      __m256 l = _mm256_loadu_ps(xg), h = l;
      for (int64_t c = 8; c < g; c += 8) {
        const __m256 y = _mm256_loadu_ps(xg + c);
        l = _mm256_min_ps(y, l);
        h = _mm256_max_ps(y, h);
      }
      float a = hmin8(l), b = hmax8(h);
      if (a == 0.0f) a = first_zero(xg, g);
      if (b == 0.0f) b = first_zero(xg, g);
      lo[cg * g + t] = a;
      hi[cg * g + t] = b;
    }
  }
  params8(lo, hi, vg * g, levels, mb, sb, mn, inv);
  std::memcpy(block + L.v_min, mb, static_cast<size_t>(2 * vg * g));
  std::memcpy(block + L.v_scale, sb, static_cast<size_t>(2 * vg * g));
  for (int64_t t = 0; t < g; ++t) {
    uint8_t* out = L.bits == 8 ? block + L.v_codes + t * L.row_bytes : row[t & 1];
    for (int64_t c = 0; c < d; c += 32) {
      // A 32-channel run lies in one value group when g >= 32, else spans 32 / g groups.
      __m256 m[4], iv[4];
      for (int q = 0; q < 4; ++q) {
        const int64_t at = ((c + 8 * q) / g) * g + t;
        m[q] = _mm256_set1_ps(mn[at]);
        iv[q] = _mm256_set1_ps(inv[at]);
      }
      const __m256i codes = encode32(v + t * d + c, m, iv, lv);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c), codes);
    }
    if (L.bits == 4 && (t & 1)) pack_v4_pair(L, row[0], row[1], t >> 1, block);
  }
}

}  // namespace
#endif

void quantize_block_fast(const QuantLayout& L, const float* k, const float* v, uint8_t* block) {
#if TP_KV_QUANT_X86
  if (active_isa() != IsaLevel::Scalar && cpu_features().f16c && simd_shape_ok(L)) {
    quantize_block_avx2(L, k, v, block);
    return;
  }
#endif
  quantize_block_portable(L, k, v, block);
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
