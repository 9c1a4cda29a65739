/**
 * The one typed contract with the native addon (native/binding/*.cpp).
 * Everything else in lib/ goes through `native()`; nothing else loads the addon.
 *
 * Rules every entry point keeps (docs/guarantees.md): all fields of a params
 * object are read (every getter run) before any pointer is taken; no output
 * may share an ArrayBuffer with an input or another output (RangeError);
 * typed arrays over a SharedArrayBuffer are a TypeError; handles are checked
 * by a native type tag; `*Async` calls copy their inputs before they return
 * and write their outputs when they settle (an output resized or transferred
 * meanwhile: the promise rejects with code ERR_OUTPUT_CHANGED); a refused
 * thread is code ERR_THREADS, a failed allocation ERR_OUT_OF_MEMORY.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TokenpressError } from './errors.js';

/** dtype codes shared with native/core/dtype.h. */
export const DTYPE_CODE = { f32: 0, f16: 1, bf16: 2 } as const;

export interface NativeCudaStatus {
  compiled: boolean;
  deviceCount: number;
  error: string;
  devices: string;
}

export interface NativeBackendInfo {
  isa: string; // active ISA: 'scalar' | 'avx2' | 'avx512'
  detectedIsa: string;
  features: Record<string, boolean>;
  threads: number;
  cuda: NativeCudaStatus;
}

/** Flat parameters of one attention call; the binding re-checks sizes and indices. */
export interface NativeAttentionParams {
  nHeads: number;
  nKvHeads: number;
  nQ: number;
  nKv: number;
  headDim: number;
  q: Float32Array;
  qStrides: [number, number]; // head, row (elements)
  k: Float32Array | Uint16Array;
  kDtype: number;
  kStrides: [number, number];
  v: Float32Array | Uint16Array;
  vDtype: number;
  vStrides: [number, number];
  scale: number;
  softcap: number; // 0 = off
  causal: boolean;
  boolMask?: Uint8Array; // [nQ, nKv]
  additiveMask?: Float32Array; // [nQ, nKv]
  treeParents?: Int32Array; // [nQ]
  indices?: Int32Array; // [nKvHeads, nSel]
  nSel: number;
  out: Float32Array; // [nHeads, nQ, headDim]
  lse?: Float32Array; // [nHeads, nQ]
  keyMass?: Float32Array; // [nKvHeads, nKv]
}

/**
 * The positional form of attention() / attentionAsync(): the numbers of
 * NativeAttentionParams in one Float64Array (ATTENTION_HEADER order), then
 * the arrays, undefined where absent. Positional arguments run no getter, so
 * the binding reads them without a snapshot (native/binding/attention_args.h).
 */
export type NativeAttentionArgs = [
  header: Float64Array,
  q: Float32Array, k: Float32Array | Uint16Array, v: Float32Array | Uint16Array, out: Float32Array,
  lse: Float32Array | undefined, keyMass: Float32Array | undefined, boolMask: Uint8Array | undefined,
  additiveMask: Float32Array | undefined, treeParents: Int32Array | undefined, indices: Int32Array | undefined,
];

/** The slots of NativeAttentionArgs' header (native/binding/attention_args.h kHeaderFields, same order). */
export const ATTENTION_HEADER = [
  'nHeads', 'nKvHeads', 'nQ', 'nKv', 'headDim', 'nSel', 'kDtype', 'vDtype',
  'qStrides[0]', 'qStrides[1]', 'kStrides[0]', 'kStrides[1]', 'vStrides[0]', 'vStrides[1]',
  'scale', 'softcap', 'causal',
] as const;

/** cudaAttention: the attention parameters plus the CUDA path. */
export interface NativeCudaAttentionParams extends NativeAttentionParams {
  path?: number; // 0 auto (decode when nQ <= 16), 1 decode, 2 prefill
  /**
   * Kernel variant for tuning and tests (native/cuda/cuda_attention.h): decode 0 = register
   * loads (default), 1 = cp.async pipeline; prefill 0 = 32 rows per warp, 32-key tiles
   * (default), 1 = 16 rows per warp, 64-key tiles, 2 = as 1 at 1 block/SM.
   */
  variant?: number;
}

/** cudaBenchAttention: device-resident random K/V of this shape, timed with CUDA events. */
export interface NativeCudaBenchParams {
  nHeads: number;
  nKvHeads: number;
  nQ: number;
  nKv: number;
  headDim: number;
  kvDtype: number; // 1 f16, 2 bf16
  causal: boolean;
  path?: number;
  splits?: number; // decode KV splits per (KV head, row slice); 0 or absent: one full wave of blocks
  variant?: number; // kernel variant (NativeCudaAttentionParams.variant)
  nSel?: number; // > 0: sparse decode over nSel random key positions per KV head (non-causal)
  warmup: number;
  iters: number;
  bandwidthBytes: number; // buffer size for the copy / read bandwidth limits
}

export interface NativeCudaBenchResult {
  kernelMs: number; // median
  kernelMinMs: number;
  bytes: number; // K + V + q + out + lse bytes of one call
  flops: number; // 4 * headDim per visible (query, key) pair and head
  copyBytesPerS: number; // cudaMemcpy device-to-device, (read + write) bytes / s
  readBytesPerS: number; // streaming read kernel, bytes / s
  splits: number; // decode KV splits (0 for prefill)
  path: 'decode' | 'prefill';
  device: string;
}

