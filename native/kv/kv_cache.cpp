// KvCache storage: creation, append, export, sizes. Attention is in
// kv_cache_attend.cpp, compression in kv_cache_compress.cpp.
#include "kv_cache.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>

#include "../core/checked_math.h"
#include "../core/half.h"
#include "../core/thread_pool.h"
#include "kv_common.h"
#include "kv_dots.h"
#include "kv_finite.h"

namespace tp::kv {
namespace {

// Copies one row of d elements between dtypes (bit for bit when they match).
void convert_row(const void* src, DType st, int64_t src_off, void* dst, DType dt, int64_t dst_off, int64_t d,
                 ConvertPath path = convert_path()) {
  convert_elems(static_cast<const uint8_t*>(src) + src_off * dtype_size(st), st, static_cast<uint8_t*>(dst) + dst_off * dtype_size(dt), dt, d,
                path);
}

// Appends this many input bytes or fewer run on the calling thread: waking
// the pool costs more than copying them.
constexpr int64_t kInlineAppendBytes = int64_t(256) << 10;

}  // namespace

KvCache::KvCache(const CacheConfig& cfg) : cfg_(cfg) {
  if (quantized()) qlayout_ = make_quant_layout(cfg.head_dim, cfg.group, cfg.type == CacheType::Int8 ? 8 : 4);
}

Status KvCache::create(const CacheConfig& cfg, KvCache** out) {
  constexpr int64_t kMax = int64_t(1) << 31;
  if (cfg.n_layers < 1 || cfg.n_layers > 4096) return Status::invalid("nLayers: expected 1 to 4096, received " + num(cfg.n_layers));
  if (cfg.n_kv_heads < 1 || cfg.n_kv_heads > 4096) return Status::invalid("nKvHeads: expected 1 to 4096, received " + num(cfg.n_kv_heads));
  if (cfg.head_dim < 1 || cfg.head_dim > 65536) return Status::invalid("headDim: expected 1 to 65536, received " + num(cfg.head_dim));
  if (cfg.capacity < 1 || cfg.capacity >= kMax) return Status::invalid("capacity: expected 1 to 2^31 - 1 tokens, received " + num(cfg.capacity));
  if (static_cast<int>(cfg.type) < 0 || static_cast<int>(cfg.type) > 4) return Status::invalid("dtype: expected f32, f16, bf16, int8 or int4");
  if (cfg.group < 1 || cfg.group > 4096) return Status::invalid("groupSize: expected 1 to 4096, received " + num(cfg.group));
  if (cfg.residual < 0 || cfg.residual >= kMax) return Status::invalid("residual: expected 0 to 2^31 - 1, received " + num(cfg.residual));
  if (cfg.window < 1 || cfg.window > 4096) return Status::invalid("window: expected 1 to 4096, received " + num(cfg.window));
  if (cfg.reserve < 0 || cfg.reserve > cfg.capacity) {
    return Status::invalid("reserve: expected 0 to the capacity (" + num(cfg.capacity) + ") tokens, received " + num(cfg.reserve));
  }
  if (cfg.speculative < 0 || cfg.speculative >= kMax) return Status::invalid("speculative: expected 0 to 2^31 - 1 tokens, received " + num(cfg.speculative));
  std::unique_ptr<KvCache> c;
  try {
    c.reset(new KvCache(cfg));
    c->heads_.resize(static_cast<size_t>(cfg.n_layers * cfg.n_kv_heads));
    c->next_pos_.assign(static_cast<size_t>(cfg.n_layers), 0);
    c->windows_.resize(static_cast<size_t>(cfg.n_layers));
    c->mass_seen_.assign(static_cast<size_t>(cfg.n_layers), 0);
    c->summaries_.resize(static_cast<size_t>(cfg.n_layers * cfg.n_kv_heads));
    c->summary_page_.assign(static_cast<size_t>(cfg.n_layers), 0);
    c->summary_sums_.assign(static_cast<size_t>(cfg.n_layers), 0);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache: cannot allocate the head table");
  }
  for (HeadStore& s : c->heads_) {
    const Status st = c->apply_reserve(s);
    if (!st.is_ok()) return st;
  }
  *out = c.release();
  return Status::ok();
}

DType KvCache::row_dtype() const {
  switch (cfg_.type) {
    case CacheType::F32: return DType::F32;
    case CacheType::BF16: return DType::BF16;
    default: return DType::F16;
  }
}

Status KvCache::reserve_rows(HeadStore& s, int64_t rows) {
  if (rows <= s.rows_alloc) return Status::ok();
  const int64_t limit = quantized() ? std::max(rows, cfg_.residual + cfg_.group) : cfg_.capacity;
  // Doubling: few growth events (each populates its new pages up front, see
  // kv_grow.h), so single-token appends rarely pay for one.
  const int64_t grown = std::min(std::max({rows, 2 * s.rows_alloc, int64_t(64)}), std::max(limit, rows));
  const size_t bytes = static_cast<size_t>(grown * row_bytes());
  const size_t keep = static_cast<size_t>(s.rows_alloc * row_bytes());
  Status st = s.k.resize(bytes, keep);
  if (st.is_ok()) st = s.v.resize(bytes, keep);
  if (!st.is_ok()) return st;  // k may be larger now; contents are unchanged
  s.rows_alloc = grown;
  return Status::ok();
}

Status KvCache::reserve_blocks(HeadStore& s, int64_t blocks) {
  if (blocks <= s.blocks_alloc) return Status::ok();
  const int64_t grown = std::max({blocks, 2 * s.blocks_alloc, int64_t(4)});
  const Status st = s.blocks.resize(static_cast<size_t>(grown * qlayout_.block_bytes), static_cast<size_t>(s.n_blocks * qlayout_.block_bytes));
  if (!st.is_ok()) return st;
  s.blocks_alloc = grown;
  return Status::ok();
}

// Room for cfg_.reserve tokens: rows (int caches: the f16 tail and the
// blocks), positions, mass and counts, every page written once now so that
// appends into it neither grow nor fault.
Status KvCache::apply_reserve(HeadStore& s) {
  const int64_t r = cfg_.reserve;
  if (r == 0) return Status::ok();
  try {
    Status st = reserve_rows(s, quantized() ? std::min(r, cfg_.residual + 2 * cfg_.group) : r);
    if (st.is_ok() && quantized()) st = reserve_blocks(s, r / cfg_.group);
    if (!st.is_ok()) return Status::out_of_memory("reserve: cannot allocate " + num(r) + " tokens per head (" + st.message + ")");
    const size_t n = static_cast<size_t>(r), len = static_cast<size_t>(s.len);
    if (s.pos.capacity() < n) {
      s.pos.reserve(n);
      s.mass.reserve(n);
      s.count.reserve(n);
    }
    // Write every element once (heap pages fault in here, not in an append).
    s.pos.resize(n);
    s.mass.resize(n);
    s.count.resize(n);
    s.pos.resize(len);
    s.mass.resize(len);
    s.count.resize(len);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("reserve: cannot allocate " + num(r) + " tokens per head");
  }
  return Status::ok();
}

void KvCache::reset_head(HeadStore& s) {
  if (cfg_.reserve == 0) {
    s = HeadStore();
    return;
  }
  s.len = 0;
  s.n_blocks = 0;
  s.shadow_from = 0;
  s.pos.clear();
  s.mass.clear();
  s.count.clear();
  shrink(s);  // storage grown past the reservation goes back
}

namespace {
// Capacity down to max(size, floor), the room past the size written once
// (populated). Best effort: on a failed allocation the vector stays as it is.
template <typename V>
void shrink_vector(V& v, size_t floor) {
  const size_t want = std::max(v.size(), floor);
  if (v.capacity() <= want) return;
  if (want == v.size()) {
    v.shrink_to_fit();
    return;
  }
  try {
    V t;
    t.reserve(want);
    t.assign(v.begin(), v.end());
    t.resize(want);
    t.resize(v.size());
    v.swap(t);
  } catch (const std::bad_alloc&) {
  }
}
}  // namespace

void KvCache::shrink(HeadStore& s) {
  const int64_t rows = quantized() ? tail_len(s) : s.len;
  int64_t want = rows + std::min<int64_t>(64, cfg_.capacity - rows);
  // Keep what apply_reserve gave (int caches: the tail's share of it).
  want = std::max(want, quantized() ? std::min(cfg_.reserve, cfg_.residual + 2 * cfg_.group) : cfg_.reserve);
  if (s.rows_alloc > want + want / 4 + 16) {
    const size_t bytes = static_cast<size_t>(want * row_bytes());
    // A failed shrink keeps the larger buffer: nothing is lost.
    if (s.k.resize(bytes, bytes).is_ok() && s.v.resize(bytes, bytes).is_ok()) s.rows_alloc = want;
    else s.rows_alloc = std::min<int64_t>(s.k.size(), s.v.size()) / row_bytes();
  }
  const int64_t keep_blocks = std::max(s.n_blocks, cfg_.reserve / std::max<int64_t>(cfg_.group, 1));
  if (quantized() && s.blocks_alloc > keep_blocks + keep_blocks / 4 + 4) {
    const size_t bytes = static_cast<size_t>(keep_blocks * qlayout_.block_bytes);
    if (s.blocks.resize(bytes, static_cast<size_t>(s.n_blocks * qlayout_.block_bytes)).is_ok()) s.blocks_alloc = keep_blocks;
  }
  // The vectors keep room for the reservation, no more.
  const size_t floor = static_cast<size_t>(cfg_.reserve);
  shrink_vector(s.pos, floor);
  shrink_vector(s.mass, floor);
  shrink_vector(s.count, floor);
}

Status check_append(const KvCacheApi& cache, int64_t layer, const AppendInput& in) {
  Status st = check_append_args(cache, layer, in);
  if (!st.is_ok()) return st;
  const CacheConfig& cfg = cache.config();
  st = check_finite("k", in.k, in.k_dtype, cfg.n_kv_heads, in.n, cfg.head_dim, in.k_head_stride, in.k_row_stride);
  if (st.is_ok()) st = check_finite("v", in.v, in.v_dtype, cfg.n_kv_heads, in.n, cfg.head_dim, in.v_head_stride, in.v_row_stride);
  return st;
}

Status check_append_args(const KvCacheApi& cache, int64_t layer, const AppendInput& in) {
  const CacheConfig& cfg = cache.config();
  const int64_t H = cfg.n_kv_heads, d = cfg.head_dim;
  if (layer < 0 || layer >= cfg.n_layers) return Status::invalid("layer: expected 0 to " + num(cfg.n_layers - 1) + ", received " + num(layer));
  if (in.n < 0) return Status::invalid("k.shape[1]: expected n >= 0, received " + num(in.n));
  Status st = check_view("k", H, in.n, d, in.k_head_stride, in.k_row_stride, in.k_len);
  if (st.is_ok()) st = check_view("v", H, in.n, d, in.v_head_stride, in.v_row_stride, in.v_len);
  if (!st.is_ok()) return st;
  if (in.positions && in.positions_len != in.n) return Status::invalid("positions: expected " + num(in.n) + " elements, received " + num(in.positions_len));
  // With a compression in the same call, the new tokens may overflow the
  // capacity while it runs, if the budget leaves room for them.
  const bool room_after = in.compress && in.compress->keep >= 0 && in.compress->keep + in.n <= cfg.capacity;
  for (int64_t h = 0; h < H && !room_after; ++h) {
    const int64_t len = cache.length(layer, h);
    if (len + in.n > cfg.capacity) {
      return Status::invalid("k.shape[1]: appending " + num(in.n) + " tokens to layer " + num(layer) + " head " + num(h) + " (" +
                             num(len) + " tokens) exceeds the capacity of " + num(cfg.capacity) + " tokens");
    }
  }
  return Status::ok();
}

Status KvCache::append(int64_t layer, const AppendInput& in) {
  // Float caches check finite values while they copy (append_float_rows);
  // int caches quantize as they go, so they check everything first.
  Status st = check_append_args(*this, layer, in);
  if (st.is_ok() && quantized()) st = check_finite_rows(in);
  if (!st.is_ok()) return st;
  // Positions count on as int32: refuse to wrap past 2^31 - 1.
  constexpr int64_t kMaxPos = std::numeric_limits<int32_t>::max();
  if (!in.positions && in.n > 0 && next_pos_[layer] + in.n - 1 > kMaxPos) {
    return Status::invalid("positions: counting on from " + num(next_pos_[layer]) + ", " + num(in.n) + " new tokens would pass 2^31 - 1 on layer " +
                           num(layer) + "; pass opts.positions or clear the layer");
  }
  // No summaries, or a float cache's plain append (append_float_rows folds
  // the new rows into the summaries itself): nothing to track here.
  if (summary_page_[layer] == 0 || in.n == 0 || (!quantized() && !in.compress)) {
    const Status r = in.compress && in.n > 0 ? append_and_compress(layer, in) : append_rows(layer, in);
    if (r.is_ok() && in.n > 0) tidal_after_change(layer);
    return r;
  }
  // The layer keeps Quest summaries: the rows from which each head changed
  // (its old length; int caches: the old end of its blocks when the call
  // quantized tail rows into new ones).
  // Per calling thread and reused: no allocation per append.
  thread_local std::vector<int64_t> changed, blocks;
  try {
    changed.resize(static_cast<size_t>(cfg_.n_kv_heads));
    blocks.resize(changed.size());
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.append: out of memory");
  }
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) {
    changed[h] = head(layer, h).len;
    blocks[h] = head(layer, h).n_blocks;
  }
  st = in.compress ? append_and_compress(layer, in) : append_rows(layer, in);
  if (!st.is_ok()) return st;
  for (int64_t h = 0; h < cfg_.n_kv_heads && quantized(); ++h) {
    if (head(layer, h).n_blocks != blocks[h]) changed[h] = std::min(changed[h], blocks[h] * cfg_.group);
  }
  summaries_after_append(layer, changed);
  tidal_after_change(layer);
  return Status::ok();
}

