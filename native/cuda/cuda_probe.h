// CUDA availability, compiled into every build. Without TOKENPRESS_CUDA the
// probe reports "not compiled"; with it, the .cu side asks the runtime.
#pragma once
#include <string>

namespace tp {

struct CudaStatus {
  bool compiled = false;   // built with the CUDA backend
  int device_count = 0;    // usable devices (0 without driver or device)
  std::string error;       // why there is no device, if there is none
  std::string devices;     // "name (cc X.Y)" list, comma separated
};

CudaStatus cuda_status();

}  // namespace tp
