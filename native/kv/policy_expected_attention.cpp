// Expected Attention (kvpress ExpectedAttentionPress; Devoto et al. 2025,
// "Expected Attention: KV Cache Compression by Estimating Attention from
// Future Queries Distribution"). Future queries are modelled as a Gaussian
// with the mean mu and covariance S of the observed queries; the expected
// unnormalised attention of key k is E[exp(q.k / sqrt(d))] =
// exp(mu.k / sqrt(d) + k^T S k / (2 d)). Per query head: softmax of that
// logit over the non-sink keys, then averaged over the group's heads; with
// use_vnorm the score becomes (score + epsilon) * ||v||.
//
// Differences from kvpress, forced by a stateless API without positions:
//  - the statistics come from the given queries (the last nQ positions,
//    already rotated if the model uses RoPE), not from pre-RoPE queries
//    rotated by the average RoPE matrix of the next n_future_positions;
//  - queries at positions < sinks are left out of the statistics (kvpress
//    drops the first n_sink hidden states) and the first `sinks` keys get
//    +infinity (kvpress pads them with the maximum score).
// Statistics and logits are computed in double (S is headDim x headDim,
// population covariance: divided by the number of rows), keys in tiles.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/thread_pool.h"
#include "kv_common.h"

namespace tp::kv {

namespace {

constexpr int64_t kTile = 64;  // keys per tile, decoded once and transposed

// Query statistics of one query head: the mean, and for the quadratic term
// either the centred rows (when there are at most headDim of them:
// k^T S k = (1/N) sum_r (z_r . k)^2, N*d work per key) or S itself (d*d).
struct QueryStats {
  std::vector<double> mean, centered, cov;
};

QueryStats query_stats(const KvScoreParams& p, const float* q, int64_t n_rows, bool by_rows) {
  const int64_t d = p.head_dim;
  QueryStats st;
  st.mean.assign(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t j = 0; j < d; ++j) st.mean[static_cast<size_t>(j)] += q[r * p.q_row_stride + j];
  }
  for (double& m : st.mean) m /= static_cast<double>(n_rows);
  if (!p.use_covariance) return st;
  if (by_rows) {
    st.centered.resize(static_cast<size_t>(n_rows * d));
    for (int64_t r = 0; r < n_rows; ++r) {
      for (int64_t j = 0; j < d; ++j) st.centered[static_cast<size_t>(r * d + j)] = q[r * p.q_row_stride + j] - st.mean[static_cast<size_t>(j)];
    }
    return st;
  }
  st.cov.assign(static_cast<size_t>(d * d), 0.0);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* row = q + r * p.q_row_stride;
    for (int64_t a = 0; a < d; ++a) {
      const double da = row[a] - st.mean[static_cast<size_t>(a)];
      double* out = st.cov.data() + a * d;
      for (int64_t b = 0; b < d; ++b) out[b] += da * (row[b] - st.mean[static_cast<size_t>(b)]);
    }
  }
  for (double& c : st.cov) c /= static_cast<double>(n_rows);
  return st;
}

// logit[t] for the `count` keys of a transposed tile kt[j * kTile + t]. Every
// inner loop runs across keys (axpy form), so it vectorises without
// reassociating any sum.
void tile_logits(const QueryStats& st, const double* kt, int64_t d, int64_t count, int64_t n_rows,
                 bool use_cov, bool by_rows, std::vector<double>& work, double* logit) {
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
  double* acc = work.data();          // [kTile]
  double* quad = acc + kTile;         // [kTile]
  double* y = quad + kTile;           // [d * kTile] (S k per key) when !by_rows
  std::fill(acc, acc + count, 0.0);
  for (int64_t j = 0; j < d; ++j) {
    const double m = st.mean[static_cast<size_t>(j)];
    const double* col = kt + j * kTile;
    for (int64_t t = 0; t < count; ++t) acc[t] += m * col[t];
  }
  for (int64_t t = 0; t < count; ++t) logit[t] = acc[t] * inv_sqrt_d;
  if (!use_cov) return;
  std::fill(quad, quad + count, 0.0);
  if (by_rows) {
    for (int64_t r = 0; r < n_rows; ++r) {
      const double* z = st.centered.data() + r * d;
      std::fill(acc, acc + count, 0.0);
      for (int64_t j = 0; j < d; ++j) {
        const double* col = kt + j * kTile;
        for (int64_t t = 0; t < count; ++t) acc[t] += z[j] * col[t];
      }
      for (int64_t t = 0; t < count; ++t) quad[t] += acc[t] * acc[t];
    }
    for (int64_t t = 0; t < count; ++t) quad[t] /= static_cast<double>(n_rows);
  } else {
    for (int64_t a = 0; a < d; ++a) {
      double* ya = y + a * kTile;
      std::fill(ya, ya + count, 0.0);
      const double* srow = st.cov.data() + a * d;
      for (int64_t b = 0; b < d; ++b) {
        const double sab = srow[b];
        const double* col = kt + b * kTile;
        for (int64_t t = 0; t < count; ++t) ya[t] += sab * col[t];
      }
      const double* ka = kt + a * kTile;
      for (int64_t t = 0; t < count; ++t) quad[t] += ka[t] * ya[t];
    }
  }
  for (int64_t t = 0; t < count; ++t) logit[t] += quad[t] / static_cast<double>(d) / 2.0;
}

