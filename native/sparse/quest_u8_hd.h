// Quest page summaries of int8 / int4 caches on the device: the CPU's U8
// format (quest.h: per completed page one f32 base and step, and u8 codes of
// the bounds rounded outwards, so the decoded bounds still bound every
// dequantized key; the open page in exact f32), TP_HD so that the device
// kernels (native/cuda/cuda_quest.cu) and the host tests
// (test/unit/sparse-quest-device.test.ts, through `questU8Model`) run one
// source. The arithmetic is summary_store_page's (quest.cpp) operation for
// operation: the step in f32 (then raised by nextafter until
// base + 255 * step >= top), the first code guess in double, the outward
// adjustment and the decoding in f32 as base + code * step without FMA.
#pragma once
#include <cmath>
#include <cstdint>

#include "../core/half.h"
#include "../core/hd.h"

namespace tp::sparse::hd {

// A code's value (the decoder; quest.cpp u8_value).
TP_HD float u8_value(float base, float step, uint32_t code) { return add_rn(base, mul_rn(static_cast<float>(code), step)); }

// The smallest f32 step from (top - base) / 255 up with base + 255 * step >= top.
TP_HD float u8_step(float base, float top) {
#if defined(__CUDA_ARCH__)
  float step = __fdiv_rn(__fsub_rn(top, base), 255.0f);
  if (!isfinite(step)) step = 3.40282346638528859812e+38f / 255.0f;
  while (u8_value(base, step, 255) < top) step = nextafterf(step, __int_as_float(0x7f800000));
#else
  float step = (top - base) / 255.0f;
  if (!std::isfinite(step)) step = 3.40282346638528859812e+38f / 255.0f;
  while (u8_value(base, step, 255) < top) step = std::nextafter(step, bits_to_f32(0x7f800000u));
#endif
  return step;
}

TP_HD int64_t clamp_code(int64_t x) { return x < 0 ? 0 : (x > 255 ? 255 : x); }

// The codes of one channel's bounds (lo down, hi up) for a page's base and step.
TP_HD void u8_codes(float lo, float hi, float base, float step, uint8_t* code_lo, uint8_t* code_hi) {
  int64_t a = 0, b = 255;
  if (step > 0.0f) {
#if defined(__CUDA_ARCH__)
    a = clamp_code(static_cast<int64_t>(floor(__ddiv_rn(__dsub_rn(static_cast<double>(lo), static_cast<double>(base)), static_cast<double>(step)))));
    b = clamp_code(static_cast<int64_t>(ceil(__ddiv_rn(__dsub_rn(static_cast<double>(hi), static_cast<double>(base)), static_cast<double>(step)))));
#else
    a = clamp_code(static_cast<int64_t>(std::floor((static_cast<double>(lo) - base) / step)));
    b = clamp_code(static_cast<int64_t>(std::ceil((static_cast<double>(hi) - base) / step)));
#endif
    while (a > 0 && u8_value(base, step, static_cast<uint32_t>(a)) > lo) --a;
    while (a < 255 && u8_value(base, step, static_cast<uint32_t>(a + 1)) <= lo) ++a;
    while (b < 255 && u8_value(base, step, static_cast<uint32_t>(b)) < hi) ++b;
    while (b > 0 && u8_value(base, step, static_cast<uint32_t>(b - 1)) >= hi) --b;
  } else {
    b = 0;  // every value is base
  }
  *code_lo = static_cast<uint8_t>(a);
  *code_hi = static_cast<uint8_t>(b);
}

// A stored page's bound row: element c decoded.
struct U8Load {
  const uint8_t* codes;
  float base, step;
  TP_HD float operator()(int64_t c) const { return u8_value(base, step, codes[c]); }
};

}  // namespace tp::sparse::hd
