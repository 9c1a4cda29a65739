// KIVI blocks on the device: quantization and dequantization with the CPU's
// code (kv_quant_block.h is TP_HD). Shapes: cuda_kv_quant.h.
#include <cuda_runtime.h>

#include "../kv/kv_quant_block.h"
#include "cuda_check.cuh"
#include "cuda_kv_common.cuh"
#include "cuda_kv_quant.h"

namespace tp::cuda {
namespace {

using namespace kvk;

struct F16At {
  const uint16_t* p;
  int64_t ld;
  __device__ float operator()(int64_t t, int64_t c) const { return f16_to_f32(p[t * ld + c]); }
};

// One thread per (head, group): a block is a serial pass over group x headDim values.
__global__ void quantize_groups_kernel(QuantizeLaunch q) {
  const int h = blockIdx.y;
  const int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= q.groups[h]) return;
  const kv::QuantLayout& L = q.layout;
  const int64_t row0 = int64_t(h) * q.src_rows + i * L.group;
  uint8_t* block = q.blocks + (int64_t(h) * q.blocks_cap + q.first_block[h] + i) * L.block_bytes;
  if (q.src_f32) {
    const float* k = static_cast<const float*>(q.k) + row0 * L.head_dim;
    const float* v = static_cast<const float*>(q.v) + row0 * L.head_dim;
    kv::quantize_block_with(L, kv::F32Rows{k, L.head_dim}, kv::F32Rows{v, L.head_dim}, block);
  } else {
    const uint16_t* k = static_cast<const uint16_t*>(q.k) + row0 * L.head_dim;
    const uint16_t* v = static_cast<const uint16_t*>(q.v) + row0 * L.head_dim;
    kv::quantize_block_with(L, F16At{k, L.head_dim}, F16At{v, L.head_dim}, block);
  }
}

// One thread per (head, row, channel).
__global__ void dequantize_kernel(DequantizeLaunch d) {
  const int h = blockIdx.y;
  const int64_t D = d.layout.head_dim;
  const int64_t t = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t row = t / D, c = t % D;
  if (row >= d.lens[h]) return;
  const int64_t g = d.layout.group, quantized = int64_t(d.n_blocks[h]) * g;
  float k, v;
  if (row < quantized) {
    const uint8_t* block = d.blocks + (int64_t(h) * d.blocks_cap + row / g) * d.layout.block_bytes;
    k = kv::dequant_k(d.layout, block, row % g, c);
    v = kv::dequant_v(d.layout, block, row % g, c);
  } else {
    const int64_t at = (int64_t(h) * d.tail_rows + row - quantized) * D + c;
    k = f16_to_f32(d.tail_k[at]);
    v = f16_to_f32(d.tail_v[at]);
  }
  const int64_t out = (int64_t(h) * d.out_rows + row) * D + c;
  if (d.k32) {
    d.k32[out] = k;
    d.v32[out] = v;
  }
  if (d.k16) {
    d.k16[out] = f32_to_f16(k);
    d.v16[out] = f32_to_f16(v);
  }
}

__global__ void rows_to_f16_kernel(const float* src, int64_t src_rows, const int32_t* first, const int32_t* n, int64_t head_dim,
                                   uint16_t* dst, int64_t dst_rows) {
  const int h = blockIdx.y;
  const int64_t t = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t row = t / head_dim, c = t % head_dim;
  if (row >= n[h]) return;
  dst[(int64_t(h) * dst_rows + row) * head_dim + c] = f32_to_f16(src[(int64_t(h) * src_rows + first[h] + row) * head_dim + c]);
}

}  // namespace

Status launch_quantize_groups(const QuantizeLaunch& q) {
  if (q.max_groups == 0) return Status::ok();
  quantize_groups_kernel<<<head_grid(q.max_groups, q.n_kv_heads), kThreads>>>(q);
  return launched("launch quantize_groups_kernel");
}

Status launch_dequantize_layer(const DequantizeLaunch& d) {
  if (d.max_len == 0) return Status::ok();
  dequantize_kernel<<<head_grid(d.max_len * d.layout.head_dim, d.n_kv_heads), kThreads>>>(d);
  return launched("launch dequantize_kernel");
}

Status launch_rows_to_f16(const float* src, int64_t src_rows, const int32_t* first, const int32_t* n, int64_t n_kv_heads,
                          int64_t max_n, int64_t head_dim, uint16_t* dst, int64_t dst_rows) {
  if (max_n == 0) return Status::ok();
  rows_to_f16_kernel<<<head_grid(max_n * head_dim, n_kv_heads), kThreads>>>(src, src_rows, first, n, head_dim, dst, dst_rows);
  return launched("launch rows_to_f16_kernel");
}

}  // namespace tp::cuda
