// Quest on the device: the per-page arithmetic and the page selection rule,
// TP_HD so that the CUDA kernels (native/cuda/cuda_quest.cu) and a host model
// of them (quest_hd_model below, run by the CPU tests through the binding
// `questDeviceModel`) are one source. The host model reproduces the device's
// float operations in the device's order (mul_rn / add_rn, no FMA, the warp's
// butterfly reduction), so a GPU run can be compared with it bit for bit and
// the CPU tests cover the GPU logic without a GPU.
//
// Summaries: per (KV head, page of P rows) the element-wise min and max of the
// keys (exact in the cache's 16-bit dtype: the min and max of stored values
// are stored values), as the CPU KvCache keeps them (quest.h).
//
// Score of a page for the query rows q_r of a KV head's group (r in row
// order: query head j of the group, then query row i: r = j * nQ + i), in the
// GEMV form (bound = sum_c max(q_c hi_c, q_c lo_c) = hi . max(q, 0) +
// lo . min(q, 0), since lo <= hi):
//   gqa 'sum': A = sum_r max(q_r, 0), B = sum_r min(q_r, 0) (summed in row
//              order, per channel); score = sum_c (hi_c A_c + lo_c B_c)
//   gqa 'max': score = max_r sum_c (hi_c max(q_rc, 0) + lo_c min(q_rc, 0))
// The channel sum: lane l of a warp sums channels l, l + 32, ... in order,
// then the 32 partials are reduced by the xor butterfly (offsets 16 .. 1).
// The real-number value is the CPU's bound; the float result differs from
// the CPU's channel-order sum only by rounding, so selections agree except
// between pages whose bounds are within rounding of each other (the tests'
// tolerance: quest_bound_eps).
//
// Selection (the CPU select_pages rule, quest.cpp, exactly): a head of n
// tokens has pages = ceil(n / P) and budget_pages = max(1, floor(budget / P));
// all pages when pages <= budget_pages; else the forced pages [0, sink_end)
// and [recent_begin, pages), then the best k = max(0, budget_pages - forced)
// of the pages between by score (higher first, lower page index on ties, NaN
// as -inf), ascending. "Best by (score, -index)" is a strict total order, so
// each candidate gets a unique 64-bit key (quest_rank_key) and the top k are
// the keys >= the k-th largest, found by an MSB-first radix select with
// 8-bit digits (the device builds each digit's histogram in parallel; the
// host model serially; both pick the digit with quest_pick_digit).
#pragma once
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

TP_HD float pos_part(float q) { return q > 0.0f ? q : 0.0f; }
TP_HD float neg_part(float q) { return q < 0.0f ? q : 0.0f; }

// One channel's term of the page bound: hi * a + lo * b.
TP_HD float bound_term(float lo, float hi, float a, float b) { return add_rn(mul_rn(hi, a), mul_rn(lo, b)); }

// Rows combined by gqa: 0 max, 1 sum (GqaCombine).
TP_HD float combine(float acc, float b, int gqa) { return gqa == 0 ? (b > acc ? b : acc) : add_rn(acc, b); }

// Effective query rows of the scoring for R query rows: 1 for 'sum' (the
// collapsed A, B), R for 'max'.
TP_HD int64_t effective_rows(int64_t rows, int gqa) { return gqa == 0 ? rows : 1; }

constexpr int kLanes = 32;

// The partial sum of lane `lane` over channels lane, lane + 32, ... < d.
// a_b: [2, d] (A then B of one effective row); lo, hi: the page's row.
template <typename Load>
TP_HD float lane_partial(const Load& lo, const Load& hi, const float* a_b, int64_t d, int lane) {
  float acc = 0.0f;
  for (int64_t c = lane; c < d; c += kLanes) acc = add_rn(acc, bound_term(lo(c), hi(c), a_b[c], a_b[d + c]));
  return acc;
}

// Loads (the kernels and the host model alike) element c of a 16-bit row (f16 = 1, bf16 = 2) or f32 row (0) as f32.
struct RowLoad {
  const void* base;
  int dtype;  // 0 f32, 1 f16, 2 bf16 (DType)
  TP_HD float operator()(int64_t c) const {
    if (dtype == 0) return static_cast<const float*>(base)[c];
    const uint16_t x = static_cast<const uint16_t*>(base)[c];
    return dtype == 1 ? f16_to_f32(x) : bf16_to_f32(x);
  }
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

// The device's score of one page (quest_score_kernel): per effective row the
// 32 lane partials, the xor butterfly, then combine over the rows.
inline float model_score(const RowLoad& lo, const RowLoad& hi, const float* ab, int64_t e_rows, int64_t d, int gqa) {
  float out = 0.0f;
  for (int64_t e = 0; e < e_rows; ++e) {
    float v[kLanes];
    for (int l = 0; l < kLanes; ++l) v[l] = lane_partial(lo, hi, ab + e * 2 * d, d, l);
    for (int off = 16; off > 0; off >>= 1) {
      float w[kLanes];
      for (int l = 0; l < kLanes; ++l) w[l] = add_rn(v[l], v[l ^ off]);
      for (int l = 0; l < kLanes; ++l) v[l] = w[l];
    }
    out = e == 0 ? v[0] : combine(out, v[0], gqa);
  }
  return out;
}

// The device's prep (quest_prep_kernel): ab [e_rows, 2, d] from q rows [R, d].
inline void model_prep(const float* const* q, int64_t rows, int64_t d, int gqa, float* ab) {
  if (gqa == 0) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < d; ++c) {
        ab[r * 2 * d + c] = pos_part(q[r][c]);
        ab[r * 2 * d + d + c] = neg_part(q[r][c]);
      }
    }
    return;
  }
  for (int64_t c = 0; c < d; ++c) {
    float a = 0.0f, b = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      a = add_rn(a, pos_part(q[r][c]));
      b = add_rn(b, neg_part(q[r][c]));
    }
    ab[c] = a;
    ab[d + c] = b;
  }
}

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
