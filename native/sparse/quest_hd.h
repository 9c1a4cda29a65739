// Quest on the device: the per-page arithmetic and the page selection rule,
// TP_HD so that the CUDA kernels (native/cuda/cuda_quest.cu), the host model
// of them (model_select below, run by the CPU tests through the binding
// `questDeviceModel`) and the CPU Quest are checked against one another.
//
// Summaries: per (KV head, page of P rows) the element-wise min and max of the
// keys (exact in the cache's 16-bit dtype: the min and max of stored values
// are stored values), as the CPU KvCache keeps them (quest.h).
//
// Scores: the CPU's page bound (quest_score.h) in its canonical order, so the
// device's scores are the CPU's bit for bit (see "scoring" below).
//
// Selection (the CPU select_pages rule, quest.cpp, exactly): a head of n
// tokens has pages = ceil(n / P) and budget_pages = max(1, floor(budget / P));
// all pages when pages <= budget_pages; else the forced pages [0, sink_end)
// and [recent_begin, pages), then the best k = max(0, budget_pages - forced)
// of the pages between by score (higher first, lower page index on ties, NaN
// as -inf), ascending. "Best by (score, -index)" is a strict total order, so
// each candidate gets a unique 64-bit key (rank_key) and the top k are the
// keys >= the k-th largest, found by an MSB-first radix select with 8-bit
// digits (the device builds each digit's histogram in parallel; the host
// model serially; both pick the digit with pick_digit). With the same scores
// the selection is the CPU's exactly, ties included.
#pragma once
#include <cmath>
#include <cstdint>

#include "../core/half.h"
#include "../core/hd.h"

