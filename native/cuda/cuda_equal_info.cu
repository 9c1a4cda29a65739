// Equal-Info decoding on the device (cuda_equal_info.h): the model's device
// copy and its cache, the one-thread-per-window kernel, and the host loop
// (passes of at most ~64 MiB of slots, then finish_slot_decode on the CPU).
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../coding/equal_info_portable.h"
#include "../coding/equal_info_slots.h"
#include "cuda_check.cuh"
#include "cuda_equal_info.h"

namespace tp::cuda {
namespace {

using coding::KnModel;
using coding::KnView;

constexpr int kThreads = 128;  // threads per block: one window each

// A model's query arrays in device memory; view holds device pointers.
struct DeviceModel {
  DeviceBuffer blob, slots, root_raw, rows1, rows2, idx2;
  KnView view;
};

template <typename T>
Status upload(DeviceBuffer* buf, const T* host, size_t count, const char* what) {
  if (count == 0) return Status::ok();
  Status s = buf->alloc(count * sizeof(T), what);
  if (!s.is_ok()) return s;
  return check(cudaMemcpy(buf->get(), host, count * sizeof(T), cudaMemcpyHostToDevice), what);
}

Status upload_model(const KnModel& m, std::shared_ptr<DeviceModel>* out) {
  auto d = std::make_shared<DeviceModel>();
  const KnView& h = m.view();
  const size_t slot_count = size_t{1} << h.slot_bits;
  Status s = upload(&d->blob, h.blob, h.blob_words, "cudaMalloc/cudaMemcpy (model records)");
  if (s.is_ok()) s = upload(&d->slots, h.slots, slot_count, "cudaMalloc/cudaMemcpy (model hash table)");
  if (s.is_ok()) s = upload(&d->root_raw, h.root_raw, size_t{coding::kAlphabet}, "cudaMalloc/cudaMemcpy (model order 0)");
  if (s.is_ok()) s = upload(&d->rows1, h.rows1, size_t{2} * coding::kAlphabet * coding::kAlphabet, "cudaMalloc/cudaMemcpy (model order 1)");
  if (s.is_ok()) s = upload(&d->rows2, h.rows2, h.rows2_words, "cudaMalloc/cudaMemcpy (model order 2)");
  if (s.is_ok()) s = upload(&d->idx2, h.idx2, size_t{coding::kAlphabet} * coding::kAlphabet, "cudaMalloc/cudaMemcpy (model order-2 index)");
  if (!s.is_ok()) return s;
  d->view = h;
  d->view.blob = d->blob.as<uint32_t>();
  d->view.slots = d->slots.as<uint64_t>();
  d->view.root_raw = d->root_raw.as<uint32_t>();
  d->view.rows1 = d->rows1.as<uint32_t>();
  d->view.rows2 = d->rows2.as<uint32_t>();
  d->view.idx2 = d->idx2.as<int32_t>();
  *out = std::move(d);
  return Status::ok();
}

// Device copies, one per (live model, device). Never destroyed at exit (the
// CUDA runtime may be gone by then): entries go when their model does.
struct CacheEntry {
  std::weak_ptr<const KnModel> owner;
  const KnModel* key = nullptr;
  int device = 0;
  std::shared_ptr<DeviceModel> copy;
};
std::mutex g_cache_mutex;
std::vector<CacheEntry>* g_cache = new std::vector<CacheEntry>();

void purge_locked() {
  g_cache->erase(std::remove_if(g_cache->begin(), g_cache->end(), [](const CacheEntry& e) { return e.owner.expired(); }),
                 g_cache->end());
}

Status device_model(const std::shared_ptr<const KnModel>& model, std::shared_ptr<DeviceModel>* out) {
  int device = 0;
  TP_CUDA_TRY(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  purge_locked();
  for (const CacheEntry& e : *g_cache) {
    if (e.key == model.get() && e.device == device) {
      *out = e.copy;
      return Status::ok();
    }
  }
  std::shared_ptr<DeviceModel> copy;
  Status s = upload_model(*model, &copy);
  if (!s.is_ok()) return s;
  g_cache->push_back(CacheEntry{model, model.get(), device, copy});
  *out = std::move(copy);
  return Status::ok();
}

// Thread i decodes window g0 + i of the flattened windows: document d with
// first[d] <= g < first[d + 1] (binary search), window g - first[d] of its
// bits at bits + offset[d], nbytes[d] bytes. Slot i gets its bytes,
// lengths[i] the count or kWindowOverflow.
__global__ void __launch_bounds__(kThreads)
decode_windows_kernel(KnView model, const uint8_t* __restrict__ bits, const uint64_t* __restrict__ offset,
                      const uint64_t* __restrict__ nbytes, const uint64_t* __restrict__ first, int ndocs, uint64_t g0,
                      uint64_t n, int window_bits, uint32_t limit, uint8_t* __restrict__ slots,
                      uint32_t* __restrict__ lengths) {
  const uint64_t i = uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const uint64_t g = g0 + i;
  int lo = 0, hi = ndocs;  // first[lo] <= g < first[hi]
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    if (first[mid] <= g) lo = mid;
    else hi = mid;
  }
  lengths[i] = coding::decode_window_portable(model, bits + offset[lo], static_cast<size_t>(nbytes[lo]),
                                              static_cast<size_t>(g - first[lo]), window_bits, slots + i * limit, limit,
                                              coding::ScaleRowScalar{});
}

// Frees event handles on scope exit.
struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Events() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

Status run_on_device(const std::shared_ptr<const KnModel>& model, const std::vector<std::vector<uint8_t>>& bits,
                     const std::vector<size_t>& windows, int window_bits, uint32_t limit, size_t max_bytes,
                     coding::SlotDecoded* decoded, double* kernel_ms) {
  const coding::WindowIndex ix = coding::index_windows(windows);
  decoded->lengths.assign(ix.total(), 0);
  decoded->packed.clear();
  if (kernel_ms) *kernel_ms = 0;
  if (ix.total() == 0) return Status::ok();
  std::shared_ptr<DeviceModel> dm;
  Status s = device_model(model, &dm);
  if (!s.is_ok()) return s;

  // Every document's bits back to back, with offsets and sizes.
  const size_t ndocs = bits.size();
  if (ndocs > (size_t{1} << 30)) return Status::unsupported("CUDA Equal-Info decoding: at most 2^30 token lists per call on the device");
  std::vector<uint64_t> offset(ndocs), nbytes(ndocs);
  size_t total_bytes = 0;
  for (size_t d = 0; d < ndocs; d++) {
    offset[d] = total_bytes;
    nbytes[d] = bits[d].size();
    total_bytes += bits[d].size();
  }
  std::vector<uint8_t> all(total_bytes);
  for (size_t d = 0; d < ndocs; d++) std::copy(bits[d].begin(), bits[d].end(), all.begin() + static_cast<ptrdiff_t>(offset[d]));

  DeviceBuffer d_bits, d_offset, d_nbytes, d_first, d_slots, d_lengths;
  s = upload(&d_bits, all.data(), total_bytes, "cudaMalloc/cudaMemcpy (window bits)");
  if (s.is_ok()) s = upload(&d_offset, offset.data(), ndocs, "cudaMalloc/cudaMemcpy (document offsets)");
  if (s.is_ok()) s = upload(&d_nbytes, nbytes.data(), ndocs, "cudaMalloc/cudaMemcpy (document sizes)");
  if (s.is_ok()) s = upload(&d_first, ix.first.data(), ix.first.size(), "cudaMalloc/cudaMemcpy (window index)");
  if (!s.is_ok()) return s;

  const uint64_t pass = std::min<uint64_t>(coding::windows_per_pass(limit), ix.total());
  s = d_slots.alloc(std::max<size_t>(static_cast<size_t>(pass) * limit, 1), "cudaMalloc (window slots)");
  if (s.is_ok()) s = d_lengths.alloc(static_cast<size_t>(pass) * sizeof(uint32_t), "cudaMalloc (window lengths)");
  if (!s.is_ok()) return s;
  Events ev;
  if (kernel_ms) {
    TP_CUDA_TRY(cudaEventCreate(&ev.start), "cudaEventCreate");
    TP_CUDA_TRY(cudaEventCreate(&ev.stop), "cudaEventCreate");
  }
  std::vector<uint8_t> slots(static_cast<size_t>(pass) * limit);
  for (uint64_t g0 = 0; g0 < ix.total(); g0 += pass) {
    const uint64_t n = std::min<uint64_t>(pass, ix.total() - g0);
    const unsigned blocks = static_cast<unsigned>((n + kThreads - 1) / kThreads);
    if (kernel_ms) TP_CUDA_TRY(cudaEventRecord(ev.start), "cudaEventRecord");
    decode_windows_kernel<<<blocks, kThreads>>>(dm->view, d_bits.as<uint8_t>(), d_offset.as<uint64_t>(),
                                                d_nbytes.as<uint64_t>(), d_first.as<uint64_t>(), static_cast<int>(ndocs),
                                                g0, n, window_bits, limit, d_slots.as<uint8_t>(), d_lengths.as<uint32_t>());
    TP_CUDA_TRY(cudaGetLastError(), "decode_windows_kernel launch");
    if (kernel_ms) TP_CUDA_TRY(cudaEventRecord(ev.stop), "cudaEventRecord");
    TP_CUDA_TRY(cudaMemcpy(decoded->lengths.data() + g0, d_lengths.get(), static_cast<size_t>(n) * sizeof(uint32_t),
                           cudaMemcpyDeviceToHost),
                "decode_windows_kernel / cudaMemcpy (window lengths)");
    if (n * limit > 0) {
      TP_CUDA_TRY(cudaMemcpy(slots.data(), d_slots.get(), static_cast<size_t>(n) * limit, cudaMemcpyDeviceToHost),
                  "cudaMemcpy (window slots)");
    }
    if (kernel_ms) {
      float ms = 0;
      TP_CUDA_TRY(cudaEventElapsedTime(&ms, ev.start, ev.stop), "cudaEventElapsedTime");
      *kernel_ms += ms;
    }
    s = decoded->add_pass(g0, n, slots.data(), limit, max_bytes, ndocs);
    if (!s.is_ok()) return s;
  }
  return Status::ok();
}

}  // namespace

Status decode_windows_on_device(const std::shared_ptr<const KnModel>& model, const std::vector<std::vector<uint8_t>>& bits,
                                const std::vector<size_t>& windows, int window_bits, size_t max_bytes, uint32_t slot_bytes,
                                std::vector<std::vector<uint8_t>>* out, size_t* overflowed, double* kernel_ms) {
  if (!model) return Status::invalid("model: expected a built-in ByteModel");
  if (bits.size() != windows.size()) return Status::internal("CUDA Equal-Info decoding: one window count per document expected");
  const uint32_t limit = coding::slot_limit(window_bits, max_bytes, slot_bytes);
  coding::SlotDecoded decoded;
  try {
    Status s = run_on_device(model, bits, windows, window_bits, limit, max_bytes, &decoded, kernel_ms);
    if (!s.is_ok()) return s;
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("CUDA Equal-Info decoding: out of host memory");
  }
  return coding::finish_slot_decode(*model, bits, windows, window_bits, max_bytes, std::move(decoded), out, overflowed);
}

void release_unused_device_models() {
  std::lock_guard<std::mutex> lock(g_cache_mutex);
  purge_locked();
}

}  // namespace tp::cuda
