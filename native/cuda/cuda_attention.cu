// CUDA attention dispatch: argument checks, path choice, the decode
// workspace, and the host-level call used by the GPU tests (copy in, run,
// copy out). Kernels: cuda_decode.cu, cuda_prefill.cu.
#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "../core/checked_math.h"
#include "cuda_check.cuh"
#include "cuda_kernels.h"
#include "cuda_probe.h"

namespace tp::cuda {
namespace {

constexpr int64_t kMaxIndex = (int64_t(1) << 31) - 1024;  // kernels index keys and rows with int

__global__ void fill_kernel(float* p, int64_t n, float value) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) p[i] = value;
}

}  // namespace

int multiprocessor_count() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  // Callers run on the JS thread and on worker threads (device KV caches).
  static std::mutex lock;
  std::lock_guard<std::mutex> guard(lock);
  static int cached_dev = -1;
  static int cached = 0;
  if (dev != cached_dev) {
    int n = 0;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
      cudaGetLastError();
      return 0;
    }
    cached = n;
    cached_dev = dev;
  }
  return cached;
}

// Options only the decode path implements.
bool decode_only_options(const DeviceAttention& a) { return a.indices || a.softcap > 0.0f || a.tree_visible || a.key_mass || a.key_count || a.quant; }

AttentionPath resolve_path(const DeviceAttention& a) {
  if (a.path != AttentionPath::Auto) return a.path;
  return a.n_q <= 16 || decode_only_options(a) ? AttentionPath::Decode : AttentionPath::Prefill;
}