// check_append's finite scan of k and v, the heads spread over the pool for
// large inputs; a hit is named by the serial scan (k first, then v, the
// first bad element), so the error is the same either way.
Status KvCache::check_finite_rows(const AppendInput& in) const {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, n = in.n;
  auto serial = [&] {
    Status st = check_finite("k", in.k, in.k_dtype, H, n, d, in.k_head_stride, in.k_row_stride);
    if (st.is_ok()) st = check_finite("v", in.v, in.v_dtype, H, n, d, in.v_head_stride, in.v_row_stride);
    return st;
  };
  const int64_t bytes = H * n * d * static_cast<int64_t>(dtype_size(in.k_dtype) + dtype_size(in.v_dtype));
  if (bytes <= kInlineAppendBytes || H == 1) return serial();
  std::vector<uint8_t> bad(static_cast<size_t>(H), 0);
  ThreadPool::instance().parallel_for(H, [&](int64_t h, int) {
    const size_t ke = dtype_size(in.k_dtype), ve = dtype_size(in.v_dtype);
    for (int64_t r = 0; r < n && !bad[h]; ++r) {
      const auto* kr = static_cast<const uint8_t*>(in.k) + static_cast<size_t>(h * in.k_head_stride + r * in.k_row_stride) * ke;
      const auto* vr = static_cast<const uint8_t*>(in.v) + static_cast<size_t>(h * in.v_head_stride + r * in.v_row_stride) * ve;
      if (finite_detail::row_has_nonfinite(kr, in.k_dtype, d) || finite_detail::row_has_nonfinite(vr, in.v_dtype, d)) bad[h] = 1;
    }
  });
  return std::any_of(bad.begin(), bad.end(), [](uint8_t b) { return b != 0; }) ? serial() : Status::ok();
}

