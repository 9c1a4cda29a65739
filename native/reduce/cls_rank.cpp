// VTC-CLS and FastV ranking (cls_rank.h).
#include "cls_rank.h"

#include <algorithm>
#include <vector>

#include "../core/thread_pool.h"
#include "topk.h"

namespace tp::reduce {

namespace {

// Runs fn(frame, scratch) over frames on the pool; scratch is n int32 per worker.
template <typename Fn>
void over_frames(int64_t t, int64_t n, Fn&& fn) {
  // No frame, no scratch: with t = 0 no array backs n (up to 2^31), and n
  // int32 per worker would be gigabytes for nothing.
  if (t <= 0) return;
  ThreadPool& pool = ThreadPool::instance();
  const int workers = static_cast<int>(std::min<int64_t>(pool.size(), t));
  std::vector<std::vector<int32_t>> scratch(static_cast<size_t>(workers), std::vector<int32_t>(static_cast<size_t>(n)));
  pool.parallel_for(
      t, [&](int64_t f, int worker) { fn(f, scratch[static_cast<size_t>(worker)].data()); }, nullptr, workers);
}

}  // namespace

Status cls_rank(const float* att, int64_t t, int64_t layers, int64_t n, int64_t start, int64_t end, int64_t keep, float* scores,
                int32_t* out) {
  if (t < 0 || layers < 0 || n < 0 || start < 0 || end > layers || start > end || keep < 0 || keep > n) {
    return Status::invalid("clsRank: bad sizes");
  }
  over_frames(t, n, [&](int64_t f, int32_t* scratch) {
    float* s = scores + f * n;
    for (int64_t i = 0; i < n; i++) {
      double acc = 0;  // summed in layer order, like torch.sum over the stacked layers
      for (int64_t l = start; l < end; l++) acc += att[(f * layers + l) * n + i];
      s[i] = static_cast<float>(acc);
    }
    topk_indices(s, n, keep, out + f * keep, scratch);
  });
  return Status::ok();
}

Status fastv_rank(const float* probs, int64_t t, int64_t heads, int64_t nk, int64_t start, int64_t len, int64_t keep, float* scores,
                  int32_t* out) {
  if (t < 0 || heads < 1 || nk < 0 || start < 0 || len < 0 || start + len > nk || keep < 0 || keep > len) {
    return Status::invalid("fastvRank: bad sizes");
  }
  over_frames(t, len, [&](int64_t f, int32_t* scratch) {
    float* s = scores + f * len;
    for (int64_t i = 0; i < len; i++) {
      double acc = 0;
      for (int64_t h = 0; h < heads; h++) acc += probs[(f * heads + h) * nk + start + i];
      s[i] = static_cast<float>(acc / static_cast<double>(heads));
    }
    int32_t* o = out + f * keep;
    topk_indices(s, len, keep, o, scratch);
    for (int64_t j = 0; j < keep; j++) o[j] += static_cast<int32_t>(start);
  });
  return Status::ok();
}

}  // namespace tp::reduce
