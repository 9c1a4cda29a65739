// KvCache: Quest page summaries beside the stored keys, and the sparse
// attend over the selected pages (native/sparse/quest.h).
//
// A layer gets summaries at its first sparse attend (built from its keys,
// O(tokens)); from then on append folds only the new rows into the newest
// page (int caches: also refold the rows a call quantized into new blocks,
// since their dequantized values changed), compression rebuilds the
// compressed layers, clear drops them. Summaries are derived state: when an
// allocation fails outside attend they are dropped and rebuilt at the next
// sparse attend, which reports the failure if it persists.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "../attention/attention.h"
#include "../core/thread_pool.h"
#include "kv_cache.h"
#include "kv_heads.h"
#include "kv_dots.h"
#include "../sparse/quest_score.h"

namespace tp::kv {

sparse::SummaryFormat KvCache::summary_format() const {
  switch (cfg_.type) {
    case CacheType::F32: return sparse::SummaryFormat::F32;
    case CacheType::F16: return sparse::SummaryFormat::F16;
    case CacheType::BF16: return sparse::SummaryFormat::BF16;
    default: return sparse::SummaryFormat::U8;
  }
}

void KvCache::read_rows_f32(const HeadStore& s, int64_t first, int64_t n, float* k, float* v) const {
  const int64_t d = cfg_.head_dim;
  int64_t r = first;
  const int64_t end = first + n;
  if (quantized()) {
    const int64_t g = cfg_.group, in_blocks = s.n_blocks * g;
    while (r < end && r < in_blocks) {
      const int64_t b = r / g, r0 = r - b * g, m = std::min(end, (b + 1) * g) - r;
      dequantize_rows(qlayout_, s.blocks.data() + b * qlayout_.block_bytes, r0, m, k ? k + (r - first) * d : nullptr,
                      v ? v + (r - first) * d : nullptr);
      r += m;
    }
    if (r < end) {
      const int64_t t0 = r - in_blocks;
      if (k) rows_to_f32(KeyRows{s.k.data(), DType::F16, 0, d}, 0, t0, end - r, d, k + (r - first) * d);
      if (v) rows_to_f32(KeyRows{s.v.data(), DType::F16, 0, d}, 0, t0, end - r, d, v + (r - first) * d);
    }
    return;
  }
  if (k) rows_to_f32(KeyRows{s.k.data(), row_dtype(), 0, d}, 0, first, n, d, k);
  if (v) rows_to_f32(KeyRows{s.v.data(), row_dtype(), 0, d}, 0, first, n, d, v);
}

Status KvCache::sync_summary(int64_t layer, int64_t h) { return sync_summary(layer, h, head(layer, h).len, nullptr); }

Status KvCache::sync_summary(int64_t layer, int64_t h, int64_t rows, const FreshRows* fresh) {
  const HeadStore& s = head(layer, h);
  summary(layer, h).with_sums = summary_sums_[layer] != 0;
  // Size the summaries like the key storage (2 rows per P of its rows).
  const int64_t cap_rows = quantized() ? s.blocks_alloc * cfg_.group + s.rows_alloc : s.rows_alloc;
  sparse::PageSummary& sum = summary(layer, h);
  if (!quantized() && !sum.with_sums) {  // fold the rows where they lie, no decode into a buffer
    const int64_t d = cfg_.head_dim, P = summary_page_[layer];
    const DType t = row_dtype();
    const char* k = reinterpret_cast<const char*>(s.k.data());
    const int64_t row_bytes = d * static_cast<int64_t>(dtype_size(t));
    // Rows [first, first + n): stored ones from the storage, rows from
    // fresh->first on from the caller's input (the same values: fresh has the
    // storage's dtype). Reading a row back right after the append stored it
    // stalled on the stores (store-to-load forwarding across widths).
    auto fold = [&](int64_t first, int64_t n, bool init) {
      const int64_t stored = fresh ? std::clamp<int64_t>(fresh->first - first, 0, n) : n;
      if (stored > 0) sparse::fold_stored_rows(k + first * row_bytes, t, stored, d, d, sum.open_lo.data(), sum.open_hi.data(), init);
      if (n > stored) {
        const char* src = static_cast<const char*>(fresh->rows) + (first + stored - fresh->first) * fresh->stride_bytes;
        sparse::fold_stored_rows(src, t, n - stored, d, fresh->stride_bytes / static_cast<int64_t>(dtype_size(t)), sum.open_lo.data(),
                                 sum.open_hi.data(), init && stored == 0);
      }
    };
    return sparse::summary_sync_fold(sum, summary_format(), P, d, rows, cap_rows, fold);
  }
  return sparse::summary_sync(sum, summary_format(), summary_page_[layer], cfg_.head_dim, rows, cap_rows,
                              [&](int64_t first, int64_t n, float* out) { read_rows_f32(s, first, n, out, nullptr); });
}

void KvCache::summaries_after_append(int64_t layer, const std::vector<int64_t>& changed) {
  const int64_t P = summary_page_[layer];
  if (P == 0) return;
  // Each head folds only its new rows into its open page (summary_sync);
  // heads are independent, so a large append spreads them over the pool
  // (a single-token append stays here: waking the pool costs more).
  auto run = [&](int64_t h, int) {
    sparse::PageSummary& sum = summary(layer, h);
    if (changed[h] < sum.rows) sparse::summary_truncate(sum, changed[h], P);
    (void)sync_summary(layer, h);  // on failure it is empty and rebuilt at the next sparse attend
  };
  int64_t rows = 0;
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) rows += head(layer, h).len - std::min(changed[h], summary(layer, h).rows);
  if (cfg_.n_kv_heads > 1 && rows * cfg_.head_dim >= (int64_t(1) << 15)) {
    try {
      ThreadPool::instance().parallel_for(cfg_.n_kv_heads, run);
      return;
    } catch (...) {
      // A refused thread: fold on this thread instead.
    }
  }
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) run(h, 0);
}