/** Option fields every KV policy call carries (native/binding/kv_args.h). */
export interface NativeKvPolicyOptions {
  sinks: number;
  recent: number;
  window: number;
  kernel: number;
  pooling: number; // 0 avg, 1 max
  seed: number;
  epsilon?: number; // expected_attention, default 0
  useCovariance?: boolean; // expected_attention, default true
  useVnorm?: boolean; // expected_attention, default true
  reduction?: number; // speckv reduction / ems combine: 0 mean, 1 max (default)
}

/** Flat parameters of kvScore; policy options every policy may ignore. */
export interface NativeKvScoreParams extends NativeKvPolicyOptions {
  policy: string;
  nHeads: number; // 0 when no queries
  nKvHeads: number;
  nQ: number; // 0 when no queries
  nKv: number;
  headDim: number;
  q?: Float32Array; // [nHeads, nQ, headDim]
  qStrides?: [number, number];
  k: Float32Array | Uint16Array;
  kDtype: number;
  kStrides: [number, number];
  v: Float32Array | Uint16Array;
  vDtype: number;
  vStrides: [number, number];
  keyMass?: Float32Array; // [nKvHeads, nKv] contiguous
  draftQ?: Float32Array; // [nHeads, nDraft, headDim] (speckv)
  draftQStrides?: [number, number];
  nDraft?: number;
  scores: Float32Array; // out: [nKvHeads, nKv]
}

export interface NativeKvSelectParams {
  nKvHeads: number;
  nKv: number;
  nKeep: number;
  scores: Float32Array; // [nKvHeads, nKv] contiguous
  out: Int32Array; // [nKvHeads, nKeep]
}

export interface NativeKvCompactParams {
  nKvHeads: number;
  nKv: number;
  headDim: number;
  nKeep: number;
  dtype: number;
  src: Float32Array | Uint16Array;
  strides: [number, number];
  indices: Int32Array; // [nKvHeads, nKeep]
  dst: Float32Array | Uint16Array; // [nKvHeads, nKeep, headDim]
}

/** dtype codes of a KvCache (native/kv/kv_cache.h CacheType). */
export const CACHE_DTYPE_CODE = { f32: 0, f16: 1, bf16: 2, int8: 3, int4: 4 } as const;

export interface NativeKvCacheConfig {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  capacity: number;
  dtype: number; // CACHE_DTYPE_CODE
  groupSize: number;
  residual: number;
  window: number;
  /** 0 = cpu, 1 = cuda when a device is present (else the CPU cache). */
  device?: number;
  /** Tokens per (layer, head) of storage allocated and populated now (CPU cache); default 0. */
  reserve?: number;
  /** int8/int4: tokens commit / rollback can drop with the quantized groups restored exactly; default 0. */
  speculative?: number;
}

export interface NativeKvAppendParams {
  layer: number;
  n: number;
  k: Float32Array | Uint16Array;
  kDtype: number;
  kStrides: [number, number];
  v: Float32Array | Uint16Array;
  vDtype: number;
  vStrides: [number, number];
  positions?: Int32Array; // [n]
}

export interface NativeKvAttendParams {
  layer: number;
  nHeads: number;
  nQ: number;
  q: Float32Array;
  qStrides: [number, number];
  scale: number; // 0: 1/sqrt(headDim)
  softcap: number;
  causal: boolean;
  accumulateMass: boolean;
  remember: boolean;
  out: Float32Array; // [nHeads, nQ, headDim]
  lse?: Float32Array; // [nHeads, nQ]
  /** Sparse attend: [method (1 quest, 2 tidal, 3 blocks), budget, pageSize | blockSize, sinks, recent, gqa (0 max, 1 sum), selectedStride, tidal role (0 full, 1 select, 2 kept positions), mix (blocks)]. */
  sparse?: Float64Array;
  /** On request: the rows each KV head attended, [nKvHeads, selectedStride], -1 padded. */
  selected?: Int32Array;
  /** With selected: their counts [nKvHeads]. */
  selectedCount?: Int32Array;
  /** Tree attend: the parent of each of the nQ newest tokens (-1 root). */
  treeParents?: Int32Array;
}

/** KvCache commit / rollback (native/kv/kv_cache_spec.cpp). */
export interface NativeKvCommitParams {
  /** Layers to change; absent: all. */
  layers?: Int32Array;
  /** The newest treeSize tokens of every head are the tree. */
  treeSize: number;
  /** Tree nodes to keep, ascending (empty: rollback of treeSize tokens). */
  accepted: Int32Array;
}

/** A layer's Quest page summaries decoded to f32 (native/kv/kv_cache.h SummaryExport). */
export interface NativeQuestSummaries {
  /** 0: the layer has none yet (no sparse attend). */
  pageSize: number;
  pages: number;
  kmin: Float32Array; // [nKvHeads, pages, headDim], 0 padded
  /** Block retrieval layers: the mean keys, the same shape. */
  kmean?: Float32Array;
  kmax: Float32Array;
  headPages: Int32Array; // [nKvHeads]
  bytes: number;
}

