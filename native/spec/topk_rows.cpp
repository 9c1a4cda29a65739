// Top-k per row (see topk_rows.h). One pass over the row: a block of 64
// logits is first tested against the current k-th best with one SIMD
// compare per 4 lanes (SSE2, the x86-64 baseline; plain C elsewhere); only
// a block holding a larger value goes through the scalar insertion. On
// random logits about k * ln(vocab / k) values are inserted, so the pass
// runs at the speed of the memory read.
#include "topk_rows.h"

#include <limits>
#include <vector>

#include "../core/thread_pool.h"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define TP_TOPK_SSE2 1
#endif

namespace tp::spec {
namespace {

constexpr int64_t kBlock = 64;

// True when some x[j] > thr, j in [0, kBlock). NaN compares false.
inline bool block_has_greater(const float* x, float thr) {
#if TP_TOPK_SSE2
  const __m128 t = _mm_set1_ps(thr);
  __m128 a0 = _mm_setzero_ps(), a1 = _mm_setzero_ps();
  for (int64_t j = 0; j < kBlock; j += 8) {
    a0 = _mm_or_ps(a0, _mm_cmpgt_ps(_mm_loadu_ps(x + j), t));
    a1 = _mm_or_ps(a1, _mm_cmpgt_ps(_mm_loadu_ps(x + j + 4), t));
  }
  return _mm_movemask_ps(_mm_or_ps(a0, a1)) != 0;
#else
  bool any = false;
  for (int64_t j = 0; j < kBlock; j++) any |= x[j] > thr;
  return any;
#endif
}

// The k best seen so far, sorted: vals descending, ties in id order.
struct Best {
  float vals[kMaxTopK];
  int32_t ids[kMaxTopK];
  int have = 0;
  int k = 0;
  float thr = -std::numeric_limits<float>::infinity();  // admit v only if v > thr

  // Ids arrive in increasing order, so an equal value never displaces an
  // earlier one: that is the tie rule (lower id first).
  void offer(float v, int32_t id) {
    if (!(v > thr)) return;  // also drops NaN and -Infinity
    int pos = have < k ? have : k - 1;
    while (pos > 0 && vals[pos - 1] < v) {
      vals[pos] = vals[pos - 1];
      ids[pos] = ids[pos - 1];
      pos--;
    }
    vals[pos] = v;
    ids[pos] = id;
    if (have < k) have++;
    if (have == k) thr = vals[k - 1];
  }
};

void top_k_row(const float* x, int64_t vocab, int k, int32_t* out) {
  Best best;
  best.k = k;
  int64_t i = 0;
  for (; i + kBlock <= vocab; i += kBlock) {
    if (!block_has_greater(x + i, best.thr)) continue;
    for (int64_t j = 0; j < kBlock; j++) best.offer(x[i + j], static_cast<int32_t>(i + j));
  }
  for (; i < vocab; i++) best.offer(x[i], static_cast<int32_t>(i));
  for (int r = 0; r < k; r++) out[r] = r < best.have ? best.ids[r] : -1;
}

}  // namespace

void top_k_rows(const float* logits, int64_t rows, int64_t vocab, int k, int32_t* out) {
  auto row = [&](int64_t r, int) { top_k_row(logits + r * vocab, vocab, k, out + r * k); };
  // Below ~256k logits (1 MB) the pool's wake-up costs more than it saves.
  if (rows > 1 && rows * vocab >= (int64_t(1) << 18)) {
    ThreadPool::instance().parallel_for(rows, row);
  } else {
    for (int64_t r = 0; r < rows; r++) row(r, 0);
  }
}

}  // namespace tp::spec
