// CUDA error -> Status, and an RAII device buffer. Every runtime call goes
// through check(): an error becomes a Status naming the call (never abort).
#pragma once
#include <cuda_runtime_api.h>

#include <string>

#include "../core/status.h"

namespace tp::cuda {

inline Status check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  cudaGetLastError();  // clear a non-sticky error so later calls start clean
  std::string msg = std::string("CUDA ") + what + ": " + cudaGetErrorName(err) + " (" + std::to_string(int(err)) + "): " +
                    cudaGetErrorString(err);
  if (err == cudaErrorMemoryAllocation) return Status::out_of_memory(msg);
  return Status::device(msg);
}

#define TP_CUDA_TRY(call, what)              \
  do {                                       \
    ::tp::Status tp_s_ = ::tp::cuda::check((call), (what)); \
    if (!tp_s_.is_ok()) return tp_s_;        \
  } while (0)

// cudaMalloc'd bytes, freed on scope exit (errors on free are ignored: the
// context is already broken if freeing fails).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  Status alloc(size_t bytes, const char* what) {
    if (bytes == 0) return Status::ok();
    return check(cudaMalloc(&ptr_, bytes), what);
  }
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

}  // namespace tp::cuda
