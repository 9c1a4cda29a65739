// The contract between byte models and the coders.
//
// A ByteModel is frozen while coding: given the bytes since the current
// context start (the start of an Equal-Info window, or of a document), it
// gives integer masses for the next byte. Only integer arithmetic goes into
// the masses, so every machine and every thread count sees the same numbers
// and the bitstream is a pure function of the input and the model.
// The coders quantize masses to frequencies (quantize.h).
#pragma once
#include <cstdint>

namespace tp::coding {

constexpr int kAlphabet = 256;  // byte symbols

class ByteModel {
 public:
  virtual ~ByteModel() = default;
  // The longest context, in bytes, the model reads.
  virtual int max_order() const = 0;
  // masses[256] for the byte after ctx[0..len): ctx holds the most recent
  // len bytes of the current window or document, oldest first, and
  // 0 <= len <= max_order() (len == 0 at a window start). Every mass is
  // >= 0 and their sum is in [1, 2^31). Const and thread-safe: many
  // streams query one model at once.
  virtual void masses(const uint8_t* ctx, int len, uint32_t* masses) const = 0;
};

// masses() for the byte after ctx[0..len), reading at most the model's
// max_order() most recent bytes (what every coder does).
inline void masses_after(const ByteModel& model, const uint8_t* ctx, size_t len, uint32_t* masses) {
  const size_t order = static_cast<size_t>(model.max_order());
  const size_t use = len < order ? len : order;
  model.masses(ctx + (len - use), static_cast<int>(use), masses);
}

}  // namespace tp::coding
