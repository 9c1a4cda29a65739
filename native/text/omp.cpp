// Batched OMP (see omp.h for the semantics and the sources followed).
//
// Work is split into groups of up to kOmpGroup targets; one pool task runs a
// group in lock step. Per group and step the newly needed Gram columns are
// computed in ONE pass over the atoms (omp_dots), so the atoms, the largest
// array ([n_atoms, dim]), stream from memory once per step per group and not
// once per target. Per target and step the cost is then O(n_atoms * count)
// for the correlation update and O(count^2) for the Cholesky extension.
#include "omp.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TP_OMPC_X86 1
#endif

namespace tp::text {
namespace {

constexpr int kOmpGroup = 12;
// An atom whose component outside the span of the picked atoms has less than
// this share of its squared norm is treated as dependent (f32 Gram entries
// carry ~1e-6 relative error, so exact duplicates land near 1e-6).
constexpr double kDependentRel = 1e-4;
// A target whose squared residual falls below this share of ||t||^2 is done.
constexpr double kResidualRel = 1e-10;
// ... or once every |<r, a>| <= this * ||t|| * max ||a||: the residual is
// orthogonal to every atom up to f32 rounding of alpha0 - G gamma (k > rank).
constexpr double kCorrelationRel = 1e-5;
constexpr int64_t kAlphaChunk = 2048;

// Gram columns G[:, j] = Phi a_j shared by all groups. state: 0 absent, 1
// claimed (being computed by one group), 2 ready (cols[j] published with
// release order). A group that needs a column another group is computing
// computes its own copy rather than wait.
class GramCache {
 public:
  GramCache(int64_t n_atoms, int64_t budget_cols)
      : n_(n_atoms), state_(new std::atomic<uint8_t>[n_atoms]), cols_(new float*[n_atoms]), budget_(budget_cols) {
    for (int64_t j = 0; j < n_; j++) {
      state_[j].store(0, std::memory_order_relaxed);
      cols_[j] = nullptr;
    }
  }
  ~GramCache() {
    for (int64_t j = 0; j < n_; j++) delete[] cols_[j];
  }
  const float* ready(int64_t j) const { return state_[j].load(std::memory_order_acquire) == 2 ? cols_[j] : nullptr; }
  // A buffer to compute column j into and publish later, or nullptr (taken
  // by another group, or over budget).
  float* claim(int64_t j) {
    uint8_t expected = 0;
    if (!state_[j].compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return nullptr;
    if (budget_.fetch_sub(1, std::memory_order_relaxed) <= 0) {
      budget_.fetch_add(1, std::memory_order_relaxed);
      state_[j].store(0, std::memory_order_release);
      return nullptr;
    }
    float* p = new (std::nothrow) float[n_];
    if (!p) {
      budget_.fetch_add(1, std::memory_order_relaxed);
      state_[j].store(0, std::memory_order_release);
      return nullptr;
    }
    cols_[j] = p;
    return p;
  }
  void publish(int64_t j) { state_[j].store(2, std::memory_order_release); }

 private:
  int64_t n_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::unique_ptr<float*[]> cols_;
  std::atomic<int64_t> budget_;
};

// Largest |x[i]| over i in [0, n) and its first index; (0, -1) when n == 0.
float abs_argmax_scalar(const float* x, int64_t n, int64_t* at) {
  float best = -1.0f;
  int64_t bi = -1;
  for (int64_t i = 0; i < n; i++) {
    const float v = std::fabs(x[i]);
    if (v > best) {
      best = v;
      bi = i;
    }
  }
  *at = bi;
  return bi < 0 ? 0.0f : best;
}

#if TP_OMPC_X86
__attribute__((target("avx2,fma"))) float abs_argmax_avx2(const float* x, int64_t n, int64_t* at) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  const int64_t n8 = n & ~int64_t(7);
  for (int64_t i = 0; i < n8; i += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float best = 0.0f;
  for (int l = 0; l < 8; l++) best = std::max(best, lanes[l]);
  for (int64_t i = n8; i < n; i++) best = std::max(best, std::fabs(x[i]));
  // First index holding the maximum (NaN never equals: then none, see below).
  const __m256 b = _mm256_set1_ps(best);
  for (int64_t i = 0; i < n8; i += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), b, _CMP_EQ_OQ));
    if (mask) {
      *at = i + __builtin_ctz(static_cast<unsigned>(mask));
      return best;
    }
  }
  for (int64_t i = n8; i < n; i++) {
    if (std::fabs(x[i]) == best) {
      *at = i;
      return best;
    }
  }
  *at = -1;
  return 0.0f;
}
#endif

