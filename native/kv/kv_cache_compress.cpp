// KvCache::compress: plan every layer first (scores, budgets, selection,
// merge targets) without touching the cache, then merge and compact each
// head in place. A request that fails validation or planning changes nothing.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "../core/checked_math.h"
#include "../core/half.h"
#include "../core/thread_pool.h"
#include "kv_cache.h"
#include "kv_common.h"

namespace tp::kv {
namespace {

constexpr int64_t kPrefetchRows = 8;  // compaction: prefetch distance in kept rows

void store_row(void* dst, DType t, int64_t off, const float* x, int64_t d) {
  switch (t) {
    case DType::F32: std::memcpy(static_cast<float*>(dst) + off, x, static_cast<size_t>(d) * sizeof(float)); break;
    case DType::F16: for (int64_t c = 0; c < d; ++c) static_cast<uint16_t*>(dst)[off + c] = f32_to_f16(x[c]); break;
    case DType::BF16: for (int64_t c = 0; c < d; ++c) static_cast<uint16_t*>(dst)[off + c] = f32_to_bf16(x[c]); break;
  }
}

// RazorAttention on a non-retrieval head: sinks + the newest rows + one
// compensation row (the first evicted row's slot) that every evicted row
// merges into, so it carries their mean key and value.
void razor_plan(int64_t n, int64_t keep, int64_t sinks, int64_t recent, HeadPlan& plan) {
  plan.keep.clear();
  plan.evicted.clear();
  plan.target.clear();
  if (recent <= 0) recent = std::max<int64_t>(0, keep - sinks - 1);
  sinks = std::min(sinks, n);
  if (sinks + recent + 1 >= n) {
    for (int64_t r = 0; r < n; ++r) plan.keep.push_back(static_cast<int32_t>(r));
    return;
  }
  for (int64_t r = 0; r < sinks; ++r) plan.keep.push_back(static_cast<int32_t>(r));
  const int32_t slot = static_cast<int32_t>(plan.keep.size());
  plan.keep.push_back(static_cast<int32_t>(sinks));  // compensation row
  for (int64_t r = sinks + 1; r < n - recent; ++r) plan.evicted.push_back(static_cast<int32_t>(r));
  for (int64_t r = n - recent; r < n; ++r) plan.keep.push_back(static_cast<int32_t>(r));
  plan.target.assign(plan.evicted.size(), slot);
}

}  // namespace

Status KvCache::plan_layer(const CompressRequest& req, int64_t layer, std::vector<HeadPlan>& plans) const {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  plans.assign(static_cast<size_t>(H), HeadPlan());
  std::vector<int64_t> lens(static_cast<size_t>(H)), keep(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    lens[h] = head(layer, h).len;
    keep[h] = uniform_keep(req, lens[h]);
    if (req.allocation == Allocation::Pyramid) {
      keep[h] = pyramid_keep(lens[h], keep[h], req.pyramid_window, req.beta, layer, cfg_.n_layers);
    }
  }
  if (req.allocation == Allocation::Razor) {
    for (int64_t h = 0; h < H; ++h) {
      const bool retrieval = !req.retrieval.empty() && req.retrieval[layer * H + h] != 0;
      razor_plan(lens[h], retrieval ? lens[h] : keep[h], req.razor_sinks, req.razor_recent, plans[h]);
    }
    return Status::ok();
  }

  // Nothing to evict (for example an empty layer): keep every row, need no scores.
  if (std::equal(lens.begin(), lens.end(), keep.begin(), [](int64_t n, int64_t k) { return n <= k; })) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t r = 0; r < lens[h]; ++r) plans[h].keep.push_back(static_cast<int32_t>(r));
    }
    return Status::ok();
  }

  int64_t n_heads = 0, rows = 0;
  const std::vector<float>& win = window(layer, &n_heads, &rows);
  const KvPolicy* policy = find_kv_policy(req.scorer.c_str());
  const bool layer_draft = !req.drafts.empty() && req.drafts[layer].q;
  if (policy->needs_draft && !layer_draft) {
    return Status::invalid("policy: \"" + req.scorer + "\" needs draft queries: pass opts.draftQueries[" + num(layer) + "] to compress()");
  }
  if (layer_draft && rows > 0 && req.drafts[layer].n_heads != n_heads) {
    return Status::invalid("draftQueries[" + num(layer) + "]: expected nHeads = " + num(n_heads) + " (the remembered queries'), received " + num(req.drafts[layer].n_heads));
  }
  if (policy->needs_queries && rows == 0) {
    return Status::invalid("policy: \"" + req.scorer + "\" needs queries, and layer " + num(layer) +
                           " has none: call attend() on it first (the cache remembers its last " + num(cfg_.window) + " queries)");
  }
  if (policy->accepts_key_mass && rows == 0 && !has_mass(layer)) {
    return Status::invalid("policy: \"" + req.scorer + "\" needs accumulated attention: call attend() on layer " + num(layer) +
                           " with accumulateMass: true (or any attend, for its queries) first");
  }

  // The budget must hold what the policy always keeps (+inf scores).
  int64_t forced = 0;
  std::string what;
  const std::string& name = req.scorer;
  if (name == "streamingllm" || name == "expected_attention") {
    forced = req.options.sinks;
    what = std::to_string(forced) + " sink tokens";
  } else if (name == "h2o") {
    forced = req.options.recent;
    what = std::to_string(forced) + " recent tokens";
  } else if (name == "snapkv" || name == "speckv" || name == "ems") {
    forced = std::min(req.options.window, rows);
    what = "its observation window of " + std::to_string(forced) + " queries' tokens";
  }
  if (req.allocation != Allocation::AdaKv) {
    for (int64_t h = 0; h < H; ++h) {
      if (keep[h] < std::min(forced, lens[h])) {
        return Status::invalid("budget: expected at least " + num(std::min(forced, lens[h])) + " tokens per head (policy \"" + name +
                               "\" always keeps " + what + "), received " + num(keep[h]) + " for layer " + num(layer) + " head " + num(h));
      }
    }
  }

  std::vector<std::vector<float>> scores(static_cast<size_t>(H));
  std::vector<Status> status(static_cast<size_t>(H));
  ThreadPool::instance().parallel_for(H, [&](int64_t h, int) {
    try {
      const HeadStore& s = head(layer, h);
      std::vector<float> kf, vf;
      KvScoreParams p = req.options;
      p.n_kv_heads = 1;
      p.n_kv = s.len;
      p.head_dim = d;
      HeadRows hr;
      status[h] = head_rows(layer, h, kf, vf, &hr);
      if (!status[h].is_ok()) return;
      p.k = hr.k;
      p.v = hr.v;
      p.k_dtype = p.v_dtype = hr.dtype;
      p.k_head_stride = p.v_head_stride = s.len * d;
      p.k_row_stride = p.v_row_stride = d;
      p.k_len = p.v_len = s.len * d;
      const int64_t use = std::min(rows, s.len);
      if (use > 0) {
        const int64_t group = n_heads / H;
        const int64_t W = cfg_.window;
        const int64_t off = h * group * W * d + (rows - use) * d;
        p.n_heads = group;
        p.n_q = use;
        p.q = win.data() + off;
        p.q_head_stride = W * d;
        p.q_row_stride = d;
        p.q_len = static_cast<int64_t>(win.size()) - off;
      } else {
        p.n_heads = 0;
        p.n_q = 0;
        p.q = nullptr;
        p.q_len = 0;
      }
      const bool has_draft = !req.drafts.empty() && req.drafts[layer].q;
      if (has_draft) {
        const CompressRequest::Draft& dr = req.drafts[layer];
        const int64_t group = dr.n_heads / H;
        const int64_t off = h * group * dr.head_stride;
        if (use == 0) {
          p.n_heads = group;
        }
        p.draft_q = dr.q + off;
        p.n_draft = dr.n_draft;
        p.draft_head_stride = dr.head_stride;
        p.draft_row_stride = dr.row_stride;
        p.draft_q_len = dr.len - off;
      }
      if (has_mass(layer)) {
        p.key_mass = s.mass.data();
        p.key_mass_len = s.len;
      } else {
        p.key_mass = nullptr;
        p.key_mass_len = 0;
      }
      // Random scores continue one stream across heads (as over a dense [nKvHeads, nKv] tensor).
      if (req.scorer == "random") p.seed += static_cast<uint64_t>(h) * static_cast<uint64_t>(s.len) * 0x9e3779b97f4a7c15ull;
      scores[h].assign(static_cast<size_t>(s.len), 0.0f);
      p.scores = scores[h].data();
      p.scores_len = s.len;
      if (s.len > 0) status[h] = run_kv_score(req.scorer.c_str(), p);
    } catch (const std::bad_alloc&) {
      status[h] = Status::out_of_memory("KvCache.compress: out of memory while scoring");
    }
  });
  for (const Status& s : status) {
    if (!s.is_ok()) return s;
  }

  if (req.allocation == Allocation::AdaKv) {
    std::vector<const float*> ptrs(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; ++h) ptrs[h] = scores[h].data();
    std::vector<int64_t> counts;
    adakv_counts(ptrs, lens, keep, req.alpha, counts);
    keep = counts;
  }
  for (int64_t h = 0; h < H; ++h) {
    const Status st = select_rows(scores[h].data(), lens[h], keep[h], plans[h]);
    if (!st.is_ok()) return Status::invalid("layer " + num(layer) + " head " + num(h) + ": " + st.message);
  }
  if (req.merge) {
    ThreadPool::instance().parallel_for(H, [&](int64_t h, int) {
      try {
        std::vector<float> kf, vf;
        status[h] = read_head(layer, h, kf, vf);
        if (status[h].is_ok()) nearest_targets(kf.data(), d, req.merge_threshold, plans[h]);
      } catch (const std::bad_alloc&) {
        status[h] = Status::out_of_memory("KvCache.compress: out of memory while merging");
      }
    });
    for (const Status& s : status) {
      if (!s.is_ok()) return s;
    }
  }
  return Status::ok();
}

