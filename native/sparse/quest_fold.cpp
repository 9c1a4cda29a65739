// Quest summaries: folding key rows into a page's element-wise min / max,
// and storing a finished page's bounds (quest.h). min / max are exact in any
// order, so every path here gives the same bits as the scalar loop.
#include "quest.h"

#include <algorithm>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TP_QUEST_FOLD_X86 1
#endif

#include "../core/cpu_features.h"
#include "../core/half.h"

namespace tp::sparse {




#ifdef TP_QUEST_FOLD_X86
namespace {
// Eight channels of a row as f32: f32 loaded, f16 decoded by F16C (exact).
__attribute__((target("avx2,f16c"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,f16c"))) inline __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// The fold for f32 or f16 rows, 32 channels (four vectors) at a time: four
// independent min / max chains per row, where one chain per 8 channels
// waited on the previous row's result (latency-bound: 3x slower).
// _mm256_min_ps(x, lo) is std::min(lo, x) and _mm256_max_ps(x, hi) is
// std::max(hi, x), NaN included, so the result is the scalar loop's.
// d a multiple of 8.
template <typename T>
__attribute__((target("avx2,f16c"))) void fold_avx2(const T* rows, int64_t n, int64_t d, int64_t stride, float* lo, float* hi,
                                                     bool init) {
  const int64_t r0 = init ? 1 : 0;
  int64_t c = 0;
  for (; c + 32 <= d; c += 32) {
    __m256 l[4], h[4];
    for (int k = 0; k < 4; ++k) {
      l[k] = init ? load8(rows + c + 8 * k) : _mm256_loadu_ps(lo + c + 8 * k);
      h[k] = init ? l[k] : _mm256_loadu_ps(hi + c + 8 * k);
    }
    for (int64_t i = r0; i < n; ++i) {
      for (int k = 0; k < 4; ++k) {
        const __m256 x = load8(rows + i * stride + c + 8 * k);
        l[k] = _mm256_min_ps(x, l[k]);
        h[k] = _mm256_max_ps(x, h[k]);
      }
    }
    for (int k = 0; k < 4; ++k) {
      _mm256_storeu_ps(lo + c + 8 * k, l[k]);
      _mm256_storeu_ps(hi + c + 8 * k, h[k]);
    }
  }
  for (; c < d; c += 8) {
    __m256 l = init ? load8(rows + c) : _mm256_loadu_ps(lo + c);
    __m256 h = init ? l : _mm256_loadu_ps(hi + c);
    for (int64_t i = r0; i < n; ++i) {
      const __m256 x = load8(rows + i * stride + c);
      l = _mm256_min_ps(x, l);
      h = _mm256_max_ps(x, h);
    }
    _mm256_storeu_ps(lo + c, l);
    _mm256_storeu_ps(hi + c, h);
  }
}

// The same, 64 channels (four zmm) at a time on AVX-512 (half the
// instructions per row: a decode step's append folds one row per KV head);
// channels past the last 64 go to fold_avx2.
#define TP_FOLD_AVX512 "avx512f,avx2,f16c"
__attribute__((target(TP_FOLD_AVX512))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target(TP_FOLD_AVX512))) inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
template <typename T>
__attribute__((target(TP_FOLD_AVX512))) void fold_avx512(const T* rows, int64_t n, int64_t d, int64_t stride, float* lo, float* hi,
                                                        bool init) {
  const int64_t r0 = init ? 1 : 0;
  int64_t c = 0;
  for (; c + 64 <= d; c += 64) {
    __m512 l[4], h[4];
    for (int k = 0; k < 4; ++k) {
      l[k] = init ? load16(rows + c + 16 * k) : _mm512_loadu_ps(lo + c + 16 * k);
      h[k] = init ? l[k] : _mm512_loadu_ps(hi + c + 16 * k);
    }
    for (int64_t i = r0; i < n; ++i) {
      for (int k = 0; k < 4; ++k) {
        const __m512 x = load16(rows + i * stride + c + 16 * k);
        l[k] = _mm512_min_ps(x, l[k]);
        h[k] = _mm512_max_ps(x, h[k]);
      }
    }
    for (int k = 0; k < 4; ++k) {
      _mm512_storeu_ps(lo + c + 16 * k, l[k]);
      _mm512_storeu_ps(hi + c + 16 * k, h[k]);
    }
  }
  if (c < d) fold_avx2(rows + c, n, d - c, stride, lo + c, hi + c, init);
}

// fold_avx512 or fold_avx2 by the active ISA.
// f16 rows folded as 16-bit integers, for AVX2-only cores (where converting
// every element to f32 made the fold cost a third of a 512-token append).
// f16 bits are sign-magnitude: non-negative values order like signed int16,
// negative ones in reverse. So per lane, three integer extremes give the
// exact f16 extremes: max = the signed max if it is >= 0 (some value is
// non-negative), else the unsigned min (all negative: the smallest
// magnitude); min = the unsigned max if its sign bit is set (some value is
// negative: the largest magnitude), else the unsigned min. Inputs are
// finite (append checks), so no NaN ordering is needed; +0 and -0 compare
// equal as floats, and either may come out.
__attribute__((target("avx2,f16c"))) void fold_f16_bits_avx2(const uint16_t* rows, int64_t n, int64_t d, int64_t stride, float* lo,
                                                             float* hi, bool init) {
  for (int64_t c = 0; c < d; c += 16) {
    __m256i smax = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + c)), umin = smax, umax = smax;
    for (int64_t i = 1; i < n; ++i) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows + i * stride + c));
      smax = _mm256_max_epi16(smax, x);
      umin = _mm256_min_epu16(umin, x);
      umax = _mm256_max_epu16(umax, x);
    }
    const __m256i zero = _mm256_setzero_si256();
    const __m256i h16 = _mm256_blendv_epi8(smax, umin, _mm256_cmpgt_epi16(zero, smax));  // smax < 0: all negative
    const __m256i l16 = _mm256_blendv_epi8(umin, umax, _mm256_cmpgt_epi16(zero, umax));  // umax sign bit: some negative
    __m256 h[2] = {_mm256_cvtph_ps(_mm256_castsi256_si128(h16)), _mm256_cvtph_ps(_mm256_extracti128_si256(h16, 1))};
    __m256 l[2] = {_mm256_cvtph_ps(_mm256_castsi256_si128(l16)), _mm256_cvtph_ps(_mm256_extracti128_si256(l16, 1))};
    for (int k = 0; k < 2; ++k) {
      if (!init) {
        l[k] = _mm256_min_ps(l[k], _mm256_loadu_ps(lo + c + 8 * k));
        h[k] = _mm256_max_ps(h[k], _mm256_loadu_ps(hi + c + 8 * k));
      }
      _mm256_storeu_ps(lo + c + 8 * k, l[k]);
      _mm256_storeu_ps(hi + c + 8 * k, h[k]);
    }
  }
}

