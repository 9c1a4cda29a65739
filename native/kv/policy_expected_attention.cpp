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
// population covariance: divided by the number of rows).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/thread_pool.h"
#include "kv_common.h"

namespace tp::kv {

namespace {

// Scores of one KV head (all keys at or after `sinks`), written to out[p].
void expected_head(const KvScoreParams& p, int64_t kv_head, float* out) {
  const int64_t d = p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t first_pos = p.n_kv - p.n_q;              // position of query row 0
  const int64_t first_row = std::max<int64_t>(p.sinks - first_pos, 0);
  const int64_t n_rows = p.n_q - first_row;               // >= 1: row nQ-1 is at nKv-1 >= sinks
  const int64_t n_keys = p.n_kv - p.sinks;
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));

  // One key at a time in double (memory O(nKv + headDim^2), not O(nKv * headDim)).
  std::vector<double> key(static_cast<size_t>(d));
  const auto load_key = [&](int64_t t) {
    const int64_t base = kv_head * p.k_head_stride + (p.sinks + t) * p.k_row_stride;
    for (int64_t j = 0; j < d; ++j) key[static_cast<size_t>(j)] = load(p.k, p.k_dtype, base + j);
    return key.data();
  };
  std::vector<double> mean(static_cast<size_t>(d)), cov(static_cast<size_t>(d * d));
  std::vector<double> logit(static_cast<size_t>(n_keys)), prob(static_cast<size_t>(n_keys), 0.0);

  for (int64_t g = 0; g < group; ++g) {
    const float* q = p.q + (kv_head * group + g) * p.q_head_stride;
    std::fill(mean.begin(), mean.end(), 0.0);
    std::fill(cov.begin(), cov.end(), 0.0);
    for (int64_t r = first_row; r < p.n_q; ++r) {
      for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += q[r * p.q_row_stride + j];
    }
    for (double& m : mean) m /= static_cast<double>(n_rows);
    if (p.use_covariance) {
      for (int64_t r = first_row; r < p.n_q; ++r) {
        const float* row = q + r * p.q_row_stride;
        for (int64_t a = 0; a < d; ++a) {
          const double da = row[a] - mean[static_cast<size_t>(a)];
          for (int64_t b = 0; b < d; ++b) cov[static_cast<size_t>(a * d + b)] += da * (row[b] - mean[static_cast<size_t>(b)]);
        }
      }
      for (double& c : cov) c /= static_cast<double>(n_rows);
    }
    double top = -std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < n_keys; ++t) {
      const double* k = load_key(t);
      double s = 0.0;
      for (int64_t j = 0; j < d; ++j) s += mean[static_cast<size_t>(j)] * k[j];
      s *= inv_sqrt_d;
      if (p.use_covariance) {
        double quad = 0.0;
        for (int64_t a = 0; a < d; ++a) {
          double row = 0.0;
          for (int64_t b = 0; b < d; ++b) row += cov[static_cast<size_t>(a * d + b)] * k[b];
          quad += k[a] * row;
        }
        s += quad / static_cast<double>(d) / 2.0;
      }
      logit[static_cast<size_t>(t)] = s;
      top = std::max(top, s);
    }
    double sum = 0.0;
    for (double& s : logit) sum += (s = std::exp(s - top));
    for (int64_t t = 0; t < n_keys; ++t) prob[static_cast<size_t>(t)] += logit[static_cast<size_t>(t)] / sum / static_cast<double>(group);
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