float abs_argmax(const float* x, int64_t n, int64_t* at) {
#if TP_OMPC_X86
  if (active_isa() >= IsaLevel::Avx2) return abs_argmax_avx2(x, n, at);
#endif
  return abs_argmax_scalar(x, n, at);
}

// One target's state inside a group.
struct TargetState {
  std::vector<float> alpha0, alpha;  // [n_atoms]: Phi t, and Phi r after the last refit
  std::vector<int32_t> idx;          // picked atoms
  std::vector<const float*> col;     // their Gram columns
  std::vector<int32_t> masked;       // atoms never to pick again (picked or dependent)
  std::vector<double> L;             // [k, k] lower Cholesky factor of G_SS
  std::vector<double> z;             // L^-1 alpha0_S
  double tnorm2 = 0;
  float corr_floor = 0;              // kCorrelationRel * ||t|| * max ||a||
  int count = 0;
  bool done = false;
  int64_t cand = -1;                 // this step's candidate
  const float* cand_col = nullptr;
};

struct Job {
  const OmpProblem* p;
  const OmpResult* out;
  GramCache* cache;
  const double* atom_norm2;  // [n_atoms]
  double max_norm2;
  int64_t group;             // targets per group
  int64_t n_groups;
  std::atomic<int64_t> finished{0};
  std::mutex progress_mutex;
};

// gamma = L^-T z (back substitution), count entries.
void solve_gamma(const TargetState& s, int k, double* gamma) {
  for (int i = s.count - 1; i >= 0; i--) {
    double v = s.z[i];
    for (int m = i + 1; m < s.count; m++) v -= s.L[m * k + i] * gamma[m];
    gamma[i] = v / s.L[i * k + i];
  }
}

// alpha = alpha0 - sum_s col[s] * gamma[s], in chunks that stay in L1; then
// masked atoms are zeroed so the argmax never returns them.
void update_alpha(TargetState& s, int64_t n_atoms, const double* gamma) {
  float g[kOmpMaxK];
  for (int i = 0; i < s.count; i++) g[i] = static_cast<float>(gamma[i]);
  float* a = s.alpha.data();
  const float* a0 = s.alpha0.data();
  for (int64_t c0 = 0; c0 < n_atoms; c0 += kAlphaChunk) {
    const int64_t c1 = std::min(n_atoms, c0 + kAlphaChunk);
    for (int64_t i = c0; i < c1; i++) a[i] = a0[i];
    for (int m = 0; m < s.count; m++) {
      const float* c = s.col[m];
      const float gm = g[m];
      for (int64_t i = c0; i < c1; i++) a[i] -= gm * c[i];
    }
  }
  for (int32_t j : s.masked) a[j] = 0.0f;
}

