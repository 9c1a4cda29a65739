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
