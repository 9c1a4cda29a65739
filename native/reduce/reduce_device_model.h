// The host model of the vision kernels (cuda_reduce.cu): the same TP_HD code
// (reduce_hd.h) run serially on the CPU, for the tests and as the fallback
// of the device entry points when there is no GPU.
#pragma once
#include "../core/status.h"
#include "../cuda/cuda_reduce.h"

namespace tp::reduce {

// Fills job's outputs as cuda::run_on_device does (cuda_reduce.h), bit for bit.
Status run_host_model(cuda::VisionJob* job);

}  // namespace tp::reduce
