// TokenTrie (see token_trie.h): built from the tokens sorted by bytes, so a
// new token shares its path with the previous one up to their common prefix
// and every new node is the last child of its parent.
#include "token_trie.h"

#include <algorithm>
#include <cstring>

namespace tp::text {

Status TokenTrie::build(const uint8_t* blob, const int64_t* offsets, const uint8_t* use, int32_t size) {
  sorted_.clear();
  for (int32_t id = 0; id < size; id++) {
    if (use[id] && offsets[id + 1] > offsets[id]) sorted_.push_back(id);
  }
  auto less = [&](int32_t a, int32_t b) {
    const int64_t la = offsets[a + 1] - offsets[a], lb = offsets[b + 1] - offsets[b];
    const int c = std::memcmp(blob + offsets[a], blob + offsets[b], static_cast<size_t>(std::min(la, lb)));
    if (c != 0) return c < 0;
    if (la != lb) return la < lb;
    return a < b;
  };
  std::sort(sorted_.begin(), sorted_.end(), less);
  nodes_.assign(1, Node{});
  root_kids_.assign(256, -1);
  const int32_t n = static_cast<int32_t>(sorted_.size());
  nodes_[0].lo = 0;
  nodes_[0].hi = n;
  for (int32_t i = 0; i < n; i++) {
    const int32_t id = sorted_[i];
    const uint8_t* p = blob + offsets[id];
    const int64_t len = offsets[id + 1] - offsets[id];
    int32_t node = 0;
    for (int64_t k = 0; k < len; k++) {
      int32_t next;
      if (node == 0) next = root_kids_[p[k]];
      else {
        const int32_t last = nodes_[node].last_child;
        next = last >= 0 && nodes_[last].byte == p[k] ? last : -1;  // sorted input: a child with this byte is the last one
      }
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        Node fresh;
        fresh.byte = p[k];
        fresh.lo = i;
        nodes_.push_back(fresh);
        if (node == 0) root_kids_[p[k]] = next;
        Node& parent = nodes_[node];
        if (parent.last_child >= 0) nodes_[parent.last_child].next_sibling = next;
        else parent.first_child = next;
        parent.last_child = next;
      }
      nodes_[next].hi = i + 1;
      node = next;
    }
    if (nodes_[node].token < 0) nodes_[node].token = id;  // a duplicate keeps the lowest id
  }
  return Status::ok();
}

int32_t TokenTrie::child(int32_t node, uint8_t b) const {
  if (node == 0) return root_kids_[b];
  for (int32_t c = nodes_[node].first_child; c >= 0; c = nodes_[c].next_sibling) {
    if (nodes_[c].byte == b) return c;
    if (nodes_[c].byte > b) return -1;  // children are in byte order
  }
  return -1;
}

void TokenTrie::with_prefix(const uint8_t* p, int64_t n, std::vector<int32_t>* out) const {
  if (nodes_.empty()) return;
  int32_t node = 0;
  for (int64_t k = 0; k < n && node >= 0; k++) node = child(node, p[k]);
  if (node < 0) return;
  out->insert(out->end(), sorted_.begin() + nodes_[node].lo, sorted_.begin() + nodes_[node].hi);
}

void TokenTrie::prefixes_of(const uint8_t* p, int64_t n, std::vector<int32_t>* out) const {
  if (nodes_.empty()) return;
  int32_t node = 0;
  for (int64_t k = 0; k < n; k++) {
    node = child(node, p[k]);
    if (node < 0) return;
    if (nodes_[node].token >= 0) out->push_back(nodes_[node].token);
  }
}

}  // namespace tp::text
