// Internal interface between cuda_attention.cu (dispatch, host copies) and
// the kernel files (cuda_decode.cu, cuda_prefill.cu). Shapes: cuda_attention.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cuda_attention.h"

namespace tp::cuda {

// Multiprocessors of the current device (cached per device); 0 on error.
int multiprocessor_count();

// Decode split plan: each (KV head, row slice, split) block reads `chunk`
// keys; partials are merged by log-sum-exp in a second kernel.
struct DecodePlan {
  int64_t rows_per_group = 0;  // nHeads / nKvHeads * nQ
  int slices = 0;              // ceil(rows_per_group / 8)
  int slice_rows = 0;          // rows per slice (1, 2, 4 or 8)
  int64_t splits = 0;
  int64_t chunk = 0;           // keys per split
  size_t workspace_bytes = 0;  // partial o, m, l for nHeads * nQ rows * splits
};

DecodePlan plan_decode(const DeviceAttention& a, int sm_count);
Status launch_decode(const DeviceAttention& a, const DecodePlan& plan, void* workspace);
Status launch_prefill(const DeviceAttention& a);

}  // namespace tp::cuda
