// The device KV cache's configuration check (every build) and, without
// TOKENPRESS_CUDA, its factory stub.
#include <string>

#include "cuda_kv_cache.h"

namespace tp::cuda {

Status check_device_kv_config(const kv::CacheConfig& cfg) {
  if (cfg.type == kv::CacheType::F32) {
    return Status::unsupported("KvCache on cuda: dtype: expected 'f16', 'bf16', 'int8' or 'int4' on the device (f32 caches run on the CPU)");
  }
  if (cfg.head_dim != 64 && cfg.head_dim != 128 && cfg.head_dim != 256) {
    return Status::unsupported("KvCache on cuda: headDim: expected 64, 128 or 256 on the device, received " + std::to_string(cfg.head_dim));
  }
  return Status::ok();
}

#ifndef TOKENPRESS_CUDA
Status create_device_kv_cache(const kv::CacheConfig&, kv::KvCacheApi**) {
  return Status::unsupported("KvCache on cuda: this build has no CUDA backend (npm run build:cuda builds it)");
}
void fail_device_allocations_after(int64_t) {}
Status export_device_summaries(const kv::KvCacheApi&, int64_t, kv::SummaryExport*) {
  return Status::unsupported("KvCache: Quest summaries of a device cache need the CUDA build");
}
#endif

}  // namespace tp::cuda
