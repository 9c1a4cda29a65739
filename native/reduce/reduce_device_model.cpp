// The host model of the vision kernels (native/cuda/cuda_reduce.cu): the
// same TP_HD arithmetic (reduce_hd.h), one element at a time, in the order
// each kernel's reduction defines (the 32-lane tree of the row norm, the
// sequential fma chain of every dot, the radix select of the top-k). The
// CPU tests (test/unit/vision-device-model.test.ts) check it against float64
// JS references; test/gpu/cuda-vision.test.ts checks the device against it.
#include "reduce_device_model.h"

#include <vector>

#include "reduce_hd.h"

namespace tp::reduce {
namespace {

using cuda::VisionJob;
using cuda::VisionOp;

// Rows of x (row stride ld) normalised into out [n, d] (cuda normalize_kernel:
// a warp per row, lane j summing j, j + 32, ..., shuffles down 16, 8, ..., 1).
void model_normalize(const float* x, int64_t n, int64_t d, int64_t ld, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* row = x + i * ld;
    double l[hd::kLanes];
    for (int j = 0; j < hd::kLanes; ++j) l[j] = hd::sumsq_lane(row, d, j);
    for (int w = hd::kLanes / 2; w >= 1; w >>= 1) {
      for (int j = 0; j < w; ++j) l[j] = hd::dadd_rn(l[j], l[j + w]);
    }
    const double inv = hd::inv_norm(l[0]);
    for (int64_t k = 0; k < d; ++k) out[i * d + k] = hd::scaled(row[k], inv);
  }
}

// out[i, j] = dot(a_i, b_j) (cuda dot_kernel: the same chain, a tile at a time).
void model_dot(const float* a, int64_t na, int64_t lda, const float* b, int64_t nb, int64_t ldb, int64_t d, float* out) {
  for (int64_t i = 0; i < na; ++i) {
    for (int64_t j = 0; j < nb; ++j) out[i * nb + j] = hd::dot(a + i * lda, b + j * ldb, d);
  }
}

// Per row of s [rows, cols]: the best column (hd::beats) and its value; an
// empty row gives (-inf, -1); skip_first: row 0 gives (-inf, 0), as the
// official scores[..., 0, :] = -inf then max() (cuda row_argmax_kernel).
void model_row_argmax(const float* s, int64_t rows, int64_t cols, bool skip_first, float* best, int32_t* arg) {
  for (int64_t i = 0; i < rows; ++i) {
    float v = hd::neg_inf();
    int64_t a = -1;
    if (skip_first && i == 0) {
      a = cols > 0 ? 0 : -1;
    } else {
      for (int64_t j = 0; j < cols; ++j) {
        if (hd::beats(s[i * cols + j], j, v, a)) {
          v = s[i * cols + j];
          a = j;
        }
      }
    }
    if (best) best[i] = v;
    arg[i] = static_cast<int32_t>(a);
  }
}

// The k best of scores [0, n) (row 0 excluded with skip_first), ascending,
// into out; returns the count (cuda topk_kernel: the same radix select).
int64_t model_topk(const float* scores, int64_t n, int64_t k, bool skip_first, int32_t* out) {
  const int64_t first = skip_first ? 1 : 0;
  const int64_t cand = n > first ? n - first : 0;
  if (k > cand) k = cand;
  if (k <= 0) return 0;
  uint64_t threshold = 0;  // k == cand: every candidate
  if (k < cand) {
    uint64_t prefix = 0;
    int64_t k_left = k;
    for (int pass = 0; pass < 8; ++pass) {
      uint32_t hist[256] = {0};
      const uint64_t mask = hd::prefix_mask(pass);
      for (int64_t i = first; i < n; ++i) {
        const uint64_t key = hd::rank_key(scores[i], i);
        if ((key & mask) == prefix) ++hist[hd::digit_of(key, pass)];
      }
      prefix |= uint64_t(hd::pick_digit(hist, &k_left)) << (56 - 8 * pass);
    }
    threshold = prefix;
  }
  int64_t m = 0;
  for (int64_t i = first; i < n; ++i) {
    if (hd::rank_key(scores[i], i) >= threshold) out[m++] = static_cast<int32_t>(i);
  }
  return m;
}

void run_tome(VisionJob* j) {
  const int64_t n = j->n, d = j->d, dt = j->dt, na = cuda::tome_na(n), nb = cuda::tome_nb(n);
  std::vector<float> mn(size_t(n * d)), s(size_t(na * nb));
  model_normalize(j->x.data(), n, d, d, mn.data());
  model_dot(mn.data(), na, 2 * d, mn.data() + d, nb, 2 * d, d, s.data());
  j->node_max.assign(size_t(na), 0.0f);
  j->node_idx.assign(size_t(na), 0);
  model_row_argmax(s.data(), na, nb, j->protect_first, j->node_max.data(), j->node_idx.data());
  const int64_t r = hd::tome_r(n, j->r, j->protect_first);
  j->idx.assign(size_t(r), 0);
  const int64_t m = model_topk(j->node_max.data(), na, r, j->protect_first, j->idx.data());
  j->idx.resize(size_t(m));
  // dst row q: B token 2q + 1 and the A rows merged into it, ascending.
  j->out.assign(size_t(nb * dt), 0.0f);
  j->out_sizes.assign(size_t(nb), 0.0f);
  auto size_of = [&](int64_t t) { return j->sizes.empty() ? 1.0f : j->sizes[size_t(t)]; };
  for (int64_t q = 0; q < nb; ++q) {
    const int64_t bt = 2 * q + 1;
    for (int64_t c = 0; c < dt; ++c) {
      float acc, size;
      hd::wavg_start(j->tokens[size_t(bt * dt + c)], size_of(bt), &acc, &size);
      for (int64_t e = 0; e < m; ++e) {
        const int64_t i = j->idx[size_t(e)];
        if (j->node_idx[size_t(i)] == q) hd::wavg_add(j->tokens[size_t(2 * i * dt + c)], size_of(2 * i), &acc, &size);
      }
      j->out[size_t(q * dt + c)] = hd::wavg_end(acc, size);
    }
    float acc = 0.0f, size;  // the size chain alone (the same additions as each channel's)
    hd::wavg_start(0.0f, size_of(bt), &acc, &size);
    for (int64_t e = 0; e < m; ++e) {
      const int64_t i = j->idx[size_t(e)];
      if (j->node_idx[size_t(i)] == q) hd::wavg_add(0.0f, size_of(2 * i), &acc, &size);
    }
    j->out_sizes[size_t(q)] = size;
  }
}

void run_divprune(VisionJob* j) {
  const int64_t n = j->n, d = j->d, k = j->k < n ? j->k : n;
  std::vector<float> xn(size_t(n * d)), s(size_t(n * n)), mind(static_cast<size_t>(n));
  std::vector<char> taken(size_t(n), 0);
  model_normalize(j->x.data(), n, d, d, xn.data());
  model_dot(xn.data(), n, d, xn.data(), n, d, d, s.data());
  for (int64_t t = 0; t < n; ++t) {  // step 0: the distance to the nearest other token (n = 1: +inf)
    float m = hd::pos_inf();
    for (int64_t i = 0; i < n; ++i) {
      if (i != t) m = hd::dmin(m, hd::distance(s[size_t(t * n + i)]));
    }
    mind[size_t(t)] = hd::nearest_or_nan(m, s[size_t(t * n + t)]);
  }
  j->idx.assign(size_t(k), 0);
  for (int64_t step = 0; step < k; ++step) {
    if (step > 0) {  // step 1: the distance to the first pick; later: the running minimum
      const int64_t p = j->idx[size_t(step - 1)];
      for (int64_t t = 0; t < n; ++t) {
        const float dp = hd::distance(s[size_t(p * n + t)]);
        mind[size_t(t)] = step == 1 ? dp : hd::dmin(mind[size_t(t)], dp);
      }
    }
    float best = hd::neg_inf();
    int64_t arg = -1;
    for (int64_t t = 0; t < n; ++t) {
      if (!taken[size_t(t)] && hd::beats(mind[size_t(t)], t, best, arg)) {
        best = mind[size_t(t)];
        arg = t;
      }
    }
    if (arg < 0) {  // cannot happen (k <= n, one token taken per step); keeps the output well-defined
      j->idx.resize(size_t(step));
      break;
    }
    j->idx[size_t(step)] = static_cast<int32_t>(arg);
    taken[size_t(arg)] = 1;
  }
}

void run_kmeans(VisionJob* j) {
  const int64_t n = j->n, d = j->d, K = j->nb;
  std::vector<float> xn(size_t(n * d)), cn(size_t(K * d)), s(size_t(n * K));
  model_normalize(j->x.data(), n, d, d, xn.data());
  model_normalize(j->b.data(), K, d, d, cn.data());
  model_dot(xn.data(), n, d, cn.data(), K, d, d, s.data());
  j->idx.assign(size_t(n), 0);
  model_row_argmax(s.data(), n, K, false, nullptr, j->idx.data());
  j->out.assign(size_t(K * d), 0.0f);
  j->counts.assign(size_t(K), 0);
  for (int64_t c = 0; c < K; ++c) {  // cuda centroid_means_kernel: ascending tokens, float64
    int32_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += j->idx[size_t(i)] == c ? 1 : 0;
    j->counts[size_t(c)] = count;
    for (int64_t e = 0; e < d; ++e) {
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        if (j->idx[size_t(i)] == c) sum = hd::dadd_rn(sum, double(xn[size_t(i * d + e)]));
      }
      j->out[size_t(c * d + e)] = hd::mean_of(sum, count);
    }
  }
}

}  // namespace

