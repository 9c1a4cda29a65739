// Packed bit streams, most significant bit first: Equal-Info windows are
// written back to back as b-bit values, and tokens are read from the same
// stream t bits at a time (so tokens cross window boundaries when b is not a
// multiple of t; the last token is zero-padded).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "big_window.h"

namespace tp::coding {

class BitWriter {
 public:
  // Appends the low `bits` bits of value, most significant first.
  void put_window(const BigWindow& value, int bits) {
    for (int i = bits - 1; i >= 0; i--) put_bit(value.bit(i));
  }
  void put_bits(uint32_t value, int bits) {
    for (int i = bits - 1; i >= 0; i--) put_bit((value >> i) & 1u);
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
inline bool get_bit(const uint8_t* bytes, size_t nbytes, size_t pos) {
  const size_t i = pos >> 3;
  return i < nbytes && ((bytes[i] >> (7 - (pos & 7))) & 1u);
}

// The b-bit window starting at bit `offset`.
inline void get_window(const uint8_t* bytes, size_t nbytes, size_t offset, int bits, BigWindow* out) {
  out->clear();
  for (int i = 0; i < bits; i++) {
    if (get_bit(bytes, nbytes, offset + i)) out->set_bit(bits - 1 - i);
  }
}

}  // namespace tp::coding
