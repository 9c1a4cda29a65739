// Rank-ordered BPE encoding of byte pieces (see bpe_merges.h): a min-heap of
// candidate merges (rank, position) over a doubly linked list of symbols, as
// Hugging Face tokenizers' Word::merge_all does; stale heap entries are
// skipped when popped. O(L log L) per piece of L bytes.
#include <algorithm>
#include <functional>

#include "bpe_merges.h"

namespace tp::text {

Status build_merge_table(const int32_t* merges, int64_t n_merges, int64_t n_ids, MergeTable* out) {
  out->map.clear();
  out->map.reserve(static_cast<size_t>(n_merges) * 2);
  for (int64_t r = 0; r < n_merges; ++r) {
    const int32_t a = merges[3 * r], b = merges[3 * r + 1], c = merges[3 * r + 2];
    if (a < 0 || a >= n_ids || b < 0 || b >= n_ids || c < 0 || c >= n_ids) {
      return Status::invalid("merges: expected ids in [0, " + num(n_ids) + ") in row " + num(r) + ", received (" + num(a) + ", " + num(b) + ", " + num(c) + ")");
    }
    if (!out->map.emplace(pair_key(a, b), std::make_pair(static_cast<int32_t>(r), c)).second) {
      return Status::invalid("merges: expected each (left, right) pair once, received (" + num(a) + ", " + num(b) + ") again in row " + num(r));
    }
  }
  return Status::ok();
}

namespace {

struct Cand {
  int32_t rank;
  int32_t pos;  // left symbol
  bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

// One piece: sym/prev/next are scratch of length n (reused across pieces).
void encode_piece(const MergeTable& table, const int32_t* byte_ids, const uint8_t* p, int32_t n, std::vector<int32_t>& sym,
                  std::vector<int32_t>& prev, std::vector<int32_t>& next, std::vector<Cand>& heap_store, std::vector<int32_t>* out) {
  sym.resize(n);
  prev.resize(n);
  next.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    sym[i] = byte_ids[p[i]];
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  // A min-heap over `heap` (std::greater): the lowest rank, then the leftmost position.
  std::vector<Cand>& heap = heap_store;
  heap.clear();
  const std::greater<Cand> later;
  auto push = [&](int32_t i) {
    const int32_t j = next[i];
    if (j < 0) return;
    auto it = table.map.find(pair_key(sym[i], sym[j]));
    if (it == table.map.end()) return;
    heap.push_back({it->second.first, i});
    std::push_heap(heap.begin(), heap.end(), later);
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    const Cand c = heap.back();
    heap.pop_back();
    const int32_t i = c.pos;
    if (sym[i] < 0) continue;  // merged into its left neighbour
    const int32_t j = next[i];
    if (j < 0) continue;
    auto it = table.map.find(pair_key(sym[i], sym[j]));
    if (it == table.map.end() || it->second.first != c.rank) continue;  // the pair here changed since the push
    sym[i] = it->second.second;
    sym[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (prev[i] >= 0) push(prev[i]);
    push(i);
  }
  for (int32_t i = n > 0 ? 0 : -1; i >= 0; i = next[i]) out->push_back(sym[i]);
}

}  // namespace

Status bpe_encode_pieces(const MergeTable& table, const int32_t* byte_ids, const uint8_t* bytes, const int64_t* piece_offsets,
                         int64_t n_pieces, std::vector<int32_t>* out_ids, std::vector<int64_t>* out_ends) {
  std::vector<int32_t> sym, prev, next;
  std::vector<Cand> heap_store;
  out_ends->reserve(out_ends->size() + static_cast<size_t>(n_pieces));
  for (int64_t k = 0; k < n_pieces; ++k) {
    const int64_t a = piece_offsets[k], b = piece_offsets[k + 1];
    if (b - a > INT32_MAX - 1) return Status::invalid("pieces: expected pieces under 2^31 bytes, received " + num(b - a));
    encode_piece(table, byte_ids, bytes + a, static_cast<int32_t>(b - a), sym, prev, next, heap_store, out_ids);
    out_ends->push_back(static_cast<int64_t>(out_ids->size()));
  }
  return Status::ok();
}

}  // namespace tp::text
