// The machine's own limits, measured so benchmarks can quote "% of peak".
//
// Every measurement runs `threads` tasks on the shared pool. Each task waits
// at a spin barrier until all have arrived, then times its own work; a rep's
// time is (last end - first start), so the pool's wake-up latency is not
// counted and the threads really stream together. If the barrier times out
// (a worker was busy elsewhere, or the call came from inside a pool task and
// runs inline), the rep still counts, but is flagged as not concurrent and
// only used when no concurrent rep exists.
//
//   read:  the best of several SIMD streaming loops (8 independent
//          accumulators; AVX-512 with and without software prefetch, AVX2)
//          over a >= 1 GiB, 2 MiB-aligned array with huge pages requested.
//   copy:  memcpy, AVX-512/AVX2 loads + stores and + non-temporal stores.
//   FMA:   16 independent zmm chains (12 ymm) of acc = acc * a + b.
//   bf16:  16 independent VDPBF16PS chains.
//
// SIMD paths are compiled per function with target attributes (portable
// baseline build, no -march) and chosen by runtime CPU detection.
#include "machine_limits.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "thread_pool.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__x86_64__)
#include <immintrin.h>
#define TP_ML_X86 1
#endif

namespace tp {
namespace {

using Clock = std::chrono::steady_clock;

int cap_threads(int threads) {
  const int pool = ThreadPool::instance().size();
  if (threads < 1) return 1;
  return threads > pool ? pool : threads;
}

inline void cpu_relax() {
#ifdef TP_ML_X86
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

struct TimedRun {
  double seconds = 0;
  bool concurrent = false;
};

// Runs fn(task) for task in [0, threads) on the pool, all tasks released by a
// spin barrier; returns the span from the first start to the last end.
template <typename Fn>
TimedRun run_together(int threads, const Fn& fn) {
  std::atomic<int> arrived{0};
  std::atomic<bool> concurrent{true};
  std::vector<Clock::time_point> start(static_cast<size_t>(threads)), end(static_cast<size_t>(threads));
  ThreadPool::instance().parallel_for(
      threads,
      [&](int64_t task, int) {
        arrived.fetch_add(1, std::memory_order_acq_rel);
        const auto deadline = Clock::now() + std::chrono::milliseconds(250);
        for (uint32_t spins = 0; arrived.load(std::memory_order_acquire) < threads; ++spins) {
          cpu_relax();
          if ((spins & 1023) == 0 && Clock::now() > deadline) {
            concurrent.store(false, std::memory_order_relaxed);
            break;
          }
        }
        start[static_cast<size_t>(task)] = Clock::now();
        fn(task);
        end[static_cast<size_t>(task)] = Clock::now();
      },
      nullptr, threads);
  TimedRun r;
  const auto t0 = *std::min_element(start.begin(), start.end());
  const auto t1 = *std::max_element(end.begin(), end.end());
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.concurrent = concurrent.load();
  return r;
}

// ---- the array -----------------------------------------------------------------

// A 2 MiB-aligned anonymous mapping with transparent huge pages requested
// (4 KiB pages cost TLB misses that a 1 GiB stream notices). Falls back to an
// aligned operator new where mmap is missing or refuses.
class BigArray {
 public:
  explicit BigArray(size_t bytes) {
    constexpr size_t kHuge = size_t{2} << 20;
    const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
#if defined(__linux__)
    map_len_ = rounded + kHuge;
    void* m = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED) {
      map_ = m;
      const uintptr_t a = (reinterpret_cast<uintptr_t>(m) + kHuge - 1) & ~(uintptr_t{kHuge} - 1);
      p_ = reinterpret_cast<char*>(a);
#ifdef MADV_HUGEPAGE
      huge_ = madvise(p_, rounded, MADV_HUGEPAGE) == 0;
#endif
      return;
    }
    map_len_ = 0;
#endif
    p_ = static_cast<char*>(::operator new(rounded, std::align_val_t(64), std::nothrow));
    heap_ = true;
  }
  ~BigArray() {
#if defined(__linux__)
    if (map_) munmap(map_, map_len_);
#endif
    if (heap_ && p_) ::operator delete(p_, std::align_val_t(64));
  }
  BigArray(const BigArray&) = delete;
  BigArray& operator=(const BigArray&) = delete;
  char* data() const { return p_; }
  bool huge_pages() const { return huge_; }

 private:
  char* p_ = nullptr;
  void* map_ = nullptr;
  size_t map_len_ = 0;
  bool heap_ = false;
  bool huge_ = false;
};

// ---- read loops -------------------------------------------------------------------
// Each sums n floats (n a multiple of 16, p 64-byte aligned) with 8
// independent accumulators so the adds never limit the loads.

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
  __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (int64_t i = 0; i < n; i += 32) {
    a0 = _mm_add_ps(a0, _mm_load_ps(p + i));
    a1 = _mm_add_ps(a1, _mm_load_ps(p + i + 4));
    a2 = _mm_add_ps(a2, _mm_load_ps(p + i + 8));
    a3 = _mm_add_ps(a3, _mm_load_ps(p + i + 12));
    if (i + 32 <= n) {
      a4 = _mm_add_ps(a4, _mm_load_ps(p + i + 16));
      a5 = _mm_add_ps(a5, _mm_load_ps(p + i + 20));
      a6 = _mm_add_ps(a6, _mm_load_ps(p + i + 24));
      a7 = _mm_add_ps(a7, _mm_load_ps(p + i + 28));
    }
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_add_ps(_mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)),
                                  _mm_add_ps(_mm_add_ps(a4, a5), _mm_add_ps(a6, a7))));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

