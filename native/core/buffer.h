// A 64-byte aligned float buffer for kernel scratch. Its members are defined
// out of line (buffer.cpp) so that ISA-specific translation units never emit
// their own copies of them.
#pragma once
#include <cstddef>

namespace tp {

class FloatBuffer {
 public:
  FloatBuffer() = default;
  // Throws std::bad_alloc when memory runs out.
  explicit FloatBuffer(size_t count);
  ~FloatBuffer();
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  FloatBuffer(FloatBuffer&& other) noexcept;
  FloatBuffer& operator=(FloatBuffer&& other) noexcept;

  float* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tp
