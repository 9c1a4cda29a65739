// Portable scalar f16 / bf16 <-> f32 conversions (bit exact, round to nearest
// even, NaN and subnormals preserved). SIMD paths use F16C / AVX-512 instead;
// these are the baseline and the reference the SIMD paths are tested against.
// TP_HD: the same code runs in CUDA kernels (the device KV cache quantizes
// with the CPU's arithmetic).
#pragma once
#include <cstdint>
#include <cstring>

#include "hd.h"

namespace tp {

#if defined(__CUDA_ARCH__)
TP_HD float bits_to_f32(uint32_t u) { return __uint_as_float(u); }
TP_HD uint32_t f32_to_bits(float f) { return __float_as_uint(f); }
TP_HD float round_half_even(float x) { return rintf(x); }
#else
inline float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float round_half_even(float x) { return __builtin_nearbyintf(x); }
#endif

TP_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp == 0) {
    if (mant == 0) return bits_to_f32(sign);
    // Subnormal: normalise the mantissa.
    int e = -1;
    do { mant <<= 1; ++e; } while ((mant & 0x400u) == 0);
    mant &= 0x3ffu;
    return bits_to_f32(sign | uint32_t(127 - 15 - e) << 23 | (mant << 13));
  }
  return bits_to_f32(sign | (exp + (127 - 15)) << 23 | (mant << 13));
}

TP_HD uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
  if (abs >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {                                    // subnormal or zero in f16
    const float scaled = bits_to_f32(abs) * 16777216.0f;     // * 2^24: exact
    // Round to nearest even through the float unit.
    const uint32_t m = uint32_t(round_half_even(scaled));
    return uint16_t(sign | m);
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

TP_HD float bf16_to_f32(uint16_t b) { return bits_to_f32(uint32_t(b) << 16); }

TP_HD uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);  // quiet nan
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

}  // namespace tp
