#include "cuda_probe.h"

namespace tp {

#ifndef TOKENPRESS_CUDA
CudaStatus cuda_status() {
  CudaStatus s;
  s.error = "built without CUDA (npm run build:cuda builds the CUDA backend)";
  return s;
}
#endif

}  // namespace tp
