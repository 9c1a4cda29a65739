// DivPrune (divprune.h). Official: vbdi/divprune LLaVA/llava/model/llava_arch.py.
#include "divprune.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/thread_pool.h"
#include "../text/omp.h"
#include "similarity.h"

namespace tp::reduce {

namespace {

constexpr int64_t kGramRows = 16;

struct GramJob {
  const float* x;
  int64_t n, d;
  float* out;
};

// Block b: rows [i0, i0 + 16) against rows [i0, n) (the upper triangle and
// the diagonal block), through the same AVX2 + FMA kernel as dot_matrix.
void gram_block(void* ctx, int64_t b, int /*worker*/) {
  const GramJob& j = *static_cast<const GramJob*>(ctx);
  const int64_t i0 = b * kGramRows;
  const int64_t i1 = i0 + kGramRows < j.n ? i0 + kGramRows : j.n;
  const float* vecs[kGramRows];
  float* outs[kGramRows];
  const int m = static_cast<int>(i1 - i0);
  for (int v = 0; v < m; v++) {
    vecs[v] = j.x + (i0 + v) * j.d;
    outs[v] = j.out + (i0 + v) * j.n + i0;
  }
  text::omp_dots(j.x + i0 * j.d, j.n - i0, j.d, vecs, m, outs);
}

}  // namespace

// The symmetric Gram matrix x x^T [n, n]: the upper triangle computed
// (half of dot_matrix's work), then mirrored, so sim[i][j] == sim[j][i]
// exactly. Threads over 16-row blocks (dynamic: the first blocks are longest).
void gram_symmetric(const float* x, int64_t n, int64_t d, float* out) {
  if (n <= 0) return;
  if (d == 0) {
    std::fill(out, out + n * n, 0.0f);
    return;
  }
  GramJob job{x, n, d, out};
  ThreadPool& pool = ThreadPool::instance();
  pool.parallel_for((n + kGramRows - 1) / kGramRows, &gram_block, &job, pool.size());
  for (int64_t i = 0; i < n; i++) {
    for (int64_t k = i + 1; k < n; k++) out[k * n + i] = out[i * n + k];
  }
}

void divprune_greedy(const float* sim, int64_t n, int64_t keep, int32_t* picks, float* min_dist, uint8_t* selected) {
  if (keep <= 0 || n <= 0) return;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  // A token with a NaN / infinite value has a NaN self-similarity: it ranks
  // below every other candidate (picked last, lowest index first), and its
  // NaN distances are ignored by the others (a NaN never wins a comparison).
  auto bad = [&](int64_t i) { return std::isnan(sim[i * n + i]); };
  std::fill(selected, selected + n, uint8_t{0});
  // First pick: largest distance to the nearest other token (row i of the
  // symmetric matrix stands for the official column i). n = 1: the only token.
  int64_t best = -1;
  float best_score = kNegInf;
  for (int64_t i = 0; i < n; i++) {
    if (bad(i)) continue;
    const float* row = sim + i * n;
    float nearest = std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; j++) {
      if (j == i) continue;
      const float dist = 1.0f - row[j];
      if (dist < nearest) nearest = dist;
    }
    if (best < 0 || nearest > best_score) {  // strict: ties keep the lower index
      best_score = nearest;
      best = i;
    }
  }
  if (best < 0) best = 0;  // every token bad
  picks[0] = static_cast<int32_t>(best);
  selected[best] = 1;
  const float* first = sim + best * n;
  for (int64_t j = 0; j < n; j++) min_dist[j] = 1.0f - first[j];
  for (int64_t s = 1; s < keep; s++) {
    int64_t pick = -1;
    float pick_score = 0;
    for (int64_t j = 0; j < n; j++) {
      if (selected[j]) continue;
      const float score = bad(j) || std::isnan(min_dist[j]) ? kNegInf : min_dist[j];
      if (pick < 0 || score > pick_score) {
        pick = j;
        pick_score = score;
      }
    }
    picks[s] = static_cast<int32_t>(pick);
    selected[pick] = 1;
    const float* row = sim + pick * n;
    for (int64_t j = 0; j < n; j++) {
      const float dist = 1.0f - row[j];
      if (dist < min_dist[j] || std::isnan(min_dist[j])) min_dist[j] = std::isnan(dist) ? min_dist[j] : dist;
    }
  }
}

void divprune_projection(int64_t p, int64_t d, float* r) {
  uint64_t state = 0x5eed5eed5eed5eedULL;
  auto next = [&state]() {  // splitmix64 -> a double in (0, 1)
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) + 0.5) / 9007199254740992.0;
  };
  for (int64_t i = 0; i < p * d; i += 2) {  // Box-Muller pairs
    const double u = next(), v = next();
    const double rad = std::sqrt(-2.0 * std::log(u));
    r[i] = static_cast<float>(rad * std::cos(6.283185307179586 * v));
    if (i + 1 < p * d) r[i + 1] = static_cast<float>(rad * std::sin(6.283185307179586 * v));
  }
}

namespace {

// The last projection matrix made, kept for the next call with the same
// sizes (generating p * d Gaussians costs as much as projecting a small
// frame). Shared, immutable once made; the mutex guards the slot only.
std::shared_ptr<const std::vector<float>> cached_projection(int64_t p, int64_t d) {
  static std::mutex mu;
  static std::shared_ptr<const std::vector<float>> slot;
  static int64_t slot_p = -1, slot_d = -1;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (slot && slot_p == p && slot_d == d) return slot;
  }
  auto made = std::make_shared<std::vector<float>>(static_cast<size_t>(p * d));
  divprune_projection(p, d, made->data());
  std::lock_guard<std::mutex> lock(mu);
  slot = made;
  slot_p = p;
  slot_d = d;
  return slot;
}

}  // namespace

Status divprune(const float* x, int64_t t, int64_t n, int64_t d, int64_t keep, int32_t* out, int64_t metric_dim) {
  if (t < 0 || n < 0 || d < 0 || keep < 0 || keep > n || metric_dim < 0) return Status::invalid("divprune: bad sizes");
  if (keep == 0 || t == 0) return Status::ok();
  const bool project = metric_dim > 0 && d > 0;
  const int64_t m = project ? metric_dim : d;
  std::vector<float> xn(static_cast<size_t>(n * d));
  std::vector<float> proj(project ? static_cast<size_t>(n * m) : 0);
  std::shared_ptr<const std::vector<float>> r;
  if (project) r = cached_projection(m, d);
  std::vector<float> sim(static_cast<size_t>(n * n));
  std::vector<float> min_dist(static_cast<size_t>(n));
  std::vector<uint8_t> selected(static_cast<size_t>(n));
  for (int64_t f = 0; f < t; f++) {
    l2_normalize_rows(x + f * n * d, n, d, xn.data());
    const float* metric = xn.data();
    if (project) {  // cosine of the projected rows approximates the cosine of the rows (Johnson-Lindenstrauss)
      dot_matrix(xn.data(), n, r->data(), m, d, proj.data());
      l2_normalize_rows(proj.data(), n, m, proj.data());
      metric = proj.data();
    }
    gram_symmetric(metric, n, m, sim.data());
    int32_t* o = out + f * keep;
    divprune_greedy(sim.data(), n, keep, o, min_dist.data(), selected.data());
    std::sort(o, o + keep);
  }
  return Status::ok();
}

}  // namespace tp::reduce
