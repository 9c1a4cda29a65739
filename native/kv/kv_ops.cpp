// Validation, dispatch, selection and compaction for the stateless KV API.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../core/checked_math.h"
#include "../core/thread_pool.h"
#include "kv_common.h"
#include "kv_topk.h"

namespace tp {

namespace kv {

Status attention_mass(const KvScoreParams& p, int64_t n_last, std::vector<float>& mass) {
  try {
    mass.assign(static_cast<size_t>(p.n_kv_heads * p.n_kv), 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("kv: cannot allocate attention scratch");
  }
  // The last n_last query rows, causal: row r is position nKv - n_last + r.
  QueryRows rows;
  rows.q = p.q + (p.n_q - n_last) * p.q_row_stride;
  rows.head_stride = p.q_head_stride;
  rows.row_stride = p.q_row_stride;
  rows.n_rows = n_last;
  rows.last_visible = p.n_kv - n_last;
  return reduce_probs(p, rows, false, mass);
}

void force_from(const KvScoreParams& p, int64_t from) {
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t pos = std::max<int64_t>(from, 0); pos < p.n_kv; ++pos) {
      p.scores[h * p.n_kv + pos] = std::numeric_limits<float>::infinity();
    }
  }
}

}  // namespace kv

Status run_kv_score(const char* name, const KvScoreParams& p) {
  const KvPolicy* policy = find_kv_policy(name);
  if (!policy) return Status::invalid(std::string("policy: expected a known policy name, received \"") + name + "\"");
  if (p.n_kv_heads < 1 || p.n_kv < 0 || p.head_dim < 1 || p.n_kv > kMaxDim || p.head_dim > kMaxDim || p.n_kv_heads > kMaxDim) {
    return Status::invalid("k.shape: expected nKvHeads >= 1, nKv >= 0, headDim >= 1, received [" + num(p.n_kv_heads) + ", " + num(p.n_kv) + ", " + num(p.head_dim) + "]");
  }
  Status s = check_view("k", p.n_kv_heads, p.n_kv, p.head_dim, p.k_head_stride, p.k_row_stride, p.k_len);
  if (!s.is_ok()) return s;
  s = check_view("v", p.n_kv_heads, p.n_kv, p.head_dim, p.v_head_stride, p.v_row_stride, p.v_len);
  if (!s.is_ok()) return s;
  const int64_t cells = checked_mul(p.n_kv_heads, p.n_kv);
  if (p.scores == nullptr || cells < 0 || p.scores_len != cells) {
    return Status::invalid("scores: expected nKvHeads * nKv = " + num(cells) + " elements, received " + num(p.scores_len));
  }
  if (p.key_mass && p.key_mass_len != cells) {
    return Status::invalid("keyMass: expected nKvHeads * nKv = " + num(cells) + " elements, received " + num(p.key_mass_len));
  }
  if (p.q || p.draft_q) {
    if (p.n_heads < 1 || p.n_heads > kMaxDim || p.n_heads % p.n_kv_heads != 0) {
      return Status::invalid("queries.shape[0] (nHeads): expected a multiple of nKvHeads = " + num(p.n_kv_heads) + ", received " + num(p.n_heads));
    }
  }
  if (p.draft_q) {
    if (p.n_draft < 1 || p.n_draft > kMaxDim) {
      return Status::invalid("draftQueries.shape[1] (nDraft): expected at least 1 draft query, received " + num(p.n_draft));
    }
    s = check_view("draftQueries", p.n_heads, p.n_draft, p.head_dim, p.draft_head_stride, p.draft_row_stride, p.draft_q_len);
    if (!s.is_ok()) return s;
  }
  if (policy->needs_draft && !p.draft_q) {
    return Status::invalid(std::string("draftQueries: expected draft queries for policy \"") + name + "\", received none");
  }
  if (p.q) {
    if (p.n_q < 1 || p.n_q > p.n_kv) {
      return Status::invalid("queries.shape[1] (nQ): expected 1 to nKv = " + num(p.n_kv) + " (the last nQ positions), received " + num(p.n_q));
    }
    s = check_view("queries", p.n_heads, p.n_q, p.head_dim, p.q_head_stride, p.q_row_stride, p.q_len);
    if (!s.is_ok()) return s;
  }
  const bool have_mass = policy->accepts_key_mass && p.key_mass;
  if ((policy->needs_queries || (policy->accepts_key_mass && !have_mass)) && !p.q) {
    return Status::invalid(std::string("queries: expected queries for policy \"") + name + "\", received none");
  }
  if (p.sinks < 0 || p.recent < 0 || p.window < 1 || p.kernel < 1 || p.sinks > kMaxDim || p.recent > kMaxDim || p.window > kMaxDim || p.kernel > kMaxDim) {
    return Status::invalid("policy: expected sinks >= 0, recent >= 0, window >= 1, kernel >= 1");
  }
  if (p.pooling != KvPooling::Avg && p.pooling != KvPooling::Max) return Status::invalid("policy.pooling: expected 0 (avg) or 1 (max)");
  if (p.reduction != KvPooling::Avg && p.reduction != KvPooling::Max) return Status::invalid("policy.reduction: expected 0 (mean) or 1 (max)");
  if (!(p.epsilon >= 0.0f) || !std::isfinite(p.epsilon)) return Status::invalid("policy.epsilon: expected a finite number >= 0");
  if (p.n_kv == 0) return Status::ok();
  return policy->score(p);
}

