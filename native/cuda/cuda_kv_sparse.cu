// DeviceKvCache: Quest sparse attend on the device (docs/sparse.md, "On the
// device"). Per (layer, KV head) page summaries lo / hi [pages, headDim] in
// the cache's dtype stay in device memory beside K / V: built at the layer's
// first sparse attend, refolded on append (the pages from each head's old
// open page on), rebuilt on compress, emptied on clear (the page size kept,
// as the CPU cache). A sparse attend scores the pages (the CPU's bits,
// cuda_quest.cu), selects per KV head with the CPU's rule
// (native/sparse/quest_hd.h) and runs the gathered decode
// (DeviceAttention::indices) over the selected rows. f16 / bf16 caches
// (summaries in the cache's dtype) and int8 / int4 caches (the CPU's U8
// summaries of the dequantized keys; attention over a dequantized f16 copy),
// method 'quest'; TidalDecode and block retrieval are refused with Unsupported.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "../core/checked_math.h"
#include "../core/half.h"
#include "../sparse/quest.h"
#include "../sparse/quest_hd.h"
#include "../sparse/quest_u8_hd.h"
#include "cuda_attention.h"
#include "cuda_check.cuh"
#include "cuda_kv_cache.h"
#include "cuda_kv_store.h"
#include "cuda_quest.h"

namespace tp::cuda {

void DeviceKvCache::quest_drop(DeviceLayer& L) {
  L.q_lo.reset();
  L.q_hi.reset();
  L.q_aff.reset();
  L.q_open.reset();
  L.q_page = L.q_page_cap = 0;
  L.q_rows.clear();
}

// Bytes of one summary row: the cache's dtype, or u8 codes for int caches.
size_t DeviceKvCache::quest_row_bytes() const { return quantized() ? size_t(cfg_.head_dim) : row_bytes(); }

namespace {
// A [heads, old_cap, row] device table copied into the first rows of [heads, new_cap, row].
Status grow_table(DeviceBlock& dst, const DeviceBlock& src, int64_t heads, int64_t old_cap, int64_t new_cap, size_t row) {
  if (old_cap == 0) return Status::ok();
  TP_CUDA_TRY(cudaMemcpy2D(dst.get(), new_cap * row, src.get(), old_cap * row, old_cap * row, heads, cudaMemcpyDeviceToDevice),
              "cudaMemcpy2D(Quest summaries)");
  return Status::ok();
}
}  // namespace

Status DeviceKvCache::quest_sync(DeviceLayer& L, int64_t layer, int64_t P) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  const bool u8 = quantized();
  if (L.q_page != P) {
    quest_drop(L);
    L.q_page = P;
  }
  if (static_cast<int64_t>(L.q_rows.size()) != H) L.q_rows.assign(size_t(H), 0);
  const int64_t need = sparse::page_count(std::max<int64_t>(L.cap, 1), P);
  if (need > L.q_page_cap) {
    // Sized like the key storage (2 rows per P of its rows); final pages are kept.
    const size_t rb = quest_row_bytes();
    DeviceBlock lo, hi, aff, open;
    Status s = lo.alloc(size_t(H * need) * rb, "cudaMalloc(Quest summaries)");
    if (s.is_ok()) s = hi.alloc(size_t(H * need) * rb, "cudaMalloc(Quest summaries)");
    if (s.is_ok() && u8) s = aff.alloc(size_t(H * need) * 2 * sizeof(float), "cudaMalloc(Quest summaries)");
    if (s.is_ok() && u8 && !L.q_open.get()) s = open.alloc(size_t(H * 2 * d) * sizeof(float), "cudaMalloc(Quest summaries)");
    if (s.is_ok()) s = grow_table(lo, L.q_lo, H, L.q_page_cap, need, rb);
    if (s.is_ok()) s = grow_table(hi, L.q_hi, H, L.q_page_cap, need, rb);
    if (s.is_ok() && u8) s = grow_table(aff, L.q_aff, H, L.q_page_cap, need, 2 * sizeof(float));
    if (!s.is_ok()) {
      quest_drop(L);
      return s;
    }
    L.q_lo = std::move(lo);
    L.q_hi = std::move(hi);
    if (u8) {
      L.q_aff = std::move(aff);
      if (open.get()) L.q_open = std::move(open);
    }
    L.q_page_cap = need;
  }
  // The pages from the oldest open page of any head on (recomputing a final
  // page gives the same bits, so one range serves every head).
  int64_t first = INT64_MAX;
  for (int64_t h = 0; h < H; ++h) first = std::min(first, std::min(L.q_rows[h], L.len[h]) / P);
  QuestSummaryLaunch q;
  q.k = L.k.get();
  q.dtype = dtype();
  q.n_kv_heads = H;
  q.cap = L.cap;
  q.head_dim = d;
  q.lens = L.lens.as<int32_t>();
  q.page_size = P;
  q.first_page = first;
  q.max_pages = sparse::page_count(max_length(layer), P);
  q.lo = L.q_lo.get();
  q.hi = L.q_hi.get();
  q.page_cap = L.q_page_cap;
  if (u8) {
    q.quant = true;
    q.qk = {qlayout_, L.blocks.as<uint8_t>(), L.blocks_cap, L.n_blocks_dev.as<int32_t>(), L.k.as<uint16_t>(), L.kv_rows};
    q.affine = L.q_aff.as<float>();
    q.open = L.q_open.as<float>();
  }
  const Status s = launch_quest_summaries(q);
  if (!s.is_ok()) {
    quest_drop(L);
    return s;
  }
  for (int64_t h = 0; h < H; ++h) L.q_rows[h] = L.len[h];
  return Status::ok();
}

