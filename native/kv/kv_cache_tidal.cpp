// KvCache: TidalDecode's position-persistent sparse attention across the
// layers of one decode step (native/sparse/tidal.h).
//
// The TS layer gives each attend the layer's role in the step (from the
// schedule options): full attention; full attention + selection (the
// selection and re-selection layers), whose top-k comes from the key mass
// (softmax probabilities summed over the KV head's query group and query
// rows) of that same attention pass; or attention over the kept positions.
// The kept positions live in the cache until the next selection, until the
// selecting layer's rows change (append, compress, clear: the next decode
// step has begun) or until beginStep(). A layer that attends over them must
// hold the same rows as the selecting layer did (same lengths, and the kept
// rows at the same positions), else the call fails and changes nothing.
#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <numeric>

#include "kv_cache.h"
#include "kv_heads.h"

namespace tp::kv {

Status KvCache::attend_tidal(int64_t layer, const AttendInput& in, float scale) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, group = in.n_heads / H;
  const int64_t longest = max_length(layer);
  if (in.selected && (in.selected_stride < longest || in.selected_len != checked_mul(H, in.selected_stride))) {
    return Status::invalid("selected: expected [nKvHeads, >= " + num(longest) + "] elements, received " + num(in.selected_len) + " with a row of " +
                           num(in.selected_stride));
  }
  if (in.selected_count && in.selected_count_len != H) return Status::invalid("selectedCount: expected " + num(H) + " elements, received " + num(in.selected_count_len));
  auto report = [&](int64_t h, const int32_t* rows, int64_t m) {
    if (in.selected) {
      int32_t* row = in.selected + h * in.selected_stride;
      std::copy(rows, rows + m, row);
      std::fill(row + m, row + in.selected_stride, -1);
    }
    if (in.selected_count) in.selected_count[h] = static_cast<int32_t>(m);
  };

  if (in.tidal_role == 0) {
    // Full attention, no selection: the dense attend; every row attended.
    AttendInput dense = in;
    dense.sparse_method = 0;
    const Status st = attend(layer, dense);
    if (!st.is_ok()) return st;
    std::vector<int32_t> all;
    try {
      for (int64_t h = 0; h < H; ++h) {
        all.resize(static_cast<size_t>(head(layer, h).len));
        std::iota(all.begin(), all.end(), 0);
        report(h, all.data(), static_cast<int64_t>(all.size()));
      }
    } catch (const std::bad_alloc&) {
      return Status::out_of_memory("KvCache.attend: cannot allocate the selected rows");
    }
    return Status::ok();
  }

  auto empty_head = [&](int64_t h) {
    float* out = in.out + h * group * in.n_q * d;
    std::fill(out, out + group * in.n_q * d, 0.0f);
    if (in.lse) std::fill(in.lse + h * group * in.n_q, in.lse + (h + 1) * group * in.n_q, -std::numeric_limits<float>::infinity());
    report(h, nullptr, 0);
  };

  if (in.tidal_role == 2) {
    // Attention over the positions kept by this step's latest selection.
    const TidalState& t = tidal_;
    if (t.layer < 0) {
      return Status::invalid("sparse: layer " + num(layer) +
                             " attends over the positions selected earlier in this decode step, but none are selected (attend the selectLayer first: "
                             "beginStep(), and an append, compress or clear of the selecting layer, drop the selection)");
    }
    for (int64_t h = 0; h < H; ++h) {
      const HeadStore& s = head(layer, h);
      if (s.len != t.len[h]) {
        return Status::invalid("sparse: layer " + num(layer) + " KV head " + num(h) + " holds " + num(s.len) + " tokens, but the positions were selected at layer " +
                               num(t.layer) + " over " + num(t.len[h]) + " (append to every layer before attending it, in layer order)");
      }
      for (size_t j = 0; j < t.idx[h].size(); ++j) {
        if (s.pos[t.idx[h][j]] != t.pos[h][j]) {
          return Status::invalid("sparse: layer " + num(layer) + " KV head " + num(h) + " row " + num(t.idx[h][j]) + " is at position " + num(s.pos[t.idx[h][j]]) +
                                 ", but the row selected at layer " + num(t.layer) + " was at position " + num(t.pos[h][j]) + " (layers compressed differently)");
        }
      }
    }
    std::vector<std::vector<float>> masses(static_cast<size_t>(in.accumulate_mass ? H : 0));
    try {
      for (int64_t h = 0; h < static_cast<int64_t>(masses.size()); ++h) masses[h].assign(static_cast<size_t>(head(layer, h).len), 0.0f);
    } catch (const std::bad_alloc&) {
      return Status::out_of_memory("KvCache.attend: cannot allocate key mass scratch");
    }
    // One KV head per pool task (each writes its own output, selection row
    // and mass), the attention inline on the task's worker.
    std::vector<Status> sts(static_cast<size_t>(H));
    auto run = [&](int64_t h) {
      const std::vector<int32_t>& idx = t.idx[h];
      const int64_t m = static_cast<int64_t>(idx.size());
      if (m == 0) {
        empty_head(h);
        return;
      }
      report(h, idx.data(), m);
      sts[h] = attend_rows(layer, h, in, scale, idx.data(), m, in.accumulate_mass ? masses[h].data() : nullptr);
    };
    try {
      for_each_head(H, longest * d, run, [&] {
        for (auto& m : masses) std::fill(m.begin(), m.end(), 0.0f);
      });
    } catch (const std::bad_alloc&) {
      return Status::out_of_memory("KvCache.attend: cannot allocate the sparse scratch");
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

  // Selection (role 1): full attention whose key mass (the group's softmax
  // probabilities, summed) ranks the rows; the top ones are kept for the
  // following layers. Committed only once every head succeeded.
  TidalState next;
  std::vector<std::vector<float>> masses(static_cast<size_t>(H));
  std::vector<Status> sts(static_cast<size_t>(H));
  // One KV head per pool task: its full pass with the key mass, then its
  // top-k (per-head outputs only; scratch per worker).
  auto run = [&](int64_t h) {
    const HeadStore& s = head(layer, h);
    if (s.len == 0) {
      empty_head(h);
      return;
    }
    thread_local std::vector<int32_t> all, scratch;
    try {
      masses[h].assign(static_cast<size_t>(s.len), 0.0f);
      all.resize(static_cast<size_t>(s.len));
      std::iota(all.begin(), all.end(), 0);
      sts[h] = attend_rows(layer, h, in, scale, all.data(), s.len, masses[h].data());
      if (!sts[h].is_ok()) return;
      sparse::select_tokens(masses[h].data(), s.len, in.n_q, in.tidal, next.idx[h], scratch);
      next.pos[h].resize(next.idx[h].size());
      for (size_t j = 0; j < next.idx[h].size(); ++j) next.pos[h][j] = s.pos[next.idx[h][j]];
    } catch (const std::bad_alloc&) {
      sts[h] = Status::out_of_memory("KvCache.attend: cannot allocate the TidalDecode selection");
      return;
    }
    report(h, next.idx[h].data(), static_cast<int64_t>(next.idx[h].size()));
  };
  try {
    next.layer = layer;
    next.len.resize(static_cast<size_t>(H));
    next.idx.resize(static_cast<size_t>(H));
    next.pos.resize(static_cast<size_t>(H));
    for (int64_t h = 0; h < H; ++h) next.len[h] = head(layer, h).len;
    for_each_head(H, longest * d, run, [] {});  // a rerun reassigns each head's mass and selection
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: cannot allocate the TidalDecode selection");
  }
  for (const Status& st : sts) {
    if (!st.is_ok()) return st;
  }
  tidal_ = std::move(next);
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
