// GlobalCom2 (globalcom2.h). Official: xuyang-liu16/GlobalCom2 llava/model/llava_arch.py.
#include "globalcom2.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/thread_pool.h"
#include "topk.h"

namespace tp::reduce {

void globalcom2_scales(const float* thumb, int64_t side, int64_t nph, int64_t npw, double base, double temperature, double* scales) {
  const int64_t c = nph * npw;
  const int64_t pw = std::max<int64_t>(side / npw, 1), ph = std::max<int64_t>(side / nph, 1);
  std::vector<double> sum(static_cast<size_t>(c), 0.0);
  for (int64_t idx = 0; idx < side * side; idx++) {
    const int64_t i = idx / side, j = idx % side;
    const int64_t pi = std::min(i / ph, nph - 1), pj = std::min(j / pw, npw - 1);
    sum[static_cast<size_t>(pi * npw + pj)] += thumb[idx];
  }
  const double mx = *std::max_element(sum.begin(), sum.end());
  double total = 0;
  for (auto& s : sum) total += (s = std::exp((s - mx) / temperature));
  double sm_sum = 0;
  for (auto& s : sum) sm_sum += (s = s / (total + 1e-8));
  if (sm_sum == 0) {
    for (int64_t k = 0; k < c; k++) scales[k] = base;
    return;
  }
  const double mean = sm_sum / static_cast<double>(c);
  for (int64_t k = 0; k < c; k++) scales[k] = std::min(base * (1.0 + sum[static_cast<size_t>(k)] - mean), 1.0);
}

namespace {

// PyTorch's align_corners = False source coordinate: index, neighbour and weight.
void source_index(int64_t dst, int64_t in, int64_t out, int64_t* i0, int64_t* i1, double* lambda) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  double src = (static_cast<double>(dst) + 0.5) * scale - 0.5;
  if (src < 0) src = 0;
  *i0 = std::min(static_cast<int64_t>(src), in - 1);
  *i1 = std::min(*i0 + 1, in - 1);
  *lambda = src - static_cast<double>(*i0);
}

}  // namespace

void bilinear_resize(const float* src, int64_t ih, int64_t iw, int64_t oh, int64_t ow, float* dst) {
  for (int64_t y = 0; y < oh; y++) {
    int64_t y0, y1;
    double ly;
    source_index(y, ih, oh, &y0, &y1, &ly);
    for (int64_t x = 0; x < ow; x++) {
      int64_t x0, x1;
      double lx;
      source_index(x, iw, ow, &x0, &x1, &lx);
      const double top = (1 - lx) * src[y0 * iw + x0] + lx * src[y0 * iw + x1];
      const double bot = (1 - lx) * src[y1 * iw + x0] + lx * src[y1 * iw + x1];
      dst[y * ow + x] = static_cast<float>((1 - ly) * top + ly * bot);
    }
  }
}

int64_t globalcom2_thumb_keep(int64_t side, double base) { return static_cast<int64_t>(static_cast<double>(side * side) * base); }

Status globalcom2(const GlobalCom2Args& a) {
  if (a.side < 1 || a.nph < 1 || a.npw < 1 || a.h < 1 || a.w < 1 || !(a.base >= 0 && a.base <= 1) || !(a.temperature > 0)) {
    return Status::invalid("globalCom2: bad sizes");
  }
  const int64_t n0 = a.side * a.side, nc = a.h * a.w, c = a.nph * a.npw;
  std::vector<int32_t> scratch0(static_cast<size_t>(n0));
  topk_indices(a.thumb, n0, globalcom2_thumb_keep(a.side, a.base), a.thumb_keep, scratch0.data());
  globalcom2_scales(a.thumb, a.side, a.nph, a.npw, a.base, a.temperature, a.scales);
  const int64_t gh = a.nph * a.h, gw = a.npw * a.w;
  std::vector<float> up(static_cast<size_t>(gh * gw));
  bilinear_resize(a.thumb, a.side, a.side, gh, gw, up.data());
  ThreadPool& pool = ThreadPool::instance();
  const int workers = pool.size();
  std::vector<std::vector<int32_t>> scratch(static_cast<size_t>(workers), std::vector<int32_t>(static_cast<size_t>(nc)));
  pool.parallel_for(
      c,
      [&](int64_t k, int worker) {
        const int64_t ci = k / a.npw, cj = k % a.npw;
        const float* local = a.crops + k * nc;
        double ln = 0, gn = 0;  // L2 norms (F.normalize: divided by max(norm, 1e-12))
        for (int64_t p = 0; p < nc; p++) {
          const double g = up[static_cast<size_t>((ci * a.h + p / a.w) * gw + cj * a.w + p % a.w)];
          ln += static_cast<double>(local[p]) * local[p];
          gn += g * g;
        }
        ln = std::max(std::sqrt(ln), 1e-12);
        gn = std::max(std::sqrt(gn), 1e-12);
        float* s = a.crop_scores + k * nc;
        for (int64_t p = 0; p < nc; p++) {
          const double g = up[static_cast<size_t>((ci * a.h + p / a.w) * gw + cj * a.w + p % a.w)];
          s[p] = static_cast<float>(local[p] / ln + g / gn);
        }
        const int64_t keep = static_cast<int64_t>(static_cast<double>(nc) * a.scales[k]);
        int32_t* o = a.crop_keep + k * nc;
        const int64_t got = topk_indices(s, nc, keep, o, scratch[static_cast<size_t>(worker)].data());
        for (int64_t p = got; p < nc; p++) o[p] = -1;
        a.crop_counts[k] = static_cast<int32_t>(got);
      },
      nullptr, workers);
  return Status::ok();
}

}  // namespace tp::reduce
