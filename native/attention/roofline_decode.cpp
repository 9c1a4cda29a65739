// The roofline decode loop: validation, ISA dispatch, the split over KV
// heads, and the scalar loop (the fallback and the portable baseline). See
// roofline_decode.h.
#include "roofline_decode.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/cpu_features.h"
#include "../core/half.h"
#include "../core/thread_pool.h"

namespace tp {

// The same chunked algorithm as the SIMD loops, one lane at a time.
void roofline_head_scalar(const RooflineHead& h) {
  constexpr int kChunk = 64;
  const int d = h.headDim, G = h.group;
  std::vector<float> qs(static_cast<size_t>(G) * d), acc(static_cast<size_t>(G) * d, 0.0f);
  std::vector<float> s(static_cast<size_t>(G) * kChunk), m(static_cast<size_t>(G), -INFINITY), l(static_cast<size_t>(G), 0.0f);
  std::vector<float> row(static_cast<size_t>(d));
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < d; ++i) qs[g * d + i] = h.q[g * d + i] * h.scale;
  }
  auto load_row = [&](const void* base, int64_t r) {
    if (h.f16) {
      const uint16_t* p = static_cast<const uint16_t*>(base) + r * d;
      for (int i = 0; i < d; ++i) row[i] = f16_to_f32(p[i]);
    } else {
      const float* p = static_cast<const float*>(base) + r * d;
      for (int i = 0; i < d; ++i) row[i] = p[i];
    }
  };
  for (int64_t c0 = 0; c0 < h.nKv; c0 += kChunk) {
    const int n = h.nKv - c0 < kChunk ? static_cast<int>(h.nKv - c0) : kChunk;
    for (int j = 0; j < n; ++j) {
      load_row(h.k, c0 + j);
      for (int g = 0; g < G; ++g) {
        float dot = 0.0f;
        for (int i = 0; i < d; ++i) dot += qs[g * d + i] * row[i];
        s[g * kChunk + j] = dot;
      }
    }
    for (int g = 0; g < G; ++g) {
      float cmax = -INFINITY;
      for (int j = 0; j < n; ++j) cmax = s[g * kChunk + j] > cmax ? s[g * kChunk + j] : cmax;
      const float mnew = cmax > m[g] ? cmax : m[g];
      const float corr = std::exp(m[g] - mnew);
      float sum = 0.0f;
      for (int j = 0; j < n; ++j) {
        const float p = std::exp(s[g * kChunk + j] - mnew);
        s[g * kChunk + j] = p;
        sum += p;
      }
      l[g] = l[g] * corr + sum;
      m[g] = mnew;
      for (int i = 0; i < d; ++i) acc[g * d + i] *= corr;
    }
    for (int j = 0; j < n; ++j) {
      load_row(h.v, c0 + j);
      for (int g = 0; g < G; ++g) {
        const float p = s[g * kChunk + j];
        for (int i = 0; i < d; ++i) acc[g * d + i] += p * row[i];
      }
    }
  }
  for (int g = 0; g < G; ++g) {
    const float inv = 1.0f / l[g];
    for (int i = 0; i < d; ++i) h.out[g * d + i] = acc[g * d + i] * inv;
  }
}

namespace {

struct RooflineJob {
  const RooflineDecodeArgs* args;
  void (*head)(const RooflineHead&);
};

void roofline_task(void* ctx, int64_t kv_head, int) {
  const RooflineJob& job = *static_cast<const RooflineJob*>(ctx);
  const RooflineDecodeArgs& a = *job.args;
  const int group = a.nHeads / a.nKvHeads;
  const int64_t kv_elems = kv_head * a.nKv * a.headDim;
  const int64_t q_off = kv_head * group * a.headDim;
  const size_t elem = a.f16 ? 2 : 4;
  RooflineHead h;
  h.q = a.q + q_off;
  h.k = static_cast<const char*>(a.k) + kv_elems * static_cast<int64_t>(elem);
  h.v = static_cast<const char*>(a.v) + kv_elems * static_cast<int64_t>(elem);
  h.out = a.out + q_off;
  h.nKv = a.nKv;
  h.group = group;
  h.headDim = a.headDim;
  h.scale = a.scale;
  h.f16 = a.f16;
  job.head(h);
}

}  // namespace

Status roofline_decode(const RooflineDecodeArgs& a, int threads, int isa) {
  if (!a.q || !a.k || !a.v || !a.out) return Status::invalid("roofline_decode: a null pointer");
  if (a.nHeads < 1 || a.nKvHeads < 1 || a.nHeads % a.nKvHeads != 0) {
    return Status::invalid("nHeads: expected a positive multiple of nKvHeads (" + num(a.nKvHeads) + "), received " + num(a.nHeads));
  }
  if (a.headDim < 1 || a.headDim > kRooflineMaxHeadDim) {
    return Status::invalid("headDim: expected an integer in [1, " + num(kRooflineMaxHeadDim) + "], received " + num(a.headDim));
  }
  if (a.nKv < 1) return Status::invalid("nKv: expected a positive integer, received " + num(a.nKv));
  const IsaLevel level = isa < 0 ? active_isa() : static_cast<IsaLevel>(isa);
  if (isa > static_cast<int>(IsaLevel::Avx512) || level > detected_isa()) {
    return Status::unsupported("roofline_decode: this CPU does not run the requested ISA level " + num(isa));
  }
  RooflineJob job{&a, roofline_head_scalar};
  if (level == IsaLevel::Avx512 && a.headDim % 16 == 0) {
    job.head = roofline_head_avx512;
  } else if (level >= IsaLevel::Avx2 && a.headDim % 8 == 0) {
    job.head = roofline_head_avx2;
  }
  const int pool = ThreadPool::instance().size();
  if (threads < 1) threads = 1;
  if (threads > pool) threads = pool;
  ThreadPool::instance().parallel_for(a.nKvHeads, roofline_task, &job, threads);
  return Status::ok();
}

}  // namespace tp