__attribute__((target("avx2,fma"))) float sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    a4 = _mm256_add_ps(a4, _mm256_load_ps(p + i + 32));
    a5 = _mm256_add_ps(a5, _mm256_load_ps(p + i + 40));
    a6 = _mm256_add_ps(a6, _mm256_load_ps(p + i + 48));
    a7 = _mm256_add_ps(a7, _mm256_load_ps(p + i + 56));
  }
  for (; i < n; i += 8) a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
  a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                     _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  float lanes[8];
  _mm256_storeu_ps(lanes, a0);
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

// Prefetch distance of the prefetching variant, in floats (4 KiB ahead).
constexpr int64_t kPrefetchAhead = 1024;

template <bool kPrefetch>
__attribute__((target("avx512f"))) inline float sum_avx512_impl(const float* p, int64_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
    if (kPrefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 16), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 32), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 48), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 64), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 80), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 96), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i + kPrefetchAhead + 112), _MM_HINT_T0);
    }
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    a4 = _mm512_add_ps(a4, _mm512_load_ps(p + i + 64));
    a5 = _mm512_add_ps(a5, _mm512_load_ps(p + i + 80));
    a6 = _mm512_add_ps(a6, _mm512_load_ps(p + i + 96));
    a7 = _mm512_add_ps(a7, _mm512_load_ps(p + i + 112));
  }
  for (; i < n; i += 16) a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
  return hsum512(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                               _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7))));
}

__attribute__((target("avx512f"))) float sum_avx512(const float* p, int64_t n) { return sum_avx512_impl<false>(p, n); }
__attribute__((target("avx512f"))) float sum_avx512_pf(const float* p, int64_t n) { return sum_avx512_impl<true>(p, n); }
#endif

using SumFn = float (*)(const float*, int64_t);
struct SumLoop {
  const char* name;
  SumFn fn;
};

// The machine's limit, not the kernels': every loop the CPU can run,
// whatever ISA the kernels are currently restricted to.
std::vector<SumLoop> read_loops() {
  std::vector<SumLoop> loops;
#ifdef TP_ML_X86
  const IsaLevel isa = detected_isa();
  if (isa >= IsaLevel::Avx512) {
    loops.push_back({"avx512", sum_avx512});
    loops.push_back({"avx512-prefetch", sum_avx512_pf});
  }
  if (isa >= IsaLevel::Avx2) loops.push_back({"avx2", sum_avx2});
  if (loops.empty()) loops.push_back({"sse2", sum_sse2});
#else
  loops.push_back({"scalar", sum_scalar});
#endif
  return loops;
}

// ---- copy loops ---------------------------------------------------------------------
// Each copies n floats (n a multiple of 16, both 64-byte aligned).

