// KnModel training: count, estimate discounts, prune to the size limit.
//
// Counting sorts the text positions by their context read backwards
// (byte i-1 first, then i-2, ..., i-maxOrder; "before the text" sorts first),
// with an LSD radix sort: maxOrder stable counting-sort passes over uint32
// positions. Then every order-k context is a run of consecutive positions,
// and one walk over the sorted positions closes the runs of all orders,
// deepest first, so a closing order-(k+1) context adds 1 to the continuation
// count of each byte it saw in its parent (the order-k run still open).
// The walk runs twice: first for the count-of-counts (discounts) and the
// bytes each context would take, which fix a count threshold; then to emit
// the contexts above it. A last exact pass trims to max_bytes.
#include <algorithm>
#include <array>
#include <map>

#include "kn_model.h"

namespace tp::coding {
namespace {

// The pruning order: a context with a smaller count goes first; on equal
// counts the higher order goes first. A parent's count is >= its child's and
// its order lower, so a kept context always has its parent kept. (Weighting
// counts by alpha^(maxOrder - order), alpha = 2 or 4, to keep more short
// contexts gave 1.787 / 1.830 instead of 1.770 bits/byte on the held-out
// corpus at order 6 and 8 MB, for < 0.3% better short-context windows.)
struct Priority {
  uint64_t value;
  int order;
};
bool drop_before(const Priority& a, const Priority& b) {  // a is dropped no later than b
  return a.value < b.value || (a.value == b.value && a.order > b.order);
}

// D1, D2, D3+ (16.16) from the count-of-counts n[1..4] (Chen & Goodman):
// Y = n1 / (n1 + 2 n2), D_r = r - (r + 1) Y n_{r+1} / n_r, clamped to [0, r].
void discounts(const uint64_t n[5], uint32_t d[3]) {
  const double fallback[3] = {0.5, 1.0, 1.5};
  double prev = fallback[0];
  for (int r = 1; r <= 3; ++r) {
    double v;
    if (n[1] + 2 * n[2] == 0 || n[r] == 0) {
      v = r == 1 ? fallback[0] : prev;
    } else {
      const double y = static_cast<double>(n[1]) / static_cast<double>(n[1] + 2 * n[2]);
      v = r - (r + 1) * y * static_cast<double>(n[r + 1]) / static_cast<double>(n[r]);
    }
    v = std::min(std::max(v, 0.0), static_cast<double>(r));
    d[r - 1] = static_cast<uint32_t>(v * 65536.0 + 0.5);
    if (d[r - 1] > static_cast<uint32_t>(r) << 16) d[r - 1] = static_cast<uint32_t>(r) << 16;
    prev = v;
  }
}


// The open run of one order during the walk: counts of the bytes seen.
struct Run {
  std::array<uint32_t, kAlphabet> raw{};
  std::array<uint32_t, kAlphabet> cont{};
  std::vector<uint8_t> touched;  // bytes with raw > 0, in first-seen order
  uint8_t x = 0;                 // the context's oldest byte
  bool real = false;             // the context lies inside the text
};

class Trainer {
 public:
  Trainer(const uint8_t* t, size_t n, int order, const KnProgress& progress)
      : t_(t), n_(n), order_(order), progress_(progress), runs_(order + 1) {}
  static Priority priority(uint64_t count, int k) { return {count, k}; }

  Status run(uint64_t max_bytes, KnTables* out) {
    sort_positions();
    walk(false);  // statistics
    Priority cut = choose_cut(max_bytes);
    tables_.max_order = order_;
    tables_.trained_bytes = n_;
    tables_.orders.assign(order_ + 1, KnOrderTable{});
    for (int k = 0; k <= order_; ++k) {
      discounts(nraw_[k].data(), tables_.orders[k].d_raw);
      discounts(ncont_[k].data(), tables_.orders[k].d_cont);
    }
    cut_ = cut;
    walk(true);  // emit the contexts kept
    report(1.0);
    return trim(max_bytes, out);
  }

 private:
  int sym(uint32_t i, int d) const { return i >= static_cast<uint32_t>(d) ? t_[i - d] + 1 : 0; }
  void report(double f) {
    if (progress_) progress_(f);
  }

  // Positions sorted by (sym(i,1), sym(i,2), ..., sym(i,order)), stably.
  void sort_positions() {
    pos_.resize(n_);
    std::vector<uint32_t> tmp(n_);
    for (size_t i = 0; i < n_; ++i) pos_[i] = static_cast<uint32_t>(i);
    for (int d = order_; d >= 1; --d) {
      std::array<size_t, kAlphabet + 2> start{};
      for (size_t i = 0; i < n_; ++i) ++start[sym(static_cast<uint32_t>(i), d) + 1];
      for (int s = 1; s < kAlphabet + 2; ++s) start[s] += start[s - 1];
      for (size_t j = 0; j < n_; ++j) {
        const uint32_t i = pos_[j];
        tmp[start[sym(i, d)]++] = i;
      }
      pos_.swap(tmp);
      report(0.4 * (order_ - d + 1) / order_);
    }
  }