// Merges evicted rows into their targets (count-weighted means of k and v;
// mass adds up) and compacts the head in place. k, v: per-worker f32 scratch
// with room for the head (no allocation happens here).
void KvCache::apply_plan(int64_t layer, int64_t h, const HeadPlan& plan, std::vector<float>& k, std::vector<float>& v) {
  HeadStore& s = head(layer, h);
  const int64_t d = cfg_.head_dim;
  const bool merging = std::any_of(plan.target.begin(), plan.target.end(), [](int32_t t) { return t >= 0; });
  const bool need_f32 = merging || quantized();
  if (plan.keep.size() == static_cast<size_t>(s.len) && !merging) return;
  if (need_f32) read_head(layer, h, k, v);  // capacity reserved: cannot fail
  if (merging) {
    // weight[j] = count of kept row j plus the counts merged into it.
    auto& weight = s.count;  // read counts of evicted rows before overwriting
    const size_t nk = plan.keep.size();
    for (size_t j = 0; j < nk; ++j) {
      const int64_t r = plan.keep[j];
      for (int64_t c = 0; c < d; ++c) {
        k[r * d + c] *= weight[r];
        v[r * d + c] *= weight[r];
      }
    }
    for (size_t e = 0; e < plan.evicted.size(); ++e) {
      if (plan.target[e] < 0) continue;
      const int64_t src = plan.evicted[e], dst = plan.keep[plan.target[e]];
      const float w = weight[src];
      for (int64_t c = 0; c < d; ++c) {
        k[dst * d + c] += w * k[src * d + c];
        v[dst * d + c] += w * v[src * d + c];
      }
      weight[dst] += w;
      s.mass[dst] += s.mass[src];
    }
    for (size_t j = 0; j < nk; ++j) {
      const int64_t r = plan.keep[j];
      const float inv = 1.0f / weight[r];
      for (int64_t c = 0; c < d; ++c) {
        k[r * d + c] *= inv;
        v[r * d + c] *= inv;
      }
    }
  }
  const int64_t n = static_cast<int64_t>(plan.keep.size());
  if (!need_f32) {
    keep_rows(s, 0, plan.keep.data(), n);  // float rows move where they lie
    return;
  }
  for (int64_t j = 0; j < n; ++j) {
    const int64_t r = plan.keep[j];
    if (r != j) {
      std::memmove(k.data() + j * d, k.data() + r * d, static_cast<size_t>(d) * sizeof(float));
      std::memmove(v.data() + j * d, v.data() + r * d, static_cast<size_t>(d) * sizeof(float));
    }
    if (!quantized()) {
      store_row(s.k.data(), row_dtype(), j * d, k.data() + j * d, d);
      store_row(s.v.data(), row_dtype(), j * d, v.data() + j * d, d);
    }
    s.pos[j] = s.pos[r];
    s.mass[j] = s.mass[r];
    s.count[j] = s.count[r];
  }
  s.pos.resize(static_cast<size_t>(n));
  s.mass.resize(static_cast<size_t>(n));
  s.count.resize(static_cast<size_t>(n));
  if (quantized()) {
    // Re-quantize: full groups of the kept rows become blocks, the rest the f16 tail.
    const int64_t g = cfg_.group;
    const int64_t nb = n > cfg_.residual ? (n - cfg_.residual) / g : 0;
    for (int64_t b = 0; b < nb; ++b) {
      quantize_block(qlayout_, k.data() + b * g * d, v.data() + b * g * d, s.blocks.data() + b * qlayout_.block_bytes);
    }
    s.n_blocks = nb;
    s.shadow_from = nb;  // the blocks came from dequantized rows: no f16 originals
    for (int64_t r = nb * g; r < n; ++r) {
      store_row(s.k.data(), DType::F16, (r - nb * g) * d, k.data() + r * d, d);
      store_row(s.v.data(), DType::F16, (r - nb * g) * d, v.data() + r * d, d);
    }
  }
  s.len = n;
}

