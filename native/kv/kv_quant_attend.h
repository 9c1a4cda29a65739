// Decode attention straight over a KIVI-quantized head (int8/int4 blocks
// plus the f16 tail), without a dequantized copy of the head. int4 blocks at
// group 32 and headDim % 32 == 0 (<= 256) use an integer kernel: q * kscale
// quantized to int8 per block and row, dotted with the raw nibbles, and
// token weights p * vscale quantized to u8 per (row, channel group), dotted
// with the value nibbles; output within about 1.5% (relative L2) of exact
// attention over the stored values. AVX2 (and avx512 without VNNI):
// maddubs, 256-bit (kv_quant_attend_avx2.cpp); avx512 with VNNI: vpdpbusd on
// 512-bit vectors, 16 tokens per key vector, 4 tokens x 16 channels per value
// vector, weights with a full 8-bit step (kv_quant_attend_avx512.cpp). int8
// blocks with group and headDim multiples of 16 on AVX-512
// (kv_quant_attend_avx512.cpp): f32 over the codes widened in registers, the
// key scales folded into q and the value scales into the codes once per
// token, every query row of the GQA group sharing each load. Other blocks
// (int8 elsewhere, odd shapes) and the tail run in f32, each block's rows
// dequantized once for every query row of the GQA group. Flash-decoding:
// chunks of blocks run on the thread pool and merge by log-sum-exp.
#pragma once
#include <cstdint>

#include "../core/status.h"
#include "kv_quant.h"

namespace tp::kv {

struct QuantHeadView {
  const QuantLayout* layout = nullptr;
  const uint8_t* blocks = nullptr;
  int64_t n_blocks = 0;
  const uint16_t* tail_k = nullptr;  // f16 [tail, headDim]
  const uint16_t* tail_v = nullptr;
  int64_t tail = 0;
};

// rows = group * nQ query rows; row r is query r % nQ of query head r / nQ.
struct QuantAttendArgs {
  int64_t rows = 0, n_q = 0;
  const float* const* q = nullptr;  // [rows] pointers to headDim floats
  float* const* out = nullptr;      // [rows] pointers to headDim floats
  float* lse = nullptr;             // [rows] or null
  float scale = 1.0f, softcap = 0.0f;
  bool causal = true;
};

constexpr int64_t kQuantMaxRows = 64;

// Requires 1 <= rows <= kQuantMaxRows.
Status quant_decode_head(const QuantHeadView& h, const QuantAttendArgs& a);

// Several heads (for example every KV head of a layer) in one pass over the
// pool (batches of heads whose partial results stay under about 16 MiB):
// every head's chunks are spread over the threads together, so one head's
// short work never leaves threads idle. Each head's result is the one
// quant_decode_head gives (same chunking, same merge order). The partial
// results live in a buffer kept by the calling thread and reused by the
// next call (no allocation per decode step once it has grown).
Status quant_decode_heads(const QuantHeadView* heads, const QuantAttendArgs* args, int64_t n_heads);

}  // namespace tp::kv