namespace tp::sparse::hd {

// -- summaries ---------------------------------------------------------------

// Folds x into a channel's running (lo, hi); init starts from x.
TP_HD void fold(float x, float* lo, float* hi, bool init) {
  if (init) {
    *lo = x;
    *hi = x;
    return;
  }
  *lo = x < *lo ? x : *lo;
  *hi = x > *hi ? x : *hi;
}

// -- scoring -----------------------------------------------------------------
// The CPU's page bound (quest_score.h), operation for operation: the weights
// A = sum_r max(q_r, 0), B = sum_r min(q_r, 0) ('sum', row order) or one
// pair per row ('max'); per pair 16 lanes, lane j accumulating channels
// j, j + 16, ... as acc = fma(hi, A, acc), acc = fma(lo, B, acc); then the
// lanes reduced as l[j] += l[j + 8], += l[j + 4], += l[j + 2], l[0] += l[1];
// pairs combined by std::max in pair order. fmaf is one rounding on both
// sides and the additions are add_rn, so host and device give the same bits
// as the CPU's scalar / AVX2 / AVX-512 scoring.

// std::max(q, 0.0f) and std::min(q, 0.0f), NaN and -0 included.
TP_HD float pos_part(float q) { return q < 0.0f ? 0.0f : q; }
TP_HD float neg_part(float q) { return 0.0f < q ? 0.0f : q; }

// Weight pairs for R query rows: 1 for 'sum' (gqa 1), R for 'max' (gqa 0).
TP_HD int64_t effective_rows(int64_t rows, int gqa) { return gqa == 0 ? rows : 1; }

// Channel c of the weights ab [pairs, 2, d] from the rows q[r] (the CPU's
// bound_weights; every channel independent, so a thread per channel).
template <typename Rows>
TP_HD void weights_channel(const Rows& q, int64_t rows, int64_t d, int gqa, int64_t c, float* ab) {
  if (gqa != 0) {
    float a = pos_part(q(0, c)), b = neg_part(q(0, c));
    for (int64_t r = 1; r < rows; ++r) {
      a = add_rn(a, pos_part(q(r, c)));
      b = add_rn(b, neg_part(q(r, c)));
    }
    ab[c] = a;
    ab[d + c] = b;
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    ab[r * 2 * d + c] = pos_part(q(r, c));
    ab[r * 2 * d + d + c] = neg_part(q(r, c));
  }
}

constexpr int kLanes = 16;

// Lane j's partial sum of one pair (a = A, a + d = B) over one page's bound rows.
template <typename Load>
TP_HD float lane_partial(const Load& lo, const Load& hi, const float* a, int64_t d, int lane) {
  float acc = 0.0f;
  for (int64_t c = lane; c < d; c += kLanes) {
    acc = fmaf(hi(c), a[c], acc);
    acc = fmaf(lo(c), a[d + c], acc);
  }
  return acc;
}

// The canonical lane reduction of l[16] (in place; the result in l[0]).
TP_HD float reduce_lanes(float* l) {
  for (int w = kLanes / 2; w >= 1; w /= 2) {
    for (int j = 0; j < w; ++j) l[j] = add_rn(l[j], l[j + w]);
  }
  return l[0];
}

// Pairs combined: the first pair's bound, then std::max(best, b) in pair order.
TP_HD float combine(float best, float b, int64_t pair) { return pair == 0 ? b : (best < b ? b : best); }

// One page's score, serially (the host model of the device kernel, and the
// reference the host tests compare with the CPU's scoring bit for bit).
template <typename Load>
TP_HD float page_score(const Load& lo, const Load& hi, const float* ab, int64_t pairs, int64_t d) {
  float best = 0.0f;
  for (int64_t k = 0; k < pairs; ++k) {
    float l[kLanes];
    for (int j = 0; j < kLanes; ++j) l[j] = lane_partial(lo, hi, ab + k * 2 * d, d, j);
    best = combine(best, reduce_lanes(l), k);
  }
  return best;
}

// Loads element c of a row of dtype 0 f32, 1 f16, 2 bf16 (DType's codes) as f32.
struct RowLoad {
  const void* base;
  int dtype;
  TP_HD float operator()(int64_t c) const {
    if (dtype == 0) return static_cast<const float*>(base)[c];
    const uint16_t x = static_cast<const uint16_t*>(base)[c];
    return dtype == 1 ? f16_to_f32(x) : bf16_to_f32(x);
  }
};

// Query rows [R, d] contiguous as q(r, c).
struct QueryRows {
  const float* base;
  int64_t d;
  TP_HD float operator()(int64_t r, int64_t c) const { return base[r * d + c]; }
};

// -- selection ---------------------------------------------------------------

struct PagePlan {
  int64_t pages = 0;         // ceil(n / P)
  int64_t budget_pages = 0;  // max(1, floor(budget / P))
  int64_t sink_end = 0;      // forced [0, sink_end)
  int64_t recent_begin = 0;  // forced [recent_begin, pages)
  int64_t k = 0;             // candidates [min(sink_end, recent_begin), recent_begin) to take
  bool all = false;          // every page (pages <= budget_pages)
};

TP_HD int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
TP_HD int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// The plan of a head of n tokens (quest.cpp: forced_ranges, select_pages).
TP_HD PagePlan plan_pages(int64_t n, int64_t n_q, int64_t budget, int64_t P, int64_t sinks, int64_t recent) {
  PagePlan p;
  if (n <= 0) return p;
  p.pages = (n + P - 1) / P;
  p.budget_pages = imax(1, budget / P);
  if (p.pages <= p.budget_pages) {
    p.all = true;
    p.sink_end = p.pages;
    p.recent_begin = p.pages;
    return p;
  }
  const int64_t s = imin(sinks, n);
  p.sink_end = imin(p.pages, (s + P - 1) / P);
  const int64_t r = imin(n, imax(imax(recent, n_q), 1));
  p.recent_begin = (n - r) / P;
  const int64_t mid_begin = imin(p.sink_end, p.recent_begin);
  const int64_t forced = mid_begin + (p.pages - p.recent_begin);
  p.k = imax(0, imin(p.budget_pages - forced, p.recent_begin - mid_begin));
  return p;
}

TP_HD bool forced_page(const PagePlan& p, int64_t page) { return p.all || page < p.sink_end || page >= p.recent_begin; }

// Tokens of the selection (the last, partial page included).
TP_HD int64_t selected_tokens(const PagePlan& p, int64_t n, int64_t P) {
  if (n <= 0) return 0;
  if (p.all) return n;
  const int64_t mid_begin = imin(p.sink_end, p.recent_begin);
  const int64_t chosen = mid_begin + (p.pages - p.recent_begin) + p.k;
  return chosen * P - (p.pages * P - n);
}

// The rank key of a page: larger is better; unique per page. NaN ranks as
// -inf and -0 as +0 (the CPU compares floats: -0 == +0, then the index).
TP_HD uint64_t rank_key(float score, int64_t page) {
  if (score != score) score = bits_to_f32(0xff800000u);  // -inf
  if (score == 0.0f) score = 0.0f;
  uint32_t u = f32_to_bits(score);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (uint64_t(u) << 32) | uint64_t(0xffffffffu - uint32_t(page));
}

// One radix-select step: hist[256] counts the candidates matching the prefix
// so far by their digit; *k_left (>= 1) is how many of the largest are still
// wanted among them. Returns the digit holding the k-th largest and leaves
// *k_left as the rank within that digit.
TP_HD int pick_digit(const uint32_t* hist, int64_t* k_left) {
  for (int b = 255; b > 0; --b) {
    if (int64_t(hist[b]) >= *k_left) return b;
    *k_left -= hist[b];
  }
  return 0;
}

TP_HD int digit_of(uint64_t key, int pass) { return int((key >> (56 - 8 * pass)) & 0xff); }
TP_HD uint64_t prefix_mask(int pass) { return pass == 0 ? 0 : ~uint64_t(0) << (64 - 8 * pass); }

// -- host model of the device kernels (tests) -----------------------------------
#ifndef __CUDA_ARCH__

// The device's selection (quest_topk_kernel), serially: the k-th largest
// candidate key by the radix select, then the selected pages' tokens in
// ascending order into idx (room for selected_tokens). Returns the count.
inline int64_t model_select(const float* scores, int64_t n, int64_t n_q, int64_t budget, int64_t P, int64_t sinks, int64_t recent,
                            int32_t* idx) {
  const PagePlan p = plan_pages(n, n_q, budget, P, sinks, recent);
  const int64_t mid_begin = imin(p.sink_end, p.recent_begin);
  uint64_t threshold = ~uint64_t(0);  // k = 0: no candidate passes
  if (!p.all && p.k > 0) {
    uint64_t prefix = 0;
    int64_t k_left = p.k;
    for (int pass = 0; pass < 8; ++pass) {
      uint32_t hist[256] = {0};
      const uint64_t mask = prefix_mask(pass);
      for (int64_t pg = mid_begin; pg < p.recent_begin; ++pg) {
        const uint64_t key = rank_key(scores[pg], pg);
        if ((key & mask) == prefix) ++hist[digit_of(key, pass)];
      }
      prefix |= uint64_t(pick_digit(hist, &k_left)) << (56 - 8 * pass);
    }
    threshold = prefix;
  }
  int64_t m = 0;
  for (int64_t pg = 0; pg < p.pages; ++pg) {
    const bool take = forced_page(p, pg) || (pg >= mid_begin && pg < p.recent_begin && rank_key(scores[pg], pg) >= threshold);
    if (!take) continue;
    const int64_t end = imin(n, (pg + 1) * P);
    for (int64_t t = pg * P; t < end; ++t) idx[m++] = static_cast<int32_t>(t);
  }
  return m;
}

#endif  // !__CUDA_ARCH__

}  // namespace tp::sparse::hd