export interface NativeKvCompressParams extends NativeKvPolicyOptions {
  policy: string; // the scorer
  allocation: number; // 0 uniform, 1 pyramid, 2 adakv, 3 razor
  keep: number; // -1: use ratio
  ratio: number; // -1: use keep
  beta: number;
  pyramidWindow: number;
  alpha: number;
  razorSinks: number;
  razorRecent: number;
  merge: boolean;
  mergeThreshold: number; // merge only at cosine >= this (-2: always)
  retrieval?: Uint8Array; // [nLayers * nKvHeads]
  layers?: Int32Array;
  /** speckv: per layer, draft queries f32 [nHeads, nDraft, headDim] (undefined: none). */
  drafts?: ({ q: Float32Array; nHeads: number; nDraft: number; strides: [number, number] } | undefined)[];
}

/** What a compress call did, over the whole cache. */
export interface NativeCompressReport {
  tokensBefore: number;
  tokensAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  /** Wall time of the native call. */
  ms: number;
  /** Of which: scoring, budgets and selection (nothing changed yet). */
  planMs: number;
  /** Of which: merging and in-place compaction. */
  applyMs: number;
  /** Of which: shrinking the storage to give the freed memory back. */
  releaseMs: number;
  /** Bytes compaction read and wrote to move kept rows (float caches; 0 for int caches, which re-quantize). */
  bytesMoved: number;
}

export interface NativeKvExportParams {
  layer: number;
  dtype: number; // DTYPE_CODE
  k: Float32Array | Uint16Array; // [nKvHeads, maxLen, headDim]
  v: Float32Array | Uint16Array;
  positions: Int32Array; // [nKvHeads, maxLen]
  counts?: Float32Array; // [nKvHeads, maxLen]
}

export interface NativeKvCacheHandle {
  append(p: NativeKvAppendParams): void;
  /** The sync append, positional (no params object to snapshot): the decode hot path. */
  appendRows(
    layer: number, n: number, k: Float32Array | Uint16Array, kDtype: number, kHeadStride: number, kRowStride: number,
    v: Float32Array | Uint16Array, vDtype: number, vHeadStride: number, vRowStride: number, positions?: Int32Array,
  ): void;
  appendAsync(p: NativeKvAppendParams): Promise<void>;
  attend(p: NativeKvAttendParams): void;
  attendAsync(p: NativeKvAttendParams): Promise<void>;
  compress(p: NativeKvCompressParams): NativeCompressReport;
  compressAsync(p: NativeKvCompressParams): Promise<NativeCompressReport>;
  exportLayer(p: NativeKvExportParams): void;
  exportLayerAsync(p: NativeKvExportParams): Promise<void>;
  lengths(): Int32Array; // [nLayers * nKvHeads]
  maxLength(layer: number): number;
  memoryBytes(): number;
  clear(layer?: number): void;
  /** The layer's Quest page summaries (CPU caches). */
  questSummaries(layer: number): NativeQuestSummaries;
  /** Drops the TidalDecode positions selected in the current decode step. */
  beginStep(): void;
  /** Keeps the accepted nodes of the newest treeSize tokens of every head (CPU caches). */
  commitTree(p: NativeKvCommitParams): void;
  /** Where the cache lives. */
  device(): 'cpu' | 'cuda';
}


/** A built-in byte model handle, as the coder bindings take it. */
export type NativeByteModel = NativeByteModelHandle;

export interface NativeEqualInfoParams {
  model: NativeByteModel;
  windowBits: number;
  tokenBits: number;
}

export interface NativeEqualInfoEncoded {
  tokens: (Uint16Array | Uint32Array)[];
  windows: number[];
}

export interface NativeEqualInfoStepperParams {
  mode: 'encode' | 'decode';
  windowBits: number;
  tokenBits: number;
  docs?: Uint8Array[];
  tokens?: (Uint16Array | Uint32Array)[];
  maxBytes?: number;
}

/** Equal-Info coding driven by a JavaScript model (native/binding/coding_stepper_binding.cpp). */
export interface NativeEqualInfoStepper {
  /** Streams (document index per pending context) and their contexts; empty when done. */
  pending(): { streams: Uint32Array; contexts: Uint8Array[] };
  /** One row of 256 probabilities per pending context, flattened. */
  advance(probabilities: Float32Array | Float64Array): void;
  result(): NativeEqualInfoEncoded | Uint8Array[];
}

export interface NativeRawCoderTable {
  freqs: Uint32Array;
  totalLog2: number;
}

/** info() of a native byte model (native/binding/model_binding.cpp). */
export interface NativeByteModelInfo {
  kind: string;
  maxOrder: number;
  version: number;
  bytes: number;
  identity: string; // 16 hex digits
  trainedBytes: number;
  contexts: number[]; // [maxOrder + 1]
  entries: number[]; // [maxOrder + 1]
}

/**
 * Slot decoding of Equal-Info tokens (native/coding/equal_info_slots.h): the
 * equalInfoDecode params plus slotBytes (bytes per window slot; 0 or absent:
 * 4 * windowBits). Windows that overflow their slot are decoded again on the CPU.
 */
export type NativeSlotDecodeParams = NativeEqualInfoParams & { tokens: (Uint16Array | Uint32Array)[]; maxBytes: number; slotBytes?: number };
export interface NativeSlotDecoded {
  /** One Uint8Array per token list: exactly what equalInfoDecode gives. */
  docs: Uint8Array[];
  /** Windows that overflowed their slot and were decoded again on the CPU. */
  overflowWindows: number;
  /** Device time of the decode kernels in ms (0 on the host). */
  kernelMs: number;
}

