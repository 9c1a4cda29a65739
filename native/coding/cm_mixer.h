// Logistic mixer: combines model predictions (stretched probabilities) with
// a weight vector chosen by a small context, and trains the weights online
// to reduce coding cost (gradient of log loss: err * input).
//
// Fixed point, 16-bit lanes (the paq7/lpaq layout, so SSE2 does 8 lanes at
// once): inputs are log-odds in [-2047, 2047]; weights are int16 with
// 1.0 = 8192 (so |w| < 4), updated with saturation. The SSE2 path and the
// portable path compute exactly the same integers (pairwise products summed
// and shifted as pmaddwd / psrad do; (2x * err) >> 16 as pmulhw does), so
// the bitstream never depends on the machine.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#if defined(__SSE2__) && !defined(TP_CM_PORTABLE_MIXER)
#include <emmintrin.h>
#define TP_CM_MIXER_SSE2 1
#endif

#include "cm_logistic.h"

namespace tp::coding {

inline int16_t saturate16(int32_t v) { return static_cast<int16_t>(v > 32767 ? 32767 : (v < -32768 ? -32768 : v)); }

// sum over pairs of ((x[i] * w[i] + x[i+1] * w[i+1]) >> 8); n % 8 == 0.
inline int32_t mixer_dot(const int16_t* x, const int16_t* w, int n) {
#ifdef TP_CM_MIXER_SSE2
  __m128i sum = _mm_setzero_si128();
  for (int i = 0; i < n; i += 8) {
    const __m128i p = _mm_madd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + i)));
    sum = _mm_add_epi32(sum, _mm_srai_epi32(p, 8));
  }
  sum = _mm_add_epi32(sum, _mm_srli_si128(sum, 8));
  sum = _mm_add_epi32(sum, _mm_srli_si128(sum, 4));
  return _mm_cvtsi128_si32(sum);
#else
  int32_t sum = 0;
  for (int i = 0; i < n; i += 2) sum += (x[i] * w[i] + x[i + 1] * w[i + 1]) >> 8;
  return sum;
#endif
}

// w[i] = saturate(w[i] + ((((2 x[i]) * err) >> 16) + 1) >> 1); n % 8 == 0.
inline void mixer_train(const int16_t* x, int16_t* w, int n, int16_t err) {
#ifdef TP_CM_MIXER_SSE2
  const __m128i e = _mm_set1_epi16(err);
  const __m128i one = _mm_set1_epi16(1);
  for (int i = 0; i < n; i += 8) {
    __m128i xi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i));
    __m128i wi = _mm_loadu_si128(reinterpret_cast<__m128i*>(w + i));
    __m128i d = _mm_mulhi_epi16(_mm_add_epi16(xi, xi), e);
    d = _mm_srai_epi16(_mm_add_epi16(d, one), 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w + i), _mm_adds_epi16(wi, d));
  }
#else
  for (int i = 0; i < n; ++i) {
    const int32_t d = ((((2 * x[i]) * err) >> 16) + 1) >> 1;
    w[i] = saturate16(w[i] + d);
  }
#endif
}

// N inputs, padded to a multiple of 8 lanes.
template <int N>
class Mixer {
 public:
  static constexpr int kLanes = (N + 7) / 8 * 8;

  // `sets` weight sets, each weight starting at init_weight / 8192;
  // error_scale in [1, 8] multiplies the prediction error (the learning rate).
  void init(int sets, int init_weight, int error_scale) {
    scale_ = error_scale < 1 ? 1 : (error_scale > 8 ? 8 : error_scale);
    weights_.assign(static_cast<size_t>(kLanes) * sets, 0);
    for (int s = 0; s < sets; ++s) {
      for (int i = 0; i < N; ++i) weights_[static_cast<size_t>(s) * kLanes + i] = static_cast<int16_t>(init_weight);
    }
  }

  // The caller writes inputs()[0..N) (each in [-2047, 2047]) before mix().
  int16_t* inputs() { return inputs_; }

  // Mixes with weight set `set`; returns the log-odds (clamped to
  // [-2047, 2047]) and remembers the set for update().
  int mix(int set) {
    w_ = &weights_[static_cast<size_t>(set) * kLanes];
    int d = mixer_dot(inputs_, w_, kLanes) >> 5;
    if (d > 2047) d = 2047;
    if (d < -2047) d = -2047;
    p_ = cm_squash(d);
    return d;
  }

  int p() const { return p_; }

  void update(int bit) {
    const int err = ((bit << 12) - p_) * scale_;  // |err| <= 4095 * 8 < 2^15
    mixer_train(inputs_, w_, kLanes, static_cast<int16_t>(err));
  }

 private:
  alignas(16) int16_t inputs_[kLanes] = {};
  std::vector<int16_t> weights_;
  int16_t* w_ = nullptr;
  int scale_ = 1, p_ = 2048;
};

}  // namespace tp::coding
