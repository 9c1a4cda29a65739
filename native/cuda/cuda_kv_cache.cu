// DeviceKvCache storage and per-step calls: create, append, attend, export,
// sizes. Layout: cuda_kv_store.h. Compression: cuda_kv_compress.cu.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "../core/checked_math.h"
#include "../core/half.h"
#include "../kv/kv_common.h"
#include "cuda_attention.h"
#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "cuda_kv_cache.h"
#include "cuda_kv_kernels.h"
#include "cuda_kv_quant.h"
#include "cuda_kv_store.h"

namespace tp::cuda {
namespace {

// Host rows [heads, n, d] of any float dtype -> contiguous 16-bit rows of `to`.
void convert_rows(const void* src, DType from, int64_t hs, int64_t rs, int64_t heads, int64_t n, int64_t d, DType to, uint16_t* dst) {
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < n; ++r) {
      const int64_t off = h * hs + r * rs;
      uint16_t* out = dst + (h * n + r) * d;
      if (from == to) {
        std::memcpy(out, static_cast<const uint16_t*>(src) + off, size_t(d) * 2);
        continue;
      }
      for (int64_t c = 0; c < d; ++c) {
        const float x = kv::load(src, from, off + c);
        out[c] = to == DType::BF16 ? f32_to_bf16(x) : f32_to_f16(x);
      }
    }
  }
}

}  // namespace

namespace {
std::atomic<int64_t> g_allocs_left{-1};  // fail_device_allocations_after
}  // namespace

void fail_device_allocations_after(int64_t n) { g_allocs_left.store(n); }

Status DeviceBlock::alloc(size_t bytes, const char* what) {
  reset();
  if (bytes == 0) return Status::ok();
  if (g_allocs_left.load() >= 0 && g_allocs_left.fetch_sub(1) == 0) {
    return Status::out_of_memory(std::string("CUDA ") + what + ": out of memory (injected by a test)");
  }
  void* p = nullptr;
  const Status s = check(cudaMalloc(&p, bytes), what);
  if (!s.is_ok()) return s;
  ptr_ = p;
  bytes_ = bytes;
  return Status::ok();
}

