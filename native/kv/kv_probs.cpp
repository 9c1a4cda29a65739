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

constexpr int64_t kTile = 128;  // keys decoded at a time: memory stays O(rows + tile)

// Keys [first, first + count) of one head decoded to f32 and transposed:
// out[j * kTile + t] = K[first + t][j], so that one query's logits over the
// tile are axpy updates across keys (vectorisable without reassociating sums).
void decode_tile(const KvScoreParams& p, int64_t kv_head, int64_t first, int64_t count, float* out) {
  for (int64_t t = 0; t < count; ++t) {
    const int64_t base = kv_head * p.k_head_stride + (first + t) * p.k_row_stride;
    if (p.k_dtype == DType::F32) {
      const float* src = static_cast<const float*>(p.k) + base;
      for (int64_t j = 0; j < p.head_dim; ++j) out[j * kTile + t] = src[j];
    } else {
      for (int64_t j = 0; j < p.head_dim; ++j) out[j * kTile + t] = load(p.k, p.k_dtype, base + j);
    }
  }
}

// logits[t] = scale * q . K[first + t] for t < count, from a transposed tile.
void tile_logits(const float* q, const float* tile, int64_t head_dim, int64_t count, float scale, float* logits) {
  for (int64_t t = 0; t < count; ++t) logits[t] = 0.0f;
  for (int64_t j = 0; j < head_dim; ++j) {
    const float qj = q[j];
    const float* col = tile + j * kTile;
    for (int64_t t = 0; t < count; ++t) logits[t] += qj * col[t];
  }
  for (int64_t t = 0; t < count; ++t) logits[t] *= scale;
}

// One KV head, every query head of its group and every row, in two passes
// over key tiles: (1) each row's running max and sum of exp (online
// softmax), (2) the probabilities, reduced into acc. Each tile is decoded
// once per pass.
void reduce_head(const KvScoreParams& p, const QueryRows& rows, bool take_max, int64_t kv_head, float* acc) {
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t n_pairs = group * rows.n_rows;
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  std::vector<float> tile(static_cast<size_t>(kTile * p.head_dim));
  std::vector<float> logits(static_cast<size_t>(kTile));
  std::vector<float> top(static_cast<size_t>(n_pairs), -INFINITY);
  std::vector<double> sum(static_cast<size_t>(n_pairs), 0.0);
  const auto query = [&](int64_t pair) {
    const int64_t h = kv_head * group + pair / rows.n_rows;
    return rows.q + h * rows.head_stride + (pair % rows.n_rows) * rows.row_stride;
  };
  const auto visible = [&](int64_t pair) {
    const int64_t r = pair % rows.n_rows;
    return rows.last_visible < 0 ? p.n_kv : std::min(p.n_kv, rows.last_visible + r + 1);
  };
  for (int pass = 0; pass < 2; ++pass) {
    for (int64_t first = 0; first < p.n_kv; first += kTile) {
      const int64_t count = std::min(kTile, p.n_kv - first);
      decode_tile(p, kv_head, first, count, tile.data());
      for (int64_t pair = 0; pair < n_pairs; ++pair) {
        const int64_t end = std::min(count, visible(pair) - first);  // keys of this tile the row sees
        if (end <= 0) continue;
        tile_logits(query(pair), tile.data(), p.head_dim, end, scale, logits.data());
        float& m = top[static_cast<size_t>(pair)];
        double& l = sum[static_cast<size_t>(pair)];
        for (int64_t t = 0; t < end; ++t) {
          const float s = logits[static_cast<size_t>(t)];
          if (pass == 0) {
            if (s > m) {
              l = l * std::exp(static_cast<double>(m) - s) + 1.0;
              m = s;
            } else {
              l += std::exp(static_cast<double>(s) - m);
            }
          } else {
            const float prob = static_cast<float>(std::exp(static_cast<double>(s) - m) / l);
            float& a = acc[first + t];
            a = take_max ? std::max(a, prob) : a + prob;
          }
        }
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
