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

// Codes of channels c .. c+7 of one int8 row, as floats.
inline __m256 codes8(const uint8_t* row, int64_t c) {
  int64_t x;
  std::memcpy(&x, row + c, 8);
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(x)));
}

// int4 key codes of channels c .. c+7 (c % 8 == 0) of token t: 4 bytes,
// low nibbles then high nibbles, as floats.
inline __m256 k4_codes8(const QuantLayout& L, const uint8_t* block, int64_t t, int64_t c) {
  int shift;
  uint32_t x;
  std::memcpy(&x, block + k4_offset(L, t, c, &shift), 4);
  const uint64_t lo = x & 0x0f0f0f0fu, hi = (x >> 4) & 0x0f0f0f0fu;
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(lo | (hi << 32)))));
}

inline const uint16_t* f16_at(const uint8_t* block, int64_t off) { return reinterpret_cast<const uint16_t*>(block + off); }

// Key rows 0 .. n-1 of a block into out [n, headDim].
inline void dequant_k_rows(const QuantLayout& L, const uint8_t* block, int64_t n, float* out) {
  const int64_t d = L.head_dim;
  const uint16_t* mn = f16_at(block, L.k_min);
  const uint16_t* sc = f16_at(block, L.k_scale);
  const int64_t d8 = d & ~int64_t(7);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < d8; c += 8) {
      const __m256 codes = L.bits == 8 ? codes8(block + L.k_codes + t * L.row_bytes, c) : k4_codes8(L, block, t, c);
      _mm256_storeu_ps(out + t * d + c, _mm256_fmadd_ps(load_f16x8(sc + c), codes, load_f16x8(mn + c)));
    }
  }
  for (int64_t c = d8; c < d; ++c) {
    const float sf = f16_to_f32(sc[c]), mf = f16_to_f32(mn[c]);
    for (int64_t t = 0; t < n; ++t) out[t * d + c] = mf + sf * k_code(L, block, t, c);
  }
}

