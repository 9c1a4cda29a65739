// CPU-only builds: the device vision kernels exist so the binding links, and
// say why they cannot run. With TOKENPRESS_CUDA cuda_reduce.cu defines them.
#include "cuda_reduce.h"

namespace tp::cuda {

#ifndef TOKENPRESS_CUDA
Status run_on_device(VisionJob*) {
  return Status::internal("CUDA vision kernels: built without CUDA (npm run build:cuda builds them)");
}
#endif

}  // namespace tp::cuda