// Scores of one KV head (all keys at or after `sinks`), written to out[p].
void expected_head(const KvScoreParams& p, int64_t kv_head, float* out) {
  const int64_t d = p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t first_pos = p.n_kv - p.n_q;              // position of query row 0
  const int64_t first_row = std::max<int64_t>(p.sinks - first_pos, 0);
  const int64_t n_rows = p.n_q - first_row;               // >= 1: row nQ-1 is at nKv-1 >= sinks
  const int64_t n_keys = p.n_kv - p.sinks;
  const bool by_rows = n_rows <= d;

  std::vector<QueryStats> stats;
  for (int64_t g = 0; g < group; ++g) {
    stats.push_back(query_stats(p, p.q + (kv_head * group + g) * p.q_head_stride + first_row * p.q_row_stride, n_rows, by_rows));
  }
  std::vector<double> logit(static_cast<size_t>(group * n_keys));
  std::vector<double> kt(static_cast<size_t>(d * kTile));
  std::vector<double> work(static_cast<size_t>((2 + (by_rows ? 0 : d)) * kTile));
  for (int64_t first = 0; first < n_keys; first += kTile) {
    const int64_t count = std::min(kTile, n_keys - first);
    for (int64_t t = 0; t < count; ++t) {
      const int64_t base = kv_head * p.k_head_stride + (p.sinks + first + t) * p.k_row_stride;
      for (int64_t j = 0; j < d; ++j) kt[static_cast<size_t>(j * kTile + t)] = load(p.k, p.k_dtype, base + j);
    }
    for (int64_t g = 0; g < group; ++g) {
      tile_logits(stats[static_cast<size_t>(g)], kt.data(), d, count, n_rows, p.use_covariance, by_rows, work,
                  logit.data() + g * n_keys + first);
    }
  }
  // Softmax per query head over the non-sink keys, averaged over the group.
  std::vector<double> prob(static_cast<size_t>(n_keys), 0.0);
  for (int64_t g = 0; g < group; ++g) {
    double* l = logit.data() + g * n_keys;
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < n_keys; ++t) top = std::max(top, l[t]);
    double sum = 0.0;
    for (int64_t t = 0; t < n_keys; ++t) sum += (l[t] = std::exp(l[t] - top));
    for (int64_t t = 0; t < n_keys; ++t) prob[static_cast<size_t>(t)] += l[t] / sum / static_cast<double>(group);
  }

  for (int64_t t = 0; t < n_keys; ++t) {
    double score = prob[static_cast<size_t>(t)];
    if (p.use_vnorm) {
      const int64_t base = kv_head * p.v_head_stride + (p.sinks + t) * p.v_row_stride;
      double norm = 0.0;
      for (int64_t j = 0; j < d; ++j) {
        const double x = load(p.v, p.v_dtype, base + j);
        norm += x * x;
      }
      score = (score + p.epsilon) * std::sqrt(norm);
    }
    out[p.sinks + t] = static_cast<float>(score);
  }
}

}  // namespace

Status score_expected_attention(const KvScoreParams& p) {
  force_from(p, 0);  // every key +infinity; the non-sink keys are overwritten below
  if (p.n_kv <= p.sinks) return Status::ok();
  std::atomic<bool> out_of_memory{false};
  ThreadPool::instance().parallel_for(p.n_kv_heads, [&](int64_t kv_head, int) {
    try {
      expected_head(p, kv_head, p.scores + kv_head * p.n_kv);
    } catch (const std::bad_alloc&) {
      out_of_memory = true;  // no exception may leave a pool worker
    }
  });
  if (out_of_memory) return Status::out_of_memory("expected_attention: cannot allocate scratch");
  return Status::ok();
}

}  // namespace tp::kv
