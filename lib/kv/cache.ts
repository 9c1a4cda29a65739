/**
 * KvCache: a native KV cache (memory outside the JS heap) with per-(layer,
 * head) lengths, original positions, attention over the stored tokens,
 * in-place compression, and KIVI int8/int4 quantization.
 *
 *   append k, v   f32|f16|bf16 [nKvHeads, n, headDim]   (strides allowed)
 *   attend q      f32          [nHeads, nQ, headDim]  -> out f32 [nHeads, nQ, headDim]
 *   export        k, v [nKvHeads, maxLen, headDim], positions i32 [nKvHeads, maxLen]
 *   lengths       i32 [nLayers, nKvHeads]
 * GQA: nHeads % nKvHeads == 0; query head h reads KV head h / (nHeads / nKvHeads).
 * append and attend take onnxruntime / transformers.js Tensors too
 * (TensorLike), with a leading batch dimension of 1 or without; see
 * lib/interop/ort.ts to feed export() to an ONNX session and append present.*.
 *
 * One operation runs at a time: async calls queue in order; a sync call made
 * while an async one is pending throws TokenpressError ERR_CACHE_BUSY.
 *
 * device 'cuda' keeps K/V in GPU memory (CUDA build with a device present;
 * otherwise the cache runs on the CPU with the same results, and `device`
 * says 'cpu'). On the device: f16/bf16 caches with headDim 64/128/256;
 * append, attend (with key mass, and Quest sparse attends), export, and
 * compress with streamingllm, knorm, h2o, tova or snapkv scoring under
 * uniform, pyramid or adakv budgets.
 * Other requests throw an Error with code ERR_UNSUPPORTED (they run on a CPU
 * cache), with or without a device, so code behaves the same everywhere.
 * Device failures throw code ERR_CUDA (or ERR_OUT_OF_MEMORY); the process
 * survives and a failed call leaves the cache as it was.
 */
import {
  CACHE_DTYPE_CODE, DTYPE_CODE, native,
  type NativeCompressReport, type NativeKvAppendParams, type NativeKvAttendParams, type NativeKvCacheHandle, type NativeKvCompressParams, type NativeKvExportParams,
} from '../native.js';
import { rangeError, TokenpressError, typeError } from '../errors.js';
import type { FloatDType, Tensor, TensorLike } from '../tensor.js';
import { checkBoolean, checkInteger, checkNoOverlap, checkNumber, checkOptions, checkTensor, plainRows } from '../validate.js';
import { checkAutoPolicyFits, resolveCompression, type KvCompressionPolicy, type ResolvedCompression } from './compression.js';
import { budgetToKeep, type KvBudget } from './stateless.js';
import { checkDeviceAttend, checkDeviceCompression, checkDeviceConfig, unsupported } from './device.js';
import { readOptions } from '../sparse/options.js';
import { resolveSparse, sparseHeader, type SparseOptions } from '../sparse/quest.js';
import { tidalRole, tidalSchedule, type TidalRole } from '../sparse/tidal.js';
import { checkHeadsHold, checkTreeLength, readAcceptedNodes, readLayers, readTreeMask } from './spec.js';

export type KvCacheDtype = keyof typeof CACHE_DTYPE_CODE;

/**
 * Decoding-time compression: keep each layer under `budget` as tokens arrive.
 * A policy that scores with queries (snapkv, tova, ...) starts once attend()
 * has given the layer queries to remember; until then the layer only grows.
 */
export interface AutoCompressOptions {
  policy: KvCompressionPolicy;
  /** Tokens per head to compress down to. */
  budget: { keep: number };
  /**
   * Compress a layer once one of its heads holds budget.keep + interval
   * tokens (kvpress's compression_interval); default 64. 1 = every token
   * (StreamingLLM's rolling window).
   */
  interval?: number;
}

export interface KvCacheOptions {
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  /** Most tokens one (layer, head) may hold; default 2^31 - 1 (no limit but memory). Memory grows as tokens arrive. */
  capacity?: number;
  /** Storage type; default 'f16'. int8 / int4 are KIVI-style. */
  dtype?: KvCacheDtype;
  /** int8/int4: tokens per key group and channels per value group; default 32. */
  groupSize?: number;
  /** int8/int4: newest tokens kept in f16 until a group fills; default 128. */
  residual?: number;
  /** Queries remembered per layer (from attend) for query-based policies; default 32. */
  window?: number;
  /**
   * Tokens per (layer, head) to allocate storage for now, pages populated
   * (CPU cache; default 0): appends up to this length never grow storage,
   * so no append pays a growth (see docs/kv-cache.md). Kept through clear()
   * and compression. 0 to capacity; memory is reserve x the per-token size
   * from the start.
   */
  reserve?: number;
  autoCompress?: AutoCompressOptions;
  /**
   * int8/int4 caches: tokens that commit() / rollback() may drop while
   * restoring the quantized groups and the f16 residual window bit for bit
   * (the cache keeps f16 copies of the newest ceil(speculative / groupSize)
   * + 1 groups per head). Default 0: a dropped tree that crossed a group
   * boundary gives those rows back from their quantized values. Float
   * caches ignore it (always exact).
   */
  speculative?: number;
  /**
   * Where K/V live: 'cpu' (default) or 'cuda' (GPU memory when a CUDA
   * device is present, else the CPU; see the `device` property).
   */
  device?: KvCacheDevice;
}

