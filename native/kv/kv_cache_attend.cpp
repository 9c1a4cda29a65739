// KvCache::attend: the foundation's attention over each head's stored tokens.
// Heads hold different numbers of tokens, so each KV head is one attention
// call over its own rows, with its group of query heads (GQA).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include "../attention/attention.h"
#include "../core/checked_math.h"
#include "kv_cache.h"
#include "kv_finite.h"
#include "kv_quant_attend.h"

namespace tp::kv {
Status check_attend(const CacheConfig& cfg, int64_t layer, const AttendInput& in) {
  const int64_t H = cfg.n_kv_heads, d = cfg.head_dim;
  if (layer < 0 || layer >= cfg.n_layers) return Status::invalid("layer: expected 0 to " + num(cfg.n_layers - 1) + ", received " + num(layer));
  if (in.n_heads < 1 || in.n_heads % H != 0) return Status::invalid("q.shape[0] (nHeads): expected a multiple of nKvHeads = " + num(H) + ", received " + num(in.n_heads));
  if (in.n_q < 1) return Status::invalid("q.shape[1] (nQ): expected at least 1, received " + num(in.n_q));
  const int64_t need = view_span(in.n_heads, in.n_q, d, in.q_head_stride, in.q_row_stride);
  if (need < 0 || need > in.q_len) return Status::invalid("q: expected at least " + num(need) + " elements for its shape and strides, received " + num(in.q_len));
  if (in.out_len != in.n_heads * in.n_q * d) return Status::invalid("out: expected " + num(in.n_heads * in.n_q * d) + " elements, received " + num(in.out_len));
  if (in.lse && in.lse_len != in.n_heads * in.n_q) return Status::invalid("lse: expected " + num(in.n_heads * in.n_q) + " elements, received " + num(in.lse_len));
  // The same rules for every cache dtype (the int kernels run no attention() checks).
  if (!(std::isfinite(in.scale) && in.scale >= 0.0f)) {
    return Status::invalid("scale: expected a finite number > 0 (0: 1/sqrt(headDim)), received " + js_number(in.scale));
  }
  if (!(std::isfinite(in.softcap) && in.softcap >= 0.0f)) return Status::invalid("softcap: expected a finite number >= 0, received " + js_number(in.softcap));
  if (in.sparse_method != 0) {
    Status so;
    switch (in.sparse_method) {
      case 1: so = sparse::check_quest_options(in.quest, "sparse."); break;
      case 2:
        so = sparse::check_token_options(in.tidal, "sparse.");
        if (so.is_ok() && (in.tidal_role < 0 || in.tidal_role > 2)) so = Status::invalid("sparse: expected a TidalDecode layer role 0, 1 or 2, received " + num(in.tidal_role));
        break;
      case 3: so = sparse::check_block_options(in.blocks, "sparse."); break;
      default: return Status::invalid("sparse.method: expected 'quest', 'tidal' or 'blocks', received code " + num(in.sparse_method));
    }
    if (!so.is_ok()) return so;
  }
  if (in.tree_parents) {
    if (in.tree_len != in.n_q) return Status::invalid("treeMask: expected nQ = " + num(in.n_q) + " parents, received " + num(in.tree_len));
    if (in.n_q > kMaxTreeNodes) return Status::invalid("treeMask: expected at most " + num(kMaxTreeNodes) + " tree nodes, received " + num(in.n_q));
    for (int64_t i = 0; i < in.n_q; ++i) {
      const int32_t parent = in.tree_parents[i];
      if (parent < -1 || parent >= i) {
        return Status::invalid("treeMask[" + num(i) + "]: expected -1 or a parent index in [0, " + num(i - 1) + "], received " + num(parent));
      }
    }
    // Rejected nodes must leave no trace in the cache's accumulators.
    if (in.sparse_method != 0) return Status::invalid("treeMask: expected a dense attend (no sparse method), received sparse method " + num(in.sparse_method));
    if (in.accumulate_mass) return Status::invalid("treeMask: expected accumulateMass false, received true");
    if (in.remember) return Status::invalid("treeMask: expected remember false, received true");
  }
  return check_finite("q", in.q, DType::F32, in.n_heads, in.n_q, d, in.q_head_stride, in.q_row_stride);
}

namespace {
// The batched quantized call's per-head arrays (views, arguments, query and
// output row pointers), kept per calling thread and reused.
struct QuantAttendBatch {
  std::vector<QuantHeadView> views;
  std::vector<QuantAttendArgs> args;
  std::vector<const float*> q;
  std::vector<float*> out;
};
}  // namespace

Status KvCache::attend(int64_t layer, const AttendInput& in) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  const Status checked = check_attend(cfg_, layer, in);
  if (!checked.is_ok()) return checked;
  const int64_t group = in.n_heads / H;
  const float scale = in.scale > 0.0f ? in.scale : 1.0f / std::sqrt(static_cast<float>(d));
  if (in.sparse_method == 1 || in.sparse_method == 3) return attend_quest(layer, in, scale);
  if (in.sparse_method == 2) return attend_tidal(layer, in, scale);
  // A tree is the newest nQ tokens of every head.
  for (int64_t h = 0; h < H && in.tree_parents; ++h) {
    if (head(layer, h).len < in.n_q) {
      return Status::invalid("treeMask: expected at most " + num(head(layer, h).len) + " tree nodes (layer " + num(layer) + " head " + num(h) +
                             " holds " + num(head(layer, h).len) + " tokens), received " + num(in.n_q));
    }
  }

