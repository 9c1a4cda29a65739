// Compression planning shared by the KV cache: per-head budgets (uniform,
// PyramidKV layer budgets, AdaKV head-adaptive budgets, RazorAttention
// retrieval heads), top-k selection, and merge targets for evicted tokens.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/status.h"
#include "kv_policy.h"

namespace tp::kv {

enum class Allocation : int { Uniform = 0, Pyramid = 1, AdaKv = 2, Razor = 3 };

struct CompressRequest {
  std::string scorer = "snapkv";  // a policy of the registry (kv_policy.h)
  KvScoreParams options;          // the scorer's option fields (sinks, window, ...)
  Allocation allocation = Allocation::Uniform;
  int64_t keep = -1;              // tokens per head (the average, for adaptive
  double ratio = -1.0;            //   allocations), or the fraction removed
  double beta = 20.0;             // pyramid
  int64_t pyramid_window = 64;    // pyramid
  double alpha = 0.2;             // adakv safeguard
  std::vector<uint8_t> retrieval; // razor: [nLayers * nKvHeads], 1 = keep all
  int64_t razor_sinks = 4, razor_recent = 0;  // razor: recent 0 = use keep
  bool merge = false;             // fold evicted tokens into their nearest kept one
  double merge_threshold = -2.0;  // merge only when that cosine similarity >= this (EMS); else drop
  std::vector<int64_t> layers;    // empty: every layer
};

// What compression does to one (layer, head).
struct HeadPlan {
  std::vector<int32_t> keep;     // kept rows, ascending
  std::vector<int32_t> evicted;  // evicted rows, ascending
  std::vector<int32_t> target;   // per evicted row: index into keep to merge into, or -1 (drop)
};

// Tokens the budget keeps of a head of n tokens (keep or ratio, kvpress rounding).
int64_t uniform_keep(const CompressRequest& r, int64_t n);

// PyramidKV (kvpress get_layer_budget): more tokens in lower layers, the
// layer budgets averaging `target`; falls back to `target` when the pyramid
// does not fit in n tokens.
int64_t pyramid_keep(int64_t n, int64_t target, int64_t window, double beta, int64_t layer, int64_t n_layers);

// AdaKV (kvpress AdaKVPress): the top floor(alpha * keep[h]) tokens of every
// head are protected, then the top sum(keep) scores of the whole layer win.
// Writes the per-head counts. scores[h] has lens[h] entries.
void adakv_counts(const std::vector<const float*>& scores, const std::vector<int64_t>& lens,
                  const std::vector<int64_t>& keep, double alpha, std::vector<int64_t>& counts);

// Top `keep` rows of one head (higher score first, earlier row among equal
// scores), ascending, plus the evicted rows. Rejects NaN scores.
Status select_rows(const float* scores, int64_t n, int64_t keep, HeadPlan& plan);

// Merge targets: each evicted row goes to the kept row whose key is most
// similar (cosine), or nowhere (-1, dropped) when that similarity is below
// `threshold`. k: f32 [n, headDim].
void nearest_targets(const float* k, int64_t head_dim, double threshold, HeadPlan& plan);

}  // namespace tp::kv
