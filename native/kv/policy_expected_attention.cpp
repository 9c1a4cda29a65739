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
// S is the population covariance (divided by the number of rows N), so
// k^T S k = (1/N) sum_r (z_r . k)^2 over the centred query rows z_r: the
// logits of a KV head are one product of [mean; z_1 .. z_N] per query head
// with the keys (kv_dots.h run_quad, f32), the statistics in double.
#include <algorithm>
#include <cmath>
#include <new>
#include <vector>

#include "../core/buffer.h"
#include "kv_common.h"
#include "kv_dots.h"

namespace tp::kv {

namespace {

// Rows of the quadratic form for one query head, written from column col0
// of qt ([headDim][ld]): the mean scaled by 1/sqrt(d) (linear coefficient 1),
// then the centred rows (square coefficient 1 / (2 d N)); lin and sq are
// that head's coefficient rows ([ld], 0 elsewhere).
void head_rows(const KvScoreParams& p, const float* q, int64_t n_rows, int64_t ld, int64_t col0,
               float* qt, float* lin, float* sq) {
  const int64_t d = p.head_dim;
  std::vector<double> mean(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t j = 0; j < d; ++j) mean[static_cast<size_t>(j)] += q[r * p.q_row_stride + j];
  }
  for (double& m : mean) m /= static_cast<double>(n_rows);
  const double inv_sqrt_d = 1.0 / std::sqrt(static_cast<double>(d));
  for (int64_t j = 0; j < d; ++j) qt[j * ld + col0] = static_cast<float>(mean[static_cast<size_t>(j)] * inv_sqrt_d);
  lin[col0] = 1.0f;
  if (!p.use_covariance) return;
  const float c = static_cast<float>(1.0 / (2.0 * static_cast<double>(d) * static_cast<double>(n_rows)));
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t j = 0; j < d; ++j) {
      qt[j * ld + col0 + 1 + r] = static_cast<float>(q[r * p.q_row_stride + j] - mean[static_cast<size_t>(j)]);
    }
    sq[col0 + 1 + r] = c;
  }
}

}  // namespace

Status score_expected_attention(const KvScoreParams& p) {
  force_from(p, 0);  // every key +infinity; the non-sink keys are overwritten below
  if (p.n_kv <= p.sinks) return Status::ok();
  const int64_t d = p.head_dim;
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t first_pos = p.n_kv - p.n_q;              // position of query row 0
  const int64_t first_row = std::max<int64_t>(p.sinks - first_pos, 0);
  const int64_t n_rows = p.n_q - first_row;               // >= 1: row nQ-1 is at nKv-1 >= sinks
  const int64_t n_keys = p.n_kv - p.sinks;
  const int64_t used = 1 + (p.use_covariance ? n_rows : 0);  // rows per query head
  const int64_t ld = (group * used + kDotsRowAlign - 1) / kDotsRowAlign * kDotsRowAlign;
  try {
    std::vector<float> qt(static_cast<size_t>(p.n_kv_heads * d * ld), 0.0f);
    std::vector<float> lin(static_cast<size_t>(p.n_kv_heads * group * ld), 0.0f), sq(lin.size(), 0.0f);
    for (int64_t kvh = 0; kvh < p.n_kv_heads; ++kvh) {
      for (int64_t g = 0; g < group; ++g) {
        const float* q = p.q + (kvh * group + g) * p.q_head_stride + first_row * p.q_row_stride;
        const int64_t coef = (kvh * group + g) * ld;
        head_rows(p, q, n_rows, ld, g * used, qt.data() + kvh * d * ld, lin.data() + coef, sq.data() + coef);
      }
    }
    FloatBuffer logits(static_cast<size_t>(p.n_kv_heads * group * n_keys));
    QuadPlan plan;
    plan.n_kv_heads = p.n_kv_heads;
    plan.n_kv = p.n_kv;
    plan.first = p.sinks;
    plan.head_dim = d;
    plan.n_rows_pad = ld;
    plan.n_segments = group;
    plan.segment = used;
    plan.k = KeyRows{p.k, p.k_dtype, p.k_head_stride, p.k_row_stride};
    plan.qt = qt.data();
    plan.lin = lin.data();
    plan.sq = sq.data();
    plan.logits = logits.data();
    run_quad(plan);
    // Softmax per query head over the non-sink keys, averaged over the group;
    // then the value-norm factor.
    std::vector<float> norms(p.use_vnorm ? static_cast<size_t>(n_keys) : 0);
    const KeyRows v{p.v, p.v_dtype, p.v_head_stride, p.v_row_stride};
    for (int64_t kvh = 0; kvh < p.n_kv_heads; ++kvh) {
      float* out = p.scores + kvh * p.n_kv + p.sinks;
      softmax_sum(logits.data() + kvh * group * n_keys, group, n_keys, 1.0f / static_cast<float>(group), out);
      if (!p.use_vnorm) continue;
      row_sq_norms(v, kvh, p.sinks, n_keys, d, norms.data());
      for (int64_t t = 0; t < n_keys; ++t) out[t] = (out[t] + p.epsilon) * std::sqrt(norms[static_cast<size_t>(t)]);
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("expected_attention: cannot allocate scratch");
  }
  return Status::ok();
}

}  // namespace tp::kv
