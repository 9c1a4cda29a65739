#include "quantize.h"

#include <cmath>
#include <string>

#include "byte_model.h"

namespace tp::coding {

using quantize_math::cum_at;
using quantize_math::sum_range;

SymbolRange range_of(const uint32_t* masses, int byte, int total_log2) {
  const uint64_t spread = (uint64_t{1} << total_log2) - kAlphabet;
  const uint64_t before = sum_range(masses, 0, byte);
  const uint64_t total = before + sum_range(masses, byte, kAlphabet);
  if (total == 0) {
    const uint32_t f = (1u << total_log2) / kAlphabet;
    return {static_cast<uint32_t>(byte) * f, f};
  }
  const uint32_t lo = cum_at(before, byte, total, spread);
  const uint32_t hi = cum_at(before + masses[byte], byte + 1, total, spread);
  return {lo, hi - lo};
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
