// Quest page summaries, page scoring and top-k page selection (quest.h).
#include "quest.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TP_QUEST_X86 1
#endif

#include "../core/checked_math.h"
#include "../core/cpu_features.h"
#include "../core/thread_pool.h"
#include "../core/half.h"
#include "../kv/kv_finite.h"

namespace tp::sparse {
using kv::js_number;
namespace {

float load_elem(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
  }
}

void store_elem(void* base, DType t, int64_t i, float x) {
  switch (t) {
    case DType::F32: static_cast<float*>(base)[i] = x; break;
    case DType::F16: static_cast<uint16_t*>(base)[i] = f32_to_f16(x); break;
    default: static_cast<uint16_t*>(base)[i] = f32_to_bf16(x); break;
  }
}

DType format_dtype(SummaryFormat f) {
  return f == SummaryFormat::F16 ? DType::F16 : f == SummaryFormat::BF16 ? DType::BF16 : DType::F32;
}

// NaN (an overflowed bound: +inf + -inf) ranks last.
float rank_key(float s) { return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s; }

// U8 decoding, the one formula both the encoder's check and the scorer use.
inline float u8_value(float base, float step, uint8_t code) { return base + static_cast<float>(code) * step; }

}  // namespace

Status check_quest_options(const QuestOptions& o, const char* prefix) {
  const std::string at = prefix;
  if (o.page_size < 1 || o.page_size > 65536) return Status::invalid(at + "pageSize: expected an integer from 1 to 65536, received " + num(o.page_size));
  if (o.budget < 1) return Status::invalid(at + "budget: expected an integer >= 1 (tokens), received " + num(o.budget));
  if (o.sinks < 0) return Status::invalid(at + "sinks: expected an integer >= 0, received " + num(o.sinks));
  if (o.recent < 0) return Status::invalid(at + "recent: expected an integer >= 0, received " + num(o.recent));
  if (o.gqa != GqaCombine::Max && o.gqa != GqaCombine::Sum) return Status::invalid(at + "gqa: expected 'max' or 'sum'");
  return Status::ok();
}

namespace {
// Forced pages of a head of n tokens as [0, sink_end) and [recent_begin, pages).
void forced_ranges(int64_t n, int64_t n_q, const QuestOptions& o, int64_t* sink_end, int64_t* recent_begin) {
  const int64_t P = o.page_size, pages = page_count(n, P);
  *sink_end = std::min(pages, page_count(std::min(o.sinks, n), P));
  const int64_t r = std::min(n, std::max({o.recent, n_q, int64_t(1)}));
  *recent_begin = (n - r) / P;
}
}  // namespace

int64_t selected_count(int64_t n, int64_t n_q, const QuestOptions& o) {
  if (n <= 0) return 0;
  const int64_t P = o.page_size, pages = page_count(n, P);
  const int64_t budget_pages = std::max<int64_t>(1, o.budget / P);
  if (pages <= budget_pages) return n;
  int64_t sink_end, recent_begin;
  forced_ranges(n, n_q, o, &sink_end, &recent_begin);
  const int64_t forced = std::min(sink_end, recent_begin) + (pages - recent_begin);
  const int64_t chosen = std::max(budget_pages, forced);
  return chosen * P - (pages * P - n);  // the last (partial) page is always chosen
}

void select_pages(const float* scores, int64_t n, int64_t n_q, const QuestOptions& o, std::vector<int64_t>& pages,
                  std::vector<int64_t>& cand) {
  pages.clear();
  cand.clear();
  if (n <= 0) return;
  const int64_t P = o.page_size, total = page_count(n, P);
  const int64_t budget_pages = std::max<int64_t>(1, o.budget / P);
  if (total <= budget_pages) {
    for (int64_t p = 0; p < total; ++p) pages.push_back(p);
    return;
  }
  int64_t sink_end, recent_begin;
  forced_ranges(n, n_q, o, &sink_end, &recent_begin);
  const int64_t mid_end = recent_begin, mid_begin = std::min(sink_end, recent_begin);
  const int64_t forced = mid_begin + (total - recent_begin);
  const int64_t k = std::max<int64_t>(0, budget_pages - forced);
  for (int64_t p = mid_begin; p < mid_end; ++p) cand.push_back(p);
  // Exact top k: higher bound first, lower page index on ties (a strict
  // total order, so the result does not depend on the algorithm).
  auto better = [scores](int64_t a, int64_t b) {
    const float sa = rank_key(scores[a]), sb = rank_key(scores[b]);
    return sa > sb || (sa == sb && a < b);
  };
  const int64_t take = std::min<int64_t>(k, static_cast<int64_t>(cand.size()));
  if (take < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + take, cand.end(), better);
  cand.resize(static_cast<size_t>(take));
  for (int64_t p = 0; p < mid_begin; ++p) pages.push_back(p);
  pages.insert(pages.end(), cand.begin(), cand.end());
  for (int64_t p = recent_begin; p < total; ++p) pages.push_back(p);
  std::sort(pages.begin(), pages.end());
}

