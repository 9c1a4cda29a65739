// The machine's own limits, measured so benchmarks can quote "% of peak":
//   measure_read_bandwidth: STREAM-like sum-reduction over a float array,
//     each of `threads` pool workers streaming one contiguous slab.
//   measure_fma_peak: independent FMA chains in registers, per worker.
//
// Both run `threads` tasks through the shared pool (capped at its size) and
// time the whole parallel_for, so the figure includes the pool's fork/join
// cost, exactly as a kernel would pay it. SIMD paths are compiled per
// function with target attributes (portable baseline build, no -march).
#include "machine_limits.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <new>
#include <vector>

#include "cpu_features.h"
#include "thread_pool.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define TP_ML_X86 1
#endif

namespace tp {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int cap_threads(int threads) {
  const int pool = ThreadPool::instance().size();
  if (threads < 1) return 1;
  return threads > pool ? pool : threads;
}

// Runs fn(task) for task in [0, tasks) on the pool and reports whether every
// task ran on a different worker (the pool schedules dynamically, so a fast
// worker could in principle take two tasks, which would halve concurrency).
template <typename Fn>
bool run_one_task_per_worker(int tasks, const Fn& fn) {
  std::vector<std::atomic<int>> used(static_cast<size_t>(ThreadPool::instance().size()) + 1);
  for (auto& u : used) u.store(0, std::memory_order_relaxed);
  std::atomic<bool> distinct{true};
  ThreadPool::instance().parallel_for(tasks, [&](int64_t task, int worker) {
    if (worker >= 0 && static_cast<size_t>(worker) < used.size()) {
      if (used[static_cast<size_t>(worker)].fetch_add(1, std::memory_order_relaxed) != 0) {
        distinct.store(false, std::memory_order_relaxed);
      }
    }
    fn(task);
  });
  return distinct.load();
}

// ---- read bandwidth --------------------------------------------------------

// Sums n floats (n a multiple of 16, p 64-byte aligned) with enough
// independent accumulators to keep the loads in flight.
#ifndef TP_ML_X86
float sum_scalar(const float* p, int64_t n) {
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = 0; i < n; i += 8) {
    for (int j = 0; j < 8; ++j) a[j] += p[i + j];
  }
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
#endif

#ifdef TP_ML_X86
// SSE2 is part of the x86-64 baseline: the fallback when AVX2 is absent.
float sum_sse2(const float* p, int64_t n) {
  __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < n; i += 16) {
    a0 = _mm_add_ps(a0, _mm_load_ps(p + i));
    a1 = _mm_add_ps(a1, _mm_load_ps(p + i + 4));
    a2 = _mm_add_ps(a2, _mm_load_ps(p + i + 8));
    a3 = _mm_add_ps(a3, _mm_load_ps(p + i + 12));
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

__attribute__((target("avx2,fma"))) float sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  for (; i < n; i += 8) a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
  float lanes[8];
  _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

// (Not _mm512_reduce_add_ps: GCC 12 warns about an uninitialised temporary in it.)
__attribute__((target("avx512f"))) float hsum512(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float s = 0;
  for (float x : lanes) s += x;
  return s;
}

__attribute__((target("avx512f,fma"))) float sum_avx512(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  for (; i < n; i += 16) a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
  return hsum512(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
#endif

using SumFn = float (*)(const float*, int64_t);

// The machine's limit, not the kernels': use the best loads the CPU has,
// whatever ISA the kernels are currently restricted to.
SumFn pick_sum() {
#ifdef TP_ML_X86
  switch (detected_isa()) {
    case IsaLevel::Avx512: return sum_avx512;
    case IsaLevel::Avx2: return sum_avx2;
    default: return sum_sse2;
  }
#else
  return sum_scalar;
#endif
}

struct AlignedFloats {
  float* p = nullptr;
  explicit AlignedFloats(int64_t n) {
    p = static_cast<float*>(::operator new(static_cast<size_t>(n) * sizeof(float), std::align_val_t(64)));
  }
  ~AlignedFloats() { ::operator delete(p, std::align_val_t(64)); }
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
};

// ---- FMA peak --------------------------------------------------------------

// Each step is acc = acc * a + b with a < 1, so values converge to
// b / (1 - a) and never overflow or go denormal.
constexpr float kA = 0.999999f;
constexpr float kB = 1e-6f;

#ifdef TP_ML_X86
// Cascade Lake: FMA latency 4, up to 2 zmm FMAs per cycle -> >= 8 chains in
// flight; 16 leaves slack for other cores (Skylake-SP/Ice Lake: also 4 x 2).
// Returns FLOPs done.
__attribute__((target("avx512f,fma"))) double fma_avx512(int64_t iters, float* sink) {
  const __m512 a = _mm512_set1_ps(kA), b = _mm512_set1_ps(kB);
  __m512 c0 = _mm512_set1_ps(0.0f), c1 = _mm512_set1_ps(0.01f), c2 = _mm512_set1_ps(0.02f), c3 = _mm512_set1_ps(0.03f);
  __m512 c4 = _mm512_set1_ps(0.04f), c5 = _mm512_set1_ps(0.05f), c6 = _mm512_set1_ps(0.06f), c7 = _mm512_set1_ps(0.07f);
  __m512 c8 = _mm512_set1_ps(0.08f), c9 = _mm512_set1_ps(0.09f), c10 = _mm512_set1_ps(0.10f), c11 = _mm512_set1_ps(0.11f);
  __m512 c12 = _mm512_set1_ps(0.12f), c13 = _mm512_set1_ps(0.13f), c14 = _mm512_set1_ps(0.14f), c15 = _mm512_set1_ps(0.15f);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm512_fmadd_ps(c0, a, b); c1 = _mm512_fmadd_ps(c1, a, b);
    c2 = _mm512_fmadd_ps(c2, a, b); c3 = _mm512_fmadd_ps(c3, a, b);
    c4 = _mm512_fmadd_ps(c4, a, b); c5 = _mm512_fmadd_ps(c5, a, b);
    c6 = _mm512_fmadd_ps(c6, a, b); c7 = _mm512_fmadd_ps(c7, a, b);
    c8 = _mm512_fmadd_ps(c8, a, b); c9 = _mm512_fmadd_ps(c9, a, b);
    c10 = _mm512_fmadd_ps(c10, a, b); c11 = _mm512_fmadd_ps(c11, a, b);
    c12 = _mm512_fmadd_ps(c12, a, b); c13 = _mm512_fmadd_ps(c13, a, b);
    c14 = _mm512_fmadd_ps(c14, a, b); c15 = _mm512_fmadd_ps(c15, a, b);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                     _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
  *sink = hsum512(s);
  return static_cast<double>(iters) * 16 /*chains*/ * 16 /*lanes*/ * 2;
}

// 16 ymm registers: 12 chains + a + b (latency 4 x 2 ports = 8 needed).
__attribute__((target("avx2,fma"))) double fma_avx2(int64_t iters, float* sink) {
  const __m256 a = _mm256_set1_ps(kA), b = _mm256_set1_ps(kB);
  __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.01f), c2 = _mm256_set1_ps(0.02f), c3 = _mm256_set1_ps(0.03f);
  __m256 c4 = _mm256_set1_ps(0.04f), c5 = _mm256_set1_ps(0.05f), c6 = _mm256_set1_ps(0.06f), c7 = _mm256_set1_ps(0.07f);
  __m256 c8 = _mm256_set1_ps(0.08f), c9 = _mm256_set1_ps(0.09f), c10 = _mm256_set1_ps(0.10f), c11 = _mm256_set1_ps(0.11f);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm256_fmadd_ps(c0, a, b); c1 = _mm256_fmadd_ps(c1, a, b);
    c2 = _mm256_fmadd_ps(c2, a, b); c3 = _mm256_fmadd_ps(c3, a, b);
    c4 = _mm256_fmadd_ps(c4, a, b); c5 = _mm256_fmadd_ps(c5, a, b);
    c6 = _mm256_fmadd_ps(c6, a, b); c7 = _mm256_fmadd_ps(c7, a, b);
    c8 = _mm256_fmadd_ps(c8, a, b); c9 = _mm256_fmadd_ps(c9, a, b);
    c10 = _mm256_fmadd_ps(c10, a, b); c11 = _mm256_fmadd_ps(c11, a, b);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                           _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  float t = 0;
  for (float x : lanes) t += x;
  *sink = t;
  return static_cast<double>(iters) * 12 * 8 * 2;
}
#endif

// Scalar baseline: a multiply and an add per step (no FMA instruction in the
// x86-64 baseline), counted as 2 FLOPs like one FMA.
double fma_scalar(int64_t iters, float* sink) {
  float c[8] = {0.0f, 0.01f, 0.02f, 0.03f, 0.04f, 0.05f, 0.06f, 0.07f};
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < 8; ++j) c[j] = c[j] * kA + kB;
  }
  float t = 0;
  for (float x : c) t += x;
  *sink = t;
  return static_cast<double>(iters) * 8 * 2;
}

using FmaFn = double (*)(int64_t, float*);

// Iterations per task: ~80 ms of work per rep at ~2.5 GHz. Shorter reps
// (20 ms) measured well below the two-thread peak on the shared VMs this was
// written on (wake-up and host-scheduling jitter are a larger share of them).
int64_t fma_iters(IsaLevel isa) {
  switch (isa) {
    case IsaLevel::Avx512: return 24'000'000;  // 16 zmm FMAs each, 2 per cycle
    case IsaLevel::Avx2: return 32'000'000;    // 12 ymm FMAs each, 2 per cycle
    default: return 24'000'000;                // 8 mul+add each
  }
}

}  // namespace

