// AVX2 + FMA + F16C build of the quantized decode kernel: codes are widened
// and dequantized 8 channels at a time. Library headers come before the
// target pragma so none of their code is compiled for AVX2.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/half.h"
#include "kv_quant_attend.h"

#if defined(__x86_64__) && !defined(TOKENPRESS_DISABLE_SIMD)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

namespace tp::kv::qattn_avx2 {

inline __m256 load_f16x8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// Codes of channels c .. c+7 of one row, as floats (int8 rows; int4 key rows
// when the 8 channels sit in one nibble half).
inline __m256 codes8(const QuantLayout& L, const uint8_t* row, int64_t c) {
  int64_t x;
  if (L.bits == 8) {
    std::memcpy(&x, row + c, 8);
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(x)));
  }
  const bool high = c >= L.row_bytes;
  std::memcpy(&x, row + (high ? c - L.row_bytes : c), 8);
  __m128i bytes = _mm_cvtsi64_si128(x);
  if (high) bytes = _mm_srli_epi16(bytes, 4);
  bytes = _mm_and_si128(bytes, _mm_set1_epi8(0x0f));
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}

inline const uint16_t* f16_at(const uint8_t* block, int64_t off) { return reinterpret_cast<const uint16_t*>(block + off); }

inline uint8_t code_at(const QuantLayout& L, const uint8_t* row, int64_t c) {
  if (L.bits == 8) return row[c];
  return c < L.row_bytes ? (row[c] & 0x0f) : (row[c - L.row_bytes] >> 4);
}

inline void dequant_k_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) {
  const uint8_t* row = block + L.k_codes + t * L.row_bytes;
  const uint16_t* mn = f16_at(block, L.k_min);
  const uint16_t* sc = f16_at(block, L.k_scale);
  int64_t c = 0;
  for (; c + 8 <= L.head_dim; c += 8) {
    if (L.bits == 4 && c < L.row_bytes && c + 8 > L.row_bytes) break;  // 8 channels across the nibble halves
    _mm256_storeu_ps(out + c, _mm256_fmadd_ps(load_f16x8(sc + c), codes8(L, row, c), load_f16x8(mn + c)));
  }
  for (; c < L.head_dim; ++c) out[c] = f16_to_f32(mn[c]) + f16_to_f32(sc[c]) * code_at(L, row, c);
}

inline void dequant_v_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) {
  const uint16_t* mn = f16_at(block, L.v_min) + t * L.v_groups;
  const uint16_t* sc = f16_at(block, L.v_scale) + t * L.v_groups;
  if (L.group % 8 != 0 || L.bits == 4) {
    // int4 values are channel-major (the integer kernel's layout): gather per channel.
    for (int64_t c = 0; c < L.head_dim; ++c) out[c] = f16_to_f32(mn[c / L.group]) + f16_to_f32(sc[c / L.group]) * v_code(L, block, t, c);
    return;
  }
  const uint8_t* row = block + L.v_codes + t * L.row_bytes;
  // One (scale, min) per channel group, converted once; 8 channels at a time.
  for (int64_t g = 0, c0 = 0; g < L.v_groups; ++g, c0 += L.group) {
    const int64_t c1 = c0 + L.group < L.head_dim ? c0 + L.group : L.head_dim;
    const float sf = f16_to_f32(sc[g]), mf = f16_to_f32(mn[g]);
    const __m256 s = _mm256_set1_ps(sf), m = _mm256_set1_ps(mf);
    int64_t c = c0;
    for (; c + 8 <= c1; c += 8) _mm256_storeu_ps(out + c, _mm256_fmadd_ps(s, codes8(L, row, c), m));
    for (; c < c1; ++c) out[c] = mf + sf * code_at(L, row, c);
  }
}

inline void f16_row(const uint16_t* x, int64_t d, float* out) {
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) _mm256_storeu_ps(out + c, load_f16x8(x + c));
  for (; c < d; ++c) out[c] = f16_to_f32(x[c]);
}

inline float dot(const float* a, const float* b, int64_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= d; c += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + 8), _mm256_loadu_ps(b + c + 8), s1);
  }
  for (; c + 8 <= d; c += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
  s0 = _mm256_add_ps(s0, s1);
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  float s = _mm_cvtss_f32(x);
  for (; c < d; ++c) s += a[c] * b[c];
  return s;
}

inline void axpy(float alpha, const float* x, float* y, int64_t d) {
  const __m256 a = _mm256_set1_ps(alpha);
  int64_t c = 0;
  for (; c + 8 <= d; c += 8) _mm256_storeu_ps(y + c, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c)));
  for (; c < d; ++c) y[c] += alpha * x[c];
}