Status check_device_attention(const DeviceAttention& a) {
  if (a.n_heads < 1 || a.n_kv_heads < 1 || a.n_q < 0 || a.n_kv < 0 || a.head_dim < 1) {
    return Status::invalid("cuda attention: expected nHeads >= 1, nKvHeads >= 1, nQ >= 0, nKv >= 0, headDim >= 1");
  }
  if (a.n_heads % a.n_kv_heads != 0) {
    return Status::invalid("nKvHeads: expected a divisor of nHeads = " + num(a.n_heads) + ", received " + num(a.n_kv_heads));
  }
  if (a.kv_dtype != DType::F16 && a.kv_dtype != DType::BF16) {
    return Status::invalid(std::string("k, v: expected f16 or bf16 on CUDA, received ") + dtype_name(a.kv_dtype));
  }
  if (!(std::isfinite(a.scale) && a.scale > 0)) return Status::invalid("scale: expected a finite number > 0");
  if (!(std::isfinite(a.softcap) && a.softcap >= 0)) return Status::invalid("softcap: expected a finite number >= 0 (0: off)");
  const AttentionPath path = resolve_path(a);
  if (path != AttentionPath::Decode && path != AttentionPath::Prefill) return Status::invalid("path: expected auto, decode or prefill");
  if (a.variant < 0 || a.variant > (path == AttentionPath::Decode ? 1 : 2)) {
    return Status::invalid("variant: expected 0 or 1 (decode), 0, 1 or 2 (prefill), received " + num(a.variant));
  }
  if (path == AttentionPath::Decode && a.head_dim != 64 && a.head_dim != 128 && a.head_dim != 256) {
    return Status::invalid("headDim: expected 64, 128 or 256 on the CUDA decode path, received " + num(a.head_dim));
  }
  if (path == AttentionPath::Prefill && a.head_dim != 64 && a.head_dim != 128) {
    return Status::invalid("headDim: expected 64 or 128 on the CUDA prefill path, received " + num(a.head_dim));
  }
  if (a.indices && path != AttentionPath::Decode) return Status::invalid("indices: supported on the CUDA decode path only");
  if (path != AttentionPath::Decode) {
    if (a.softcap > 0.0f) return Status::invalid("softcap: supported on the CUDA decode path only (path 'decode' or 'auto')");
    if (a.tree_visible) return Status::invalid("treeMask: supported on the CUDA decode path only (path 'decode' or 'auto')");
    if (a.key_mass) return Status::invalid("returnKeyMass: supported on the CUDA decode path only (path 'decode' or 'auto')");
    if (a.key_count) return Status::invalid("key_count: supported on the CUDA decode path only");
  }
  if (a.key_count && a.key_count_stride < a.n_kv) return Status::invalid("key_count_stride: expected at least nKv = " + num(a.n_kv));
  if (a.quant) {
    const DeviceQuantKv& q = *a.quant;
    if (path != AttentionPath::Decode || a.kv_dtype != DType::F16 || a.indices || a.softcap > 0.0f || a.tree_visible || a.key_count ||
        a.key_mass) {
      return Status::invalid("quant: the fused KIVI decode takes f16 tails on the decode path without indices or extras");
    }
    // The layout make_quant_layout gives this headDim, with the alignments the kernel's vector loads need.
    const int64_t D = a.head_dim;
    const bool layout = (q.bits == 8 || q.bits == 4) && q.group >= 8 && q.group % 8 == 0 && D % 32 == 0 &&
                        (q.bits == 8 ? q.row_bytes == D : q.k_octet_bytes == D / 8 * 32 && q.v_pair_bytes == D) &&
                        q.k_codes % 16 == 0 && q.v_codes % 16 == 0 && q.k_scale % 16 == 0 && q.k_min % 16 == 0 &&
                        q.v_scale % 2 == 0 && q.v_min % 2 == 0 && q.block_bytes % 16 == 0 &&
                        q.v_min + 2 * q.group * ((D + q.group - 1) / q.group) <= q.block_bytes;
    if (!layout || (!q.blocks && q.blocks_cap > 0) || q.blocks_cap < 0 || !q.n_blocks || !q.tail_k || !q.tail_v || q.tail_rows < 1) {
      return Status::invalid("quant: expected the KIVI block layout of this headDim (group a multiple of 8, aligned offsets)");
    }
    if (a.variant != 0) return Status::invalid("variant: the fused KIVI decode has variant 0 only");
  }
  if (a.tree_visible && a.n_q > kMaxTreeNodes) {
    return Status::invalid("treeMask: expected at most " + num(kMaxTreeNodes) + " tree nodes, received " + num(a.n_q));
  }
  if (a.n_sel < 0 || a.n_sel > kMaxIndex) return Status::invalid("nSel: expected 0 <= nSel < 2^31");
  if (a.head_len && a.indices) return Status::invalid("head_len: expected no indices with per-head lengths");
  if (a.kv_head_stride != 0 && a.kv_head_stride < checked_mul(a.n_kv, a.head_dim)) {
    return Status::invalid("kv_head_stride: expected 0 or at least nKv * headDim = " + num(checked_mul(a.n_kv, a.head_dim)));
  }
  if (a.n_kv > kMaxIndex || a.n_q > kMaxIndex || checked_mul(a.n_heads, a.n_q) > kMaxIndex || a.n_heads > 65535) {
    return Status::invalid("cuda attention: expected nKv, nQ and nHeads * nQ below 2^31 and nHeads <= 65535");
  }
  const int64_t q_elems = checked_mul(checked_mul(a.n_heads, a.n_q), a.head_dim);
  const int64_t kv_elems = checked_mul(checked_mul(a.n_kv_heads, a.n_kv), a.head_dim);
  if (q_elems < 0 || kv_elems < 0) return Status::invalid("cuda attention: shape overflows");
  if (a.n_q > 0 && (!a.q || !a.out || (a.n_kv > 0 && !a.quant && (!a.k || !a.v)))) {
    return Status::invalid("cuda attention: q, k, v and out device buffers are required");
  }
  return Status::ok();
}

Status device_attention_workspace(const DeviceAttention& a, size_t* bytes) {
  *bytes = 0;
  Status s = check_device_attention(a);
  if (!s.is_ok()) return s;
  const int64_t n_keys = a.indices ? a.n_sel : a.n_kv;
  if (a.n_q == 0 || n_keys == 0 || a.n_kv == 0 || resolve_path(a) != AttentionPath::Decode) return Status::ok();
  *bytes = plan_decode(a, multiprocessor_count()).workspace_bytes;
  return Status::ok();
}

