// Output sizes of the range-coded decoders, bounded by their input.
//
// The decoded length of a static or raw stream is not in the stream: it
// comes from a header (a .tpz container, a params object), and a hostile
// header can claim any length. A payload of in_len bytes can only hold so
// many symbols, so a claim above that bound is refused before anything is
// allocated (or decoded).
//
// The bound: every one of the 256 bytes keeps a frequency >= 1 out of
// T = 2^total_log2, so a symbol's frequency is at most T - 255 and it costs
// at least log2(T / (T - 255)) bits (1/178 bit at T = 2^16). The range coder
// (range_coder.h) keeps its range >= 2^24 and the decoder has read 4 bytes
// before the first symbol, so a stream that decodes without reading past its
// end carries at most 8 * in_len bits of information. Hence at most
//   ceil(8 / log2(T / (T - 255))) symbols per payload byte
// (87 at T = 2^12 ... 1423 at T = 2^16). The cm coder has its own bound
// (cm_max_original_length in cm_codec.h); Equal-Info windows bound theirs
// by max_window_bytes (equal_info.h).
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "../core/status.h"

namespace tp::coding {

// Most symbols one payload byte can hold at frequency total 2^total_log2
// (12 <= total_log2 <= 16; computed once per call, exact for these inputs).
inline uint64_t range_symbols_per_byte(int total_log2) {
  const double total = std::ldexp(1.0, total_log2);
  return static_cast<uint64_t>(std::ceil(8.0 / std::log2(total / (total - 255.0))));
}

// The largest decoded length a range-coded payload of in_len bytes can claim.
inline uint64_t range_max_decoded_length(size_t in_len, int total_log2) {
  return (static_cast<uint64_t>(in_len) + 1) * range_symbols_per_byte(total_log2);
}

// InvalidArgument naming `what` when n is more than in_len bytes can hold.
inline Status check_decoded_length(const char* what, uint64_t n, size_t in_len, int total_log2) {
  const uint64_t most = range_max_decoded_length(in_len, total_log2);
  if (n <= most) return Status::ok();
  return Status::invalid(std::string(what) + ": expected at most " + std::to_string(most) + " bytes (the most a " +
                         std::to_string(in_len) + "-byte payload can hold), received " + std::to_string(n));
}

}  // namespace tp::coding