void pages_to_tokens(const std::vector<int64_t>& pages, int64_t n, int64_t page_size, std::vector<int32_t>& out) {
  for (int64_t p : pages) {
    const int64_t end = std::min(n, (p + 1) * page_size);
    for (int64_t t = p * page_size; t < end; ++t) out.push_back(static_cast<int32_t>(t));
  }
}

#ifdef TP_QUEST_X86
namespace {
// fold_rows' loop 8 channels at a time (min / max are exact in any order;
// _mm256_min_ps(x, lo) is std::min(lo, x), _mm256_max_ps(x, hi) is
// std::max(hi, x), NaN included). d a multiple of 8.
__attribute__((target("avx2"))) void fold_rows_avx2(const float* rows, int64_t r, int64_t n, int64_t d, float* lo, float* hi) {
  for (int64_t c = 0; c < d; c += 8) {
    __m256 l = _mm256_loadu_ps(lo + c), h = _mm256_loadu_ps(hi + c);
    for (int64_t i = r; i < n; ++i) {
      const __m256 x = _mm256_loadu_ps(rows + i * d + c);
      l = _mm256_min_ps(x, l);
      h = _mm256_max_ps(x, h);
    }
    _mm256_storeu_ps(lo + c, l);
    _mm256_storeu_ps(hi + c, h);
  }
}
}  // namespace
#endif

void fold_rows(const float* rows, int64_t n, int64_t d, float* lo, float* hi, bool init) {
  int64_t r = 0;
  if (init && n > 0) {
    std::memcpy(lo, rows, static_cast<size_t>(d) * sizeof(float));
    std::memcpy(hi, rows, static_cast<size_t>(d) * sizeof(float));
    r = 1;
  }
#ifdef TP_QUEST_X86
  if (r < n && d % 8 == 0 && active_isa() >= IsaLevel::Avx2) {
    fold_rows_avx2(rows, r, n, d, lo, hi);
    return;
  }
#endif
  for (; r < n; ++r) {
    const float* x = rows + r * d;
    for (int64_t c = 0; c < d; ++c) {
      lo[c] = std::min(lo[c], x[c]);
      hi[c] = std::max(hi[c], x[c]);
    }
  }
}

size_t summary_elem_bytes(SummaryFormat f) {
  return f == SummaryFormat::F32 ? 4 : f == SummaryFormat::U8 ? 1 : 2;
}

void summary_truncate(PageSummary& s, int64_t keep, int64_t page_size) {
  const int64_t full = std::min(s.stored, std::max<int64_t>(0, keep) / page_size);
  const size_t d_bytes = s.stored > 0 ? s.lo.size() / static_cast<size_t>(s.stored) : 0;
  s.lo.resize(static_cast<size_t>(full) * d_bytes);
  s.hi.resize(static_cast<size_t>(full) * d_bytes);
  if (!s.affine.empty() || s.stored > 0) s.affine.resize(std::min(s.affine.size(), static_cast<size_t>(full * 2)));
  if (s.stored > 0) s.sums.resize(std::min(s.sums.size(), s.sums.size() / static_cast<size_t>(s.stored) * static_cast<size_t>(full)));
  s.stored = full;
  s.rows = full * page_size;
}

