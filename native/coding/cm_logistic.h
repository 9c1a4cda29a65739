// Integer logistic functions for the context-mixing model, in the 12-bit
// domain of the coder: squash maps a log-odds value d in [-2047, 2047]
// (8 fractional bits) to a probability in [1, 4095] (12 bits); stretch is its
// inverse. Both are table lookups built from integers only, so every machine
// gets the same values.
#pragma once
#include <cstdint>

namespace tp::coding {

struct Logistic {
  int16_t stretch_table[4096];  // probability -> log-odds
  int16_t squash_table[4096];   // log-odds + 2048 -> probability
  Logistic();
};

// The one shared instance, built during static initialisation (it is only
// read afterwards, from any thread).
extern const Logistic kLogistic;

inline int cm_squash(int d) {
  if (d > 2047) d = 2047;
  if (d < -2047) d = -2047;
  return kLogistic.squash_table[d + 2048];
}

inline int cm_stretch(int p) { return kLogistic.stretch_table[p]; }

}  // namespace tp::coding
