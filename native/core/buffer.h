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

// A scratch area of at least `count` floats owned by the calling thread and
// reused by the next call with the same slot on that thread: a kernel run on
// every decode step would otherwise map and fault in fresh pages each call
// (about 2 us per 4 KiB page in a VM). It grows geometrically and is
// released when it grew past kThreadScratchKeep floats and a later call
// needs less than a quarter of it. Contents are undefined. Throws
// std::bad_alloc like FloatBuffer. Never hold two live uses of one slot.
constexpr int kThreadScratchSlots = 4;
constexpr size_t kThreadScratchKeep = size_t{16} << 20;  // 64 MiB
float* thread_scratch(int slot, size_t count);

}  // namespace tp
