#include "cm_bit_history.h"

#include "cm_state_map.h"

namespace tp::coding {
namespace {

// The opposite count after a bit: above 2 it drops to about half, so a
// context that changes its mind is trusted less (tried: to 2, to 3/4, to
// 1/3: all worse on English text).
int discount(int n) { return n > 2 ? (n + 2) / 2 : n; }

}  // namespace

BitHistory::BitHistory() {
  for (int s = 0; s < 256; ++s) {
    const int n0 = s & 15, n1 = s >> 4;
    const int after0_n0 = n0 < 15 ? n0 + 1 : 15, after0_n1 = discount(n1);
    const int after1_n1 = n1 < 15 ? n1 + 1 : 15, after1_n0 = discount(n0);
    next[s][0] = static_cast<uint8_t>(after0_n0 | (after0_n1 << 4));
    next[s][1] = static_cast<uint8_t>(after1_n0 | (after1_n1 << 4));
  }
}

const BitHistory kBitHistory;
const StateMapRates kStateMapRates;

}  // namespace tp::coding
