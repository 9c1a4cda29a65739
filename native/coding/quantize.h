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

#include "../core/status.h"

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

// Decoder side: the byte whose range holds target (target < 2^total_log2).
int find_byte(const uint32_t* masses, uint32_t target, int total_log2, SymbolRange* range);

// Probabilities from a user model (any finite values >= 0 with a positive,
// finite sum; they need not sum to 1) -> masses summing to about 2^30.
// Returns InvalidArgument naming the first bad entry.
template <typename F>
Status probabilities_to_masses(const F* probs, uint32_t* masses);

}  // namespace tp::coding