Status KvCache::mark_layer(int64_t layer, AppendMark& m) const {
  const int64_t H = cfg_.n_kv_heads;
  try {
    m.next_pos = next_pos_[layer];
    m.len.resize(static_cast<size_t>(H));
    m.n_blocks.resize(static_cast<size_t>(H));
    if (quantized()) {
      m.tail_k.resize(static_cast<size_t>(H));
      m.tail_v.resize(static_cast<size_t>(H));
    }
    for (int64_t h = 0; h < H; ++h) {
      const HeadStore& s = head(layer, h);
      m.len[h] = s.len;
      m.n_blocks[h] = s.n_blocks;
      if (quantized()) {
        const size_t bytes = static_cast<size_t>(tail_len(s) * row_bytes());
        m.tail_k[h].assign(s.k.data(), s.k.data() + bytes);
        m.tail_v[h].assign(s.v.data(), s.v.data() + bytes);
      }
    }
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.append: out of memory");
  }
  return Status::ok();
}

// An append only adds rows, positions and blocks past the marked ones (the
// buffers may have grown, never shrunk), and quantizing rewrote the f16
// tail: restoring the counts and the tail restores the layer exactly.
void KvCache::undo_append(int64_t layer, const AppendMark& m) {
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) {
    HeadStore& s = head(layer, h);
    // The append's new blocks took the ring slots of older ones.
    s.shadow_from = std::max(s.shadow_from, s.n_blocks - spec_blocks());
    s.len = m.len[h];
    s.n_blocks = m.n_blocks[h];
    s.pos.resize(static_cast<size_t>(s.len));
    s.mass.resize(static_cast<size_t>(s.len));
    s.count.resize(static_cast<size_t>(s.len));
    if (quantized() && !m.tail_k[h].empty()) {
      std::memcpy(s.k.data(), m.tail_k[h].data(), m.tail_k[h].size());
      std::memcpy(s.v.data(), m.tail_v[h].data(), m.tail_v[h].size());
    }
  }
  next_pos_[layer] = m.next_pos;
}

