// Equal-Info Windows (Lester et al. 2024): text is cut into windows that
// each code to exactly b bits, and the model's context restarts at every
// window. Window ends are explicit (window_coder.h), so decoding is exact
// for every input, and windows decode independently (random access).
//
// The per-stream state machines take the model's masses one byte at a
// time, so the same code serves the built-in model (driven natively) and a
// model in JavaScript (driven step by step from the binding).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/status.h"
#include "bit_io.h"
#include "byte_model.h"
#include "window_coder.h"

namespace tp::coding {

// Encodes one document into back-to-back b-bit windows.
class EqualInfoEncoder {
 public:
  EqualInfoEncoder(const uint8_t* text, size_t n, int window_bits);
  bool done() const { return pos_ == n_; }
  // The bytes since the current window started (the model's whole context).
  const uint8_t* context() const { return text_ + window_start_; }
  size_t context_length() const { return pos_ - window_start_; }
  int total_log2() const { return total_log2_; }
  // The model's masses for the byte at the current position (quantized by
  // quantize.h's rule): codes it, or closes the full window (the next call then starts a new
  // window with an empty context). Internal error if a byte does not fit a
  // fresh window (impossible by construction; checked, never looped on).
  Status feed(const uint32_t* masses);
  size_t windows() const { return windows_; }
  const BitWriter& bits() const { return out_; }
  BitWriter& bits() { return out_; }

 private:
  void close_window();
  const uint8_t* text_;
  size_t n_, pos_ = 0, window_start_ = 0, windows_ = 0;
  int window_bits_, total_log2_;
  WindowEncoder coder_;
  BitWriter out_;
};

// Decodes one window.
class EqualInfoWindowDecoder {
 public:
  EqualInfoWindowDecoder(const uint8_t* bits, size_t nbytes, size_t bit_offset, int window_bits, size_t max_bytes);
  bool done() const { return coder_.at_stop(); }
  const uint8_t* context() const { return out_.data(); }
  size_t context_length() const { return out_.size(); }
  int total_log2() const { return total_log2_; }
  // The model's masses for the next byte: decodes it. InvalidArgument when the
  // window holds more than max_bytes (a corrupt or foreign stream).
  Status feed(const uint32_t* masses);
  std::vector<uint8_t>& output() { return out_; }

 private:
  WindowDecoder coder_;
  std::vector<uint8_t> out_;
  int total_log2_;
  size_t max_bytes_;
};

// Built-in model drivers. Masses come from `model` on the last
// max_order() bytes of each window's context.
Status equal_info_encode(const ByteModel& model, const uint8_t* text, size_t n, int window_bits, BitWriter* out,
                         size_t* windows);
Status equal_info_decode_window(const ByteModel& model, const uint8_t* bits, size_t nbytes, size_t window_index,
                                int window_bits, size_t max_bytes, std::vector<uint8_t>* out);

// The most bytes a b-bit window can decode to: each byte shrinks the
// interval by a factor of at most 1 - 255/2^15, about 1/88 bit.
inline size_t max_window_bytes(int window_bits) { return static_cast<size_t>(window_bits) * 96 + 64; }
// What one window may decode to under a caller's per-document limit.
inline size_t window_byte_cap(int window_bits, size_t max_bytes) {
  return max_window_bytes(window_bits) < max_bytes ? max_window_bytes(window_bits) : max_bytes;
}

}  // namespace tp::coding
