#include "quantize.h"

#include <cmath>
#include <string>

#include "byte_model.h"

namespace tp::coding {

namespace {

constexpr int kBlock = 16;  // masses are summed in blocks the compiler vectorizes

// Masses sum to less than 2^32 (byte_model.h: below 2^31), so 32-bit lanes
// cannot overflow and the compiler sums four or eight at a time.
uint64_t sum_range(const uint32_t* m, int begin, int end) {
  uint32_t s = 0;
  for (int i = begin; i < end; i++) s += m[i];
  return s;
}

// floor(x / y) for x < 2^53, y < 2^53 through a double division (much faster
// than a 64-bit integer one), corrected to the exact integer result: the
// estimate is off by at most one, so the answer never depends on rounding.
inline uint64_t div_floor(uint64_t x, uint64_t y) {
  uint64_t q = static_cast<uint64_t>(static_cast<double>(x) / static_cast<double>(y));
  if (q * y > x) q--;
  else if ((q + 1) * y <= x) q++;
  return q;
}

// C_j = j + floor(P_j (T - 256) / M); P_j (T - 256) < 2^32 * 2^16 fits in 64 bits.
inline uint32_t cum_at(uint64_t prefix, int j, uint64_t total, uint64_t spread) {
  return static_cast<uint32_t>(j + div_floor(prefix * spread, total));
}

// C_j <= target  <=>  floor(P_j s / M) <= target - j  <=>  P_j s < (target - j + 1) M.
inline bool cum_at_most(uint64_t prefix, int j, uint64_t total, uint64_t spread, uint32_t target) {
  return static_cast<int64_t>(target) - j + 1 > 0 &&
         prefix * spread < static_cast<uint64_t>(static_cast<int64_t>(target) - j + 1) * total;
}

}  // namespace

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

int find_byte(const uint32_t* masses, uint32_t target, int total_log2, SymbolRange* range) {
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