Status launch_device_attention(const DeviceAttention& a, void* workspace, size_t workspace_bytes) {
  Status s = check_device_attention(a);
  if (!s.is_ok()) return s;
  const size_t mass_bytes = size_t(a.n_kv_heads * a.n_kv) * sizeof(float);
  if (a.n_q == 0) {  // no query: zero key mass (as the CPU)
    if (a.key_mass && mass_bytes) TP_CUDA_TRY(cudaMemsetAsync(a.key_mass, 0, mass_bytes), "cudaMemsetAsync(key_mass)");
    return Status::ok();
  }
  const int64_t rows = a.n_heads * a.n_q;
  if (a.n_kv == 0 || (a.indices && a.n_sel == 0)) {  // no key: zero rows, lse -inf, zero key mass
    TP_CUDA_TRY(cudaMemsetAsync(a.out, 0, size_t(rows * a.head_dim) * sizeof(float)), "cudaMemsetAsync(out)");
    if (a.key_mass && mass_bytes) TP_CUDA_TRY(cudaMemsetAsync(a.key_mass, 0, mass_bytes), "cudaMemsetAsync(key_mass)");
    if (a.lse) {
      fill_kernel<<<unsigned((rows + 255) / 256), 256>>>(a.lse, rows, -INFINITY);
      TP_CUDA_TRY(cudaGetLastError(), "launch fill_kernel");
    }
    return Status::ok();
  }
  if (resolve_path(a) == AttentionPath::Prefill) return launch_prefill(a);
  const DecodePlan plan = plan_decode(a, multiprocessor_count());
  if (plan.slices > 65535 || a.n_kv_heads > 65535) return Status::invalid("cuda attention: too many KV heads or query rows per KV head");
  if (workspace_bytes < plan.workspace_bytes || (plan.workspace_bytes > 0 && !workspace)) {
    return Status::invalid("cuda attention: workspace of " + num(int64_t(plan.workspace_bytes)) + " bytes required, received " +
                           num(int64_t(workspace_bytes)));
  }
  return launch_decode(a, plan, workspace);
}

namespace {

// Contiguous copy of a [heads, rows, dim] host view (element size `es`).
void gather(const void* src, int64_t heads, int64_t rows, int64_t dim, int64_t hs, int64_t rs, size_t es, std::vector<char>& dst) {
  dst.resize(size_t(heads * rows * dim) * es);
  const char* s = static_cast<const char*>(src);
  char* d = dst.data();
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(d, s + size_t(h * hs + r * rs) * es, size_t(dim) * es);
      d += size_t(dim) * es;
    }
  }
}

}  // namespace