/** A frozen byte model (native/coding/kn_model.h); the coder bindings take it as an argument. */
export interface NativeByteModelHandle {
  serialize(): Uint8Array;
  info(): NativeByteModelInfo;
  /** Masses [256] for the byte after ctx (its last maxOrder bytes). */
  masses(ctx: Uint8Array): Uint32Array;
  /** Code length of text in bits (window > 0: the context restarts every window bytes; positionBits [window] averages). */
  evaluate(text: Uint8Array, window: number): { bits: number; positionBits: Float64Array };
  /** Nanoseconds per masses() call over text (contexts as in evaluate), for benchmarks. */
  benchMasses(text: Uint8Array, window: number): number;
}

export interface NativeByteModelClass {
  /** Throws an Error with code ERR_BAD_FILE on a bad model. */
  fromBytes(bytes: Uint8Array): NativeByteModelHandle;
}

/** Token Recycling (native/spec/token_recycling.h): the table is the caller's Int32Array [vocab, topK], -1 = empty slot. */
export interface NativeTrTableParams {
  table: Int32Array;
  vocab: number;
  topK: number;
}
export interface NativeSpecDrafters {
  /** Walks the template (parents/ranks [nodes]) from root; writes outTokens/outParents [maxNodes]; returns the node count. */
  trDraft(p: NativeTrTableParams & { parents: Int32Array; ranks: Int32Array; root: number; maxNodes: number; outTokens: Int32Array; outParents: Int32Array }): number;
  /** Row tokens[i] <- top-topK of logits row i (f32 [nodes, vocab]) or ids row i (int32 [nodes, idsK], -1 = none). */
  trUpdate(p: NativeTrTableParams & { tokens: Int32Array } & ({ logits: Float32Array } | { ids: Int32Array; idsK: number })): void;
}