void DeviceBlock::reset() {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

Status sync_device(const char* what) { return check(cudaDeviceSynchronize(), what); }

Status create_device_kv_cache(const kv::CacheConfig& cfg, kv::KvCacheApi** out) {
  Status s = check_device_kv_config(cfg);
  if (!s.is_ok()) return s;
  // The CPU cache's checks of the shape (one source of the limits).
  kv::KvCache* probe = nullptr;
  s = kv::KvCache::create(cfg, &probe);
  if (!s.is_ok()) return s;
  delete probe;
  DeviceKvCache* c = nullptr;
  try {
    c = new DeviceKvCache(cfg);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache on cuda: cannot allocate the layer table");
  }
  s = c->init();
  if (!s.is_ok()) {
    delete c;
    return s;
  }
  *out = c;
  return Status::ok();
}

DeviceKvCache::DeviceKvCache(const kv::CacheConfig& cfg) : cfg_(cfg), layers_(static_cast<size_t>(cfg.n_layers)) {
  if (quantized()) qlayout_ = kv::make_quant_layout(cfg.head_dim, cfg.group, cfg.type == kv::CacheType::Int8 ? 8 : 4);
  for (DeviceLayer& L : layers_) {
    L.len.assign(static_cast<size_t>(cfg.n_kv_heads), 0);
    L.n_blocks.assign(static_cast<size_t>(cfg.n_kv_heads), 0);
  }
}

Status DeviceKvCache::init() {
  for (DeviceLayer& L : layers_) {
    Status s = L.lens.alloc(size_t(cfg_.n_kv_heads) * 4, "cudaMalloc(KvCache lens)");
    if (s.is_ok()) s = upload_lens(L);
    if (s.is_ok() && quantized()) s = L.n_blocks_dev.alloc(size_t(cfg_.n_kv_heads) * 4, "cudaMalloc(KvCache block counts)");
    if (s.is_ok() && quantized()) s = upload_blocks(L);
    if (!s.is_ok()) return s;
  }
  return sync_device("KvCache on cuda: create");
}

Status DeviceKvCache::upload_blocks(DeviceLayer& L) {
  std::vector<int32_t> h(L.n_blocks.begin(), L.n_blocks.end());
  return check(cudaMemcpy(L.n_blocks_dev.get(), h.data(), h.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(block counts)");
}

// Grows the block store to `blocks` blocks per head (all or nothing).
Status DeviceKvCache::reserve_blocks(DeviceLayer& L, int64_t blocks) {
  if (blocks <= L.blocks_cap) return Status::ok();
  const int64_t H = cfg_.n_kv_heads, bb = qlayout_.block_bytes;
  const int64_t cap = std::max({blocks, L.blocks_cap + L.blocks_cap / 2, int64_t(4)});
  DeviceBlock grown;
  Status s = grown.alloc(size_t(H * cap * bb), "cudaMalloc(KvCache blocks)");
  if (!s.is_ok()) return s;
  if (L.blocks_cap > 0) {
    TP_CUDA_TRY(cudaMemcpy2D(grown.get(), cap * bb, L.blocks.get(), L.blocks_cap * bb, L.blocks_cap * bb, H, cudaMemcpyDeviceToDevice),
                "cudaMemcpy2D(blocks)");
  }
  L.blocks = std::move(grown);
  L.blocks_cap = cap;
  return Status::ok();
}

Status DeviceKvCache::upload_lens(DeviceLayer& L) {
  std::vector<int32_t> h(L.len.begin(), L.len.end());
  return check(cudaMemcpy(L.lens.get(), h.data(), h.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(lens)");
}

// Grows every buffer of the layer to hold `rows` rows per head (all or
// nothing); an int cache's f16 tail has its fixed size from the first call.
Status DeviceKvCache::reserve(DeviceLayer& L, int64_t rows) {
  if (rows <= L.cap) return Status::ok();
  const int64_t H = cfg_.n_kv_heads;
  const int64_t cap = std::min(cfg_.capacity, std::max({rows, L.cap + L.cap / 2, int64_t(256)}));
  const int64_t kv_rows = quantized() ? std::min(cfg_.capacity, cfg_.residual + cfg_.group) : cap;
  DeviceLayer grown;
  Status s = Status::ok();
  if (kv_rows > L.kv_rows) {
    s = grown.k.alloc(size_t(H * kv_rows) * row_bytes(), "cudaMalloc(KvCache k)");
    if (s.is_ok()) s = grown.v.alloc(size_t(H * kv_rows) * row_bytes(), "cudaMalloc(KvCache v)");
  }
  if (s.is_ok()) s = grown.pos.alloc(size_t(H * cap) * 4, "cudaMalloc(KvCache positions)");
  if (s.is_ok()) s = grown.mass.alloc(size_t(H * cap) * 4, "cudaMalloc(KvCache mass)");
  if (s.is_ok()) s = grown.count.alloc(size_t(H * cap) * 4, "cudaMalloc(KvCache counts)");
  if (!s.is_ok()) return s;  // `grown` frees what it got; the layer is unchanged
  const size_t rb = row_bytes();
  if (L.kv_rows > 0 && kv_rows > L.kv_rows) {
    TP_CUDA_TRY(cudaMemcpy2D(grown.k.get(), kv_rows * rb, L.k.get(), L.kv_rows * rb, L.kv_rows * rb, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(k)");
    TP_CUDA_TRY(cudaMemcpy2D(grown.v.get(), kv_rows * rb, L.v.get(), L.kv_rows * rb, L.kv_rows * rb, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(v)");
  }
  if (L.cap > 0) {
    TP_CUDA_TRY(cudaMemcpy2D(grown.pos.get(), cap * 4, L.pos.get(), L.cap * 4, L.cap * 4, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(pos)");
    TP_CUDA_TRY(cudaMemcpy2D(grown.mass.get(), cap * 4, L.mass.get(), L.cap * 4, L.cap * 4, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(mass)");
    TP_CUDA_TRY(cudaMemcpy2D(grown.count.get(), cap * 4, L.count.get(), L.cap * 4, L.cap * 4, H, cudaMemcpyDeviceToDevice), "cudaMemcpy2D(count)");
  }
  if (kv_rows > L.kv_rows) {
    L.k = std::move(grown.k);
    L.v = std::move(grown.v);
    L.kv_rows = kv_rows;
  }
  L.pos = std::move(grown.pos);
  L.mass = std::move(grown.mass);
  L.count = std::move(grown.count);
  L.cap = cap;
  return Status::ok();
}

Status DeviceKvCache::append(int64_t layer, const kv::AppendInput& in) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  Status st = kv::check_append(*this, layer, in);
  if (!st.is_ok()) return st;
  if (in.n == 0) return Status::ok();
  DeviceLayer& L = layers_[layer];
  // As the CPU cache: counted positions never pass 2^31 - 1 (no wrap).
  if (!in.positions && L.next_pos + in.n - 1 > int64_t(INT32_MAX)) {
    return Status::invalid("positions: counting on from " + std::to_string(L.next_pos) + ", " + std::to_string(in.n) +
                           " new tokens would pass 2^31 - 1 on layer " + std::to_string(layer) + "; pass opts.positions or clear the layer");
  }
  const int64_t longest = max_length(layer);
  std::vector<uint16_t> hk, hv;
  std::vector<int32_t> hpos;
  std::vector<float> ones;
  try {
    hk.resize(size_t(H * in.n * d));
    hv.resize(size_t(H * in.n * d));
    hpos.resize(size_t(in.n));
    ones.assign(size_t(in.n), 1.0f);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.append: out of host memory for staging");
  }
  st = reserve(L, longest + in.n);
  if (!st.is_ok()) return st;
  convert_rows(in.k, in.k_dtype, in.k_head_stride, in.k_row_stride, H, in.n, d, dtype(), hk.data());
  convert_rows(in.v, in.v_dtype, in.v_head_stride, in.v_row_stride, H, in.n, d, dtype(), hv.data());
  for (int64_t r = 0; r < in.n; ++r) hpos[r] = in.positions ? in.positions[r] : static_cast<int32_t>(L.next_pos + r);
  const size_t rb = row_bytes();
  // Rows past the current lengths first: a failure here changes nothing visible.
  for (int64_t h = 0; h < H; ++h) {
    const int64_t at = h * L.cap + L.len[h];
    if (!quantized()) {
      TP_CUDA_TRY(cudaMemcpy(L.k.as<char>() + at * rb, hk.data() + h * in.n * d, in.n * rb, cudaMemcpyHostToDevice), "cudaMemcpy(append k)");
      TP_CUDA_TRY(cudaMemcpy(L.v.as<char>() + at * rb, hv.data() + h * in.n * d, in.n * rb, cudaMemcpyHostToDevice), "cudaMemcpy(append v)");
    }
    TP_CUDA_TRY(cudaMemcpy(L.pos.as<int32_t>() + at, hpos.data(), in.n * 4, cudaMemcpyHostToDevice), "cudaMemcpy(append positions)");
    TP_CUDA_TRY(cudaMemsetAsync(L.mass.as<float>() + at, 0, in.n * 4), "cudaMemsetAsync(append mass)");
    TP_CUDA_TRY(cudaMemcpy(L.count.as<float>() + at, ones.data(), in.n * 4, cudaMemcpyHostToDevice), "cudaMemcpy(append counts)");
  }
  // Quest summaries stay valid below each head's old length; int caches
  // requantize the tail rows that move into blocks (their values change).
  std::vector<int64_t> quest_valid = L.len;
  if (quantized()) {
    for (int64_t h = 0; h < H; ++h) quest_valid[h] = std::min(L.len[h], L.n_blocks[h] * qlayout_.group);
  }
  // Int caches then move their tail into blocks: from here on a failure
  // rolls forward (the host mirror follows the device's new layout).
  if (quantized()) {
    st = append_quantized(L, in, hk, hv);
    if (!st.is_ok()) {
      quest_drop(L);  // rows may have moved into blocks: rebuilt at the next sparse attend
      return st;
    }
  }
  for (int64_t h = 0; h < H; ++h) L.len[h] += in.n;
  st = upload_lens(L);
  if (st.is_ok()) quest_after_change(L, layer, quest_valid);  // fold the new (and requantized) rows into the Quest summaries
  if (st.is_ok()) st = sync_device("KvCache.append");
  if (!st.is_ok()) return st;
  int64_t next = L.next_pos + in.n;
  if (in.positions) {
    for (int64_t r = 0; r < in.n; ++r) next = std::max<int64_t>(next, int64_t(in.positions[r]) + 1);
  }
  L.next_pos = std::max(L.next_pos, next);
  return Status::ok();
}

// Int caches: the new rows join the f16 tail; the oldest full groups beyond
// `residual` tail rows become blocks (kv_cache.cpp: the same groups, the same
// bytes). Staging: [nKvHeads, tail + n, headDim] f16 concatenations.
Status DeviceKvCache::append_quantized(DeviceLayer& L, const kv::AppendInput& in, const std::vector<uint16_t>& hk,
                                       const std::vector<uint16_t>& hv) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, g = cfg_.group;
  std::vector<int32_t> groups(static_cast<size_t>(2 * H));  // [groups per head][first block per head]
  int64_t most = 0, max_groups = 0, max_blocks = 0;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t total = L.len[h] - L.n_blocks[h] * g + in.n;
    const int64_t q = total >= cfg_.residual + g ? (total - cfg_.residual) / g : 0;
    groups[h] = static_cast<int32_t>(q);
    groups[H + h] = static_cast<int32_t>(L.n_blocks[h]);
    most = std::max(most, total);
    max_groups = std::max(max_groups, q);
    max_blocks = std::max(max_blocks, L.n_blocks[h] + q);
  }
  const size_t rb = row_bytes();
  Status s = reserve_blocks(L, max_blocks);
  if (s.is_ok()) s = concat_k_.reserve(size_t(H * most) * rb, "cudaMalloc(append staging k)");
  if (s.is_ok()) s = concat_v_.reserve(size_t(H * most) * rb, "cudaMalloc(append staging v)");
  if (s.is_ok()) s = quant_meta_.reserve(groups.size() * 4, "cudaMalloc(append groups)");
  if (!s.is_ok()) return s;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t tail = L.len[h] - L.n_blocks[h] * g;
    char* ck = concat_k_.as<char>() + size_t(h * most) * rb;
    char* cv = concat_v_.as<char>() + size_t(h * most) * rb;
    TP_CUDA_TRY(cudaMemcpy(ck, L.k.as<char>() + size_t(h * L.kv_rows) * rb, tail * rb, cudaMemcpyDeviceToDevice), "cudaMemcpy(append tail k)");
    TP_CUDA_TRY(cudaMemcpy(cv, L.v.as<char>() + size_t(h * L.kv_rows) * rb, tail * rb, cudaMemcpyDeviceToDevice), "cudaMemcpy(append tail v)");
    TP_CUDA_TRY(cudaMemcpy(ck + tail * rb, hk.data() + h * in.n * d, in.n * rb, cudaMemcpyHostToDevice), "cudaMemcpy(append k)");
    TP_CUDA_TRY(cudaMemcpy(cv + tail * rb, hv.data() + h * in.n * d, in.n * rb, cudaMemcpyHostToDevice), "cudaMemcpy(append v)");
  }
  TP_CUDA_TRY(cudaMemcpy(quant_meta_.as<int32_t>(), groups.data(), groups.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(append groups)");
  s = quantize_into(L, concat_k_.as<void>(), concat_v_.as<void>(), false, most, max_groups);
  if (!s.is_ok()) return s;
  // Commit: the new tails, then the block counts (the host mirror first, so
  // that it matches the device even if an upload below fails).
  std::vector<int64_t> blocks = L.n_blocks;
  for (int64_t h = 0; h < H; ++h) blocks[h] += groups[h];
  for (int64_t h = 0; h < H; ++h) {
    const int64_t total = L.len[h] - L.n_blocks[h] * g + in.n, moved = int64_t(groups[h]) * g;
    TP_CUDA_TRY(cudaMemcpy(L.k.as<char>() + size_t(h * L.kv_rows) * rb, concat_k_.as<char>() + size_t(h * most + moved) * rb, (total - moved) * rb,
                           cudaMemcpyDeviceToDevice), "cudaMemcpy(append new tail k)");
    TP_CUDA_TRY(cudaMemcpy(L.v.as<char>() + size_t(h * L.kv_rows) * rb, concat_v_.as<char>() + size_t(h * most + moved) * rb, (total - moved) * rb,
                           cudaMemcpyDeviceToDevice), "cudaMemcpy(append new tail v)");
  }
  L.n_blocks = blocks;
  return upload_blocks(L);
}

// The fused decode's layout rule (check_device_attention checks the rest):
// for headDim 64/128/256 every group that is a multiple of 8 qualifies.
Status DeviceKvCache::quantize_into(DeviceLayer& L, const void* k, const void* v, bool src_f32, int64_t src_rows, int64_t max_groups) {
  QuantizeLaunch q;
  q.layout = qlayout_;
  q.k = k;
  q.v = v;
  q.src_f32 = src_f32;
  q.n_kv_heads = cfg_.n_kv_heads;
  q.src_rows = src_rows;
  q.groups = quant_meta_.as<int32_t>();
  q.first_block = quant_meta_.as<int32_t>() + cfg_.n_kv_heads;
  q.max_groups = max_groups;
  q.blocks = L.blocks.as<uint8_t>();
  q.blocks_cap = L.blocks_cap;
  return launch_quantize_groups(q);
}

bool DeviceKvCache::fused_quant_ok() const { return qlayout_.group >= 8 && qlayout_.group % 8 == 0; }

DeviceQuantKv DeviceKvCache::quant_view(const DeviceLayer& L) const {
  const kv::QuantLayout& q = qlayout_;
  DeviceQuantKv v;
  v.blocks = L.blocks.as<uint8_t>();
  v.blocks_cap = L.blocks_cap;
  v.n_blocks = L.n_blocks_dev.as<int32_t>();
  v.tail_k = L.k.as<uint16_t>();
  v.tail_v = L.v.as<uint16_t>();
  v.tail_rows = L.kv_rows;
  v.bits = static_cast<int>(q.bits);
  v.group = static_cast<int>(q.group);
  v.block_bytes = q.block_bytes;
  v.row_bytes = q.row_bytes;
  v.k_octet_bytes = q.k_octet_bytes;
  v.v_pair_bytes = q.v_pair_bytes;
  v.k_codes = q.k_codes;
  v.v_codes = q.v_codes;
  v.k_scale = q.k_scale;
  v.k_min = q.k_min;
  v.v_scale = q.v_scale;
  v.v_min = q.v_min;
  return v;
}

Status DeviceKvCache::rows_of(const DeviceLayer& L, int64_t layer, DType want, KvRows* out) const {
  if (!quantized()) {
    *out = {L.k.get(), L.v.get(), dtype()};
    return Status::ok();
  }
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  const bool f32 = want == DType::F32;
  const size_t bytes = size_t(H * L.cap * d) * (f32 ? 4 : 2);
  Scratch& sk = f32 ? deq32_k_ : deq16_k_;
  Scratch& sv = f32 ? deq32_v_ : deq16_v_;
  Status s = sk.reserve(bytes, "cudaMalloc(dequantized k)");
  if (s.is_ok()) s = sv.reserve(bytes, "cudaMalloc(dequantized v)");
  if (!s.is_ok()) return s;
  DequantizeLaunch q;
  q.layout = qlayout_;
  q.blocks = L.blocks.as<uint8_t>();
  q.blocks_cap = L.blocks_cap;
  q.n_blocks = L.n_blocks_dev.as<int32_t>();
  q.tail_k = L.k.as<uint16_t>();
  q.tail_v = L.v.as<uint16_t>();
  q.tail_rows = L.kv_rows;
  q.lens = L.lens.as<int32_t>();
  q.n_kv_heads = H;
  q.max_len = max_length(layer);
  q.out_rows = L.cap;
  if (f32) {
    q.k32 = sk.as<float>();
    q.v32 = sv.as<float>();
  } else {
    q.k16 = sk.as<uint16_t>();
    q.v16 = sv.as<uint16_t>();
  }
  s = launch_dequantize_layer(q);
  if (!s.is_ok()) return s;
  *out = {sk.as<void>(), sv.as<void>(), f32 ? DType::F32 : DType::F16};
  return Status::ok();
}

Status DeviceKvCache::run_attention(const DeviceLayer& L, const KvRows& view, const float* q, int64_t n_heads, int64_t rows, float scale,
                                    bool causal, float* out, float* lse, bool f32_lse, bool weighted, const DeviceQuantKv* quant) {
  DeviceAttention a;
  a.n_heads = n_heads;
  a.n_kv_heads = cfg_.n_kv_heads;
  a.n_q = rows;
  a.n_kv = 0;
  for (int64_t x : L.len) a.n_kv = std::max(a.n_kv, x);
  a.head_dim = cfg_.head_dim;
  a.q = q;
  a.k = view.k;
  a.v = view.v;
  a.kv_dtype = view.dtype;
  a.scale = scale;
  a.causal = causal;
  a.out = out;
  a.lse = lse;
  a.kv_head_stride = L.cap * cfg_.head_dim;
  a.head_len = L.lens.as<int32_t>();
  if (weighted) {
    a.key_count = L.count.as<float>();
    a.key_count_stride = L.cap;
  }
  a.quant = quant;
  a.path = rows > 16 && cfg_.head_dim <= 128 && !f32_lse && !weighted && !quant ? AttentionPath::Prefill : AttentionPath::Decode;
  size_t ws = 0;
  Status s = device_attention_workspace(a, &ws);
  if (s.is_ok()) s = work_dev_.reserve(ws, "cudaMalloc(attention workspace)");
  if (s.is_ok()) s = launch_device_attention(a, work_dev_.as<void>(), work_dev_.bytes());
  return s;
}

Status DeviceKvCache::attend(int64_t layer, const kv::AttendInput& in) {
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim;
  Status checked = kv::check_attend(cfg_, layer, in);
  if (!checked.is_ok()) return checked;
  if (in.softcap != 0.0f) return Status::unsupported("KvCache on cuda: softcap is not supported on the device (use a CPU cache)");
  const float scale = in.scale > 0.0f ? in.scale : 1.0f / std::sqrt(static_cast<float>(d));
  if (in.sparse_method != 0) return attend_quest(layer, in, scale);  // cuda_kv_sparse.cu
  DeviceLayer& L = layers_[layer];
  const int64_t rows = in.n_heads * in.n_q;
  std::vector<float> hq;
  try {
    hq.resize(size_t(rows * d));
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.attend: out of host memory for staging");
  }
  for (int64_t hh = 0; hh < in.n_heads; ++hh) {
    for (int64_t i = 0; i < in.n_q; ++i) {
      std::memcpy(hq.data() + (hh * in.n_q + i) * d, in.q + hh * in.q_head_stride + i * in.q_row_stride, size_t(d) * 4);
    }
  }
  Status s = q_dev_.reserve(hq.size() * 4, "cudaMalloc(queries)");
  if (s.is_ok()) s = out_dev_.reserve(hq.size() * 4, "cudaMalloc(outputs)");
  if (s.is_ok()) s = lse_dev_.reserve(size_t(rows) * 4, "cudaMalloc(lse)");
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(q_dev_.as<float>(), hq.data(), hq.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy(queries)");
  // Int caches decode straight over their blocks when they can (decode-sized
  // steps, no merged rows, no key mass); otherwise over a dequantized copy.
  const bool fused = quantized() && fused_quant_ok() && L.kv_rows > 0 && !L.weighted && !in.accumulate_mass && in.n_q <= 16;
  KvRows view;
  DeviceQuantKv qv;
  if (fused) qv = quant_view(L);
  else s = rows_of(L, layer, DType::F16, &view);
  if (s.is_ok()) {
    s = run_attention(L, view, q_dev_.as<float>(), in.n_heads, in.n_q, scale, in.causal, out_dev_.as<float>(), lse_dev_.as<float>(),
                      in.accumulate_mass, L.weighted, fused ? &qv : nullptr);
  }
  if (s.is_ok() && in.accumulate_mass) {
    MassLaunch m;
    m.layer = {view.k, view.dtype, H, L.cap, d, max_length(layer), L.lens.as<int32_t>()};
    m.q = q_dev_.as<float>();
    m.lse = lse_dev_.as<float>();
    m.group = in.n_heads / H;
    m.rows = in.n_q;
    m.scale = scale;
    m.causal = in.causal;
    m.accumulate = true;
    m.count = L.weighted ? L.count.as<float>() : nullptr;
    m.mass = L.mass.as<float>();
    s = launch_key_mass(m);
  }
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaMemcpy(in.out, out_dev_.as<float>(), hq.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy(out)");
  if (in.lse) TP_CUDA_TRY(cudaMemcpy(in.lse, lse_dev_.as<float>(), size_t(rows) * 4, cudaMemcpyDeviceToHost), "cudaMemcpy(lse)");
  s = sync_device("KvCache.attend");
  if (!s.is_ok()) return s;
  if (in.accumulate_mass) L.mass_seen = true;
  if (in.remember) remember(L, in);
  return Status::ok();
}

// The newest `window` query rows of the layer, on the host: [nHeads, window, headDim].
void DeviceKvCache::remember(DeviceLayer& L, const kv::AttendInput& in) {
  const int64_t d = cfg_.head_dim, W = cfg_.window;
  try {
    if (L.win_heads != in.n_heads) {
      L.window.assign(size_t(in.n_heads * W * d), 0.0f);
      L.win_heads = in.n_heads;
      L.win_rows = 0;
    }
    const int64_t take = std::min(in.n_q, W);
    const int64_t keep_old = std::min(L.win_rows, W - take);
    for (int64_t hq = 0; hq < in.n_heads; ++hq) {
      float* base = L.window.data() + hq * W * d;
      std::memmove(base, base + (L.win_rows - keep_old) * d, size_t(keep_old * d) * sizeof(float));
      for (int64_t r = 0; r < take; ++r) {
        std::memcpy(base + (keep_old + r) * d, in.q + hq * in.q_head_stride + (in.n_q - take + r) * in.q_row_stride, size_t(d) * 4);
      }
    }
    L.win_rows = keep_old + take;
  } catch (const std::bad_alloc&) {
    L.window.clear();  // the window is advisory: drop it rather than fail the attend
    L.win_heads = L.win_rows = 0;
  }
}

Status DeviceKvCache::export_layer(int64_t layer, DType out_type, void* k, void* v, int64_t kv_len, int32_t* positions, int64_t pos_len,
                                   float* counts, int64_t counts_len) const {
  Status s = kv::check_export(*this, layer, kv_len, pos_len, counts, counts_len);
  if (!s.is_ok()) return s;
  const int64_t H = cfg_.n_kv_heads, d = cfg_.head_dim, m = max_length(layer);
  const DeviceLayer& L = layers_[layer];
  KvRows view;
  s = rows_of(L, layer, DType::F32, &view);  // float caches: the stored rows
  if (!s.is_ok()) return s;
  const size_t es = dtype_size(view.dtype), rb = size_t(d) * es;
  std::vector<uint8_t> hk, hv;
  std::vector<int32_t> hp;
  std::vector<float> hc;
  try {
    hk.resize(size_t(H * m) * rb);
    hv.resize(size_t(H * m) * rb);
    hp.resize(size_t(H * m));
    hc.resize(size_t(H * m));
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("KvCache.export: out of host memory for staging");
  }
  if (m > 0) {
    TP_CUDA_TRY(cudaMemcpy2D(hk.data(), m * rb, view.k, L.cap * rb, m * rb, H, cudaMemcpyDeviceToHost), "cudaMemcpy2D(export k)");
    TP_CUDA_TRY(cudaMemcpy2D(hv.data(), m * rb, view.v, L.cap * rb, m * rb, H, cudaMemcpyDeviceToHost), "cudaMemcpy2D(export v)");
    TP_CUDA_TRY(cudaMemcpy2D(hp.data(), m * 4, L.pos.get(), L.cap * 4, m * 4, H, cudaMemcpyDeviceToHost), "cudaMemcpy2D(export positions)");
    TP_CUDA_TRY(cudaMemcpy2D(hc.data(), m * 4, L.count.get(), L.cap * 4, m * 4, H, cudaMemcpyDeviceToHost), "cudaMemcpy2D(export counts)");
  }
  const size_t os = dtype_size(out_type);
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t r = 0; r < m; ++r) {
      const int64_t at = (h * m + r) * d;
      const bool live = r < L.len[h];
      if (!live) {
        std::memset(static_cast<uint8_t*>(k) + at * os, 0, size_t(d) * os);
        std::memset(static_cast<uint8_t*>(v) + at * os, 0, size_t(d) * os);
      } else if (out_type == view.dtype) {
        std::memcpy(static_cast<uint8_t*>(k) + at * os, hk.data() + at * es, size_t(d) * os);
        std::memcpy(static_cast<uint8_t*>(v) + at * os, hv.data() + at * es, size_t(d) * os);
      } else {
        for (int64_t c = 0; c < d; ++c) {
          const float kx = kv::load(hk.data(), view.dtype, at + c), vx = kv::load(hv.data(), view.dtype, at + c);
          if (out_type == DType::F32) {
            static_cast<float*>(k)[at + c] = kx;
            static_cast<float*>(v)[at + c] = vx;
          } else {
            static_cast<uint16_t*>(k)[at + c] = out_type == DType::BF16 ? f32_to_bf16(kx) : f32_to_f16(kx);
            static_cast<uint16_t*>(v)[at + c] = out_type == DType::BF16 ? f32_to_bf16(vx) : f32_to_f16(vx);
          }
        }
      }
      positions[h * m + r] = live ? hp[h * m + r] : -1;
      if (counts) counts[h * m + r] = live ? hc[h * m + r] : 0.0f;
    }
  }
  return Status::ok();
}

int64_t DeviceKvCache::max_length(int64_t layer) const {
  int64_t m = 0;
  for (int64_t x : layers_[layer].len) m = std::max(m, x);
  return m;
}

int64_t DeviceKvCache::memory_bytes() const {
  int64_t total = 0;
  for (const DeviceLayer& L : layers_) {
    total += int64_t(L.k.bytes() + L.v.bytes() + L.pos.bytes() + L.mass.bytes() + L.count.bytes() + L.lens.bytes() + L.blocks.bytes() +
                     L.n_blocks_dev.bytes());
    total += int64_t(L.q_lo.bytes() + L.q_hi.bytes() + L.q_aff.bytes() + L.q_open.bytes());  // Quest summaries
    total += int64_t(L.window.capacity() * sizeof(float));  // the host-side query window counts too
  }
  return total;
}

int64_t DeviceKvCache::total_tokens() const {
  int64_t total = 0;
  for (const DeviceLayer& L : layers_) {
    for (int64_t x : L.len) total += x;
  }
  return total;
}

void DeviceKvCache::clear_layer(int64_t layer) {
  DeviceLayer& L = layers_[layer];
  L.k.reset();
  L.v.reset();
  L.pos.reset();
  L.mass.reset();
  L.count.reset();
  L.blocks.reset();
  L.cap = L.kv_rows = L.blocks_cap = 0;
  std::fill(L.len.begin(), L.len.end(), 0);
  std::fill(L.n_blocks.begin(), L.n_blocks.end(), 0);
  upload_lens(L);  // lengths on the device are read only below cap = 0: a failure here is harmless
  if (quantized()) upload_blocks(L);
  L.next_pos = 0;
  L.mass_seen = false;
  L.weighted = false;
  L.window.clear();
  L.win_heads = L.win_rows = 0;
  // Quest summaries: memory released, the page size kept (as the CPU cache:
  // the next appends fold into fresh summaries).
  const int64_t page = L.q_page;
  quest_drop(L);
  L.q_page = page;
}

void DeviceKvCache::clear() {
  for (int64_t l = 0; l < cfg_.n_layers; ++l) clear_layer(l);
  release_scratch();
}

void DeviceKvCache::release_scratch() {
  for (Scratch* s : {&q_dev_, &out_dev_, &lse_dev_, &work_dev_, &staging_, &scores_, &scores_out_, &ids_, &ids_out_, &sel_tmp_, &sort_temp_,
                     &offsets_, &nan_count_, &gather_k_, &gather_v_, &gather_pos_, &gather_mass_, &gather_count_, &merge_offsets_, &merge_scratch_,
                     &deq16_k_, &deq16_v_, &deq32_k_, &deq32_v_, &concat_k_, &concat_v_, &quant_meta_, &quest_ab_, &quest_scores_,
                     &quest_idx_, &quest_mass_}) {
    s->reset();
  }
}

}  // namespace tp::cuda
