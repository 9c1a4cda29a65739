#include "buffer.h"

#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace tp {

FloatBuffer::FloatBuffer(size_t count) : size_(count) {
  if (count == 0) return;
  if (count > (SIZE_MAX - 63) / sizeof(float)) throw std::bad_alloc();
  const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!data_) throw std::bad_alloc();
}

FloatBuffer::~FloatBuffer() { std::free(data_); }

FloatBuffer::FloatBuffer(FloatBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

FloatBuffer& FloatBuffer::operator=(FloatBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

float* thread_scratch(int slot, size_t count) {
  thread_local FloatBuffer slots[kThreadScratchSlots];
  FloatBuffer& b = slots[slot];
  const bool too_small = b.size() < count;
  const bool oversized = b.size() > kThreadScratchKeep && count < b.size() / 4;
  if (too_small || oversized) {
    b = FloatBuffer();  // free first: the old and new areas never coexist
    b = FloatBuffer(too_small ? count + count / 2 : count);
  }
  return b.data();
}

}  // namespace tp
