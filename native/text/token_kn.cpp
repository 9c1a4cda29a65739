// Token-level Kneser-Ney (token_kn.h): training by sorting n-gram positions,
// queries by binary search per order over the caller's blob.
#include "token_kn.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace tp::text {
namespace {

constexpr size_t kHeaderWords = 4;  // magic, N, V, reserved

// Chen & Goodman discounts from count-of-counts n[1..4] (the byte model's
// rule and fallbacks, in float64).
void estimate_discounts(const uint64_t n[5], double d[3]) {
  const double fallback = 0.5;
  double prev = fallback;
  for (int r = 1; r <= 3; ++r) {
    double v;
    if (n[1] + 2 * n[2] == 0 || n[r] == 0) {
      v = r == 1 ? fallback : prev;
    } else {
      const double y = static_cast<double>(n[1]) / static_cast<double>(n[1] + 2 * n[2]);
      v = r - (r + 1) * y * static_cast<double>(n[r + 1]) / static_cast<double>(n[r]);
    }
    v = std::min(std::max(v, 0.0), static_cast<double>(r));
    d[r - 1] = v;
    prev = v;
  }
}

// Offsets of one order's arrays inside the blob.
struct OrderView {
  uint64_t n_ctx = 0, n_ent = 0;
  const uint32_t* ctx = nullptr;
  const uint32_t* begin = nullptr;
  const uint32_t* sym = nullptr;
  const uint32_t* raw = nullptr;
  const uint32_t* cont = nullptr;
};

// Parses the header; every array must lie inside the blob and fill it exactly.
Status parse(const uint32_t* blob, size_t words, int* order, uint32_t* vocab, OrderView* views) {
  if (words < kHeaderWords || blob[0] != kTokenKnMagic) return Status::invalid("model: not a token KN blob (bad magic or too short)");
  const uint32_t n = blob[1], v = blob[2];
  if (n < 1 || n > static_cast<uint32_t>(kTokenKnMaxOrder)) return Status::invalid("model: order " + num(n) + " out of [1, 8]");
  if (v < 1 || v > kTokenKnMaxVocab) return Status::invalid("model: vocabulary size " + num(v) + " out of [1, 2^24]");
  uint64_t pos = kHeaderWords + 2ull * n;
  if (words < pos) return Status::invalid("model: truncated header");
  for (uint32_t k = 0; k < n; ++k) {
    OrderView& o = views[k];
    o.n_ctx = blob[kHeaderWords + 2 * k];
    o.n_ent = blob[kHeaderWords + 2 * k + 1];
    const uint64_t need = o.n_ctx * k + (o.n_ctx + 1) + 3 * o.n_ent;  // < 2^36: no overflow
    if (need > words - pos) return Status::invalid("model: order " + num(k) + " runs past the end of the blob");
    o.ctx = blob + pos;
    o.begin = o.ctx + o.n_ctx * k;
    o.sym = o.begin + o.n_ctx + 1;
    o.raw = o.sym + o.n_ent;
    o.cont = o.raw + o.n_ent;
    pos += need;
  }
  if (pos != words) return Status::invalid("model: " + num(static_cast<int64_t>(words - pos)) + " words after the last order");
  *order = static_cast<int>(n);
  *vocab = v;
  return Status::ok();
}

// Index of the context h[0..k) in order k (binary search), or -1.
int64_t find_context(const OrderView& o, int k, const uint32_t* h) {
  if (k == 0) return o.n_ctx > 0 ? 0 : -1;
  uint64_t lo = 0, hi = o.n_ctx;
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2;
    const uint32_t* row = o.ctx + mid * k;
    int cmp = 0;
    for (int i = 0; i < k && cmp == 0; ++i) cmp = row[i] < h[i] ? -1 : row[i] > h[i] ? 1 : 0;
    if (cmp == 0) return static_cast<int64_t>(mid);
    if (cmp < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

}  // namespace

Status token_kn_train(const uint32_t* tokens, size_t n, uint32_t vocab, int order, std::vector<uint32_t>* blob,
                      std::vector<double>* discounts) {
  if (order < 1 || order > kTokenKnMaxOrder) return Status::invalid("order: expected an integer in [1, 8], received " + num(order));
  if (vocab < 1 || vocab > kTokenKnMaxVocab) return Status::invalid("vocab: expected an integer in [1, 2^24], received " + num(vocab));
  if (n >= (1ull << 32)) return Status::invalid("tokens: expected fewer than 2^32 tokens, received " + num(static_cast<int64_t>(n)));
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] >= vocab) return Status::invalid("tokens[" + num(static_cast<int64_t>(i)) + "]: expected an id < " + num(vocab) + ", received " + num(tokens[i]));
  }
  struct Order {
    std::vector<uint32_t> ctx, begin, sym, raw, cont;
  };
  std::vector<Order> orders(order);
  discounts->assign(static_cast<size_t>(order) * 6, 0.0);
  std::vector<uint32_t> pos;
  for (int k = 0; k < order; ++k) {
    Order& o = orders[k];
    pos.clear();
    for (size_t i = k; i < n; ++i) pos.push_back(static_cast<uint32_t>(i));
    // Sort by the n-gram tokens[i-k..i], then by the token before it (none: last).
    auto pred = [&](uint32_t i) -> uint64_t { return i > static_cast<uint32_t>(k) ? tokens[i - k - 1] : (1ull << 32); };
    std::sort(pos.begin(), pos.end(), [&](uint32_t a, uint32_t b) {
      for (int j = k; j >= 0; --j) {  // oldest token first
        const uint32_t x = tokens[a - j], y = tokens[b - j];
        if (x != y) return x < y;
      }
      const uint64_t pa = pred(a), pb = pred(b);
      return pa != pb ? pa < pb : a < b;
    });
    uint64_t nraw[5] = {0, 0, 0, 0, 0}, ncont[5] = {0, 0, 0, 0, 0};
    size_t g = 0;
    while (g < pos.size()) {
      // One entry: the positions with the same n-gram.
      size_t e = g + 1;
      auto same_gram = [&](uint32_t a, uint32_t b) {
        for (int j = 0; j <= k; ++j) if (tokens[a - j] != tokens[b - j]) return false;
        return true;
      };
      while (e < pos.size() && same_gram(pos[g], pos[e])) ++e;
      uint32_t raw = static_cast<uint32_t>(e - g), cont = 0;
      for (size_t i = g; i < e; ++i) {
        const uint64_t p = pred(pos[i]);
        if (p < (1ull << 32) && (i == g || pred(pos[i - 1]) != p)) ++cont;
      }
      const uint32_t first = pos[g];
      bool new_ctx = o.begin.empty();
      if (!new_ctx) {
        const uint32_t prev = pos[g - 1];
        for (int j = 1; j <= k; ++j) if (tokens[first - j] != tokens[prev - j]) new_ctx = true;
      }
      if (new_ctx) {
        for (int j = k; j >= 1; --j) o.ctx.push_back(tokens[first - j]);
        o.begin.push_back(static_cast<uint32_t>(o.sym.size()));
      }
      o.sym.push_back(tokens[first]);
      o.raw.push_back(raw);
      o.cont.push_back(cont);
      ++nraw[std::min<uint32_t>(raw, 4)];
      if (cont > 0) ++ncont[std::min<uint32_t>(cont, 4)];
      g = e;
    }
    o.begin.push_back(static_cast<uint32_t>(o.sym.size()));
    if (o.sym.empty()) o.begin.assign(1, 0);  // no contexts: begin has one entry
    estimate_discounts(nraw, &(*discounts)[k * 6]);
    estimate_discounts(ncont, &(*discounts)[k * 6 + 3]);
  }
  blob->assign({kTokenKnMagic, static_cast<uint32_t>(order), vocab, 0});
  for (const Order& o : orders) {
    blob->push_back(static_cast<uint32_t>(o.begin.size() - 1));
    blob->push_back(static_cast<uint32_t>(o.sym.size()));
  }
  for (const Order& o : orders) {
    blob->insert(blob->end(), o.ctx.begin(), o.ctx.end());
    blob->insert(blob->end(), o.begin.begin(), o.begin.end());
    blob->insert(blob->end(), o.sym.begin(), o.sym.end());
    blob->insert(blob->end(), o.raw.begin(), o.raw.end());
    blob->insert(blob->end(), o.cont.begin(), o.cont.end());
  }
  return Status::ok();
}

