// What the binding needs of a KV cache, whichever memory it lives in: the
// CPU KvCache (kv_cache.h) or the CUDA DeviceKvCache (native/cuda/
// cuda_kv_cache.h). Inputs and outputs are host memory in both; a device
// cache copies queries in and outputs out, and keeps K/V on the device.
// Every method either succeeds or leaves the cache as it was.
#pragma once
#include <cstdint>

#include "../core/dtype.h"
#include "../core/status.h"
#include "kv_plan.h"

namespace tp::kv {

struct CacheConfig;
struct AppendInput;
struct AttendInput;
struct CompressReport;

class KvCacheApi {
 public:
  virtual ~KvCacheApi() = default;
  virtual const CacheConfig& config() const = 0;
  virtual const char* device() const = 0;  // "cpu" or "cuda"
  virtual Status append(int64_t layer, const AppendInput& in) = 0;
  virtual Status attend(int64_t layer, const AttendInput& in) = 0;
  virtual Status compress(const CompressRequest& req, CompressReport* report) = 0;
  virtual Status export_layer(int64_t layer, DType out_type, void* k, void* v, int64_t kv_len, int32_t* positions,
                              int64_t pos_len, float* counts = nullptr, int64_t counts_len = 0) const = 0;
  virtual int64_t length(int64_t layer, int64_t head) const = 0;
  virtual int64_t max_length(int64_t layer) const = 0;
  virtual int64_t memory_bytes() const = 0;
  virtual int64_t total_tokens() const = 0;
  virtual void clear() = 0;
  virtual void clear_layer(int64_t layer) = 0;  // layer must be in range
};

}  // namespace tp::kv