void KvCache::keep_rows(HeadStore& s, int64_t first, const int32_t* keep, int64_t n) {
  const size_t rb = static_cast<size_t>(row_bytes());
  for (int64_t j = 0; j < n; ++j) {
    const int64_t to = first + j, r = keep[j];
    if (r != to) {
      // Kept rows are scattered: fetch the ones a few rows ahead meanwhile.
      if (j + kPrefetchRows < n) {
        const int32_t ra = keep[j + kPrefetchRows];
        const size_t ahead = static_cast<size_t>(ra) * rb;
        for (size_t off = 0; off < rb; off += 64) {
          __builtin_prefetch(s.k.data() + ahead + off);
          __builtin_prefetch(s.v.data() + ahead + off);
        }
        __builtin_prefetch(s.pos.data() + ra);
        __builtin_prefetch(s.mass.data() + ra);
        __builtin_prefetch(s.count.data() + ra);
      }
      std::memcpy(s.k.data() + to * rb, s.k.data() + r * rb, rb);  // r > to: no overlap
      std::memcpy(s.v.data() + to * rb, s.v.data() + r * rb, rb);
    }
    s.pos[to] = s.pos[r];
    s.mass[to] = s.mass[r];
    s.count[to] = s.count[r];
  }
  const size_t len = static_cast<size_t>(first + n);
  s.pos.resize(len);
  s.mass.resize(len);
  s.count.resize(len);
  s.len = first + n;
}

