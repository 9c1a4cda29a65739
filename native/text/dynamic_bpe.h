// Dynamic tokenization (batch-level BPE): over a batch of token sequences,
// repeatedly merge the most frequent valid adjacent pair everywhere.
// Semantics follow DariusFeher/dynamic-tokenization, tokenizations/dynamic_bpe.py
// (Dynamic_BPE.get_most_frequent_pair / merge_pair), computed incrementally:
//   - a pair's frequency counts every adjacent occurrence, overlaps included
//     ("a a a" has 2 occurrences of (a, a)), over the pairs the oracle calls valid;
//   - the most frequent pair wins; ties go to the pair whose first occurrence
//     comes first in the batch (sequence order, then position): the official
//     code's Counter insertion order;
//   - a pair is merged left to right in each sequence, non-overlapping
//     ("a a a" -> "aa a"), into the next new id (first_new_id, +1, ...).
// No Node headers; never throws (std::bad_alloc aside, which the binding turns
// into ERR_OUT_OF_MEMORY); the binding re-checks every input.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/status.h"

namespace tp::text {

// Validity oracle: out[i] = 1 when the pair (a[i], b[i]) may be merged, 0
// when never; returns < 0 to abort (the caller's oracle failed; dynamic_bpe
// then returns Internal). Asked once per distinct pair, in batches: all
// pairs of the input first, then after each merge the pairs it created.
// `on_merge` (may be null) hears of each merge before any pair containing its
// new id is asked about; < 0 aborts the same way.
using DynBpeOracle = int (*)(void* ctx, const int32_t* a, const int32_t* b, int64_t n, uint8_t* out);
using DynBpeOnMerge = int (*)(void* ctx, int32_t a, int32_t b, int32_t id, int64_t count);

struct DynBpeInput {
  const int32_t* tokens = nullptr;   // [n] all sequences back to back, ids >= 0
  int64_t n = 0;
  const int64_t* offsets = nullptr;  // [n_seq + 1] ascending, offsets[0] = 0, offsets[n_seq] = n
  int64_t n_seq = 0;
  int32_t first_new_id = 0;          // > every input id; new ids first_new_id + k
  int64_t max_merges = 0;            // >= 0
  int64_t target_total = 0;          // stop once the total length is <= this (0: never)
  int64_t min_count = 1;             // stop when the best pair occurs fewer times
};

struct DynBpeOutput {
  std::vector<int32_t> tokens;       // merged sequences back to back
  std::vector<int32_t> starts;       // per token: index of its first base token in its sequence
  std::vector<int64_t> offsets;      // [n_seq + 1]
  std::vector<int32_t> merge_a, merge_b;  // per merge k (new id first_new_id + k)
  std::vector<int64_t> merge_count;  // occurrences counted when chosen (the official frequency)
  std::vector<int64_t> merge_applied;  // replacements made (fewer when occurrences overlap)
};

Status dynamic_bpe(const DynBpeInput& in, DynBpeOracle oracle, DynBpeOnMerge on_merge, void* ctx, DynBpeOutput* out);

}  // namespace tp::text
