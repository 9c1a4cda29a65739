// CPU-only builds: the CUDA attention entry points exist so the binding links,
// and say why they cannot run. With TOKENPRESS_CUDA the .cu files define them.
// tree_table (host code) is defined for every build.
#include "cuda_attention.h"

namespace tp::cuda {

// Host code, in every build.
void tree_table(const int32_t* parents, int64_t n_q, std::vector<uint8_t>& table) {
  table.assign(static_cast<size_t>(n_q * n_q), 0);
  for (int64_t i = 0; i < n_q; ++i) {
    uint8_t* row = table.data() + i * n_q;
    row[i] = 1;
    const int32_t parent = parents[i];
    if (parent >= 0 && parent < i) {  // the parent's row is complete: copy its ancestors
      const uint8_t* prow = table.data() + parent * n_q;
      for (int64_t t = 0; t <= parent; ++t) row[t] |= prow[t];
    }
  }
}

#ifndef TOKENPRESS_CUDA
namespace {
Status not_built() { return Status::internal("CUDA attention: built without CUDA (npm run build:cuda builds it)"); }
}  // namespace

Status check_device_attention(const DeviceAttention&) { return not_built(); }
AttentionPath resolve_path(const DeviceAttention& a) { return a.path; }
Status device_attention_workspace(const DeviceAttention&, size_t* bytes) { *bytes = 0; return not_built(); }
Status launch_device_attention(const DeviceAttention&, void*, size_t) { return not_built(); }
Status attention_on_device(const AttentionParams&, AttentionPath, int) { return not_built(); }
Status bench_attention(const BenchConfig&, BenchResult*) { return not_built(); }
#endif

}  // namespace tp::cuda
