// Packed bit streams, most significant bit first: Equal-Info windows are
// written back to back as b-bit values, and tokens are read from the same
// stream t bits at a time (so tokens cross window boundaries when b is not a
// multiple of t; the last token is zero-padded).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../core/hd.h"
#include "big_window.h"

namespace tp::coding {

class BitWriter {
 public:
  // Appends the low `bits` bits of value, most significant first, up to 32
  // at a time.
  void put_window(const BigWindow& value, int bits) {
    for (int i = bits; i > 0;) {
      const int k = i < 32 ? i : 32;
      put_bits(static_cast<uint32_t>(value.bits_from(i - k)), k);
      i -= k;
    }
  }
  // The low `bits` (<= 32) bits of value, most significant first, a byte at a time.
  void put_bits(uint32_t value, int bits) {
    while (bits > 0) {
      const int used = static_cast<int>(nbits_ & 7);
      if (used == 0) bytes_.push_back(0);
      const int take = bits < 8 - used ? bits : 8 - used;
      const uint32_t chunk = (value >> (bits - take)) & ((1u << take) - 1);
      bytes_.back() |= static_cast<uint8_t>(chunk << (8 - used - take));
      nbits_ += static_cast<size_t>(take);
      bits -= take;
    }
  }
  void put_bit(bool b) {
    if ((nbits_ & 7) == 0) bytes_.push_back(0);
    if (b) bytes_.back() |= static_cast<uint8_t>(0x80u >> (nbits_ & 7));
    nbits_++;
  }
  size_t bit_count() const { return nbits_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
  size_t nbits_ = 0;
};

// Reads bit `pos` of a packed stream (bits past the end read as 0).
TP_HD bool get_bit(const uint8_t* bytes, size_t nbytes, size_t pos) {
  const size_t i = pos >> 3;
  return i < nbytes && ((bytes[i] >> (7 - (pos & 7))) & 1u);
}

// The k <= 32 bits starting at bit `pos`, most significant first (bits past
// the end read as 0).
TP_HD uint32_t get_bits(const uint8_t* bytes, size_t nbytes, size_t pos, int k) {
  uint64_t v = 0;
  const size_t first = pos >> 3;
  for (size_t i = 0; i < 5; i++) v = (v << 8) | (first + i < nbytes ? bytes[first + i] : 0);
  const int drop = 40 - static_cast<int>(pos & 7) - k;
  return static_cast<uint32_t>((v >> drop) & (k == 32 ? 0xFFFFFFFFull : ((uint64_t{1} << k) - 1)));
}

// The b-bit window starting at bit `offset`, one 32-bit limb at a time
// (limb L holds the value's bits [32 L, 32 L + 32)).
TP_HD void get_window(const uint8_t* bytes, size_t nbytes, size_t offset, int bits, BigWindow* out) {
  out->clear();
  for (int low = 0, limb = 0; low < bits; low += 32, limb++) {
    const int k = bits - low < 32 ? bits - low : 32;
    out->limb[limb] = get_bits(bytes, nbytes, offset + static_cast<size_t>(bits - low - k), k);
  }
}

}  // namespace tp::coding
