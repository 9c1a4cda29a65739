// Softmax probabilities of arbitrary query rows, reduced per key (max or
// sum), through the probabilities-only kernel of kv_dots.h (no value reads,
// no outputs), and the 1-D pooling shared by the window-based policies.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/buffer.h"
#include "kv_dots.h"
#include "kv_common.h"

namespace tp::kv {

namespace {

constexpr int64_t kMaxBlockRows = 128;  // query rows per KV head in one kernel run (bounds the scratch)
constexpr size_t kKeepScratch = size_t(16) << 20;  // floats (64 MiB) of scratch a thread keeps between calls

// The kernel's per-head scratch (nKv x rows floats: 16 MiB at 32k keys) is
// kept by the calling thread between calls up to kKeepScratch: a fresh
// buffer of that size costs thousands of first-touch page faults, as much
// time as the arithmetic it serves.
struct Scratch {
  FloatBuffer buf;
  float* get(size_t n) {
    if (buf.size() < n) {
      buf = FloatBuffer();  // free first: never hold both
      buf = FloatBuffer(n);
    }
    return buf.data();
  }
  void trim() {
    if (buf.size() > kKeepScratch) buf = FloatBuffer();
  }
};
thread_local Scratch t_scratch;

}  // namespace

// The rows of each KV head are (query head g of the group, row i), g-major,
// run through the kernel in blocks of at most kMaxBlockRows: Q^T scaled by
// 1/sqrt(headDim) and zero padded, with each row's last visible key.
Status reduce_probs(const KvScoreParams& p, const QueryRows& rows, bool take_max, std::vector<float>& acc) {
  if (acc.size() != static_cast<size_t>(p.n_kv_heads * p.n_kv)) return Status::internal("reduce_probs: accumulator size");
  if (rows.n_rows <= 0 || p.n_kv == 0) return Status::ok();
  const int64_t group = p.n_heads / p.n_kv_heads;
  const int64_t total = group * rows.n_rows;  // rows per KV head
  const int64_t d = p.head_dim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t n_chunks = (p.n_kv + kDotsChunk - 1) / kDotsChunk;
  try {
    for (int64_t first = 0; first < total; first += kMaxBlockRows) {
      const int64_t n = std::min(kMaxBlockRows, total - first);
      const int64_t ld = (n + kDotsRowAlign - 1) / kDotsRowAlign * kDotsRowAlign;
      std::vector<float> qt(static_cast<size_t>(p.n_kv_heads * d * ld), 0.0f);
      std::vector<int64_t> limit(static_cast<size_t>(p.n_kv_heads * ld), -1);
      for (int64_t kvh = 0; kvh < p.n_kv_heads; ++kvh) {
        for (int64_t t = 0; t < n; ++t) {
          const int64_t r = first + t, h = kvh * group + r / rows.n_rows, i = r % rows.n_rows;
          const float* q = rows.q + h * rows.head_stride + i * rows.row_stride;
          float* dst = qt.data() + kvh * d * ld + t;
          for (int64_t j = 0; j < d; ++j) dst[j * ld] = q[j] * scale;
          limit[static_cast<size_t>(kvh * ld + t)] = rows.last_visible < 0 ? p.n_kv - 1 : std::min(p.n_kv - 1, rows.last_visible + i);
        }
      }
      const size_t n_e = static_cast<size_t>(p.n_kv * ld);
      float* e = t_scratch.get(n_e + static_cast<size_t>(n_chunks * ld * 2));
      MassPlan plan;
      plan.n_kv_heads = p.n_kv_heads;
      plan.n_kv = p.n_kv;
      plan.head_dim = d;
      plan.n_rows_pad = ld;
      plan.k = KeyRows{p.k, p.k_dtype, p.k_head_stride, p.k_row_stride};
      plan.qt = qt.data();
      plan.limit = limit.data();
      plan.take_max = take_max;
      plan.acc = acc.data();
      plan.e = e;
      plan.stats = e + n_e;
      run_mass(plan);
    }
  } catch (const std::bad_alloc&) {
    t_scratch.trim();
    return Status::out_of_memory("kv: cannot allocate probability scratch");
  }
  t_scratch.trim();
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