inline void dequant_v_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) {
  // (scale, min) of token t, channel group g at [g * group + t].
  const uint16_t* mn = f16_at(block, L.v_min) + t;
  const uint16_t* sc = f16_at(block, L.v_scale) + t;
  if (L.group % 8 != 0 || L.bits == 4) {
    // int4 values are stored in token pairs (the integer kernel's layout): gather per channel.
    for (int64_t c = 0; c < L.head_dim; ++c) {
      const int64_t g = c / L.group;
      out[c] = f16_to_f32(mn[g * L.group]) + f16_to_f32(sc[g * L.group]) * v_code(L, block, t, c);
    }
    return;
  }
  const uint8_t* row = block + L.v_codes + t * L.row_bytes;
  // One (scale, min) per channel group, converted once; 8 channels at a time.
  for (int64_t g = 0, c0 = 0; g < L.v_groups; ++g, c0 += L.group) {
    const int64_t c1 = c0 + L.group < L.head_dim ? c0 + L.group : L.head_dim;
    const float sf = f16_to_f32(sc[g * L.group]), mf = f16_to_f32(mn[g * L.group]);
    const __m256 s = _mm256_set1_ps(sf), m = _mm256_set1_ps(mf);
    int64_t c = c0;
    for (; c + 8 <= c1; c += 8) _mm256_storeu_ps(out + c, _mm256_fmadd_ps(s, codes8(row, c), m));
    for (; c < c1; ++c) out[c] = mf + sf * row[c];
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

// s[r * G + t] = q[r] . k[t] for r < R, t < n (k [n, d]): 2 rows x 4 tokens
// at a time, 8 independent FMA chains (one dot alone is latency-bound),
// reduced together.
inline void qk_rows(int64_t R, int64_t n, int64_t G, int64_t d, const float* const* q, const float* k, float* s) {
  const bool tiles = d % 8 == 0;
  for (int64_t r0 = 0; r0 < R; r0 += 2) {
    int64_t t0 = 0;
    if (tiles && r0 + 2 <= R) {
      const float* q0 = q[r0];
      const float* q1 = q[r0 + 1];
      for (; t0 + 4 <= n; t0 += 4) {
        __m256 x[8];
        for (int j = 0; j < 8; ++j) x[j] = _mm256_setzero_ps();
        const float* kt = k + t0 * d;
        for (int64_t c = 0; c < d; c += 8) {
          const __m256 a0 = _mm256_loadu_ps(q0 + c), a1 = _mm256_loadu_ps(q1 + c);
          for (int j = 0; j < 4; ++j) {
            const __m256 kv = _mm256_loadu_ps(kt + j * d + c);
            x[j] = _mm256_fmadd_ps(a0, kv, x[j]);
            x[4 + j] = _mm256_fmadd_ps(a1, kv, x[4 + j]);
          }
        }
        // Horizontal sums of the 8 vectors, in order.
        const __m256 h01 = _mm256_hadd_ps(x[0], x[1]), h23 = _mm256_hadd_ps(x[2], x[3]);
        const __m256 h45 = _mm256_hadd_ps(x[4], x[5]), h67 = _mm256_hadd_ps(x[6], x[7]);
        const __m256 u = _mm256_hadd_ps(h01, h23), v = _mm256_hadd_ps(h45, h67);
        const __m256 sums = _mm256_add_ps(_mm256_permute2f128_ps(u, v, 0x20), _mm256_permute2f128_ps(u, v, 0x31));
        float out[8];
        _mm256_storeu_ps(out, sums);
        for (int j = 0; j < 4; ++j) {
          s[r0 * G + t0 + j] = out[j];
          s[(r0 + 1) * G + t0 + j] = out[4 + j];
        }
      }
    }
    for (int64_t r = r0; r < r0 + 2 && r < R; ++r) {
      for (int64_t t = t0; t < n; ++t) s[r * G + t] = dot(q[r], k + t * d, d);
    }
  }
}

// acc[r] += sum_t s[r * G + t] * vrows[t] for r < R, t < n (vrows [n, d]):
// 8 channels of up to 4 rows stay in registers over the n value rows.
template <int NR>
inline void pv_slice(int64_t n, int64_t G, int64_t d, const float* s, const float* vrows, float* acc, int64_t r0, int64_t c) {
  __m256 x[NR];
  for (int j = 0; j < NR; ++j) x[j] = _mm256_loadu_ps(acc + (r0 + j) * d + c);
  for (int64_t t = 0; t < n; ++t) {
    const __m256 v = _mm256_loadu_ps(vrows + t * d + c);
    for (int j = 0; j < NR; ++j) x[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(s + (r0 + j) * G + t), v, x[j]);
  }
  for (int j = 0; j < NR; ++j) _mm256_storeu_ps(acc + (r0 + j) * d + c, x[j]);
}

inline void pv_rows(int64_t R, int64_t n, int64_t G, int64_t d, const float* s, const float* vrows, float* acc) {
  for (int64_t r0 = 0; r0 < R; r0 += 4) {
    const int64_t nr = R - r0 < 4 ? R - r0 : 4;
    int64_t c = 0;
    for (; c + 8 <= d; c += 8) {
      switch (nr) {
        case 1: pv_slice<1>(n, G, d, s, vrows, acc, r0, c); break;
        case 2: pv_slice<2>(n, G, d, s, vrows, acc, r0, c); break;
        case 3: pv_slice<3>(n, G, d, s, vrows, acc, r0, c); break;
        default: pv_slice<4>(n, G, d, s, vrows, acc, r0, c); break;
      }
    }
    for (; c < d; ++c) {
      for (int64_t r = r0; r < r0 + nr; ++r) {
        float y = acc[r * d + c];
        for (int64_t t = 0; t < n; ++t) y += s[r * G + t] * vrows[t * d + c];
        acc[r * d + c] = y;
      }
    }
  }
}

// The integer int4 path: keys . q with q * kscale quantized to int8 per
// block and row (maddubs on the raw nibbles, 8 tokens per vector), values as
// u8 token weights . int4 codes (maddubs per token pair and 16 channels).
// Group 32 and headDim a multiple of 32, at most 256. On the avx512 level
// with VNNI these blocks run the 512-bit port instead
// (kv_quant_attend_avx512.cpp, its own weight step); this one serves avx2,
// and avx512 without VNNI.
constexpr bool kHasInt4Step = true;
inline bool int4_step_fits(const QuantLayout& L) { return L.bits == 4 && L.group == 32 && L.head_dim % 32 == 0 && L.head_dim <= 256; }
inline void step_int4(const QuantLayout& L, const uint8_t* block, const QuantAttendArgs& a, int64_t b0, const int64_t* last, float* m,
                      float* l, float* acc, float* s, float* ws);

inline void softmax_block(int64_t R, int64_t n, int64_t G, int64_t d, float* s, float* m, float* l, float* acc, float* pmax = nullptr,
                          float* psum = nullptr);

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

// softmax_update (kv_quant_attend_kernel.inl) 8 lanes at a time: folds
// scores s [R, G] (n valid per row) into (m, l, acc) and turns s into the
// block's probabilities; pmax, psum (if given, [R]): each row's largest and
// summed probability in the block.
inline void softmax_block(int64_t R, int64_t n, int64_t G, int64_t d, float* s, float* m, float* l, float* acc, float* pmax, float* psum) {
  const int64_t n8 = n & ~int64_t(7);
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  for (int64_t r = 0; r < R; ++r) {
    float* sr = s + r * G;
    __m256 mx = ninf;
    for (int64_t t = 0; t < n8; t += 8) mx = _mm256_max_ps(mx, _mm256_loadu_ps(sr + t));
    float bm = hmax8(mx);
    for (int64_t t = n8; t < n; ++t) bm = sr[t] > bm ? sr[t] : bm;
    if (bm == -INFINITY) {
      for (int64_t t = 0; t < n; ++t) sr[t] = 0.0f;
      if (pmax) pmax[r] = psum[r] = 0.0f;
      continue;
    }
    const float nm = bm > m[r] ? bm : m[r];
    if (nm != m[r]) {
      const float corr = m[r] == -INFINITY ? 0.0f : expf(m[r] - nm);
      const __m256 c = _mm256_set1_ps(corr);
      float* ar = acc + r * d;
      int64_t i = 0;
      for (; i + 8 <= d; i += 8) _mm256_storeu_ps(ar + i, _mm256_mul_ps(c, _mm256_loadu_ps(ar + i)));
      for (; i < d; ++i) ar[i] *= corr;
      l[r] *= corr;
    }
    m[r] = nm;
    const __m256 nmv = _mm256_set1_ps(nm);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t t = 0; t < n8; t += 8) {
      // Masked scores (-inf) give exactly 0.
      const __m256 v = _mm256_loadu_ps(sr + t);
      const __m256 p = _mm256_and_ps(exp_neg(_mm256_sub_ps(v, nmv)), _mm256_cmp_ps(v, ninf, _CMP_NEQ_OQ));
      _mm256_storeu_ps(sr + t, p);
      sum = _mm256_add_ps(sum, p);
    }
    float total = hsum8(sum);
    for (int64_t t = n8; t < n; ++t) {
      const float p = sr[t] == -INFINITY ? 0.0f : expf(sr[t] - nm);
      sr[t] = p;
      total += p;
    }
    l[r] += total;
    if (pmax) {
      pmax[r] = bm == nm ? 1.0f : expf(bm - nm);
      psum[r] = total;
    }
  }
}

// Scores of 8 tokens (one token octet of a block, codes kc: [headDim / 8
// channel octets, 8 tokens, 4 bytes]) for rows r0 .. r0+NR-1: s[r * 32 + t0
// + tt] = alpha_r * scale * (q8_r . codes_tt) + kb_r * scale. The int32 lanes
// are the 8 tokens, so no horizontal reduction; int16 sums over 4 channel
// octets (<= 4 * 2 * 2 * 15 * 127 = 30480) cannot overflow. pf: prefetch
// two lines per channel octet from here (null: none).
template <int NR>
inline void key_rows(const uint8_t* kc, int64_t d, const int8_t* q8, int64_t r0, const float* alpha, const float* kb, float scale,
                     float* s, int64_t t0, const uint8_t* pf) {
  const __m256i nib = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  const int64_t octets = d / 8;
  __m256i acc[NR];
  for (int j = 0; j < NR; ++j) acc[j] = _mm256_setzero_si256();
  for (int64_t k0 = 0; k0 < octets; k0 += 4) {
    __m256i a16[NR];
    for (int j = 0; j < NR; ++j) a16[j] = _mm256_setzero_si256();
    const int64_t k1 = k0 + 4 < octets ? k0 + 4 : octets;
    for (int64_t k = k0; k < k1; ++k) {
      if (pf) {
        _mm_prefetch(reinterpret_cast<const char*>(pf + 128 * k), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(pf + 128 * k + 64), _MM_HINT_T0);
      }
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kc + 32 * k));
      const __m256i lo = _mm256_and_si256(x, nib), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
      for (int j = 0; j < NR; ++j) {
        int32_t ql, qh;
        std::memcpy(&ql, q8 + (r0 + j) * d + 8 * k, 4);
        std::memcpy(&qh, q8 + (r0 + j) * d + 8 * k + 4, 4);
        const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(ql)), _mm256_maddubs_epi16(hi, _mm256_set1_epi32(qh)));
        a16[j] = _mm256_add_epi16(a16[j], p);
      }
    }
    for (int j = 0; j < NR; ++j) acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(a16[j], ones));
  }
  for (int j = 0; j < NR; ++j) {
    const int64_t r = r0 + j;
    const __m256 va = _mm256_set1_ps(alpha[r] * scale), vb0 = _mm256_set1_ps(kb[r] * scale);
    _mm256_storeu_ps(s + r * 32 + t0, _mm256_fmadd_ps(va, _mm256_cvtepi32_ps(acc[j]), vb0));
  }
}


