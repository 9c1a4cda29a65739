#include "window_coder.h"

namespace tp::coding {

namespace {

constexpr int kPrecisionBits = 47;                 // a fresh window with b > 47 starts at w = 2^47
constexpr uint64_t kNormalized = uint64_t{1} << 40;  // renormalize while w < 2^40 and s > 0

void start(uint64_t* w, int* s, int window_bits) {
  if (window_bits <= kPrecisionBits) {
    *w = uint64_t{1} << window_bits;
    *s = 0;
  } else {
    *w = uint64_t{1} << kPrecisionBits;
    *s = window_bits - kPrecisionBits;
  }
}

// Finer units keep the split precise; W = w * 2^s does not change.
void renormalize(uint64_t* w, int* s) {
  while (*s > 0 && *w < kNormalized) {
    const int k = *s < 8 ? *s : 8;
    *w <<= k;
    *s -= k;
  }
}

// First unit of the share of cumulative frequency c: 1 + floor((w-1) c / T).
inline uint64_t share_start(uint64_t w, uint32_t c, int total_log2) {
  return 1 + (((w - 1) * c) >> total_log2);  // (w-1) < 2^48, c <= 2^16: no overflow
}

}  // namespace

void WindowEncoder::reset(int window_bits) {
  lo_.clear();
  start(&w_, &s_, window_bits);
}

bool WindowEncoder::try_encode(uint32_t cum, uint32_t freq, int total_log2) {
  const uint64_t first = share_start(w_, cum, total_log2);
  const uint64_t end = share_start(w_, cum + freq, total_log2);
  if (end == first) return false;
  lo_.add_shifted(first, s_);
  w_ = end - first;
  renormalize(&w_, &s_);
  return true;
}

void WindowDecoder::reset(const BigWindow& value, int window_bits) {
  d_ = value;
  start(&w_, &s_, window_bits);
}

uint32_t WindowDecoder::target(int total_log2) const {
  // unit u >= 1 lies in byte i's share iff floor((w-1) C_i / T) <= u - 1,
  // i.e. C_i <= floor((u T - 1) / (w - 1)).
  const uint64_t u = unit();
  return static_cast<uint32_t>(((u << total_log2) - 1) / (w_ - 1));
}

void WindowDecoder::consume(uint32_t cum, uint32_t freq, int total_log2) {
  const uint64_t first = share_start(w_, cum, total_log2);
  const uint64_t end = share_start(w_, cum + freq, total_log2);
  d_.sub_shifted(first, s_);
  w_ = end - first;
  renormalize(&w_, &s_);
}

}  // namespace tp::coding