// Append, then compress the layer once it reaches the trigger (or overflows
// the capacity). The compression is planned before it touches anything; if
// planning fails, or would leave a head over the capacity, the append is
// undone. Applying a plan cannot fail.
Status KvCache::append_and_compress(int64_t layer, const AppendInput& in) {
  AppendMark mark;
  Status st = mark_layer(layer, mark);
  if (st.is_ok()) st = append_rows(layer, in);  // itself all-or-nothing
  if (!st.is_ok()) return st;
  const int64_t longest = max_length(layer);
  if (longest < in.compress_at && longest <= cfg_.capacity) return Status::ok();
  PreparedCompress prep;
  CompressReport report;
  try {
    CompressRequest req = *in.compress;
    req.layers.assign(1, layer);
    st = prepare_compress(req, &report, prep);
  } catch (const std::bad_alloc&) {
    st = Status::out_of_memory("KvCache.append: out of memory while compressing");
  }
  for (int64_t h = 0; h < cfg_.n_kv_heads && st.is_ok(); ++h) {
    const int64_t kept = static_cast<int64_t>(prep.plans[0][h].keep.size());
    if (kept > cfg_.capacity) {
      st = Status::invalid("autoCompress: layer " + num(layer) + " head " + num(h) + " would keep " + num(kept) + " tokens, over the capacity of " +
                           num(cfg_.capacity) + " (the policy keeps more than budget.keep there); raise the capacity");
    }
  }
  if (!st.is_ok()) {
    undo_append(layer, mark);
    return st;
  }
  commit_compress(prep, &report);
  return Status::ok();
}