  // One pass over the sorted positions, closing runs at context boundaries.
  void walk(bool emit) {
    emit_ = emit;
    if (!emit) {
      nraw_.assign(order_ + 1, {});
      ncont_.assign(order_ + 1, {});
      size_by_count_.assign(order_ + 1, std::vector<uint64_t>(kDenseCounts, 0));
      size_big_.clear();
    }
    for (auto& r : runs_) {
      r.touched.clear();
      r.real = false;
    }
    for (size_t j = 0; j < n_; ++j) {
      const uint32_t i = pos_[j];
      int lcp = order_ + 1;  // first order whose context differs from the previous position's
      if (j > 0) {
        const uint32_t p = pos_[j - 1];
        for (int d = 1; d <= order_; ++d) {
          if (sym(i, d) != sym(p, d)) {
            lcp = d;
            break;
          }
        }
        for (int k = order_; k >= lcp; --k) close(k);
      } else {
        lcp = 0;
      }
      for (int k = lcp; k <= order_; ++k) {  // runs opened at this position
        runs_[k].real = i >= static_cast<uint32_t>(k);
        runs_[k].x = k >= 1 && runs_[k].real ? t_[i - k] : 0;
      }
      const uint8_t b = t_[i];
      const int top = static_cast<int>(std::min<uint64_t>(i, order_));
      for (int k = 0; k <= top; ++k) {
        Run& r = runs_[k];
        if (r.raw[b]++ == 0) r.touched.push_back(b);
      }
      if ((j & 0xfffff) == 0) report((emit ? 0.7 : 0.4) + 0.3 * static_cast<double>(j) / n_);
    }
    for (int k = order_; k >= 0; --k) close(k);
  }

  // Closes the open run of order k (its children are closed already).
  void close(int k) {
    Run& r = runs_[k];
    if (r.touched.empty() && k > 0) return;
    std::sort(r.touched.begin(), r.touched.end());
    uint64_t total = 0;
    for (uint8_t b : r.touched) total += r.raw[b];
    const Priority pr = priority(total, k);
    const bool has_cont = k < order_;
    if (!emit_) {
      uint64_t bytes = (k >= 1 ? 2 : 0) + kn_varint_size(r.touched.size());
      for (uint8_t b : r.touched) {
        const uint32_t c = r.raw[b], q = r.cont[b];
        if (c <= 4) ++nraw_[k][c];
        if (has_cont && q >= 1 && q <= 4) ++ncont_[k][q];
        bytes += 1 + kn_varint_size(c) + (has_cont ? kn_varint_size(q) : 0);
      }
      if (total < kDenseCounts) size_by_count_[k][total] += bytes;
      else size_big_[std::min<uint64_t>(total, 0xffffffffu)][k] += bytes;
    } else if (k == 0 || drop_before(cut_, pr)) {
      KnOrderTable& o = tables_.orders[k];
      if (k >= 1) {
        o.parent.push_back(static_cast<uint32_t>(tables_.orders[k - 1].contexts()));  // the open parent closes next
        o.x.push_back(r.x);
      } else {
        o.parent.push_back(0);
        o.x.push_back(0);
      }
      if (o.entry_begin.empty()) o.entry_begin.push_back(0);
      for (uint8_t b : r.touched) {
        o.sym.push_back(b);
        o.raw.push_back(r.raw[b]);
        if (has_cont) o.cont.push_back(r.cont[b]);
      }
      o.entry_begin.push_back(static_cast<uint32_t>(o.sym.size()));
    }
    if (k >= 1 && r.real) {
      Run& parent = runs_[k - 1];
      for (uint8_t b : r.touched) ++parent.cont[b];
    }
    for (uint8_t b : r.touched) r.raw[b] = r.cont[b] = 0;
    r.touched.clear();
  }

  // The largest priority to drop (everything dropping no later than it goes)
  // so the estimated size fits max_bytes; {0, order+1} drops nothing.
  Priority choose_cut(uint64_t max_bytes) {
    struct Bucket {
      Priority p;
      uint64_t bytes;
    };
    std::vector<Bucket> buckets;
    uint64_t total = 32 + 32 * static_cast<uint64_t>(order_ + 1);
    for (int k = 0; k <= order_; ++k) {
      for (uint32_t c = 0; c < kDenseCounts; ++c) {
        const uint64_t b = size_by_count_[k][c];
        total += b;
        if (b != 0 && k >= 1) buckets.push_back({priority(c, k), b});
      }
    }
    for (auto& kv : size_big_) {
      for (int k = 0; k <= order_; ++k) {
        total += kv.second[k];
        if (kv.second[k] != 0 && k >= 1) buckets.push_back({priority(kv.first, k), kv.second[k]});
      }
    }
    std::sort(buckets.begin(), buckets.end(), [](const Bucket& a, const Bucket& b) { return drop_before(a.p, b.p) && !drop_before(b.p, a.p); });
    Priority cut{0, order_ + 1};
    const uint64_t target = max_bytes - max_bytes / 64;  // room for the parent deltas the estimate counts as 1 byte
    for (const Bucket& b : buckets) {
      if (total <= target) break;
      total -= b.bytes;
      cut = b.p;
    }
    return cut;
  }