export interface NativeAddon extends NativeSpecDrafters {
  ByteModel: NativeByteModelClass;
  trainByteModelAsync(text: Uint8Array, opts: { maxOrder: number; maxBytes: number }, onProgress?: (fraction: number) => void): Promise<NativeByteModelHandle>;
  KvCacheHandle: new (config: NativeKvCacheConfig) => NativeKvCacheHandle;
  equalInfoEncode(params: NativeEqualInfoParams & { docs: Uint8Array[] }): NativeEqualInfoEncoded;
  equalInfoEncodeAsync(params: NativeEqualInfoParams & { docs: Uint8Array[] }): Promise<NativeEqualInfoEncoded>;
  equalInfoDecode(params: NativeEqualInfoParams & { tokens: (Uint16Array | Uint32Array)[]; maxBytes: number }): Uint8Array[];
  equalInfoDecodeAsync(params: NativeEqualInfoParams & { tokens: (Uint16Array | Uint32Array)[]; maxBytes: number }): Promise<Uint8Array[]>;
  equalInfoDecodeWindow(params: NativeEqualInfoParams & { tokens: (Uint16Array | Uint32Array)[]; index: number; maxBytes: number }): Uint8Array;
  /** The device's slot decode run on the host (thread pool): tests check the GPU algorithm without a GPU. */
  equalInfoDecodePortable(params: NativeSlotDecodeParams): NativeSlotDecoded;
  /** Slot decode on the CUDA device (built-in model only). Throws code ERR_NO_CUDA without a device, ERR_CUDA on a CUDA failure, ERR_OUT_OF_MEMORY when device memory runs out; bad tokens throw what equalInfoDecode throws. */
  equalInfoDecodeCuda(params: NativeSlotDecodeParams): NativeSlotDecoded;
  equalInfoDecodeCudaAsync(params: NativeSlotDecodeParams): Promise<NativeSlotDecoded>;
  EqualInfoStepper: new (params: NativeEqualInfoStepperParams) => NativeEqualInfoStepper;
  staticEncode(params: { model: NativeByteModel; docs: Uint8Array[] }): Uint8Array[];
  staticEncodeAsync(params: { model: NativeByteModel; docs: Uint8Array[] }): Promise<Uint8Array[]>;
  staticDecode(params: { model: NativeByteModel; payloads: Uint8Array[]; lengths: number[]; maxBytes: number }): Uint8Array[];
  staticDecodeAsync(params: { model: NativeByteModel; payloads: Uint8Array[]; lengths: number[]; maxBytes: number }): Promise<Uint8Array[]>;
  rawEncode(params: NativeRawCoderTable & { data: Uint8Array }): Uint8Array;
  rawDecode(params: NativeRawCoderTable & { payload: Uint8Array; length: number; maxBytes: number }): Uint8Array;
  backendInfo(): NativeBackendInfo;
  setThreads(n: number): void;
  /** Lowers (or restores) the ISA kernels use; false if the CPU lacks it. */
  setIsa(name: string): boolean;
  attention(params: NativeAttentionParams): void;
  /** The positional form (NativeAttentionArgs; lib/attention.ts header()): no params object to read. */
  attention(...args: NativeAttentionArgs): void;
  attentionAsync(params: NativeAttentionParams): Promise<void>;
  attentionAsync(...args: NativeAttentionArgs): Promise<void>;
  /** Quest page summaries: header [nKvHeads, nKv, headDim, pageSize, dtype, kHeadStride, kRowStride]. */
  questSummarize(header: Float64Array, k: Float32Array | Uint16Array, kmin: Float32Array | Uint16Array, kmax: Float32Array | Uint16Array): void;
  /**
   * Quest selection: header [nHeads, nKvHeads, nQ, headDim, nKv, qHeadStride, qRowStride, dtype, budget, pageSize,
   * sinks, recent, gqa]; writes indices [nKvHeads, nSel] and returns nSel.
   */
  questSelect(header: Float64Array, q: Float32Array, kmin: Float32Array | Uint16Array, kmax: Float32Array | Uint16Array, indices: Int32Array): number;
  /** Block summaries: header [nKvHeads, nKv, headDim, blockSize, dtype, kHeadStride, kRowStride]. */
  blockSummarize(header: Float64Array, k: Float32Array | Uint16Array, kmin: Float32Array | Uint16Array, kmax: Float32Array | Uint16Array, kmean: Float32Array): void;
  /** Block selection: header [nHeads, nKvHeads, nQ, headDim, nKv, qHeadStride, qRowStride, dtype, budget, blockSize, sinks, recent, gqa, mix] -> tokens per KV head. */
  blockSelect(header: Float64Array, q: Float32Array, kmin: Float32Array | Uint16Array, kmax: Float32Array | Uint16Array, kmean: Float32Array, indices: Int32Array): number;
  /** TidalDecode selection: header [nKvHeads, rows, nKv, nQ, budget, sinks, recent, gqa] -> tokens per KV head. */
  tidalSelect(header: Float64Array, weights: Float32Array, indices: Int32Array): number;
  /**
   * Tests only: the device Quest's TP_HD code (native/sparse/quest_hd.h) run on the host beside the CPU Quest: header
   * [nHeads, nKvHeads, nQ, headDim, nKv, dtype, budget, pageSize, sinks, recent, gqa]; k [nKvHeads, nKv, headDim] and
   * q f32 [nHeads, nQ, headDim] contiguous; writes kmin, kmax [nKvHeads, pages, headDim] (k's dtype), scores (device
   * code) and cpuScores (CPU scoring) f32 [nKvHeads, pages], indices (device radix top-k on scores) and cpuIndices (CPU
   * select_pages on cpuScores) i32 [nKvHeads, nSel]; returns nSel.
   */
  questDeviceModel(header: Float64Array, k: Float32Array | Uint16Array, q: Float32Array, kmin: Float32Array | Uint16Array,
    kmax: Float32Array | Uint16Array, scores: Float32Array, cpuScores: Float32Array, indices: Int32Array, cpuIndices: Int32Array): number;
  /**
   * Tests only: the device's U8 page summaries of an int cache's keys (native/sparse/quest_u8_hd.h): header [nKvHeads,
   * nKv, headDim, pageSize], k f32 [nKvHeads, nKv, headDim] (the dequantized keys) -> kmin, kmax f32 [nKvHeads, pages,
   * headDim] decoded (completed pages from their u8 codes, the partial page exact).
   */
  questU8Model(header: Float64Array, k: Float32Array, kmin: Float32Array, kmax: Float32Array): void;
  kvScore(params: NativeKvScoreParams): void;
  kvSelect(params: NativeKvSelectParams): void;
  kvCompact(params: NativeKvCompactParams): void;
  /** Attention on the CUDA device (host in, host out). Throws code ERR_NO_CUDA without one. */
  cudaAttention(params: NativeCudaAttentionParams): void;
  /** Times the CUDA attention on device-resident K/V. Throws code ERR_NO_CUDA without a device. */
  cudaBenchAttention(params: NativeCudaBenchParams): NativeCudaBenchResult;
  /** Tests: the device KV cache's next n allocations succeed, the one after fails (n < 0: never). */
  cudaFailAllocationsAfter(n: number): void;
  /** STREAM-like read bandwidth, bytes/s. */
  measureReadBandwidth(bytes: number, threads: number, reps: number): number;
  /** FP32 FMA peak, FLOP/s, on the best ISA the CPU has (not the one kernels are restricted to). */
  measureFmaPeak(threads: number): number;
  /** memcpy-like bandwidth, bytes copied / s (the traffic is twice that); `bytes` / 2 are copied. */
  measureCopyBandwidth(bytes: number, threads: number, reps: number): number;
  /** Read or copy bandwidth with how it was obtained (native/core/machine_limits.h). */
  measureBandwidth(kind: 'read' | 'copy', bytes: number, threads: number, reps: number): NativeBandwidth;
  /** Gathered read: 1/16 of the `blockBytes` blocks of the array, at random (native/core/machine_limits.h). */
  measureBandwidth(kind: 'gather', bytes: number, threads: number, reps: number, blockBytes: number): NativeBandwidth;
  /** bf16 dot-product (VDPBF16PS) peak, FLOP/s; 0 without AVX512-BF16. */
  measureBf16Peak(threads: number): number;
  /** The roofline decode loop (native/attention/roofline_decode.h); the bench's peer. */
  rooflineDecode(params: NativeRooflineDecodeParams): void;
  /** Context-mixing compression (native/coding/cm_codec.h); one thread per call. */
  compressAdaptive(data: Uint8Array, opts?: NativeCmOptions): Uint8Array;
  compressAdaptiveAsync(data: Uint8Array, opts?: NativeCmOptions, onProgress?: (bytesDone: number) => void): Promise<Uint8Array>;
  /** n: the original length, in [0, min(2^31 - 1, 32768 * payload.length)] (0 only for an empty payload). */
  decompressAdaptive(payload: Uint8Array, n: number, opts?: NativeCmOptions): Uint8Array;
  decompressAdaptiveAsync(payload: Uint8Array, n: number, opts?: NativeCmOptions, onProgress?: (bytesDone: number) => void): Promise<Uint8Array>;
  /** Tokenizer core (native/text/bpe.h, token_trie.h; native/binding/tokenizer_binding.cpp). */
  tokCoreNew(blob: Uint8Array, offsets: Int32Array, ordinary: Uint8Array, merges: Int32Array | undefined, ignoreMerges: boolean): NativeTokCore;
  tokCoreEncode(core: NativeTokCore, bytes: Uint8Array, starts: Int32Array): Int32Array;
  tokCoreIdOf(core: NativeTokCore, bytes: Uint8Array): number;
  tokCoreWithPrefix(core: NativeTokCore, bytes: Uint8Array): Int32Array;
  tokCorePrefixOf(core: NativeTokCore, bytes: Uint8Array): Int32Array;
  // token-level Kneser-Ney (lib/tokenizer/token-kn.ts)
  tokenKnTrain: NativeTokenKn['tokenKnTrain'];
  tokenKnNext: NativeTokenKn['tokenKnNext'];
  /**
   * Dynamic tokenization (native/text/dynamic_bpe.h): tokens (all sequences back to back), offsets [nSeq + 1];
   * isValidPairs answers for pairs (a[i], b[i]) with 1 (may merge) or 0, each distinct pair asked once (the input's pairs in one
   * call, then one call per merge for the pairs it created); onMerge runs before each merge. Synchronous (the callbacks are JS).
   */
  dynamicBpe(params: {
    tokens: Int32Array; offsets: Float64Array; firstNewId: number; maxMerges: number; targetTotal: number; minCount: number;
    isValidPairs: (a: Int32Array, b: Int32Array) => Uint8Array; onMerge: (a: number, b: number, id: number, count: number) => void;
  }): {
    tokens: Int32Array; starts: Int32Array; offsets: Float64Array;
    mergeA: Int32Array; mergeB: Int32Array; mergeCount: Float64Array; mergeApplied: Float64Array;
  };
  /** Batched OMP (native/text/omp.h): atoms f32 [nAtoms, dim], targets f32 [nTargets, dim] -> outIndices i32 / outCoeffs f32 [nTargets, k], outCounts i32 [nTargets]. */
  ompBatch(p: NativeOmpParams): void;
  ompBatchAsync(p: NativeOmpParams, onProgress?: (targetsDone: number) => void): Promise<void>;
  // Supertokens (native/text/bpe_merges.h, lib/tokenizer/supertokens.ts). Offsets are Int32Array [n + 1] from 0.
  /** Rank-ordered BPE of each piece: merges int32 [m, 3] (left, right, result), rank = row; byteIds [256]. ends [pieces] index ids. */
  bpeEncodePieces(p: { merges: Int32Array; nIds: number; byteIds: Int32Array; bytes: Uint8Array; pieceOffsets: Int32Array }): { ids: Int32Array; ends: Int32Array };
  /** Adjacent-pair counts inside chunks weighted by counts [chunks], sorted by (left, right). */
  countTokenPairs(p: { tokens: Int32Array; offsets: Int32Array; counts: Int32Array; nIds: number }): { left: Int32Array; right: Int32Array; count: Float64Array };
  /** Learns up to nMerges merges; pairs int32 [merges, 2] (new id = vocabulary size + k), counts [merges]. onProgress(done) false stops. */
  trainSuperMerges(p: {
    tokens: Int32Array; offsets: Int32Array; counts: Int32Array; vocabBytes: Uint8Array; vocabOffsets: Int32Array;
    nMerges: number; maxWords: number; minCount: number; onProgress?: (done: number) => boolean | void;
  }): { pairs: Int32Array; counts: Float64Array };
  /** trainSuperMerges off the main thread (inputs copied first); onProgress's return value is ignored. */
  trainSuperMergesAsync(p: {
    tokens: Int32Array; offsets: Int32Array; counts: Int32Array; vocabBytes: Uint8Array; vocabOffsets: Int32Array;
    nMerges: number; maxWords: number; minCount: number; onProgress?: (done: number) => void;
  }): Promise<{ pairs: Int32Array; counts: Float64Array }>;
  // visual-token pruning, group select (lib/vision/{divprune,vtc-cls,fastv,globalcom2}.ts; native/reduce/)
  reduceDivPrune(p: NativeDivPruneParams): void;
  reduceDivPruneAsync(p: NativeDivPruneParams): Promise<void>;
  reduceClsRank(p: NativeClsRankParams): void;
  reduceClsRankAsync(p: NativeClsRankParams): Promise<void>;
  reduceFastvRank(p: NativeFastvRankParams): void;
  reduceFastvRankAsync(p: NativeFastvRankParams): Promise<void>;
  reduceGlobalCom2(p: NativeGlobalCom2Params): void;
  reduceGlobalCom2Async(p: NativeGlobalCom2Params): Promise<void>;
  // Visual-token reduction, ToMe group (lib/vision/tome.ts, pool.ts, transform.ts).
  /** One ToMe step per frame: x f32 [t, n, d], metric f32 [t, n, dm]?, sizes f32 [t, n]? -> outX [t, m, d], outSizes [t, m], outAssignment i32 [t, n]. */
  reduceTome(p: NativeTomeParams): void;
  reduceTomeAsync(p: NativeTomeParams): Promise<void>;
  /** LLaVolta average pooling: x [t, n, d] -> outX [t, floor(n / stride), d], outSizes, outPositions?, outAssignment [t, n]. */
  reducePool(p: NativePoolParams): void;
  reducePoolAsync(p: NativePoolParams): Promise<void>;
  /** Token Transforming W: x [t, n, d], targets i32 [t, m] -> outW f32 [t, m, n] (columns sum to 1). */
  reduceTransformBuild(p: NativeTransformBuildParams): void;
  reduceTransformBuildAsync(p: NativeTransformBuildParams): Promise<void>;
  /** Y = W-weighted means: w [t, m, n], x [t, n, d], sizes [t, n]? -> outX [t, m, d], outSizes [t, m], outAssignment [t, n]. */
  reduceTransformApply(p: NativeTransformApplyParams): void;
  reduceTransformApplyAsync(p: NativeTransformApplyParams): Promise<void>;
  // Visual-token reduction, clustering group (native/reduce/{kmeans,recoverable,corematch}.h; lib/vision/{vqtoken,recoverable,corematching}.ts).
  /** VQToken k-means: tokens f32 [rows, dim] -> outCodebook [cap, dim], outCounts [cap], outCodes [rows], outInfo [K used, iterations]. */
  vqToken(p: NativeVqTokenParams): void;
  vqTokenAsync(p: NativeVqTokenParams): Promise<void>;
  /** Recoverable Compression per frame; outCounts [frames, 3] = rows, kept, centres. Exactly one of text / textScores. */
  recoverableCompress(p: NativeRecoverableParams): void;
  recoverableCompressAsync(p: NativeRecoverableParams): Promise<void>;
  /** CoreMatching per sequence: co-activation scores of the image span with the query row, keep = score > elbow. */
  coreMatch(p: NativeCoreMatchParams): void;
  coreMatchAsync(p: NativeCoreMatchParams): Promise<void>;
  /** Token-correlation compression per crop: outKeep [frames, n], outInfo [frames, 2] = kept, repetitive. */
  tokenCorr(p: NativeTokenCorrParams): void;
  tokenCorrAsync(p: NativeTokenCorrParams): Promise<void>;
  // Vision kernels (issue 19; native/cuda/cuda_reduce.h, native/reduce/reduce_device_model.cpp). Internal: tests, benchmarks.
  /** op 0 normalize, 1 dot, 2 tome, 3 divprune, 4 kmeans, 5 topk; device 0 host model, 1 CUDA (ERR_NO_CUDA without), 2 auto. */
  visionKernels(p: NativeVisionKernelParams): NativeVisionKernelResult;
}

