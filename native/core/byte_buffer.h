// A 64-byte aligned, resizable byte buffer that reports allocation failure
// as a Status instead of throwing (the KV cache grows and shrinks its
// per-head storage with it). Members are out of line (byte_buffer.cpp).
#pragma once
#include <cstddef>
#include <cstdint>

#include "status.h"

namespace tp {

class ByteBuffer {
 public:
  ByteBuffer() = default;
  ~ByteBuffer();
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ByteBuffer(ByteBuffer&& other) noexcept;
  ByteBuffer& operator=(ByteBuffer&& other) noexcept;

  // Reallocates to exactly `bytes`, keeping the first min(keep, bytes) bytes.
  // On failure the buffer is unchanged and an OutOfMemory status returned.
  Status resize(size_t bytes, size_t keep);
  void release();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace tp