void copy_memcpy(float* dst, const float* src, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float)); }

#ifdef TP_ML_X86
template <bool kStream>
__attribute__((target("avx512f"))) inline void copy_avx512_impl(float* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 x0 = _mm512_load_ps(src + i), x1 = _mm512_load_ps(src + i + 16);
    const __m512 x2 = _mm512_load_ps(src + i + 32), x3 = _mm512_load_ps(src + i + 48);
    if (kStream) {
      _mm512_stream_ps(dst + i, x0);
      _mm512_stream_ps(dst + i + 16, x1);
      _mm512_stream_ps(dst + i + 32, x2);
      _mm512_stream_ps(dst + i + 48, x3);
    } else {
      _mm512_store_ps(dst + i, x0);
      _mm512_store_ps(dst + i + 16, x1);
      _mm512_store_ps(dst + i + 32, x2);
      _mm512_store_ps(dst + i + 48, x3);
    }
  }
  for (; i < n; i += 16) _mm512_store_ps(dst + i, _mm512_load_ps(src + i));
  if (kStream) _mm_sfence();
}
__attribute__((target("avx512f"))) void copy_avx512(float* d, const float* s, int64_t n) { copy_avx512_impl<false>(d, s, n); }
__attribute__((target("avx512f"))) void copy_avx512_nt(float* d, const float* s, int64_t n) { copy_avx512_impl<true>(d, s, n); }

template <bool kStream>
__attribute__((target("avx2"))) inline void copy_avx2_impl(float* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __m256 x0 = _mm256_load_ps(src + i), x1 = _mm256_load_ps(src + i + 8);
    if (kStream) {
      _mm256_stream_ps(dst + i, x0);
      _mm256_stream_ps(dst + i + 8, x1);
    } else {
      _mm256_store_ps(dst + i, x0);
      _mm256_store_ps(dst + i + 8, x1);
    }
  }
  if (kStream) _mm_sfence();
}
__attribute__((target("avx2"))) void copy_avx2(float* d, const float* s, int64_t n) { copy_avx2_impl<false>(d, s, n); }
__attribute__((target("avx2"))) void copy_avx2_nt(float* d, const float* s, int64_t n) { copy_avx2_impl<true>(d, s, n); }
#endif

using CopyFn = void (*)(float*, const float*, int64_t);
struct CopyLoop {
  const char* name;
  CopyFn fn;
};

std::vector<CopyLoop> copy_loops() {
  std::vector<CopyLoop> loops{{"memcpy", copy_memcpy}};
#ifdef TP_ML_X86
  const IsaLevel isa = detected_isa();
  if (isa >= IsaLevel::Avx512) {
    loops.push_back({"avx512", copy_avx512});
    loops.push_back({"avx512-nt", copy_avx512_nt});
  } else if (isa >= IsaLevel::Avx2) {
    loops.push_back({"avx2", copy_avx2});
    loops.push_back({"avx2-nt", copy_avx2_nt});
  }
#endif
  return loops;
}

// Slab t of `lines` 64-byte lines split over `threads`: [begin, begin + count) in floats.
void slab(int64_t lines, int threads, int64_t t, int64_t* begin, int64_t* count) {
  const int64_t l0 = t * lines / threads, l1 = (t + 1) * lines / threads;
  *begin = l0 * 16;
  *count = (l1 - l0) * 16;
}

// Best-of bookkeeping: concurrent reps win over non-concurrent ones.
struct Best {
  double concurrent = -1, any = -1;
  const char* loop_concurrent = "none";
  const char* loop_any = "none";
  int concurrent_reps = 0;
  void add(double v, bool conc, const char* loop) {
    if (v > any) {
      any = v;
      loop_any = loop;
    }
    if (conc) {
      ++concurrent_reps;
      if (v > concurrent) {
        concurrent = v;
        loop_concurrent = loop;
      }
    }
  }
  double value() const { return concurrent > 0 ? concurrent : any; }
  const char* loop() const { return concurrent > 0 ? loop_concurrent : loop_any; }
};

// ---- FMA peak ------------------------------------------------------------------------

// Each step is acc = acc * a + b with a < 1, so values converge to
// b / (1 - a) and never overflow or go denormal.
constexpr float kA = 0.999999f;
constexpr float kB = 1e-6f;

