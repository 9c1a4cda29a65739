// Byte-level BPE encoding of pre-tokens by ranks (tiktoken) or by merge
// pairs (HF tokenizers), over a vocabulary of byte strings.
//
// Semantics (the TS reference is lib/tokenizer/bpe-merge.ts):
// - ranks (tiktoken, openai/tiktoken src/lib.rs byte_pair_merge): start from
//   single bytes, repeatedly join the adjacent pair whose concatenated bytes
//   are the token with the lowest id, leftmost on ties.
// - pairs (huggingface/tokenizers models/bpe/word.rs merge_all): start from
//   the single bytes' ids, repeatedly apply the listed merge (left, right)
//   with the lowest merge index, leftmost on ties.
// - a pre-token that is itself a token is one token (tiktoken always; HF
//   with ignore_merges).
// No Node headers here; every entry point returns a Status.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/status.h"

namespace tp::text {

// Open-addressing hash from byte strings (views into the vocabulary blob) to ids.
class ByteHash {
 public:
  void build(const uint8_t* blob, const int64_t* offsets, const uint8_t* ordinary, int32_t size);
  // The lowest id whose bytes are p[0, n), or -1.
  int32_t find(const uint8_t* p, int64_t n) const;

 private:
  const uint8_t* blob_ = nullptr;
  const int64_t* offsets_ = nullptr;
  std::vector<int32_t> slots_;  // id or -1
  uint64_t mask_ = 0;
};

// Open-addressing hash from (left id, right id) to (merge index, merged id).
class PairHash {
 public:
  void reserve(int64_t pairs);
  void set(int32_t left, int32_t right, int32_t rank, int32_t merged);  // replaces
  // false when (left, right) is not a merge
  bool find(int32_t left, int32_t right, int32_t* rank, int32_t* merged) const;
  bool empty() const { return count_ == 0; }

 private:
  struct Slot {
    int32_t left = -1, right = -1, rank = 0, merged = 0;
  };
  std::vector<Slot> slots_;
  uint64_t mask_ = 0;
  int64_t count_ = 0;
};

// Build in place and never copy or move: `ids` points into blob and offsets.
struct BpeVocab {
  BpeVocab() = default;
  BpeVocab(const BpeVocab&) = delete;
  BpeVocab& operator=(const BpeVocab&) = delete;
  int32_t size = 0;
  std::vector<uint8_t> blob;      // all token bytes
  std::vector<int64_t> offsets;   // size + 1
  std::vector<uint8_t> ordinary;  // 1 for ids encodeBytes may produce
  ByteHash ids;
  PairHash pairs;                 // empty: ranks mode
  bool by_pairs = false;
  bool ignore_merges = true;
  int32_t byte_ids[256] = {};
};

// Builds the tables. blob/offsets: token bytes by id (offsets has size + 1
// entries, non-decreasing, last = blob length); ordinary[id] != 0 for ids
// BPE may produce; merges: n_merges (left, right) pairs (nullptr: ranks
// mode). Every byte must be a one-byte ordinary token.
Status bpe_build(const uint8_t* blob, int64_t blob_len, const int32_t* offsets, const uint8_t* ordinary, int32_t size,
                 const int32_t* merges, int64_t n_merges, bool ignore_merges, BpeVocab* out);

// Appends the ids of pre-token p[0, n) to out. `scratch` is reused between calls.
struct BpeScratch {
  std::vector<int64_t> bounds;
  std::vector<int64_t> ranks;
  std::vector<int32_t> parts;
};
Status bpe_encode_piece(const BpeVocab& v, const uint8_t* p, int64_t n, BpeScratch* scratch, std::vector<int32_t>* out);

// Encodes bytes[starts[k], starts[k + 1]) for every k (the last piece ends at n).
// starts must be strictly increasing, starts[0] == 0 when n > 0, all < n.
Status bpe_encode_pieces(const BpeVocab& v, const uint8_t* bytes, int64_t n, const int32_t* starts, int64_t n_starts,
                         std::vector<int32_t>* out);

}  // namespace tp::text