void summary_store_page(PageSummary& s, SummaryFormat f, int64_t d, int64_t p, const float* lo, const float* hi) {
  // Pages are stored in order: p == s.stored.
  const size_t es = summary_elem_bytes(f);
  const size_t at = static_cast<size_t>(p * d) * es;
  s.lo.resize(at + static_cast<size_t>(d) * es);
  s.hi.resize(at + static_cast<size_t>(d) * es);
  if (f != SummaryFormat::U8) {
    const DType t = format_dtype(f);
    for (int64_t c = 0; c < d; ++c) {
      store_elem(s.lo.data(), t, p * d + c, lo[c]);
      store_elem(s.hi.data(), t, p * d + c, hi[c]);
    }
  } else {
    float base = lo[0], top = hi[0];
    for (int64_t c = 1; c < d; ++c) {
      base = std::min(base, lo[c]);
      top = std::max(top, hi[c]);
    }
    // step: the smallest float with base + 255 * step >= top (decoded in f32).
    float step = (top - base) / 255.0f;
    if (!std::isfinite(step)) step = std::numeric_limits<float>::max() / 255.0f;
    while (u8_value(base, step, 255) < top) step = std::nextafter(step, std::numeric_limits<float>::infinity());
    uint8_t* ql = s.lo.data() + at;
    uint8_t* qh = s.hi.data() + at;
    for (int64_t c = 0; c < d; ++c) {
      int64_t a = 0, b = 255;
      if (step > 0.0f) {
        a = std::clamp<int64_t>(static_cast<int64_t>(std::floor((static_cast<double>(lo[c]) - base) / step)), 0, 255);
        b = std::clamp<int64_t>(static_cast<int64_t>(std::ceil((static_cast<double>(hi[c]) - base) / step)), 0, 255);
        // Outwards in the decoder's own arithmetic.
        while (a > 0 && u8_value(base, step, static_cast<uint8_t>(a)) > lo[c]) --a;
        while (a < 255 && u8_value(base, step, static_cast<uint8_t>(a + 1)) <= lo[c]) ++a;
        while (b < 255 && u8_value(base, step, static_cast<uint8_t>(b)) < hi[c]) ++b;
        while (b > 0 && u8_value(base, step, static_cast<uint8_t>(b - 1)) >= hi[c]) --b;
      } else {
        b = 0;  // every value is base
      }
      ql[c] = static_cast<uint8_t>(a);
      qh[c] = static_cast<uint8_t>(b);
    }
    s.affine.resize(static_cast<size_t>(p * 2 + 2));
    s.affine[p * 2] = base;
    s.affine[p * 2 + 1] = step;
  }
  s.stored = p + 1;
}

void summary_page(const PageSummary& s, SummaryFormat f, int64_t d, int64_t p, float* lo_buf, float* hi_buf, const float** lo,
                  const float** hi) {
  if (p >= s.stored) {
    *lo = s.open_lo.data();
    *hi = s.open_hi.data();
    return;
  }
  if (f == SummaryFormat::F32) {
    *lo = reinterpret_cast<const float*>(s.lo.data()) + p * d;
    *hi = reinterpret_cast<const float*>(s.hi.data()) + p * d;
    return;
  }
  if (f == SummaryFormat::U8) {
    const float base = s.affine[p * 2], step = s.affine[p * 2 + 1];
    const uint8_t* ql = s.lo.data() + p * d;
    const uint8_t* qh = s.hi.data() + p * d;
    for (int64_t c = 0; c < d; ++c) {
      lo_buf[c] = u8_value(base, step, ql[c]);
      hi_buf[c] = u8_value(base, step, qh[c]);
    }
  } else {
    const DType t = format_dtype(f);
    for (int64_t c = 0; c < d; ++c) {
      lo_buf[c] = load_elem(s.lo.data(), t, p * d + c);
      hi_buf[c] = load_elem(s.hi.data(), t, p * d + c);
    }
  }
  *lo = lo_buf;
  *hi = hi_buf;
}

int64_t summary_bytes(const PageSummary& s) {
  return static_cast<int64_t>(s.lo.capacity() + s.hi.capacity() +
                              (s.affine.capacity() + s.open_lo.capacity() + s.open_hi.capacity() + s.sums.capacity() + s.open_sum.capacity()) * sizeof(float));
}

namespace {
// sum_c max(q[c] * hi[c], q[c] * lo[c]) for one query row.
inline float page_bound(const float* q, const float* lo, const float* hi, int64_t d) {
  float acc = 0.0f;
  for (int64_t c = 0; c < d; ++c) acc += std::max(q[c] * hi[c], q[c] * lo[c]);
  return acc;
}

inline float combine_rows(const float* const* q, int64_t rows, int64_t d, const float* lo, const float* hi, GqaCombine gqa) {
  float out = page_bound(q[0], lo, hi, d);
  for (int64_t r = 1; r < rows; ++r) {
    const float b = page_bound(q[r], lo, hi, d);
    out = gqa == GqaCombine::Max ? std::max(out, b) : out + b;
  }
  return out;
}
}  // namespace

