#include "cm_logistic.h"

namespace tp::coding {
namespace {

// 4096 / (1 + e^(-d/256)) at d = -2048, -1920, ..., 2048, rounded: the
// logistic curve sampled every 128 log-odds units. Intermediate values are
// linear interpolations, so no floating point is involved at run time.
constexpr int kKnots[33] = {1,    2,    3,    6,    10,   16,   27,   45,   73,   120,  194,
                            310,  488,  747,  1101, 1546, 2047, 2549, 2994, 3348, 3607, 3785,
                            3901, 3975, 4024, 4050, 4068, 4079, 4085, 4089, 4092, 4093, 4094};

int interpolate(int d) {  // d in [-2047, 2047]
  const int i = (d + 2048) >> 7;
  const int w = (d + 2048) & 127;
  return (kKnots[i] * (128 - w) + kKnots[i + 1] * w + 64) >> 7;
}

}  // namespace

Logistic::Logistic() {
  squash_table[0] = 1;
  for (int d = -2047; d <= 2047; ++d) squash_table[d + 2048] = static_cast<int16_t>(interpolate(d));
  // stretch(p) = the smallest d with squash(d) >= p: a monotone inverse.
  int p = 0;
  for (int d = -2047; d <= 2047; ++d) {
    const int v = squash_table[d + 2048];
    for (; p <= v; ++p) stretch_table[p] = static_cast<int16_t>(d);
  }
  for (; p < 4096; ++p) stretch_table[p] = 2047;
}

const Logistic kLogistic;

}  // namespace tp::coding
