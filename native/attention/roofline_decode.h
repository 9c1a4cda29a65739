// A minimal streaming decode-attention loop: the roofline peer that
// `tokenpress bench attention` runs beside the real kernels. It does the
// memory traffic decode attention must do (every K and V row read once per
// KV head) with as little else as possible, so "ours / roof" shows how much
// of a kernel's time is overhead beyond the streaming itself.
//
// Self-contained on purpose: its own intrinsics (roofline_decode_avx512.cpp,
// roofline_decode_avx2.cpp), no masks, no row pointers, no strides, no
// planner. Not a public kernel: only the benchmark and its test call it.
//
// Shapes (contiguous, row-major):
//   q   [nHeads, headDim] f32          one query row per head (nQ = 1)
//   k,v [nKvHeads, nKv, headDim]       f32 or f16 bits
//   out [nHeads, headDim] f32
// GQA: nHeads % nKvHeads == 0; query head h reads KV head h / (nHeads /
// nKvHeads), and the group's rows share each K/V load (one pass per KV head).
// Per KV head: one pass over 64-key chunks: q.k scores for the chunk, online
// softmax (running max and sum), then P.V. Work is split over KV heads.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp {

struct RooflineDecodeArgs {
  const float* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  bool f16 = false;  // K/V element type: f16 bits (true) or f32
  float* out = nullptr;
  int nHeads = 0, nKvHeads = 0, headDim = 0;
  int64_t nKv = 0;
  float scale = 1.0f;
};

// One KV head and its group of query rows.
struct RooflineHead {
  const float* q;  // [group, headDim]
  const void* k;   // [nKv, headDim]
  const void* v;   // [nKv, headDim]
  float* out;      // [group, headDim]
  int64_t nKv;
  int group;
  int headDim;
  float scale;
  bool f16;
};

// Largest headDim the loop takes (its per-row scratch lives on the stack).
constexpr int kRooflineMaxHeadDim = 256;

// isa: 0 scalar, 1 avx2, 2 avx512, -1 the active ISA (TOKENPRESS_ISA /
// setIsa). A level the CPU lacks is an Unsupported status. SIMD paths need
// headDim % 16 (AVX-512) or % 8 (AVX2); other head dims run the scalar loop.
Status roofline_decode(const RooflineDecodeArgs& args, int threads, int isa = -1);

// The per-ISA loops (one KV head each).
void roofline_head_scalar(const RooflineHead& h);
void roofline_head_avx2(const RooflineHead& h);
void roofline_head_avx512(const RooflineHead& h);

}  // namespace tp
