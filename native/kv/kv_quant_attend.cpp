// Driver of the quantized decode kernel: splits each head into chunks of
// whole groups, runs every head's chunks on the pool together with the
// active ISA's kernel, and merges each head's partial softmax states by
// log-sum-exp (fixed chunking and merge order: results do not depend on the
// thread count).
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
namespace qattn_avx512 {
void run_chunk(const QuantHeadView&, const QuantAttendArgs&, int64_t, int64_t, int64_t, float*, float*, float*, float*);
int64_t workspace_floats(const QuantLayout& L, int64_t rows);
}

namespace {
// Chunks of at least 8 groups (256 tokens at group 32), at most about 32 per
// head: enough to share among threads, few enough that the partial results
// stay small and merge quickly. Depends on the length only, so results do
// not depend on the thread count.
int64_t chunk_groups(int64_t n_groups) {
  const int64_t by_count = (n_groups + 31) / 32;
  return by_count > 8 ? by_count : 8;
}

using QuantRunChunk = void (*)(const QuantHeadView&, const QuantAttendArgs&, int64_t, int64_t, int64_t, float*, float*, float*, float*);

// Per-worker scratch floats of one head: key or value rows [G, d], scores
// [R, G], the AVX2 int4 path's workspace (kv_quant_attend_avx2.cpp), then
// the AVX-512 int8 path's scores and workspace.
int64_t quant_scratch_floats(const QuantLayout& L, int64_t R, IsaLevel isa) {
  const int64_t d = L.head_dim, vg = L.v_groups;
  const int64_t avx2 = (L.group * d + R * L.group) + (2 * d + 2 * R + 2 * L.group * vg + 2 * R * vg) + (R * d + 2 * R * vg * L.group + L.group * d) / 4 + 64;
  return avx2 + (isa >= IsaLevel::Avx512 ? R * L.group + qattn_avx512::workspace_floats(L, R) : 0);
}

struct QuantHeadPlan {
  int64_t len = 0, span = 0, chunks = 0;
  int64_t first_chunk = 0;  // index of its first chunk among all heads' chunks
  int64_t state = 0;        // offset of its (m, l) among all heads' [chunks, R]
};

// Grown by each calling thread as needed, never shrunk: no allocation per
// decode step once it has seen the largest shape.
thread_local std::vector<float> t_quant_work;
thread_local std::vector<QuantHeadPlan> t_quant_plans;

struct QuantRunCtx {
  const QuantHeadView* heads;
  const QuantAttendArgs* args;
  const QuantHeadPlan* plans;
  int64_t n_heads;
  QuantRunChunk run;
  float *m, *l, *acc, *scratch;
  int64_t scratch_per_worker;
};

void quant_run_one(void* p, int64_t index, int worker) {
  const QuantRunCtx& x = *static_cast<const QuantRunCtx*>(p);
  // The head whose chunks hold `index` (plans are in order of first_chunk).
  int64_t h = 0;
  while (h + 1 < x.n_heads && x.plans[h + 1].first_chunk <= index) ++h;
  const QuantHeadPlan& P = x.plans[h];
  const QuantAttendArgs& a = x.args[h];
  const int64_t R = a.rows, d = x.heads[h].layout->head_dim;
  const int64_t c = index - P.first_chunk;
  const int64_t t0 = c * P.span, t1 = std::min(P.len, t0 + P.span);
  const int64_t at = P.state + c * R;
  x.run(x.heads[h], a, t0, t1, P.len, x.m + at, x.l + at, x.acc + at * d, x.scratch + worker * x.scratch_per_worker);
}

// Merges head h's chunk states into its output rows (and lse).
void quant_merge_head(const QuantHeadPlan& P, const QuantAttendArgs& a, int64_t d, const float* m, const float* l, const float* acc) {
  const int64_t R = a.rows;
  for (int64_t r = 0; r < R; ++r) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < P.chunks; ++c) mx = std::max(mx, m[P.state + c * R + r]);
    float* out = a.out[r];
    std::fill(out, out + d, 0.0f);
    if (mx == -std::numeric_limits<float>::infinity()) {
      if (a.lse) a.lse[r] = mx;
      continue;
    }
    float total = 0.0f;
    for (int64_t c = 0; c < P.chunks; ++c) {
      const int64_t at = P.state + c * R + r;
      const float mc = m[at];
      if (mc == -std::numeric_limits<float>::infinity()) continue;
      const float w = std::exp(mc - mx);
      total += w * l[at];
      const float* x = acc + at * d;
      for (int64_t k = 0; k < d; ++k) out[k] += w * x[k];
    }
    const float inv = 1.0f / total;
    for (int64_t k = 0; k < d; ++k) out[k] *= inv;
    if (a.lse) a.lse[r] = mx + std::log(total);
  }
}
}  // namespace