#ifdef TP_ML_X86
// 16 zmm chains: covers FMA latency 4 x 2 pipes (Skylake-SP .. Zen 5) with
// slack. Returns FLOPs done.
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

// 16 ymm registers: 12 chains + a + b (latency 4 x 2 pipes = 8 needed).
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

// 16 chains of VDPBF16PS: each lane does 2 bf16 products summed into f32
// (4 FLOPs). a * b = 2^-20, so after 10^8 steps a lane holds ~200: no overflow.
__attribute__((target("avx512f,avx512bf16"))) double bf16_avx512(int64_t iters, float* sink) {
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3a80);  // bf16 2^-10
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3a80);
  __m512 c0 = _mm512_set1_ps(0.0f), c1 = _mm512_set1_ps(0.01f), c2 = _mm512_set1_ps(0.02f), c3 = _mm512_set1_ps(0.03f);
  __m512 c4 = _mm512_set1_ps(0.04f), c5 = _mm512_set1_ps(0.05f), c6 = _mm512_set1_ps(0.06f), c7 = _mm512_set1_ps(0.07f);
  __m512 c8 = _mm512_set1_ps(0.08f), c9 = _mm512_set1_ps(0.09f), c10 = _mm512_set1_ps(0.10f), c11 = _mm512_set1_ps(0.11f);
  __m512 c12 = _mm512_set1_ps(0.12f), c13 = _mm512_set1_ps(0.13f), c14 = _mm512_set1_ps(0.14f), c15 = _mm512_set1_ps(0.15f);
  for (int64_t i = 0; i < iters; ++i) {
    c0 = _mm512_dpbf16_ps(c0, a, b); c1 = _mm512_dpbf16_ps(c1, a, b);
    c2 = _mm512_dpbf16_ps(c2, a, b); c3 = _mm512_dpbf16_ps(c3, a, b);
    c4 = _mm512_dpbf16_ps(c4, a, b); c5 = _mm512_dpbf16_ps(c5, a, b);
    c6 = _mm512_dpbf16_ps(c6, a, b); c7 = _mm512_dpbf16_ps(c7, a, b);
    c8 = _mm512_dpbf16_ps(c8, a, b); c9 = _mm512_dpbf16_ps(c9, a, b);
    c10 = _mm512_dpbf16_ps(c10, a, b); c11 = _mm512_dpbf16_ps(c11, a, b);
    c12 = _mm512_dpbf16_ps(c12, a, b); c13 = _mm512_dpbf16_ps(c13, a, b);
    c14 = _mm512_dpbf16_ps(c14, a, b); c15 = _mm512_dpbf16_ps(c15, a, b);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                           _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)),
                                     _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15))));
  *sink = hsum512(s);
  return static_cast<double>(iters) * 16 /*chains*/ * 16 /*lanes*/ * 4;
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

// Runs fn(iters) on `threads` threads, kReps times; best FLOP/s.
double peak_of(FmaFn fn, int64_t iters, int threads) {
  std::vector<float> sinks(static_cast<size_t>(threads), 0.0f);
  std::vector<double> flops(static_cast<size_t>(threads), 0.0);
  volatile float sink = 0.0f;
  Best best;
  // The first rep also brings the cores up to their (AVX) frequency.
  constexpr int kReps = 5;
  for (int r = 0; r < kReps; ++r) {
    const TimedRun run = run_together(threads, [&](int64_t t) {
      flops[static_cast<size_t>(t)] = fn(iters, &sinks[static_cast<size_t>(t)]);
    });
    double total = 0;
    for (size_t t = 0; t < flops.size(); ++t) {
      total += flops[t];
      sink = sink + sinks[t];
    }
    if (run.seconds > 0) best.add(total / run.seconds, run.concurrent, "");
  }
  (void)sink;
  return best.value();
}

// Fills *info (when given) from the best rep; returns its figure.
double report_best(const Best& best, const BigArray& buf, int threads, BandwidthInfo* info) {
  if (info) {
    info->loop = best.loop();
    info->huge_pages = buf.huge_pages();
    info->concurrent_reps = best.concurrent_reps;
    info->threads = threads;
  }
  return best.value();
}

}  // namespace