  // Float caches whose heads all hold the same number of unmerged tokens (no
  // head-adaptive compression yet): one attention call over every head, its
  // chunks spread over the pool together, K / V read through per-head bases.
  if (!quantized() && H > 1) {
    const int64_t n = head(layer, 0).len;
    bool uniform = n > 0;
    for (int64_t h = 0; h < H && uniform; ++h) {
      const HeadStore& s = head(layer, h);
      uniform = s.len == n && std::all_of(s.count.begin(), s.count.end(), [](float c) { return c == 1.0f; });
    }
    if (uniform) return attend_uniform(layer, in, n, scale);
  }
  // Quantized heads the integer-code kernel takes (unmerged rows, no key
  // mass, at most kQuantMaxRows query rows): all of them in one call, their
  // chunks spread over the pool together. The per-head arrays are kept by
  // the calling thread and reused (no allocation per decode step).
  thread_local std::vector<uint8_t> quant_done;
  try {
    quant_done.assign(static_cast<size_t>(H), 0);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: cannot allocate the head list");
  }
  if (quantized() && !in.accumulate_mass && !in.tree_parents && group * in.n_q <= kQuantMaxRows) {
    const int64_t R = group * in.n_q;
    thread_local QuantAttendBatch b;
    try {
      b.views.resize(static_cast<size_t>(H));
      b.args.resize(static_cast<size_t>(H));
      b.q.resize(static_cast<size_t>(H * R));
      b.out.resize(static_cast<size_t>(H * R));
    } catch (const std::bad_alloc&) {
      return Status::out_of_memory("KvCache.attend: cannot allocate the head list");
    }
    int64_t n = 0;
    for (int64_t h = 0; h < H; ++h) {
      const HeadStore& s = head(layer, h);
      // Rows that stand for several merged tokens need the additive mask: attention() below.
      if (s.len == 0 || std::any_of(s.count.begin(), s.count.end(), [](float c) { return c != 1.0f; })) continue;
      const float** qrows = b.q.data() + n * R;
      float** orows = b.out.data() + n * R;
      for (int64_t j = 0; j < group; ++j) {
        for (int64_t i = 0; i < in.n_q; ++i) {
          qrows[j * in.n_q + i] = in.q + (h * group + j) * in.q_head_stride + i * in.q_row_stride;
          orows[j * in.n_q + i] = in.out + ((h * group + j) * in.n_q + i) * d;
        }
      }
      QuantHeadView& view = b.views[n];
      view.layout = &qlayout_;
      view.blocks = s.blocks.data();
      view.n_blocks = s.n_blocks;
      view.tail_k = reinterpret_cast<const uint16_t*>(s.k.data());
      view.tail_v = reinterpret_cast<const uint16_t*>(s.v.data());
      view.tail = tail_len(s);
      QuantAttendArgs& qa = b.args[n];
      qa.rows = R;
      qa.n_q = in.n_q;
      qa.q = qrows;
      qa.out = orows;
      qa.lse = in.lse ? in.lse + h * group * in.n_q : nullptr;
      qa.scale = scale;
      qa.softcap = in.softcap;
      qa.causal = in.causal;
      quant_done[h] = 1;
      ++n;
    }
    const Status st = quant_decode_heads(b.views.data(), b.args.data(), n);
    if (!st.is_ok()) return st;
  }
  std::vector<float> kf, vf, bias;
  std::vector<std::vector<float>> masses(static_cast<size_t>(in.accumulate_mass ? H : 0));
  for (int64_t h = 0; h < H; ++h) {
    if (quant_done[h]) continue;  // attended by the batched quantized call above
    HeadStore& s = head(layer, h);
    AttentionParams a;
    a.n_heads = group;
    a.n_kv_heads = 1;
    a.n_q = in.n_q;
    a.n_kv = s.len;
    a.head_dim = d;
    const int64_t q_off = h * group * in.q_head_stride;
    a.q = in.q + q_off;
    a.q_len = in.q_len - q_off;
    a.q_head_stride = in.q_head_stride;
    a.q_row_stride = in.q_row_stride;
    // Rows that stand for several merged tokens weigh count times as much in
    // the softmax (RazorAttention's compensation token, proportional
    // attention for merged tokens): logit + log(count), as an additive mask.
    const bool weighted = std::any_of(s.count.begin(), s.count.end(), [](float c) { return c != 1.0f; });
    HeadRows rows;
    const Status rs = head_rows(layer, h, kf, vf, &rows);
    if (!rs.is_ok()) return rs;
    a.k = rows.k;
    a.v = rows.v;
    a.k_dtype = a.v_dtype = rows.dtype;
    a.k_head_stride = a.v_head_stride = s.len * d;
    a.k_row_stride = a.v_row_stride = d;
    a.k_len = a.v_len = s.len * d;
    a.scale = scale;
    a.softcap = in.softcap;
    a.causal = in.causal;
    a.tree_parents = in.tree_parents;
    a.tree_len = in.tree_parents ? in.tree_len : 0;
    a.out = in.out + h * group * in.n_q * d;
    a.out_len = group * in.n_q * d;
    if (in.lse) {
      a.lse = in.lse + h * group * in.n_q;
      a.lse_len = group * in.n_q;
    }
    if (in.accumulate_mass && s.len > 0) {
      try {
        masses[h].assign(static_cast<size_t>(s.len), 0.0f);
      } catch (const std::bad_alloc&) {
        return Status::out_of_memory("KvCache.attend: cannot allocate key mass scratch");
      }
      a.key_mass = masses[h].data();
      a.key_mass_len = s.len;
    }
    if (s.len == 0) {
      // No keys: zero output rows and lse -inf, like attention() when nothing is visible.
      std::fill(a.out, a.out + a.out_len, 0.0f);
      if (a.lse) std::fill(a.lse, a.lse + a.lse_len, -std::numeric_limits<float>::infinity());
      continue;
    }
    if (weighted) {
      try {
        bias.resize(static_cast<size_t>(in.n_q * s.len));
      } catch (const std::bad_alloc&) {
        return Status::out_of_memory("KvCache.attend: cannot allocate the merge weights");
      }
      for (int64_t r = 0; r < s.len; ++r) bias[r] = std::log(s.count[r]);
      for (int64_t i = 1; i < in.n_q; ++i) std::copy(bias.begin(), bias.begin() + s.len, bias.begin() + i * s.len);
      a.additive_mask = bias.data();
      a.mask_len = in.n_q * s.len;
    }
    const Status st = run_attention(a);
    if (!st.is_ok()) return st;
  }
  // Commit the key mass only once every head succeeded.
  if (in.accumulate_mass) {
    for (int64_t h = 0; h < H; ++h) {
      HeadStore& s = head(layer, h);
      for (int64_t r = 0; r < s.len; ++r) s.mass[r] += masses[h][r];
    }
    mass_seen_[layer] = 1;
  }
  if (in.remember) remember_queries(layer, in);
  return Status::ok();
}