// Tries to add the candidate (its column is ready): extends the Cholesky
// factor, or masks the atom when it is dependent on the picked ones.
void extend(TargetState& s, const Job& job) {
  const int k = job.p->k;
  const int64_t j = s.cand;
  const float* g = s.cand_col;
  const int c = s.count;
  double* row = &s.L[static_cast<size_t>(c) * k];
  double w2 = 0;
  for (int i = 0; i < c; i++) {  // forward substitution: L w = G[S, j]
    double v = g[s.idx[i]];
    for (int m = 0; m < i; m++) v -= s.L[static_cast<size_t>(i) * k + m] * row[m];
    row[i] = v / s.L[static_cast<size_t>(i) * k + i];
    w2 += row[i] * row[i];
  }
  const double n2 = job.atom_norm2[j];
  const double d2 = n2 - w2;
  s.masked.push_back(static_cast<int32_t>(j));
  if (!(n2 > 0) || !(d2 > kDependentRel * n2)) {  // dependent (or zero) atom: skip it
    for (int i = 0; i < c; i++) row[i] = 0;
    s.alpha[j] = 0.0f;
    return;
  }
  const double d = std::sqrt(d2);
  row[c] = d;
  double zc = s.alpha0[j];
  for (int m = 0; m < c; m++) zc -= row[m] * s.z[m];
  s.z[c] = zc / d;
  s.idx[c] = static_cast<int32_t>(j);
  s.col[c] = g;
  s.count = c + 1;
  double z2 = 0;
  for (int m = 0; m <= c; m++) z2 += s.z[m] * s.z[m];
  if (s.count == k || s.tnorm2 - z2 <= kResidualRel * s.tnorm2) {
    s.done = true;
    return;
  }
  double gamma[kOmpMaxK];
  solve_gamma(s, k, gamma);
  update_alpha(s, job.p->n_atoms, gamma);
}

void write_result(const TargetState& s, const Job& job, int64_t t) {
  const int k = job.p->k;
  double gamma[kOmpMaxK];
  solve_gamma(s, k, gamma);
  int32_t* idx = job.out->indices + t * k;
  float* cf = job.out->coeffs + t * k;
  for (int i = 0; i < k; i++) {
    idx[i] = i < s.count ? s.idx[i] : -1;
    cf[i] = i < s.count ? static_cast<float>(gamma[i]) : 0.0f;
  }
  if (job.out->counts) job.out->counts[t] = s.count;
}

void run_group(Job& job, int64_t gi) {
  const OmpProblem& p = *job.p;
  const int64_t A = p.n_atoms, D = p.dim;
  const int k = p.k;
  const int64_t t0 = gi * job.group;
  const int n = static_cast<int>(std::min(job.group, p.n_targets - t0));
  std::vector<TargetState> st(n);
  std::vector<const float*> vecs(n);
  std::vector<float*> outs(n);
  for (int i = 0; i < n; i++) {
    TargetState& s = st[i];
    s.alpha0.resize(A);
    s.alpha.resize(A);
    s.idx.assign(k, -1);
    s.col.assign(k, nullptr);
    s.L.assign(static_cast<size_t>(k) * k, 0.0);
    s.z.assign(k, 0.0);
    const float* t = p.targets + (t0 + i) * D;
    double n2 = 0;
    for (int64_t d = 0; d < D; d++) n2 += static_cast<double>(t[d]) * t[d];
    s.tnorm2 = n2;
    s.corr_floor = static_cast<float>(kCorrelationRel * std::sqrt(n2 * job.max_norm2));
    s.done = !(n2 > 0);  // a zero target picks nothing
    vecs[i] = t;
    outs[i] = s.alpha0.data();
  }
  omp_dots(p.atoms, A, D, vecs.data(), n, outs.data());  // alpha0 = Phi t for the whole group
  for (TargetState& s : st) std::copy(s.alpha0.begin(), s.alpha0.end(), s.alpha.begin());

  // Group-owned Gram columns (not in the shared cache), freed with the group.
  std::vector<std::unique_ptr<float[]>> owned;
  std::vector<int64_t> need_atoms;
  std::vector<float*> need_out;
  std::vector<int64_t> publish;
  for (;;) {
    // 1. Candidates.
    bool any = false;
    for (TargetState& s : st) {
      s.cand = -1;
      s.cand_col = nullptr;
      if (s.done) continue;
      int64_t at = -1;
      const float best = abs_argmax(s.alpha.data(), A, &at);
      if (at < 0 || !(best > s.corr_floor)) {  // residual orthogonal to every atom (or NaN)
        s.done = true;
        continue;
      }
      s.cand = at;
      any = true;
    }
    if (!any) break;
    // 2. Gram columns: cached, computed by this group once per distinct atom.
    need_atoms.clear();
    need_out.clear();
    publish.clear();
    for (TargetState& s : st) {
      if (s.cand < 0) continue;
      if ((s.cand_col = job.cache->ready(s.cand)) != nullptr) continue;
      for (size_t m = 0; m < need_atoms.size(); m++) {
        if (need_atoms[m] == s.cand) s.cand_col = need_out[m];
      }
      if (s.cand_col) continue;
      float* buf = job.cache->claim(s.cand);
      if (buf) {
        publish.push_back(s.cand);
      } else {
        owned.emplace_back(new float[A]);
        buf = owned.back().get();
      }
      need_atoms.push_back(s.cand);
      need_out.push_back(buf);
      s.cand_col = buf;
    }
    if (!need_atoms.empty()) {
      std::vector<const float*> avecs(need_atoms.size());
      for (size_t m = 0; m < need_atoms.size(); m++) avecs[m] = p.atoms + need_atoms[m] * D;
      omp_dots(p.atoms, A, D, avecs.data(), static_cast<int>(avecs.size()), need_out.data());
      for (int64_t j : publish) job.cache->publish(j);
    }
    // 3. Refit.
    for (TargetState& s : st) {
      if (s.cand >= 0) extend(s, job);
    }
  }
  for (int i = 0; i < n; i++) write_result(st[i], job, t0 + i);
}

