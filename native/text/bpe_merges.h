// Rank-ordered byte-level BPE over a merge list, and SuperBPE-style merge
// training over chunks of token ids (lib/tokenizer/supertokens.ts).
//
// Encoding follows Hugging Face tokenizers' BPE model (tokenizers/src/models/
// bpe/word.rs, Word::merge_all): start from one symbol per byte, then
// repeatedly apply the present pair of lowest merge rank, the leftmost one
// among equal ranks, until no listed pair is left. Training follows the BPE
// trainer (tokenizers/src/models/bpe/trainer.rs) as the SuperBPE code resumes
// it for stage 2 (github.com/PythonNut/superbpe, utils.py
// train_or_extend_tokenizer): count adjacent pairs inside each chunk weighted
// by the chunk's count, merge the most frequent pair (ties: the smaller
// (left, right) id pair), update the counts locally, repeat.
// No Node headers here; the binding checks every size before the call.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "../core/status.h"

namespace tp::text {

inline uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

// merges [n, 3] = (left, right, result); rank = row index. Ids in [0, n_ids).
struct MergeTable {
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> map;  // key -> (rank, result)
};

// Builds the table; refuses ids outside [0, n_ids) and a pair listed twice.
Status build_merge_table(const int32_t* merges, int64_t n_merges, int64_t n_ids, MergeTable* out);

// Encodes pieces [piece_offsets[i], piece_offsets[i + 1]) of bytes, one
// symbol per byte (byte_ids[256]) then rank-ordered merges. Appends the ids
// to *out_ids and one end offset per piece to *out_ends (ends into out_ids).
Status bpe_encode_pieces(const MergeTable& table, const int32_t* byte_ids, const uint8_t* bytes, const int64_t* piece_offsets,
                         int64_t n_pieces, std::vector<int32_t>* out_ids, std::vector<int64_t>* out_ends);

// Chunks of token ids: chunk i = tokens[offsets[i], offsets[i + 1]), weight counts[i] >= 1.
struct Chunks {
  const int32_t* tokens;
  const int64_t* offsets;  // [n + 1], non-decreasing, offsets[0] = 0
  const int64_t* counts;   // [n]
  int64_t n;
};

// Weighted counts of adjacent pairs inside chunks: key -> sum of counts.
Status count_pairs(const Chunks& chunks, int64_t n_ids, std::unordered_map<uint64_t, int64_t>* out);

struct SuperTrainConfig {
  // Bytes of every existing token: id i = vocab_bytes[vocab_offsets[i], vocab_offsets[i + 1]); empty = unused.
  const uint8_t* vocab_bytes;
  const int64_t* vocab_offsets;  // [n_vocab + 1]
  int64_t n_vocab;               // new ids start here
  int64_t n_merges;              // how many new tokens to learn (fewer when pairs run out)
  int max_words;                 // a new token may hold at most this many whitespace-separated words; 0 = no limit
  int64_t min_count;             // stop when the best pair is rarer than this (>= 1)
};

// Learns up to cfg.n_merges merges over the chunks (copied: the caller's
// tokens stay untouched). Writes (left, right) per merge to *out_pairs (the
// new token of merge k is n_vocab + k) and each merge's count to *out_counts.
// A pair whose bytes already name a token, or that would exceed max_words, is
// never merged. progress(done) is called every 64 merges; returning false stops.
Status train_super_merges(const Chunks& chunks, const SuperTrainConfig& cfg, const std::function<bool(int64_t)>& progress,
                          std::vector<int32_t>* out_pairs, std::vector<int64_t>* out_counts);

// Words in a byte string: maximal runs of non-whitespace bytes (space, \t, \n, \v, \f, \r).
int count_words(const uint8_t* b, size_t n);

}  // namespace tp::text