Status check_compress(const CacheConfig& cfg, const CompressRequest& req, std::vector<int64_t>* resolved) {
  const int64_t H = cfg.n_kv_heads;
  if (req.allocation != Allocation::Razor && !find_kv_policy(req.scorer.c_str())) {
    return Status::invalid("policy: expected a known policy name, received \"" + req.scorer + "\"");
  }
  if (req.keep < 0 && !(req.ratio >= 0.0 && req.ratio < 1.0)) return Status::invalid("budget: expected keep >= 0 or a compressionRatio in [0, 1)");
  if (!(req.alpha >= 0.0 && req.alpha <= 1.0)) return Status::invalid("policy.alpha: expected 0 to 1, received " + std::to_string(req.alpha));
  if (!(req.beta >= 1.0)) return Status::invalid("policy.beta: expected at least 1, received " + std::to_string(req.beta));
  if (!req.retrieval.empty() && static_cast<int64_t>(req.retrieval.size()) != cfg.n_layers * H) {
    return Status::invalid("policy.retrievalHeads: expected nLayers * nKvHeads = " + num(cfg.n_layers * H) + " flags, received " + num(static_cast<int64_t>(req.retrieval.size())));
  }
  std::vector<int64_t>& layers = *resolved;
  layers = req.layers;
  if (layers.empty()) {
    for (int64_t l = 0; l < cfg.n_layers; ++l) layers.push_back(l);
  }
  if (!req.drafts.empty() && static_cast<int64_t>(req.drafts.size()) != cfg.n_layers) {
    return Status::invalid("draftQueries: expected one entry per layer (" + num(cfg.n_layers) + "), received " + num(static_cast<int64_t>(req.drafts.size())));
  }
  for (size_t l = 0; l < req.drafts.size(); ++l) {
    const CompressRequest::Draft& dr = req.drafts[l];
    if (!dr.q) continue;
    if (dr.n_heads < 1 || dr.n_heads % H != 0 || dr.n_draft < 1) {
      return Status::invalid("draftQueries[" + num(static_cast<int64_t>(l)) + "]: expected [nHeads (a multiple of nKvHeads), nDraft >= 1, headDim]");
    }
    const int64_t need = view_span(dr.n_heads, dr.n_draft, cfg.head_dim, dr.head_stride, dr.row_stride);
    if (need < 0 || need > dr.len) return Status::invalid("draftQueries[" + num(static_cast<int64_t>(l)) + "]: expected at least " + num(need) + " elements for its shape and strides, received " + num(dr.len));
  }
  std::vector<uint8_t> seen(static_cast<size_t>(cfg.n_layers), 0);
  for (int64_t l : layers) {
    if (l < 0 || l >= cfg.n_layers) return Status::invalid("layers: expected layer indices 0 to " + num(cfg.n_layers - 1) + ", received " + num(l));
    if (seen[l]++) return Status::invalid("layers: expected distinct layer indices, received " + num(l) + " twice");
  }
  return Status::ok();
}

