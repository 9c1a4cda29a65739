// Attention entry points: validation of everything memory safety depends on,
// the plan shared by all ISA variants, and the run-time ISA dispatch.
#include "attention.h"

#include <cmath>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "../core/checked_math.h"
#include "../core/cpu_features.h"
#include "attention_plan.h"

namespace tp {

Status validate_attention(const AttentionParams& p) {
  if (p.n_heads < 1 || p.n_kv_heads < 1 || p.n_q < 0 || p.n_kv < 0 || p.head_dim < 1 || p.n_sel < 0) {
    return Status::invalid("attention: expected nHeads >= 1, nKvHeads >= 1, nQ >= 0, nKv >= 0, headDim >= 1, nSel >= 0");
  }
  for (int64_t d : {p.n_heads, p.n_kv_heads, p.n_q, p.n_kv, p.head_dim, p.n_sel}) {
    if (d > kMaxDim) return Status::invalid("attention: a dimension exceeds 2^40");
  }
  if (p.n_heads % p.n_kv_heads != 0) {
    return Status::invalid("nKvHeads: expected a divisor of nHeads = " + num(p.n_heads) + ", received " + num(p.n_kv_heads));
  }
  if (!(std::isfinite(p.scale) && p.scale > 0)) return Status::invalid("scale: expected a finite number > 0");
  if (!(std::isfinite(p.softcap) && p.softcap >= 0)) return Status::invalid("softcap: expected a finite number >= 0");
  if (!p.q || !p.k || !p.v || !p.out) {
    if (p.n_q > 0 && p.n_kv > 0) return Status::invalid("attention: q, k, v and out buffers are required");
  }
  Status s = check_view("q", p.n_heads, p.n_q, p.head_dim, p.q_head_stride, p.q_row_stride, p.q_len);
  if (!s.is_ok()) return s;
  if ((p.k_heads == nullptr) != (p.v_heads == nullptr)) return Status::invalid("attention: k_heads and v_heads go together");
  if (p.k_heads) {
    for (int64_t h = 0; h < p.n_kv_heads; ++h) {
      if (!p.k_heads[h] || !p.v_heads[h]) return Status::invalid("attention: a per-head K / V base is null");
    }
  }
  const int64_t view_heads = p.k_heads ? 1 : p.n_kv_heads;  // per-head buffers: each holds one head
  s = check_view("k", view_heads, p.n_kv, p.head_dim, p.k_head_stride, p.k_row_stride, p.k_len);
  if (!s.is_ok()) return s;
  s = check_view("v", view_heads, p.n_kv, p.head_dim, p.v_head_stride, p.v_row_stride, p.v_len);
  if (!s.is_ok()) return s;
  const int64_t out_need = checked_mul(checked_mul(p.n_heads, p.n_q), p.head_dim);
  if (out_need < 0 || p.out_len != out_need) return Status::invalid("out: expected nHeads * nQ * headDim = " + num(out_need) + " elements, received " + num(p.out_len));
  const int64_t rows_need = checked_mul(p.n_heads, p.n_q);
  if (p.lse && p.lse_len != rows_need) return Status::invalid("lse: expected nHeads * nQ = " + num(rows_need) + " elements, received " + num(p.lse_len));
  const int64_t mass_need = checked_mul(p.n_kv_heads, p.n_kv);
  if (p.key_mass && p.key_mass_len != mass_need) {
    return Status::invalid("keyMass: expected nKvHeads * nKv = " + num(mass_need) + " elements, received " + num(p.key_mass_len));
  }
  const int64_t mask_need = checked_mul(p.n_q, p.n_kv);
  if (p.bool_mask && p.additive_mask) return Status::invalid("mask: expected one mask, received both a boolean and an additive mask");
  if ((p.bool_mask || p.additive_mask) && (mask_need < 0 || p.mask_len < mask_need)) {
    return Status::invalid("mask: expected nQ * nKv = " + num(mask_need) + " elements, received " + num(p.mask_len));
  }
  if (p.tree_parents) {
    if (p.tree_len != p.n_q) return Status::invalid("treeMask: expected nQ = " + num(p.n_q) + " parents, received " + num(p.tree_len));
    if (p.n_q > p.n_kv) return Status::invalid("treeMask: expected at most nKv = " + num(p.n_kv) + " tree nodes, received " + num(p.n_q));
    if (p.n_q > kMaxTreeNodes) return Status::invalid("treeMask: expected at most " + num(kMaxTreeNodes) + " tree nodes, received " + num(p.n_q));
    for (int64_t i = 0; i < p.n_q; ++i) {
      const int32_t parent = p.tree_parents[i];
      if (parent < -1 || parent >= i) {
        return Status::invalid("treeMask[" + num(i) + "]: expected -1 or a parent index in [0, " + num(i - 1) + "], received " + num(parent));
      }
    }
  }
  if (p.indices) {
    const int64_t need = checked_mul(p.n_kv_heads, p.n_sel);
    if (need < 0 || p.indices_len < need) return Status::invalid("indices: expected nKvHeads * nSel = " + num(need) + " elements, received " + num(p.indices_len));
    for (int64_t x = 0; x < need; ++x) {
      if (p.indices[x] < 0 || p.indices[x] >= p.n_kv) {
        return Status::invalid("indices[" + num(x / p.n_sel) + "][" + num(x % p.n_sel) + "]: expected a key position in [0, " + num(p.n_kv - 1) + "], received " + num(p.indices[x]));
      }
    }
  }
  return Status::ok();
}

namespace {

// No key to attend: zero outputs, lse -inf, zero mass.
void run_empty(const AttentionParams& p) {
  for (int64_t x = 0; x < p.out_len; ++x) p.out[x] = 0.0f;
  if (p.lse) for (int64_t x = 0; x < p.lse_len; ++x) p.lse[x] = -std::numeric_limits<float>::infinity();
  if (p.key_mass) for (int64_t x = 0; x < p.key_mass_len; ++x) p.key_mass[x] = 0.0f;
}

// tree_visible[i][a] = 1 when tree node a is query i or one of its ancestors.
std::vector<uint8_t> tree_table(const AttentionParams& p) {
  std::vector<uint8_t> table(static_cast<size_t>(p.n_q * p.n_q), 0);
  for (int64_t i = 0; i < p.n_q; ++i) {
    uint8_t* row = table.data() + i * p.n_q;
    row[i] = 1;
    const int32_t parent = p.tree_parents[i];
    if (parent >= 0) {  // parent < i: its row is complete
      const uint8_t* prow = table.data() + parent * p.n_q;
      for (int64_t a = 0; a <= parent; ++a) row[a] |= prow[a];
    }
  }
  return table;
}

}  // namespace

Status run_attention(const AttentionParams& p) {
  Status s = validate_attention(p);
  if (!s.is_ok()) return s;
  if (p.n_q == 0) {
    if (p.key_mass) for (int64_t x = 0; x < p.key_mass_len; ++x) p.key_mass[x] = 0.0f;
    return Status::ok();
  }
  try {
    AttentionPlan plan;
    plan.p = &p;
    plan.group = p.n_heads / p.n_kv_heads;
    plan.n_keys = p.indices ? p.n_sel : p.n_kv;
    plan.diag = p.n_kv - p.n_q;
    if (plan.n_keys == 0) {
      run_empty(p);
      return Status::ok();
    }
    std::vector<uint8_t> tree;
    if (p.tree_parents) {
      tree = tree_table(p);
      plan.tree_visible = tree.data();
    }
    plan.any_mask = p.bool_mask || p.additive_mask || p.tree_parents;
    plan.rows = plan.group * p.n_q;
    plan.decode = plan.rows <= kMaxDecodeRows;
    const int64_t long_chunks = p.n_kv_heads * ((plan.n_keys + kLongChunk - 1) / kLongChunk);
    const bool long_runs = plan.rows <= kLongChunkMaxRows && long_chunks >= kLongChunkMinChunks;
    plan.chunk = long_runs ? kLongChunk : kMaxChunk;
    plan.n_chunks = (plan.n_keys + plan.chunk - 1) / plan.chunk;
    switch (active_isa()) {
      case IsaLevel::Avx512: attn_avx512::run(plan); break;
      case IsaLevel::Avx2: attn_avx2::run(plan); break;
      default: attn_scalar::run(plan); break;
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("attention: out of memory for scratch buffers");
  }
  return Status::ok();
}

}  // namespace tp
