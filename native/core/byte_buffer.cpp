#include "byte_buffer.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace tp {

ByteBuffer::~ByteBuffer() { std::free(data_); }

ByteBuffer::ByteBuffer(ByteBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

ByteBuffer& ByteBuffer::operator=(ByteBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Status ByteBuffer::resize(size_t bytes, size_t keep) {
  if (bytes == size_) return Status::ok();
  if (bytes == 0) {
    release();
    return Status::ok();
  }
  if (bytes > SIZE_MAX - 63) return Status::out_of_memory("cannot allocate " + std::to_string(bytes) + " bytes");
  auto* fresh = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
  if (!fresh) return Status::out_of_memory("cannot allocate " + std::to_string(bytes) + " bytes");
  const size_t n = keep < bytes ? keep : bytes;
  if (n > 0 && data_) std::memcpy(fresh, data_, n < size_ ? n : size_);
  std::free(data_);
  data_ = fresh;
  size_ = bytes;
  return Status::ok();
}

void ByteBuffer::release() {
  std::free(data_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace tp
