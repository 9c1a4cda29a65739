// A trie over the bytes of every ordinary token of a vocabulary, for the
// byte-level probability tools (Phan et al., "Exact Byte-Level Probabilities
// from Tokenized Language Models"): which tokens are prefixes of a byte
// string (the tokens that can start a cover of it), and which tokens start
// with a byte string (the subtree under it: tokens that cover it and go on).
//
// Layout: tokens sorted by their bytes; nodes in insertion (= depth-first)
// order, so every node's subtree holds a contiguous range [lo, hi) of the
// sorted ids. Children: a 256-entry table at the root, sibling lists below.
// No Node headers; nothing here throws.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/status.h"

namespace tp::text {

class TokenTrie {
 public:
  // blob/offsets as in bpe.h; tokens with use[id] == 0 or no bytes are left out.
  Status build(const uint8_t* blob, const int64_t* offsets, const uint8_t* use, int32_t size);

  // Ids of the tokens whose bytes start with p[0, n) (n = 0: every token),
  // in byte-lexicographic order of the tokens.
  void with_prefix(const uint8_t* p, int64_t n, std::vector<int32_t>* out) const;

  // Ids of the tokens whose bytes are a prefix of p[0, n) (shortest first).
  void prefixes_of(const uint8_t* p, int64_t n, std::vector<int32_t>* out) const;

  int64_t node_count() const { return static_cast<int64_t>(nodes_.size()); }

 private:
  struct Node {
    int32_t first_child = -1;
    int32_t next_sibling = -1;
    int32_t last_child = -1;
    int32_t token = -1;  // the id ending here, or -1
    int32_t lo = 0, hi = 0;  // range in sorted_
    uint8_t byte = 0;
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_;        // nodes_[0] is the root
  std::vector<int32_t> root_kids_;  // 256 entries
  std::vector<int32_t> sorted_;     // token ids by bytes
};

}  // namespace tp::text