// The integer int4 path: keys . q with q quantized to int8 per block and row
// (maddubs on the raw nibbles), values as int8 token weights . int4 codes per
// channel. Group 32 (one 16-byte code column per channel) and headDim a
// multiple of 64, at most 256 (16-bit partial sums cannot overflow).
constexpr bool kHasInt4Step = true;
inline bool int4_step_fits(const QuantLayout& L) { return L.bits == 4 && L.group == 32 && L.head_dim % 64 == 0 && L.head_dim <= 256; }
inline void step_int4(const QuantLayout& L, const uint8_t* block, const QuantAttendArgs& a, int64_t b0, const int64_t* last, float* m,
                      float* l, float* acc, float* s, float* ws);

#include "kv_quant_attend_kernel.inl"


// exp(x) for x <= 0 (and -inf -> 0), 8 lanes: 2^k * p(r) with a degree-5
// polynomial (relative error ~1e-7, like expf).
inline __m256 exp_neg(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
  const __m256 k = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
  const __m256 r2 = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187045e-06f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r2, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r2), r2, _mm256_add_ps(r2, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

inline float hmax8(__m256 v) {
  __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

inline float hsum8(__m256 v) {
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_movehdup_ps(x));
  return _mm_cvtss_f32(x);
}

// softmax_update for a full block of 32 scores per row, 8 lanes at a time.
inline void softmax_update32(int64_t R, int64_t d, float* s, float* m, float* l, float* acc) {
  for (int64_t r = 0; r < R; ++r) {
    float* sr = s + r * 32;
    __m256 v[4];
    __m256 mx = _mm256_set1_ps(-INFINITY);
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(sr + 8 * k);
      mx = _mm256_max_ps(mx, v[k]);
    }
    const float bm = hmax8(mx);
    if (bm == -INFINITY) {
      for (int k = 0; k < 4; ++k) _mm256_storeu_ps(sr + 8 * k, _mm256_setzero_ps());
      continue;
    }
    const float nm = bm > m[r] ? bm : m[r];
    const float corr = m[r] == -INFINITY ? 0.0f : expf(m[r] - nm);
    if (corr != 1.0f) {
      const __m256 c = _mm256_set1_ps(corr);
      for (int64_t i = 0; i < d; i += 8) _mm256_storeu_ps(acc + r * d + i, _mm256_mul_ps(c, _mm256_loadu_ps(acc + r * d + i)));
      l[r] *= corr;
    }
    m[r] = nm;
    const __m256 nmv = _mm256_set1_ps(nm);
    __m256 sum = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      // Masked scores (-inf) give exactly 0.
      const __m256 p = _mm256_and_ps(exp_neg(_mm256_sub_ps(v[k], nmv)), _mm256_cmp_ps(v[k], _mm256_set1_ps(-INFINITY), _CMP_NEQ_OQ));
      _mm256_storeu_ps(sr + 8 * k, p);
      sum = _mm256_add_ps(sum, p);
    }
    l[r] += hsum8(sum);
  }
}

inline int32_t hsum_epi32(__m256i x) {
  __m128i v = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
  v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
  return _mm_cvtsi128_si32(v);
}