double measure_read_bandwidth(int64_t bytes, int threads, int reps) {
  threads = cap_threads(threads);
  if (reps < 1) reps = 1;
  // Each slab is a whole number of 64-byte lines (16 floats).
  const int64_t lines = bytes / 64;
  if (lines < threads) return -1.0;
  const int64_t n = lines * 16;
  try {
    AlignedFloats buf(n);
    float* p = buf.p;
    // Slab t covers lines [t*lines/threads, (t+1)*lines/threads).
    auto slab = [&](int64_t t, int64_t* begin, int64_t* count) {
      const int64_t l0 = t * lines / threads, l1 = (t + 1) * lines / threads;
      *begin = l0 * 16;
      *count = (l1 - l0) * 16;
    };
    // Touch every page before timing (first touch by the worker that reads it).
    run_one_task_per_worker(threads, [&](int64_t t) {
      int64_t b, c;
      slab(t, &b, &c);
      for (int64_t i = 0; i < c; ++i) p[b + i] = static_cast<float>((b + i) & 1023) * (1.0f / 1024.0f);
    });
    const SumFn sum = pick_sum();
    std::vector<float> partial(static_cast<size_t>(threads), 0.0f);
    double best = -1.0, best_any = -1.0;
    volatile float sink = 0.0f;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = Clock::now();
      const bool concurrent = run_one_task_per_worker(threads, [&](int64_t t) {
        int64_t b, c;
        slab(t, &b, &c);
        partial[static_cast<size_t>(t)] = sum(p + b, c);
      });
      const double s = seconds_since(t0);
      for (float x : partial) sink = sink + x;
      const double bw = static_cast<double>(n) * sizeof(float) / s;
      best_any = std::max(best_any, bw);
      if (concurrent) best = std::max(best, bw);
    }
    (void)sink;
    return best > 0 ? best : best_any;
  } catch (const std::bad_alloc&) {
    return -1.0;
  }
}

