// Token Recycling: the template walk (draft) and the table update; see
// token_recycling.h for the semantics and the differences from the
// official code.
#include "token_recycling.h"

#include <vector>

#include "topk_rows.h"

namespace tp::spec {

Status tr_check_template(const TrTemplate& tpl, int topk) {
  if (tpl.nodes < 1) return Status::invalid("template: expected at least the root node, received 0 nodes");
  if (tpl.parent[0] != -1) return Status::invalid("template.parents[0]: expected -1 (the root), received " + num(tpl.parent[0]));
  for (int64_t i = 1; i < tpl.nodes; i++) {
    if (tpl.parent[i] < 0 || tpl.parent[i] >= i) {
      return Status::invalid("template.parents[" + num(i) + "]: expected an integer in [0, " + num(i) + "), received " + num(tpl.parent[i]));
    }
    if (tpl.rank[i] < 0 || tpl.rank[i] >= topk) {
      return Status::invalid("template.ranks[" + num(i) + "]: expected an integer in [0, " + num(topk) + "), received " + num(tpl.rank[i]));
    }
  }
  return Status::ok();
}

Status tr_draft(const TrTable& table, const TrTemplate& tpl, int32_t root, int64_t max_nodes, int32_t* out_tokens,
                int32_t* out_parents, int64_t* out_count) {
  if (root < 0 || root >= table.vocab) return Status::invalid("root: expected a token in [0, " + num(table.vocab) + "), received " + num(root));
  if (max_nodes < 1) return Status::invalid("maxNodes: expected at least 1, received " + num(max_nodes));
  Status s = tr_check_template(tpl, table.topk);
  if (!s.is_ok()) return s;
  // where[i]: the output index of template node i, -1 when dropped.
  int32_t stack_where[256];
  std::vector<int32_t> heap_where;
  int32_t* where = stack_where;
  if (tpl.nodes > 256) {
    heap_where.resize(static_cast<size_t>(tpl.nodes));
    where = heap_where.data();
  }
  where[0] = 0;
  out_tokens[0] = root;
  out_parents[0] = -1;
  int64_t count = 1;
  for (int64_t i = 1; i < tpl.nodes && count < max_nodes; i++) {
    where[i] = -1;
    const int32_t p = where[tpl.parent[i]];
    if (p < 0) continue;  // the parent was dropped: so is its subtree
    const int32_t* row = table.rows + static_cast<int64_t>(out_tokens[p]) * table.topk;
    const int r = tpl.rank[i];
    const int32_t t = row[r];
    if (t < -1 || t >= table.vocab) {
      return Status::invalid("table[" + num(out_tokens[p]) + "][" + num(r) + "]: expected a token in [-1, " + num(table.vocab) + "), received " + num(t));
    }
    if (t < 0) continue;  // empty slot
    bool repeat = false;  // the same token at a lower rank of this row is already this node's sibling
    for (int q = 0; q < r; q++) repeat |= row[q] == t;
    if (repeat) continue;
    out_tokens[count] = t;
    out_parents[count] = p;
    where[i] = static_cast<int32_t>(count++);
  }
  *out_count = count;
  return Status::ok();
}

namespace {

Status check_tokens(const TrTable& table, const int32_t* tokens, int64_t nodes) {
  for (int64_t i = 0; i < nodes; i++) {
    if (tokens[i] < 0 || tokens[i] >= table.vocab) {
      return Status::invalid("tree.tokens[" + num(i) + "]: expected a token in [0, " + num(table.vocab) + "), received " + num(tokens[i]));
    }
  }
  return Status::ok();
}

// Row <- ids[0..ids_k) without -1 and repeats, padded with -1.
void write_row(const TrTable& table, int32_t token, const int32_t* ids, int64_t ids_k) {
  int32_t* row = table.rows + static_cast<int64_t>(token) * table.topk;
  int n = 0;
  for (int64_t j = 0; j < ids_k && n < table.topk; j++) {
    const int32_t t = ids[j];
    if (t < 0) continue;
    bool repeat = false;
    for (int q = 0; q < n; q++) repeat |= row[q] == t;
    if (!repeat) row[n++] = t;
  }
  for (; n < table.topk; n++) row[n] = -1;
}

}  // namespace

Status tr_update_ids(const TrTable& table, const int32_t* tokens, int64_t nodes, const int32_t* ids, int64_t ids_k) {
  if (ids_k < 1 || ids_k > table.topk) return Status::invalid("ids: expected [nodes, k] with k in [1, " + num(table.topk) + "], received k = " + num(ids_k));
  Status s = check_tokens(table, tokens, nodes);
  if (!s.is_ok()) return s;
  for (int64_t i = 0; i < nodes * ids_k; i++) {
    if (ids[i] < -1 || ids[i] >= table.vocab) {
      return Status::invalid("ids[" + num(i / ids_k) + "][" + num(i % ids_k) + "]: expected a token in [-1, " + num(table.vocab) + "), received " + num(ids[i]));
    }
  }
  for (int64_t i = 0; i < nodes; i++) write_row(table, tokens[i], ids + i * ids_k, ids_k);
  return Status::ok();
}

Status tr_update_logits(const TrTable& table, const int32_t* tokens, int64_t nodes, const float* logits) {
  Status s = check_tokens(table, tokens, nodes);
  if (!s.is_ok()) return s;
  // Top-k of every row first (in parallel), then the writes in node order.
  std::vector<int32_t> ids(static_cast<size_t>(nodes * table.topk));
  top_k_rows(logits, nodes, table.vocab, table.topk, ids.data());
  for (int64_t i = 0; i < nodes; i++) write_row(table, tokens[i], ids.data() + i * table.topk, table.topk);
  return Status::ok();
}

}  // namespace tp::spec