namespace {
struct QuantBatch {
  std::vector<QuantHeadView> views;
  std::vector<QuantAttendArgs> args;
  std::vector<const float*> q;
  std::vector<float*> out;
};
}  // namespace

Status KvCache::attend_uniform(int64_t layer, const AttendInput& in, int64_t n, float scale) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  // Per-head base pointers, kept by the calling thread (no allocation per decode step).
  thread_local std::vector<const void*> kb, vb;
  std::vector<float> mass;
  try {
    kb.resize(static_cast<size_t>(H));
    vb.resize(static_cast<size_t>(H));
    if (in.accumulate_mass) mass.assign(static_cast<size_t>(H * n), 0.0f);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: cannot allocate key mass scratch");
  }
  for (int64_t h = 0; h < H; ++h) {
    kb[h] = head(layer, h).k.data();
    vb[h] = head(layer, h).v.data();
  }
  AttentionParams a;
  a.n_heads = in.n_heads;
  a.n_kv_heads = H;
  a.n_q = in.n_q;
  a.n_kv = n;
  a.head_dim = d;
  a.q = in.q;
  a.q_len = in.q_len;
  a.q_head_stride = in.q_head_stride;
  a.q_row_stride = in.q_row_stride;
  a.k = kb[0];
  a.v = vb[0];
  a.k_heads = kb.data();
  a.v_heads = vb.data();
  a.k_dtype = a.v_dtype = row_dtype();
  a.k_row_stride = a.v_row_stride = d;
  a.k_len = a.v_len = n * d;  // per head
  a.scale = scale;
  a.softcap = in.softcap;
  a.causal = in.causal;
  a.tree_parents = in.tree_parents;
  a.tree_len = in.tree_parents ? in.tree_len : 0;
  a.out = in.out;
  a.out_len = in.out_len;
  a.lse = in.lse;
  a.lse_len = in.lse ? in.lse_len : 0;
  if (in.accumulate_mass) {
    a.key_mass = mass.data();
    a.key_mass_len = H * n;
  }
  const Status st = run_attention(a);
  if (!st.is_ok()) return st;
  if (in.accumulate_mass) {
    for (int64_t h = 0; h < H; ++h) {
      HeadStore& s = head(layer, h);
      for (int64_t r = 0; r < n; ++r) s.mass[r] += mass[h * n + r];
    }
    mass_seen_[layer] = 1;
  }
  if (in.remember) remember_queries(layer, in);
  return Status::ok();
}