// Reserves room for n more tokens in every head of the layer: rows (or the
// f16 tail and blocks of an int cache) and the position / mass / count
// vectors, all growing geometrically. A failure changes no token.
Status KvCache::reserve_append(int64_t layer, int64_t n) {
  const int64_t H = cfg_.n_kv_heads;
  // A call that doubles large buffers (the rare growth of a single-token
  // append) populates their new pages on every pool worker: the kernel's
  // page zeroing is most of its cost.
  int64_t growing = 0;
  for (int64_t h = 0; h < H && !quantized(); ++h) {
    const HeadStore& s = head(layer, h);
    if (s.len + n > s.rows_alloc) growing += s.rows_alloc;
  }
  if (H > 1 && growing * row_bytes() >= (int64_t(4) << 20)) {
    std::vector<Status> st(static_cast<size_t>(H));
    ThreadPool::instance().parallel_for(H, [&](int64_t h, int) { st[h] = reserve_head(head(layer, h), n); });
    for (const Status& s : st) {
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }
  for (int64_t h = 0; h < H; ++h) {
    const Status st = reserve_head(head(layer, h), n);
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

// reserve_append for one head (thread-safe across heads: each head's
// buffers are its own mappings).
Status KvCache::reserve_head(HeadStore& s, int64_t n) {
  try {
    // Int caches keep a tail of fewer than residual + group rows after each call.
    const int64_t rows = quantized() ? std::min(tail_len(s) + n, cfg_.residual + 2 * cfg_.group) : s.len + n;
    Status st = reserve_rows(s, rows);
    if (!st.is_ok()) return st;
    if (quantized()) {
      const int64_t extra = std::max<int64_t>(0, (tail_len(s) + n - cfg_.residual) / cfg_.group);
      st = reserve_blocks(s, s.n_blocks + extra);
      if (st.is_ok() && extra > 0) st = reserve_shadow(s);
      if (!st.is_ok()) return st;
    }
    const size_t need = static_cast<size_t>(s.len + n);
    reserve_geometric(s.pos, need);
    reserve_geometric(s.mass, need);
    reserve_geometric(s.count, need);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.append: out of memory");
  }
  return Status::ok();
}

// Positions (given, or counting on from `first`), zero mass and unit counts
// for the in.n new tokens of a head. Capacity is reserved: cannot fail.
void KvCache::append_meta(HeadStore& s, const AppendInput& in, int64_t first) {
  const size_t at = s.pos.size(), n = static_cast<size_t>(in.n);
  s.pos.resize(at + n);
  if (in.positions) {
    std::memcpy(s.pos.data() + at, in.positions, n * sizeof(int32_t));
  } else {
    for (size_t r = 0; r < n; ++r) s.pos[at + r] = static_cast<int32_t>(first + static_cast<int64_t>(r));
  }
  s.mass.resize(at + n, 0.0f);
  s.count.resize(at + n, 1.0f);
}

// Float caches: per head, each chunk of rows is scanned for non-finite values
// and converted (or copied) into the reserved rows past the head's length,
// so the input is read once. Lengths move only after every head succeeded:
// a refused value leaves the cache as it was.
Status KvCache::append_float_rows(int64_t layer, const AppendInput& in) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, n = in.n;
  const int64_t bytes = H * n * d * static_cast<int64_t>(dtype_size(in.k_dtype) + dtype_size(in.v_dtype));
  const bool inline_call = bytes <= kInlineAppendBytes || H == 1;
  // Small appends reserve here; larger ones reserve each head inside its pool
  // task, so the page population of new storage (the kernel zeroing pages,
  // the bulk of a large append into fresh storage) runs on every worker.
  Status st = inline_call ? reserve_append(layer, n) : Status::ok();
  if (!st.is_ok()) return st;
  const DType rt = row_dtype();
  const size_t rb = static_cast<size_t>(row_bytes());
  const ConvertPath path = convert_path();
  constexpr int64_t kChunk = 4096;  // elements scanned, then converted while in L1
  // Rows [r0, r0 + nr) of one operand (k or v) of one head into dst (row
  // r0's place); false: a non-finite value.
  auto copy = [&](const void* base, DType t, int64_t hs, int64_t rs, int64_t h, uint8_t* dst, int64_t r0, int64_t nr) {
    const size_t es = dtype_size(t);
    const auto* src = static_cast<const uint8_t*>(base) + static_cast<size_t>(h * hs + r0 * rs) * es;
    const bool packed = nr == 1 || rs == d;  // the rows are one [nr * d] run
    const int64_t runs = packed ? 1 : nr, run = packed ? nr * d : d;
    for (int64_t r = 0; r < runs; ++r) {
      const uint8_t* s = src + static_cast<size_t>(r * rs) * es;
      uint8_t* o = dst + static_cast<size_t>(r) * rb;
      if (t == rt) {
        // Same dtype: copy and check in one pass.
        if (!copy_finite(s, o, t, run, path)) return false;
        continue;
      }
      for (int64_t c = 0; c < run; c += kChunk) {
        const int64_t m = std::min(kChunk, run - c);
        if (finite_detail::row_has_nonfinite(s + c * es, t, m)) return false;
        convert_elems(s + c * es, t, o + c * dtype_size(rt), rt, m, path);
      }
    }
    return true;
  };
  // A layer with Quest summaries folds each head's new keys right after
  // writing them, while they are still in L1 / L2 (reading them back after
  // every head was written cost as much as the append itself), up to the
  // last whole page: the rows of a partial page wait for the next sparse
  // attend or questSummaries, which fold them in one call (at most P - 1
  // rows per head), so a decode step's one-token append does no summary
  // work until it completes a page. A call that fails refolds the summaries
  // back below (min / max are exact, so they come out bit for bit as before).
  const bool fold = summary_page_[layer] != 0 && !in.compress;
  const int64_t P = summary_page_[layer];
  // Keys copied per fold when the input holds the stored values: whole pages
  // of about 8 KiB, folded from the input while they are still in L1 (one
  // fold over the whole append after the copy read them back from L2: +40%
  // on a 512-token append).
  const int64_t seg_rows = fold ? std::max<int64_t>(1, (int64_t{8192} / static_cast<int64_t>(rb)) / P) * P : n;
  auto write_head = [&](int64_t h) {
    HeadStore& s = head(layer, h);
    uint8_t* kdst = s.k.data() + static_cast<size_t>(s.len) * rb;
    const int64_t whole = fold ? (s.len + n) / P * P : 0;
    const bool folds = fold && whole > summary(layer, h).rows;
    const size_t es = dtype_size(in.k_dtype);
    const FreshRows fresh{static_cast<const uint8_t*>(in.k) + static_cast<size_t>(h * in.k_head_stride) * es, s.len,
                          in.k_row_stride * static_cast<int64_t>(es)};
    bool ok = true;
    if (folds && in.k_dtype == rt) {
      // Page-aligned segments: copy, then fold the pages they complete.
      for (int64_t r0 = 0; r0 < n && ok;) {
        const int64_t r1 = std::min(n, ((s.len + r0) / P * P + seg_rows) - s.len);
        ok = copy(in.k, in.k_dtype, in.k_head_stride, in.k_row_stride, h, kdst + static_cast<size_t>(r0) * rb, r0, r1 - r0);
        const int64_t upto = (s.len + r1) / P * P;
        if (ok && upto > summary(layer, h).rows) (void)sync_summary(layer, h, upto, &fresh);  // a refused allocation empties it: rebuilt at the next sparse attend
        r0 = r1;
      }
    } else {
      ok = copy(in.k, in.k_dtype, in.k_head_stride, in.k_row_stride, h, kdst, 0, n);
      if (ok && folds) (void)sync_summary(layer, h, whole, nullptr);  // from the storage (the input has another dtype)
    }
    return ok && copy(in.v, in.v_dtype, in.v_head_stride, in.v_row_stride, h, s.v.data() + static_cast<size_t>(s.len) * rb, 0, n);
  };
  bool ok = true;
  if (inline_call) {
    for (int64_t h = 0; h < H && ok; ++h) ok = write_head(h);
  } else {
    // Rows written past a head's length are invisible until the lengths
    // move (below), so a head that fails to reserve or finds a non-finite
    // value leaves the cache as it was whatever the others did.
    std::vector<uint8_t> good(static_cast<size_t>(H), 1);
    std::vector<Status> reserved(static_cast<size_t>(H));
    ThreadPool::instance().parallel_for(H, [&](int64_t h, int) {
      reserved[h] = reserve_head(head(layer, h), n);
      good[h] = reserved[h].is_ok() && write_head(h) ? 1 : 0;
    });
    for (const Status& r : reserved) {
      if (r.is_ok()) continue;
      if (fold) {
        for (int64_t h = 0; h < H; ++h) (void)sync_summary(layer, h);  // back to the rows the heads hold
      }
      return r;
    }
    ok = std::all_of(good.begin(), good.end(), [](uint8_t g) { return g != 0; });
  }
  if (!ok) {
    if (fold) {
      for (int64_t h = 0; h < H; ++h) (void)sync_summary(layer, h);  // back to the rows the heads hold
    }
    // Name the first bad element exactly as check_finite does (k first).
    st = check_finite("k", in.k, in.k_dtype, H, n, d, in.k_head_stride, in.k_row_stride);
    if (st.is_ok()) st = check_finite("v", in.v, in.v_dtype, H, n, d, in.v_head_stride, in.v_row_stride);
    return st.is_ok() ? Status::invalid("k, v: expected finite values") : st;
  }
  const int64_t first = next_pos_[layer];
  for (int64_t h = 0; h < H; ++h) {
    HeadStore& s = head(layer, h);
    append_meta(s, in, first);
    s.len += n;
  }
  int64_t next = first + n;
  if (in.positions) {
    for (int64_t r = 0; r < n; ++r) next = std::max<int64_t>(next, int64_t(in.positions[r]) + 1);
  }
  next_pos_[layer] = std::max(next_pos_[layer], next);
  return Status::ok();
}

// Stores the rows (arguments checked; int caches: finite values too).
// Everything is reserved first, so a failure leaves every head as it was.
Status KvCache::append_rows(int64_t layer, const AppendInput& in) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  if (in.n == 0) return Status::ok();
  if (!quantized()) return append_float_rows(layer, in);
  const Status st = reserve_append(layer, in.n);
  if (!st.is_ok()) return st;
  const DType rt = row_dtype();
  const int64_t first = next_pos_[layer];
  const ConvertPath path = convert_path();
  const int64_t g = cfg_.group, res = cfg_.residual, n = in.n;
  const size_t rb = static_cast<size_t>(row_bytes());
  // Per head: the old f16 tail (T rows) followed by the n new rows is one
  // sequence; its first nq full groups past the residual are quantized
  // straight from where they lie (tail or input, through f16 as the tail
  // stores them), then the rest becomes the new tail: one move of the old
  // tail's survivors, one conversion of the new rows. The same blocks and
  // tail as taking the rows a group at a time (the old loop moved the whole
  // tail after every group).
  // Scratch for every head, allocated before any head changes (a refused
  // allocation in a pool task would leave some heads appended, some not).
  std::vector<float> scratch;
  std::vector<uint16_t> halves;
  int64_t longest_tail = 0;
  for (int64_t h = 0; h < H; ++h) longest_tail = std::max(longest_tail, tail_len(head(layer, h)));
  if (longest_tail + n > res) {
    try {
      scratch.resize(static_cast<size_t>(H * 2 * g * d));
      halves.resize(static_cast<size_t>(H * d));
    } catch (const std::bad_alloc&) {
      return Status::out_of_memory("KvCache.append: out of memory");
    }
  }
  auto run_head = [&](int64_t h) {
    HeadStore& s = head(layer, h);
    const int64_t T = tail_len(s), total = T + n;
    const int64_t nq = total > res ? (total - res) / g : 0;
    if (nq > 0) {
      float* sk = scratch.data() + h * 2 * g * d;
      float* sv = sk + g * d;
      uint16_t* half = halves.data() + h * d;
      // Row i of the sequence as f32, via f16 (the tail's dtype).
      auto row_f32 = [&](const void* src, DType st, int64_t off, const uint8_t* tail, int64_t i, float* dst) {
        if (i < T) {
          convert_elems(tail + static_cast<size_t>(i) * rb, DType::F16, dst, DType::F32, d, path);
        } else if (st == DType::F16) {
          convert_row(src, st, off, dst, DType::F32, 0, d, path);
        } else {
          convert_row(src, st, off, half, DType::F16, 0, d, path);
          convert_elems(half, DType::F16, dst, DType::F32, d, path);
        }
      };
      for (int64_t q = 0; q < nq; ++q) {
        for (int64_t r = 0; r < g; ++r) {
          const int64_t i = q * g + r, t = i - T;
          row_f32(in.k, in.k_dtype, h * in.k_head_stride + t * in.k_row_stride, s.k.data(), i, sk + r * d);
          row_f32(in.v, in.v_dtype, h * in.v_head_stride + t * in.v_row_stride, s.v.data(), i, sv + r * d);
        }
        quantize_block(qlayout_, sk, sv, s.blocks.data() + s.n_blocks * qlayout_.block_bytes);
        store_shadow(s, s.n_blocks, sk, sv);  // no-op without cfg.speculative
        s.n_blocks += 1;
      }
    }
    const int64_t from = nq * g;  // first row of the new tail
    if (from > 0 && from < T) {
      std::memmove(s.k.data(), s.k.data() + static_cast<size_t>(from) * rb, static_cast<size_t>(T - from) * rb);
      std::memmove(s.v.data(), s.v.data() + static_cast<size_t>(from) * rb, static_cast<size_t>(T - from) * rb);
    }
    for (int64_t i = std::max(T, from); i < total; ++i) {
      const int64_t t = i - T;
      convert_row(in.k, in.k_dtype, h * in.k_head_stride + t * in.k_row_stride, s.k.data(), rt, (i - from) * d, d, path);
      convert_row(in.v, in.v_dtype, h * in.v_head_stride + t * in.v_row_stride, s.v.data(), rt, (i - from) * d, d, path);
    }
    s.len += n;
    append_meta(s, in, first);
  };
  const int64_t bytes = H * in.n * d * static_cast<int64_t>(dtype_size(in.k_dtype) + dtype_size(in.v_dtype));
  if (bytes <= kInlineAppendBytes || H == 1) {
    for (int64_t h = 0; h < H; ++h) run_head(h);
  } else {
    ThreadPool::instance().parallel_for(H, [&](int64_t h, int) { run_head(h); });
  }
  int64_t next = first + in.n;
  if (in.positions) {
    for (int64_t r = 0; r < in.n; ++r) next = std::max<int64_t>(next, int64_t(in.positions[r]) + 1);
  }
  next_pos_[layer] = std::max(next_pos_[layer], next);
  return Status::ok();
}

Status KvCache::read_head(int64_t layer, int64_t h, std::vector<float>& k, std::vector<float>& v) const {
  const HeadStore& s = head(layer, h);
  const int64_t d = cfg_.head_dim;
  try {
    k.resize(static_cast<size_t>(s.len * d));
    v.resize(static_cast<size_t>(s.len * d));
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache: cannot allocate a head's f32 copy");
  }
  int64_t row = 0;
  for (int64_t b = 0; b < s.n_blocks; ++b, row += cfg_.group) {
    dequantize_rows(qlayout_, s.blocks.data() + b * qlayout_.block_bytes, 0, cfg_.group, k.data() + row * d, v.data() + row * d);
  }
  // The rest (all rows, or the f16 tail of a quantized head): vectorised widening.
  const DType rt = row_dtype();
  rows_to_f32(KeyRows{s.k.data(), rt, 0, d}, 0, 0, s.len - row, d, k.data() + row * d);
  rows_to_f32(KeyRows{s.v.data(), rt, 0, d}, 0, 0, s.len - row, d, v.data() + row * d);
  return Status::ok();
}

Status KvCache::head_rows(int64_t layer, int64_t h, std::vector<float>& kf, std::vector<float>& vf, HeadRows* out) const {
  const HeadStore& s = head(layer, h);
  out->len = s.len;
  if (quantized()) {
    const Status st = read_head(layer, h, kf, vf);
    if (!st.is_ok()) return st;
    out->k = kf.data();
    out->v = vf.data();
    out->dtype = DType::F32;
  } else {
    out->k = s.k.data();
    out->v = s.v.data();
    out->dtype = row_dtype();
  }
  return Status::ok();
}

int64_t KvCache::max_length(int64_t layer) const {
  int64_t m = 0;
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) m = std::max(m, head(layer, h).len);
  return m;
}