// copy_fold_rows for f16 rows on AVX2: the integer fold above, fused with
// the copy. Column-major over the rows: for each 64 channels (4 vectors),
// every row's vectors are loaded once, stored to dst and folded from the
// register (3 integer ops), with 12 accumulators live. No per-element finite
// check: a non-finite f16 is an exponent of all ones, so a positive one is
// the signed max (>= 0x7c00, above every finite non-negative) and a negative
// one the unsigned max (>= 0xfc00); the accumulators say it at the end.
template <int V>
__attribute__((target("avx2,f16c"))) inline bool copy_fold_f16_cols(const uint16_t* src, int64_t ss, uint16_t* dst, int64_t n,
                                                                    int64_t d, int64_t c, float* lo, float* hi, bool init) {
  __m256i smax[V], umin[V], umax[V];
  for (int k = 0; k < V; ++k) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c + 16 * k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c + 16 * k), x);
    smax[k] = umin[k] = umax[k] = x;
  }
  for (int64_t i = 1; i < n; ++i) {
    const uint16_t* s = src + i * ss + c;
    uint16_t* o = dst + i * d + c;
    for (int k = 0; k < V; ++k) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 16 * k));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 16 * k), x);
      smax[k] = _mm256_max_epi16(smax[k], x);
      umin[k] = _mm256_min_epu16(umin[k], x);
      umax[k] = _mm256_max_epu16(umax[k], x);
    }
  }
  const __m256i zero = _mm256_setzero_si256(), pos_inf_less1 = _mm256_set1_epi16(0x7bff);
  const __m256i neg_inf = _mm256_set1_epi16(static_cast<short>(0xfc00));
  __m256i bad = zero;
  for (int k = 0; k < V; ++k) {
    bad = _mm256_or_si256(bad, _mm256_cmpgt_epi16(smax[k], pos_inf_less1));                            // a +inf / +NaN
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi16(_mm256_max_epu16(umax[k], neg_inf), umax[k]));       // a -inf / -NaN
  }
  if (!_mm256_testz_si256(bad, bad)) return false;
  for (int k = 0; k < V; ++k) {
    const __m256i h16 = _mm256_blendv_epi8(smax[k], umin[k], _mm256_cmpgt_epi16(zero, smax[k]));  // as fold_f16_bits_avx2
    const __m256i l16 = _mm256_blendv_epi8(umin[k], umax[k], _mm256_cmpgt_epi16(zero, umax[k]));
    __m256 h[2] = {_mm256_cvtph_ps(_mm256_castsi256_si128(h16)), _mm256_cvtph_ps(_mm256_extracti128_si256(h16, 1))};
    __m256 l[2] = {_mm256_cvtph_ps(_mm256_castsi256_si128(l16)), _mm256_cvtph_ps(_mm256_extracti128_si256(l16, 1))};
    for (int j = 0; j < 2; ++j) {
      float* lp = lo + c + 16 * k + 8 * j;
      float* hp = hi + c + 16 * k + 8 * j;
      if (!init) {
        l[j] = _mm256_min_ps(l[j], _mm256_loadu_ps(lp));
        h[j] = _mm256_max_ps(h[j], _mm256_loadu_ps(hp));
      }
      _mm256_storeu_ps(lp, l[j]);
      _mm256_storeu_ps(hp, h[j]);
    }
  }
  return true;
}
// Whole pages of f16 rows: per page and 64 channels, the copy and integer
// fold above, with the page's bounds written as f16 rows (the exact extremes:
// what bounds_to_f16 of their f32 values gives) straight into the summary.
// n rows = pages * P; lo16, hi16 [pages, d]. false: a non-finite value.
template <int V>
__attribute__((target("avx2,f16c"))) inline __m256i copy_fold_f16_page_cols(const uint16_t* src, int64_t ss, uint16_t* dst, int64_t P,
                                                                           int64_t d, int64_t c, uint16_t* lo16, uint16_t* hi16) {
  __m256i smax[V], umin[V], umax[V];
  for (int k = 0; k < V; ++k) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + c + 16 * k));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c + 16 * k), x);
    smax[k] = umin[k] = umax[k] = x;
  }
  for (int64_t i = 1; i < P; ++i) {
    const uint16_t* s = src + i * ss + c;
    uint16_t* o = dst + i * d + c;
    for (int k = 0; k < V; ++k) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 16 * k));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 16 * k), x);
      smax[k] = _mm256_max_epi16(smax[k], x);
      umin[k] = _mm256_min_epu16(umin[k], x);
      umax[k] = _mm256_max_epu16(umax[k], x);
    }
  }
  const __m256i zero = _mm256_setzero_si256(), pos_inf_less1 = _mm256_set1_epi16(0x7bff);
  const __m256i neg_inf = _mm256_set1_epi16(static_cast<short>(0xfc00));
  __m256i bad = zero;
  for (int k = 0; k < V; ++k) {
    bad = _mm256_or_si256(bad, _mm256_cmpgt_epi16(smax[k], pos_inf_less1));
    bad = _mm256_or_si256(bad, _mm256_cmpeq_epi16(_mm256_max_epu16(umax[k], neg_inf), umax[k]));
    const __m256i h16 = _mm256_blendv_epi8(smax[k], umin[k], _mm256_cmpgt_epi16(zero, smax[k]));
    const __m256i l16 = _mm256_blendv_epi8(umin[k], umax[k], _mm256_cmpgt_epi16(zero, umax[k]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo16 + c + 16 * k), l16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi16 + c + 16 * k), h16);
  }
  return bad;
}
__attribute__((target("avx2,f16c"))) bool copy_fold_f16_pages_avx2(const uint16_t* src, int64_t ss, uint16_t* dst, int64_t pages,
                                                                   int64_t P, int64_t d, uint16_t* lo16, uint16_t* hi16) {
  __m256i bad = _mm256_setzero_si256();
  for (int64_t p = 0; p < pages; ++p) {
    const uint16_t* s = src + p * P * ss;
    uint16_t* o = dst + p * P * d;
    int64_t c = 0;
    for (; c + 64 <= d; c += 64) bad = _mm256_or_si256(bad, copy_fold_f16_page_cols<4>(s, ss, o, P, d, c, lo16 + p * d, hi16 + p * d));
    for (; c < d; c += 16) bad = _mm256_or_si256(bad, copy_fold_f16_page_cols<1>(s, ss, o, P, d, c, lo16 + p * d, hi16 + p * d));
    if (!_mm256_testz_si256(bad, bad)) return false;
  }
  return true;
}