export type KvCacheDevice = 'cpu' | 'cuda';
const DEVICES: readonly KvCacheDevice[] = ['cpu', 'cuda'];

export interface AttendOptions {
  /** default 1/sqrt(headDim) */ scale?: number;
  /** default 0 (off) */ softcap?: number;
  /** The queries are the newest nQ tokens of each head; default true. */ causal?: boolean;
  /** Add each key's attention mass to its H2O accumulator; default false. */ accumulateMass?: boolean;
  /** Remember these queries as the layer's observation window; default true. */ remember?: boolean;
  /** Also return the log-sum-exp [nHeads, nQ]; default false. */ returnLse?: boolean;
  /** Write the output here (nHeads * nQ * headDim floats). */ out?: Float32Array;
  /**
   * Sparse attention: attend only the tokens a method selects per KV head
   * (docs/sparse.md). `{ method: 'quest', budget }`: Quest page selection
   * from page summaries the cache keeps beside each layer's keys (built by
   * the layer's first sparse attend, then kept up to date by append,
   * compress and clear). `{ method: 'blocks', budget }`: block retrieval
   * (mean key + Quest bound per block of 64). `{ method: 'tidal', budget }`:
   * TidalDecode across the layers of a decode step (full layers, a
   * selection layer, attention over the kept positions; see beginStep).
   * CPU caches only.
   */
  sparse?: SparseOptions;
  /**
   * With `sparse`: also return the rows each KV head attended; default
   * false. TidalDecode: at a full layer every row; at a selection or
   * re-selection layer (which attends every row) the positions it kept for
   * the following layers; elsewhere the kept positions it attended.
   */
  returnSelected?: boolean;
  /**
   * Speculative decoding: the nQ queries are the newest nQ tokens of each
   * head and form a tree, given as a parent array of length nQ (Int32Array
   * or number[]): parents[i] = -1 for a root, else an earlier node's index.
   * Node i attends every older token of its head plus its ancestors and
   * itself (with `causal`, the tree replaces the causal rule inside the
   * newest nQ tokens). Dense attends only (not with `sparse`), and the tree
   * leaves no trace: `accumulateMass` and `remember` must be false
   * (`remember` defaults to false here). Then commit() or rollback().
   */
  treeMask?: Int32Array | readonly number[];
}

/** Options of KvCache.commit. */
export interface CommitOptions {
  /** The newest treeSize tokens of every (layer, head) are the verified tree. */
  treeSize: number;
  /** Layers to change; default all. */
  layers?: number[];
}

export interface AttendResult {
  output: Tensor<'f32'>;
  lse?: Tensor<'f32'>;
  /**
   * With sparse and returnSelected: i32 [nKvHeads, nSel], the cache rows
   * (indices into each head's stored tokens, as exportLayer orders them)
   * each KV head attended, ascending; -1 padded where a head attended fewer.
   */
  selected?: Tensor<'i32'>;
}

/** A layer's Quest page summaries (KvCache.questSummaries), decoded to f32. */
export interface QuestCacheSummaries {
  /** 0 when the layer has none yet (no sparse attend on it). */
  pageSize: number;
  /** kmin, kmax f32 [nKvHeads, pages, headDim]: pages = ceil(longest head / pageSize), 0 padded. */
  kmin: Tensor<'f32'>;
  kmax: Tensor<'f32'>;
  /** Block retrieval layers (sparse method 'blocks'): the mean key of each block, f32, kmin's shape. */
  kmean?: Tensor<'f32'>;
  /** Pages per head [nKvHeads]. */
  headPages: Int32Array;
  /** Memory the layer's summaries hold, bytes (included in memoryBytes). */
  bytes: number;
}

export interface CompressOptions {
  /** Layers to compress; default all. */ layers?: number[];
  /**
   * speckv: draft / lookahead queries per layer, f32 [nHeads, nDraft, headDim]
   * (nLayers entries; undefined for layers without). They attend every key.
   */
  draftQueries?: (TensorLike<'f32'> | undefined)[];
}

/** What a compress call did, over the whole cache (see NativeCompressReport). */
export type CompressReport = NativeCompressReport;

export interface ExportedLayer {
  /** [nKvHeads, maxLen, headDim], zero padded past each head's length. */
  k: Tensor<FloatDType>;
  v: Tensor<FloatDType>;
  /** Original positions [nKvHeads, maxLen], -1 padded. */
  positions: Tensor<'i32'>;
  /** Tokens per head [nKvHeads]. */
  lengths: Int32Array;
  /**
   * How many original tokens each row stands for, f32 [nKvHeads, maxLen]
   * (1 unless merged; 0 padded). attend() adds log(count) to a row's logit;
   * add it as an additive mask when attending over the export elsewhere.
   */
  counts: Tensor<'f32'>;
}

const OPTION_NAMES = ['nLayers', 'nKvHeads', 'headDim', 'capacity', 'dtype', 'groupSize', 'residual', 'window', 'reserve', 'autoCompress', 'device', 'speculative'] as const;
const FLOAT_TYPES: FloatDType[] = ['f32', 'f16', 'bf16'];

