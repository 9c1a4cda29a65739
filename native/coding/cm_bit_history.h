// Bit-history states: one byte summarises what a context has seen, as a
// pair of bounded counts (n0 zeros, n1 ones), 4 bits each. When one count
// grows the other is discounted (halved once above 2), so the state favours
// recent behaviour while still telling deterministic contexts (n0 == 0 or
// n1 == 0) from mixed ones. The state's meaning as a probability is learned
// per model by a StateMap (indirect modelling, as in zpaq's ICM).
#pragma once
#include <cstdint>

namespace tp::coding {

struct BitHistory {
  uint8_t next[256][2];  // next[state][bit]
  BitHistory();
};

extern const BitHistory kBitHistory;  // built during static initialisation

inline int history_n0(uint8_t s) { return s & 15; }
inline int history_n1(uint8_t s) { return s >> 4; }
// How much a context has been used: the replacement priority in hash tables.
inline int history_total(uint8_t s) { return (s & 15) + (s >> 4); }

}  // namespace tp::coding
