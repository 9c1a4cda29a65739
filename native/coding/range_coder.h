// A streaming multi-symbol range coder (the carry-propagating design LZMA
// uses: 64-bit low, 32-bit range, byte output with a cached byte for
// carries). Frequencies are integers with total 2^total_log2 <= 2^16.
// Used for plain whole-document coding, where the container stores the
// length, so no end symbol is needed.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tp::coding {

class RangeEncoder {
 public:
  explicit RangeEncoder(std::vector<uint8_t>* out) : out_(out) {}
  void encode(uint32_t cum, uint32_t freq, int total_log2) {
    const uint32_t r = range_ >> total_log2;
    low_ += uint64_t{r} * cum;
    range_ = r * freq;
    while (range_ < kTop) {
      range_ <<= 8;
      shift_low();
    }
  }
  void finish() {
    for (int i = 0; i < 5; i++) shift_low();
  }

 private:
  static constexpr uint32_t kTop = 1u << 24;
  void shift_low() {
    if (low_ < 0xFF000000ull || low_ > 0xFFFFFFFFull) {
      const uint8_t carry = static_cast<uint8_t>(low_ >> 32);
      uint8_t byte = cache_;
      do {
        out_->push_back(static_cast<uint8_t>(byte + carry));
        byte = 0xFF;
      } while (--pending_ != 0);
      cache_ = static_cast<uint8_t>(low_ >> 24);
    }
    pending_++;
    low_ = (low_ & 0x00FFFFFFull) << 8;
  }
  std::vector<uint8_t>* out_;
  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
  uint8_t cache_ = 0;
  uint64_t pending_ = 1;
};

class RangeDecoder {
 public:
  RangeDecoder(const uint8_t* in, size_t n) : in_(in), n_(n) {
    bad_start_ = next() != 0;  // the encoder's first byte is always 0
    for (int i = 0; i < 4; i++) code_ = (code_ << 8) | next();
  }
  // The cumulative frequency the next symbol covers, or >= 2^total_log2 for
  // a stream no encoder wrote (the caller reports it as corrupt).
  uint32_t target(int total_log2) {
    r_ = range_ >> total_log2;
    return bad_start_ ? 0xFFFFFFFFu : code_ / r_;  // 32-bit division: the decoder's main cost
  }
  void consume(uint32_t cum, uint32_t freq) {
    code_ -= r_ * cum;
    range_ = r_ * freq;
    while (range_ < kTop) {
      range_ <<= 8;
      code_ = (code_ << 8) | next();
    }
  }
  // Bytes read past the end of the input: a valid stream needs none.
  size_t overrun() const { return overrun_; }

 private:
  static constexpr uint32_t kTop = 1u << 24;
  uint8_t next() {
    if (pos_ < n_) return in_[pos_++];
    overrun_++;
    return 0;
  }
  const uint8_t* in_;
  size_t n_, pos_ = 0, overrun_ = 0;
  uint32_t code_ = 0;
  uint32_t range_ = 0xFFFFFFFFu, r_ = 1;
  bool bad_start_ = false;
};

}  // namespace tp::coding
