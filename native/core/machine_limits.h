// Measures the machine's own limits so benchmarks can quote "% of peak".
// One implementation shared by every benchmark (bench/limits.ts caches the
// figures once per process), so every report divides by the same roof.
#pragma once
#include <cstdint>

namespace tp {

// How a bandwidth figure was obtained (for the reports).
struct BandwidthInfo {
  const char* loop = "none";  // the loop that gave the best rep: avx512, avx2, sse2, scalar, memcpy, avx512-nt, ...
  bool huge_pages = false;    // madvise(MADV_HUGEPAGE) accepted on the array (THP may still decline)
  int concurrent_reps = 0;    // reps whose threads all passed the start barrier together
  int threads = 0;            // threads actually used (capped at the pool size)
};

// STREAM-like read bandwidth in bytes/s: `threads` pool workers, released
// together by a spin barrier, each stream one contiguous slab of a `bytes`
// array (rounded down to 64-byte lines; 2 MiB-aligned, huge pages asked for)
// with every SIMD loop the CPU has (several independent accumulators); the
// best rep of the best loop. Returns -1 when the array cannot be allocated.
double measure_read_bandwidth(int64_t bytes, int threads, int reps, BandwidthInfo* info = nullptr);

// memcpy-like bandwidth in bytes copied per second (the memory traffic is
// twice that: one read and one write per byte): `bytes` / 2 copied from one
// half of a `bytes` array to the other, each thread its own slab; best of
// memcpy, AVX-512/AVX2 stores and non-temporal stores. -1 when the array
// cannot be allocated.
double measure_copy_bandwidth(int64_t bytes, int threads, int reps, BandwidthInfo* info = nullptr);

// Gathered read bandwidth in bytes/s, the limit of a sparse decode's reads:
// each thread reads 1/16 of the `block_bytes` blocks of its slab of a
// `bytes` array, chosen at random (one per stratum, ascending), each block
// start to end; best of the read loops with and without a prefetch of the
// next block. -1 when the array cannot be allocated or block_bytes is not a
// positive multiple of 64.
double measure_gather_bandwidth(int64_t bytes, int64_t block_bytes, int threads, int reps, BandwidthInfo* info = nullptr);

// FP32 fused multiply-add peak in FLOP/s (2 per FMA lane) on the best ISA the
// CPU has (not the one kernels are restricted to), `threads` threads.
double measure_fma_peak(int threads);

// bf16 dot-product peak in FLOP/s (VDPBF16PS: 2 multiplies + 2 adds per f32
// lane) with `threads` threads; 0 when the CPU has no AVX512-BF16.
double measure_bf16_peak(int threads);

}  // namespace tp
