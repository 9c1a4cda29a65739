// APM (adaptive probability map, also called SSE): refines a probability
// given a small context. For each context it keeps 33 probabilities at
// evenly spaced log-odds knots; the output interpolates the two knots around
// stretch(p), and the update moves the nearer knot toward the coded bit.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cm_hash_table.h"  // cm_prefetch
#include "cm_logistic.h"

namespace tp::coding {

class Apm {
 public:
  // `contexts` contexts, each starting as the identity map; `rate` is the
  // update shift (higher = slower).
  void init(size_t contexts, int rate) {
    rate_ = rate;
    uint16_t row[33];
    for (int j = 0; j < 33; ++j) row[j] = static_cast<uint16_t>(cm_squash((j - 16) * 128) * 16);
    knots_.resize(contexts * 33);
    for (size_t c = 0; c < contexts; ++c) std::copy(row, row + 33, knots_.begin() + static_cast<std::ptrdiff_t>(c * 33));
  }

  // Refined 12-bit probability for input probability p (12-bit) in context cx.
  int refine(int p, size_t cx) {
    const int s = cm_stretch(p) + 2048;  // [1, 4095]
    const int w = s & 127;
    const size_t base = cx * 33 + static_cast<size_t>(s >> 7);
    index_ = base + (w >> 6);
    return static_cast<int>((knots_[base] * (128 - w) + knots_[base + 1] * w) >> 11);
  }

  // Hints the cache about context cx (both knot lines of its row).
  void prefetch(size_t cx) const {
    const uint16_t* row = &knots_[cx * 33];
    cm_prefetch(row);
    cm_prefetch(row + 32);
  }

  void update(int bit) {
    const int target = bit ? 65535 : 0;
    int v = knots_[index_];
    v += (target - v) >> rate_;
    knots_[index_] = static_cast<uint16_t>(v);
  }

 private:
  std::vector<uint16_t> knots_;
  size_t index_ = 0;
  int rate_ = 7;
};

}  // namespace tp::coding
