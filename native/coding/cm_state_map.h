// StateMap: context -> adaptive probability. Each slot keeps a 22-bit
// probability of a 1 and a 10-bit count; an update moves the probability
// toward the coded bit by 1/(count + 1.5), so a slot first averages what it
// sees and then, once the count reaches `limit`, tracks at a fixed rate.
// Integer only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tp::coding {

// 65536 * 2 / (2n + 3): the update rate for a slot that has seen n bits.
struct StateMapRates {
  int32_t rate[1024];
  StateMapRates() {
    for (int n = 0; n < 1024; ++n) rate[n] = 131072 / (2 * n + 3);
  }
};

extern const StateMapRates kStateMapRates;  // cm_bit_history.cpp

class StateMap {
 public:
  StateMap() = default;
  // `size` slots, all at probability 1/2 (count 0).
  void init(size_t size, int limit) {
    slots_.assign(size, (1u << 31));
    limit_ = limit;
  }
  void set_probability(size_t i, uint32_t p22) { slots_[i] = (p22 << 10); }

  // 12-bit probability of a 1 in slot i; remembers i for update().
  int p(size_t i) {
    last_ = i;
    return static_cast<int>(slots_[i] >> 20);
  }

  void update(int bit) {
    uint32_t& s = slots_[last_];
    const int n = static_cast<int>(s & 1023);
    const int64_t p22 = s >> 10;
    const int64_t target = bit ? (1 << 22) - 1 : 0;
    const int64_t next = p22 + (((target - p22) * kStateMapRates.rate[n]) >> 16);
    s = (static_cast<uint32_t>(next) << 10) | static_cast<uint32_t>(n < limit_ ? n + 1 : n);
  }

 private:
  std::vector<uint32_t> slots_;
  size_t last_ = 0;
  int limit_ = 1023;
};

}  // namespace tp::coding

namespace tp::coding {

// N StateMaps of 256 slots each (one per bit-history context), in one
// array so that the per-bit predict and update loops stay tight. Same
// arithmetic as StateMap with limit 1023.
template <int N>
class StateMapBank {
 public:
  // Every map starts at init[state] (22-bit probabilities).
  void init(const uint32_t* init) {
    for (int m = 0; m < N; ++m) {
      for (int s = 0; s < 256; ++s) slots_[m * 256 + s] = init[s] << 10;
    }
  }

  // 12-bit probability of a 1 for map m in bit-history state s.
  int p(int m, int s) {
    index_[m] = m * 256 + s;
    return static_cast<int>(slots_[index_[m]] >> 20);
  }

  void update(int bit) {
    const int64_t target = bit ? (1 << 22) - 1 : 0;
    for (int m = 0; m < N; ++m) {
      uint32_t& s = slots_[index_[m]];
      const uint32_t n = s & 1023;
      const int64_t p22 = s >> 10;
      const int64_t next = p22 + (((target - p22) * kStateMapRates.rate[n]) >> 16);
      s = (static_cast<uint32_t>(next) << 10) | (n + (n < 1023));
    }
  }

 private:
  uint32_t slots_[N * 256];
  int index_[N] = {};
};

}  // namespace tp::coding
