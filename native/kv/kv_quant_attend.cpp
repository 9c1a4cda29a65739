// Driver of the quantized decode kernel: splits a head into chunks of whole
// groups, runs them on the pool with the active ISA's kernel, and merges the
// partial softmax states by log-sum-exp (fixed chunking: results do not
// depend on the thread count).
#include "kv_quant_attend.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"

namespace tp::kv {
namespace qattn_scalar {
void run_chunk(const QuantHeadView&, const QuantAttendArgs&, int64_t, int64_t, int64_t, float*, float*, float*, float*);
}
namespace qattn_avx2 {
void run_chunk(const QuantHeadView&, const QuantAttendArgs&, int64_t, int64_t, int64_t, float*, float*, float*, float*);
}

namespace {
// Chunks of at least 8 groups (256 tokens at group 32), at most about 32 per
// head: enough to share among threads, few enough that the partial results
// stay small (no large allocation per call) and merge quickly. Depends on the
// length only, so results do not depend on the thread count.
int64_t chunk_groups(int64_t n_groups) {
  const int64_t by_count = (n_groups + 31) / 32;
  return by_count > 8 ? by_count : 8;
}
}

Status quant_decode_head(const QuantHeadView& h, const QuantAttendArgs& a) {
  if (a.rows < 1 || a.rows > kQuantMaxRows) return Status::invalid("quantized attention: expected 1 to 64 query rows per KV head");
  const QuantLayout& L = *h.layout;
  const int64_t d = L.head_dim, R = a.rows;
  const int64_t len = h.n_blocks * L.group + h.tail;
  const int64_t span = chunk_groups((len + L.group - 1) / L.group) * L.group;
  const int64_t chunks = (len + span - 1) / span;
  const auto run = active_isa() >= IsaLevel::Avx2 ? qattn_avx2::run_chunk : qattn_scalar::run_chunk;
  std::vector<float> m, l, acc, scratch;
  // Key or value rows [G, d], scores [R, G], then the int4 path's workspace (kv_quant_attend_avx2.cpp).
  const int64_t vg = L.v_groups;
  const int64_t scratch_floats = (L.group * d + R * L.group) + (2 * d + 2 * R + 2 * L.group * vg + 2 * R * vg) + (R * d + 2 * R * vg * L.group + L.group * d) / 4 + 64;
  const int workers = ThreadPool::instance().size();
  try {
    m.assign(static_cast<size_t>(chunks * R), -std::numeric_limits<float>::infinity());
    l.assign(static_cast<size_t>(chunks * R), 0.0f);
    acc.assign(static_cast<size_t>(chunks * R * d), 0.0f);
    scratch.assign(static_cast<size_t>(workers * scratch_floats), 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("quantized attention: cannot allocate partial results");
  }
  ThreadPool::instance().parallel_for(chunks, [&](int64_t c, int worker) {
    const int64_t t0 = c * span, t1 = std::min(len, t0 + span);
    run(h, a, t0, t1, len, m.data() + c * R, l.data() + c * R, acc.data() + c * R * d,
        scratch.data() + worker * scratch_floats);
  }, nullptr, workers);  // at most `workers`: the scratch was sized for them
  for (int64_t r = 0; r < R; ++r) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < chunks; ++c) mx = std::max(mx, m[c * R + r]);
    float* out = a.out[r];
    std::fill(out, out + d, 0.0f);
    if (mx == -std::numeric_limits<float>::infinity()) {
      if (a.lse) a.lse[r] = mx;
      continue;
    }
    float total = 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
      const float mc = m[c * R + r];
      if (mc == -std::numeric_limits<float>::infinity()) continue;
      const float w = std::exp(mc - mx);
      total += w * l[c * R + r];
      const float* x = acc.data() + (c * R + r) * d;
      for (int64_t k = 0; k < d; ++k) out[k] += w * x[k];
    }
    const float inv = 1.0f / total;
    for (int64_t k = 0; k < d; ++k) out[k] *= inv;
    if (a.lse) a.lse[r] = mx + std::log(total);
  }
  return Status::ok();
}

}  // namespace tp::kv
