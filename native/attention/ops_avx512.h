// AVX-512 vector operations for the attention kernel template. Included only
// from attention_avx512.cpp, after its target pragma, inside its namespace.
struct Ops {
  static constexpr int W = 16;
  static constexpr int QV = 4;   // prefill: query vectors per micro tile (64 rows)
  static constexpr int DR = 4;   // decode: query rows per score pass
  static constexpr int SACC = 16;  // decode: score accumulators (rows x keys) per reduction
  // decode: query rows per P.V pass. Two rows x 8 vectors keep a whole
  // 128-wide f32 value row per pass, so V is read row after row; four rows
  // (4 x 4 vectors, half rows) were 20-30% slower for GQA on Zen 5.
  static constexpr int PR = 2;
  static constexpr int PV_ACC = 16;  // decode: P.V accumulator registers (rows x vectors)
  static constexpr int DV = 4;   // prefill: output vectors per P.V micro tile
  using V = __m512;

  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static __mmask16 tail(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(tail(n), p); }
  static V load_f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static V load_f16_n(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail(n), p)); }
  static V widen_bf16(__m256i x) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(x), 16)); }
  static V load_bf16(const uint16_t* p) { return widen_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static V load_bf16_n(const uint16_t* p, int n) { return widen_bf16(_mm256_maskz_loadu_epi16(tail(n), p)); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static float hsum(V v) { return _mm512_reduce_add_ps(v); }
  static float hmax(V v) { return _mm512_reduce_max_ps(v); }

  // out[i] = hsum(v[i]) for i < 16, by a transpose-add tree (46 instructions
  // instead of 16 separate reductions).
  static void hsum16(const V* v, float* out) {
    V s[8], t[4];
    for (int k = 0; k < 8; ++k) {  // 128-bit lanes: [a0+a2, a1+a3, b0+b2, b1+b3]
      s[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));
    }
    for (int k = 0; k < 4; ++k) {  // lane L of t[k] holds 4 partials of v[4k + L]
      t[k] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0x88), _mm512_shuffle_f32x4(s[2 * k], s[2 * k + 1], 0xDD));
    }
    const V v01 = _mm512_add_ps(_mm512_unpacklo_ps(t[0], t[1]), _mm512_unpackhi_ps(t[0], t[1]));
    const V v23 = _mm512_add_ps(_mm512_unpacklo_ps(t[2], t[3]), _mm512_unpackhi_ps(t[2], t[3]));
    // r[4L + e] = total of v[4e + L]
    const V r = _mm512_add_ps(_mm512_shuffle_ps(v01, v23, 0x44), _mm512_shuffle_ps(v01, v23, 0xEE));
    const __m512i to_natural = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(to_natural, r));
  }

  static void hsum_acc(const V* v, float* out) { hsum16(v, out); }

  // e^x, relative error ~2e-7; x below -87 (including -inf) gives exactly 0.
  static V exp(V x) {
    const V lo = set1(-87.0f);
    const __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_min_ps(_mm512_max_ps(x, lo), set1(88.0f));
    const V n = _mm512_roundscale_ps(_mm512_mul_ps(x, set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    V r = _mm512_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    V p = set1(1.9875691500e-4f);
    p = fmadd(p, r, set1(1.3981999507e-3f));
    p = fmadd(p, r, set1(8.3334519073e-3f));
    p = fmadd(p, r, set1(4.1665795894e-2f));
    p = fmadd(p, r, set1(1.6666665459e-1f));
    p = fmadd(p, r, set1(5.0000001201e-1f));
    p = fmadd(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, set1(1.0f)));
    const V result = _mm512_scalef_ps(p, n);
    return _mm512_maskz_mov_ps(static_cast<__mmask16>(~underflow), result);
  }
};
