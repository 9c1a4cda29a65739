#include "quantize.h"

#include <cmath>
#include <string>

#include "byte_model.h"

namespace tp::coding {

void quantize_masses(const uint32_t* masses, int total_log2, uint32_t* freqs) {
  // Three simple passes the compiler vectorizes: sum and max, frequencies,
  // then the first index of the max (an early-exit scan).
  uint64_t sum = 0;
  uint32_t best_mass = 0;
  for (int i = 0; i < kAlphabet; i++) {
    sum += masses[i];
    best_mass = masses[i] > best_mass ? masses[i] : best_mass;
  }
  if (sum == 0) {  // outside the contract; stay safe with a uniform table
    for (int i = 0; i < kAlphabet; i++) freqs[i] = (1u << total_log2) / kAlphabet;
    return;
  }
  // Scale small totals up so K below fits in 32 bits (sum < 2^16 -> each
  // mass < 2^16, and the shifted sum stays < 2^32).
  const int up = sum < (1u << 16) ? 16 : 0;
  sum <<= up;
  const uint64_t spread = (uint64_t{1} << total_log2) - kAlphabet;  // mass beyond the floor of 1 each
  const uint64_t k = (spread << 32) / sum;                          // < 2^32 since sum >= 2^16
  uint32_t used = 0;
  for (int i = 0; i < kAlphabet; i++) {
    const uint32_t f = 1 + static_cast<uint32_t>(((uint64_t{masses[i]} << up) * k) >> 32);
    freqs[i] = f;
    used += f;
  }
  int best = 0;
  while (masses[best] != best_mass) best++;
  freqs[best] += (1u << total_log2) - used;
}

template <typename F>
Status probabilities_to_masses(const F* probs, uint32_t* masses) {
  double sum = 0;
  for (int i = 0; i < kAlphabet; i++) {
    const double p = static_cast<double>(probs[i]);
    if (!std::isfinite(p) || p < 0) {
      return Status::invalid("probabilities[" + std::to_string(i) + "]: expected a finite number >= 0, received " +
                             std::to_string(p));
    }
    sum += p;
  }
  if (!(sum > 0) || !std::isfinite(sum)) {
    return Status::invalid("probabilities: expected a positive, finite sum over the 256 bytes, received " +
                           std::to_string(sum));
  }
  // One division per byte in a fixed order: IEEE double gives the same
  // masses everywhere for the same input floats.
  for (int i = 0; i < kAlphabet; i++) {
    masses[i] = static_cast<uint32_t>(std::floor(static_cast<double>(probs[i]) / sum * 1073741824.0));
  }
  return Status::ok();
}

template Status probabilities_to_masses<float>(const float*, uint32_t*);
template Status probabilities_to_masses<double>(const double*, uint32_t*);

}  // namespace tp::coding
