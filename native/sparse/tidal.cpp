// TidalDecode token selection (tidal.h).
#include "tidal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "../kv/kv_finite.h"

namespace tp::sparse {
namespace {
float tidal_rank_key(float s) { return std::isnan(s) ? -std::numeric_limits<float>::infinity() : s; }

// Forced tokens of a head of n tokens: [0, sink_end) and [recent_begin, n).
void forced_tokens(int64_t n, int64_t n_q, const TokenSelectOptions& o, int64_t* sink_end, int64_t* recent_begin) {
  const int64_t r = std::min(n, std::max({o.recent, n_q, int64_t(1)}));
  *recent_begin = n - r;
  *sink_end = std::min(std::min(o.sinks, n), *recent_begin);
}
}  // namespace

Status check_token_options(const TokenSelectOptions& o, const char* prefix) {
  const std::string at = prefix;
  if (o.budget < 1) return Status::invalid(at + "budget: expected an integer >= 1 (tokens), received " + num(o.budget));
  if (o.sinks < 0) return Status::invalid(at + "sinks: expected an integer >= 0, received " + num(o.sinks));
  if (o.recent < 0) return Status::invalid(at + "recent: expected an integer >= 0, received " + num(o.recent));
  return Status::ok();
}

int64_t token_selected_count(int64_t n, int64_t n_q, const TokenSelectOptions& o) {
  if (n <= 0) return 0;
  if (n <= o.budget) return n;
  int64_t sink_end, recent_begin;
  forced_tokens(n, n_q, o, &sink_end, &recent_begin);
  return std::max(o.budget, sink_end + (n - recent_begin));
}

void select_tokens(const float* w, int64_t n, int64_t n_q, const TokenSelectOptions& o, std::vector<int32_t>& out,
                   std::vector<int32_t>& cand) {
  out.clear();
  cand.clear();
  if (n <= 0) return;
  if (n <= o.budget) {
    for (int64_t t = 0; t < n; ++t) out.push_back(static_cast<int32_t>(t));
    return;
  }
  int64_t sink_end, recent_begin;
  forced_tokens(n, n_q, o, &sink_end, &recent_begin);
  const int64_t forced = sink_end + (n - recent_begin);
  const int64_t k = std::max<int64_t>(0, o.budget - forced);
  for (int64_t t = sink_end; t < recent_begin; ++t) cand.push_back(static_cast<int32_t>(t));
  // Exact top k under a strict total order (higher weight, then lower index).
  auto better = [w](int32_t a, int32_t b) {
    const float sa = tidal_rank_key(w[a]), sb = tidal_rank_key(w[b]);
    return sa > sb || (sa == sb && a < b);
  };
  const int64_t take = std::min<int64_t>(k, static_cast<int64_t>(cand.size()));
  if (take < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + take, cand.end(), better);
  cand.resize(static_cast<size_t>(take));
  for (int64_t t = 0; t < sink_end; ++t) out.push_back(static_cast<int32_t>(t));
  out.insert(out.end(), cand.begin(), cand.end());
  for (int64_t t = recent_begin; t < n; ++t) out.push_back(static_cast<int32_t>(t));
  std::sort(out.begin(), out.end());
}

Status tidal_select(const TidalSelectParams& p, int64_t* n_sel_out) {
  const int64_t H = p.n_kv_heads, R = p.rows, n = p.n_kv;
  const Status so = check_token_options(p.opts, "options.");
  if (!so.is_ok()) return so;
  if (p.gqa != GqaCombine::Max && p.gqa != GqaCombine::Sum) return Status::invalid("options.gqa: expected 'max' or 'sum'");
  if (H < 1 || R < 1 || n < 1 || p.n_q < 1) return Status::invalid("weights: expected nKvHeads >= 1, rows >= 1, nKv >= 1 and nQ >= 1");
  const int64_t elems = checked_mul(checked_mul(H, R), n);  // checked: a wrapped product must not pass
  if (elems < 0 || p.w_len != elems) return Status::invalid("weights: expected " + num(elems) + " elements, received " + num(p.w_len));
  const int64_t count = token_selected_count(n, p.n_q, p.opts);
  if (p.indices_len < H * count) return Status::invalid("indices: expected room for " + num(H * count) + " elements, received " + num(p.indices_len));
  std::vector<float> comb(static_cast<size_t>(n));
  std::vector<int32_t> out, scratch;
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t t = 0; t < n; ++t) {
      float acc = 0.0f;
      for (int64_t r = 0; r < R; ++r) {
        const float x = p.w[(h * R + r) * n + t];
        if (std::isnan(x) || x == std::numeric_limits<float>::infinity()) {
          return Status::invalid("weights[" + num(h * R + r) + "][" + num(t) + "]: expected a finite number or -Infinity, received " + kv::js_number(x));
        }
        acc = r == 0 ? x : p.gqa == GqaCombine::Max ? std::max(acc, x) : acc + x;
      }
      comb[t] = acc;
    }
    select_tokens(comb.data(), n, p.n_q, p.opts, out, scratch);
    std::copy(out.begin(), out.end(), p.indices + h * count);
  }
  *n_sel_out = count;
  return Status::ok();
}

}  // namespace tp::sparse
