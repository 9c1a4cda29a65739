// The encoder side of window_coder.h (the decoder is header-only).
#include "window_coder.h"

namespace tp::coding {

using window_math::renormalize;
using window_math::share_start;
using window_math::start;

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

}  // namespace tp::coding
