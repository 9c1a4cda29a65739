// DeviceKvCache::compress: every layer is planned first (budgets on the host,
// scores and top-k selection on the device, NaN scores rejected), nothing
// changes until all plans exist; then each layer's kept rows are gathered
// into scratch and copied back in place. Only the observation window goes to
// the device (once per layer), and, for adakv, the scores come back to the
// host for the layer-wide budget split.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "cuda_check.cuh"
#include "cuda_kv_kernels.h"
#include "cuda_kv_merge.h"
#include "cuda_kv_quant.h"
#include "cuda_kv_store.h"

namespace tp::cuda {
namespace {

// The scorers the device runs, by registry name.
bool device_scorer(const std::string& name, DeviceScorer* out) {
  if (name == "streamingllm") *out = DeviceScorer::StreamingLlm;
  else if (name == "knorm") *out = DeviceScorer::Knorm;
  else if (name == "h2o") *out = DeviceScorer::Mass;
  else if (name == "tova") *out = DeviceScorer::Tova;
  else if (name == "snapkv") *out = DeviceScorer::SnapKv;
  else return false;
  return true;
}

}  // namespace

struct DeviceKvCache::LayerPlan {
  int64_t layer = 0;
  bool noop = true;              // every head keeps every row
  std::vector<int64_t> keep;     // [nKvHeads]
  int64_t stride = 0, max_keep = 0;
  DeviceBlock sel, keep_dev;     // i32 [nKvHeads, stride], i32 [nKvHeads]
  bool merge = false;            // evicted rows fold into kept ones (cuda_kv_merge.h)
  DeviceBlock merged_rows, ranges, head_merges;  // i32 [nKvHeads, cap], [nKvHeads, stride, 2], [nKvHeads]
};

Status DeviceKvCache::plan_layer(const kv::CompressRequest& req, int64_t layer, LayerPlan* plan) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  DeviceLayer& L = layers_[layer];
  plan->layer = layer;
  plan->keep.assign(size_t(H), 0);
  for (int64_t h = 0; h < H; ++h) {
    int64_t k = kv::uniform_keep(req, L.len[h]);
    if (req.allocation == kv::Allocation::Pyramid) k = kv::pyramid_keep(L.len[h], k, req.pyramid_window, req.beta, layer, cfg_.n_layers);
    plan->keep[h] = k;
  }
  // Razor evicts by position (and may evict under the budget): before the no-op check, as on the CPU.
  if (req.allocation == kv::Allocation::Razor) return plan_razor(req, layer, plan);
  plan->noop = true;
  for (int64_t h = 0; h < H; ++h) plan->noop &= L.len[h] <= plan->keep[h];
  if (plan->noop) return Status::ok();

  DeviceScorer scorer = DeviceScorer::Knorm;
  device_scorer(req.scorer, &scorer);
  const int64_t rows = L.win_rows;
  const bool needs_queries = scorer == DeviceScorer::Tova || scorer == DeviceScorer::SnapKv;
  if (needs_queries && rows == 0) {
    return Status::invalid("policy: \"" + req.scorer + "\" needs queries, and layer " + num(layer) +
                           " has none: call attend() on it first (the cache remembers its last " + num(cfg_.window) + " queries)");
  }
  if (scorer == DeviceScorer::Mass && rows == 0 && !L.mass_seen) {
    return Status::invalid("policy: \"" + req.scorer + "\" needs accumulated attention: call attend() on layer " + num(layer) +
                           " with accumulateMass: true (or any attend, for its queries) first");
  }
  int64_t forced = 0;
  std::string what;
  if (scorer == DeviceScorer::StreamingLlm) {
    forced = req.options.sinks;
    what = num(forced) + " sink tokens";
  } else if (scorer == DeviceScorer::Mass) {
    forced = req.options.recent;
    what = num(forced) + " recent tokens";
  } else if (scorer == DeviceScorer::SnapKv) {
    forced = std::min(req.options.window, rows);
    what = "its observation window of " + num(forced) + " queries' tokens";
  }
  if (req.allocation != kv::Allocation::AdaKv) {
    for (int64_t h = 0; h < H; ++h) {
      if (plan->keep[h] < std::min(forced, L.len[h])) {
        return Status::invalid("budget: expected at least " + num(std::min(forced, L.len[h])) + " tokens per head (policy \"" + req.scorer +
                               "\" always keeps " + what + "), received " + num(plan->keep[h]) + " for layer " + num(layer) + " head " + num(h));
      }
    }
  }

