// Binary arithmetic coder, 32-bit and carry-less (the lpaq/paq scheme):
// [x1, x2] is the current interval; a bit with probability p1 (of a 1, 12
// bits) splits it, and leading bytes that x1 and x2 share are shifted out.
// The encoder's flush writes all four bytes of x1, so the decoder consumes
// exactly the bytes the encoder wrote; reading past the end marks the stream
// as truncated or corrupt.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tp::coding {

// The split point for probability p1 in [1, 4095] of a 1: the 1 takes
// [x1, mid], the 0 takes (mid, x2]. Both parts are non-empty because
// x2 > x1 whenever a bit is coded (shared leading bytes are shifted out).
inline uint32_t arith_split(uint32_t x1, uint32_t x2, uint32_t p1) {
  const uint32_t range = x2 - x1;
  return x1 + (range >> 12) * p1 + (((range & 0xfff) * p1) >> 12);
}

class ArithEncoder {
 public:
  explicit ArithEncoder(std::vector<uint8_t>* out) : out_(out) {}

  void encode(int bit, uint32_t p1) {
    const uint32_t mid = arith_split(x1_, x2_, p1);
    if (bit) x2_ = mid; else x1_ = mid + 1;
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      out_->push_back(static_cast<uint8_t>(x2_ >> 24));
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
    }
  }

  void flush() {
    for (int i = 0; i < 4; ++i) {
      out_->push_back(static_cast<uint8_t>(x1_ >> 24));
      x1_ <<= 8;
    }
  }

 private:
  std::vector<uint8_t>* out_;
  uint32_t x1_ = 0, x2_ = 0xffffffffu;
};

class ArithDecoder {
 public:
  ArithDecoder(const uint8_t* in, size_t len) : in_(in), len_(len) {
    for (int i = 0; i < 4; ++i) x_ = (x_ << 8) | next_byte();
  }

  int decode(uint32_t p1) {
    const uint32_t mid = arith_split(x1_, x2_, p1);
    const int bit = x_ <= mid;
    if (bit) x2_ = mid; else x1_ = mid + 1;
    while (((x1_ ^ x2_) & 0xff000000u) == 0) {
      x1_ <<= 8;
      x2_ = (x2_ << 8) | 255;
      x_ = (x_ << 8) | next_byte();
    }
    return bit;
  }

  // True when decoding needed bytes past the end of the input.
  bool overran() const { return overran_; }
  // Bytes consumed so far (at most len).
  size_t consumed() const { return pos_; }

 private:
  uint32_t next_byte() {
    if (pos_ < len_) return in_[pos_++];
    overran_ = true;
    return 0;
  }

  const uint8_t* in_;
  size_t len_;
  size_t pos_ = 0;
  bool overran_ = false;
  uint32_t x1_ = 0, x2_ = 0xffffffffu, x_ = 0;
};

}  // namespace tp::coding
