// Fixed-width unsigned integers of up to kMaxWindowBits bits, as little-endian
// 32-bit limbs: the exact value of an Equal-Info window (windows are up to
// 2048 bits, far beyond any machine word). Only the three operations the
// window coder needs, each touching a few limbs plus a carry or borrow.
#pragma once
#include <cstdint>

#include "../core/hd.h"

namespace tp::coding {

constexpr int kMaxWindowBits = 2048;
constexpr int kMinWindowBits = 16;

struct BigWindow {
  static constexpr int kLimbs = kMaxWindowBits / 32 + 2;  // slack for a 48-bit add at the top
  uint32_t limb[kLimbs];

  TP_HD void clear() {
    for (int i = 0; i < kLimbs; i++) limb[i] = 0;
  }

  // this += value << shift (value < 2^48). The caller guarantees no overflow
  // past the window's width.
  TP_HD void add_shifted(uint64_t value, int shift) {
    int i = shift >> 5;
    const int bit = shift & 31;
    // value << bit spans at most 80 bits: three limbs.
    const unsigned __int128 v = static_cast<unsigned __int128>(value) << bit;
    uint64_t carry = 0;
    for (int k = 0; k < 3 && i < kLimbs; k++, i++) {
      const uint64_t part = static_cast<uint64_t>(v >> (32 * k)) & 0xffffffffu;
      const uint64_t t = uint64_t{limb[i]} + part + carry;
      limb[i] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
    for (; carry != 0 && i < kLimbs; i++) {
      const uint64_t t = uint64_t{limb[i]} + carry;
      limb[i] = static_cast<uint32_t>(t);
      carry = t >> 32;
    }
  }

  // this -= value << shift; the caller guarantees the result is >= 0.
  TP_HD void sub_shifted(uint64_t value, int shift) {
    int i = shift >> 5;
    const int bit = shift & 31;
    const unsigned __int128 v = static_cast<unsigned __int128>(value) << bit;
    int64_t borrow = 0;
    for (int k = 0; k < 3 && i < kLimbs; k++, i++) {
      const int64_t part = static_cast<int64_t>(static_cast<uint64_t>(v >> (32 * k)) & 0xffffffffu);
      int64_t t = static_cast<int64_t>(limb[i]) - part - borrow;
      borrow = t < 0 ? 1 : 0;
      limb[i] = static_cast<uint32_t>(t + (borrow << 32));
    }
    for (; borrow != 0 && i < kLimbs; i++) {
      int64_t t = static_cast<int64_t>(limb[i]) - borrow;
      borrow = t < 0 ? 1 : 0;
      limb[i] = static_cast<uint32_t>(t + (borrow << 32));
    }
  }

  // Bits [shift, shift + 64) as a number (higher bits beyond the array read 0).
  TP_HD uint64_t bits_from(int shift) const {
    int i = shift >> 5;
    const int bit = shift & 31;
    unsigned __int128 v = 0;
    for (int k = 0; k < 3 && i + k < kLimbs; k++) v |= static_cast<unsigned __int128>(limb[i + k]) << (32 * k);
    return static_cast<uint64_t>(v >> bit);
  }
};

}  // namespace tp::coding