Status KvCache::compress(const CompressRequest& req, CompressReport* report) {
  PreparedCompress prep;
  const Status st = prepare_compress(req, report, prep);
  if (!st.is_ok()) return st;
  commit_compress(prep, report);
  return Status::ok();
}

// Phase 1: check the request, plan every layer, reserve what phase 2 needs.
// Changes no token (storage may grow, contents kept).
Status KvCache::prepare_compress(const CompressRequest& req, CompressReport* report, PreparedCompress& prep) {
  const int64_t H = cfg_.n_kv_heads;
  std::vector<int64_t>& layers = prep.layers;
  const Status checked = check_compress(cfg_, req, &layers);
  if (!checked.is_ok()) return checked;
  report->tokens_before = total_tokens();
  report->bytes_before = memory_bytes();
  prep.t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<HeadPlan>>& plans = prep.plans;
  plans.resize(layers.size());
  int64_t longest = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    Status st = Status::ok();
    try {
      st = plan_layer(req, layers[i], plans[i]);
    } catch (const std::bad_alloc&) {
      st = Status::out_of_memory("KvCache.compress: out of memory while planning");
    }
    if (!st.is_ok()) return st;
    longest = std::max(longest, max_length(layers[i]));
  }
  const int workers = ThreadPool::instance().size();
  try {
    prep.kscratch.resize(static_cast<size_t>(workers));
    prep.vscratch.resize(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) {
      prep.kscratch[w].reserve(static_cast<size_t>(longest * cfg_.head_dim));
      prep.vscratch[w].reserve(static_cast<size_t>(longest * cfg_.head_dim));
    }
    if (quantized()) {
      for (int64_t l : layers) {
        for (int64_t h = 0; h < H; ++h) {
          const Status st = reserve_rows(head(l, h), std::min(head(l, h).len, cfg_.residual + cfg_.group));
          if (!st.is_ok()) return st;
        }
      }
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.compress: out of memory for scratch");
  }
  return Status::ok();
}

// Phases 2 and 3 of a prepared compression: merge and compact in place
// (nothing allocates, nothing fails), then give the freed memory back.
void KvCache::commit_compress(PreparedCompress& prep, CompressReport* report) {
  using Clock = std::chrono::steady_clock;
  const int64_t H = cfg_.n_kv_heads;
  const std::vector<int64_t>& layers = prep.layers;
  const std::vector<std::vector<HeadPlan>>& plans = prep.plans;
  const auto t1 = Clock::now();
  // Bytes compaction moves: every kept row that changes place is read and written.
  int64_t moved = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    for (int64_t h = 0; h < H; ++h) {
      const HeadPlan& p = plans[i][h];
      if (static_cast<int64_t>(p.keep.size()) == head(layers[i], h).len) continue;
      int64_t rows = 0;
      for (size_t j = 0; j < p.keep.size(); ++j) rows += p.keep[j] != static_cast<int32_t>(j);
      moved += 2 * rows * (2 * row_bytes() + 12);
    }
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const int64_t l = layers[i];
    // At most as many workers as the scratch was sized for (the pool may have grown since).
    ThreadPool::instance().parallel_for(H, [&](int64_t h, int worker) { apply_plan(l, h, plans[i][h], prep.kscratch[worker], prep.vscratch[worker]); },
                                        nullptr, static_cast<int>(prep.kscratch.size()));
  }
  const auto t2 = Clock::now();
  for (int64_t l : layers) {
    ThreadPool::instance().parallel_for(H, [&](int64_t h, int) { shrink(head(l, h)); });
  }
  // Compaction and merging moved and changed keys: rebuild the compressed
  // layers' Quest summaries (best effort; see kv_cache_sparse.cpp).
  for (int64_t l : layers) {
    summaries_rebuild(l);
    tidal_after_change(l);
  }
  const auto t3 = Clock::now();
  report->tokens_after = total_tokens();
  report->bytes_after = memory_bytes();
  report->plan_ms = std::chrono::duration<double, std::milli>(t1 - prep.t0).count();
  report->apply_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  report->release_ms = std::chrono::duration<double, std::milli>(t3 - t2).count();
  report->bytes_moved = quantized() ? 0 : moved;
}

}  // namespace tp::kv
