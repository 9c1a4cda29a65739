// CUDA probe for builds with TOKENPRESS_CUDA (the CPU-only stub lives in
// cuda_probe.cpp). Linked with the static CUDA runtime, so it runs on
// machines without a driver or GPU: cudaGetDeviceCount then fails (35,
// cudaErrorInsufficientDriver, or 100, cudaErrorNoDevice) and we report
// zero devices with the reason. Never throws, never aborts.
#include <cuda_runtime_api.h>

#include <string>

#include "cuda_probe.h"

namespace tp {
namespace {

std::string describe_error(cudaError_t err) {
  const char* text = cudaGetErrorString(err);
  std::string out = text ? text : "unknown CUDA error";
  out += " (cudaError ";
  out += std::to_string(static_cast<int>(err));
  out += ")";
  return out;
}

CudaStatus probe() noexcept {
  CudaStatus s;
  s.compiled = true;
  try {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the (non-sticky) error so later runtime calls start clean
      s.error = describe_error(err);
      return s;
    }
    if (count == 0) {
      s.error = "no CUDA device found";
      return s;
    }
    for (int i = 0; i < count; ++i) {
      cudaDeviceProp prop;
      const cudaError_t perr = cudaGetDeviceProperties(&prop, i);
      if (!s.devices.empty()) s.devices += ", ";
      if (perr != cudaSuccess) {
        cudaGetLastError();
        s.devices += "device " + std::to_string(i) + " (" + describe_error(perr) + ")";
        continue;
      }
      s.devices += prop.name;
      s.devices += " (cc " + std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")";
    }
    s.device_count = count;
  } catch (...) {
    // Only std::string allocation can throw here; report instead of throwing
    // across the binding.
    s.device_count = 0;
    s.devices.clear();
    s.error = "CUDA probe failed";
  }
  return s;
}

}  // namespace

// The answer cannot change while the process runs (devices are enumerated
// once by the runtime), so probe once.
CudaStatus cuda_status() {
  static const CudaStatus status = probe();
  return status;
}

}  // namespace tp
