// Masses -> integer frequencies for the coders, deterministically.
//
// freqs[i] = 1 + ((m[i] * K) >> 32) with K = floor((T - 256) * 2^32 / M),
// M = sum of masses (masses are first scaled up when M < 2^16 so K fits in
// 32 bits). What rounding leaves over goes to the first most massive byte.
// Every byte keeps a frequency >= 1 and the frequencies sum to exactly
// T = 2^total_log2. Integer arithmetic only: the same on every machine.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::coding {

constexpr int kMaxTotalLog2 = 16;
constexpr int kMinTotalLog2 = 12;

// masses[256] with sum in [1, 2^31) -> freqs[256] summing to 2^total_log2.
void quantize_masses(const uint32_t* masses, int total_log2, uint32_t* freqs);

// Probabilities from a user model (any finite values >= 0 with a positive,
// finite sum; they need not sum to 1) -> masses summing to about 2^30.
// Returns InvalidArgument naming the first bad entry.
template <typename F>
Status probabilities_to_masses(const F* probs, uint32_t* masses);

}  // namespace tp::coding