// Storage order of the 16 token pairs' weight dwords: unpacklo/hi_epi16 of
// the 32 weights give pairs 0-3, 8-11 (lo) and 4-7, 12-15 (hi).
constexpr int kPairAt[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

// acc[r] (channels g*32 .. g*32+31) += beta * (weights . codes) + vb for rows
// r0 .. r0+NR-1 of one block: per token pair, the 32 code bytes split into
// low nibbles (channels 0-15) and high (16-31), each one maddubs with the
// pair's weights broadcast; sums stay u16 over the block.
template <int NR>
inline void value_rows(const QuantLayout& L, const uint8_t* block, int64_t g, int64_t r0, int64_t d, int64_t vg, const uint8_t* wq,
                       const float* beta, const float* vb, float* acc) {
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const uint8_t* vc = block + L.v_codes + g * 32;
  __m256i lo[NR], hi[NR];
  for (int j = 0; j < NR; ++j) lo[j] = hi[j] = _mm256_setzero_si256();
  for (int i = 0; i < 16; ++i) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vc + kPairAt[i] * L.v_pair_bytes));
    const __m256i xl = _mm256_and_si256(x, nib), xh = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
    for (int j = 0; j < NR; ++j) {
      int32_t wd;
      std::memcpy(&wd, wq + ((r0 + j) * vg + g) * 64 + 4 * i, 4);
      const __m256i wv = _mm256_set1_epi32(wd);
      lo[j] = _mm256_add_epi16(lo[j], _mm256_maddubs_epi16(wv, xl));
      hi[j] = _mm256_add_epi16(hi[j], _mm256_maddubs_epi16(wv, xh));
    }
  }
  for (int j = 0; j < NR; ++j) {
    const int64_t r = r0 + j;
    const __m256 b = _mm256_set1_ps(beta[r * vg + g]), m = _mm256_set1_ps(vb[r * vg + g]);
    float* o = acc + r * d + g * 32;
    const __m256i x[4] = {_mm256_cvtepu16_epi32(_mm256_castsi256_si128(lo[j])), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(lo[j], 1)),
                          _mm256_cvtepu16_epi32(_mm256_castsi256_si128(hi[j])), _mm256_cvtepu16_epi32(_mm256_extracti128_si256(hi[j], 1))};
    for (int k = 0; k < 4; ++k) {
      _mm256_storeu_ps(o + 8 * k, _mm256_fmadd_ps(b, _mm256_cvtepi32_ps(x[k]), _mm256_add_ps(_mm256_loadu_ps(o + 8 * k), m)));
    }
  }
}

