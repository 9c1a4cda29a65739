// The roofline decode loop for AVX2 + FMA + F16C (see roofline_decode.h).
// Library headers come before the target pragma so none of their code is
// compiled for AVX2; only the loop below is, in its own namespace.
#include <cmath>
#include <cstdint>

#include "roofline_decode.h"

#if defined(__x86_64__) && !defined(TOKENPRESS_DISABLE_SIMD)
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include <immintrin.h>

namespace tp::roofline_avx2 {

struct W {
  static constexpr int N = 8;
  static constexpr int kRegs = 16;
  using V = __m256;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static V load_f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static void store(float* p, V x) { _mm256_store_ps(p, x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static float hsum(V x) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  static float hmax(V x) {
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  // r[i] = sum of the lanes of x[i], i < 8: a transposing add tree.
  static V l1(V a, V b) { return _mm256_add_ps(_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b)); }
  static V l2(V a, V b) {
    const __m256d ad = _mm256_castps_pd(a), bd = _mm256_castps_pd(b);
    return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(ad, bd)), _mm256_castpd_ps(_mm256_unpackhi_pd(ad, bd)));
  }
  static V reduce_n(const V* x) {
    const V z0 = l2(l1(x[0], x[1]), l1(x[2], x[3]));
    const V z1 = l2(l1(x[4], x[5]), l1(x[6], x[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(z0, z1, 0x20), _mm256_permute2f128_ps(z0, z1, 0x31));
  }
  // e^x for x <= 0 (Cephes expf polynomial); x is clamped at -87.3, so
  // 2^n stays a normal float (n >= -126) and the result is ~1e-38, not 0.
  static V exp(V x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
    const V n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    V p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    const V y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  }
};

#include "roofline_decode_kernel.inl"

}  // namespace tp::roofline_avx2

#pragma GCC pop_options

namespace tp {
void roofline_head_avx2(const RooflineHead& h) { roofline_avx2::run_head(h); }
}  // namespace tp
#else
namespace tp {
// Never selected: cpu_features reports no SIMD level on this target.
void roofline_head_avx2(const RooflineHead& h) { roofline_head_scalar(h); }
}  // namespace tp
#endif