namespace {

struct SelectJob {
  const float* scores;
  int64_t n_kv, n_keep;
  int32_t* out;
  std::atomic<bool> out_of_memory{false};
};

void select_head_impl(SelectJob* job, int64_t h);

// Pool task: an exception must never leave a pool worker thread.
void select_head(void* ctx, int64_t h, int) {
  auto* job = static_cast<SelectJob*>(ctx);
  try {
    select_head_impl(job, h);
  } catch (const std::bad_alloc&) {
    job->out_of_memory = true;
  }
}

void select_head_impl(SelectJob* job, int64_t h) {
  const float* s = job->scores + h * job->n_kv;
  // Higher score first, then the earlier position; written ascending.
  std::vector<uint32_t> keys;
  const kv::TopK top = kv::top_k(s, job->n_kv, job->n_keep, keys);
  int64_t ties = top.ties;
  int32_t* out = job->out + h * job->n_keep;
  for (int64_t r = 0; r < job->n_kv; ++r) {
    if (top.keeps(keys[static_cast<size_t>(r)], ties)) *out++ = static_cast<int32_t>(r);
  }
}

}  // namespace

Status run_kv_select(const float* scores, int64_t scores_len, int64_t n_kv_heads, int64_t n_kv,
                     int64_t n_keep, int32_t* out, int64_t out_len) {
  if (n_kv_heads < 0 || n_kv < 0 || n_kv > std::numeric_limits<int32_t>::max() || n_kv_heads > kMaxDim) {
    return Status::invalid("scores.shape: expected [nKvHeads >= 0, 0 <= nKv < 2^31], received [" + num(n_kv_heads) + ", " + num(n_kv) + "]");
  }
  const int64_t cells = checked_mul(n_kv_heads, n_kv);
  if (cells < 0 || scores_len != cells) return Status::invalid("scores: expected " + num(cells) + " elements, received " + num(scores_len));
  if (n_keep < 0 || n_keep > n_kv) return Status::invalid("budget: expected 0 to nKv = " + num(n_kv) + " kept tokens, received " + num(n_keep));
  const int64_t kept = checked_mul(n_kv_heads, n_keep);
  if (kept < 0 || out_len != kept) return Status::invalid("out: expected " + num(kept) + " elements, received " + num(out_len));
  for (int64_t x = 0; x < scores_len; ++x) {
    if (std::isnan(scores[x])) {
      return Status::invalid("scores[" + num(x / std::max<int64_t>(n_kv, 1)) + "][" + num(x % std::max<int64_t>(n_kv, 1)) + "]: expected a number, received NaN");
    }
  }
  if (n_keep == 0 || n_kv_heads == 0) return Status::ok();
  SelectJob job;
  job.scores = scores;
  job.n_kv = n_kv;
  job.n_keep = n_keep;
  job.out = out;
  ThreadPool& pool = ThreadPool::instance();
  pool.parallel_for(n_kv_heads, select_head, &job, pool.size());
  if (job.out_of_memory) return Status::out_of_memory("selectKv: cannot allocate scratch");
  return Status::ok();
}

Status run_kv_compact(const KvCompactParams& p) {
  if (p.n_kv_heads < 0 || p.n_kv < 0 || p.head_dim < 0 || p.n_keep < 0 || p.n_kv_heads > kMaxDim || p.n_kv > kMaxDim || p.head_dim > kMaxDim || p.n_keep > kMaxDim) {
    return Status::invalid("compactKv: expected non-negative dimensions below 2^40");
  }
  Status s = check_view("src", p.n_kv_heads, p.n_kv, p.head_dim, p.head_stride, p.row_stride, p.src_len);
  if (!s.is_ok()) return s;
  const int64_t kept = checked_mul(p.n_kv_heads, p.n_keep);
  const int64_t dst_need = checked_mul(kept, p.head_dim);
  if (kept < 0 || p.indices_len != kept) return Status::invalid("indices: expected " + num(kept) + " elements, received " + num(p.indices_len));
  if (dst_need < 0 || p.dst_len != dst_need) return Status::invalid("dst: expected " + num(dst_need) + " elements, received " + num(p.dst_len));
  for (int64_t x = 0; x < p.indices_len; ++x) {
    if (p.indices[x] < 0 || p.indices[x] >= p.n_kv) {
      return Status::invalid("indices[" + num(x / p.n_keep) + "][" + num(x % p.n_keep) + "]: expected a key position in [0, " + num(p.n_kv - 1) + "], received " + num(p.indices[x]));
    }
  }
  const size_t es = dtype_size(p.dtype);
  const size_t row_bytes = static_cast<size_t>(p.head_dim) * es;
  const char* src = static_cast<const char*>(p.src);
  char* dst = static_cast<char*>(p.dst);
  for (int64_t h = 0; h < p.n_kv_heads; ++h) {
    for (int64_t j = 0; j < p.n_keep; ++j) {
      const int64_t pos = p.indices[h * p.n_keep + j];
      std::memcpy(dst + static_cast<size_t>((h * p.n_keep + j) * p.head_dim) * es,
                  src + static_cast<size_t>(h * p.head_stride + pos * p.row_stride) * es, row_bytes);
    }
  }
  return Status::ok();
}

}  // namespace tp