/** An append that compresses its layer in the same call (native/kv/kv_cache.h AppendInput.compress). */
type AutoAppendParams = NativeKvAppendParams & { compress: NativeKvCompressParams; compressAt: number };

interface ResolvedAuto {
  params: Omit<NativeKvCompressParams, 'layers'>;
  needsQueries: boolean;
  keep: number;
  interval: number;
}

export class KvCache {
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly capacity: number;
  readonly dtype: KvCacheDtype;
  /** Where K/V live: 'cuda' only when a device was asked for and is present. */
  readonly device: KvCacheDevice;
  readonly #handle: NativeKvCacheHandle;
  /** device 'cuda' was asked for: its rules apply (lib/kv/device.ts). */
  readonly #deviceRules: boolean;
  readonly #auto: ResolvedAuto | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** Layers whose attend calls gave the cache queries to score with. */
  readonly #hasQueries: boolean[] = [];
  #pending = 0;

  constructor(options: KvCacheOptions) {
    const o = checkOptions('options', options, OPTION_NAMES) as Partial<KvCacheOptions>;
    if (options === undefined) throw typeError('options', '{ nLayers, nKvHeads, headDim, capacity?, dtype? }', options);
    this.nLayers = checkInteger('options.nLayers', o.nLayers, 1, 4096);
    this.nKvHeads = checkInteger('options.nKvHeads', o.nKvHeads, 1, 4096);
    this.headDim = checkInteger('options.headDim', o.headDim, 1, 65536);
    this.capacity = o.capacity === undefined ? 0x7fffffff : checkInteger('options.capacity', o.capacity, 1, 0x7fffffff);
    const dtype = o.dtype ?? 'f16';
    if (!(dtype in CACHE_DTYPE_CODE)) throw typeError('options.dtype', "'f32' | 'f16' | 'bf16' | 'int8' | 'int4'", dtype);
    this.dtype = dtype;
    const groupSize = o.groupSize === undefined ? 32 : checkInteger('options.groupSize', o.groupSize, 1, 4096);
    const residual = o.residual === undefined ? 128 : checkInteger('options.residual', o.residual, 0, 0x7fffffff);
    const window = o.window === undefined ? 32 : checkInteger('options.window', o.window, 1, 4096);
    const reserve = o.reserve === undefined ? 0 : checkInteger('options.reserve', o.reserve, 0, this.capacity);
    const speculative = o.speculative === undefined ? 0 : checkInteger('options.speculative', o.speculative, 0, this.capacity);
    const device = o.device ?? 'cpu';
    if (typeof device !== 'string') throw typeError('options.device', "'cpu' | 'cuda'", device);
    if (!DEVICES.includes(device)) throw rangeError('options.device', "'cpu' | 'cuda'", device);
    this.#deviceRules = device === 'cuda';
    if (this.#deviceRules) checkDeviceConfig(dtype, this.headDim);
    this.#auto = o.autoCompress === undefined ? undefined : this.#resolveAuto(o.autoCompress, window);
    this.#handle = new (native().KvCacheHandle)({
      nLayers: this.nLayers, nKvHeads: this.nKvHeads, headDim: this.headDim, capacity: this.capacity,
      dtype: CACHE_DTYPE_CODE[dtype], groupSize, residual, window, device: DEVICES.indexOf(device), reserve, speculative,
    });
    this.device = this.#handle.device();
  }

  #resolveAuto(value: unknown, window: number): ResolvedAuto {
    const a = checkOptions('options.autoCompress', value, ['policy', 'budget', 'interval']) as Partial<AutoCompressOptions>;
    if (value === null || typeof value !== 'object') throw typeError('options.autoCompress', '{ policy, budget: { keep }, interval? }', value);
    const b = checkOptions('options.autoCompress.budget', a.budget, ['keep']);
    if (a.budget === undefined) throw typeError('options.autoCompress.budget', '{ keep: n }', a.budget);
    const keep = checkInteger('options.autoCompress.budget.keep', b.keep, 1, this.capacity - 1);
    const interval = a.interval === undefined ? 64 : checkInteger('options.autoCompress.interval', a.interval, 1);
    if (keep + interval > this.capacity) {
      throw rangeError('options.autoCompress.interval', `budget.keep + interval <= capacity = ${this.capacity}`, interval);
    }
    const params = { ...resolveCompression(a.policy, this.nLayers, this.nKvHeads), keep, ratio: -1 };
    if (this.#deviceRules) checkDeviceCompression(params);
    this.#checkBudgetFits(params, keep, 'options.autoCompress.budget');
    checkAutoPolicyFits(params, keep, window);
    // Every scorer but these reads queries or the key mass that attend() accumulates.
    const needsQueries = params.allocation !== 3 && !['streamingllm', 'knorm', 'random'].includes(params.policy);
    return { params, keep, interval, needsQueries };
  }

  #checkLayer(layer: unknown): number {
    return checkInteger('layer', layer, 0, this.nLayers - 1);
  }

  #idle(): void {
    if (this.#pending > 0) {
      throw new TokenpressError('ERR_CACHE_BUSY', 'KvCache: async operations on this cache are pending; await them before a sync call');
    }
  }

  /** Runs async operations one after another, in call order. */
  #enqueue<T>(run: () => Promise<T>): Promise<T> {
    this.#pending++;
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next.finally(() => { this.#pending--; });
  }

  #appendParams(layer: unknown, k: unknown, v: unknown, opts: unknown): NativeKvAppendParams {
    const o = checkOptions('opts', opts, ['positions']) as { positions?: unknown };
    const l = this.#checkLayer(layer);
    const kt = checkTensor('k', k, FLOAT_TYPES, ['nKvHeads', 'n', 'headDim']);
    const vt = checkTensor('v', v, FLOAT_TYPES, ['nKvHeads', 'n', 'headDim']);
    const [h, n, d] = kt.shape as [number, number, number];
    if (h !== this.nKvHeads) throw rangeError('k.shape[0] (nKvHeads)', `the cache's nKvHeads = ${this.nKvHeads}`, h);
    if (d !== this.headDim) throw rangeError('k.shape[2] (headDim)', `the cache's headDim = ${this.headDim}`, d);
    if (vt.shape[0] !== h || vt.shape[1] !== n || vt.shape[2] !== d) {
      throw rangeError('v.shape', `[${h}, ${n}, ${d}] (the shape of k)`, `[${vt.shape.join(', ')}]`);
    }
    const p: NativeKvAppendParams = {
      layer: l, n,
      k: kt.data as Float32Array | Uint16Array, kDtype: DTYPE_CODE[kt.dtype], kStrides: [kt.strides[0]!, kt.strides[1]!],
      v: vt.data as Float32Array | Uint16Array, vDtype: DTYPE_CODE[vt.dtype], vStrides: [vt.strides[0]!, vt.strides[1]!],
    };
    if (o.positions !== undefined) {
      if (!(o.positions instanceof Int32Array)) throw typeError('opts.positions', `an Int32Array of ${n} positions`, o.positions);
      if (o.positions.length !== n) throw rangeError('opts.positions.length', `n = ${n}`, o.positions.length);
      p.positions = o.positions;
    }
    return p;
  }

  /**
   * The decode loop's append (CPU cache, no options, no autoCompress, plain
   * contiguous k and v): validated by plainRows without allocating, then the
   * positional binding. False when k or v is any other form (or the layer is
   * not a valid index): the general path then checks and names the problem.
   */
  #appendPlain(layer: unknown, k: unknown, v: unknown): boolean {
    if (typeof layer !== 'number' || !Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) return false;
    const kr = plainRows(k, this.nKvHeads, this.headDim);
    if (kr === undefined) return false;
    const kData = kr.data, kDtype = DTYPE_CODE[kr.dtype], n = kr.n;
    const vr = plainRows(v, this.nKvHeads, this.headDim);
    if (vr === undefined || vr.n !== n) return false;
    const d = this.headDim;
    try {
      this.#handle.appendRows(layer, n, kData, kDtype, n * d, d, vr.data, DTYPE_CODE[vr.dtype], n * d, d);
    } catch (e) {
      this.#checkCapacity(layer, n);
      throw e;
    }
    return true;
  }

  /**
   * Layers whose longest head reaches the auto-compression trigger. A policy
   * that scores with queries waits until attend() has given the layer some.
   */
  #autoLayers(layer: number, incoming: number): number[] {
    if (!this.#auto) return [];
    if (this.#auto.needsQueries && !this.#hasQueries[layer]) return [];
    const len = this.#handle.maxLength(layer);
    return len + incoming >= this.#auto.keep + this.#auto.interval || len + incoming > this.capacity ? [layer] : [];
  }

  #checkCapacity(layer: number, n: number): void {
    const len = this.#handle.maxLength(layer);
    const canMakeRoom = this.#auto && this.#auto.keep + n <= this.capacity && !(this.#auto.needsQueries && !this.#hasQueries[layer]);
    if (len + n > this.capacity && !canMakeRoom) {
      throw rangeError('k.shape[1] (n)', `at most ${this.capacity - len} tokens (layer ${layer} holds ${len} of capacity ${this.capacity})`, n);
    }
  }

  /**
   * Appends n tokens to every head of `layer`. Positions continue the layer's
   * count unless opts.positions (Int32Array [n]) gives them (counting past
   * 2^31 - 1 is refused). k and v must be finite. With autoCompress, the
   * layer is compressed in the same call once a head reaches budget.keep +
   * interval tokens or the new tokens would overflow the capacity; if that
   * compression fails, the append is undone. A failed append changes nothing.
   */
  append(layer: number, k: TensorLike<FloatDType>, v: TensorLike<FloatDType>, opts?: { positions?: Int32Array }): void {
    this.#idle();
    if (opts === undefined && this.device !== 'cuda' && !this.#auto && this.#appendPlain(layer, k, v)) return;
    const p = this.#appendParams(layer, k, v, opts);
    if (this.device !== 'cuda') {
      const withAuto = this.#withAuto(p);
      if (withAuto === p) {
        // The hot decode path: positional (nothing to snapshot), and the
        // capacity is checked natively; on a refusal the TS check below names
        // it as before (a failed append changed nothing).
        try {
          this.#handle.appendRows(p.layer, p.n, p.k, p.kDtype, p.kStrides[0], p.kStrides[1], p.v, p.vDtype, p.vStrides[0], p.vStrides[1], p.positions);
        } catch (e) {
          this.#checkCapacity(p.layer, p.n);
          throw e;
        }
        return;
      }
      this.#checkCapacity(p.layer, p.n);
      this.#handle.append(withAuto);
      return;
    }
    this.#checkCapacity(p.layer, p.n);
    if (this.#auto && this.#handle.maxLength(p.layer) + p.n > this.capacity && this.#autoLayers(p.layer, p.n).length) {
      this.#handle.compress({ ...this.#auto.params, layers: Int32Array.of(p.layer) });
    }
    this.#handle.append(p);
    const layers = this.#autoLayers(p.layer, 0);
    if (layers.length) this.#handle.compress({ ...this.#auto!.params, layers: Int32Array.from(layers) });
  }

  /** append, off the event loop. */
  appendAsync(layer: number, k: TensorLike<FloatDType>, v: TensorLike<FloatDType>, opts?: { positions?: Int32Array }): Promise<void> {
    const p = this.#appendParams(layer, k, v, opts);
    return this.#enqueue(async () => {
      this.#checkCapacity(p.layer, p.n);
      if (this.device !== 'cuda') {
        await this.#handle.appendAsync(this.#withAuto(p));
        return;
      }
      if (this.#auto && this.#handle.maxLength(p.layer) + p.n > this.capacity && this.#autoLayers(p.layer, p.n).length) {
        await this.#handle.compressAsync({ ...this.#auto.params, layers: Int32Array.of(p.layer) });
      }
      await this.#handle.appendAsync(p);
      const layers = this.#autoLayers(p.layer, 0);
      if (layers.length) await this.#handle.compressAsync({ ...this.#auto!.params, layers: Int32Array.from(layers) });
    });
  }

  /**
   * CPU caches: the append carries the autoCompress request, and the native
   * cache compresses the layer in the same call once its longest head reaches
   * keep + interval (or overflows the capacity), undoing the append if the
   * compression fails: a failed append changes nothing. A policy that scores
   * with queries waits until attend() has given the layer some.
   */
  #withAuto(p: NativeKvAppendParams): NativeKvAppendParams {
    const a = this.#auto;
    if (!a || (a.needsQueries && !this.#hasQueries[p.layer])) return p;
    const auto: AutoAppendParams = { ...p, compress: { ...a.params, layers: Int32Array.of(p.layer) }, compressAt: a.keep + a.interval };
    return auto;
  }

  #attendParams(layer: unknown, q: unknown, opts: unknown): { p: NativeKvAttendParams; shape: number[] } {
    // Every option read once (a getter runs once: what is checked is what is used).
    const o = readOptions('opts', opts, ['scale', 'softcap', 'causal', 'accumulateMass', 'remember', 'returnLse', 'out', 'sparse', 'returnSelected', 'treeMask']) as AttendOptions;
    const l = this.#checkLayer(layer);
    // The sparse options (their getters, Proxy traps, layer lists) before the
    // arrays are checked: nothing the caller runs comes after a check.
    const sparse = o.sparse === undefined ? undefined : resolveSparse('opts.sparse', o.sparse);
    let role: TidalRole = 0;
    if (sparse?.method === 'tidal') role = tidalRole(tidalSchedule('opts.sparse', sparse, this.nLayers), l);
    const tree = o.treeMask === undefined ? undefined : readTreeMask('opts.treeMask', o.treeMask);
    const qt = checkTensor('q', q, ['f32'] as const, ['nHeads', 'nQ', 'headDim']);
    const [nHeads, nQ, d] = qt.shape as [number, number, number];
    if (d !== this.headDim) throw rangeError('q.shape[2] (headDim)', `the cache's headDim = ${this.headDim}`, d);
    if (nHeads < 1 || nHeads % this.nKvHeads !== 0) throw rangeError('q.shape[0] (nHeads)', `a multiple of nKvHeads = ${this.nKvHeads}`, nHeads);
    if (nQ < 1) throw rangeError('q.shape[1] (nQ)', 'at least 1 query', nQ);
    if (tree) checkTreeLength('opts.treeMask', tree, nQ);
    const n = nHeads * nQ * d;
    let out: Float32Array;
    if (o.out !== undefined) {
      if (!(o.out instanceof Float32Array)) throw typeError('opts.out', `a Float32Array of ${n} elements`, o.out);
      if (o.out.length !== n) throw rangeError('opts.out.length', `${n} (nHeads * nQ * headDim)`, o.out.length);
      checkNoOverlap([['opts.out', o.out]], [['q.data', qt.data as Float32Array]]);
      out = o.out;
    } else {
      out = new Float32Array(n);
    }
    const scale = o.scale === undefined ? 0 : checkNumber('opts.scale', o.scale, { positive: true });
    const softcap = o.softcap === undefined ? 0 : checkNumber('opts.softcap', o.softcap);
    if (softcap < 0) throw rangeError('opts.softcap', 'a number >= 0 (0 = off)', softcap);
    const p: NativeKvAttendParams = {
      layer: l, nHeads, nQ, q: qt.data as Float32Array, qStrides: [qt.strides[0]!, qt.strides[1]!],
      scale, softcap,
      causal: checkBoolean('opts.causal', o.causal, true),
      accumulateMass: checkBoolean('opts.accumulateMass', o.accumulateMass, false),
      remember: checkBoolean('opts.remember', o.remember, !tree),
      out,
    };
    if (tree) {
      // Rejected nodes must leave nothing behind: no key mass, no remembered queries.
      if (sparse) throw typeError('opts.treeMask', 'a dense attend (not with opts.sparse)', `opts.sparse.method '${sparse.method}'`);
      if (p.accumulateMass) throw typeError('opts.accumulateMass', 'false with opts.treeMask (mass from rejected nodes could not be taken back)', true);
      if (p.remember) throw typeError('opts.remember', 'false with opts.treeMask (rejected nodes\' queries would stay in the window)', true);
      if (this.#deviceRules) throw unsupported('opts.treeMask (tree attend) runs on CPU caches only');
      p.treeParents = tree;
    }
    if (checkBoolean('opts.returnLse', o.returnLse, false)) p.lse = new Float32Array(nHeads * nQ);
    const returnSelected = checkBoolean('opts.returnSelected', o.returnSelected, false);
    if (returnSelected && !sparse) throw typeError('opts.returnSelected', 'true only with opts.sparse (dense attend attends every row)', true);
    if (this.#deviceRules) checkDeviceAttend(softcap, sparse?.method);
    if (sparse) p.sparse = sparseHeader(sparse, 0, role);
    if (returnSelected) p.selectedCount = new Int32Array(this.nKvHeads);
    return { p, shape: [nHeads, nQ, d] };
  }

  /**
   * The selected-rows output, sized just before the native call (an async
   * attend runs after the appends queued before it).
   */
  #sizeSelected(p: NativeKvAttendParams): void {
    if (!p.selectedCount || !p.sparse) return;
    const stride = Math.max(1, this.#handle.maxLength(p.layer));
    p.sparse[6] = stride;
    p.selected = new Int32Array(this.nKvHeads * stride);
  }

  #attendResult(p: NativeKvAttendParams, shape: number[]): AttendResult {
    const r: AttendResult = { output: { dtype: 'f32', shape, data: p.out } };
    if (p.lse) r.lse = { dtype: 'f32', shape: shape.slice(0, 2), data: p.lse };
    if (p.selected && p.selectedCount && p.sparse) {
      const H = this.nKvHeads, stride = p.sparse[6]!;
      let nSel = 0;
      for (let h = 0; h < H; h++) nSel = Math.max(nSel, p.selectedCount[h]!);
      const data = new Int32Array(H * nSel);
      for (let h = 0; h < H; h++) data.set(p.selected.subarray(h * stride, h * stride + nSel), h * nSel);
      r.selected = { dtype: 'i32', shape: [H, nSel], data };
    }
    return r;
  }

  /**
   * Attention of q over the stored tokens of `layer` (each KV head over its
   * own tokens). Shapes: see the module comment.
   */
  attend(layer: number, q: TensorLike<'f32'>, opts?: AttendOptions): AttendResult {
    this.#idle();
    const { p, shape } = this.#attendParams(layer, q, opts);
    this.#sizeSelected(p);
    this.#handle.attend(p);
    if (p.remember) this.#hasQueries[p.layer] = true;
    return this.#attendResult(p, shape);
  }

  /** attend, off the event loop. */
  attendAsync(layer: number, q: TensorLike<'f32'>, opts?: AttendOptions): Promise<AttendResult> {
    const { p, shape } = this.#attendParams(layer, q, opts);
    return this.#enqueue(async () => {
      this.#sizeSelected(p);
      await this.#handle.attendAsync(p);
      if (p.remember) this.#hasQueries[p.layer] = true;
      return this.#attendResult(p, shape);
    });
  }

  #compressParams(policy: unknown, budget: unknown, opts: unknown): NativeKvCompressParams {
    const o = checkOptions('opts', opts, ['layers', 'draftQueries']) as CompressOptions;
    const resolved = resolveCompression(policy, this.nLayers, this.nKvHeads);
    budgetToKeep(budget, this.capacity); // validates the budget's shape and range
    const keep = (budget as { keep?: number }).keep;
    if (keep !== undefined) this.#checkBudgetFits(resolved, keep, 'budget');
    const b = budget as { keep?: number; compressionRatio?: number };
    const p: NativeKvCompressParams = { ...resolved, keep: b.keep ?? -1, ratio: b.compressionRatio ?? -1 };
    const layers = readLayers('opts.layers', o.layers, this.nLayers);
    if (layers !== undefined) p.layers = layers;
    if (o.draftQueries !== undefined) {
      if (!Array.isArray(o.draftQueries) || o.draftQueries.length !== this.nLayers) {
        throw typeError('opts.draftQueries', `an array of nLayers = ${this.nLayers} tensors (or undefined entries)`, o.draftQueries);
      }
      p.drafts = o.draftQueries.map((t, l) => {
        if (t === undefined) return undefined;
        const d = checkTensor(`opts.draftQueries[${l}]`, t, ['f32'] as const, ['nHeads', 'nDraft', 'headDim']);
        const [nHeads, nDraft, headDim] = d.shape as [number, number, number];
        if (headDim !== this.headDim) throw rangeError(`opts.draftQueries[${l}].shape[2] (headDim)`, `the cache's headDim = ${this.headDim}`, headDim);
        if (nHeads < 1 || nHeads % this.nKvHeads !== 0) throw rangeError(`opts.draftQueries[${l}].shape[0] (nHeads)`, `a multiple of nKvHeads = ${this.nKvHeads}`, nHeads);
        if (nDraft < 1) throw rangeError(`opts.draftQueries[${l}].shape[1] (nDraft)`, 'at least 1 draft query', nDraft);
        return { q: d.data as Float32Array, nHeads, nDraft, strides: [d.strides[0]!, d.strides[1]!] as [number, number] };
      });
    }
    if (this.#deviceRules) checkDeviceCompression(p);
    return p;
  }

  /**
   * A { keep } budget must hold what the policy always keeps. Checked here for
   * razor (sinks + compensation token); the native planner checks sinks and
   * windows per layer, where it knows how many queries each layer remembers.
   */
  #checkBudgetFits(r: ResolvedCompression, keep: number, arg: string): void {
    if (r.allocation !== 3) return;
    const need = r.razorSinks + 1 + (r.razorRecent > 0 ? r.razorRecent : 0);
    if (keep < need) {
      throw new RangeError(`${arg}: expected at least ${need} tokens per head (razor keeps ${r.razorSinks} sinks, ${r.razorRecent > 0 ? `${r.razorRecent} recent tokens, ` : ''}and a compensation token), received ${keep}`);
    }
  }

  /**
   * Compresses every head (or opts.layers) down to the budget with one
   * policy, in place. budget: { keep: tokens per head } or
   * { compressionRatio: fraction removed }; adaptive policies (pyramidkv,
   * adakv) spread the same total differently. Query-based policies use the
   * queries the layer's last attend calls remembered. A failed call changes
   * nothing.
   */
  compress(policy: KvCompressionPolicy, budget: KvBudget, opts?: CompressOptions): CompressReport {
    this.#idle();
    return this.#handle.compress(this.#compressParams(policy, budget, opts));
  }

  /** compress, off the event loop. */
  compressAsync(policy: KvCompressionPolicy, budget: KvBudget, opts?: CompressOptions): Promise<CompressReport> {
    const p = this.#compressParams(policy, budget, opts);
    return this.#enqueue(() => this.#handle.compressAsync(p));
  }

  /**
   * Dense copy of one layer (for example to hand back to an ONNX runtime as
   * past_key_values). opts.dtype: default the cache dtype ('f16' for int caches).
   */
  export(layer: number, opts?: { dtype?: FloatDType }): ExportedLayer {
    this.#idle();
    const e = this.#exportBuffers(layer, opts);
    this.#handle.exportLayer(e.params);
    return this.#exported(e);
  }

  /** export, off the event loop (queued after earlier async calls). */
  exportAsync(layer: number, opts?: { dtype?: FloatDType }): Promise<ExportedLayer> {
    this.#exportOptions(layer, opts); // argument errors throw here, not in the promise
    return this.#enqueue(async () => {
      const e = this.#exportBuffers(layer, opts);
      await this.#handle.exportLayerAsync(e.params);
      return this.#exported(e);
    });
  }

  #exportOptions(layer: unknown, opts: unknown): { l: number; dtype: FloatDType } {
    const o = checkOptions('opts', opts, ['dtype']) as { dtype?: FloatDType };
    const l = this.#checkLayer(layer);
    const dtype: FloatDType = o.dtype ?? (this.dtype.startsWith('int') ? 'f16' : (this.dtype as FloatDType));
    if (!FLOAT_TYPES.includes(dtype)) throw typeError('opts.dtype', "'f32' | 'f16' | 'bf16'", dtype);
    return { l, dtype };
  }

  /** Buffers sized for the layer's current longest head. */
  #exportBuffers(layer: unknown, opts: unknown) {
    const { l, dtype } = this.#exportOptions(layer, opts);
    const maxLen = this.#handle.maxLength(l);
    const n = this.nKvHeads * maxLen * this.headDim;
    const params: NativeKvExportParams = {
      layer: l, dtype: DTYPE_CODE[dtype],
      k: dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n),
      v: dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n),
      positions: new Int32Array(this.nKvHeads * maxLen),
      counts: new Float32Array(this.nKvHeads * maxLen),
    };
    return { l, dtype, maxLen, params };
  }

  #exported(e: { l: number; dtype: FloatDType; maxLen: number; params: NativeKvExportParams }): ExportedLayer {
    const all = this.#handle.lengths();
    const shape = [this.nKvHeads, e.maxLen, this.headDim];
    return {
      k: { dtype: e.dtype, shape, data: e.params.k } as Tensor<FloatDType>,
      v: { dtype: e.dtype, shape, data: e.params.v } as Tensor<FloatDType>,
      positions: { dtype: 'i32', shape: [this.nKvHeads, e.maxLen], data: e.params.positions },
      counts: { dtype: 'f32', shape: [this.nKvHeads, e.maxLen], data: e.params.counts! },
      lengths: all.slice(e.l * this.nKvHeads, (e.l + 1) * this.nKvHeads),
    };
  }

  /** Tokens per (layer, head): i32 [nLayers, nKvHeads]. */
  lengths(): Tensor<'i32'> {
    this.#idle();
    return { dtype: 'i32', shape: [this.nLayers, this.nKvHeads], data: this.#handle.lengths() };
  }

  /** Bytes of native memory the cache holds now (storage, positions, accumulators). */
  get memoryBytes(): number {
    this.#idle();
    return this.#handle.memoryBytes();
  }

  /**
   * The layer's Quest page summaries, decoded to f32 (the cache stores them
   * in its row dtype, or as outward-rounded u8 codes for int8/int4 caches:
   * docs/sparse.md). pageSize 0 until a sparse attend on the layer built
   * them. A device cache copies its summaries (f16 / bf16) from the device.
   */
  questSummaries(layer: number): QuestCacheSummaries {
    this.#idle();
    const l = this.#checkLayer(layer);
    const r = this.#handle.questSummaries(l);
    const shape = [this.nKvHeads, r.pages, this.headDim];
    return {
      pageSize: r.pageSize,
      kmin: { dtype: 'f32', shape, data: r.kmin },
      kmax: { dtype: 'f32', shape: shape.slice(), data: r.kmax },
      ...(r.kmean ? { kmean: { dtype: 'f32' as const, shape: shape.slice(), data: r.kmean } } : {}),
      headPages: r.headPages,
      bytes: r.bytes,
    };
  }

  /**
   * TidalDecode: starts a decode step, dropping the token positions the
   * previous step selected (an append, compress or clear of the selecting
   * layer drops them too). Optional in the usual loop, where every layer
   * appends its token before it attends; it makes a layer that attends over
   * kept positions before this step's selection layer fail clearly.
   */
  beginStep(): void {
    this.#idle();
    this.#handle.beginStep();
  }

  /**
   * Speculative decoding: the newest `opts.treeSize` tokens of every (layer,
   * head) (or of opts.layers) are a verified token tree, appended with
   * append(..., { positions }) and attended with opts.treeMask. Keeps, of
   * them, only `acceptedNodes` (ascending node indices in [0, treeSize), no
   * duplicates; in a real step a root-to-leaf path), moved in place to follow
   * the older tokens in that order, and drops the rest. Kept tokens keep
   * their positions. The cache then equals one that only ever saw the kept
   * tokens: rows, positions, H2O mass, Quest / block summaries, int8/int4
   * groups and f16 residual window (exactly when treeSize - accepted <=
   * options.speculative, see KvCacheOptions), and the position counter of
   * later appends (it goes back by the dropped count). CPU caches; cost
   * O(treeSize) rows per head (int caches: + the groups rebuilt). A failed
   * call changes nothing.
   */
  commit(acceptedNodes: Int32Array | readonly number[], opts: CommitOptions): void {
    this.#idle();
    const o = readOptions('opts', opts, ['treeSize', 'layers']) as Partial<CommitOptions>;
    if (opts === undefined) throw typeError('opts', '{ treeSize, layers? }', opts);
    const treeSize = checkInteger('opts.treeSize', o.treeSize, 0, 0x7fffffff);
    const layers = readLayers('opts.layers', o.layers, this.nLayers);
    const accepted = readAcceptedNodes('acceptedNodes', acceptedNodes, treeSize);
    this.#commitTree(treeSize, accepted, layers, 'opts.treeSize', 'tree nodes');
  }

  /**
   * Drops the newest n tokens of every (layer, head) (or of opts.layers),
   * for example a rejected draft: the cache then equals one that never saw
   * them (with the same rules as commit(), which this is with no node
   * accepted). CPU caches; a failed call changes nothing.
   */
  rollback(n: number, opts?: { layers?: number[] }): void {
    this.#idle();
    const o = readOptions('opts', opts, ['layers']) as { layers?: unknown };
    const count = checkInteger('n', n, 0, 0x7fffffff);
    const layers = readLayers('opts.layers', o.layers, this.nLayers);
    this.#commitTree(count, new Int32Array(0), layers, 'n', 'tokens');
  }

  #commitTree(treeSize: number, accepted: Int32Array, layers: Int32Array | undefined, arg: string, what: string): void {
    if (this.#deviceRules) throw unsupported('commit / rollback run on CPU caches only');
    checkHeadsHold(arg, treeSize, this.#handle.lengths(), this.nKvHeads, layers, what);
    if (layers !== undefined && layers.length === 0) return;
    this.#handle.commitTree({ treeSize, accepted, ...(layers ? { layers } : {}) });
  }

  /** Drops every token (of one layer, or of all) and frees the storage. */
  clear(layer?: number): void {
    this.#idle();
    if (layer === undefined) {
      this.#handle.clear();
      this.#hasQueries.length = 0;
    } else {
      const l = this.#checkLayer(layer);
      this.#handle.clear(l);
      this.#hasQueries[l] = false;
    }
  }
}
