// Token Recycling drafter (Luo et al. 2024, "Turning Trash into Treasure:
// Accelerating Inference of Large Language Models with Token Recycling";
// official code github.com/Luowaterbi/TokenRecycling,
// evaluation/inference_recycling.py and model/recycling/tree_template_.py).
//
// State: an adjacency table int32 [vocab, topk] of candidate next tokens,
// row t = the target's top-k tokens the last time t was a node of a
// verified tree; -1 marks an empty slot (rows start empty; the official
// code starts from zeros and so drafts token 0 until rows fill).
// Template: a static tree of tpl_nodes nodes, node 0 the root, each other
// node = (parent node, rank in the parent's row); parent < node, so a walk in
// node order is breadth-first when the template is (the official "2.2.2" is).
// No Node headers here; the binding re-checks every size before the call.
#pragma once
#include <cstdint>

#include "../core/status.h"

namespace tp::spec {

struct TrTable {
  int32_t* rows;  // [vocab, topk]
  int64_t vocab;
  int topk;
};

struct TrTemplate {
  const int32_t* parent;  // [nodes]; parent[0] = -1, parent[i] in [0, i)
  const int32_t* rank;    // [nodes]; rank[i] in [0, topk) for i >= 1
  int64_t nodes;          // including the root
};

// Checks the template's shape against topk (O(nodes)).
Status tr_check_template(const TrTemplate& tpl, int topk);

// Walks the template from `root`: node i takes rows[token(parent(i))][rank(i)].
// A node whose slot is empty (-1), or repeats an earlier slot of the same row
// (siblings stay distinct), is dropped with its subtree; the walk stops at
// max_nodes. Writes out_tokens/out_parents [max_nodes] (parents re-indexed to
// the compacted tree) and *out_count (>= 1). A table entry outside
// [-1, vocab) is an error (the table memory is not trusted).
Status tr_draft(const TrTable& table, const TrTemplate& tpl, int32_t root, int64_t max_nodes, int32_t* out_tokens,
                int32_t* out_parents, int64_t* out_count);

// The update from precomputed top-k ids: ids [nodes, ids_k] (ids_k <= topk
// is fine, the rest of a row is -1); row tokens[i] takes row i of ids, with
// -1 entries and repeats dropped (order kept), padded with -1. Nodes are
// written in order, so a token that appears twice keeps the later node's ids
// (as the official index_put). Everything is checked before any write.
Status tr_update_ids(const TrTable& table, const int32_t* tokens, int64_t nodes, const int32_t* ids, int64_t ids_k);

// The update from logits f32 [nodes, vocab]: row i's top-k (top_k_rows) is
// written to row tokens[i] as tr_update_ids does.
Status tr_update_logits(const TrTable& table, const int32_t* tokens, int64_t nodes, const float* logits);

}  // namespace tp::spec
