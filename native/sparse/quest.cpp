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
#include "quest_hd.h"
#include "quest_score.h"

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

// One signed integer per candidate page whose ascending order is the
// selection order: the complement of the shared rank key (quest_hd.h:
// larger is better, NaN as -inf, -0 as +0, the lower page first on ties;
// the device top-k uses the same key), with the top bit flipped so that
// signed order equals the unsigned order. Pages are below 2^31 (rows are i32).
inline int64_t rank_word(float s, int64_t page) {
  return static_cast<int64_t>(~hd::rank_key(s, page) ^ (uint64_t{1} << 63));
}

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
  // Exact top k: higher bound first, lower page index on ties (a strict
  // total order, so the result does not depend on the algorithm). Each
  // candidate is one integer whose plain order is that order (rank_word), so
  // nth_element compares integers instead of re-reading two scores.
  const int64_t mid = std::max<int64_t>(0, mid_end - mid_begin);
  const int64_t take = std::min<int64_t>(k, mid);
  cand.resize(static_cast<size_t>(take > 0 ? mid : 0));
  int64_t* w = cand.data();
  for (int64_t i = 0; i < static_cast<int64_t>(cand.size()); ++i) w[i] = rank_word(scores[mid_begin + i], mid_begin + i);
  if (take < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + take, cand.end());
  cand.resize(static_cast<size_t>(take));
  for (int64_t p = 0; p < mid_begin; ++p) pages.push_back(p);
  for (int64_t w : cand) pages.push_back(w & 0xffffffff);
  for (int64_t p = recent_begin; p < total; ++p) pages.push_back(p);
  std::sort(pages.begin(), pages.end());
}

