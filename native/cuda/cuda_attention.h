// CUDA attention behind a C++ API that knows nothing about Node (the binding
// is native/binding/cuda_binding.cpp). Without TOKENPRESS_CUDA every entry
// point returns an Internal status (cuda_attention.cpp); callers check
// cuda_status() first.
//
// Device-resident shapes (contiguous, row-major):
//   q    f32        [nHeads,   nQ,  headDim]
//   k, v f16|bf16   [nKvHeads, nKv, headDim]   (k and v of one dtype)
//   out  f32        [nHeads,   nQ,  headDim]
//   lse  f32        [nHeads,   nQ]             (optional, natural log)
//   key_mass f32    [nKvHeads, nKv]            (optional, decode path)
//   tree_visible u8 [nQ, nQ]                   (optional, decode path)
// GQA: query head h reads KV head h / (nHeads / nKvHeads).
// causal: query i sees key positions p <= nKv - nQ + i (queries are the last
// nQ positions); a query that sees no key gets a zero row and lse -inf.
//
// Paths:
//   decode   split-KV flash-decoding, f32 math on exactly converted K/V; all
//            query rows of a GQA group (nHeads/nKvHeads * nQ, up to 8 per
//            block) share one read of each K/V tile. headDim 64, 128 or 256.
//   prefill  tiled online softmax on tensor cores (mma.sync m16n8k16, f32
//            accumulate); q and the probabilities are rounded to the K/V
//            dtype before the products. headDim 64 or 128.
//   auto     decode when nQ <= 16 or any decode-only option (indices,
//            softcap, tree_visible, key_mass) is given, else prefill.
// indices (sparse attention, decode path only): query rows attend to the
// listed key positions of their KV head only; causal limits apply to the
// positions.
// Decode-only options, with the CPU attention's semantics (attention.h):
//   softcap       logits s = scale * q.k become softcap * tanh(s / softcap).
//   tree_visible  speculative-decoding tree over the last nQ keys of each KV
//                 head: tree_visible[i * nQ + t] != 0 when tree node t is
//                 query i or one of its ancestors; key position p >= nKv_h -
//                 nQ (nKv_h: the head's keys) is visible to query i only then;
//                 earlier keys are not affected (host helper: tree_table()).
//   key_mass      key_mass[kvHead][p] = sum over the queries and the query
//                 heads of the group of softmax(s)[p]; keys no row attends to
//                 (masked, unlisted, past head_len) get 0; repeated indices
//                 add up. A third kernel recomputes the logits after the merge.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../attention/attention.h"
#include "../core/dtype.h"
#include "../core/status.h"

