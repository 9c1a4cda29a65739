// Incremental batch BPE (see dynamic_bpe.h for the semantics and the source
// they follow). Data structures, for n base tokens:
//   tok/nxt/prv [n]: the batch as doubly linked lists (one per sequence); a
//     merged token keeps the position of its first base token, so positions
//     stay in batch order and a token's position is its base start;
//   pairs: one record per distinct (a, b) seen, with its validity (asked
//     once, in one oracle call per merge for all the pairs that merge
//     created; a pair waits, counted but out of the heap, until its answer
//     comes), its live occurrence count and a list of candidate positions
//     (stale entries are dropped lazily: a position whose pair changed never
//     gets that pair back, because merged ids are always fresh);
//   a max-heap of (count, first position) entries. Entries are lazy: every
//     count increase pushes a fresh entry, and a popped entry that no longer
//     matches its pair is re-pushed with the pair's current key. Invariant:
//     each live pair has an entry at least as good as its true key, so the
//     first popped entry that matches exactly is the true best pair.
// A merge touches only the occurrences of the merged pair and their two
// neighbours, so the cost of a merge is O(occurrences * log) instead of a
// pass over the batch.
#include "dynamic_bpe.h"

#include <algorithm>
#include <queue>
#include <unordered_map>

namespace tp::text {
namespace {

struct PairRec {
  int32_t a = 0, b = 0;
  int8_t valid = -1;          // -1 not asked yet, 0 never merges, 1 may merge
  bool first_known = true;
  int64_t count = 0;
  int32_t first = INT32_MAX;  // smallest live position (when first_known)
  std::vector<int32_t> pos;   // candidate positions (superset of the live ones)
};

struct HeapEntry {
  int64_t count;
  int32_t first;  // -1: optimistic (first position unknown)
  int32_t pair;
};

// Better = more occurrences, then earlier first occurrence.
struct Worse {
  bool operator()(const HeapEntry& x, const HeapEntry& y) const {
    if (x.count != y.count) return x.count < y.count;
    if (x.first != y.first) return x.first > y.first;
    return x.pair > y.pair;
  }
};

class DynBpe {
 public:
  DynBpe(const DynBpeInput& in, DynBpeOracle oracle, DynBpeOnMerge on_merge, void* ctx)
      : in_(in), oracle_(oracle), on_merge_(on_merge), ctx_(ctx) {}

  Status run(DynBpeOutput* out);

 private:
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
  bool live_pair_at(int32_t p, const PairRec& r) const {
    return alive_[p] && nxt_[p] >= 0 && tok_[p] == r.a && tok_[nxt_[p]] == r.b;
  }
  // The pair record of (tok[p], tok[nxt[p]]), created on first sight (validity not asked yet).
  int32_t pair_at(int32_t p);
  void add_occurrence(int32_t p);
  bool resolve();
  void remove_occurrence(int32_t p);
  void refresh(PairRec& r);
  int32_t pop_best();
  void merge(int32_t pid, int32_t id, int64_t* applied);