// Keeps the newest `window` query rows of the layer: [nHeads, rows, headDim].
void KvCache::remember_queries(int64_t layer, const AttendInput& in) {
  Window& w = windows_[layer];
  const int64_t d = cfg_.head_dim, W = cfg_.window;
  try {
    if (w.n_heads != in.n_heads) {
      w = Window();
      w.n_heads = in.n_heads;
      w.q.assign(static_cast<size_t>(in.n_heads * W * d), 0.0f);
    }
    const int64_t take = std::min(in.n_q, W);
    const int64_t keep_old = std::min(w.rows, W - take);
    for (int64_t hq = 0; hq < in.n_heads; ++hq) {
      float* base = w.q.data() + hq * W * d;
      std::memmove(base, base + (w.rows - keep_old) * d, static_cast<size_t>(keep_old * d) * sizeof(float));
      for (int64_t r = 0; r < take; ++r) {
        const float* src = in.q + hq * in.q_head_stride + (in.n_q - take + r) * in.q_row_stride;
        std::memcpy(base + (keep_old + r) * d, src, static_cast<size_t>(d) * sizeof(float));
      }
    }
    w.rows = keep_old + take;
  } catch (const std::bad_alloc&) {
    w = Window();  // the window is advisory: drop it rather than fail the attend
  }
}

}  // namespace tp::kv
