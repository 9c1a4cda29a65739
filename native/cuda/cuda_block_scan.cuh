// A block-wide exclusive prefix sum for the CUDA kernels (Quest's and the
// vision operators' radix top-k): warp shuffles, then one warp over the
// warp totals. blockDim.x a multiple of 32, <= 1024; warp_sums holds
// blockDim.x / 32 ints of shared memory; *total gets the block's sum. Every
// thread of the block must call it; it ends synchronized.
#pragma once

namespace tp::cuda {

__device__ __forceinline__ int block_exclusive_scan(int x, int* warp_sums, int* total) {
  constexpr unsigned kAll = 0xffffffffu;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  int v = x;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int y = __shfl_up_sync(kAll, v, off);
    if (lane >= off) v += y;
  }
  if (lane == 31) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    int w = lane < warps ? warp_sums[lane] : 0;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int y = __shfl_up_sync(kAll, w, off);
      if (lane >= off) w += y;
    }
    if (lane < warps) warp_sums[lane] = w;
  }
  __syncthreads();
  const int before = warp == 0 ? 0 : warp_sums[warp - 1];
  *total = warp_sums[warps - 1];
  __syncthreads();
  return before + v - x;
}

}  // namespace tp::cuda