Status attention_on_device(const AttentionParams& p, AttentionPath path, int variant) {
  Status s = validate_attention(p);
  if (!s.is_ok()) return s;
  if (p.bool_mask || p.additive_mask) {
    return Status::invalid("mask: bool and additive masks are not supported on CUDA (treeMask, causal and indices are)");
  }
  if (p.k_dtype != p.v_dtype) return Status::invalid("k, v: expected one dtype for k and v on CUDA");
  if (cuda_status().device_count < 1) return Status::internal("cuda attention: no CUDA device: " + cuda_status().error);

  DeviceAttention a;
  a.n_heads = p.n_heads;
  a.n_kv_heads = p.n_kv_heads;
  a.n_q = p.n_q;
  a.n_kv = p.n_kv;
  a.head_dim = p.head_dim;
  a.kv_dtype = p.k_dtype;
  a.scale = p.scale;
  a.causal = p.causal;
  a.softcap = p.softcap;
  a.path = path;
  a.variant = variant;
  static const int32_t dummy_index = 0;
  if (p.indices) {
    a.indices = &dummy_index;
    a.n_sel = p.n_sel;
  }
  // Placeholders so the check sees buffers; the real pointers follow.
  static const float dummy = 0;
  static const uint8_t dummy_tree = 0;
  a.q = &dummy;
  a.k = a.v = &dummy;
  a.out = const_cast<float*>(&dummy);
  if (p.tree_parents) a.tree_visible = &dummy_tree;
  if (p.key_mass) a.key_mass = const_cast<float*>(&dummy);
  s = check_device_attention(a);
  if (!s.is_ok()) return s;
  a.path = resolve_path(a);  // fixed now: the real key_mass pointer is null when nKv = 0
  if (p.n_q == 0) {  // no query: zero key mass (as the CPU)
    if (p.key_mass) for (int64_t x = 0; x < p.key_mass_len; ++x) p.key_mass[x] = 0.0f;
    return Status::ok();
  }
  if (p.indices && p.n_sel == 0) {  // no key selected: zero rows, lse -inf, zero key mass (as the CPU)
    for (int64_t x = 0; x < p.out_len; ++x) p.out[x] = 0.0f;
    if (p.lse) for (int64_t x = 0; x < p.lse_len; ++x) p.lse[x] = -std::numeric_limits<float>::infinity();
    if (p.key_mass) for (int64_t x = 0; x < p.key_mass_len; ++x) p.key_mass[x] = 0.0f;
    return Status::ok();
  }

  std::vector<char> hq, hk, hv;
  std::vector<uint8_t> htree;
  try {
    gather(p.q, p.n_heads, p.n_q, p.head_dim, p.q_head_stride, p.q_row_stride, sizeof(float), hq);
    gather(p.k, p.n_kv_heads, p.n_kv, p.head_dim, p.k_head_stride, p.k_row_stride, 2, hk);
    gather(p.v, p.n_kv_heads, p.n_kv, p.head_dim, p.v_head_stride, p.v_row_stride, 2, hv);
    if (p.tree_parents) tree_table(p.tree_parents, p.n_q, htree);
  } catch (const std::bad_alloc&) {
    return Status::out_of_memory("cuda attention: out of host memory for staging copies");
  }
  const int64_t rows = p.n_heads * p.n_q;
  DeviceBuffer dq, dk, dv, dout, dlse, dws, didx, dtree, dmass;
  TP_CUDA_TRY(cudaSetDevice(0), "cudaSetDevice");
  s = dq.alloc(hq.size(), "cudaMalloc(q)");
  if (s.is_ok()) s = dk.alloc(hk.size(), "cudaMalloc(k)");
  if (s.is_ok()) s = dv.alloc(hv.size(), "cudaMalloc(v)");
  if (s.is_ok()) s = dout.alloc(size_t(rows * p.head_dim) * sizeof(float), "cudaMalloc(out)");
  if (s.is_ok() && p.lse) s = dlse.alloc(size_t(rows) * sizeof(float), "cudaMalloc(lse)");
  const size_t idx_bytes = p.indices ? size_t(p.n_kv_heads * p.n_sel) * sizeof(int32_t) : 0;
  if (s.is_ok() && idx_bytes) s = didx.alloc(idx_bytes, "cudaMalloc(indices)");
  if (s.is_ok() && !htree.empty()) s = dtree.alloc(htree.size(), "cudaMalloc(treeMask)");
  const size_t mass_bytes = p.key_mass ? size_t(p.n_kv_heads * p.n_kv) * sizeof(float) : 0;
  if (s.is_ok() && mass_bytes) s = dmass.alloc(mass_bytes, "cudaMalloc(keyMass)");
  if (!s.is_ok()) return s;
  if (!htree.empty()) {
    TP_CUDA_TRY(cudaMemcpy(dtree.get(), htree.data(), htree.size(), cudaMemcpyHostToDevice), "cudaMemcpy(treeMask)");
    a.tree_visible = static_cast<const uint8_t*>(dtree.get());
  }
  a.key_mass = p.key_mass ? dmass.as<float>() : nullptr;  // nKv = 0: no bytes, launch zeroes nothing
  if (idx_bytes) {
    TP_CUDA_TRY(cudaMemcpy(didx.get(), p.indices, idx_bytes, cudaMemcpyHostToDevice), "cudaMemcpy(indices)");
    a.indices = didx.as<int32_t>();
  }
  a.q = dq.as<float>();
  a.k = dk.get();
  a.v = dv.get();
  a.out = dout.as<float>();
  a.lse = p.lse ? dlse.as<float>() : nullptr;
  size_t ws_bytes = 0;
  s = device_attention_workspace(a, &ws_bytes);
  if (s.is_ok()) s = dws.alloc(ws_bytes, "cudaMalloc(workspace)");
  if (!s.is_ok()) return s;
  if (!hq.empty()) TP_CUDA_TRY(cudaMemcpy(dq.get(), hq.data(), hq.size(), cudaMemcpyHostToDevice), "cudaMemcpy(q)");
  if (!hk.empty()) TP_CUDA_TRY(cudaMemcpy(dk.get(), hk.data(), hk.size(), cudaMemcpyHostToDevice), "cudaMemcpy(k)");
  if (!hv.empty()) TP_CUDA_TRY(cudaMemcpy(dv.get(), hv.data(), hv.size(), cudaMemcpyHostToDevice), "cudaMemcpy(v)");
  s = launch_device_attention(a, dws.get(), ws_bytes);
  if (!s.is_ok()) return s;
  TP_CUDA_TRY(cudaDeviceSynchronize(), "attention kernels");
  // Copy back only after success: a failed call leaves out and lse untouched.
  TP_CUDA_TRY(cudaMemcpy(p.out, dout.get(), size_t(rows * p.head_dim) * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy(out)");
  if (p.lse) TP_CUDA_TRY(cudaMemcpy(p.lse, dlse.get(), size_t(rows) * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy(lse)");
  if (mass_bytes) TP_CUDA_TRY(cudaMemcpy(p.key_mass, dmass.get(), mass_bytes, cudaMemcpyDeviceToHost), "cudaMemcpy(keyMass)");
  return Status::ok();
}

}  // namespace tp::cuda
