// KIVI int8 / int4 storage of the device KV cache (cuda_kv_quant.cu): the
// CPU's block layout and arithmetic (native/kv/kv_quant.h, kv_quant_block.h,
// compiled for the device), so blocks are byte for byte the CPU's.
//   blocks  u8 [nKvHeads, blocks_cap, block_bytes]
//   tail    f16 [nKvHeads, tail_rows, headDim]: the newest rows, not yet quantized
// A head's rows: its n_blocks[h] * group quantized rows, then its tail.
#pragma once
#include <cstdint>

#include "../core/status.h"
#include "../kv/kv_quant.h"

namespace tp::cuda {

// Quantizes groups[h] consecutive groups of rows per head into blocks
// first_block[h], first_block[h] + 1, ... Rows come from src [nKvHeads,
// src_rows, headDim] (f16 bits, or f32 when src_f32), group i of head h
// starting at row i * group. groups, first_block: device i32 [nKvHeads].
struct QuantizeLaunch {
  kv::QuantLayout layout;
  const void* k = nullptr;
  const void* v = nullptr;
  bool src_f32 = false;
  int64_t n_kv_heads = 0, src_rows = 0;
  const int32_t* groups = nullptr;
  const int32_t* first_block = nullptr;
  int64_t max_groups = 0;
  uint8_t* blocks = nullptr;
  int64_t blocks_cap = 0;
};
Status launch_quantize_groups(const QuantizeLaunch& q);

// Rows [0, lens[h]) of every head, dequantized: out16 f16 bits and/or out32
// f32 [nKvHeads, out_rows, headDim] (either may be null).
struct DequantizeLaunch {
  kv::QuantLayout layout;
  const uint8_t* blocks = nullptr;
  int64_t blocks_cap = 0;
  const int32_t* n_blocks = nullptr;  // device [nKvHeads]
  const uint16_t* tail_k = nullptr;
  const uint16_t* tail_v = nullptr;
  int64_t tail_rows = 0;
  const int32_t* lens = nullptr;
  int64_t n_kv_heads = 0, max_len = 0, out_rows = 0;
  uint16_t* k16 = nullptr;
  uint16_t* v16 = nullptr;
  float* k32 = nullptr;
  float* v32 = nullptr;
};
Status launch_dequantize_layer(const DequantizeLaunch& d);

// f32 rows -> f16 bits (round to nearest even, as the CPU's store_row): dst
// [nKvHeads, dst_rows, headDim] rows [0, n[h]) from src [nKvHeads, src_rows,
// headDim] rows [first[h], first[h] + n[h]). n, first: device i32 [nKvHeads].
Status launch_rows_to_f16(const float* src, int64_t src_rows, const int32_t* first, const int32_t* n, int64_t n_kv_heads,
                          int64_t max_n, int64_t head_dim, uint16_t* dst, int64_t dst_rows);

}  // namespace tp::cuda