// d a multiple of 16, n >= 1.
__attribute__((target("avx2,f16c"))) bool copy_fold_f16_avx2(const uint16_t* src, int64_t ss, uint16_t* dst, int64_t n, int64_t d,
                                                             float* lo, float* hi, bool init) {
  int64_t c = 0;
  bool ok = true;
  for (; c + 64 <= d && ok; c += 64) ok = copy_fold_f16_cols<4>(src, ss, dst, n, d, c, lo, hi, init);
  for (; c < d && ok; c += 16) ok = copy_fold_f16_cols<1>(src, ss, dst, n, d, c, lo, hi, init);
  return ok;
}

// copy_fold_rows for f32 rows on AVX2: copy, exponent check and min / max
// from one load per vector (8 channels x 4 vectors a step). minps / maxps
// drop a NaN, so the finite check stays per element here.
template <int V>
__attribute__((target("avx2"))) inline void copy_fold_f32_cols(const float* src, int64_t ss, float* dst, int64_t n, int64_t d,
                                                               int64_t c, float* lo, float* hi, bool init, __m256i& bad) {
  const __m256i m = _mm256_set1_epi32(0x7f800000);
  __m256 l[V], h[V];
  for (int k = 0; k < V; ++k) {
    if (init) {
      const __m256 x = _mm256_loadu_ps(src + c + 8 * k);
      _mm256_storeu_ps(dst + c + 8 * k, x);
      bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), m), m));
      l[k] = h[k] = x;
    } else {
      l[k] = _mm256_loadu_ps(lo + c + 8 * k);
      h[k] = _mm256_loadu_ps(hi + c + 8 * k);
    }
  }
  for (int64_t i = init ? 1 : 0; i < n; ++i) {
    for (int k = 0; k < V; ++k) {
      const __m256 x = _mm256_loadu_ps(src + i * ss + c + 8 * k);
      _mm256_storeu_ps(dst + i * d + c + 8 * k, x);
      bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(x), m), m));
      l[k] = _mm256_min_ps(x, l[k]);  // std::min(lo, x), as fold_avx2
      h[k] = _mm256_max_ps(x, h[k]);
    }
  }
  for (int k = 0; k < V; ++k) {
    _mm256_storeu_ps(lo + c + 8 * k, l[k]);
    _mm256_storeu_ps(hi + c + 8 * k, h[k]);
  }
}
// d a multiple of 8, n >= 1.
__attribute__((target("avx2"))) bool copy_fold_f32_avx2(const float* src, int64_t ss, float* dst, int64_t n, int64_t d, float* lo,
                                                        float* hi, bool init) {
  __m256i bad = _mm256_setzero_si256();
  int64_t c = 0;
  for (; c + 32 <= d; c += 32) copy_fold_f32_cols<4>(src, ss, dst, n, d, c, lo, hi, init, bad);
  for (; c < d; c += 8) copy_fold_f32_cols<1>(src, ss, dst, n, d, c, lo, hi, init, bad);
  return _mm256_testz_si256(bad, bad) != 0;
}

