// CPU-only builds: the device Equal-Info decoder exists so the binding links,
// and says why it cannot run. With TOKENPRESS_CUDA cuda_equal_info.cu defines it.
#include "cuda_equal_info.h"

namespace tp::cuda {

#ifndef TOKENPRESS_CUDA
Status decode_windows_on_device(const std::shared_ptr<const coding::KnModel>&, const std::vector<std::vector<uint8_t>>&,
                                const std::vector<size_t>&, int, size_t, uint32_t, std::vector<std::vector<uint8_t>>*,
                                size_t*, double*) {
  return Status::internal("CUDA Equal-Info decoding: built without CUDA (npm run build:cuda builds it)");
}
void release_unused_device_models() {}
#endif

}  // namespace tp::cuda
