// CPU-only builds: the CUDA attention entry points exist so the binding links,
// and say why they cannot run. With TOKENPRESS_CUDA the .cu files define them.
#include "cuda_attention.h"

namespace tp::cuda {

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