  // Drops contexts at or below `cut` from the emitted tables (parents stay
  // consistent: a dropped context's children are dropped too).
  void drop(KnTables* t, const Priority& cut) const {
    std::vector<uint32_t> remap_prev;  // new index of each old context of order k - 1 (UINT32_MAX: dropped)
    for (int k = 0; k <= t->max_order; ++k) {
      KnOrderTable& o = t->orders[k];
      KnOrderTable n;
      std::copy(o.d_raw, o.d_raw + 3, n.d_raw);
      std::copy(o.d_cont, o.d_cont + 3, n.d_cont);
      std::vector<uint32_t> remap(o.contexts(), UINT32_MAX);
      n.entry_begin.push_back(0);
      for (size_t c = 0; c < o.contexts(); ++c) {
        uint64_t total = 0;
        for (uint32_t e = o.entry_begin[c]; e < o.entry_begin[c + 1]; ++e) total += o.raw[e];
        const Priority pr = priority(total, k);
        if (k >= 1 && (!drop_before(cut, pr) || remap_prev[o.parent[c]] == UINT32_MAX)) continue;
        remap[c] = static_cast<uint32_t>(n.parent.size());
        n.parent.push_back(k >= 1 ? remap_prev[o.parent[c]] : 0);
        n.x.push_back(o.x[c]);
        for (uint32_t e = o.entry_begin[c]; e < o.entry_begin[c + 1]; ++e) {
          n.sym.push_back(o.sym[e]);
          n.raw.push_back(o.raw[e]);
          if (!o.cont.empty()) n.cont.push_back(o.cont[e]);
        }
        n.entry_begin.push_back(static_cast<uint32_t>(n.sym.size()));
      }
      o = std::move(n);
      remap_prev.swap(remap);
    }
  }

  // Exact size check; drops the next priority level until the file fits.
  Status trim(uint64_t max_bytes, KnTables* out) {
    Priority cut = cut_;
    for (;;) {
      const uint64_t size = kn_serialized_size(tables_);
      if (size <= max_bytes) break;
      // The next level: the smallest priority still kept, above cut.
      bool any = false;
      Priority next{UINT64_MAX, 0};
      for (int k = 1; k <= order_; ++k) {
        const KnOrderTable& o = tables_.orders[k];
        for (size_t c = 0; c < o.contexts(); ++c) {
          uint64_t total = 0;
          for (uint32_t e = o.entry_begin[c]; e < o.entry_begin[c + 1]; ++e) total += o.raw[e];
          const Priority pr = priority(total, k);
          if (!any || drop_before(pr, next)) next = pr;
          any = true;
        }
      }
      if (!any) {
        return Status::invalid("maxBytes " + std::to_string(max_bytes) + " is too small: the order-0 model alone takes " +
                               std::to_string(size) + " bytes");
      }
      cut = next;
      drop(&tables_, cut);
    }
    *out = std::move(tables_);
    return Status::ok();
  }

  static constexpr uint32_t kDenseCounts = 1 << 16;
  const uint8_t* t_;
  size_t n_;
  int order_;
  KnProgress progress_;
  std::vector<uint32_t> pos_;
  std::vector<Run> runs_;
  bool emit_ = false;
  Priority cut_{0, 0};
  std::vector<std::array<uint64_t, 5>> nraw_, ncont_;   // [order][r] count-of-counts, r = 1..4
  std::vector<std::vector<uint64_t>> size_by_count_;   // [order][count] estimated bytes
  std::map<uint32_t, std::array<uint64_t, kKnMaxOrderLimit + 1>> size_big_;  // counts >= kDenseCounts
  KnTables tables_;
};

}  // namespace

Status KnModel::train(const uint8_t* text, size_t n, const KnTrainOptions& opts, std::unique_ptr<KnModel>* out,
                      const KnProgress& progress) {
  if (opts.max_order < 1 || opts.max_order > kKnMaxOrderLimit) {
    return Status::invalid("maxOrder: expected an integer in [1, " + std::to_string(kKnMaxOrderLimit) + "], received " +
                           std::to_string(opts.max_order));
  }
  if (opts.max_bytes < 4096 || opts.max_bytes > (1ull << 31)) {
    return Status::invalid("maxBytes: expected an integer in [4096, 2^31], received " + std::to_string(opts.max_bytes));
  }
  if (n >= 0xffffffffull) return Status::invalid("text: expected fewer than 2^32 - 1 bytes, received " + std::to_string(n));
  KnTables tables;
  Status s;
  try {
    Trainer trainer(text, n, opts.max_order, progress);
    s = trainer.run(opts.max_bytes, &tables);
    if (!s.is_ok()) return s;
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("train: out of memory for " + std::to_string(n) + " bytes of text");
  }
  std::vector<uint8_t> bytes;
  s = kn_serialize(tables, &bytes);
  if (!s.is_ok()) return s;
  return from_bytes(bytes.data(), bytes.size(), out);
}

}  // namespace tp::coding