Status token_kn_next(const uint32_t* blob, size_t words, const double* discounts, size_t n_discounts, const uint32_t* ctx,
                     size_t len, double* out, size_t out_len) {
  int order = 0;
  uint32_t vocab = 0;
  OrderView views[kTokenKnMaxOrder];
  Status s = parse(blob, words, &order, &vocab, views);
  if (!s.is_ok()) return s;
  if (n_discounts != static_cast<size_t>(order) * 6) return Status::invalid("discounts: expected " + num(order * 6) + " values, received " + num(static_cast<int64_t>(n_discounts)));
  if (out_len != vocab) return Status::invalid("out: expected " + num(vocab) + " entries, received " + num(static_cast<int64_t>(out_len)));
  const int top = static_cast<int>(std::min<size_t>(len, static_cast<size_t>(order - 1)));
  const uint32_t* h = ctx + (len - top);  // the last `top` tokens
  for (int i = 0; i < top; ++i) {
    if (h[i] >= vocab) return Status::invalid("context: expected ids < " + num(vocab) + ", received " + num(h[i]));
  }
  // Walk the weights down from the top order, remembering the levels that add terms.
  struct Level {
    int k;
    uint32_t b, e;
    const uint32_t* counts;
    const double* d;
    double w, total;
  };
  Level levels[kTokenKnMaxOrder];
  int n_levels = 0;
  double w = 1.0;
  for (int k = top; k >= 0; --k) {
    const OrderView& o = views[k];
    const int64_t c = find_context(o, k, h + (top - k));
    if (c < 0) continue;
    const uint32_t b = o.begin[c], e = o.begin[c + 1];
    if (b > e || e > o.n_ent) return Status::invalid("model: order " + num(k) + " has a bad entry range");
    const bool raw = k == top;
    const uint32_t* counts = raw ? o.raw : o.cont;
    const double* d = discounts + k * 6 + (raw ? 0 : 3);
    for (int r = 0; r < 3; ++r) {
      if (!(d[r] >= 0.0 && d[r] <= r + 1)) return Status::invalid("discounts: expected D_r in [0, r], received " + std::to_string(d[r]));
    }
    double total = 0, gamma = 0;
    for (uint32_t i = b; i < e; ++i) {
      if (o.sym[i] >= vocab) return Status::invalid("model: a token id >= the vocabulary size");
      const uint32_t cnt = counts[i];
      total += cnt;
      if (cnt > 0) gamma += d[std::min<uint32_t>(cnt, 3) - 1];
    }
    if (total == 0) continue;  // counts all zero: the weight passes down
    levels[n_levels++] = {k, b, e, counts, d, w, total};
    w *= gamma / total;
  }
  // The uniform floor (token_kn.h): P = (1 - 2^-20) P_KN + 2^-20 / V.
  const double keep = 1.0 - kTokenKnFloor;
  const double base = (keep * w + kTokenKnFloor) / vocab;
  for (uint32_t i = 0; i < vocab; ++i) out[i] = base;
  for (int l = 0; l < n_levels; ++l) {
    const Level& lv = levels[l];
    const OrderView& o = views[lv.k];
    const double scale = keep * lv.w / lv.total;
    for (uint32_t i = lv.b; i < lv.e; ++i) {
      const uint32_t cnt = lv.counts[i];
      if (cnt == 0) continue;
      const double dd = lv.d[std::min<uint32_t>(cnt, 3) - 1];
      out[o.sym[i]] += scale * std::max(cnt - dd, 0.0);
    }
  }
  return Status::ok();
}

}  // namespace tp::text