double measure_read_bandwidth(int64_t bytes, int threads, int reps, BandwidthInfo* info) {
  threads = cap_threads(threads);
  if (reps < 1) reps = 1;
  const int64_t lines = bytes / 64;
  if (lines < threads) return -1.0;
  const int64_t n = lines * 16;
  BigArray buf(static_cast<size_t>(lines) * 64);
  if (!buf.data()) return -1.0;
  float* p = reinterpret_cast<float*>(buf.data());
  try {
    // Touch every page before timing (first touch by the worker that reads it).
    run_together(threads, [&](int64_t t) {
      int64_t b, c;
      slab(lines, threads, t, &b, &c);
      for (int64_t i = 0; i < c; ++i) p[b + i] = static_cast<float>((b + i) & 1023) * (1.0f / 1024.0f);
    });
    const std::vector<SumLoop> loops = read_loops();
    std::vector<float> partial(static_cast<size_t>(threads), 0.0f);
    volatile float sink = 0.0f;
    Best best;
    // Loops interleaved rep by rep, so a burst of outside load hits them alike.
    for (int r = 0; r < reps; ++r) {
      for (const SumLoop& loop : loops) {
        const TimedRun run = run_together(threads, [&](int64_t t) {
          int64_t b, c;
          slab(lines, threads, t, &b, &c);
          partial[static_cast<size_t>(t)] = loop.fn(p + b, c);
        });
        for (float x : partial) sink = sink + x;
        if (run.seconds > 0) best.add(static_cast<double>(n) * sizeof(float) / run.seconds, run.concurrent, loop.name);
      }
    }
    (void)sink;
    return report_best(best, buf, threads, info);
  } catch (const std::bad_alloc&) {
    return -1.0;
  }
}

// The name of a read loop's next-block-prefetch variant (static storage, as
// BandwidthInfo::loop needs), or null for loops that prefetch on their own.
static const char* with_next_block(const char* loop) {
  static const char* const kNames[][2] = {
      {"avx512", "avx512+next"}, {"avx2", "avx2+next"}, {"sse2", "sse2+next"}, {"scalar", "scalar+next"}};
  for (const auto& n : kNames) {
    if (std::strcmp(n[0], loop) == 0) return n[1];
  }
  return nullptr;
}

// Gathered read: each thread reads `count` blocks of its slab, one picked at
// random from each of `count` equal strata (so ascending, distinct, and as
// scattered as a sparse selection's pages), every block start to end with a
// read loop; the "+next" variants prefetch the next block's lines before
// reading the current one (the hardware prefetchers stop at 4 KiB edges).
// Offsets are drawn before the timed pass, fresh each rep.
double measure_gather_bandwidth(int64_t bytes, int64_t block_bytes, int threads, int reps, BandwidthInfo* info) {
  threads = cap_threads(threads);
  if (reps < 1) reps = 1;
  if (block_bytes < 64 || block_bytes % 64 != 0) return -1.0;
  const int64_t blocks = bytes / block_bytes;
  if (blocks < threads) return -1.0;
  const int64_t block_floats = block_bytes / 4;
  BigArray buf(static_cast<size_t>(blocks * block_bytes));
  if (!buf.data()) return -1.0;
  float* p = reinterpret_cast<float*>(buf.data());
  try {
    run_together(threads, [&](int64_t t) {
      const int64_t b0 = t * blocks / threads, b1 = (t + 1) * blocks / threads;
      for (int64_t i = b0 * block_floats; i < b1 * block_floats; ++i) p[i] = static_cast<float>(i & 1023) * (1.0f / 1024.0f);
    });
    const std::vector<SumLoop> loops = read_loops();
    std::vector<std::vector<int64_t>> offsets(static_cast<size_t>(threads));
    std::vector<float> partial(static_cast<size_t>(threads), 0.0f);
    volatile float sink = 0.0f;
    Best best;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int r = 0; r < reps; ++r) {
      for (const SumLoop& loop : loops) {
        for (int next = 0; next < 2; ++next) {
          if (next && !with_next_block(loop.name)) continue;
          int64_t total = 0;
          for (int t = 0; t < threads; ++t) {
            const int64_t b0 = t * blocks / threads, b1 = (t + 1) * blocks / threads;
            const int64_t count = std::max<int64_t>(1, (b1 - b0) / 16);
            std::vector<int64_t>& off = offsets[static_cast<size_t>(t)];
            off.resize(static_cast<size_t>(count));
            for (int64_t i = 0; i < count; ++i) {
              seed ^= seed << 13;
              seed ^= seed >> 7;
              seed ^= seed << 17;
              const int64_t s0 = b0 + i * (b1 - b0) / count, s1 = b0 + (i + 1) * (b1 - b0) / count;
              off[static_cast<size_t>(i)] = (s0 + static_cast<int64_t>(seed % static_cast<uint64_t>(s1 - s0))) * block_floats;
            }
            total += count;
          }
          const TimedRun run = run_together(threads, [&](int64_t t) {
            const std::vector<int64_t>& off = offsets[static_cast<size_t>(t)];
            float acc = 0.0f;
            for (size_t i = 0; i < off.size(); ++i) {
              if (next && i + 1 < off.size()) {
                const char* n = reinterpret_cast<const char*>(p + off[i + 1]);
                for (int64_t l = 0; l < block_bytes; l += 64) __builtin_prefetch(n + l, 0, 3);
              }
              acc += loop.fn(p + off[i], block_floats);
            }
            partial[static_cast<size_t>(t)] = acc;
          });
          for (float x : partial) sink = sink + x;
          const char* name = next ? with_next_block(loop.name) : loop.name;
          if (run.seconds > 0) best.add(static_cast<double>(total * block_bytes) / run.seconds, run.concurrent, name);
        }
      }
    }
    (void)sink;
    return report_best(best, buf, threads, info);
  } catch (const std::bad_alloc&) {
    return -1.0;
  }
}

