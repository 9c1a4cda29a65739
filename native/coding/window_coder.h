// The exact interval coder for one Equal-Info window of b bits.
//
// The window's value v is an integer in [0, 2^b). The coder keeps the set of
// values still possible, [lo, lo + W), as W = w * 2^s: units of 2^s values
// (s > 0 only while W is large; then 2^40 <= w < 2^48 after renormalizing).
// Each step splits the w units as
//   unit 0                      -> "stop": the window ends here
//   units 1 + [floor((w-1) C_i / T), floor((w-1) C_{i+1} / T)) -> byte i
// where C_i are the cumulative quantized frequencies (total T = 2^L).
// The encoder adds bytes while the next byte's share is non-empty, then
// writes v = lo, the first value of the stop unit. The decoder reads bytes
// until v falls in a stop unit. So every b-bit value decodes to exactly one
// byte string (possibly empty) and every window's end is explicit: no
// ambiguity at window ends or at the end of the input, at no cost beyond one
// unit per step (2^-40 of the interval while W is large). W shrinks by at
// least one unit per step, so decoding any value terminates.
// With T <= 2^(b-1) every byte fits into a fresh window (its share is at
// least 2 f_i - 1 >= 1 units), so each window holds at least one byte.
#pragma once
#include <cstdint>

#include "../core/hd.h"
#include "big_window.h"

namespace tp::coding {

// The frequency total the window coder uses for b-bit windows.
TP_HD int window_total_log2(int window_bits) { return window_bits <= 16 ? 15 : 16; }

// The interval arithmetic both sides share (header-only and TP_HD: the CUDA
// decoder runs exactly these integer steps).
namespace window_math {

constexpr int kPrecisionBits = 47;                   // a fresh window with b > 47 starts at w = 2^47
constexpr uint64_t kNormalized = uint64_t{1} << 40;  // renormalize while w < 2^40 and s > 0

TP_HD void start(uint64_t* w, int* s, int window_bits) {
  if (window_bits <= kPrecisionBits) {
    *w = uint64_t{1} << window_bits;
    *s = 0;
  } else {
    *w = uint64_t{1} << kPrecisionBits;
    *s = window_bits - kPrecisionBits;
  }
}

// Finer units keep the split precise; W = w * 2^s does not change.
TP_HD void renormalize(uint64_t* w, int* s) {
  while (*s > 0 && *w < kNormalized) {
    const int k = *s < 8 ? *s : 8;
    *w <<= k;
    *s -= k;
  }
}

// First unit of the share of cumulative frequency c: 1 + floor((w-1) c / T).
TP_HD uint64_t share_start(uint64_t w, uint32_t c, int total_log2) {
  return 1 + (((w - 1) * c) >> total_log2);  // (w-1) < 2^48, c <= 2^16: no overflow
}

}  // namespace window_math

class WindowEncoder {
 public:
  void reset(int window_bits);
  // Narrows to the byte with cumulative frequency cum and frequency freq
  // (total 2^total_log2). Returns false, changing nothing, if the byte has
  // no unit left: the window is full.
  bool try_encode(uint32_t cum, uint32_t freq, int total_log2);
  // The window's value once no more bytes are added.
  const BigWindow& value() const { return lo_; }

 private:
  BigWindow lo_;
  uint64_t w_ = 0;
  int s_ = 0;
};

// Header-only and TP_HD: the CPU decoders and the CUDA kernel
// (equal_info_portable.h) run this same code.
class WindowDecoder {
 public:
  TP_HD void reset(const BigWindow& value, int window_bits) {
    d_ = value;
    window_math::start(&w_, &s_, window_bits);
  }
  TP_HD bool at_stop() const { return unit() == 0; }
  // The byte to decode is the one with cum <= target < cum + freq.
  TP_HD uint32_t target(int total_log2) const {
    // unit u >= 1 lies in byte i's share iff floor((w-1) C_i / T) <= u - 1,
    // i.e. C_i <= floor((u T - 1) / (w - 1)).
    const uint64_t u = unit();
    return static_cast<uint32_t>(((u << total_log2) - 1) / (w_ - 1));
  }
  TP_HD void consume(uint32_t cum, uint32_t freq, int total_log2) {
    const uint64_t first = window_math::share_start(w_, cum, total_log2);
    const uint64_t end = window_math::share_start(w_, cum + freq, total_log2);
    d_.sub_shifted(first, s_);
    w_ = end - first;
    window_math::renormalize(&w_, &s_);
  }

 private:
  TP_HD uint64_t unit() const { return d_.bits_from(s_); }  // (v - lo) >> s, < w
  BigWindow d_;  // v - lo
  uint64_t w_ = 0;
  int s_ = 0;
};

}  // namespace tp::coding
