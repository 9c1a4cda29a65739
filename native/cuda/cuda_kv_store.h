// DeviceKvCache: the class behind create_device_kv_cache (cuda_kv_cache.h).
// Storage and the per-step calls are in cuda_kv_cache.cu, compression in
// cuda_kv_compress.cu. Host code only (no kernels here).
//
// Per layer, in device memory (cudaMalloc, never managed memory):
//   k, v   T [nKvHeads, kv_rows, headDim]  T = f16 or bf16, row r of head h at h * kv_rows + r
//          (float caches: kv_rows = cap; int8/int4 caches: the f16 tail of the
//          newest rows, kv_rows = min(capacity, residual + group))
//   blocks u8 [nKvHeads, blocks_cap, block_bytes]  int caches: KIVI blocks (cuda_kv_quant.h)
//   pos    i32 [nKvHeads, cap]          original position of each row
//   mass   f32 [nKvHeads, cap]          accumulated attention mass (H2O)
//   count  f32 [nKvHeads, cap]          tokens a row stands for (merging adds them up)
//   lens   i32 [nKvHeads]               rows of each head (mirrored on the host)
//   q_lo, q_hi T [nKvHeads, q_page_cap, headDim]  Quest page summaries (after a
//          sparse attend): element-wise min / max of each page's keys (int
//          caches: u8 codes of the CPU's U8 format, with q_aff and q_open)
// cap grows geometrically up to the capacity (all heads of a layer share it).
// The observation window (the newest `window` queries) stays on the host and
// goes to the device only when a layer is compressed.
#pragma once
#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "../kv/kv_cache.h"
#include "../kv/kv_quant.h"
#include "cuda_attention.h"