inline void step_int4(const QuantLayout& L, const uint8_t* block, const QuantAttendArgs& a, int64_t b0, const int64_t* last, float* m,
                      float* l, float* acc, float* s, float* ws) {
  constexpr int64_t G = 32;
  const int64_t d = L.head_dim, R = a.rows, vg = L.v_groups;
  float* ks = ws;                     // key scale, min: f32 [d]
  float* km = ks + d;
  float* alpha = km + d;              // per row: q quantization step
  float* kb = alpha + R;              // per row: q . kmin
  float* vsf = kb + R;                // value scale, min: f32 [vg, G]
  float* vmf = vsf + G * vg;
  float* beta = vmf + G * vg;         // [R, vg] weight quantization step
  float* vb = beta + R * vg;          // [R, vg] sum_t p * vmin
  auto* q8 = reinterpret_cast<int8_t*>(vb + R * vg);  // [R, d] q * kscale as int8
  uint8_t* wq = reinterpret_cast<uint8_t*>(q8 + R * d);  // [R, vg, 16 pairs, 4] weights (kPairAt order)
  const uint16_t* ksc = f16_at(block, L.k_scale);
  const uint16_t* kmn = f16_at(block, L.k_min);
  for (int64_t c = 0; c < d; c += 8) {
    _mm256_storeu_ps(ks + c, load_f16x8(ksc + c));
    _mm256_storeu_ps(km + c, load_f16x8(kmn + c));
  }
  // q' = q * kscale quantized to int8 per row; q . kmin in f32.
  const __m256 sign = _mm256_set1_ps(-0.0f);
  float* qk = vsf;  // q * kscale of one row [d] (vsf is filled after the scores)
  for (int64_t r = 0; r < R; ++r) {
    const float* q = a.q[r];
    __m256 mx = _mm256_setzero_ps(), bias = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c += 8) {
      const __m256 qv = _mm256_loadu_ps(q + c);
      const __m256 x = _mm256_mul_ps(qv, _mm256_loadu_ps(ks + c));
      _mm256_storeu_ps(qk + c, x);
      mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, x));
      bias = _mm256_fmadd_ps(qv, _mm256_loadu_ps(km + c), bias);
    }
    const float amax = hmax8(mx), bsum = hsum8(bias);
    const float step = amax > 0.0f ? amax / 127.0f : 1.0f;
    const __m256 inv = _mm256_set1_ps(1.0f / step);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t c = 0; c < d; c += 32) {
      __m256i i[4];
      for (int k = 0; k < 4; ++k) {
        i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(qk + c + 8 * k), inv));
      }
      const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q8 + r * d + c), _mm256_permutevar8x32_epi32(packed, order));
    }
    alpha[r] = step;
    kb[r] = bsum;
  }
  // Scores, one token octet at a time, up to 4 rows at a time. The next
  // block streams in meanwhile (the access order inside a block defeats the
  // hardware prefetcher), a few lines at a time so the line fill buffers
  // never fill up; a prefetch past the head's last block is harmless.
  const uint8_t* next = block + L.block_bytes;
  const int64_t pf_per_octet = 128 * (d / 8);  // bytes prefetched per token octet
  for (int64_t o = 0; o < G / 8; ++o) {
    const uint8_t* kc = block + L.k_codes + o * L.k_octet_bytes;
    for (int64_t r0 = 0; r0 < R; r0 += 4) {
      const uint8_t* pf = r0 == 0 && o * pf_per_octet < L.block_bytes ? next + o * pf_per_octet : nullptr;
      switch (R - r0 < 4 ? R - r0 : 4) {
        case 1: key_rows<1>(kc, d, q8, r0, alpha, kb, a.scale, s, 8 * o, pf); break;
        case 2: key_rows<2>(kc, d, q8, r0, alpha, kb, a.scale, s, 8 * o, pf); break;
        case 3: key_rows<3>(kc, d, q8, r0, alpha, kb, a.scale, s, 8 * o, pf); break;
        default: key_rows<4>(kc, d, q8, r0, alpha, kb, a.scale, s, 8 * o, pf); break;
      }
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    if (b0 + G - 1 > last[r] || a.softcap > 0.0f) {
      for (int64_t t = 0; t < G; ++t) {
        float& x = s[r * G + t];
        if (b0 + t > last[r]) x = -INFINITY;
        else if (a.softcap > 0.0f) x = a.softcap * tanhf(x / a.softcap);
      }
    }
  }
  float* pmax = alpha;  // [R] each: alpha and kb are done with once the scores are
  float* psum = kb;
  softmax_block(R, G, G, d, s, m, l, acc, pmax, psum);
  // Token weights w = p * vscale per (row, channel group g), quantized to u8
  // with step vsmax_g * f_r, f_r = max(pmax_r / 255, psum_r / 4300)
  // (vsmax_g: the block's largest value scale in group g; pmax, psum: the
  // row's largest and summed p): every weight is <= 255 and each channel's
  // sum over the block, <= 15 * (4300 + 16), fits u16 (peaked rows get the
  // full 8 bits, flat ones about 7). Per-row and per-group factors keep the
  // horizontal reductions out of the (row, group) loop. Stored per token pair
  // as a dword (w_2i, w_2i+1, w_2i, w_2i+1) to broadcast.
  const uint16_t* vsc = f16_at(block, L.v_scale);  // [vg, G]
  const uint16_t* vmn = f16_at(block, L.v_min);
  float vsmax[8];
  for (int64_t g = 0; g < vg; ++g) {
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = load_f16x8(vsc + g * G + 8 * k);
    vsmax[g] = hmax8(_mm256_max_ps(_mm256_max_ps(v[0], v[1]), _mm256_max_ps(v[2], v[3])));
    const __m256 inv = _mm256_set1_ps(vsmax[g] > 0.0f ? 1.0f / vsmax[g] : 0.0f);
    for (int k = 0; k < 4; ++k) {
      _mm256_storeu_ps(vsf + g * G + 8 * k, _mm256_mul_ps(v[k], inv));  // scales / vsmax, in [0, 1]
      _mm256_storeu_ps(vmf + g * G + 8 * k, load_f16x8(vmn + g * G + 8 * k));
    }
  }
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t r = 0; r < R; ++r) {
    __m256 pv[4];
    for (int k = 0; k < 4; ++k) pv[k] = _mm256_loadu_ps(s + r * G + 8 * k);
    const float pm = pmax[r], ps = psum[r];
    const float f = pm / 255.0f > ps / 4300.0f ? pm / 255.0f : ps / 4300.0f;
    const __m256 inv = _mm256_set1_ps(f > 0.0f ? 1.0f / f : 0.0f);
    __m256 pq[4];
    for (int k = 0; k < 4; ++k) pq[k] = _mm256_mul_ps(pv[k], inv);
    for (int64_t g = 0; g < vg; ++g) {
      __m256i i[4];
      __m256 bs = _mm256_mul_ps(pv[0], _mm256_loadu_ps(vmf + g * G));
      for (int k = 0; k < 4; ++k) {
        i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(pq[k], _mm256_loadu_ps(vsf + g * G + 8 * k)));
        if (k > 0) bs = _mm256_fmadd_ps(pv[k], _mm256_loadu_ps(vmf + g * G + 8 * k), bs);
      }
      // 32 weights in token order, then each token pair's word duplicated into a dword.
      const __m256i packed = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(_mm256_packs_epi32(i[0], i[1]), _mm256_packs_epi32(i[2], i[3])), order);
      uint8_t* dst = wq + (r * vg + g) * 64;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_unpacklo_epi16(packed, packed));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), _mm256_unpackhi_epi16(packed, packed));
      beta[r * vg + g] = vsmax[g] * f;
      vb[r * vg + g] = hsum8(bs);
    }
  }
  // Values: per channel group (32 channels: one 32-byte code vector per token
  // pair), up to 4 rows at a time.
  for (int64_t g = 0; g < vg; ++g) {
    for (int64_t r0 = 0; r0 < R; r0 += 4) {
      switch (R - r0 < 4 ? R - r0 : 4) {
        case 1: value_rows<1>(L, block, g, r0, d, vg, wq, beta, vb, acc); break;
        case 2: value_rows<2>(L, block, g, r0, d, vg, wq, beta, vb, acc); break;
        case 3: value_rows<3>(L, block, g, r0, d, vg, wq, beta, vb, acc); break;
        default: value_rows<4>(L, block, g, r0, d, vg, wq, beta, vb, acc); break;
      }
    }
  }
}

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const int64_t d = h.layout->head_dim;
  const int64_t G = h.layout->group;
  chunk_kernel(h, a, t0, t1, len, m, l, acc, scratch, scratch + G * d, scratch + G * d + a.rows * G);
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
