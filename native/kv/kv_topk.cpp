// Radix top-k of kv_topk.h: three histogram passes (11, 11, 10 bits) over order keys.
#include "kv_topk.h"

#include <algorithm>

namespace tp::kv {

TopK top_k(const float* scores, int64_t n, int64_t k, std::vector<uint32_t>& keys) {
  TopK out;
  keys.resize(static_cast<size_t>(n < 0 ? 0 : n));
  for (int64_t i = 0; i < n; ++i) keys[static_cast<size_t>(i)] = order_key(scores[i]);
  if (k <= 0 || n <= 0) return out;  // threshold above every key (+inf maps below it), no ties
  // Digits of 11, 11 and 10 bits from the top: find the k-th largest key,
  // narrowing to the keys that share the digits found so far.
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kBins[3] = {2048, 2048, 1024};
  uint32_t prefix = 0, mask = 0;
  int64_t remaining = k;  // rank of the wanted key among the keys matching prefix
  std::vector<int64_t> count(2048);
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = kShift[pass];
    const uint32_t bins = kBins[pass];
    std::fill(count.begin(), count.end(), 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t key = keys[static_cast<size_t>(i)];
      if ((key & mask) == prefix) ++count[(key >> shift) & (bins - 1)];
    }
    uint32_t digit = bins - 1;
    for (;; --digit) {
      if (count[digit] >= remaining || digit == 0) break;
      remaining -= count[digit];
    }
    prefix |= digit << shift;
    mask |= (bins - 1) << shift;
  }
  out.threshold = prefix;
  out.ties = remaining;
  return out;
}

}  // namespace tp::kv