double measure_copy_bandwidth(int64_t bytes, int threads, int reps, BandwidthInfo* info) {
  threads = cap_threads(threads);
  if (reps < 1) reps = 1;
  const int64_t lines = bytes / 128;  // per half
  if (lines < threads) return -1.0;
  const int64_t n = lines * 16;
  BigArray buf(static_cast<size_t>(lines) * 128);
  if (!buf.data()) return -1.0;
  float* src = reinterpret_cast<float*>(buf.data());
  float* dst = src + n;
  try {
    run_together(threads, [&](int64_t t) {
      int64_t b, c;
      slab(lines, threads, t, &b, &c);
      for (int64_t i = 0; i < c; ++i) {
        src[b + i] = static_cast<float>((b + i) & 1023);
        dst[b + i] = 0.0f;
      }
    });
    const std::vector<CopyLoop> loops = copy_loops();
    Best best;
    for (int r = 0; r < reps; ++r) {
      for (const CopyLoop& loop : loops) {
        const TimedRun run = run_together(threads, [&](int64_t t) {
          int64_t b, c;
          slab(lines, threads, t, &b, &c);
          loop.fn(dst + b, src + b, c);
        });
        if (run.seconds > 0) best.add(static_cast<double>(n) * sizeof(float) / run.seconds, run.concurrent, loop.name);
      }
    }
    return report_best(best, buf, threads, info);
  } catch (const std::bad_alloc&) {
    return -1.0;
  }
}

double measure_fma_peak(int threads) {
  threads = cap_threads(threads);
  const IsaLevel isa = detected_isa();
  // Iterations per task: ~50-80 ms of work per rep at 2.5-4 GHz.
#ifdef TP_ML_X86
  if (isa == IsaLevel::Avx512) return peak_of(fma_avx512, 24'000'000, threads);
  if (isa == IsaLevel::Avx2) return peak_of(fma_avx2, 32'000'000, threads);
#endif
  (void)isa;
  return peak_of(fma_scalar, 24'000'000, threads);
}

double measure_bf16_peak(int threads) {
  threads = cap_threads(threads);
#ifdef TP_ML_X86
  const CpuFeatures& f = cpu_features();
  if (f.avx512f && f.avx512bf16) return peak_of(bf16_avx512, 16'000'000, threads);
#endif
  return 0.0;
}

}  // namespace tp
