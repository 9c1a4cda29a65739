// Match model: finds the most recent earlier occurrence of the last
// kMinLength bytes (through a hash index of positions) and predicts that the
// byte which followed it comes next. Its prediction is the bit of that
// expected byte, with a confidence learned per (match length, bit) by a
// StateMap. Long repeats are where context mixing gains most over a fixed
// order, so this input dominates on repetitive text.
//
// History is the caller's buffer: the input when encoding, the output
// decoded so far when decoding (identical up to the current position).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cm_logistic.h"
#include "cm_state_map.h"

namespace tp::coding {

class MatchModel {
 public:
  static constexpr int kMinLength = 12;   // bytes hashed to find a candidate
  static constexpr int kMaxVerify = 64;  // bytes compared when taking a candidate
  static constexpr int kMaxLength = 65535;

  // 2^log2_entries positions in the index. Throws std::bad_alloc.
  void init(int log2_entries) {
    index_.assign(size_t{1} << log2_entries, 0);
    mask_ = (size_t{1} << log2_entries) - 1;
    map_.init(64 * 2, 1023);
  }

  // Called after byte buf[pos - 1] was coded (pos >= 1).
  void update_byte(const uint8_t* buf, size_t pos) {
    const uint8_t c = buf[pos - 1];
    if (length_ > 0 && buf[ptr_] == c) {
      if (length_ < kMaxLength) ++length_;
      ++ptr_;
    } else {
      length_ = 0;
    }
    if (pos < static_cast<size_t>(kMinLength)) return;
    uint64_t h = 0;
    for (int i = 1; i <= kMinLength; ++i) h = (h + buf[pos - i] + 1) * 0x2f0f3b5c9d1e4a27ull;
    const size_t slot = static_cast<size_t>(h >> 40) & mask_;
    if (length_ == 0) {
      const size_t candidate = index_[slot];
      if (candidate > 0) {
        int n = 0;
        while (n < kMaxVerify && static_cast<size_t>(n) < candidate && buf[candidate - 1 - n] == buf[pos - 1 - n]) ++n;
        if (n >= kMinLength) {
          length_ = n;
          ptr_ = candidate;
        }
      }
    }
    index_[slot] = static_cast<uint32_t>(pos);
    expected_ = length_ > 0 ? buf[ptr_] : 0;
  }

  int length() const { return length_; }
  // Length bucket in [0, 15] for mixer selection.
  int length_bucket() const {
    if (length_ == 0) return 0;
    if (length_ < 16) return length_ >> 2 | 1;  // 1..3
    return length_ < 32 ? 4 : length_ < 64 ? 5 : length_ < 128 ? 6 : 7;
  }

  // Stretched prediction for the next bit, given the partial byte c0
  // (leading 1, then the bits so far) and the number of bits so far.
  int predict(int c0, int bit_pos) {
    active_ = false;
    if (length_ == 0) return 0;
    if (((expected_ | 256) >> (8 - bit_pos)) != c0) {  // this byte diverged
      length_ = 0;
      return 0;
    }
    expected_bit_ = (expected_ >> (7 - bit_pos)) & 1;
    const int q = length_ < 32 ? length_ : 32 + ((length_ - 32) >> 4 < 31 ? (length_ - 32) >> 4 : 31);
    active_ = true;
    return cm_stretch(map_.p(static_cast<size_t>(q) * 2 + expected_bit_));
  }

  int expected_bit() const { return expected_bit_; }
  bool active() const { return active_; }

  void update_bit(int bit) {
    if (active_) map_.update(bit);
  }

 private:
  std::vector<uint32_t> index_;
  size_t mask_ = 0;
  StateMap map_;
  size_t ptr_ = 0;
  int length_ = 0;
  int expected_ = 0, expected_bit_ = 0;
  bool active_ = false;
};

}  // namespace tp::coding