  const DynBpeInput& in_;
  DynBpeOracle oracle_;
  DynBpeOnMerge on_merge_;
  void* ctx_;
  std::vector<int32_t> unknown_;  // pairs created since the last resolve()
  std::vector<int32_t> tok_, nxt_, prv_;
  std::vector<int32_t> pid_at_;  // [n] the pair record of (tok[p], tok[nxt[p]]) while p and nxt[p] are live
  std::vector<uint8_t> alive_;
  std::vector<PairRec> pairs_;
  std::unordered_map<uint64_t, int32_t> index_;
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, Worse> heap_;
};

int32_t DynBpe::pair_at(int32_t p) {
  const int32_t a = tok_[p], b = tok_[nxt_[p]];
  auto it = index_.find(key(a, b));
  if (it != index_.end()) return it->second;
  const int32_t id = static_cast<int32_t>(pairs_.size());
  PairRec r;
  r.a = a;
  r.b = b;
  pairs_.push_back(std::move(r));
  index_.emplace(key(a, b), id);
  unknown_.push_back(id);
  return id;
}

// Counts the pair starting at p (p and nxt[p] live); a valid pair gets a
// fresh heap entry, a pair not asked about yet waits for resolve().
void DynBpe::add_occurrence(int32_t p) {
  const int32_t pid = pair_at(p);
  pid_at_[p] = pid;
  PairRec& r = pairs_[pid];
  if (r.valid == 0) return;
  r.count++;
  r.pos.push_back(p);
  if (r.first_known && p < r.first) r.first = p;
  if (r.valid == 1) heap_.push({r.count, r.first_known ? r.first : -1, pid});
}

// Uncounts the pair starting at p (counted when it appeared, unless invalid).
void DynBpe::remove_occurrence(int32_t p) {
  PairRec& r = pairs_[pid_at_[p]];
  if (r.valid == 0) return;
  r.count--;
  if (r.first_known && r.first == p) r.first_known = false;
}

// Asks the oracle about every pair created since the last call (one call),
// then gives each valid one that still occurs its heap entry.
bool DynBpe::resolve() {
  if (unknown_.empty()) return true;
  const size_t n = unknown_.size();
  std::vector<int32_t> a(n), b(n);
  std::vector<uint8_t> ok(n, 0);
  for (size_t i = 0; i < n; i++) {
    a[i] = pairs_[unknown_[i]].a;
    b[i] = pairs_[unknown_[i]].b;
  }
  if (oracle_(ctx_, a.data(), b.data(), static_cast<int64_t>(n), ok.data()) < 0) return false;
  for (size_t i = 0; i < n; i++) {
    PairRec& r = pairs_[unknown_[i]];
    r.valid = ok[i] ? 1 : 0;
    if (r.valid == 0) {
      std::vector<int32_t>().swap(r.pos);
    } else if (r.count > 0) {
      heap_.push({r.count, r.first_known ? r.first : -1, unknown_[i]});
    }
  }
  unknown_.clear();
  return true;
}

// Drops stale positions, sorts the rest and sets first exactly.
void DynBpe::refresh(PairRec& r) {
  size_t k = 0;
  for (int32_t p : r.pos) {
    if (live_pair_at(p, r)) r.pos[k++] = p;
  }
  r.pos.resize(k);
  std::sort(r.pos.begin(), r.pos.end());
  r.first = k > 0 ? r.pos[0] : INT32_MAX;
  r.first_known = true;
}

int32_t DynBpe::pop_best() {
  while (!heap_.empty()) {
    const HeapEntry e = heap_.top();
    heap_.pop();
    PairRec& r = pairs_[e.pair];
    if (r.valid != 1 || r.count <= 0 || e.count < r.count) continue;  // gone, or a better entry exists
    if (e.count > r.count || !r.first_known || e.first != r.first) {
      if (!r.first_known) refresh(r);
      heap_.push({r.count, r.first, e.pair});
      continue;
    }
    return e.pair;
  }
  return -1;
}

// Replaces every non-overlapping occurrence of the pair, left to right, by id.
void DynBpe::merge(int32_t pid, int32_t id, int64_t* applied) {
  refresh(pairs_[pid]);
  const std::vector<int32_t> positions = std::move(pairs_[pid].pos);
  pairs_[pid].pos.clear();
  const int32_t a = pairs_[pid].a, b = pairs_[pid].b;
  int64_t done = 0;
  for (int32_t p : positions) {
    // An earlier replacement in this pass may have consumed p or its right neighbour ("a a a").
    if (!(alive_[p] && nxt_[p] >= 0 && tok_[p] == a && tok_[nxt_[p]] == b)) continue;
    const int32_t q = nxt_[p], prev = prv_[p], r = nxt_[q];
    if (prev >= 0) remove_occurrence(prev);
    remove_occurrence(p);
    if (r >= 0) remove_occurrence(q);
    tok_[p] = id;
    alive_[q] = 0;
    nxt_[p] = r;
    if (r >= 0) prv_[r] = p;
    if (prev >= 0) add_occurrence(prev);
    if (r >= 0) add_occurrence(p);
    done++;
  }
  *applied = done;
}

Status DynBpe::run(DynBpeOutput* out) {
  const int64_t n = in_.n;
  tok_.assign(in_.tokens, in_.tokens + n);
  nxt_.assign(n, -1);
  prv_.assign(n, -1);
  alive_.assign(n, 1);
  pid_at_.assign(n, -1);
  index_.reserve(static_cast<size_t>(n / 2 + 16));
  for (int64_t s = 0; s < in_.n_seq; s++) {
    for (int64_t i = in_.offsets[s]; i < in_.offsets[s + 1]; i++) {
      if (i + 1 < in_.offsets[s + 1]) nxt_[i] = static_cast<int32_t>(i + 1);
      if (i > in_.offsets[s]) prv_[i] = static_cast<int32_t>(i - 1);
    }
  }
  // Initial counts in batch order (positions arrive sorted, so first is exact), then one oracle call and one heap entry per valid pair.
  for (int32_t p = 0; p < n; p++) {
    if (nxt_[p] >= 0) add_occurrence(p);
  }
  if (!resolve()) return Status::internal("dynamic BPE: the pair validity callback failed");
  int64_t total = n;
  for (int64_t k = 0; k < in_.max_merges && total > in_.target_total; k++) {
    const int32_t pid = pop_best();
    if (pid < 0 || pairs_[pid].count < in_.min_count) break;  // no valid pair left (the official early exit)
    const int32_t id = static_cast<int32_t>(in_.first_new_id + k);
    const int64_t count = pairs_[pid].count;
    if (on_merge_ != nullptr && on_merge_(ctx_, pairs_[pid].a, pairs_[pid].b, id, count) < 0) {
      return Status::internal("dynamic BPE: the merge callback failed");
    }
    int64_t applied = 0;
    out->merge_a.push_back(pairs_[pid].a);
    out->merge_b.push_back(pairs_[pid].b);
    merge(pid, id, &applied);
    if (!resolve()) return Status::internal("dynamic BPE: the pair validity callback failed");
    out->merge_count.push_back(count);
    out->merge_applied.push_back(applied);
    total -= applied;
  }
  out->tokens.clear();
  out->starts.clear();
  out->tokens.reserve(static_cast<size_t>(total));
  out->starts.reserve(static_cast<size_t>(total));
  out->offsets.assign(1, 0);
  for (int64_t s = 0; s < in_.n_seq; s++) {
    const int64_t begin = in_.offsets[s];
    if (begin < in_.offsets[s + 1]) {
      for (int32_t p = static_cast<int32_t>(begin); p >= 0; p = nxt_[p]) {
        out->tokens.push_back(tok_[p]);
        out->starts.push_back(static_cast<int32_t>(p - begin));
      }
    }
    out->offsets.push_back(static_cast<int64_t>(out->tokens.size()));
  }
  return Status::ok();
}

}  // namespace

Status dynamic_bpe(const DynBpeInput& in, DynBpeOracle oracle, DynBpeOnMerge on_merge, void* ctx, DynBpeOutput* out) {
  if (out == nullptr || oracle == nullptr) return Status::invalid("dynamic BPE: missing output or oracle");
  if (in.n < 0 || in.n >= INT32_MAX || in.n_seq < 0 || (in.n > 0 && in.tokens == nullptr) || in.offsets == nullptr) {
    return Status::invalid("tokens: expected fewer than 2^31 - 1 tokens and n_seq + 1 offsets");
  }
  if (in.offsets[0] != 0 || in.offsets[in.n_seq] != in.n) return Status::invalid("offsets: expected 0 first and the token count last");
  for (int64_t s = 0; s < in.n_seq; s++) {
    if (in.offsets[s + 1] < in.offsets[s]) return Status::invalid("offsets: expected a non-decreasing list, at sequence " + num(s));
  }
  if (in.first_new_id < 0 || in.max_merges < 0 || in.min_count < 1 || in.target_total < 0 ||
      static_cast<int64_t>(in.first_new_id) + in.max_merges > INT32_MAX) {
    return Status::invalid("dynamic BPE: expected firstNewId >= 0, maxMerges >= 0 with firstNewId + maxMerges < 2^31, minCount >= 1, targetTotal >= 0");
  }
  for (int64_t i = 0; i < in.n; i++) {
    if (in.tokens[i] < 0 || in.tokens[i] >= in.first_new_id) {
      return Status::invalid("tokens[" + num(i) + "]: expected an id in [0, " + num(in.first_new_id) + "), received " + num(in.tokens[i]));
    }
  }
  *out = DynBpeOutput{};
  DynBpe job(in, oracle, on_merge, ctx);
  return job.run(out);
}

}  // namespace tp::text