  const int64_t cap = L.cap, n = H * cap, max_len = max_length(layer);
  if (n >= (int64_t(1) << 31)) {
    return Status::unsupported("KvCache on cuda: compress: nKvHeads * allocated rows must stay below 2^31 (received " + num(n) + ")");
  }
  // Scores read the rows in f32 for int caches (as the CPU's dequantized
  // copies), attention reads 16-bit rows.
  KvRows rows16, rows32;
  Status s = rows_of(L, layer, DType::F16, &rows16);
  if (s.is_ok()) s = rows_of(L, layer, DType::F32, &rows32);
  if (!s.is_ok()) return s;
  const KvLayerView view{rows32.k, rows32.dtype, H, cap, d, max_len, L.lens.as<int32_t>()};
  // The window mass uses the rows its lse came from (the attention reads 16-bit rows).
  const KvLayerView view16{rows16.k, rows16.dtype, H, cap, d, max_len, L.lens.as<int32_t>()};
  s = scores_.reserve(size_t(n) * 4, "cudaMalloc(scores)");
  if (s.is_ok()) s = scores_out_.reserve(size_t(n) * 4, "cudaMalloc(sorted scores)");
  if (s.is_ok()) s = ids_.reserve(size_t(n) * 4, "cudaMalloc(row ids)");
  if (s.is_ok()) s = ids_out_.reserve(size_t(n) * 4, "cudaMalloc(sorted row ids)");
  if (s.is_ok()) s = nan_count_.reserve(4, "cudaMalloc(nan count)");
  if (!s.is_ok()) return s;

