// Quest page scoring as a dot product over the summary rows (quest_score.h):
// the canonical 16-lane order in scalar code, AVX2 + FMA and AVX-512.
#include "quest_score.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TP_QSCORE_X86 1
#define TP_QSCORE_AVX2 "avx2,fma,f16c"
#define TP_QSCORE_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c"
#endif

#include "../core/cpu_features.h"
#include "../core/half.h"
#include "../core/thread_pool.h"

namespace tp::sparse {
namespace {
constexpr int64_t kLanes = 16;

// One row of dtype t as f32 (the scalar path).
float qs_load(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  }
}

// The canonical bound of one page for one weight pair (a = A, a + d = B).
float canonical_bound(const float* lo, const float* hi, const float* a, int64_t d) {
  const float* b = a + d;
  float l[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) {
    float acc = 0.0f;
    for (int64_t c = j; c < d; c += kLanes) {
      acc = std::fma(hi[c], a[c], acc);
      acc = std::fma(lo[c], b[c], acc);
    }
    l[j] = acc;
  }
  for (int64_t w = kLanes / 2; w >= 1; w /= 2) {
    for (int64_t j = 0; j < w; ++j) l[j] += l[j + w];
  }
  return l[0];
}

// Pairs combined: the first pair's bound, then std::max in pair order.
inline float combine(float best, float b, int64_t pair) { return pair == 0 ? b : std::max(best, b); }

#ifdef TP_QSCORE_X86
// ---- AVX-512: one zmm = the 16 lanes. ----
template <DType T>
__attribute__((target(TP_QSCORE_AVX512))) inline __m512 ld16(const void* base, int64_t i) {
  if constexpr (T == DType::F32) {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  } else {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(base) + i));
    if constexpr (T == DType::F16) return _mm512_cvtph_ps(h);
    else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

// 8 elements into lanes 0-7 (lanes 8-15 zero): the last half block when d % 16 == 8.
template <DType T>
__attribute__((target(TP_QSCORE_AVX512))) inline __m512 ld8(const void* base, int64_t i) {
  __m256 v;
  if constexpr (T == DType::F32) {
    v = _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    if constexpr (T == DType::F16) v = _mm256_cvtph_ps(h);
    else v = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  return _mm512_zextps256_ps512(v);
}

// The canonical lane reduction: l[j] += l[j + 8], += l[j + 4], += l[j + 2], l[0] += l[1].
__attribute__((target(TP_QSCORE_AVX512))) inline float reduce16(__m512 v) {
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// acc = fma(hi, A, acc); acc = fma(lo, B, acc) over the channels of one page;
// the half block (d % 16 == 8) updates lanes 0-7 only (merge-masked).
template <DType T>
__attribute__((target(TP_QSCORE_AVX512))) inline __m512 page_acc512(const void* lo, const void* hi, int64_t row, const float* a, int64_t d) {
  const int64_t full = d / kLanes * kLanes;
  __m512 acc = _mm512_setzero_ps();
  for (int64_t c = 0; c < full; c += kLanes) {
    acc = _mm512_fmadd_ps(ld16<T>(hi, row + c), _mm512_loadu_ps(a + c), acc);
    acc = _mm512_fmadd_ps(ld16<T>(lo, row + c), _mm512_loadu_ps(a + d + c), acc);
  }
  if (full < d) {
    const __mmask16 m = 0x00ff;
    acc = _mm512_mask3_fmadd_ps(ld8<T>(hi, row + full), _mm512_maskz_loadu_ps(m, a + full), acc, m);
    acc = _mm512_mask3_fmadd_ps(ld8<T>(lo, row + full), _mm512_maskz_loadu_ps(m, a + d + full), acc, m);
  }
  return acc;
}

template <DType T>
__attribute__((target(TP_QSCORE_AVX512))) void score_avx512(const void* lo, const void* hi, int64_t p0, int64_t p1, int64_t d, const float* ab,
                                                              int64_t pairs, float* scores) {
  int64_t p = p0;
  if (pairs == 1) {
    // GQA sum: four pages interleaved (four independent FMA chains).
    for (; p + 4 <= p1; p += 4) {
      const __m512 a0 = page_acc512<T>(lo, hi, (p + 0) * d, ab, d), a1 = page_acc512<T>(lo, hi, (p + 1) * d, ab, d);
      const __m512 a2 = page_acc512<T>(lo, hi, (p + 2) * d, ab, d), a3 = page_acc512<T>(lo, hi, (p + 3) * d, ab, d);
      scores[p] = reduce16(a0);
      scores[p + 1] = reduce16(a1);
      scores[p + 2] = reduce16(a2);
      scores[p + 3] = reduce16(a3);
    }
  }
  for (; p < p1; ++p) {
    float best = 0.0f;
    for (int64_t k = 0; k < pairs; ++k) best = combine(best, reduce16(page_acc512<T>(lo, hi, p * d, ab + k * 2 * d, d)), k);
    scores[p] = best;
  }
}

// ---- AVX2 + FMA: lanes 0-7 and 8-15 in two ymm. ----
template <DType T>
__attribute__((target(TP_QSCORE_AVX2))) inline __m256 ld8y(const void* base, int64_t i) {
  if constexpr (T == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    if constexpr (T == DType::F16) return _mm256_cvtph_ps(h);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

template <DType T>
__attribute__((target(TP_QSCORE_AVX2))) inline float page_bound_avx2(const void* lo, const void* hi, int64_t row, const float* a, int64_t d) {
  __m256 l0 = _mm256_setzero_ps(), l8 = _mm256_setzero_ps();  // lanes 0-7, 8-15
  int64_t c = 0;
  for (; c + kLanes <= d; c += kLanes) {
    l0 = _mm256_fmadd_ps(ld8y<T>(hi, row + c), _mm256_loadu_ps(a + c), l0);
    l0 = _mm256_fmadd_ps(ld8y<T>(lo, row + c), _mm256_loadu_ps(a + d + c), l0);
    l8 = _mm256_fmadd_ps(ld8y<T>(hi, row + c + 8), _mm256_loadu_ps(a + c + 8), l8);
    l8 = _mm256_fmadd_ps(ld8y<T>(lo, row + c + 8), _mm256_loadu_ps(a + d + c + 8), l8);
  }
  if (c < d) {  // d % 16 == 8: lanes 0-7 only
    l0 = _mm256_fmadd_ps(ld8y<T>(hi, row + c), _mm256_loadu_ps(a + c), l0);
    l0 = _mm256_fmadd_ps(ld8y<T>(lo, row + c), _mm256_loadu_ps(a + d + c), l0);
  }
  const __m256 s8 = _mm256_add_ps(l0, l8);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

template <DType T>
__attribute__((target(TP_QSCORE_AVX2))) void score_avx2(const void* lo, const void* hi, int64_t p0, int64_t p1, int64_t d, const float* ab,
                                                          int64_t pairs, float* scores) {
  for (int64_t p = p0; p < p1; ++p) {
    float best = 0.0f;
    for (int64_t k = 0; k < pairs; ++k) best = combine(best, page_bound_avx2<T>(lo, hi, p * d, ab + k * 2 * d, d), k);
    scores[p] = best;
  }
}

using ScoreFn = void (*)(const void*, const void*, int64_t, int64_t, int64_t, const float*, int64_t, float*);

ScoreFn simd_score_fn(DType t, int64_t d) {
  if (d % 8 != 0) return nullptr;
  const IsaLevel isa = active_isa();
  if (isa >= IsaLevel::Avx512) {
    switch (t) {
      case DType::F32: return score_avx512<DType::F32>;
      case DType::F16: return score_avx512<DType::F16>;
      case DType::BF16: return score_avx512<DType::BF16>;
      default: return nullptr;
    }
  }
  if (isa >= IsaLevel::Avx2 && cpu_features().fma && cpu_features().f16c) {
    switch (t) {
      case DType::F32: return score_avx2<DType::F32>;
      case DType::F16: return score_avx2<DType::F16>;
      case DType::BF16: return score_avx2<DType::BF16>;
      default: return nullptr;
    }
  }
  return nullptr;
}
#endif

void score_scalar(const void* lo, const void* hi, DType t, int64_t p0, int64_t p1, int64_t d, const float* ab, int64_t pairs,
                  float* scores) {
  thread_local std::vector<float> l, h;
  l.resize(static_cast<size_t>(d));
  h.resize(static_cast<size_t>(d));
  for (int64_t p = p0; p < p1; ++p) {
    for (int64_t c = 0; c < d; ++c) {
      l[c] = qs_load(lo, t, p * d + c);
      h[c] = qs_load(hi, t, p * d + c);
    }
    scores[p] = bound_page_f32(l.data(), h.data(), ab, pairs, d);
  }
}
}  // namespace

void bound_weights(const float* const* q, int64_t rows, int64_t d, GqaCombine gqa, float* ab) {
  if (gqa == GqaCombine::Sum) {
    float* a = ab;
    float* b = ab + d;
    for (int64_t c = 0; c < d; ++c) {
      a[c] = std::max(q[0][c], 0.0f);
      b[c] = std::min(q[0][c], 0.0f);
    }
    for (int64_t r = 1; r < rows; ++r) {
      for (int64_t c = 0; c < d; ++c) {
        a[c] += std::max(q[r][c], 0.0f);
        b[c] += std::min(q[r][c], 0.0f);
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* a = ab + r * 2 * d;
    for (int64_t c = 0; c < d; ++c) {
      a[c] = std::max(q[r][c], 0.0f);
      a[d + c] = std::min(q[r][c], 0.0f);
    }
  }
}

float bound_page_f32(const float* lo, const float* hi, const float* ab, int64_t pairs, int64_t d) {
  float best = 0.0f;
  for (int64_t k = 0; k < pairs; ++k) best = combine(best, canonical_bound(lo, hi, ab + k * 2 * d, d), k);
  return best;
}

void score_rows(const void* lo, const void* hi, DType t, int64_t pages, int64_t d, const float* ab, int64_t pairs, float* scores) {
  constexpr int64_t kChunk = 256;  // pages per pool task
  const int64_t chunks = (pages + kChunk - 1) / kChunk;
  auto run = [&](int64_t i, int) {
    const int64_t a = i * kChunk, b = std::min(pages, a + kChunk);
#ifdef TP_QSCORE_X86
    if (const ScoreFn fn = simd_score_fn(t, d)) {
      fn(lo, hi, a, b, d, ab, pairs, scores);
      return;
    }
#endif
    score_scalar(lo, hi, t, a, b, d, ab, pairs, scores);
  };
  // Small heads stay on the calling thread (waking the pool costs more).
  if (chunks > 1 && pages * d * pairs >= (int64_t(1) << 18)) ThreadPool::instance().parallel_for(chunks, run);
  else for (int64_t i = 0; i < chunks; ++i) run(i, 0);
}

}  // namespace tp::sparse
