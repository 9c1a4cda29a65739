// Weighted pair counting and SuperBPE stage-2 merge training (see
// bpe_merges.h). Counts are updated locally per merge as the BPE trainer of
// Hugging Face tokenizers does (Word::merge returns the pair changes of one
// word; trainer.rs applies them weighted by the word's count): a merge costs
// O(occurrences of its pair), not O(corpus).
#include <algorithm>
#include <unordered_set>

#include "bpe_merges.h"

namespace tp::text {

namespace {

bool is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

Status check_chunks(const Chunks& ch, int64_t n_ids) {
  if (ch.n < 0) return Status::invalid("chunks: expected a count >= 0, received " + num(ch.n));
  if (ch.n > 0 && ch.offsets[0] != 0) return Status::invalid("offsets: expected offsets[0] = 0, received " + num(ch.offsets[0]));
  for (int64_t i = 0; i < ch.n; ++i) {
    if (ch.offsets[i + 1] < ch.offsets[i]) return Status::invalid("offsets: expected non-decreasing offsets, received a decrease at " + num(i + 1));
    if (ch.counts[i] < 1) return Status::invalid("counts: expected counts >= 1, received " + num(ch.counts[i]) + " at " + num(i));
  }
  const int64_t total = ch.n > 0 ? ch.offsets[ch.n] : 0;
  for (int64_t t = 0; t < total; ++t) {
    if (ch.tokens[t] < 0 || ch.tokens[t] >= n_ids) {
      return Status::invalid("tokens: expected ids in [0, " + num(n_ids) + "), received " + num(ch.tokens[t]) + " at " + num(t));
    }
  }
  return Status::ok();
}

// A max-heap entry: higher count first, then the smaller (left, right) key.
struct Top {
  int64_t count;
  uint64_t key;
  bool operator<(const Top& o) const { return count != o.count ? count < o.count : key > o.key; }
};

}  // namespace

int count_words(const uint8_t* b, size_t n) {
  int words = 0;
  bool in_word = false;
  for (size_t i = 0; i < n; ++i) {
    const bool s = is_space(b[i]);
    if (!s && !in_word) ++words;
    in_word = !s;
  }
  return words;
}

Status count_pairs(const Chunks& chunks, int64_t n_ids, std::unordered_map<uint64_t, int64_t>* out) {
  Status s = check_chunks(chunks, n_ids);
  if (!s.is_ok()) return s;
  out->clear();
  for (int64_t i = 0; i < chunks.n; ++i) {
    for (int64_t t = chunks.offsets[i]; t + 1 < chunks.offsets[i + 1]; ++t) (*out)[pair_key(chunks.tokens[t], chunks.tokens[t + 1])] += chunks.counts[i];
  }
  return Status::ok();
}

Status train_super_merges(const Chunks& chunks, const SuperTrainConfig& cfg, const std::function<bool(int64_t)>& progress,
                          std::vector<int32_t>* out_pairs, std::vector<int64_t>* out_counts) {
  if (cfg.n_vocab < 1 || cfg.n_vocab + cfg.n_merges > INT32_MAX) {
    return Status::invalid("vocabulary: expected n_vocab + n_merges < 2^31, received " + num(cfg.n_vocab) + " + " + num(cfg.n_merges));
  }
  if (cfg.max_words < 0) return Status::invalid("maxWords: expected an integer >= 0, received " + num(cfg.max_words));
  if (cfg.min_count < 1) return Status::invalid("minCount: expected an integer >= 1, received " + num(cfg.min_count));
  std::unordered_map<uint64_t, int64_t> counts;
  Status s = count_pairs(chunks, cfg.n_vocab, &counts);
  if (!s.is_ok()) return s;

  // Token bytes (existing, then new), their word counts, and the set of byte strings in use.
  std::vector<std::string> bytes(static_cast<size_t>(cfg.n_vocab));
  std::unordered_set<std::string> in_use;
  in_use.reserve(static_cast<size_t>(cfg.n_vocab + cfg.n_merges) * 2);
  for (int64_t i = 0; i < cfg.n_vocab; ++i) {
    const int64_t a = cfg.vocab_offsets[i], b = cfg.vocab_offsets[i + 1];
    if (b < a) return Status::invalid("vocabOffsets: expected non-decreasing offsets, received a decrease at " + num(i + 1));
    bytes[i].assign(reinterpret_cast<const char*>(cfg.vocab_bytes + a), static_cast<size_t>(b - a));
    if (!bytes[i].empty()) in_use.insert(bytes[i]);
  }
  std::vector<int> words(bytes.size());
  for (size_t i = 0; i < bytes.size(); ++i) words[i] = count_words(reinterpret_cast<const uint8_t*>(bytes[i].data()), bytes[i].size());

  // Private copy of the chunks, and where each pair occurs (chunk indices, possibly repeated or stale).
  std::vector<std::vector<int32_t>> seq(static_cast<size_t>(chunks.n));
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (int64_t i = 0; i < chunks.n; ++i) {
    seq[i].assign(chunks.tokens + chunks.offsets[i], chunks.tokens + chunks.offsets[i + 1]);
    for (size_t t = 0; t + 1 < seq[i].size(); ++t) {
      auto& w = where[pair_key(seq[i][t], seq[i][t + 1])];
      if (w.empty() || w.back() != i) w.push_back(static_cast<int32_t>(i));
    }
  }
  std::vector<Top> heap;
  heap.reserve(counts.size());
  for (const auto& kv : counts) heap.push_back({kv.second, kv.first});
  std::make_heap(heap.begin(), heap.end());

  std::unordered_set<uint64_t> refused;
  std::vector<int64_t> stamp(seq.size(), -1);
  std::unordered_map<uint64_t, int64_t> delta;
  out_pairs->clear();
  out_counts->clear();
  while (static_cast<int64_t>(out_counts->size()) < cfg.n_merges && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Top top = heap.back();
    heap.pop_back();
    auto cit = counts.find(top.key);
    if (cit == counts.end() || cit->second != top.count) continue;  // stale: a fresher entry exists
    if (top.count < cfg.min_count) break;
    if (refused.count(top.key)) continue;
    const int32_t a = static_cast<int32_t>(top.key >> 32), b = static_cast<int32_t>(top.key & 0xffffffffu);
    std::string joined = bytes[a] + bytes[b];
    const bool glued = !bytes[a].empty() && !bytes[b].empty() && !is_space(static_cast<uint8_t>(bytes[a].back())) &&
                       !is_space(static_cast<uint8_t>(bytes[b].front()));
    const int w = words[a] + words[b] - (glued ? 1 : 0);
    if ((cfg.max_words > 0 && w > cfg.max_words) || in_use.count(joined)) {
      refused.insert(top.key);
      continue;
    }
    const int64_t step = static_cast<int64_t>(out_counts->size());
    const int32_t ab = static_cast<int32_t>(cfg.n_vocab + step);
    out_pairs->push_back(a);
    out_pairs->push_back(b);
    out_counts->push_back(top.count);
    in_use.insert(joined);
    bytes.push_back(std::move(joined));
    words.push_back(w);

    // Merge every occurrence, left to right without overlap, in each chunk
    // that holds the pair; record the pair-count changes weighted by the chunk's count.
    delta.clear();
    std::vector<int32_t> occ;
    occ.swap(where[top.key]);
    for (const int32_t ci : occ) {
      if (stamp[ci] == step) continue;
      stamp[ci] = step;
      std::vector<int32_t>& v = seq[ci];
      const int64_t wt = chunks.counts[ci];
      size_t j = 0;  // write index: v[0, j) is the merged prefix
      for (size_t i = 0; i < v.size();) {
        if (i + 1 < v.size() && v[i] == a && v[i + 1] == b) {
          delta[top.key] -= wt;
          if (j > 0) {
            delta[pair_key(v[j - 1], a)] -= wt;
            delta[pair_key(v[j - 1], ab)] += wt;
            where[pair_key(v[j - 1], ab)].push_back(ci);
          }
          if (i + 2 < v.size()) {
            delta[pair_key(b, v[i + 2])] -= wt;
            delta[pair_key(ab, v[i + 2])] += wt;
            where[pair_key(ab, v[i + 2])].push_back(ci);
          }
          v[j++] = ab;
          i += 2;
        } else {
          v[j++] = v[i++];
        }
      }
      v.resize(j);
    }
    where.erase(top.key);
    for (const auto& d : delta) {
      if (d.second == 0) continue;
      int64_t& c = counts[d.first];
      c += d.second;
      if (c <= 0) {
        counts.erase(d.first);
        continue;
      }
      heap.push_back({c, d.first});
      std::push_heap(heap.begin(), heap.end());
    }
    if (progress && (step + 1) % 64 == 0 && !progress(step + 1)) break;
  }
  return Status::ok();
}

}  // namespace tp::text
