// Logistic mixer: combines model predictions (stretched probabilities) with
// a weight vector chosen by a small context, and trains the weights online
// to reduce coding cost (gradient of log loss: err * input). Weights are
// fixed point with 16 fractional bits, bounded to [-8, 8]; inputs are
// log-odds in [-2047, 2047]. Everything is 32-bit integer arithmetic (signed
// right shifts are arithmetic on every supported compiler), so results are
// exact everywhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cm_logistic.h"

namespace tp::coding {

// N inputs (a compile-time count, so the loops unroll and vectorise).
template <int N>
class Mixer {
  static_assert(N >= 1 && N <= 64, "the 32-bit dot product holds at most 64 terms");

 public:
  static constexpr int n_ = N;
  // `sets` weight sets, each weight starting at init_weight/65536;
  // learning_rate in [1, 32] (keeps err * input inside 32 bits).
  void init(int sets, int init_weight, int learning_rate) {
    const int n = N;
    lr_ = learning_rate < 1 ? 1 : (learning_rate > 32 ? 32 : learning_rate);
    weights_.assign(static_cast<size_t>(n) * sets, init_weight);
  }

  // Mixes inputs[0..n) with weight set `set`; returns the log-odds
  // (clamped to [-2047, 2047]) and remembers the set for update().
  int mix(const int32_t* inputs, int set) {
    inputs_ = inputs;
    w_ = &weights_[static_cast<size_t>(set) * n_];
    const int32_t* __restrict x = inputs;
    const int32_t* __restrict w = w_;
    // |x| < 2^11 and |w| <= 2^19: each product fits in 30 bits, and after
    // the >> 6 a sum of up to 64 terms fits in 31 (32-bit lanes vectorise).
    int32_t dot = 0;
    for (int i = 0; i < n_; ++i) dot += (x[i] * w[i]) >> 6;
    int d = dot >> 10;
    if (d > 2047) d = 2047;
    if (d < -2047) d = -2047;
    p_ = cm_squash(d);
    return d;
  }

  int p() const { return p_; }

  void update(int bit) {
    const int32_t err = ((bit << 12) - p_) * lr_;  // |err| < 2^17
    const int32_t* __restrict x = inputs_;
    int32_t* __restrict w = w_;
    for (int i = 0; i < n_; ++i) {
      // |x * err| < 2^28. Weights stay bounded so sums cannot overflow.
      const int32_t v = w[i] + ((x[i] * err) >> 14);
      w[i] = v > kMaxWeight ? kMaxWeight : (v < -kMaxWeight ? -kMaxWeight : v);
    }
  }

 private:
  static constexpr int32_t kMaxWeight = 1 << 19;  // |weight| <= 8
  std::vector<int32_t> weights_;
  const int32_t* inputs_ = nullptr;
  int32_t* w_ = nullptr;
  int lr_ = 1, p_ = 2048;
};

}  // namespace tp::coding
