// The heavy parts of the visual-token reduction operators (issue 19) on the
// CUDA device (cuda_reduce.cu), and the host model of the same kernels
// (native/reduce/reduce_device_model.h) that the CPU tests run. Both take
// the same VisionJob and fill the same outputs; the per-element arithmetic
// and every rule (ties, NaN, zero rows) is native/reduce/reduce_hd.h (TP_HD),
// so the device and the host model agree bit for bit.
//
// Every entry point is synchronous and works on host memory: it uploads the
// inputs, runs the kernels on the default stream and downloads the outputs.
// Shapes (row-major f32 unless said otherwise):
//   Normalize  x [n, d]                      -> out [n, d] (rows / ||row||, zero rows stay 0)
//   Dot        a [n, d], b [nb, d]           -> out [n, nb] (normalize: cosines)
//   Tome       x = metric [n, d], tokens [n, dt], sizes [n] (empty: ones), r,
//              protect_first                 -> node_max f32 [na], node_idx i32 [na],
//              src i32 [r'] (merged A rows, ascending), dst f32 [nb, dt], dst_sizes [nb]
//              (A = tokens 0, 2, ..., na = ceil(n / 2); B = 1, 3, ..., nb = n / 2)
//   DivPrune   x [n, d], k                   -> picks i32 [min(k, n)] in pick order
//   KMeans     x [n, d], b = centroids [nb, d] -> assign i32 [n], means f32 [nb, d] (of the normalised
//              tokens; 0 for an empty centroid), counts i32 [nb]
//   TopK       scores = x [rows, n] (d unused), k -> idx i32 [rows, min(k, n)] ascending
//
// Without TOKENPRESS_CUDA run_on_device returns an Internal status
// (cuda_reduce.cpp); callers check cuda_status() first.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/status.h"

namespace tp::cuda {

enum class VisionOp : int { Normalize = 0, Dot = 1, Tome = 2, DivPrune = 3, KMeans = 4, TopK = 5 };

struct VisionJob {
  VisionOp op = VisionOp::Normalize;
  // inputs
  std::vector<float> x;       // [n, d] (TopK: scores [rows, n])
  int64_t n = 0, d = 0;
  std::vector<float> b;       // Dot: [nb, d]; KMeans: centroids [nb, d]
  int64_t nb = 0;
  bool normalize = false;     // Dot: cosines instead of dots
  std::vector<float> tokens;  // Tome: [n, dt]
  int64_t dt = 0;
  std::vector<float> sizes;   // Tome: [n] or empty (all 1)
  int64_t r = 0;              // Tome: merges asked
  bool protect_first = false; // Tome: token 0 is a class token (never merged)
  int64_t k = 0;              // DivPrune, TopK
  int64_t rows = 1;           // TopK
  // outputs
  std::vector<float> out;        // Normalize, Dot; Tome: dst; KMeans: means
  std::vector<float> out_sizes;  // Tome: dst_sizes
  std::vector<float> node_max;   // Tome
  std::vector<int32_t> node_idx; // Tome
  std::vector<int32_t> idx;      // Tome: src; DivPrune: picks; KMeans: assign; TopK
  std::vector<int32_t> counts;   // KMeans
  double kernel_ms = 0;          // device only: the kernels' time (CUDA events)
};

// Output sizes every runner fills (the host model and the device agree on them).
inline int64_t tome_na(int64_t n) { return (n + 1) / 2; }
inline int64_t tome_nb(int64_t n) { return n / 2; }

// Runs job.op on the current device. OutOfMemory when device memory runs
// out, Device for other CUDA errors.
Status run_on_device(VisionJob* job);

}  // namespace tp::cuda