/** tokens f32 [t, n, dim] -> out i32 [t, keep] (ascending per frame). */
export interface NativeDivPruneParams { tokens: Float32Array; t: number; n: number; dim: number; keep: number; metricDim: number; out: Int32Array }
/** attention f32 [t, layers, n] -> scores f32 [t, n] (sum over layers [start, end)), out i32 [t, keep]. */
export interface NativeClsRankParams {
  attention: Float32Array; t: number; layers: number; n: number; start: number; end: number; keep: number; scores: Float32Array; out: Int32Array;
}
/** probs f32 [t, heads, nk] -> scores f32 [t, length] (head mean over the span), out i32 [t, keep] absolute positions. */
export interface NativeFastvRankParams {
  probs: Float32Array; t: number; heads: number; nk: number; start: number; length: number; keep: number; scores: Float32Array; out: Int32Array;
}
/** native/reduce/globalcom2.h: thumb f32 [side^2], crops f32 [nph * npw, h * w] -> the keeps. */
export interface NativeGlobalCom2Params {
  thumb: Float32Array; side: number; crops: Float32Array; nph: number; npw: number; h: number; w: number; base: number; temperature: number;
  thumbKeep: Int32Array; scales: Float64Array; cropCounts: Int32Array; cropKeep: Int32Array; cropScores: Float32Array;
}