namespace {
#ifdef TP_QUEST_X86
// Eight pages at once, one page per lane: the rows [8, d] of lo and hi are
// converted to f32 (F16C for f16) and transposed to [d, 8], then every lane
// accumulates its page's bound over c in ascending order, exactly as
// page_bound does (same products, same max, same additions in the same
// order), and combines the query rows as combine_rows does: the scores are
// bit-identical to the scalar path. _mm256_max_ps(a, b) returns b when
// either is NaN, which matches std::max(b, a).
__attribute__((target("avx2,f16c"))) inline __m256 load8_f32(const void* base, DType t, int64_t i) {
  if (t == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
  if (t == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,f16c"))) void transpose8_store(const void* base, DType t, int64_t p0, int64_t d, float* out) {
  for (int64_t cb = 0; cb < d; cb += 8) {
    __m256 r0 = load8_f32(base, t, (p0 + 0) * d + cb), r1 = load8_f32(base, t, (p0 + 1) * d + cb);
    __m256 r2 = load8_f32(base, t, (p0 + 2) * d + cb), r3 = load8_f32(base, t, (p0 + 3) * d + cb);
    __m256 r4 = load8_f32(base, t, (p0 + 4) * d + cb), r5 = load8_f32(base, t, (p0 + 5) * d + cb);
    __m256 r6 = load8_f32(base, t, (p0 + 6) * d + cb), r7 = load8_f32(base, t, (p0 + 7) * d + cb);
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    float* o = out + cb * 8;
    _mm256_storeu_ps(o + 0, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(o + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(o + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(o + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(o + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
  }
}

// Pages [p0, p1) (p1 - p0 a multiple of 8) of contiguous lo, hi [pages, d]
// rows of dtype t; d a multiple of 8. tl, th: scratch of 8 * d floats each.
__attribute__((target("avx2,f16c"))) void score_pages_avx2(const void* lo, const void* hi, DType t, int64_t p0, int64_t p1, int64_t d,
                                                            const float* const* q, int64_t rows, GqaCombine gqa, float* scores,
                                                            float* tl, float* th) {
  for (int64_t p = p0; p < p1; p += 8) {
    transpose8_store(lo, t, p, d, tl);
    transpose8_store(hi, t, p, d, th);
    __m256 out = _mm256_setzero_ps();
    for (int64_t r = 0; r < rows; ++r) {
      const float* qr = q[r];
      __m256 acc = _mm256_setzero_ps();
      for (int64_t c = 0; c < d; ++c) {
        const __m256 qv = _mm256_set1_ps(qr[c]);
        const __m256 ph = _mm256_mul_ps(qv, _mm256_loadu_ps(th + c * 8));
        const __m256 pl = _mm256_mul_ps(qv, _mm256_loadu_ps(tl + c * 8));
        acc = _mm256_add_ps(acc, _mm256_max_ps(pl, ph));
      }
      if (r == 0) out = acc;
      else out = gqa == GqaCombine::Max ? _mm256_max_ps(acc, out) : _mm256_add_ps(out, acc);
    }
    _mm256_storeu_ps(scores + p, out);
  }
}
// True when all n (a multiple of 8) pairs lo[i], hi[i] are finite with
// lo <= hi (the check select() makes element by element, which then only
// runs to name the first bad element).
__attribute__((target("avx2,f16c"))) bool summaries_valid_avx2(const void* lo, const void* hi, DType t, int64_t n) {
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 ok = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 l = load8_f32(lo, t, i), h = load8_f32(hi, t, i);
    const __m256 fl = _mm256_cmp_ps(_mm256_and_ps(l, abs_mask), inf, _CMP_LT_OQ);
    const __m256 fh = _mm256_cmp_ps(_mm256_and_ps(h, abs_mask), inf, _CMP_LT_OQ);
    ok = _mm256_and_ps(ok, _mm256_and_ps(_mm256_and_ps(fl, fh), _mm256_cmp_ps(l, h, _CMP_LE_OQ)));
  }
  return _mm256_movemask_ps(ok) == 0xff;
}
#endif

bool simd_scoring(DType t, int64_t d) {
#ifdef TP_QUEST_X86
  (void)t;
  return d % 8 == 0 && active_isa() >= IsaLevel::Avx2 && cpu_features().f16c;
#else
  (void)t;
  (void)d;
  return false;
#endif
}

// Scores of pages [0, pages) of contiguous lo, hi [pages, d] (dtype t), the
// SIMD path on whole groups of 8 pages, split over the pool for long heads.
// Bit-identical to combine_rows on every page.
void score_rows(const void* lo, const void* hi, DType t, int64_t pages, int64_t d, const float* const* q, int64_t rows,
                GqaCombine gqa, float* scores) {
  int64_t done = 0;
#ifdef TP_QUEST_X86
  if (simd_scoring(t, d)) {
    const int64_t vec = pages / 8 * 8;
    constexpr int64_t kChunk = 64;  // pages per pool task (a multiple of 8)
    const int64_t chunks = (vec + kChunk - 1) / kChunk;
    auto run = [&](int64_t i, int) {
      thread_local std::vector<float> scratch;
      if (scratch.size() < static_cast<size_t>(16 * d)) scratch.resize(static_cast<size_t>(16 * d));
      const int64_t a = i * kChunk, b = std::min(vec, a + kChunk);
      score_pages_avx2(lo, hi, t, a, b, d, q, rows, gqa, scores, scratch.data(), scratch.data() + 8 * d);
    };
    // Small heads stay on the calling thread (waking the pool costs more).
    if (chunks > 1 && vec * d * rows >= (int64_t(1) << 16)) ThreadPool::instance().parallel_for(chunks, run);
    else for (int64_t i = 0; i < chunks; ++i) run(i, 0);
    done = vec;
  }
#endif
  if (done < pages) {
    std::vector<float> l(static_cast<size_t>(d)), h(static_cast<size_t>(d));
    for (int64_t p = done; p < pages; ++p) {
      for (int64_t c = 0; c < d; ++c) {
        l[c] = load_elem(lo, t, p * d + c);
        h[c] = load_elem(hi, t, p * d + c);
      }
      scores[p] = combine_rows(q, rows, d, l.data(), h.data(), gqa);
    }
  }
}
}  // namespace

void score_summary(const PageSummary& s, SummaryFormat f, int64_t d, int64_t page_size, const float* const* q, int64_t rows,
                   GqaCombine gqa, float* scores, float* buf) {
  const int64_t pages = page_count(s.rows, page_size);
  int64_t p = 0;
  if (f != SummaryFormat::U8 && s.stored > 0 && simd_scoring(format_dtype(f), d)) {
    score_rows(s.lo.data(), s.hi.data(), format_dtype(f), s.stored, d, q, rows, gqa, scores);
    p = s.stored;
  }
  for (; p < pages; ++p) {
    const float *lo, *hi;
    summary_page(s, f, d, p, buf, buf + d, &lo, &hi);
    scores[p] = combine_rows(q, rows, d, lo, hi, gqa);
  }
}

Status summarize(const SummarizeParams& p) {
  const int64_t H = p.n_kv_heads, n = p.n_kv, d = p.head_dim, P = p.page_size;
  if (H < 1 || n < 1 || d < 1) return Status::invalid("k.shape: expected [nKvHeads >= 1, nKv >= 1, headDim >= 1]");
  if (P < 1 || P > 65536) return Status::invalid("options.pageSize: expected an integer from 1 to 65536, received " + num(P));
  const int64_t need = view_span(H, n, d, p.k_head_stride, p.k_row_stride);
  if (need < 0 || need > p.k_len) return Status::invalid("k: expected at least " + num(need) + " elements for its shape and strides, received " + num(p.k_len));
  const int64_t pages = page_count(n, P);
  if (p.out_len != H * pages * d) return Status::invalid("kmin, kmax: expected " + num(H * pages * d) + " elements each, received " + num(p.out_len));
  std::vector<float> lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d)), row(static_cast<size_t>(d));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t pg = 0; pg < pages; ++pg) {
      const int64_t end = std::min(n, (pg + 1) * P);
      for (int64_t t = pg * P; t < end; ++t) {
        const int64_t base = h * p.k_head_stride + t * p.k_row_stride;
        for (int64_t c = 0; c < d; ++c) {
          const float x = load_elem(p.k, p.dtype, base + c);
          if (!std::isfinite(x)) return Status::invalid("k[" + num(h) + "][" + num(t) + "][" + num(c) + "]: expected a finite value, received " + js_number(x));
          row[c] = x;
        }
        fold_rows(row.data(), 1, d, lo.data(), hi.data(), t == pg * P);
      }
      for (int64_t c = 0; c < d; ++c) {
        store_elem(p.lo, p.dtype, (h * pages + pg) * d + c, lo[c]);
        store_elem(p.hi, p.dtype, (h * pages + pg) * d + c, hi[c]);
      }
    }
  }
  return Status::ok();
}

Status select(const SelectParams& p, int64_t* n_sel_out) {
  const int64_t H = p.n_kv_heads, d = p.head_dim, n = p.n_kv;
  const Status so = check_quest_options(p.opts, "options.");
  if (!so.is_ok()) return so;
  if (H < 1 || p.n_heads < 1 || p.n_heads % H != 0) return Status::invalid("q.shape[0] (nHeads): expected a multiple of nKvHeads = " + num(H) + ", received " + num(p.n_heads));
  if (p.n_q < 1 || d < 1 || n < 1) return Status::invalid("q, summaries: expected nQ >= 1, headDim >= 1 and nKv >= 1");
  const int64_t need = view_span(p.n_heads, p.n_q, d, p.q_head_stride, p.q_row_stride);
  if (need < 0 || need > p.q_len) return Status::invalid("q: expected at least " + num(need) + " elements for its shape and strides, received " + num(p.q_len));
  const int64_t P = p.opts.page_size, pages = page_count(n, P);
  if (p.sum_len != H * pages * d) return Status::invalid("summaries.kmin, summaries.kmax: expected " + num(H * pages * d) + " elements each, received " + num(p.sum_len));
  const int64_t count = selected_count(n, p.n_q, p.opts);
  if (p.indices_len < H * count) return Status::invalid("indices: expected room for " + num(H * count) + " elements, received " + num(p.indices_len));
  const int64_t group = p.n_heads / H, rows = group * p.n_q;
  std::vector<const float*> q(static_cast<size_t>(rows));
  std::vector<float> scores(static_cast<size_t>(pages)), lo(static_cast<size_t>(d)), hi(static_cast<size_t>(d));
  std::vector<int64_t> chosen, scratch;
  std::vector<int32_t> tokens;
  bool valid = false;  // all summaries checked at once (SIMD)
#ifdef TP_QUEST_X86
  if (simd_scoring(p.dtype, d)) valid = summaries_valid_avx2(p.lo, p.hi, p.dtype, p.sum_len);
#endif
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < group; ++j) {
      for (int64_t i = 0; i < p.n_q; ++i) q[j * p.n_q + i] = p.q + (h * group + j) * p.q_head_stride + i * p.q_row_stride;
    }
    for (int64_t pg = 0; pg < pages && !valid; ++pg) {
      for (int64_t c = 0; c < d; ++c) {
        lo[c] = load_elem(p.lo, p.dtype, (h * pages + pg) * d + c);
        hi[c] = load_elem(p.hi, p.dtype, (h * pages + pg) * d + c);
        if (!std::isfinite(lo[c]) || !std::isfinite(hi[c]) || lo[c] > hi[c]) {
          return Status::invalid("summaries: expected finite kmin <= kmax, received kmin " + js_number(lo[c]) + ", kmax " + js_number(hi[c]) +
                                 " at [" + num(h) + "][" + num(pg) + "][" + num(c) + "]");
        }
      }
    }
    const size_t es = p.dtype == DType::F32 ? 4 : 2;
    const size_t head_off = static_cast<size_t>(h * pages * d) * es;
    score_rows(static_cast<const uint8_t*>(p.lo) + head_off, static_cast<const uint8_t*>(p.hi) + head_off, p.dtype, pages, d, q.data(), rows,
               p.opts.gqa, scores.data());
    select_pages(scores.data(), n, p.n_q, p.opts, chosen, scratch);
    tokens.clear();
    pages_to_tokens(chosen, n, P, tokens);
    std::copy(tokens.begin(), tokens.end(), p.indices + h * count);
  }
  *n_sel_out = count;
  return Status::ok();
}

}  // namespace tp::sparse
