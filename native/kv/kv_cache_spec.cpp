// KvCache speculative decoding: after a token tree was appended behind the
// committed tokens and verified, keep only its accepted nodes (commit), or
// drop the newest tokens (rollback = commit of no node), in place.
//
// Per (layer, head) of length L, with T = tree_size, A = accepted.size():
//   rows [0, L - T)      committed tokens, stay where they are
//   rows [L - T, L)      tree nodes 0 .. T-1; node accepted[j] moves to row
//                        L - T + j, the rest are dropped (new length L - T + A)
// Everything stored per token moves with it (positions, H2O mass, counts).
// Float caches move rows where they lie (KvCache::keep_rows, shared with
// compaction). Int caches rebuild the quantized groups the change reaches
// and the f16 tail from f16 rows: the tail's, or the shadow ring's copies of
// the newest blocks (cfg.speculative), so the blocks and tail come out bit
// for bit as if the dropped tokens had never been appended; a block without
// a copy gives its dequantized rows (within the quantization error). Quest /
// block summaries are refolded from the first changed row; the position
// counter goes back by the dropped count.
#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "../core/half.h"
#include "kv_cache.h"
#include "kv_common.h"

namespace tp::kv {

int64_t KvCache::spec_blocks() const {
  if (!quantized() || cfg_.speculative == 0) return 0;
  // Dropping up to `speculative` tokens rebuilds at most this many blocks.
  return (cfg_.speculative + cfg_.group - 1) / cfg_.group + 1;
}

Status KvCache::reserve_shadow(HeadStore& s) {
  const int64_t K = spec_blocks();
  if (K == 0) return Status::ok();
  // The ring holds K blocks of f16 rows; a fresh ring has no valid copy
  // older than now (the blocks before it came from appends without one).
  const size_t bytes = static_cast<size_t>(K * cfg_.group * row_bytes());
  if (s.shadow_k.size() >= bytes && s.shadow_v.size() >= bytes) return Status::ok();
  if (s.shadow_k.size() == 0) s.shadow_from = s.n_blocks;
  Status st = s.shadow_k.size() >= bytes ? Status::ok() : s.shadow_k.resize(bytes, 0);
  if (st.is_ok() && s.shadow_v.size() < bytes) st = s.shadow_v.resize(bytes, 0);
  return st;
}

void KvCache::store_shadow(HeadStore& s, int64_t block, const float* k, const float* v) {
  const int64_t K = spec_blocks();
  const size_t bytes = static_cast<size_t>(cfg_.group * row_bytes());
  if (K == 0 || s.shadow_k.size() < bytes * K || s.shadow_v.size() < bytes * K) return;
  const size_t at = static_cast<size_t>(block % K) * bytes;
  // k, v hold f16 values widened to f32: narrowing them back is exact.
  convert_elems(k, DType::F32, s.shadow_k.data() + at, DType::F16, cfg_.group * cfg_.head_dim, convert_path());
  convert_elems(v, DType::F32, s.shadow_v.data() + at, DType::F16, cfg_.group * cfg_.head_dim, convert_path());
}

bool KvCache::shadow_valid(const HeadStore& s, int64_t block) const {
  const int64_t K = spec_blocks();
  const size_t bytes = static_cast<size_t>(K * cfg_.group * row_bytes());
  return K > 0 && s.shadow_k.size() >= bytes && s.shadow_v.size() >= bytes && block >= s.shadow_from && block >= s.n_blocks - K &&
         block < s.n_blocks;
}

namespace {
// Blocks an int head of `len` tokens holds (append and compaction agree).
int64_t blocks_for(int64_t len, int64_t residual, int64_t group) { return len > residual ? (len - residual) / group : 0; }
}  // namespace

Status KvCache::commit_tree(const std::vector<int64_t>& layers_in, int64_t tree_size, const std::vector<int32_t>& accepted) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, g = cfg_.group;
  // ---- checks: nothing changes before all of them pass ----
  std::vector<int64_t> layers = layers_in;
  try {
    if (layers.empty()) {
      for (int64_t l = 0; l < cfg_.n_layers; ++l) layers.push_back(l);
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.commit: out of memory");
  }
  std::vector<uint8_t> seen(static_cast<size_t>(cfg_.n_layers), 0);
  for (int64_t l : layers) {
    if (l < 0 || l >= cfg_.n_layers) return Status::invalid("layers: expected layer indices 0 to " + num(cfg_.n_layers - 1) + ", received " + num(l));
    if (seen[l]++) return Status::invalid("layers: expected distinct layer indices, received " + num(l) + " twice");
  }
  if (tree_size < 0) return Status::invalid("treeSize: expected an integer >= 0, received " + num(tree_size));
  const int64_t A = static_cast<int64_t>(accepted.size());
  for (int64_t j = 0; j < A; ++j) {
    const int64_t lo = j == 0 ? 0 : int64_t(accepted[j - 1]) + 1;
    if (accepted[j] < lo || accepted[j] >= tree_size) {
      return Status::invalid("acceptedNodes[" + num(j) + "]: expected ascending distinct node indices in [" + num(lo) + ", " + num(tree_size - 1) +
                             "], received " + num(accepted[j]));
    }
  }
  for (int64_t l : layers) {
    for (int64_t h = 0; h < H; ++h) {
      if (head(l, h).len < tree_size) {
        return Status::invalid("treeSize: expected at most " + num(head(l, h).len) + " (layer " + num(l) + " head " + num(h) + " holds " +
                               num(head(l, h).len) + " tokens), received " + num(tree_size));
      }
    }
  }
  const int64_t dropped = tree_size - A;
  if (dropped == 0) return Status::ok();  // every node accepted: already in place

  // ---- reservations (int caches: scratch, tail room, the shadow ring) ----
  std::vector<int32_t> keep;  // absolute rows of one head
  std::vector<uint16_t> gk, gv;  // int caches: the rebuilt rows of one head, f16 [R, d]
  std::vector<float> fk, fv;     // one group as f32, or one dequantized row
  try {
    keep.resize(static_cast<size_t>(A));
    if (quantized()) {
      int64_t most = 0;
      for (int64_t l : layers) {
        for (int64_t h = 0; h < H; ++h) {
          HeadStore& s = head(l, h);
          const int64_t base = s.len - tree_size, L2 = base + A, nb2 = blocks_for(L2, cfg_.residual, g);
          const int64_t B0 = std::min({s.n_blocks, base / g, nb2});
          most = std::max(most, L2 - B0 * g);
          Status st = reserve_rows(s, L2 - nb2 * g);
          if (st.is_ok() && nb2 > B0) st = reserve_shadow(s);
          if (!st.is_ok()) return st;
        }
      }
      gk.resize(static_cast<size_t>(most * d));
      gv.resize(static_cast<size_t>(most * d));
      fk.resize(static_cast<size_t>(g * d));
      fv.resize(static_cast<size_t>(g * d));
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.commit: out of memory");
  }

  // ---- apply: cannot fail from here on ----
  const ConvertPath path = convert_path();
  const size_t rb = static_cast<size_t>(row_bytes());
  for (int64_t l : layers) {
    for (int64_t h = 0; h < H; ++h) {
      HeadStore& s = head(l, h);
      const int64_t base = s.len - tree_size;
      for (int64_t j = 0; j < A; ++j) keep[j] = static_cast<int32_t>(base + accepted[j]);
      int64_t changed = base;  // first row whose key may differ now (summaries)
      if (!quantized()) {
        keep_rows(s, base, keep.data(), A);
      } else {
        const int64_t L2 = base + A, nb = s.n_blocks, nb2 = blocks_for(L2, cfg_.residual, g);
        const int64_t B0 = std::min({nb, base / g, nb2}), R = L2 - B0 * g;
        // Gather rows [B0 * g, L2) of the result as f16, from the tail, the
        // shadow ring, or (no copy) the dequantized block.
        for (int64_t i = 0; i < R; ++i) {
          const int64_t row = B0 * g + i;
          const int64_t src = row < base ? row : keep[row - base];
          uint16_t* ok = gk.data() + i * d;
          uint16_t* ov = gv.data() + i * d;
          if (src >= nb * g) {
            std::memcpy(ok, s.k.data() + static_cast<size_t>(src - nb * g) * rb, rb);
            std::memcpy(ov, s.v.data() + static_cast<size_t>(src - nb * g) * rb, rb);
          } else if (shadow_valid(s, src / g)) {
            const size_t at = (static_cast<size_t>((src / g) % spec_blocks()) * g + static_cast<size_t>(src % g)) * rb;
            std::memcpy(ok, s.shadow_k.data() + at, rb);
            std::memcpy(ov, s.shadow_v.data() + at, rb);
          } else {
            dequantize_rows(qlayout_, s.blocks.data() + (src / g) * qlayout_.block_bytes, src % g, 1, fk.data(), fv.data());
            convert_elems(fk.data(), DType::F32, ok, DType::F16, d, path);
            convert_elems(fv.data(), DType::F32, ov, DType::F16, d, path);
          }
        }
        // Blocks [B0, nb2) from full groups (through f32, as append does), then the tail.
        for (int64_t b = B0; b < nb2; ++b) {
          const int64_t r0 = (b - B0) * g;
          convert_elems(gk.data() + r0 * d, DType::F16, fk.data(), DType::F32, g * d, path);
          convert_elems(gv.data() + r0 * d, DType::F16, fv.data(), DType::F32, g * d, path);
          quantize_block(qlayout_, fk.data(), fv.data(), s.blocks.data() + b * qlayout_.block_bytes);
          store_shadow(s, b, fk.data(), fv.data());
        }
        const int64_t t0 = (nb2 - B0) * g;
        std::memcpy(s.k.data(), gk.data() + t0 * d, static_cast<size_t>(R - t0) * rb);
        std::memcpy(s.v.data(), gv.data() + t0 * d, static_cast<size_t>(R - t0) * rb);
        s.n_blocks = nb2;
        s.shadow_from = std::min(s.shadow_from, B0);
        for (int64_t j = 0; j < A; ++j) {
          s.pos[base + j] = s.pos[keep[j]];
          s.mass[base + j] = s.mass[keep[j]];
          s.count[base + j] = s.count[keep[j]];
        }
        s.pos.resize(static_cast<size_t>(L2));
        s.mass.resize(static_cast<size_t>(L2));
        s.count.resize(static_cast<size_t>(L2));
        s.len = L2;
        changed = std::min(base, B0 * g);
      }
      if (summary_page_[l] != 0) {
        sparse::PageSummary& sum = summary(l, h);
        if (changed < sum.rows) sparse::summary_truncate(sum, changed, summary_page_[l]);
        (void)sync_summary(l, h);  // on failure it is empty and rebuilt at the next sparse attend
      }
    }
    next_pos_[l] = std::max<int64_t>(0, next_pos_[l] - dropped);
    tidal_after_change(l);
  }
  return Status::ok();
}

}  // namespace tp::kv
