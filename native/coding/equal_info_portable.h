// One Equal-Info window decoded with the built-in KnModel, by code that runs
// unchanged on the CPU and in the CUDA kernel (native/cuda/cuda_equal_info.cu):
// header-only and TP_HD, no allocation, no exceptions. The CPU's own decoder
// (equal_info.h) and this one give the same bytes, because both run the same
// WindowDecoder, find_byte and kn_masses integer steps.
//
// Each window decodes into a fixed slot. A window that would need more than
// `limit` bytes (limit = min(slot size, the per-window cap)) stops there and
// reports kWindowOverflow; the host then decodes exactly those windows with
// the CPU decoder, which gives the bytes or the CPU's error, so results are
// always complete and exactly the CPU's (equal_info_portable_decode_batch).
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/hd.h"
#include "bit_io.h"
#include "kn_query.h"
#include "quantize.h"
#include "window_coder.h"

namespace tp::coding {

constexpr uint32_t kWindowOverflow = 0xFFFFFFFFu;

// Decodes window `window_index` of the packed bits[0..nbytes) (b-bit windows
// back to back) into out[0..limit). Returns the byte count, or
// kWindowOverflow when the window holds more than `limit` bytes (out then
// holds its first `limit` bytes). The model's context is the last max_order
// bytes of the window, kept in a small shift register.
template <typename ScaleRow>
TP_HD uint32_t decode_window_portable(const KnView& model, const uint8_t* bits, size_t nbytes, size_t window_index,
                                      int window_bits, uint8_t* out, uint32_t limit, const ScaleRow& scale_row) {
  const int total_log2 = window_total_log2(window_bits);
  WindowDecoder coder;
  {
    BigWindow value;
    get_window(bits, nbytes, window_index * static_cast<size_t>(window_bits), window_bits, &value);
    coder.reset(value, window_bits);
  }
  uint8_t ctx[kKnQueryMaxOrder];
  int ctx_len = 0;
  const int order = model.max_order < kKnQueryMaxOrder ? model.max_order : kKnQueryMaxOrder;
  uint32_t masses[kAlphabet];
  uint32_t n = 0;
  while (!coder.at_stop()) {
    if (n >= limit) return kWindowOverflow;
    kn_masses(model, ctx, ctx_len, masses, scale_row);
    SymbolRange r;
    const int byte = find_byte(masses, coder.target(total_log2), total_log2, &r);
    coder.consume(r.cum, r.freq, total_log2);
    out[n++] = static_cast<uint8_t>(byte);
    if (order == 0) continue;
    if (ctx_len < order) {
      ctx[ctx_len++] = static_cast<uint8_t>(byte);
    } else {
      for (int i = 1; i < order; ++i) ctx[i - 1] = ctx[i];
      ctx[order - 1] = static_cast<uint8_t>(byte);
    }
  }
  return n;
}

}  // namespace tp::coding