template <typename T>
void fold_simd(const T* rows, int64_t n, int64_t d, int64_t stride, float* lo, float* hi, bool init) {
  if (active_isa() >= IsaLevel::Avx512) fold_avx512(rows, n, d, stride, lo, hi, init);
  else fold_avx2(rows, n, d, stride, lo, hi, init);
}

// bounds_to_f16, 8 at a time: round to nearest even, as f32_to_f16 does
// (the bounds of an f16 cache are f16 values already: exact either way).
__attribute__((target("avx2,f16c"))) void to_f16_avx2(const float* x, int64_t d, uint16_t* out) {
  for (int64_t c = 0; c < d; c += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + c), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + c), h);
  }
}
}  // namespace
#endif

void fold_rows(const float* rows, int64_t n, int64_t d, float* lo, float* hi, bool init) {
  if (n <= 0) return;
#ifdef TP_QUEST_FOLD_X86
  if (d % 8 == 0 && active_isa() >= IsaLevel::Avx2) {
    fold_simd(rows, n, d, d, lo, hi, init);
    return;
  }
#endif
  int64_t r = 0;
  if (init) {
    std::memcpy(lo, rows, static_cast<size_t>(d) * sizeof(float));
    std::memcpy(hi, rows, static_cast<size_t>(d) * sizeof(float));
    r = 1;
  }
  for (; r < n; ++r) {
    const float* x = rows + r * d;
    for (int64_t c = 0; c < d; ++c) {
      lo[c] = std::min(lo[c], x[c]);
      hi[c] = std::max(hi[c], x[c]);
    }
  }
}