// Sums of 8 vectors of 8 int32 each, in order.
inline __m256i reduce8(const __m256i* p) {
  const __m256i h01 = _mm256_hadd_epi32(p[0], p[1]), h23 = _mm256_hadd_epi32(p[2], p[3]);
  const __m256i h45 = _mm256_hadd_epi32(p[4], p[5]), h67 = _mm256_hadd_epi32(p[6], p[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

inline int8_t round_s8(float x) { return static_cast<int8_t>(_mm_cvtss_si32(_mm_set_ss(x))); }

inline void step_int4(const QuantLayout& L, const uint8_t* block, const QuantAttendArgs& a, int64_t b0, const int64_t* last, float* m,
                      float* l, float* acc, float* s, float* ws) {
  constexpr int64_t G = 32;
  const int64_t d = L.head_dim, half = d / 2, R = a.rows, vg = L.v_groups;
  float* ks = ws;                     // key scale, min: f32 [d]
  float* km = ks + d;
  float* alpha = km + d;              // per row: q quantization step
  float* kb = alpha + R;              // per row: q . kmin
  float* vsf = kb + R;                // value scale, min: f32 [G, vg]
  float* vmf = vsf + G * vg;
  float* beta = vmf + G * vg;         // [R, vg] weight quantization step
  float* vb = beta + R * vg;          // [R, vg] sum_t p * vmin
  auto* q8 = reinterpret_cast<int8_t*>(vb + R * vg);  // [R, d] q * kscale as int8
  uint8_t* wq = reinterpret_cast<uint8_t*>(q8 + R * d);  // [R, vg, 32] weights, even tokens then odd
  const uint16_t* ksc = f16_at(block, L.k_scale);
  const uint16_t* kmn = f16_at(block, L.k_min);
  for (int64_t c = 0; c < d; c += 8) {
    _mm256_storeu_ps(ks + c, load_f16x8(ksc + c));
    _mm256_storeu_ps(km + c, load_f16x8(kmn + c));
  }
  // q' = q * kscale quantized to int8 per row; q . kmin in f32.
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t r = 0; r < R; ++r) {
    const float* q = a.q[r];
    __m256 mx = _mm256_setzero_ps(), bias = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c += 8) {
      const __m256 qv = _mm256_loadu_ps(q + c);
      mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_mul_ps(qv, _mm256_loadu_ps(ks + c))));
      bias = _mm256_fmadd_ps(qv, _mm256_loadu_ps(km + c), bias);
    }
    float lanes[8], blanes[8];
    _mm256_storeu_ps(lanes, mx);
    _mm256_storeu_ps(blanes, bias);
    float amax = 0.0f, bsum = 0.0f;
    for (int j = 0; j < 8; ++j) {
      amax = lanes[j] > amax ? lanes[j] : amax;
      bsum += blanes[j];
    }
    const float step = amax > 0.0f ? amax / 127.0f : 1.0f;
    const __m256 inv = _mm256_set1_ps(1.0f / step);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t c = 0; c < d; c += 32) {
      __m256i i[4];
      for (int k = 0; k < 4; ++k) {
        i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(q + c + 8 * k), _mm256_loadu_ps(ks + c + 8 * k)), inv));
      }
      const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q8 + r * d + c), _mm256_permutevar8x32_epi32(packed, order));
    }
    alpha[r] = step;
    kb[r] = bsum;
  }
  // Scores: nibbles unpacked once per block into u8 [G, d] (per 32-byte
  // part: low nibbles, then high), then for each row: q held in registers,
  // 8 tokens' int32 dots reduced together.
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t parts = half / 32;  // 1..4
  uint8_t* codes = wq + R * vg * G;  // [G][parts][2][32]
  for (int64_t t = 0; t < G; ++t) {
    const uint8_t* row = block + L.k_codes + t * L.row_bytes;
    for (int64_t o = 0; o < parts; ++o) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + o * 32));
      uint8_t* dst = codes + (t * parts + o) * 64;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_and_si256(x, nib));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    __m256i qv[8];
    // Low nibbles of byte part o hold channels o*32.., high nibbles half + o*32..
    for (int64_t o = 0; o < parts; ++o) {
      qv[2 * o] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + r * d + o * 32));
      qv[2 * o + 1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q8 + r * d + half + o * 32));
    }
    const __m256 va = _mm256_set1_ps(alpha[r] * a.scale), vb0 = _mm256_set1_ps(kb[r] * a.scale);
    for (int64_t t0 = 0; t0 < G; t0 += 8) {
      __m256i p[8];
      for (int j = 0; j < 8; ++j) {
        const uint8_t* c = codes + (t0 + j) * parts * 64;
        __m256i sum16 = _mm256_setzero_si256();
        for (int64_t o = 0; o < 2 * parts; ++o) {
          sum16 = _mm256_add_epi16(sum16, _mm256_maddubs_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + o * 32)), qv[o]));
        }
        p[j] = _mm256_madd_epi16(sum16, ones);
      }
      _mm256_storeu_ps(s + r * G + t0, _mm256_fmadd_ps(va, _mm256_cvtepi32_ps(reduce8(p)), vb0));
    }
    for (int64_t t = 0; t < G; ++t) {
      float& x = s[r * G + t];
      if (b0 + t > last[r]) x = -INFINITY;
      else if (a.softcap > 0.0f) x = a.softcap * tanhf(x / a.softcap);
    }
  }
  softmax_update32(R, d, s, m, l, acc);
  // Token weights p * vscale per (row, channel group), quantized to u8, in
  // the code columns' token order (even tokens, then odd).
  const uint16_t* vsc = f16_at(block, L.v_scale);
  const uint16_t* vmn = f16_at(block, L.v_min);
  auto perm = [](int64_t j) { return j < 16 ? 2 * j : 2 * (j - 16) + 1; };
  // Convert [G, vg] with F16C (into the score-code scratch, free by now), then transpose and permute.
  float* tmp = reinterpret_cast<float*>(codes);
  int64_t i = 0;
  for (; i + 8 <= G * vg; i += 8) {
    _mm256_storeu_ps(tmp + i, load_f16x8(vsc + i));
    _mm256_storeu_ps(tmp + G * vg + i, load_f16x8(vmn + i));
  }
  for (; i < G * vg; ++i) {
    tmp[i] = f16_to_f32(vsc[i]);
    tmp[G * vg + i] = f16_to_f32(vmn[i]);
  }
  for (int64_t g = 0; g < vg; ++g) {
    for (int64_t j = 0; j < G; ++j) {
      vsf[g * G + j] = tmp[perm(j) * vg + g];
      vmf[g * G + j] = tmp[G * vg + perm(j) * vg + g];
    }
  }
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t r = 0; r < R; ++r) {
    __m256 pv[4];
    float pp[G];
    for (int64_t j = 0; j < G; ++j) pp[j] = s[r * G + perm(j)];
    for (int k = 0; k < 4; ++k) pv[k] = _mm256_loadu_ps(pp + 8 * k);
    for (int64_t g = 0; g < vg; ++g) {
      __m256 w[4];
      __m256 mx = _mm256_setzero_ps(), bs = _mm256_setzero_ps();
      for (int k = 0; k < 4; ++k) {
        w[k] = _mm256_mul_ps(pv[k], _mm256_loadu_ps(vsf + g * G + 8 * k));
        mx = _mm256_max_ps(mx, w[k]);
        bs = _mm256_fmadd_ps(pv[k], _mm256_loadu_ps(vmf + g * G + 8 * k), bs);
      }
      float lanes[8], blanes[8];
      _mm256_storeu_ps(lanes, mx);
      _mm256_storeu_ps(blanes, bs);
      float wmax = 0.0f, bsum = 0.0f;
      for (int j = 0; j < 8; ++j) {
        wmax = lanes[j] > wmax ? lanes[j] : wmax;
        bsum += blanes[j];
      }
      const float step = wmax > 0.0f ? wmax / 255.0f : 0.0f;
      const __m256 inv = _mm256_set1_ps(step > 0.0f ? 1.0f / step : 0.0f);
      const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(w[0], inv)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(w[1], inv));
      const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(w[2], inv)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(w[3], inv));
      const __m256i packed = _mm256_packus_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(wq + (r * vg + g) * G), _mm256_permutevar8x32_epi32(packed, order));
      beta[r * vg + g] = step;
      vb[r * vg + g] = bsum;
    }
  }
  // Values: per 8 channels, codes (even tokens | odd tokens) . weights.
  const __m128i nib128 = _mm_set1_epi8(0x0f);
  for (int64_t c0 = 0; c0 < d; c0 += 8) {
    const int64_t g = c0 / G;
    __m256i cv[8];
    for (int j = 0; j < 8; ++j) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + L.v_codes + (c0 + j) * L.v_col_bytes));
      cv[j] = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), nib128), _mm_and_si128(x, nib128));
    }
    for (int64_t r = 0; r < R; ++r) {
      const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wq + (r * vg + g) * G));
      __m256i p[8];
      for (int j = 0; j < 8; ++j) p[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(w, cv[j]), ones);
      const __m256 sums = _mm256_cvtepi32_ps(reduce8(p));
      float* o = acc + r * d + c0;
      const __m256 base = _mm256_add_ps(_mm256_loadu_ps(o), _mm256_set1_ps(vb[r * vg + g]));
      _mm256_storeu_ps(o, _mm256_fmadd_ps(_mm256_set1_ps(beta[r * vg + g]), sums, base));
    }
  }
}

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const int64_t d = h.layout->head_dim;
  chunk_kernel(h, a, t0, t1, len, m, l, acc, scratch, scratch + d, scratch + 2 * d, scratch + 2 * d + a.rows * h.layout->group);
}

}  // namespace tp::kv::qattn_avx2

#pragma GCC pop_options
#else
namespace tp::kv::qattn_scalar {
void run_chunk(const QuantHeadView&, const QuantAttendArgs&, int64_t, int64_t, int64_t, float*, float*, float*, float*);
}
namespace tp::kv::qattn_avx2 {
// Never selected: cpu_features reports no SIMD level on this target.
void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  qattn_scalar::run_chunk(h, a, t0, t1, len, m, l, acc, scratch);
}
}  // namespace tp::kv::qattn_avx2
#endif