Status check_export(const KvCacheApi& cache, int64_t layer, int64_t kv_len, int64_t pos_len, const float* counts, int64_t counts_len) {
  const CacheConfig& cfg = cache.config();
  if (layer < 0 || layer >= cfg.n_layers) return Status::invalid("layer: expected 0 to " + num(cfg.n_layers - 1) + ", received " + num(layer));
  const int64_t H = cfg.n_kv_heads, d = cfg.head_dim, m = cache.max_length(layer);
  if (kv_len != H * m * d) return Status::invalid("k, v: expected " + num(H * m * d) + " elements each, received " + num(kv_len));
  if (pos_len != H * m) return Status::invalid("positions: expected " + num(H * m) + " elements, received " + num(pos_len));
  if (counts && counts_len != H * m) return Status::invalid("counts: expected " + num(H * m) + " elements, received " + num(counts_len));
  return Status::ok();
}

Status KvCache::export_layer(int64_t layer, DType out_type, void* k, void* v, int64_t kv_len, int32_t* positions, int64_t pos_len,
                             float* counts, int64_t counts_len) const {
  const Status checked = check_export(*this, layer, kv_len, pos_len, counts, counts_len);
  if (!checked.is_ok()) return checked;
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, m = max_length(layer);
  Status failed = Status::ok();
  std::vector<Status> statuses(static_cast<size_t>(H));
  ThreadPool::instance().parallel_for(H, [&](int64_t h, int) {
    const HeadStore& s = head(layer, h);
    const int64_t base = h * m;
    if (quantized()) {
      std::vector<float> kf, vf;
      statuses[h] = read_head(layer, h, kf, vf);
      if (!statuses[h].is_ok()) return;
      for (int64_t r = 0; r < s.len; ++r) {
        convert_row(kf.data(), DType::F32, r * d, k, out_type, (base + r) * d, d);
        convert_row(vf.data(), DType::F32, r * d, v, out_type, (base + r) * d, d);
      }
    } else {
      for (int64_t r = 0; r < s.len; ++r) {
        convert_row(s.k.data(), row_dtype(), r * d, k, out_type, (base + r) * d, d);
        convert_row(s.v.data(), row_dtype(), r * d, v, out_type, (base + r) * d, d);
      }
    }
    const size_t es = dtype_size(out_type);
    std::memset(static_cast<uint8_t*>(k) + (base + s.len) * d * es, 0, static_cast<size_t>((m - s.len) * d) * es);
    std::memset(static_cast<uint8_t*>(v) + (base + s.len) * d * es, 0, static_cast<size_t>((m - s.len) * d) * es);
    for (int64_t r = 0; r < m; ++r) positions[base + r] = r < s.len ? s.pos[r] : -1;
    if (counts) {
      for (int64_t r = 0; r < m; ++r) counts[base + r] = r < s.len ? s.count[r] : 0.0f;
    }
  });
  for (const Status& s : statuses) {
    if (!s.is_ok()) failed = s;
  }
  return failed;
}