export interface NativeTokenCorrParams {
  keys: Float32Array; frames: number; n: number; keyDim: number; deep: Float32Array; shallow: Float32Array; simThreshold: number;
  countLimit: number; iqrFactor: number; seed: number; projectDim: number; outKeep: Uint8Array; outInfo: Float64Array;
}

export interface NativeVqTokenParams {
  tokens: Float32Array; rows: number; dim: number; k: number; maxIter: number; tol: number; seed: number; adaptive: boolean; maxK: number;
  outCodebook: Float32Array; outCounts: Float32Array; outCodes: Int32Array; outInfo: Int32Array;
}
export interface NativeRecoverableParams {
  tokens: Float32Array; frames: number; n: number; dim: number; keys: Float32Array | undefined; keyDim: number; cls: Float32Array;
  text: Float32Array | undefined; textScores: Float32Array | undefined; lofNeighbors: number; lofThreshold: number; clusterSize: number;
  textWeight: number; outTokens: Float32Array; outSizes: Float32Array; outAssignment: Int32Array; outMain: Int32Array; outCentres: Int32Array;
  outCounts: Int32Array; outTextScores: Float32Array;
}
export interface NativeCoreMatchParams {
  activations: Float32Array; up: Float32Array | undefined; frames: number; rows: number; inter: number; query: number; start: number; len: number;
  outScores: Float32Array; outKeep: Uint8Array; outThreshold: Float64Array;
}