namespace tp::cuda {

enum class AttentionPath : int { Auto = 0, Decode = 1, Prefill = 2 };

// KIVI int8 / int4 K/V in the KV cache's block layout (native/kv/kv_quant.h),
// read by the decode kernel directly (no dequantized copy): per KV head h,
// rows [0, n_blocks[h] * group) are in blocks [h * blocks_cap + b], the rest
// in the f16 tail [h, tail_rows, headDim]. Byte offsets within a block as
// QuantLayout. The fused path needs group % 8 == 0 and 16-byte aligned
// k_codes, v_codes, k_scale, k_min and block_bytes (true for headDim 64,
// 128, 256 with such groups).
struct DeviceQuantKv {
  const uint8_t* blocks = nullptr;
  int64_t blocks_cap = 0;
  const int32_t* n_blocks = nullptr;  // device [nKvHeads]
  const uint16_t* tail_k = nullptr;
  const uint16_t* tail_v = nullptr;
  int64_t tail_rows = 0;
  int bits = 8, group = 32;
  int64_t block_bytes = 0, row_bytes = 0, k_octet_bytes = 0, v_pair_bytes = 0;
  int64_t k_codes = 0, v_codes = 0, k_scale = 0, k_min = 0, v_scale = 0, v_min = 0;
};

struct DeviceAttention {
  int64_t n_heads = 0, n_kv_heads = 0, n_q = 0, n_kv = 0, head_dim = 0;
  const float* q = nullptr;  // device pointers
  const void* k = nullptr;
  const void* v = nullptr;
  DType kv_dtype = DType::F16;
  float scale = 1.0f;
  bool causal = false;
  float softcap = 0.0f;                          // 0: off (decode path)
  const uint8_t* tree_visible = nullptr;         // device u8 [nQ, nQ], or null (decode path)
  // Decode path: tokens each key stands for (merged rows), device f32
  // [nKvHeads, key_count_stride]; the logit gains log(count). Null: all 1.
  const float* key_count = nullptr;
  int64_t key_count_stride = 0;
  // Decode path only: K/V as KIVI blocks + f16 tail instead of k / v (which
  // are then unused); kv_dtype must be f16; no indices, softcap, tree,
  // key_count or key_mass. Host pointer, copied at launch.
  const DeviceQuantKv* quant = nullptr;
  float* out = nullptr;
  float* lse = nullptr;  // may be null
  float* key_mass = nullptr;                     // device f32 [nKvHeads, nKv], overwritten; or null (decode path)
  // Sparse decode: i32 [nKvHeads, nSel] key positions in [0, nKv) (device;
  // repeats allowed, each is its own softmax term); null = all nKv keys.
  const int32_t* indices = nullptr;
  int64_t n_sel = 0;
  // KV cache views (decode and prefill, dense only): elements between KV heads of k
  // and v (0 = nKv * headDim), and device i32 [nKvHeads] keys per head (null =
  // nKv for every head; each must be <= nKv). With head_len, a head's keys are
  // its first head_len[h] rows and the causal limit counts from its own end.
  int64_t kv_head_stride = 0;
  const int32_t* head_len = nullptr;
  AttentionPath path = AttentionPath::Auto;
  int64_t decode_splits = 0;  // decode: KV splits per block row; 0 = one full wave of blocks (tuning)
  // Kernel variant (tuning and tests): decode 0 = direct register loads
  // (default), 1 = cp.async pipeline through shared memory; prefill 0 = 32
  // rows per warp and 32-key tiles (default), 1 = 16 rows per warp and 64-key
  // tiles at 2 blocks/SM, 2 = as 1 at 1 block/SM (headDim 128).
  int variant = 0;
};

// The tree_visible table of a parent array (parents[i] < i or -1; nQ nodes,
// validated by validate_attention): table[i * nQ + t] = 1 when t is i or an
// ancestor of i. Throws std::bad_alloc.
void tree_table(const int32_t* parents, int64_t n_q, std::vector<uint8_t>& table);

// Shapes, dtypes and the path's limits; touches no device memory.
Status check_device_attention(const DeviceAttention& a);

// The path `a.path` resolves to (Auto decided by nQ).
AttentionPath resolve_path(const DeviceAttention& a);

// Bytes of device scratch launch_device_attention needs (decode split
// partials; 0 for prefill).
Status device_attention_workspace(const DeviceAttention& a, size_t* bytes);

// Enqueues the kernels on the default stream of the current device;
// `workspace` holds at least device_attention_workspace() bytes.
// Returns launch errors; execution errors surface at the next sync.
Status launch_device_attention(const DeviceAttention& a, void* workspace, size_t workspace_bytes);

// Host-level call for tests: copies the host inputs of `p` (the CPU
// attention's parameters, any strides) to the device, runs `path`, and copies
// out (and lse, key mass) back. Supports what the device paths support:
// f16/bf16 K/V of one dtype, scale, causal, returnLse, and on the decode path
// indices, softcap, treeMask and returnKeyMass; no bool / additive masks
// (InvalidArgument). `variant`: DeviceAttention::variant. Synchronous.
Status attention_on_device(const AttentionParams& p, AttentionPath path, int variant = 0);

// cudaBenchAttention: device-resident random K/V of the given shape, the
// kernel timed with CUDA events (median of `iters` after `warmup`), and the
// device's own limits measured in the same call.
struct BenchConfig {
  int64_t n_heads = 32, n_kv_heads = 8, n_q = 1, n_kv = 32768, head_dim = 128;
  int64_t n_sel = 0;  // > 0: sparse decode over n_sel random positions per KV head
  DType kv_dtype = DType::F16;
  bool causal = false;
  AttentionPath path = AttentionPath::Auto;
  int64_t decode_splits = 0;  // 0: automatic
  int variant = 0;  // DeviceAttention::variant
  int warmup = 3, iters = 20;
  int64_t bandwidth_bytes = int64_t(1) << 30;  // buffer for the copy / read limits
};

struct BenchResult {
  double kernel_ms = 0;          // median over iters
  double kernel_min_ms = 0;
  double bytes = 0;              // bytes the call must move: K + V (selected rows) + indices + q + out + lse
  double flops = 0;              // 4 * headDim per visible (query, key) pair and head
  double copy_bytes_per_s = 0;   // cudaMemcpy device-to-device, (read + write) / time, median
  double read_bytes_per_s = 0;   // a streaming read kernel, bytes read / time, median
  int splits = 0;                // decode: KV splits per head group (0 for prefill)
  int path = 0;                  // resolved AttentionPath
  char device[256] = {0};
};

Status bench_attention(const BenchConfig& c, BenchResult* r);

}  // namespace tp::cuda
