// Masses -> integer frequencies for the coders, deterministically.
//
// The one rule, on cumulative masses: with P_j = m_0 + ... + m_{j-1} and
// M = P_256, byte j covers [C_j, C_{j+1}) of T = 2^total_log2 where
//   C_j = j + floor(P_j * (T - 256) / M).
// So every byte keeps a frequency >= 1, C_256 = T exactly, and the coder
// needs only two prefix sums per byte when encoding (no pass that builds
// 256 frequencies). Integer arithmetic only: the same on every machine.
#pragma once
#include <cstdint>

#include "../core/hd.h"
#include "../core/status.h"
#include "byte_model.h"

namespace tp::coding {

constexpr int kMaxTotalLog2 = 16;
constexpr int kMinTotalLog2 = 12;

// The interval [cum, cum + freq) of one byte.
struct SymbolRange {
  uint32_t cum;
  uint32_t freq;
};

// Masses are < 2^31 with a sum in [1, 2^32); a zero sum reads as uniform.
// Encoder side: the range of byte `byte`.
SymbolRange range_of(const uint32_t* masses, int byte, int total_log2);

// The integer helpers of the rule (TP_HD: the CUDA decoder uses them too).
namespace quantize_math {

constexpr int kBlock = 16;  // masses are summed in blocks the compiler vectorizes

// Masses sum to less than 2^32 (byte_model.h: below 2^31), so 32-bit lanes
// cannot overflow and the compiler sums four or eight at a time.
TP_HD uint64_t sum_range(const uint32_t* m, int begin, int end) {
  uint32_t s = 0;
  for (int i = begin; i < end; i++) s += m[i];
  return s;
}

// floor(x / y) for x < 2^53, y < 2^53 through a double division (much faster
// than a 64-bit integer one), corrected to the exact integer result: the
// estimate is off by at most one, so the answer never depends on rounding
// (IEEE division is correctly rounded on the CPU and the GPU alike).
TP_HD uint64_t div_floor(uint64_t x, uint64_t y) {
  uint64_t q = static_cast<uint64_t>(static_cast<double>(x) / static_cast<double>(y));
  if (q * y > x) q--;
  else if ((q + 1) * y <= x) q++;
  return q;
}

// C_j = j + floor(P_j (T - 256) / M); P_j (T - 256) < 2^32 * 2^16 fits in 64 bits.
TP_HD uint32_t cum_at(uint64_t prefix, int j, uint64_t total, uint64_t spread) {
  return static_cast<uint32_t>(j + div_floor(prefix * spread, total));
}

// C_j <= target  <=>  floor(P_j s / M) <= target - j  <=>  P_j s < (target - j + 1) M.
TP_HD bool cum_at_most(uint64_t prefix, int j, uint64_t total, uint64_t spread, uint32_t target) {
  return static_cast<int64_t>(target) - j + 1 > 0 &&
         prefix * spread < static_cast<uint64_t>(static_cast<int64_t>(target) - j + 1) * total;
}

}  // namespace quantize_math

// Decoder side: the byte whose range holds target (target < 2^total_log2).
TP_HD int find_byte(const uint32_t* masses, uint32_t target, int total_log2, SymbolRange* range) {
  using namespace quantize_math;
  const uint64_t spread = (uint64_t{1} << total_log2) - kAlphabet;
  uint64_t block_sum[kAlphabet / kBlock];
  uint64_t total = 0;
  for (int b = 0; b < kAlphabet / kBlock; b++) {
    block_sum[b] = sum_range(masses, b * kBlock, (b + 1) * kBlock);
    total += block_sum[b];
  }
  if (total == 0) {
    const uint32_t f = (1u << total_log2) / kAlphabet;
    const int byte = static_cast<int>(target / f);
    *range = {static_cast<uint32_t>(byte) * f, f};
    return byte;
  }
  // The last block whose first C_j <= target, then the last byte in it.
  uint64_t prefix = 0;
  int b = 0;
  while (b + 1 < kAlphabet / kBlock && cum_at_most(prefix + block_sum[b], (b + 1) * kBlock, total, spread, target)) {
    prefix += block_sum[b++];
  }
  int j = b * kBlock;
  while (j + 1 < kAlphabet && cum_at_most(prefix + masses[j], j + 1, total, spread, target)) prefix += masses[j++];
  const uint32_t lo = cum_at(prefix, j, total, spread);
  const uint32_t hi = cum_at(prefix + masses[j], j + 1, total, spread);
  *range = {lo, hi - lo};
  return j;
}

// Probabilities from a user model (any finite values >= 0 with a positive,
// finite sum; they need not sum to 1) -> masses summing to about 2^30.
// Returns InvalidArgument naming the first bad entry.
template <typename F>
Status probabilities_to_masses(const F* probs, uint32_t* masses);

}  // namespace tp::coding