/** visionKernels params (shapes in native/cuda/cuda_reduce.h); the binding re-checks every length. */
export interface NativeVisionKernelParams {
  op: 0 | 1 | 2 | 3 | 4 | 5;
  device: 0 | 1 | 2;
  x: Float32Array;
  n: number;
  d?: number;
  b?: Float32Array;
  nb?: number;
  normalize?: boolean;
  tokens?: Float32Array;
  dt?: number;
  sizes?: Float32Array;
  r?: number;
  protectFirst?: boolean;
  k?: number;
  rows?: number;
}

/** visionKernels result: which ran, the device time (ms, copies included; 0 on the CPU) and the op's outputs. */
export interface NativeVisionKernelResult {
  device: 'cpu' | 'cuda';
  kernelMs: number;
  out?: Float32Array;
  outSizes?: Float32Array;
  nodeMax?: Float32Array;
  nodeIdx?: Int32Array;
  idx?: Int32Array;
  counts?: Int32Array;
}

/** Params of ompBatch (lib/tokenizer/omp.ts); the binding re-checks every length. */
export interface NativeOmpParams {
  atoms: Float32Array;
  nAtoms: number;
  targets: Float32Array;
  nTargets: number;
  dim: number;
  k: number;
  gramCacheBytes: number;
  outIndices: Int32Array;
  outCoeffs: Float32Array;
  outCounts?: Int32Array;
}

/** An opaque tokenizer-core handle (an External checked by type tag). */
export type NativeTokCore = { readonly __tokCore: unique symbol };

/** A bandwidth measurement: the best rep and how it was obtained. */
export interface NativeBandwidth {
  bytesPerS: number;
  /** The loop of the best rep: avx512, avx512-prefetch, avx2, sse2, scalar, memcpy, avx512-nt, ... */
  loop: string;
  /** madvise(MADV_HUGEPAGE) accepted on the array. */
  hugePages: boolean;
  /** Reps whose threads all passed the start barrier together. */
  concurrentReps: number;
  /** Threads used (capped at the pool size). */
  threads: number;
}

/**
 * q, out: Float32Array [nHeads, headDim]; k, v: [nKvHeads, nKv, headDim],
 * Float32Array (kvDtype 0) or f16 bits in a Uint16Array (kvDtype 1).
 * isa: -1 the active ISA, 0 scalar, 1 avx2, 2 avx512. headDim <= 256.
 */
export interface NativeRooflineDecodeParams {
  q: Float32Array;
  k: Float32Array | Uint16Array;
  v: Float32Array | Uint16Array;
  out: Float32Array;
  kvDtype: 0 | 1;
  nHeads: number;
  nKvHeads: number;
  nKv: number;
  headDim: number;
  scale: number;
  isa: -1 | 0 | 1 | 2;
  threads: number;
}

/** Options of the adaptive (context-mixing) coder; the binding re-checks them. */
export interface NativeCmOptions {
  memoryLog2?: number; // integer in [16, 30]
}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new TokenpressError('ERR_NATIVE_LOAD', 'tokenpress: cannot find the package root (binding.gyp)');
    dir = up;
  }
}

let addon: NativeAddon | undefined;

/** Loads the addon once (build/Release or prebuilds/, via node-gyp-build). */
export function native(): NativeAddon {
  if (addon) return addon;
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    addon = load(root);
  } catch (cause) {
    throw new TokenpressError(
      'ERR_NATIVE_LOAD',
      `tokenpress: the native addon could not be loaded from ${root} (run \`npm ci\` or \`npm run build:native\`): ${(cause as Error).message}`,
      { cause },
    );
  }
  return addon;
}

/** Token-level Kneser-Ney (native/text/token_kn.h): the model is the caller's { blob, discounts }. */
export interface NativeTokenKn {
  tokenKnTrain(p: { tokens: Uint32Array; vocab: number; order: number }): { blob: Uint32Array; discounts: Float64Array };
  /** out [vocab] = P(. | context); throws a RangeError on a damaged model or an id >= vocab. */
  tokenKnNext(p: { blob: Uint32Array; discounts: Float64Array; context: Uint32Array; out: Float64Array }): void;
}

// Visual-token reduction, ToMe group (native/reduce/tome.h, pool.h, transform.h; lib/vision/tome.ts,
// pool.ts, transform.ts). The binding re-checks every length; outputs may not overlap inputs.

export interface NativeTomeParams {
  x: Float32Array; metric?: Float32Array; sizes?: Float32Array;
  t: number; n: number; d: number; dm: number; r: number; classToken: boolean; sketchDim: number;
  outX: Float32Array; outSizes: Float32Array; outAssignment: Int32Array;
}
export interface NativePoolParams {
  x: Float32Array; sizes?: Float32Array; positions?: Int32Array;
  t: number; n: number; d: number; stride: number;
  outX: Float32Array; outSizes: Float32Array; outPositions?: Int32Array; outAssignment: Int32Array;
}
export interface NativeTransformBuildParams {
  x: Float32Array; targets: Int32Array; t: number; m: number; n: number; d: number; topK: number; tau: number; sketchDim: number; outW: Float32Array;
}
export interface NativeTransformApplyParams {
  w: Float32Array; x: Float32Array; sizes?: Float32Array; t: number; m: number; n: number; d: number;
  outX: Float32Array; outSizes: Float32Array; outAssignment: Int32Array;
}