void KvCache::summaries_rebuild(int64_t layer) {
  const int64_t P = summary_page_[layer];
  if (P == 0) return;
  auto run = [&](int64_t h, int) {
    sparse::summary_truncate(summary(layer, h), 0, P);
    (void)sync_summary(layer, h);  // on failure it is empty and rebuilt at the next sparse attend
  };
  int64_t rows = 0;
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) rows += head(layer, h).len;
  if (cfg_.n_kv_heads > 1 && rows * cfg_.head_dim >= (int64_t(1) << 15)) {
    try {
      ThreadPool::instance().parallel_for(cfg_.n_kv_heads, run);
      return;
    } catch (...) {
      // A refused thread: rebuild on this thread instead (idempotent).
    }
  }
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) run(h, 0);
}

void KvCache::summaries_reset(int64_t layer) {
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) summary(layer, h) = sparse::PageSummary();
  summary_sums_[layer] = 0;
}

Status KvCache::export_summaries(int64_t layer, SummaryExport* out) {
  if (layer < 0 || layer >= cfg_.n_layers) return Status::invalid("layer: expected 0 to " + num(cfg_.n_layers - 1) + ", received " + num(layer));
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, P = summary_page_[layer];
  *out = SummaryExport();
  out->page_size = P;
  if (P == 0) return Status::ok();
  // Rows of a partial page that append left to fold (kv_cache.cpp).
  for (int64_t h = 0; h < H; ++h) {
    if (summary(layer, h).rows != head(layer, h).len) {
      const Status st = sync_summary(layer, h);
      if (!st.is_ok()) return st;
    }
  }
  try {
    for (int64_t h = 0; h < H; ++h) {
      out->pages = std::max(out->pages, sparse::page_count(summary(layer, h).rows, P));
      out->bytes += sparse::summary_bytes(summary(layer, h));
    }
    out->lo.assign(static_cast<size_t>(H * out->pages * d), 0.0f);
    out->hi.assign(static_cast<size_t>(H * out->pages * d), 0.0f);
    out->head_pages.assign(static_cast<size_t>(H), 0);
    if (summary_sums_[layer]) out->mean.assign(static_cast<size_t>(H * out->pages * d), 0.0f);
    std::vector<float> buf(static_cast<size_t>(2 * d));
    for (int64_t h = 0; h < H; ++h) {
      const sparse::PageSummary& s = summary(layer, h);
      const int64_t pages = sparse::page_count(s.rows, P);
      out->head_pages[h] = static_cast<int32_t>(pages);
      for (int64_t p = 0; p < pages; ++p) {
        const float *lo, *hi;
        sparse::summary_page(s, summary_format(), d, p, buf.data(), buf.data() + d, &lo, &hi);
        std::copy(lo, lo + d, out->lo.begin() + (h * out->pages + p) * d);
        std::copy(hi, hi + d, out->hi.begin() + (h * out->pages + p) * d);
        if (!out->mean.empty()) {
          const bool open = p >= s.stored;
          const float* sum = open ? s.open_sum.data() : s.sums.data() + p * d;
          const float cnt = static_cast<float>(open ? s.rows - p * P : P);
          for (int64_t c = 0; c < d; ++c) out->mean[(h * out->pages + p) * d + c] = sum[c] / cnt;
        }
      }
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.questSummaries: out of memory");
  }
  return Status::ok();
}

namespace {
// Per calling thread, reused across decode steps.
struct QuestScratch {
  std::vector<const float*> q;
  std::vector<float> scores, buf, ab;
  std::vector<int64_t> pages, cand;
  std::vector<int32_t> idx;
};
struct RowsScratch {
  std::vector<float> kf, vf, bias, compact_mass;
};
}  // namespace

// Attention of KV head h's query group over its rows idx[0..m) (ascending):
// float caches read the stored rows through the gathered-indices attention;
// int caches dequantize only those rows (runs of consecutive rows), then
// attend them densely with the causal rule and merge weights as an additive
// mask. mass_h (optional): key mass per row of the head, overwritten for the
// selected rows.
Status KvCache::attend_rows(int64_t layer, int64_t h, const AttendInput& in, float scale, const int32_t* idx, int64_t m, float* mass_h) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, group = in.n_heads / H;
  (void)H;
  const HeadStore& s = head(layer, h);
  const int64_t n = s.len;
  thread_local RowsScratch x;
  // Merged rows weigh count times: only the selected rows' counts matter.
  const bool weighted = std::any_of(idx, idx + m, [&](int32_t r) { return s.count[r] != 1.0f; });
  AttentionParams a;
  a.n_heads = group;
  a.n_kv_heads = 1;
  a.n_q = in.n_q;
  a.head_dim = d;
  const int64_t q_off = h * group * in.q_head_stride;
  a.q = in.q + q_off;
  a.q_len = in.q_len - q_off;
  a.q_head_stride = in.q_head_stride;
  a.q_row_stride = in.q_row_stride;
  a.scale = scale;
  a.softcap = in.softcap;
  a.out = in.out + h * group * in.n_q * d;
  a.out_len = group * in.n_q * d;
  if (in.lse) {
    a.lse = in.lse + h * group * in.n_q;
    a.lse_len = group * in.n_q;
  }
  bool compact = false;
  try {
    if (!quantized()) {
      a.n_kv = n;
      a.k = s.k.data();
      a.v = s.v.data();
      a.k_dtype = a.v_dtype = row_dtype();
      a.k_head_stride = a.v_head_stride = n * d;
      a.k_row_stride = a.v_row_stride = d;
      a.k_len = a.v_len = n * d;
      a.causal = in.causal;
      a.indices = idx;
      a.n_sel = m;
      a.indices_len = m;
      if (weighted) {
        x.bias.resize(static_cast<size_t>(in.n_q * n));
        for (int64_t r = 0; r < n; ++r) x.bias[r] = std::log(s.count[r]);
        for (int64_t i = 1; i < in.n_q; ++i) std::copy(x.bias.begin(), x.bias.begin() + n, x.bias.begin() + i * n);
        a.additive_mask = x.bias.data();
        a.mask_len = in.n_q * n;
      }
      if (mass_h) {
        a.key_mass = mass_h;
        a.key_mass_len = n;
      }
    } else {
      x.kf.resize(static_cast<size_t>(m * d));
      x.vf.resize(static_cast<size_t>(m * d));
      for (int64_t j = 0; j < m;) {
        int64_t e = j + 1;
        while (e < m && idx[e] == idx[e - 1] + 1) ++e;
        read_rows_f32(s, idx[j], e - j, x.kf.data() + j * d, x.vf.data() + j * d);
        j = e;
      }
      a.n_kv = m;
      a.k = x.kf.data();
      a.v = x.vf.data();
      a.k_dtype = a.v_dtype = DType::F32;
      a.k_head_stride = a.v_head_stride = m * d;
      a.k_row_stride = a.v_row_stride = d;
      a.k_len = a.v_len = m * d;
      a.causal = false;
      if (weighted || (in.causal && in.n_q > 1)) {
        x.bias.resize(static_cast<size_t>(in.n_q * m));
        const float ninf = -std::numeric_limits<float>::infinity();
        for (int64_t i = 0; i < in.n_q; ++i) {
          for (int64_t j = 0; j < m; ++j) {
            const int64_t r = idx[j];
            const bool visible = !in.causal || r <= n - in.n_q + i;
            x.bias[i * m + j] = visible ? (weighted ? std::log(s.count[r]) : 0.0f) : ninf;
          }
        }
        a.additive_mask = x.bias.data();
        a.mask_len = in.n_q * m;
      }
      if (mass_h) {
        x.compact_mass.assign(static_cast<size_t>(m), 0.0f);
        a.key_mass = x.compact_mass.data();
        a.key_mass_len = m;
        compact = true;
      }
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: cannot allocate the sparse rows");
  }
  const Status st = run_attention(a);
  if (!st.is_ok()) return st;
  if (compact) {
    for (int64_t j = 0; j < m; ++j) mass_h[idx[j]] = x.compact_mass[j];
  }
  return Status::ok();
}

// Quest (sparse_method 1) and block retrieval (3) over each KV head:
// summaries up to date (with key sums for blocks), pages / blocks scored with
// the group's query rows, the top ones selected, attention over their rows
// only.
Status KvCache::attend_quest(int64_t layer, const AttendInput& in, float scale) {
  const bool blocks = in.sparse_method == 3;
  const sparse::QuestOptions po = blocks ? sparse::block_pages(in.blocks) : in.quest;
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, group = in.n_heads / H, P = po.page_size;
  const int64_t longest = max_length(layer);
  if (in.selected && (in.selected_stride < longest || in.selected_len != checked_mul(H, in.selected_stride))) {
    return Status::invalid("selected: expected [nKvHeads, >= " + num(longest) + "] elements, received " + num(in.selected_len) + " with a row of " +
                           num(in.selected_stride));
  }
  if (in.selected_count && in.selected_count_len != H) return Status::invalid("selectedCount: expected " + num(H) + " elements, received " + num(in.selected_count_len));
  // A page size change, or blocks on summaries without key sums: rebuild.
  if (summary_page_[layer] != P || (blocks && !summary_sums_[layer])) {
    summaries_reset(layer);
    summary_page_[layer] = P;
    summary_sums_[layer] = blocks ? 1 : 0;
  }
  {
    // A first build (or a long catch-up) spreads the KV heads over the pool;
    // sync_summary is idempotent, so a refused pool falls back to this thread.
    int64_t todo = 0;
    for (int64_t h = 0; h < H; ++h) todo += std::max<int64_t>(0, head(layer, h).len - summary(layer, h).rows);
    bool done = false;
    if (H > 1 && todo * d >= (int64_t(1) << 15)) {
      try {
        std::vector<Status> sts(static_cast<size_t>(H));
        ThreadPool::instance().parallel_for(H, [&](int64_t h, int) { sts[h] = sync_summary(layer, h); });
        for (const Status& st : sts) {
          if (!st.is_ok()) return st;
        }
        done = true;
      } catch (...) {
        // A refused thread or allocation: the sequential loop below.
      }
    }
    for (int64_t h = 0; h < H && !done; ++h) {
      const Status st = sync_summary(layer, h);
      if (!st.is_ok()) return st;
    }
  }
  const int64_t R = group * in.n_q;
  std::vector<std::vector<float>> masses(static_cast<size_t>(in.accumulate_mass ? H : 0));
  std::vector<Status> sts(static_cast<size_t>(H));
  try {
    for (int64_t h = 0; h < static_cast<int64_t>(masses.size()); ++h) masses[h].assign(static_cast<size_t>(head(layer, h).len), 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: cannot allocate the sparse scratch");
  }
  // One KV head: score its pages / blocks with the group's query rows,
  // select, attend the selected rows. Heads are independent (each writes
  // its own output rows, selection row and mass), so they run as pool tasks;
  // the scoring and the attention inside run inline on the task's worker.
  auto run = [&](int64_t h) {
    thread_local QuestScratch x;
    const HeadStore& s = head(layer, h);
    const int64_t n = s.len;
    float* out = in.out + h * group * in.n_q * d;
    float* lse = in.lse ? in.lse + h * group * in.n_q : nullptr;
    if (n == 0) {
      std::fill(out, out + group * in.n_q * d, 0.0f);
      if (lse) std::fill(lse, lse + group * in.n_q, -std::numeric_limits<float>::infinity());
      if (in.selected) std::fill(in.selected + h * in.selected_stride, in.selected + (h + 1) * in.selected_stride, -1);
      if (in.selected_count) in.selected_count[h] = 0;
      return;
    }
    try {
      x.q.resize(static_cast<size_t>(R));
      x.buf.resize(static_cast<size_t>(3 * d));
      x.scores.resize(static_cast<size_t>(sparse::page_count(n, P)));
      for (int64_t j = 0; j < group; ++j) {
        for (int64_t i = 0; i < in.n_q; ++i) x.q[j * in.n_q + i] = in.q + (h * group + j) * in.q_head_stride + i * in.q_row_stride;
      }
      if (blocks) {
        sparse::score_blocks(summary(layer, h), summary_format(), d, P, x.q.data(), R, in.blocks.gqa, in.blocks.mix, x.scores.data(), x.buf.data());
      } else {
        const int64_t pairs = sparse::bound_pairs(R, po.gqa);
        x.ab.resize(static_cast<size_t>(pairs * 2 * d));
        sparse::bound_weights(x.q.data(), R, d, po.gqa, x.ab.data());
        sparse::score_summary(summary(layer, h), summary_format(), d, P, x.ab.data(), pairs, x.scores.data(), x.buf.data());
      }
      sparse::select_pages(x.scores.data(), n, in.n_q, po, x.pages, x.cand);
      x.idx.clear();
      sparse::pages_to_tokens(x.pages, n, P, x.idx);
    } catch (const std::bad_alloc&) {
      sts[h] = Status::out_of_memory("KvCache.attend: cannot allocate the sparse selection");
      return;
    }
    const int64_t m = static_cast<int64_t>(x.idx.size());
    if (in.selected) {
      int32_t* row = in.selected + h * in.selected_stride;
      std::copy(x.idx.begin(), x.idx.end(), row);
      std::fill(row + m, row + in.selected_stride, -1);
    }
    if (in.selected_count) in.selected_count[h] = static_cast<int32_t>(m);
    sts[h] = attend_rows(layer, h, in, scale, x.idx.data(), m, in.accumulate_mass ? masses[h].data() : nullptr);
  };
  try {
    for_each_head(H, longest * d, run, [&] {
      for (auto& m : masses) std::fill(m.begin(), m.end(), 0.0f);  // the key mass starts from zero again
    });
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: cannot allocate the sparse selection");
  }
  for (const Status& st : sts) {
    if (!st.is_ok()) return st;
  }
  if (in.accumulate_mass) {
    for (int64_t h = 0; h < H; ++h) {
      HeadStore& s = head(layer, h);
      for (int64_t r = 0; r < s.len; ++r) s.mass[r] += masses[h][r];
    }
    mass_seen_[layer] = 1;
  }
  if (in.remember) remember_queries(layer, in);
  return Status::ok();
}

}  // namespace tp::kv