void DeviceKvCache::quest_after_change(DeviceLayer& L, int64_t layer, const std::vector<int64_t>& valid) {
  if (L.q_page == 0) return;
  for (size_t h = 0; h < L.q_rows.size() && h < valid.size(); ++h) L.q_rows[h] = std::min(L.q_rows[h], valid[h]);
  // Derived state: a failure drops the summaries, and the next sparse attend
  // rebuilds them (and reports a failure that persists).
  if (!quest_sync(L, layer, L.q_page).is_ok()) quest_drop(L);
}

Status DeviceKvCache::export_summaries(int64_t layer, kv::SummaryExport* out) const {
  if (layer < 0 || layer >= cfg_.n_layers) return Status::invalid("layer: expected 0 to " + num(cfg_.n_layers - 1) + ", received " + num(layer));
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  const DeviceLayer& L = layers_[layer];
  *out = kv::SummaryExport();
  out->page_size = L.q_page;
  if (L.q_page == 0) return Status::ok();
  const int64_t P = L.q_page;
  const bool u8 = quantized();
  const size_t rb = quest_row_bytes();
  // Rows folded per head (none after a clear, before the next append).
  auto folded = [&](int64_t h) { return size_t(h) < L.q_rows.size() ? L.q_rows[h] : int64_t(0); };
  std::vector<uint8_t> lo, hi;
  std::vector<float> aff, open;
  try {
    for (int64_t h = 0; h < H; ++h) out->pages = std::max(out->pages, sparse::page_count(folded(h), P));
    out->bytes = int64_t(L.q_lo.bytes() + L.q_hi.bytes() + L.q_aff.bytes() + L.q_open.bytes());
    lo.resize(size_t(H * out->pages) * rb);
    hi.resize(lo.size());
    if (u8) aff.resize(size_t(H * out->pages * 2));
    if (u8) open.resize(size_t(H * 2 * d));
    out->lo.assign(size_t(H * out->pages * d), 0.0f);
    out->hi.assign(out->lo.size(), 0.0f);
    out->head_pages.assign(size_t(H), 0);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.questSummaries: out of memory");
  }
  if (out->pages > 0) {
    TP_CUDA_TRY(cudaMemcpy2D(lo.data(), out->pages * rb, L.q_lo.get(), L.q_page_cap * rb, out->pages * rb, H, cudaMemcpyDeviceToHost),
                "cudaMemcpy2D(Quest summaries)");
    TP_CUDA_TRY(cudaMemcpy2D(hi.data(), out->pages * rb, L.q_hi.get(), L.q_page_cap * rb, out->pages * rb, H, cudaMemcpyDeviceToHost),
                "cudaMemcpy2D(Quest summaries)");
    if (u8) {
      const size_t ar = 2 * sizeof(float);
      TP_CUDA_TRY(cudaMemcpy2D(aff.data(), out->pages * ar, L.q_aff.get(), L.q_page_cap * ar, out->pages * ar, H, cudaMemcpyDeviceToHost),
                  "cudaMemcpy2D(Quest summaries)");
      TP_CUDA_TRY(cudaMemcpy(open.data(), L.q_open.get(), open.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy(Quest summaries)");
    }
  }
  const bool bf16 = dtype() == DType::BF16;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t pages = sparse::page_count(folded(h), P), stored = folded(h) / P;
    out->head_pages[h] = static_cast<int32_t>(pages);
    for (int64_t pg = 0; pg < pages; ++pg) {
      const int64_t at = (h * out->pages + pg) * d;
      for (int64_t c = 0; c < d; ++c) {
        if (!u8) {
          const uint16_t* l16 = reinterpret_cast<const uint16_t*>(lo.data());
          const uint16_t* h16 = reinterpret_cast<const uint16_t*>(hi.data());
          out->lo[at + c] = bf16 ? bf16_to_f32(l16[at + c]) : f16_to_f32(l16[at + c]);
          out->hi[at + c] = bf16 ? bf16_to_f32(h16[at + c]) : f16_to_f32(h16[at + c]);
        } else if (pg < stored) {
          const float base = aff[(h * out->pages + pg) * 2], step = aff[(h * out->pages + pg) * 2 + 1];
          out->lo[at + c] = sparse::hd::u8_value(base, step, lo[at + c]);
          out->hi[at + c] = sparse::hd::u8_value(base, step, hi[at + c]);
        } else {
          out->lo[at + c] = open[h * 2 * d + c];
          out->hi[at + c] = open[h * 2 * d + d + c];
        }
      }
    }
  }
  return Status::ok();
}

Status export_device_summaries(const kv::KvCacheApi& cache, int64_t layer, kv::SummaryExport* out) {
  const auto* dev = dynamic_cast<const DeviceKvCache*>(&cache);
  if (dev == nullptr) return Status::unsupported("KvCache: not a device cache");
  return dev->export_summaries(layer, out);
}

namespace {

// The sparse options the device runs; messages name the option.
Status check_device_sparse(const kv::AttendInput& in) {
  if (in.sparse_method == 2) return Status::unsupported("KvCache on cuda: sparse.method 'tidal' runs on CPU caches only (the device runs 'quest')");
  if (in.sparse_method == 3) return Status::unsupported("KvCache on cuda: sparse.method 'blocks' runs on CPU caches only (the device runs 'quest')");
  if (in.sparse_method != 1) return Status::invalid("sparse.method: expected 'quest', 'tidal' or 'blocks'");
  return Status::ok();
}

}  // namespace

Status DeviceKvCache::attend_quest(int64_t layer, const kv::AttendInput& in, float scale) {
  Status s = check_device_sparse(in);
  if (!s.is_ok()) return s;
  const sparse::QuestOptions& o = in.quest;
  s = sparse::check_quest_options(o, "sparse.");
  if (!s.is_ok()) return s;
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, group = in.n_heads / H, P = o.page_size;
  const int64_t R = group * in.n_q;
  const int gqa = o.gqa == sparse::GqaCombine::Max ? 0 : 1;
  DeviceLayer& L = layers_[layer];
  const int64_t longest = max_length(layer);
  if (in.selected && (in.selected_stride < longest || in.selected_len != H * in.selected_stride)) {
    return Status::invalid("selected: expected [nKvHeads, >= " + num(longest) + "] elements, received " + num(in.selected_len) + " with a row of " +
                           num(in.selected_stride));
  }
  if (in.selected_count && in.selected_count_len != H) return Status::invalid("selectedCount: expected " + num(H) + " elements, received " + num(in.selected_count_len));
  // Per head: its selected rows (the same count for heads of one length).
  std::vector<int64_t> count(static_cast<size_t>(H), 0);
  std::vector<float> hq;
  std::vector<int32_t> hidx;
  int64_t stride = 0;
  bool uniform = true;
  for (int64_t h = 0; h < H; ++h) {
    const sparse::hd::PagePlan plan = sparse::hd::plan_pages(L.len[h], in.n_q, o.budget, P, o.sinks, o.recent);
    count[h] = sparse::hd::selected_tokens(plan, L.len[h], P);
    stride = std::max(stride, count[h]);
    uniform = uniform && L.len[h] == L.len[0];
  }
  try {
    hq.resize(size_t(H * R * d));
    if (in.selected) hidx.resize(size_t(H * std::max<int64_t>(stride, 1)));
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: out of host memory for staging");
  }
  for (int64_t hh = 0; hh < in.n_heads; ++hh) {
    for (int64_t i = 0; i < in.n_q; ++i) {
      std::memcpy(hq.data() + (hh * in.n_q + i) * d, in.q + hh * in.q_head_stride + i * in.q_row_stride, size_t(d) * 4);
    }
  }
  const int64_t E = sparse::hd::effective_rows(R, gqa);
  s = q_dev_.reserve(hq.size() * 4, "cudaMalloc(queries)");
  if (s.is_ok()) s = out_dev_.reserve(hq.size() * 4, "cudaMalloc(outputs)");
  if (s.is_ok()) s = lse_dev_.reserve(size_t(H * R) * 4, "cudaMalloc(lse)");
  if (s.is_ok()) s = quest_ab_.reserve(size_t(H * E * 2 * d) * 4, "cudaMalloc(Quest query sums)");
  if (s.is_ok()) s = quest_idx_.reserve(size_t(H * std::max<int64_t>(stride, 1)) * 4, "cudaMalloc(Quest indices)");
  if (s.is_ok() && in.accumulate_mass) s = quest_mass_.reserve(size_t(H * std::max<int64_t>(longest, 1)) * 4, "cudaMalloc(Quest key mass)");
  if (!s.is_ok()) return s;
  // Summaries up to date (a new page size rebuilds them), sized for the page table.
  s = quest_sync(L, layer, P);
  if (s.is_ok()) s = quest_scores_.reserve(size_t(H * L.q_page_cap) * 4, "cudaMalloc(Quest scores)");
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(q_dev_.as<float>(), hq.data(), hq.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(queries)");
  QuestScoreLaunch sc;
  sc.q = q_dev_.as<float>();
  sc.n_kv_heads = H;
  sc.rows = R;
  sc.head_dim = d;
  sc.gqa = gqa;
  sc.ab = quest_ab_.as<float>();
  sc.lo = L.q_lo.get();
  sc.hi = L.q_hi.get();
  sc.dtype = dtype();
  sc.page_cap = L.q_page_cap;
  sc.page_size = P;
  sc.max_pages = sparse::page_count(longest, P);
  sc.lens = L.lens.as<int32_t>();
  sc.scores = quest_scores_.as<float>();
  if (quantized()) {
    sc.u8 = true;
    sc.affine = L.q_aff.as<float>();
    sc.open = L.q_open.as<float>();
  }
  s = launch_quest_scores(sc);
  if (!s.is_ok()) return s;
  QuestTopkLaunch tk;
  tk.scores = quest_scores_.as<float>();
  tk.page_cap = L.q_page_cap;
  tk.n_kv_heads = H;
  tk.lens = L.lens.as<int32_t>();
  tk.n_q = in.n_q;
  tk.budget = o.budget;
  tk.page_size = P;
  tk.sinks = o.sinks;
  tk.recent = o.recent;
  tk.indices = quest_idx_.as<int32_t>();
  tk.stride = stride;
  s = launch_quest_topk(tk);
  if (!s.is_ok()) return s;
  // The gathered decode: one launch when every head has the same length (the
  // same selected count), else one per head over its own rows. Int caches
  // attend a dequantized f16 copy of the layer (as their dense attend does
  // when it cannot read the blocks in place).
  KvRows view;
  s = rows_of(L, layer, DType::F16, &view);
  if (!s.is_ok()) return s;
  const size_t rb = size_t(d) * 2;
  const int64_t mass_stride = std::max<int64_t>(longest, 1);
  auto run = [&](int64_t h0, int64_t heads, int64_t n, int64_t n_sel) -> Status {
    DeviceAttention a;
    a.n_heads = heads * group;
    a.n_kv_heads = heads;
    a.n_q = in.n_q;
    a.n_kv = n;
    a.head_dim = d;
    a.q = q_dev_.as<float>() + h0 * R * d;
    a.k = static_cast<const char*>(view.k) + size_t(h0 * L.cap) * rb;
    a.v = static_cast<const char*>(view.v) + size_t(h0 * L.cap) * rb;
    a.kv_dtype = view.dtype;
    a.scale = scale;
    a.causal = in.causal;
    a.out = out_dev_.as<float>() + h0 * R * d;
    a.lse = lse_dev_.as<float>() + h0 * R;
    a.kv_head_stride = L.cap * d;
    a.indices = quest_idx_.as<int32_t>() + h0 * stride;
    a.n_sel = n_sel;
    if (L.weighted) {
      a.key_count = L.count.as<float>() + h0 * L.cap;
      a.key_count_stride = L.cap;
    }
    if (in.accumulate_mass) a.key_mass = quest_mass_.as<float>() + h0 * mass_stride;
    a.path = AttentionPath::Decode;
    size_t ws = 0;
    Status st = device_attention_workspace(a, &ws);
    if (st.is_ok()) st = work_dev_.reserve(ws, "cudaMalloc(attention workspace)");
    if (st.is_ok()) st = launch_device_attention(a, work_dev_.as<void>(), work_dev_.bytes());
    return st;
  };
  if (uniform) {
    // key_mass rows are [nKvHeads, n]: n == mass_stride here.
    s = run(0, H, L.len[0], stride);
  } else {
    for (int64_t h = 0; h < H && s.is_ok(); ++h) s = run(h, 1, L.len[h], count[h]);
  }
  if (s.is_ok() && in.accumulate_mass) s = launch_add_mass(quest_mass_.as<float>(), mass_stride, L.mass.as<float>(), L.cap, L.lens.as<int32_t>(), H, longest);
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(in.out, out_dev_.as<float>(), hq.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy(out)");
  if (in.lse) TP_CUDA_TRY(cudaMemcpy(in.lse, lse_dev_.as<float>(), size_t(H * R) * 4, cudaMemcpyDeviceToHost), "cudaMemcpy(lse)");
  if (in.selected && stride > 0) {
    TP_CUDA_TRY(cudaMemcpy(hidx.data(), quest_idx_.as<int32_t>(), size_t(H * stride) * 4, cudaMemcpyDeviceToHost), "cudaMemcpy(selected)");
  }
  s = sync_device("KvCache.attend (sparse)");
  if (!s.is_ok()) return s;
  for (int64_t h = 0; h < H; ++h) {
    if (in.selected) {
      int32_t* row = in.selected + h * in.selected_stride;
      if (count[h] > 0) std::copy(hidx.begin() + h * stride, hidx.begin() + h * stride + count[h], row);
      std::fill(row + count[h], row + in.selected_stride, -1);
    }
    if (in.selected_count) in.selected_count[h] = static_cast<int32_t>(count[h]);
  }
  if (in.accumulate_mass) L.mass_seen = true;
  if (in.remember) remember(L, in);
  return Status::ok();
}

}  // namespace tp::cuda
