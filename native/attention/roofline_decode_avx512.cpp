// The roofline decode loop for AVX-512 (see roofline_decode.h). Library
// headers come before the target pragma so none of their code is compiled
// for AVX-512; only the loop below is, in its own namespace.
#include <cmath>
#include <cstdint>

#include "roofline_decode.h"

#if defined(__x86_64__) && !defined(TOKENPRESS_DISABLE_SIMD)
#pragma GCC push_options
// GCC 12 flags _mm512_undefined_ps inside its own intrinsic headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
#include <immintrin.h>

namespace tp::roofline_avx512 {

struct W {
  static constexpr int N = 16;
  static constexpr int kRegs = 32;
  using V = __m512;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static V load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static void store(float* p, V x) { _mm512_store_ps(p, x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static float hsum(V x) {
    const __m256 s = _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  static float hmax(V x) {
    const __m256 s = _mm256_max_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
  }
  // r[i] = sum of the lanes of x[i], i < 16: a transposing add tree
  // (45 shuffles and adds for 16 sums instead of 16 horizontal sums).
  static V l1(V a, V b) { return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)); }
  static V l2(V a, V b) {
    const __m512d ad = _mm512_castps_pd(a), bd = _mm512_castps_pd(b);
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(ad, bd)), _mm512_castpd_ps(_mm512_unpackhi_pd(ad, bd)));
  }
  static V l3(V a, V b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  static V reduce_n(const V* x) {
    // Per 128-bit lane after l2: the lane's partial sums of 4 consecutive rows.
    const V z0 = l2(l1(x[0], x[1]), l1(x[2], x[3]));
    const V z1 = l2(l1(x[4], x[5]), l1(x[6], x[7]));
    const V z2 = l2(l1(x[8], x[9]), l1(x[10], x[11]));
    const V z3 = l2(l1(x[12], x[13]), l1(x[14], x[15]));
    return l3(l3(z0, z1), l3(z2, z3));
  }
  // e^x for x <= 0 (Cephes expf polynomial, ~1 ulp); x below -87.3 gives ~0.
  static V exp(V x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    const V n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    V p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const V y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n);
  }
};

#include "roofline_decode_kernel.inl"

}  // namespace tp::roofline_avx512

#pragma GCC diagnostic pop
#pragma GCC pop_options

namespace tp {
void roofline_head_avx512(const RooflineHead& h) { roofline_avx512::run_head(h); }
}  // namespace tp
#else
namespace tp {
// Never selected: cpu_features reports no SIMD level on this target.
void roofline_head_avx512(const RooflineHead& h) { roofline_head_scalar(h); }
}  // namespace tp
#endif
