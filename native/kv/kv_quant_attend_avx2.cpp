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

// Codes of channels c .. c+7 of one row, as floats.
inline __m256 codes8(const QuantLayout& L, const uint8_t* row, int64_t c) {
  __m128i bytes;
  if (L.bits == 8) {
    int64_t x;
    std::memcpy(&x, row + c, 8);
    bytes = _mm_cvtsi64_si128(x);
  } else {
    int32_t x;
    std::memcpy(&x, row + c / 2, 4);
    const __m128i packed = _mm_cvtsi32_si128(x);
    const __m128i mask = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(packed, mask);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
    bytes = _mm_unpacklo_epi8(lo, hi);  // low nibble first: channel order
  }
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}

inline const uint16_t* f16_at(const uint8_t* block, int64_t off) { return reinterpret_cast<const uint16_t*>(block + off); }

inline uint8_t code_at(const QuantLayout& L, const uint8_t* row, int64_t c) {
  if (L.bits == 8) return row[c];
  return (c & 1) == 0 ? (row[c >> 1] & 0x0f) : (row[c >> 1] >> 4);
}

inline void dequant_k_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) {
  const uint8_t* row = block + L.k_codes + t * L.row_bytes;
  const uint16_t* mn = f16_at(block, L.k_min);
  const uint16_t* sc = f16_at(block, L.k_scale);
  int64_t c = 0;
  for (; c + 8 <= L.head_dim; c += 8) {
    _mm256_storeu_ps(out + c, _mm256_fmadd_ps(load_f16x8(sc + c), codes8(L, row, c), load_f16x8(mn + c)));
  }
  for (; c < L.head_dim; ++c) out[c] = f16_to_f32(mn[c]) + f16_to_f32(sc[c]) * code_at(L, row, c);
}

inline void dequant_v_row(const QuantLayout& L, const uint8_t* block, int64_t t, float* out) {
  const uint8_t* row = block + L.v_codes + t * L.row_bytes;
  const uint16_t* mn = f16_at(block, L.v_min) + t * L.v_groups;
  const uint16_t* sc = f16_at(block, L.v_scale) + t * L.v_groups;
  if (L.group % 8 != 0) {
    for (int64_t c = 0; c < L.head_dim; ++c) out[c] = f16_to_f32(mn[c / L.group]) + f16_to_f32(sc[c / L.group]) * code_at(L, row, c);
    return;
  }
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

#include "kv_quant_attend_kernel.inl"

void run_chunk(const QuantHeadView& h, const QuantAttendArgs& a, int64_t t0, int64_t t1, int64_t len, float* m, float* l, float* acc,
               float* scratch) {
  const int64_t d = h.layout->head_dim;
  chunk_kernel(h, a, t0, t1, len, m, l, acc, scratch, scratch + d, scratch + 2 * d);
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
