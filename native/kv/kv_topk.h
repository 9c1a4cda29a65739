// Exact top-k of float scores by radix selection (three histogram passes
// over order-preserving 32-bit keys): O(n) whatever the input order, no
// index permutation, no comparator calls. The order is the one every
// selector here uses: higher score first, the earlier position among equal
// scores (-0 and +0 are equal). NaN must be rejected by the caller.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace tp::kv {

// Unsigned key with key(a) < key(b) exactly when a < b (-0 maps like +0).
inline uint32_t order_key(float x) {
  if (x == 0.0f) x = 0.0f;
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The k best of n scores are: every score whose key is above `threshold`,
// then the first `ties` (in position order) whose key equals it.
struct TopK {
  uint32_t threshold = 0xffffffffu;
  int64_t ties = 0;
  bool keeps(uint32_t key, int64_t& ties_left) const {
    if (key > threshold) return true;
    if (key == threshold && ties_left > 0) {
      --ties_left;
      return true;
    }
    return false;
  }
};

// 0 <= k <= n. keys: scratch, resized to n.
TopK top_k(const float* scores, int64_t n, int64_t k, std::vector<uint32_t>& keys);

}  // namespace tp::kv
