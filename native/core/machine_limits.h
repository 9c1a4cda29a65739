// Measures the machine's own limits so benchmarks can quote "% of peak".
#pragma once
#include <cstdint>

namespace tp {

// STREAM-like read bandwidth in bytes/s, reading `bytes` (rounded down to a
// multiple of 64) with `threads` threads of the shared pool; best of `reps`.
double measure_read_bandwidth(int64_t bytes, int threads, int reps);

// FP32 fused multiply-add peak in FLOP/s (2 per FMA lane) for the active ISA,
// with `threads` threads.
double measure_fma_peak(int threads);

}  // namespace tp