  // Attention mass of the remembered queries, when the policy reads it.
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  float* mass = L.mass.as<float>();
  const bool window_mass = scorer == DeviceScorer::Tova || scorer == DeviceScorer::SnapKv || (scorer == DeviceScorer::Mass && !L.mass_seen);
  if (window_mass) {
    const int64_t nh = L.win_heads, W = cfg_.window;
    std::vector<float> hq(size_t(nh * rows * d));
    for (int64_t hh = 0; hh < nh; ++hh) {
      std::copy(L.window.begin() + hh * W * d, L.window.begin() + (hh * W + rows) * d, hq.begin() + hh * rows * d);
    }
    s = q_dev_.reserve(hq.size() * 4, "cudaMalloc(window queries)");
    if (s.is_ok()) s = out_dev_.reserve(hq.size() * 4, "cudaMalloc(window outputs)");
    if (s.is_ok()) s = lse_dev_.reserve(size_t(nh * rows) * 4, "cudaMalloc(window lse)");
    if (s.is_ok()) s = staging_.reserve(size_t(n) * 4, "cudaMalloc(window mass)");
    if (!s.is_ok()) return s;
    TP_CUDA_TRY(cudaMemcpy(q_dev_.as<float>(), hq.data(), hq.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(window queries)");
    s = run_attention(L, rows16, q_dev_.as<float>(), nh, rows, scale, true, out_dev_.as<float>(), lse_dev_.as<float>(), true);
    MassLaunch m;
    m.layer = view16;
    m.q = q_dev_.as<float>();
    m.lse = lse_dev_.as<float>();
    m.group = nh / H;
    m.rows = rows;
    m.last = scorer == DeviceScorer::Tova ? 1 : scorer == DeviceScorer::SnapKv ? req.options.window : 0;
    m.scale = scale;
    m.causal = true;
    m.accumulate = false;
    m.mass = staging_.as<float>();
    if (s.is_ok()) s = launch_key_mass(m);
    if (!s.is_ok()) return s;
    mass = staging_.as<float>();
  }
  ScoreLaunch sc;
  sc.layer = view;
  sc.scorer = scorer;
  sc.sinks = req.options.sinks;
  sc.recent = scorer == DeviceScorer::Mass ? req.options.recent : 0;
  sc.mass = mass;
  sc.group = std::max<int64_t>(L.win_heads / H, 1);
  sc.mass_scale = 1.0f / static_cast<float>(sc.group);
  sc.window = req.options.window;
  sc.rows = rows;
  sc.kernel = req.options.kernel;
  sc.max_pool = req.options.pooling == KvPooling::Max;
  sc.scores = scores_.as<float>();
  s = launch_scores(sc);
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemsetAsync(nan_count_.as<int32_t>(), 0, 4), "cudaMemsetAsync(nan count)");
  s = launch_count_nan(scores_.as<float>(), L.lens.as<int32_t>(), H, cap, max_len, nan_count_.as<int32_t>());
  if (!s.is_ok()) return s;
  int32_t nans = 0;
  TP_CUDA_TRY(cudaMemcpy(&nans, nan_count_.as<int32_t>(), 4, cudaMemcpyDeviceToHost), "cudaMemcpy(nan count)");
  if (nans > 0) return Status::invalid("layer " + num(layer) + ": " + num(nans) + " scores are NaN (NaN keys or queries in the cache?)");

  if (req.allocation == kv::Allocation::AdaKv) {
    std::vector<float> hs(static_cast<size_t>(n));
    TP_CUDA_TRY(cudaMemcpy(hs.data(), scores_.as<float>(), size_t(n) * 4, cudaMemcpyDeviceToHost), "cudaMemcpy(scores)");
    std::vector<const float*> ptrs(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; ++h) ptrs[h] = hs.data() + h * cap;
    std::vector<int64_t> counts;
    kv::adakv_counts(ptrs, L.len, plan->keep, req.alpha, counts);
    plan->keep = counts;
  }
  for (int64_t h = 0; h < H; ++h) plan->keep[h] = std::min(plan->keep[h], L.len[h]);
  plan->max_keep = *std::max_element(plan->keep.begin(), plan->keep.end());
  plan->stride = std::max<int64_t>(plan->max_keep, 1);

  // Segments: heads' live rows of the scores, and their kept prefixes.
  std::vector<int32_t> offs(size_t(4 * H) + 1);
  for (int64_t h = 0; h < H; ++h) {
    offs[h] = static_cast<int32_t>(h * cap);
    offs[H + h] = static_cast<int32_t>(h * cap + L.len[h]);
    offs[2 * H + h] = static_cast<int32_t>(h * plan->stride);
    offs[3 * H + h] = static_cast<int32_t>(h * plan->stride + plan->keep[h]);
  }
  std::vector<int32_t> keep32(plan->keep.begin(), plan->keep.end());
  size_t temp = 0;
  s = selection_temp_bytes(H, cap, plan->stride, &temp);
  if (s.is_ok()) s = sort_temp_.reserve(temp, "cudaMalloc(sort scratch)");
  if (s.is_ok()) s = offsets_.reserve(offs.size() * 4, "cudaMalloc(segment offsets)");
  if (s.is_ok()) s = sel_tmp_.reserve(size_t(H * plan->stride) * 4, "cudaMalloc(selection)");
  if (s.is_ok()) s = plan->sel.alloc(size_t(H * plan->stride) * 4, "cudaMalloc(kept rows)");
  if (s.is_ok()) s = plan->keep_dev.alloc(size_t(H) * 4, "cudaMalloc(kept counts)");
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(offsets_.as<int32_t>(), offs.data(), offs.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(segment offsets)");
  TP_CUDA_TRY(cudaMemcpy(plan->keep_dev.get(), keep32.data(), keep32.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(kept counts)");
  s = launch_iota_rows(ids_.as<int32_t>(), H, cap);
  if (!s.is_ok()) return s;
  SelectLaunch sl;
  sl.scores = scores_.as<float>();
  sl.scores_out = scores_out_.as<float>();
  sl.ids = ids_.as<int32_t>();
  sl.ids_out = ids_out_.as<int32_t>();
  sl.begin = offsets_.as<int32_t>();
  sl.end = offsets_.as<int32_t>() + H;
  sl.sel_begin = offsets_.as<int32_t>() + 2 * H;
  sl.sel_end = offsets_.as<int32_t>() + 3 * H;
  sl.keep = plan->keep_dev.as<int32_t>();
  sl.n_kv_heads = H;
  sl.cap = cap;
  sl.stride = plan->stride;
  sl.max_keep = plan->max_keep;
  sl.sel_tmp = sel_tmp_.as<int32_t>();
  sl.sel = plan->sel.as<int32_t>();
  sl.temp = sort_temp_.as<void>();
  sl.temp_bytes = sort_temp_.bytes();
  s = launch_select(sl);
  if (!s.is_ok() || !req.merge) return s;
  return plan_merge(req, layer, plan);
}

// Merge targets of a selected layer plan: nearest kept row by cosine, on the device.
Status DeviceKvCache::plan_merge(const kv::CompressRequest& req, int64_t layer, LayerPlan* plan) {
  const int64_t H = cfg_.n_kv_heads;
  DeviceLayer& L = layers_[layer];
  const int64_t cap = L.cap, n = H * cap;
  plan->merge = true;
  int64_t max_evicted = 0;
  std::vector<int32_t> offs(size_t(3 * H));
  for (int64_t h = 0; h < H; ++h) {
    max_evicted = std::max(max_evicted, L.len[h] - plan->keep[h]);
    offs[h] = static_cast<int32_t>(h * cap);
    offs[H + h] = static_cast<int32_t>(h * cap + L.len[h]);
    offs[2 * H + h] = static_cast<int32_t>(h * cap + L.len[h] - plan->keep[h]);
  }
  size_t temp = 0;
  Status s = merge_temp_bytes(H, cap, &temp);
  if (s.is_ok()) s = sort_temp_.reserve(temp, "cudaMalloc(sort scratch)");
  if (s.is_ok()) s = merge_offsets_.reserve(offs.size() * 4, "cudaMalloc(merge offsets)");
  if (s.is_ok()) s = merge_scratch_.reserve(size_t(4 * n) * 4 + size_t(H * plan->stride) * 4, "cudaMalloc(merge scratch)");
  if (s.is_ok()) s = plan->merged_rows.alloc(size_t(n) * 4, "cudaMalloc(merged rows)");
  if (s.is_ok()) s = plan->ranges.alloc(size_t(H * plan->stride) * 8, "cudaMalloc(merge ranges)");
  if (s.is_ok()) s = plan->head_merges.alloc(size_t(H) * 4, "cudaMalloc(head merges)");
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(merge_offsets_.as<int32_t>(), offs.data(), offs.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(merge offsets)");
  MergePlanView v;
  v.n_kv_heads = H;
  v.cap = cap;
  v.stride = plan->stride;
  v.head_dim = cfg_.head_dim;
  v.max_len = max_length(layer);
  v.max_keep = plan->max_keep;
  v.max_evicted = max_evicted;
  KvRows rows32;
  Status sr = rows_of(L, layer, DType::F32, &rows32);
  if (!sr.is_ok()) return sr;
  v.dtype = rows32.dtype;
  v.k = rows32.k;
  v.lens = L.lens.as<int32_t>();
  v.sel = plan->sel.as<int32_t>();
  v.keep = plan->keep_dev.as<int32_t>();
  v.row_begin = merge_offsets_.as<int32_t>();
  v.row_end = merge_offsets_.as<int32_t>() + H;
  v.ev_end = merge_offsets_.as<int32_t>() + 2 * H;
  v.threshold = req.merge_threshold;
  v.merged_rows = plan->merged_rows.as<int32_t>();
  v.ranges = plan->ranges.as<int32_t>();
  v.head_merges = plan->head_merges.as<int32_t>();
  MergeScratch ms;
  int32_t* base = merge_scratch_.as<int32_t>();
  ms.a = base;
  ms.b = base + n;
  ms.c = base + 2 * n;
  ms.d = base + 3 * n;
  ms.inv_norm = reinterpret_cast<float*>(base + 4 * n);
  ms.temp = sort_temp_.as<void>();
  ms.temp_bytes = sort_temp_.bytes();
  return launch_merge_plan(v, ms);
}

// RazorAttention (kv_cache_compress.cpp razor_plan): per head, on the host;
// every evicted row merges into the compensation row (the slot after the sinks).
Status DeviceKvCache::plan_razor(const kv::CompressRequest& req, int64_t layer, LayerPlan* plan) {
  const int64_t H = cfg_.n_kv_heads;
  DeviceLayer& L = layers_[layer];
  std::vector<std::vector<int32_t>> keep(static_cast<size_t>(H)), evicted(static_cast<size_t>(H));
  std::vector<int64_t> slot(size_t(H), -1);
  for (int64_t h = 0; h < H; ++h) {
    const int64_t n = L.len[h];
    const bool retrieval = !req.retrieval.empty() && req.retrieval[layer * H + h] != 0;
    const int64_t budget = retrieval ? n : plan->keep[h];
    int64_t recent = req.razor_recent > 0 ? req.razor_recent : std::max<int64_t>(0, budget - req.razor_sinks - 1);
    const int64_t sinks = std::min(req.razor_sinks, n);
    if (sinks + recent + 1 >= n) {
      for (int64_t r = 0; r < n; ++r) keep[h].push_back(static_cast<int32_t>(r));
      continue;
    }
    for (int64_t r = 0; r < sinks; ++r) keep[h].push_back(static_cast<int32_t>(r));
    slot[h] = static_cast<int64_t>(keep[h].size());
    keep[h].push_back(static_cast<int32_t>(sinks));
    for (int64_t r = sinks + 1; r < n - recent; ++r) evicted[h].push_back(static_cast<int32_t>(r));
    for (int64_t r = n - recent; r < n; ++r) keep[h].push_back(static_cast<int32_t>(r));
  }
  plan->noop = true;
  plan->max_keep = 0;
  for (int64_t h = 0; h < H; ++h) {
    plan->keep[h] = static_cast<int64_t>(keep[h].size());
    plan->noop &= evicted[h].empty();
    plan->max_keep = std::max(plan->max_keep, plan->keep[h]);
  }
  if (plan->noop) return Status::ok();
  plan->stride = std::max<int64_t>(plan->max_keep, 1);
  plan->merge = true;
  const int64_t cap = L.cap;
  std::vector<int32_t> sel(size_t(H * plan->stride), 0), rows(size_t(H * cap), 0), ranges(size_t(H * plan->stride) * 2, 0);
  std::vector<int32_t> keep32(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    std::copy(keep[h].begin(), keep[h].end(), sel.begin() + h * plan->stride);
    std::copy(evicted[h].begin(), evicted[h].end(), rows.begin() + h * cap);
    keep32[h] = static_cast<int32_t>(keep[h].size());
    if (slot[h] >= 0) ranges[size_t((h * plan->stride + slot[h]) * 2 + 1)] = static_cast<int32_t>(evicted[h].size());
  }
  Status s = plan->sel.alloc(sel.size() * 4, "cudaMalloc(kept rows)");
  if (s.is_ok()) s = plan->keep_dev.alloc(keep32.size() * 4, "cudaMalloc(kept counts)");
  if (s.is_ok()) s = plan->merged_rows.alloc(rows.size() * 4, "cudaMalloc(merged rows)");
  if (s.is_ok()) s = plan->ranges.alloc(ranges.size() * 4, "cudaMalloc(merge ranges)");
  if (s.is_ok()) s = plan->head_merges.alloc(size_t(H) * 4, "cudaMalloc(head merges)");
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(plan->sel.get(), sel.data(), sel.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(kept rows)");
  TP_CUDA_TRY(cudaMemcpy(plan->keep_dev.get(), keep32.data(), keep32.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(kept counts)");
  TP_CUDA_TRY(cudaMemcpy(plan->merged_rows.get(), rows.data(), rows.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(merged rows)");
  TP_CUDA_TRY(cudaMemcpy(plan->ranges.get(), ranges.data(), ranges.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(merge ranges)");
  return launch_head_merges_from_ranges(plan->ranges.as<int32_t>(), H, plan->stride, plan->max_keep, plan->head_merges.as<int32_t>());
}

// The compaction scratch for the largest plan: reserved before any layer
// changes, so running out of memory leaves the whole cache as it was.
Status DeviceKvCache::reserve_apply(const std::vector<LayerPlan>& plans) {
  int64_t rows = 0;
  for (const LayerPlan& p : plans) {
    if (!p.noop) rows = std::max(rows, cfg_.n_kv_heads * p.stride);
  }
  const size_t rb = quantized() ? size_t(cfg_.head_dim) * 4 : row_bytes();  // int caches compact f32 rows
  Status s = gather_k_.reserve(size_t(rows) * rb, "cudaMalloc(compaction k)");
  if (s.is_ok()) s = gather_v_.reserve(size_t(rows) * rb, "cudaMalloc(compaction v)");
  if (s.is_ok()) s = gather_pos_.reserve(size_t(rows) * 4, "cudaMalloc(compaction positions)");
  if (s.is_ok()) s = gather_mass_.reserve(size_t(rows) * 4, "cudaMalloc(compaction mass)");
  if (s.is_ok()) s = gather_count_.reserve(size_t(rows) * 4, "cudaMalloc(compaction counts)");
  if (s.is_ok() && quantized()) {
    // apply_plan dequantizes each layer to f32 and re-quantizes it.
    int64_t cap = 0;
    for (const LayerPlan& p : plans) {
      if (!p.noop) cap = std::max(cap, layers_[p.layer].cap);
    }
    const size_t bytes = size_t(cfg_.n_kv_heads * cap * cfg_.head_dim) * 4;
    s = deq32_k_.reserve(bytes, "cudaMalloc(dequantized k)");
    if (s.is_ok()) s = deq32_v_.reserve(bytes, "cudaMalloc(dequantized v)");
    if (s.is_ok()) s = quant_meta_.reserve(size_t(4 * cfg_.n_kv_heads) * 4, "cudaMalloc(requantize groups)");
  }
  return s;
}

Status DeviceKvCache::apply_plan(DeviceLayer& L, const LayerPlan& plan) {
  if (plan.noop) return Status::ok();
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  KvRows rows;
  Status s = rows_of(L, plan.layer, DType::F32, &rows);  // float caches: the stored rows
  if (!s.is_ok()) return s;
  const size_t rb = size_t(d) * dtype_size(rows.dtype);
  GatherLaunch g;
  g.k = rows.k;
  g.v = rows.v;
  g.row_bytes = static_cast<int64_t>(rb);
  g.pos = L.pos.as<int32_t>();
  g.mass = L.mass.as<float>();
  g.count = L.count.as<float>();
  g.n_kv_heads = H;
  g.cap = L.cap;
  g.head_dim = d;
  g.sel = plan.sel.as<int32_t>();
  g.keep = plan.keep_dev.as<int32_t>();
  g.stride = plan.stride;
  g.max_keep = plan.max_keep;
  g.k_out = gather_k_.as<void>();
  g.v_out = gather_v_.as<void>();
  g.pos_out = gather_pos_.as<int32_t>();
  g.mass_out = gather_mass_.as<float>();
  g.count_out = gather_count_.as<float>();
  s = launch_gather_rows(g);
  if (s.is_ok() && plan.merge) {
    MergeApply ma;
    ma.n_kv_heads = H;
    ma.cap = L.cap;
    ma.stride = plan.stride;
    ma.head_dim = d;
    ma.max_keep = plan.max_keep;
    ma.dtype = rows.dtype;
    ma.k = rows.k;
    ma.v = rows.v;
    ma.mass = L.mass.as<float>();
    ma.count = L.count.as<float>();
    ma.sel = plan.sel.as<int32_t>();
    ma.keep = plan.keep_dev.as<int32_t>();
    ma.merged_rows = plan.merged_rows.as<int32_t>();
    ma.ranges = plan.ranges.as<int32_t>();
    ma.head_merges = plan.head_merges.as<int32_t>();
    ma.k_out = gather_k_.as<void>();
    ma.v_out = gather_v_.as<void>();
    ma.mass_out = gather_mass_.as<float>();
    ma.count_out = gather_count_.as<float>();
    s = launch_merge_apply(ma);
  }
  if (!s.is_ok()) return s;
  const int64_t m = plan.max_keep;
  if (quantized()) {
    s = requantize(L, plan.keep, plan.stride);
    if (!s.is_ok()) {
      L.len = plan.keep;  // roll forward: blocks and tails may have changed
      return s;
    }
  }
  if (m > 0) {
    const size_t S = size_t(plan.stride), C = size_t(L.cap);
    if (!quantized()) {
      TP_CUDA_TRY(cudaMemcpy2DAsync(L.k.get(), C * rb, gather_k_.as<void>(), S * rb, m * rb, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(compact k)");
      TP_CUDA_TRY(cudaMemcpy2DAsync(L.v.get(), C * rb, gather_v_.as<void>(), S * rb, m * rb, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(compact v)");
    }
    TP_CUDA_TRY(cudaMemcpy2DAsync(L.pos.get(), C * 4, gather_pos_.as<void>(), S * 4, m * 4, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(compact positions)");
    TP_CUDA_TRY(cudaMemcpy2DAsync(L.mass.get(), C * 4, gather_mass_.as<void>(), S * 4, m * 4, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(compact mass)");
    TP_CUDA_TRY(cudaMemcpy2DAsync(L.count.get(), C * 4, gather_count_.as<void>(), S * 4, m * 4, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(compact counts)");
  }
  if (plan.merge) L.weighted = true;
  const std::vector<int64_t> old = L.len;
  L.len = plan.keep;
  s = upload_lens(L);
  if (!s.is_ok() && !quantized()) L.len = old;  // the device still has the old lengths (int caches: rolled forward)
  return s;
}

// Int caches after compaction (kv_cache_compress.cpp): the kept rows' full
// groups beyond `residual` become blocks again, from the first kept row; the
// rest is the f16 tail. Reads the gathered f32 rows [nKvHeads, stride, headDim].
Status DeviceKvCache::requantize(DeviceLayer& L, const std::vector<int64_t>& keep, int64_t stride) {
  const int64_t H = cfg_.n_kv_heads, g = cfg_.group;
  std::vector<int32_t> meta(static_cast<size_t>(4 * H));  // groups, first block (0), tail start, tail rows
  std::vector<int64_t> blocks(static_cast<size_t>(H));
  int64_t max_groups = 0, max_tail = 0;
  for (int64_t h = 0; h < H; ++h) {
    // A head that keeps every row (and so merges nothing) stays as it is, as
    // on the CPU: quantizing dequantized rows again would change its bytes.
    const bool untouched = keep[h] == L.len[h];
    const int64_t nb = untouched ? L.n_blocks[h] : keep[h] > cfg_.residual ? (keep[h] - cfg_.residual) / g : 0;
    blocks[h] = nb;
    meta[h] = untouched ? 0 : static_cast<int32_t>(nb);
    meta[H + h] = 0;
    meta[2 * H + h] = static_cast<int32_t>(nb * g);
    meta[3 * H + h] = untouched ? 0 : static_cast<int32_t>(keep[h] - nb * g);
    max_groups = std::max(max_groups, nb);
    max_tail = std::max(max_tail, keep[h] - nb * g);
  }
  // quant_meta_ was reserved by reserve_apply.
  TP_CUDA_TRY(cudaMemcpy(quant_meta_.as<int32_t>(), meta.data(), meta.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(requantize groups)");
  Status s = quantize_into(L, gather_k_.as<void>(), gather_v_.as<void>(), true, stride, max_groups);
  const int32_t* first = quant_meta_.as<int32_t>() + 2 * H;
  const int32_t* rows = quant_meta_.as<int32_t>() + 3 * H;
  if (s.is_ok()) s = launch_rows_to_f16(gather_k_.as<float>(), stride, first, rows, H, max_tail, cfg_.head_dim, L.k.as<uint16_t>(), L.kv_rows);
  if (s.is_ok()) s = launch_rows_to_f16(gather_v_.as<float>(), stride, first, rows, H, max_tail, cfg_.head_dim, L.v.as<uint16_t>(), L.kv_rows);
  L.n_blocks = blocks;  // roll forward: the kernels above may have run
  if (!s.is_ok()) return s;
  return upload_blocks(L);
}

Status DeviceKvCache::compress(const kv::CompressRequest& req, kv::CompressReport* report) {
  const int64_t H = cfg_.n_kv_heads;
  DeviceScorer scorer;
  const bool razor = req.allocation == kv::Allocation::Razor;
  // What the device does not run (a known policy without device kernels, draft queries), then the shared checks.
  if (!razor && find_kv_policy(req.scorer.c_str()) && !device_scorer(req.scorer, &scorer)) {
    return Status::unsupported("KvCache on cuda: policy \"" + req.scorer +
                               "\" runs on the CPU only; the device scores streamingllm, knorm, h2o, tova and snapkv");
  }
  if (!req.drafts.empty()) return Status::unsupported("KvCache on cuda: draft queries (speckv) run on the CPU only");
  if (req.options.window < 1 || req.options.kernel < 1 || req.options.sinks < 0 || req.options.recent < 0) {
    return Status::invalid("policy: expected window >= 1, kernel >= 1, sinks >= 0 and recent >= 0");
  }
  std::vector<int64_t> layers;
  const Status checked = kv::check_compress(cfg_, req, &layers);
  if (!checked.is_ok()) return checked;
  report->tokens_before = total_tokens();
  report->bytes_before = memory_bytes();
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  std::vector<LayerPlan> plans(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    Status s = Status::ok();
    try {
      s = plan_layer(req, layers[i], &plans[i]);
    } catch (const std::bad_alloc&) {
      s = Status::out_of_memory("KvCache.compress: out of host memory while planning");
    }
    if (!s.is_ok()) return s;
  }
  Status s = sync_device("KvCache.compress (plan)");
  if (s.is_ok()) s = reserve_apply(plans);
  if (!s.is_ok()) return s;
  const auto t1 = Clock::now();
  int64_t moved = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    s = apply_plan(layers_[layers[i]], plans[i]);
    if (!s.is_ok()) return s;
    // Quest summaries of a compacted layer: rebuilt from its new rows.
    if (!plans[i].noop) quest_after_change(layers_[layers[i]], layers[i], std::vector<int64_t>(size_t(H), 0));
    // Device traffic: every kept row of a compacted layer is gathered into
    // scratch and copied back (read + write, twice): K, V, position, mass, count.
    if (!plans[i].noop && !quantized()) {  // int caches re-quantize (0, like the CPU)
      for (int64_t h = 0; h < H; ++h) moved += 4 * plans[i].keep[h] * (2 * int64_t(row_bytes()) + 12);
    }
  }
  s = sync_device("KvCache.compress (apply)");
  if (!s.is_ok()) return s;
  const auto t2 = Clock::now();
  report->tokens_after = total_tokens();
  report->bytes_after = memory_bytes();
  report->plan_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  report->apply_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  report->release_ms = 0;  // device buffers keep their capacity (no reallocation per step)
  report->bytes_moved = moved;
  return Status::ok();
}

}  // namespace tp::cuda
