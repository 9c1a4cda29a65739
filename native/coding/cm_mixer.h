// Logistic mixer: combines model predictions (stretched probabilities) with
// a weight vector chosen by a small context, and trains the weights online
// to reduce coding cost (gradient of log loss: err * input). Weights are
// 16.16 fixed point; everything is integer, so results are exact everywhere.
#pragma once
#include <cstdint>
#include <vector>

#include "cm_logistic.h"

namespace tp::coding {

class Mixer {
 public:
  // n inputs, `sets` weight sets, each weight starting at init_weight/65536.
  void init(int n, int sets, int init_weight, int learning_rate) {
    n_ = n;
    lr_ = learning_rate;
    weights_.assign(static_cast<size_t>(n) * sets, init_weight);
  }

  // Mixes inputs[0..n) with weight set `set`; returns the log-odds
  // (clamped to [-2047, 2047]) and remembers the set for update().
  int mix(const int* inputs, int set) {
    inputs_ = inputs;
    w_ = &weights_[static_cast<size_t>(set) * n_];
    int64_t dot = 0;
    for (int i = 0; i < n_; ++i) dot += static_cast<int64_t>(inputs[i]) * w_[i];
    int d = static_cast<int>(dot >> 16);
    if (d > 2047) d = 2047;
    if (d < -2047) d = -2047;
    p_ = cm_squash(d);
    return d;
  }

  int p() const { return p_; }

  void update(int bit) {
    const int err = ((bit << 12) - p_) * lr_;
    for (int i = 0; i < n_; ++i) {
      int32_t w = w_[i] + ((inputs_[i] * err) >> 14);
      // Bounded so that hostile inputs cannot overflow the dot product.
      w_[i] = w > kMaxWeight ? kMaxWeight : (w < -kMaxWeight ? -kMaxWeight : w);
    }
  }

 private:
  static constexpr int32_t kMaxWeight = 1 << 22;  // |weight| <= 64
  std::vector<int32_t> weights_;
  const int* inputs_ = nullptr;
  int32_t* w_ = nullptr;
  int n_ = 0, lr_ = 1, p_ = 2048;
};

}  // namespace tp::coding
