// Merging of evicted rows on the device (cuda_kv_merge.cu), the CPU
// semantics of kv_plan.cpp nearest_targets + kv_cache_compress.cpp apply_plan:
//   target(e) = the kept row whose key has the largest cosine similarity with
//               evicted row e (the first one among equal), or none when that
//               similarity is below `threshold`;
//   kept row r with merged rows e1 < e2 < ... (ascending):
//     w = count[r];  x = x_r * w;  for each e: x += count[e] * x_e, w += count[e]
//     x_r' = x * (1 / w) rounded to the cache dtype;  count[r] = w;  mass[r] += mass[e]...
// in f32, in that order and without contraction, so the merged rows equal
// the CPU's bit for bit whenever the targets agree. Every kept row of a head
// that merges anything goes through the formula (as on the CPU).
// Layouts as in cuda_kv_kernels.h; sel [nKvHeads, stride] holds the kept rows ascending.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"
#include "../core/status.h"

namespace tp::cuda {

// Device buffers of one layer's merge plan.
struct MergePlanView {
  int64_t n_kv_heads = 0, cap = 0, stride = 0, head_dim = 0, max_len = 0, max_keep = 0, max_evicted = 0;
  DType dtype = DType::F16;
  const void* k = nullptr;          // the layer's keys [nKvHeads, cap, headDim]
  const int32_t* lens = nullptr;    // [nKvHeads]
  const int32_t* sel = nullptr;     // [nKvHeads, stride] kept rows ascending
  const int32_t* keep = nullptr;    // [nKvHeads]
  const int32_t* sel_begin = nullptr, * sel_end = nullptr;  // segment offsets h * stride, h * stride + keep[h]
  const int32_t* row_begin = nullptr, * row_end = nullptr;  // h * cap, h * cap + lens[h]
  const int32_t* ev_end = nullptr;  // h * cap + lens[h] - keep[h]
  double threshold = -2.0;
  // Outputs (plan storage):
  int32_t* merged_rows = nullptr;   // [nKvHeads, cap] evicted rows sorted by (target, row); first evicted[h] valid
  int32_t* ranges = nullptr;        // [nKvHeads, stride, 2] [begin, end) into merged_rows per kept slot (head-relative)
  int32_t* head_merges = nullptr;   // [nKvHeads] 1 if the head merges anything
};

// Scratch for merge_plan: i32 [nKvHeads * cap] x 4, f32 [nKvHeads * stride], and CUB temp storage.
struct MergeScratch {
  int32_t* a = nullptr;
  int32_t* b = nullptr;
  int32_t* c = nullptr;
  int32_t* d = nullptr;
  float* inv_norm = nullptr;
  void* temp = nullptr;
  size_t temp_bytes = 0;
};
Status merge_temp_bytes(int64_t n_kv_heads, int64_t cap, size_t* bytes);
Status launch_merge_plan(const MergePlanView& p, const MergeScratch& s);

// Razor-style plans built on the host: uploads nothing, only fills
// head_merges from the ranges (1 where any range is non-empty).
Status launch_head_merges_from_ranges(const int32_t* ranges, int64_t n_kv_heads, int64_t stride, int64_t max_keep, int32_t* head_merges);

// Applies the merges to the gathered kept rows (outputs of launch_gather_rows,
// [nKvHeads, stride, ...]) reading the evicted rows from the layer itself.
struct MergeApply {
  int64_t n_kv_heads = 0, cap = 0, stride = 0, head_dim = 0, max_keep = 0;
  DType dtype = DType::F16;
  const void* k = nullptr;
  const void* v = nullptr;
  const float* mass = nullptr;
  const float* count = nullptr;
  const int32_t* sel = nullptr;
  const int32_t* keep = nullptr;
  const int32_t* merged_rows = nullptr;
  const int32_t* ranges = nullptr;
  const int32_t* head_merges = nullptr;
  void* k_out = nullptr;
  void* v_out = nullptr;
  float* mass_out = nullptr;
  float* count_out = nullptr;
};
Status launch_merge_apply(const MergeApply& m);

}  // namespace tp::cuda