Status run_host_model(cuda::VisionJob* j) {
  switch (j->op) {
    case VisionOp::Normalize:
      j->out.assign(size_t(j->n * j->d), 0.0f);
      model_normalize(j->x.data(), j->n, j->d, j->d, j->out.data());
      return Status::ok();
    case VisionOp::Dot: {
      j->out.assign(size_t(j->n * j->nb), 0.0f);
      if (!j->normalize) {
        model_dot(j->x.data(), j->n, j->d, j->b.data(), j->nb, j->d, j->d, j->out.data());
        return Status::ok();
      }
      std::vector<float> an(size_t(j->n * j->d)), bn(size_t(j->nb * j->d));
      model_normalize(j->x.data(), j->n, j->d, j->d, an.data());
      model_normalize(j->b.data(), j->nb, j->d, j->d, bn.data());
      model_dot(an.data(), j->n, j->d, bn.data(), j->nb, j->d, j->d, j->out.data());
      return Status::ok();
    }
    case VisionOp::Tome: run_tome(j); return Status::ok();
    case VisionOp::DivPrune: run_divprune(j); return Status::ok();
    case VisionOp::KMeans: run_kmeans(j); return Status::ok();
    case VisionOp::TopK: {
      const int64_t k = j->k < j->n ? j->k : j->n;
      j->idx.assign(size_t(j->rows * k), 0);
      for (int64_t row = 0; row < j->rows; ++row) model_topk(j->x.data() + row * j->n, j->n, k, false, j->idx.data() + row * k);
      return Status::ok();
    }
  }
  return Status::invalid("vision kernels: unknown op");
}

}  // namespace tp::reduce
