// Kernels of the device KV cache (cuda_kv_kernels.cu), as host launchers on
// the default stream. Layouts, per layer:
//   k, v   T [nKvHeads, cap, headDim]   (T = f16 or bf16; row r of head h at (h * cap + r) * headDim)
//   pos    i32 [nKvHeads, cap], mass, count f32 [nKvHeads, cap]
//   lens   i32 [nKvHeads] (device): rows of each head
//   q      f32 [nHeads, rows, headDim], lse f32 [nHeads, rows] (natural log)
// GQA: query head g of KV head h is h * group + g.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/dtype.h"
#include "../core/status.h"

namespace tp::cuda {

// k: the layer's keys [nKvHeads, cap, headDim] as f16, bf16 or f32 (the
// dequantized rows of an int cache).
struct KvLayerView {
  const void* k = nullptr;
  DType dtype = DType::F16;
  int64_t n_kv_heads = 0, cap = 0, head_dim = 0, max_len = 0;
  const int32_t* lens = nullptr;
};

// Attention mass of query rows on each key, added into (accumulate) or
// written to `mass` [nKvHeads, cap]: for each key p < lens[h],
//   sum over g < group and rows i in [first_i(h), rows) that see p of exp(scale q.k - lse)
// where row i sees p <= lens[h] - rows + i when causal (every key otherwise),
// and first_i(h) = rows - min(last, lens[h], rows) (last <= 0: all rows).
struct MassLaunch {
  KvLayerView layer;
  const float* q = nullptr;
  const float* lse = nullptr;
  int64_t group = 1, rows = 0, last = 0;
  float scale = 1.0f;
  bool causal = true;
  bool accumulate = false;
  // Rows standing for several merged tokens weigh count times as much (the
  // attention's log(count) logit bias): f32 [nKvHeads, cap], or null.
  const float* count = nullptr;
  float* mass = nullptr;
};
Status launch_key_mass(const MassLaunch& m);

// Scores [nKvHeads, cap] of one policy from the layer (rows >= lens[h] are
// left untouched). Scores are canonical (-0 -> +0), higher = keep.
enum class DeviceScorer : int { StreamingLlm = 0, Knorm = 1, Mass = 2, Tova = 3, SnapKv = 4 };
struct ScoreLaunch {
  KvLayerView layer;
  DeviceScorer scorer = DeviceScorer::Knorm;
  int64_t sinks = 4;                // streamingllm
  int64_t recent = 0;               // h2o: the newest `recent` rows get +inf
  const float* mass = nullptr;      // mass-based scorers: [nKvHeads, cap]
  float mass_scale = 1.0f;          // tova: 1 / group; snapkv: 1 / (w * group) with w per head (below)
  int64_t group = 1, window = 0, rows = 0;  // snapkv: w(h) = min(window, min(rows, lens[h]))
  int64_t kernel = 5;               // snapkv pooling width
  bool max_pool = false;            // snapkv pooling
  float* scores = nullptr;
};
Status launch_scores(const ScoreLaunch& s);

// Rows whose score is NaN, summed into *count (device i32).
Status launch_count_nan(const float* scores, const int32_t* lens, int64_t n_kv_heads, int64_t cap, int64_t max_len, int32_t* count);

// row_ids[h * cap + r] = r.
Status launch_iota_rows(int32_t* row_ids, int64_t n_kv_heads, int64_t cap);

// sel[h * stride + j] = sorted[h * cap + j] for j < keep[h] (keep: device i32 [nKvHeads]).
Status launch_take_prefix(const int32_t* sorted, int64_t cap, const int32_t* keep, int64_t n_kv_heads, int64_t stride,
                          int64_t max_keep, int32_t* sel);

// Gathers kept rows into dense scratch: for j < keep[h], row j of head h in
// the outputs is row sel[h * stride + j] of the inputs. K/V rows are
// row_bytes each (headDim * 2 for 16-bit rows, * 4 for f32; a multiple of
// 16); pos/mass/count 4 bytes. Outputs [nKvHeads, stride, ...].
struct GatherLaunch {
  const void* k = nullptr;
  const void* v = nullptr;
  const int32_t* pos = nullptr;
  const float* mass = nullptr;
  const float* count = nullptr;
  int64_t n_kv_heads = 0, cap = 0, head_dim = 0, row_bytes = 0;
  const int32_t* sel = nullptr;
  const int32_t* keep = nullptr;
  int64_t stride = 0, max_keep = 0;
  void* k_out = nullptr;
  void* v_out = nullptr;
  int32_t* pos_out = nullptr;
  float* mass_out = nullptr;
  float* count_out = nullptr;
};
Status launch_gather_rows(const GatherLaunch& g);

// Fills n floats with x.
Status launch_fill(float* dst, int64_t n, float x);

// Bytes of CUB temporary storage for the two segmented sorts of one layer
// (pairs descending over nKvHeads * cap items, keys ascending over
// nKvHeads * stride items).
Status selection_temp_bytes(int64_t n_kv_heads, int64_t cap, int64_t stride, size_t* bytes);

// Top keep[h] rows of every head by score (higher first, the earlier row
// first among equal scores: CUB's radix sort is stable), written ascending
// to sel [nKvHeads, stride]. begin/end: device i32 [nKvHeads] segment
// offsets h * cap and h * cap + lens[h]; sel_begin/sel_end: h * stride and
// h * stride + keep[h]. Scratch: scores_out f32, ids / ids_out i32 [nKvHeads * cap], sel_tmp i32 [nKvHeads * stride].
struct SelectLaunch {
  const float* scores = nullptr;
  float* scores_out = nullptr;
  int32_t* ids = nullptr;
  int32_t* ids_out = nullptr;
  const int32_t* begin = nullptr;
  const int32_t* end = nullptr;
  const int32_t* keep = nullptr;
  const int32_t* sel_begin = nullptr;
  const int32_t* sel_end = nullptr;
  int64_t n_kv_heads = 0, cap = 0, stride = 0, max_keep = 0;
  int32_t* sel_tmp = nullptr;
  int32_t* sel = nullptr;
  void* temp = nullptr;
  size_t temp_bytes = 0;
};
Status launch_select(const SelectLaunch& s);

}  // namespace tp::cuda
