// The KV cache in CUDA device memory (KvCache with device 'cuda').
//
// Same contract as the CPU KvCache (native/kv/kv_cache.h) through
// kv::KvCacheApi: inputs and outputs are host memory; K/V, positions and
// accumulated key mass stay on the device, so a decode step moves only its
// queries in and its outputs out. Supported on the device: f16, bf16 and
// KIVI int8 / int4 caches (the CPU's block bytes), headDim 64/128/256;
// append, attend (flash-decoding split-KV or the tensor-core prefill over each
// head's own length; int caches decode over their blocks in place for
// decode-sized steps, else over a dequantized f16 copy),
// key-mass accumulation, Quest sparse attends (cuda_kv_sparse.cu), compress
// with streamingllm, knorm, h2o, tova and
// snapkv scoring under uniform, pyramid or adakv budgets, merging (merge:
// true, RazorAttention), all on the device, and export. Other requests (f32
// caches, other scorers, softcap, draft queries) return Unsupported (JS code
// ERR_UNSUPPORTED): use a CPU cache for them.
#pragma once
#include "../core/status.h"
#include "../kv/kv_cache.h"

namespace tp::cuda {

// What a device cache accepts (checked without a device, so CPU-only builds
// report the same errors for the same configuration).
Status check_device_kv_config(const kv::CacheConfig& cfg);

// A new device cache (needs the CUDA build and a device).
Status create_device_kv_cache(const kv::CacheConfig& cfg, kv::KvCacheApi** out);

// A device cache's Quest page summaries of `layer`, decoded to f32, as the
// CPU KvCache::export_summaries gives them (Unsupported for other caches or
// builds without CUDA).
Status export_device_summaries(const kv::KvCacheApi& cache, int64_t layer, kv::SummaryExport* out);

// Tests: the device cache's next `n` allocations succeed and the one after
// fails with OutOfMemory (n < 0: never), to check that every call either
// succeeds or leaves the cache as it was. Process-wide.
void fail_device_allocations_after(int64_t n);

}  // namespace tp::cuda
