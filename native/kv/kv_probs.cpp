// Softmax probabilities of arbitrary query rows, reduced per key (max or
// sum), and the 1-D pooling shared by the window-based policies. Used by
// speckv, whose max reduction needs every row's probabilities (the attention
// kernel only returns their sum).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "../core/thread_pool.h"
#include "kv_common.h"

namespace tp::kv {

namespace {

// K of one head decoded to contiguous f32 [nKv, headDim].
void decode_keys(const KvScoreParams& p, int64_t kv_head, std::vector<float>& out) {
  out.resize(static_cast<size_t>(p.n_kv * p.head_dim));
  for (int64_t pos = 0; pos < p.n_kv; ++pos) {
    const int64_t base = kv_head * p.k_head_stride + pos * p.k_row_stride;
    for (int64_t j = 0; j < p.head_dim; ++j) out[static_cast<size_t>(pos * p.head_dim + j)] = load(p.k, p.k_dtype, base + j);
  }
}

// One KV head: every query head of its group, every row.
void reduce_head(const KvScoreParams& p, const QueryRows& rows, bool take_max, int64_t kv_head, float* acc) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  std::vector<float> keys;
  decode_keys(p, kv_head, keys);
  std::vector<float> logit(static_cast<size_t>(p.n_kv));
  for (int64_t g = 0; g < group; ++g) {
    const int64_t h = kv_head * group + g;
    for (int64_t r = 0; r < rows.n_rows; ++r) {
      const float* q = rows.q + h * rows.head_stride + r * rows.row_stride;
      const int64_t visible = rows.last_visible < 0 ? p.n_kv : std::min(p.n_kv, rows.last_visible + r + 1);
      if (visible <= 0) continue;
      float top = -INFINITY;
      for (int64_t pos = 0; pos < visible; ++pos) {
        const float* k = keys.data() + pos * p.head_dim;
        float dot = 0.0f;
        for (int64_t j = 0; j < p.head_dim; ++j) dot += q[j] * k[j];
        logit[static_cast<size_t>(pos)] = dot * scale;
        top = std::max(top, dot * scale);
      }
      double sum = 0.0;
      for (int64_t pos = 0; pos < visible; ++pos) {
        const float e = std::exp(logit[static_cast<size_t>(pos)] - top);
        logit[static_cast<size_t>(pos)] = e;
        sum += e;
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t pos = 0; pos < visible; ++pos) {
        const float prob = logit[static_cast<size_t>(pos)] * inv;
        if (take_max) acc[pos] = std::max(acc[pos], prob);
        else acc[pos] += prob;
      }
    }
  }
}

}  // namespace

Status reduce_probs(const KvScoreParams& p, const QueryRows& rows, bool take_max, std::vector<float>& acc) {
  if (acc.size() != static_cast<size_t>(p.n_kv_heads * p.n_kv)) return Status::internal("reduce_probs: accumulator size");
  std::atomic<bool> out_of_memory{false};
  // One task per KV head: each writes only its own row of acc. No exception
  // may leave a pool worker.
  ThreadPool::instance().parallel_for(p.n_kv_heads, [&](int64_t kv_head, int) {
    try {
      reduce_head(p, rows, take_max, kv_head, acc.data() + kv_head * p.n_kv);
    } catch (const std::bad_alloc&) {
      out_of_memory = true;
    }
  });
  if (out_of_memory) return Status::out_of_memory("kv: cannot allocate probability scratch");
  return Status::ok();
}

void pool_prefix(const float* m, float scale, int64_t prefix, int64_t kernel, KvPooling how, float* out) {
  const int64_t left = kernel / 2;
  for (int64_t pos = 0; pos < prefix; ++pos) {
    const int64_t lo = std::max<int64_t>(pos - left, 0);
    const int64_t hi = std::min<int64_t>(pos - left + kernel, prefix);
    float acc = how == KvPooling::Max ? m[lo] * scale : 0.0f;
    for (int64_t t = lo; t < hi; ++t) {
      const float x = m[t] * scale;
      if (how == KvPooling::Max) acc = std::max(acc, x);
      else acc += x;
    }
    out[pos] = how == KvPooling::Max ? acc : acc / static_cast<float>(kernel);
  }
}

}  // namespace tp::kv