double measure_fma_peak(int threads) {
  threads = cap_threads(threads);
  const IsaLevel isa = active_isa();
  FmaFn fn = fma_scalar;
#ifdef TP_ML_X86
  if (isa == IsaLevel::Avx512) fn = fma_avx512;
  else if (isa == IsaLevel::Avx2) fn = fma_avx2;
#endif
  const int64_t iters = fma_iters(isa);
  std::vector<float> sinks(static_cast<size_t>(threads), 0.0f);
  std::vector<double> flops(static_cast<size_t>(threads), 0.0);
  volatile float sink = 0.0f;
  double best = -1.0, best_any = -1.0;
  // The first rep also brings the cores up to their (AVX) frequency.
  constexpr int kReps = 5;
  for (int r = 0; r < kReps; ++r) {
    const auto t0 = Clock::now();
    const bool concurrent = run_one_task_per_worker(threads, [&](int64_t t) {
      flops[static_cast<size_t>(t)] = fn(iters, &sinks[static_cast<size_t>(t)]);
    });
    const double s = seconds_since(t0);
    double total = 0;
    for (size_t t = 0; t < flops.size(); ++t) {
      total += flops[t];
      sink = sink + sinks[t];
    }
    const double rate = total / s;
    best_any = std::max(best_any, rate);
    if (concurrent) best = std::max(best, rate);
  }
  (void)sink;
  return best > 0 ? best : best_any;
}

}  // namespace tp