void run_group_task(void* ctx, int64_t gi, int /*worker*/) {
  Job& job = *static_cast<Job*>(ctx);
  run_group(job, gi);
  const int64_t done = job.finished.fetch_add(std::min(job.group, job.p->n_targets - gi * job.group)) +
                       std::min(job.group, job.p->n_targets - gi * job.group);
  if (job.p->progress) {
    std::lock_guard<std::mutex> lock(job.progress_mutex);
    job.p->progress(done);
  }
}

}  // namespace

Status omp_batch(const OmpProblem& p, const OmpResult& out) {
  if (p.n_atoms < 0 || p.n_targets < 0 || p.dim < 0) return Status::invalid("omp: negative size");
  if (p.k < 1 || p.k > kOmpMaxK) return Status::invalid("k: expected an integer in [1, " + num(kOmpMaxK) + "], received " + num(p.k));
  if (p.n_targets == 0) return Status::ok();
  if (!p.targets || !out.indices || !out.coeffs) return Status::invalid("omp: missing buffer");
  if (p.n_atoms == 0 || p.dim == 0) {  // nothing to pick from: every target gets count 0
    for (int64_t t = 0; t < p.n_targets; t++) {
      for (int i = 0; i < p.k; i++) {
        out.indices[t * p.k + i] = -1;
        out.coeffs[t * p.k + i] = 0.0f;
      }
      if (out.counts) out.counts[t] = 0;
    }
    return Status::ok();
  }
  if (!p.atoms) return Status::invalid("omp: missing atoms");
  if (p.n_atoms > INT32_MAX) return Status::invalid("atoms: expected fewer than 2^31 rows, received " + num(p.n_atoms));
  std::vector<double> norm2(p.n_atoms);
  for (int64_t j = 0; j < p.n_atoms; j++) {
    const float* a = p.atoms + j * p.dim;
    double s = 0;
    for (int64_t d = 0; d < p.dim; d++) s += static_cast<double>(a[d]) * a[d];
    norm2[j] = s;
  }
  const int64_t col_bytes = p.n_atoms * static_cast<int64_t>(sizeof(float));
  GramCache cache(p.n_atoms, std::max<int64_t>(0, p.gram_cache_bytes) / col_bytes);
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  Job job;
  job.p = &p;
  job.out = &out;
  job.cache = &cache;
  job.atom_norm2 = norm2.data();
  job.max_norm2 = *std::max_element(norm2.begin(), norm2.end());
  // Enough groups to keep every worker busy, at most kOmpGroup targets each.
  job.group = std::max<int64_t>(1, std::min<int64_t>(kOmpGroup, (p.n_targets + workers - 1) / workers));
  job.n_groups = (p.n_targets + job.group - 1) / job.group;
  pool.parallel_for(job.n_groups, run_group_task, &job, workers);
  return Status::ok();
}

}  // namespace tp::text