namespace tp::cuda {

// A cudaMalloc'd block, freed on destruction; movable.
class DeviceBlock {
 public:
  DeviceBlock() = default;
  DeviceBlock(DeviceBlock&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
  DeviceBlock& operator=(DeviceBlock&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBlock(const DeviceBlock&) = delete;
  DeviceBlock& operator=(const DeviceBlock&) = delete;
  ~DeviceBlock() { reset(); }
  Status alloc(size_t bytes, const char* what);  // replaces the contents
  void reset();
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// K / V rows of a layer as kernels read them: [nKvHeads, cap, headDim] of
// dtype (the stored rows of a float cache; dequantized scratch of an int cache).
struct KvRows {
  const void* k = nullptr;
  const void* v = nullptr;
  DType dtype = DType::F16;
};

// Scratch that grows to the largest request and stays.
class Scratch {
 public:
  Status reserve(size_t bytes, const char* what) {
    if (bytes <= block_.bytes()) return Status::ok();
    DeviceBlock b;
    const Status s = b.alloc(bytes + bytes / 4, what);
    if (!s.is_ok()) return s;
    block_ = std::move(b);
    return Status::ok();
  }
  template <typename T> T* as() const { return block_.as<T>(); }
  size_t bytes() const { return block_.bytes(); }
  void reset() { block_.reset(); }

 private:
  DeviceBlock block_;
};

struct DeviceLayer {
  DeviceBlock k, v, pos, mass, count, lens;
  int64_t cap = 0, kv_rows = 0;
  DeviceBlock blocks, n_blocks_dev;  // int caches
  int64_t blocks_cap = 0;
  std::vector<int64_t> n_blocks;     // [nKvHeads] host mirror (int caches)
  std::vector<int64_t> len;  // [nKvHeads] host mirror of lens
  int64_t next_pos = 0;
  bool mass_seen = false;
  bool weighted = false;  // some rows stand for merged tokens: attention adds log(count)
  int64_t win_heads = 0, win_rows = 0;
  std::vector<float> window;  // [win_heads, window, headDim] host
  // Quest (cuda_kv_sparse.cu): page size (0: no summaries), page capacity, and
  // per head the rows folded (pages below q_rows[h] / q_page are final).
  // Int caches: q_lo / q_hi hold u8 codes, q_aff f32 [nKvHeads, q_page_cap, 2]
  // (base, step) and q_open f32 [nKvHeads, 2, headDim] the open pages exactly.
  DeviceBlock q_lo, q_hi, q_aff, q_open;
  int64_t q_page = 0, q_page_cap = 0;
  std::vector<int64_t> q_rows;
};

class DeviceKvCache final : public kv::KvCacheApi {
 public:
  explicit DeviceKvCache(const kv::CacheConfig& cfg);
  Status init();

  const kv::CacheConfig& config() const override { return cfg_; }
  const char* device() const override { return "cuda"; }
  Status append(int64_t layer, const kv::AppendInput& in) override;
  Status attend(int64_t layer, const kv::AttendInput& in) override;
  Status compress(const kv::CompressRequest& req, kv::CompressReport* report) override;
  Status export_layer(int64_t layer, DType out_type, void* k, void* v, int64_t kv_len, int32_t* positions, int64_t pos_len,
                      float* counts, int64_t counts_len) const override;
  int64_t length(int64_t layer, int64_t head) const override { return layers_[layer].len[head]; }
  int64_t max_length(int64_t layer) const override;
  int64_t memory_bytes() const override;
  int64_t total_tokens() const override;
  void clear() override;
  void clear_layer(int64_t layer) override;

 private:
  bool quantized() const { return cfg_.type == kv::CacheType::Int8 || cfg_.type == kv::CacheType::Int4; }
  // dtype of the stored k / v rows (f16 for an int cache's tail).
  DType dtype() const { return cfg_.type == kv::CacheType::BF16 ? DType::BF16 : DType::F16; }
  size_t row_bytes() const { return size_t(cfg_.head_dim) * 2; }
  Status reserve(DeviceLayer& L, int64_t rows);
  Status reserve_blocks(DeviceLayer& L, int64_t blocks);
  Status upload_blocks(DeviceLayer& L);
  Status append_quantized(DeviceLayer& L, const kv::AppendInput& in, const std::vector<uint16_t>& hk, const std::vector<uint16_t>& hv);
  // The layer's rows for kernels: stored rows, or (int caches) dequantized
  // into f16 (want F16) or f32 (want F32) scratch.
  Status rows_of(const DeviceLayer& L, int64_t layer, DType want, KvRows* out) const;
  Status requantize(DeviceLayer& L, const std::vector<int64_t>& keep, int64_t stride);
  // Quantizes quant_meta_[h] groups of rows per head from k / v (f16, or f32
  // when src_f32: [nKvHeads, src_rows, headDim]) into the layer's blocks from
  // block quant_meta_[nKvHeads + h].
  Status quantize_into(DeviceLayer& L, const void* k, const void* v, bool src_f32, int64_t src_rows, int64_t max_groups);
  Status upload_lens(DeviceLayer& L);
  void remember(DeviceLayer& L, const kv::AttendInput& in);
  // Attention of f32 device queries [nHeads, rows, D] over the layer: out and
  // lse on the device (out may be scratch). f32_lse: the decode path whatever
  // the rows (the prefill path rounds q to 16 bits; key mass needs the f32 lse).
  // weighted: merged rows weigh by their count (decode path), as the CPU attend does.
  // quant: read an int cache's blocks in place (fused KIVI decode) instead of rows_view.
  Status run_attention(const DeviceLayer& L, const KvRows& rows_view, const float* q, int64_t n_heads, int64_t rows, float scale, bool causal,
                       float* out, float* lse, bool f32_lse, bool weighted = false, const DeviceQuantKv* quant = nullptr);
  // Whether attend can read this int cache's blocks in place (the layout the
  // fused decode needs), and the view it reads.
  bool fused_quant_ok() const;
  DeviceQuantKv quant_view(const DeviceLayer& L) const;
  // Quest: brings the layer's page summaries up to its rows (page size P;
  // a new P rebuilds them); drops them (derived state, rebuilt on demand).
  Status quest_sync(DeviceLayer& L, int64_t layer, int64_t P);
  size_t quest_row_bytes() const;
  void quest_drop(DeviceLayer& L);
  // After a change that kept the summaries' rows valid below each head's
  // `valid` rows (append: the old lengths; compress: 0): refold, or drop on failure.
  void quest_after_change(DeviceLayer& L, int64_t layer, const std::vector<int64_t>& valid);
  Status attend_quest(int64_t layer, const kv::AttendInput& in, float scale);
 public:
  // The layer's summaries decoded to f32 (export_device_summaries).
  Status export_summaries(int64_t layer, kv::SummaryExport* out) const;
 private:
  struct LayerPlan;
  Status plan_layer(const kv::CompressRequest& req, int64_t layer, LayerPlan* plan);
  Status plan_merge(const kv::CompressRequest& req, int64_t layer, LayerPlan* plan);
  Status plan_razor(const kv::CompressRequest& req, int64_t layer, LayerPlan* plan);
  Status reserve_apply(const std::vector<LayerPlan>& plans);  // every scratch apply_plan needs, before any change
  Status apply_plan(DeviceLayer& L, const LayerPlan& plan);
  void release_scratch();

  kv::CacheConfig cfg_;
  kv::QuantLayout qlayout_;
  std::vector<DeviceLayer> layers_;
  Scratch q_dev_, out_dev_, lse_dev_, work_dev_, staging_;
  Scratch scores_, scores_out_, ids_, ids_out_, sel_tmp_, sort_temp_, offsets_, nan_count_;
  Scratch gather_k_, gather_v_, gather_pos_, gather_mass_, gather_count_;
  Scratch merge_offsets_, merge_scratch_;
  mutable Scratch deq16_k_, deq16_v_, deq32_k_, deq32_v_;  // dequantized rows (export is const)
  Scratch concat_k_, concat_v_, quant_meta_;
  Scratch quest_ab_, quest_scores_, quest_idx_, quest_mass_;
};

// Waits for the device and turns a failure (a kernel fault) into a Status.
Status sync_device(const char* what);

}  // namespace tp::cuda
