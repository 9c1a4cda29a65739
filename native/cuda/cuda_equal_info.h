// Equal-Info decoding on the CUDA device with the built-in KnModel, bit-exact
// with the CPU decoder (coding_batch.h equal_info_decode_batch).
//
// One thread per window over all windows of all documents runs
// decode_window_portable (native/coding/equal_info_portable.h, the same code
// the CPU tests run on the host) into a fixed slot of device memory; lengths
// and slots come back, windows that overflowed their slot are decoded again
// on the CPU, and the windows are joined per document on the host
// (finish_slot_decode). The model's query arrays are uploaded once per model
// and device and kept while the model lives.
//
// Without TOKENPRESS_CUDA every entry point returns an Internal status
// (cuda_equal_info.cpp); callers check cuda_status() first.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../coding/kn_model.h"
#include "../core/status.h"

namespace tp::cuda {

// bits[d]: document d's packed window bits (coding_batch.h tokens_to_bits),
// windows[d]: its window count. slot_bytes: bytes per window slot on the
// device (0: 4 * window_bits), capped by the per-window limit of max_bytes.
// out[d]: document d's bytes; *overflowed: windows decoded again on the CPU;
// *kernel_ms (optional): the device time of the decode kernels.
// OutOfMemory when device memory runs out, Device (ERR_CUDA) for other CUDA errors,
// InvalidArgument for corrupt tokens (the CPU decoder's errors).
Status decode_windows_on_device(const std::shared_ptr<const coding::KnModel>& model,
                                const std::vector<std::vector<uint8_t>>& bits, const std::vector<size_t>& windows,
                                int window_bits, size_t max_bytes, uint32_t slot_bytes,
                                std::vector<std::vector<uint8_t>>* out, size_t* overflowed, double* kernel_ms = nullptr);

// Frees the device copies of models that no longer exist (called when a
// model handle is destroyed; also done at every decode). Never fails.
void release_unused_device_models();

}  // namespace tp::cuda