int64_t KvCache::memory_bytes() const {
  int64_t total = 0;
  for (const HeadStore& s : heads_) {
    total += static_cast<int64_t>(s.k.size() + s.v.size() + s.blocks.size() + s.shadow_k.size() + s.shadow_v.size());
    total += static_cast<int64_t>(s.pos.capacity() * sizeof(int32_t) + (s.mass.capacity() + s.count.capacity()) * sizeof(float));
  }
  for (const sparse::PageSummary& q : summaries_) total += sparse::summary_bytes(q);
  // The remembered query windows: [nHeads, window, headDim] f32 per layer.
  for (const Window& w : windows_) total += static_cast<int64_t>(w.q.capacity() * sizeof(float));
  return total;
}

int64_t KvCache::total_tokens() const {
  int64_t total = 0;
  for (const HeadStore& s : heads_) total += s.len;
  return total;
}

void KvCache::clear() {
  for (HeadStore& s : heads_) reset_head(s);
  std::fill(next_pos_.begin(), next_pos_.end(), 0);
  for (Window& w : windows_) w = Window();
  std::fill(mass_seen_.begin(), mass_seen_.end(), 0);
  for (int64_t l = 0; l < cfg_.n_layers; ++l) summaries_reset(l);
  tidal_ = TidalState();
}

void KvCache::clear_layer(int64_t layer) {
  for (int64_t h = 0; h < cfg_.n_kv_heads; ++h) reset_head(head(layer, h));
  next_pos_[layer] = 0;
  windows_[layer] = Window();
  mass_seen_[layer] = 0;
  summaries_reset(layer);
  tidal_after_change(layer);
}

const std::vector<float>& KvCache::window(int64_t layer, int64_t* n_heads, int64_t* rows) const {
  *n_heads = windows_[layer].n_heads;
  *rows = windows_[layer].rows;
  return windows_[layer].q;
}

}  // namespace tp::kv