void fold_stored_rows(const void* rows, DType t, int64_t n, int64_t d, int64_t stride, float* lo, float* hi, bool init) {
  if (n <= 0) return;
#ifdef TP_QUEST_FOLD_X86
  if (t != DType::BF16 && d % 8 == 0 && active_isa() >= IsaLevel::Avx2) {
    if (t == DType::F32) fold_simd(static_cast<const float*>(rows), n, d, stride, lo, hi, init);
    else if (d % 16 == 0 && active_isa() < IsaLevel::Avx512) fold_f16_bits_avx2(static_cast<const uint16_t*>(rows), n, d, stride, lo, hi, init);
    else fold_simd(static_cast<const uint16_t*>(rows), n, d, stride, lo, hi, init);
    return;
  }
#endif
  auto at = [&](int64_t r, int64_t c) {
    const int64_t i = r * stride + c;
    switch (t) {
      case DType::F32: return static_cast<const float*>(rows)[i];
      case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(rows)[i]);
      default: return bf16_to_f32(static_cast<const uint16_t*>(rows)[i]);
    }
  };
  int64_t r = 0;
  if (init) {
    for (int64_t c = 0; c < d; ++c) lo[c] = hi[c] = at(0, c);
    r = 1;
  }
  for (; r < n; ++r) {
    for (int64_t c = 0; c < d; ++c) {
      const float x = at(r, c);
      lo[c] = std::min(lo[c], x);
      hi[c] = std::max(hi[c], x);
    }
  }
}

bool copy_fold_rows(const void* src, int64_t src_stride, void* dst, DType t, int64_t n, int64_t d, float* lo, float* hi, bool init) {
  if (n <= 0) return true;
#ifdef TP_QUEST_FOLD_X86
  // The integer f16 fold on every AVX2+ core here (AVX-512 included: from
  // registers it is 3 integer ops per 16 channels against 2 conversions and
  // 2 min / max): the same bits as the f32 fold (quest_fold_bits.test).
  if (t == DType::F16 && d % 16 == 0 && active_isa() >= IsaLevel::Avx2 && cpu_features().f16c) {
    return copy_fold_f16_avx2(static_cast<const uint16_t*>(src), src_stride, static_cast<uint16_t*>(dst), n, d, lo, hi, init);
  }
  if (t == DType::F32 && d % 8 == 0 && active_isa() >= IsaLevel::Avx2) {
    return copy_fold_f32_avx2(static_cast<const float*>(src), src_stride, static_cast<float*>(dst), n, d, lo, hi, init);
  }
#endif
  // Elsewhere: check and copy each row, then fold the copied rows.
  const size_t es = dtype_size(t), row = static_cast<size_t>(d) * es;
  const uint32_t mask = t == DType::F32 ? 0x7f800000u : t == DType::F16 ? 0x7c00u : 0x7f80u;
  for (int64_t r = 0; r < n; ++r) {
    const auto* s = static_cast<const uint8_t*>(src) + static_cast<size_t>(r * src_stride) * es;
    uint32_t any = 0;
    for (int64_t c = 0; c < d; ++c) {
      uint32_t b = 0;
      std::memcpy(&b, s + static_cast<size_t>(c) * es, es);
      any |= static_cast<uint32_t>((b & mask) == mask);
    }
    if (any) return false;
    std::memcpy(static_cast<uint8_t*>(dst) + static_cast<size_t>(r) * row, s, row);
  }
  fold_stored_rows(dst, t, n, d, d, lo, hi, init);
  return true;
}

bool copy_fold_pages_f16_available(int64_t d) {
#ifdef TP_QUEST_FOLD_X86
  return d % 16 == 0 && active_isa() >= IsaLevel::Avx2 && cpu_features().f16c;
#else
  (void)d;
  return false;
#endif
}

bool copy_fold_pages_f16(const uint16_t* src, int64_t src_stride, uint16_t* dst, int64_t pages, int64_t P, int64_t d, uint16_t* lo16,
                         uint16_t* hi16) {
#ifdef TP_QUEST_FOLD_X86
  if (copy_fold_pages_f16_available(d)) return copy_fold_f16_pages_avx2(src, src_stride, dst, pages, P, d, lo16, hi16);
#endif
  (void)src, (void)src_stride, (void)dst, (void)pages, (void)P, (void)lo16, (void)hi16;
  return false;
}

void bounds_to_f16(const float* x, int64_t d, uint16_t* out) {
  int64_t c = 0;
#ifdef TP_QUEST_FOLD_X86
  if (active_isa() >= IsaLevel::Avx2) {
    c = d - d % 8;
    to_f16_avx2(x, c, out);
  }
#endif
  for (; c < d; ++c) out[c] = f32_to_f16(x[c]);
}

}  // namespace tp::sparse