void pages_to_tokens(const std::vector<int64_t>& pages, int64_t n, int64_t page_size, std::vector<int32_t>& out) {
  for (int64_t p : pages) {
    const int64_t end = std::min(n, (p + 1) * page_size);
    for (int64_t t = p * page_size; t < end; ++t) out.push_back(static_cast<int32_t>(t));
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
  if (f == SummaryFormat::F32) {
    std::memcpy(s.lo.data() + at, lo, static_cast<size_t>(d) * sizeof(float));
    std::memcpy(s.hi.data() + at, hi, static_cast<size_t>(d) * sizeof(float));
  } else if (f == SummaryFormat::F16) {
    bounds_to_f16(lo, d, reinterpret_cast<uint16_t*>(s.lo.data() + at));
    bounds_to_f16(hi, d, reinterpret_cast<uint16_t*>(s.hi.data() + at));
  } else if (f != SummaryFormat::U8) {
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
#ifdef TP_QUEST_X86
__attribute__((target("avx2,f16c"))) inline __m256 load8_f32(const void* base, DType t, int64_t i) {
  if (t == DType::F32) return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
  if (t == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
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

bool simd_check(int64_t n) {
#ifdef TP_QUEST_X86
  return n % 8 == 0 && active_isa() >= IsaLevel::Avx2 && cpu_features().f16c;
#else
  (void)n;
  return false;
#endif
}

bool summaries_valid_avx2_or_false(const void* lo, const void* hi, DType t, int64_t n) {
#ifdef TP_QUEST_X86
  return summaries_valid_avx2(lo, hi, t, n);
#else
  (void)lo, (void)hi, (void)t, (void)n;
  return false;
#endif
}
}  // namespace

void score_summary(const PageSummary& s, SummaryFormat f, int64_t d, int64_t page_size, const float* ab, int64_t pairs, float* scores,
                   float* buf) {
  const int64_t pages = page_count(s.rows, page_size);
  int64_t p = 0;
  if (f != SummaryFormat::U8 && s.stored > 0) {
    score_rows(s.lo.data(), s.hi.data(), format_dtype(f), s.stored, d, ab, pairs, scores);
    p = s.stored;
  }
  for (; p < pages; ++p) {
    const float *lo, *hi;
    summary_page(s, f, d, p, buf, buf + d, &lo, &hi);
    scores[p] = bound_page_f32(lo, hi, ab, pairs, d);
  }
}

Status summarize(const SummarizeParams& p) {
  const int64_t H = p.n_kv_heads, n = p.n_kv, d = p.head_dim, P = p.page_size;
  if (H < 1 || n < 1 || d < 1) return Status::invalid("k.shape: expected [nKvHeads >= 1, nKv >= 1, headDim >= 1]");
  if (P < 1 || P > 65536) return Status::invalid("options.pageSize: expected an integer from 1 to 65536, received " + num(P));
  const int64_t need = view_span(H, n, d, p.k_head_stride, p.k_row_stride);
  if (need < 0 || need > p.k_len) return Status::invalid("k: expected at least " + num(need) + " elements for its shape and strides, received " + num(p.k_len));
  const int64_t pages = page_count(n, P);
  // Products checked: a wrapped one must not pass (the binding bounds them too).
  const int64_t elems = checked_mul(checked_mul(H, pages), d);
  if (elems < 0 || p.out_len != elems) return Status::invalid("kmin, kmax: expected " + num(elems) + " elements each, received " + num(p.out_len));
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
  // Products checked: a wrapped one must not pass (the binding bounds them too).
  const int64_t elems = checked_mul(checked_mul(H, pages), d);
  if (elems < 0 || p.sum_len != elems) return Status::invalid("summaries.kmin, summaries.kmax: expected " + num(elems) + " elements each, received " + num(p.sum_len));
  const int64_t count = selected_count(n, p.n_q, p.opts);
  const int64_t room = checked_mul(H, count);
  if (room < 0 || p.indices_len < room) return Status::invalid("indices: expected room for " + num(room) + " elements, received " + num(p.indices_len));
  // Every summary element finite with kmin <= kmax, checked before any
  // head is scored (one SIMD pass; the element loop only names a bad one).
  if (!(simd_check(p.sum_len) && summaries_valid_avx2_or_false(p.lo, p.hi, p.dtype, p.sum_len))) {
    for (int64_t i = 0; i < p.sum_len; ++i) {
      const float lo = load_elem(p.lo, p.dtype, i), hi = load_elem(p.hi, p.dtype, i);
      if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi) {
        return Status::invalid("summaries: expected finite kmin <= kmax, received kmin " + js_number(lo) + ", kmax " + js_number(hi) + " at [" +
                               num(i / (pages * d)) + "][" + num(i / d % pages) + "][" + num(i % d) + "]");
      }
    }
  }
  const int64_t group = p.n_heads / H, rows = group * p.n_q, pairs = bound_pairs(rows, p.opts.gqa);
  const size_t es = p.dtype == DType::F32 ? 4 : 2;
  // One KV head per pool task (scoring inside runs inline on its worker).
  auto run = [&](int64_t h, int) {
    thread_local std::vector<const float*> q;
    thread_local std::vector<float> ab, scores;
    thread_local std::vector<int64_t> chosen, scratch;
    thread_local std::vector<int32_t> tokens;
    q.resize(static_cast<size_t>(rows));
    ab.resize(static_cast<size_t>(pairs * 2 * d));
    scores.resize(static_cast<size_t>(pages));
    for (int64_t j = 0; j < group; ++j) {
      for (int64_t i = 0; i < p.n_q; ++i) q[j * p.n_q + i] = p.q + (h * group + j) * p.q_head_stride + i * p.q_row_stride;
    }
    bound_weights(q.data(), rows, d, p.opts.gqa, ab.data());
    const size_t head_off = static_cast<size_t>(h * pages * d) * es;
    score_rows(static_cast<const uint8_t*>(p.lo) + head_off, static_cast<const uint8_t*>(p.hi) + head_off, p.dtype, pages, d, ab.data(), pairs,
               scores.data());
    select_pages(scores.data(), n, p.n_q, p.opts, chosen, scratch);
    tokens.clear();
    pages_to_tokens(chosen, n, P, tokens);
    std::copy(tokens.begin(), tokens.end(), p.indices + h * count);
  };
  try {
    if (H > 1 && pages * d * pairs >= (int64_t(1) << 15)) ThreadPool::instance().parallel_for(H, run);
    else for (int64_t h = 0; h < H; ++h) run(h, 0);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("questSelect: out of memory");
  }
  *n_sel_out = count;
  return Status::ok();
}

}  // namespace tp::sparse