// One pass over the pool for heads [0, n_heads) (quant_decode_heads batches them).
static Status quant_decode_batch(const QuantHeadView* heads, const QuantAttendArgs* args, int64_t n_heads, IsaLevel isa) {
  const QuantRunChunk run = isa >= IsaLevel::Avx512 ? qattn_avx512::run_chunk : isa >= IsaLevel::Avx2 ? qattn_avx2::run_chunk : qattn_scalar::run_chunk;
  int64_t total_chunks = 0, total_states = 0, acc_floats = 0, per_worker = 0;
  try {
    t_quant_plans.resize(static_cast<size_t>(n_heads));
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("quantized attention: cannot allocate partial results");
  }
  for (int64_t h = 0; h < n_heads; ++h) {
    const QuantAttendArgs& a = args[h];
    const QuantLayout& L = *heads[h].layout;
    QuantHeadPlan& P = t_quant_plans[h];
    P.len = heads[h].n_blocks * L.group + heads[h].tail;
    P.span = chunk_groups((P.len + L.group - 1) / L.group) * L.group;
    P.chunks = (P.len + P.span - 1) / P.span;
    P.first_chunk = total_chunks;
    P.state = total_states;
    total_chunks += P.chunks;
    total_states += P.chunks * a.rows;
    acc_floats += P.chunks * a.rows * L.head_dim;
    per_worker = std::max(per_worker, quant_scratch_floats(L, a.rows, isa));
  }
  const int workers = ThreadPool::instance().size();
  const int64_t need = 2 * total_states + acc_floats + workers * per_worker;
  try {
    if (static_cast<int64_t>(t_quant_work.size()) < need) t_quant_work.resize(static_cast<size_t>(need));
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("quantized attention: cannot allocate partial results");
  }
  QuantRunCtx x;
  x.heads = heads;
  x.args = args;
  x.plans = t_quant_plans.data();
  x.n_heads = n_heads;
  x.run = run;
  x.m = t_quant_work.data();
  x.l = x.m + total_states;
  x.acc = x.l + total_states;
  x.scratch = x.acc + acc_floats;
  x.scratch_per_worker = per_worker;
  // At most `workers`: the scratch was sized for them.
  ThreadPool::instance().parallel_for(total_chunks, quant_run_one, &x, workers);
  for (int64_t h = 0; h < n_heads; ++h) quant_merge_head(t_quant_plans[h], args[h], heads[h].layout->head_dim, x.m, x.l, x.acc);
  return Status::ok();
}

Status quant_decode_heads(const QuantHeadView* heads, const QuantAttendArgs* args, int64_t n_heads) {
  for (int64_t h = 0; h < n_heads; ++h) {
    if (args[h].rows < 1 || args[h].rows > kQuantMaxRows) return Status::invalid("quantized attention: expected 1 to 64 query rows per KV head");
  }
  const IsaLevel isa = active_isa();
  // Heads go in batches whose partial results stay under about 16 MiB (a
  // layer of typical heads is one batch; thousands of heads with 64 rows
  // would otherwise hold gigabytes). Each head's result does not depend on
  // the batching.
  constexpr int64_t kBatchFloats = int64_t(1) << 22;
  for (int64_t h0 = 0; h0 < n_heads;) {
    int64_t h1 = h0, floats = 0;
    while (h1 < n_heads) {
      const QuantLayout& L = *heads[h1].layout;
      const int64_t len = heads[h1].n_blocks * L.group + heads[h1].tail;
      const int64_t span = chunk_groups((len + L.group - 1) / L.group) * L.group;
      const int64_t f = (len + span - 1) / span * args[h1].rows * (L.head_dim + 2);
      if (h1 > h0 && floats + f > kBatchFloats) break;
      floats += f;
      ++h1;
    }
    const Status st = quant_decode_batch(heads + h0, args + h0, h1 - h0, isa);
    if (!st.is_ok()) return st;
    h0 = h1;
  }
  return Status::ok();
}

Status quant_decode_head(const QuantHeadView& h, const QuantAttendArgs& a) { return quant_decode_heads(&h, &a, 1); }

}  // namespace tp::kv
