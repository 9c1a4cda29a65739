/**
 * Sparse decoding: attend every stored token's page summary, read only the
 * pages that can matter. Quest (Tang et al. 2024; mit-han-lab/Quest): per
 * page of P tokens and KV head, the element-wise min and max of the keys;
 * a page's score is the upper bound sum_d max(q_d * kmax_d, q_d * kmin_d)
 * of q . k over its keys; the top floor(budget / P) pages (the current page
 * always among them) are attended exactly. See docs/sparse.md and
 * native/sparse/quest.h for what differs from the paper's code.
 *
 * Stateless form, for packages that own their caches:
 *   k          f32|f16|bf16 [nKvHeads, nKv, headDim]
 *   summaries  kmin, kmax   [nKvHeads, ceil(nKv / P), headDim] (k's dtype)
 *   q          f32          [nHeads, nQ, headDim]   (nHeads % nKvHeads == 0)
 *   indices    i32          [nKvHeads, nSel]        -> attention(q, k, v, { indices })
 */
import { DTYPE_CODE, native } from '../native.js';
import { rangeError, typeError } from '../errors.js';
import type { FloatDType, Tensor, TensorLike } from '../tensor.js';
import { checkInteger, checkTensor } from '../validate.js';
import { readOptions, withoutMethod } from './options.js';
import { resolveTidal, type ResolvedTidal, type TidalRole, type TidalSparseOptions } from './tidal.js';
import { resolveBlocks, type BlockSparseOptions, type ResolvedBlocks } from './blocks.js';

/** How the query heads of one KV head's group combine their page bounds. */
export type QuestGqa = 'max' | 'sum';

/** Quest page selection (KvCache.attend's `sparse`, questSelect). */
export interface QuestSparseOptions {
  method: 'quest';
  /** Tokens to attend per KV head: floor(budget / pageSize) pages (at least 1), the current page included. */
  budget: number;
  /** Tokens per page; default 16 (every script of the paper's code). */
  pageSize?: number;
  /** The pages holding the first `sinks` tokens are always attended; default 0. */
  sinks?: number;
  /** The pages holding the newest `recent` tokens (at least the current page, and the nQ query tokens) are always attended; default 1. */
  recent?: number;
  /** GQA: combine the group's per-head (and per-query) bounds by max or sum; default 'sum' (measured better on a real-model trace: docs/sparse.md). */
  gqa?: QuestGqa;
}

/**
 * Sparse attention options, a union discriminated by `method`: Quest pages,
 * TidalDecode's position-persistent tokens, block retrieval.
 */
export type SparseOptions = QuestSparseOptions | TidalSparseOptions | BlockSparseOptions;

export const SPARSE_METHODS = ['quest', 'tidal', 'blocks'] as const;
export type SparseMethod = (typeof SPARSE_METHODS)[number];

/** The defaults of the optional Quest options. */
export const QUEST_DEFAULTS = Object.freeze({ pageSize: 16, sinks: 0, recent: 1, gqa: 'sum' as QuestGqa });

/** Most tokens per page. */
export const MAX_PAGE_SIZE = 65536;

const QUEST_KEYS = ['method', 'budget', 'pageSize', 'sinks', 'recent', 'gqa'] as const;
const GQA_MODES: readonly QuestGqa[] = ['max', 'sum'];

/** Validated Quest options, every field present. */
export interface ResolvedQuest {
  method: 'quest';
  budget: number;
  pageSize: number;
  sinks: number;
  recent: number;
  gqa: QuestGqa;
}

/** Validated sparse options of any method. */
export type ResolvedSparse = ResolvedQuest | ResolvedTidal | ResolvedBlocks;

/** Validates sparse options (`arg` names them in messages, e.g. 'opts.sparse'). */
export function resolveSparse(arg: string, value: unknown): ResolvedSparse {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError(arg, "an options object such as { method: 'quest', budget: 2048 }", value);
  }
  const method = (value as { method?: unknown }).method;
  if (!(SPARSE_METHODS as readonly unknown[]).includes(method)) {
    throw typeError(`${arg}.method`, SPARSE_METHODS.map((m) => `'${m}'`).join(', ').replace(/, ([^,]*)$/, ' or $1'), method);
  }
  if (method === 'tidal') return resolveTidal(arg, value);
  if (method === 'blocks') return resolveBlocks(arg, value);
  return resolveQuest(arg, value);
}

function resolveQuest(arg: string, value: object): ResolvedQuest {
  const o = readOptions(arg, value, QUEST_KEYS, withoutMethod(QUEST_KEYS)) as Partial<QuestSparseOptions>;
  if (o.budget === undefined) throw typeError(`${arg}.budget`, 'an integer >= 1 (tokens per KV head)', undefined);
  const budget = checkInteger(`${arg}.budget`, o.budget, 1);
  const pageSize = o.pageSize === undefined ? QUEST_DEFAULTS.pageSize : checkInteger(`${arg}.pageSize`, o.pageSize, 1, MAX_PAGE_SIZE);
  const sinks = o.sinks === undefined ? QUEST_DEFAULTS.sinks : checkInteger(`${arg}.sinks`, o.sinks, 0);
  const recent = o.recent === undefined ? QUEST_DEFAULTS.recent : checkInteger(`${arg}.recent`, o.recent, 0);
  let gqa = QUEST_DEFAULTS.gqa;
  if (o.gqa !== undefined) {
    if (!GQA_MODES.includes(o.gqa)) throw typeError(`${arg}.gqa`, "'max' or 'sum'", o.gqa);
    gqa = o.gqa;
  }
  return { method: 'quest', budget, pageSize, sinks, recent, gqa };
}

/**
 * The native encoding of resolved options (lib/native.ts
 * NativeKvAttendParams.sparse): [method, budget, pageSize | blockSize,
 * sinks, recent, gqa, selectedStride, tidal role, mix].
 */
export function sparseHeader(r: ResolvedSparse, selectedStride: number, role: TidalRole = 0): Float64Array {
  switch (r.method) {
    case 'quest': return Float64Array.of(1, r.budget, r.pageSize, r.sinks, r.recent, r.gqa === 'sum' ? 1 : 0, selectedStride, 0, 0);
    case 'tidal': return Float64Array.of(2, r.budget, 1, r.sinks, r.recent, 1, selectedStride, role, 0);
    default: return Float64Array.of(3, r.budget, r.blockSize, r.sinks, r.recent, r.gqa === 'sum' ? 1 : 0, selectedStride, 0, r.mix);
  }
}

/** Page summaries of a stateless cache (questPageSummaries). */
export interface QuestSummaries {
  pageSize: number;
  /** Tokens summarized (the last page holds nKv - (pages - 1) * pageSize of them). */
  nKv: number;
  /** Element-wise min of each page's keys, [nKvHeads, pages, headDim], k's dtype (exact). */
  kmin: Tensor<FloatDType>;
  /** Element-wise max, the same shape. */
  kmax: Tensor<FloatDType>;
}

const FLOAT_TYPES: readonly FloatDType[] = ['f32', 'f16', 'bf16'];

function allocLike(dtype: FloatDType, n: number): Float32Array | Uint16Array {
  return dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
}

/**
 * Quest page summaries of k f32|f16|bf16 [nKvHeads, nKv, headDim] (strided
 * rows allowed): kmin, kmax [nKvHeads, ceil(nKv / pageSize), headDim] of
 * k's dtype. 2 rows per pageSize keys: 2 / pageSize of k's memory.
 */
export function questPageSummaries(k: TensorLike<FloatDType>, options?: { pageSize?: number }): QuestSummaries {
  const o = readOptions('options', options, ['pageSize']) as { pageSize?: number };
  const kt = checkTensor('k', k, FLOAT_TYPES, ['nKvHeads', 'nKv', 'headDim']);
  const [nKvHeads, nKv, headDim] = kt.shape as [number, number, number];
  if (nKvHeads < 1) throw rangeError('k.shape[0] (nKvHeads)', 'at least 1', nKvHeads);
  if (nKv < 1) throw rangeError('k.shape[1] (nKv)', 'at least 1 token', nKv);
  if (headDim < 1) throw rangeError('k.shape[2] (headDim)', 'at least 1', headDim);
  const pageSize = o.pageSize === undefined ? QUEST_DEFAULTS.pageSize : checkInteger('options.pageSize', o.pageSize, 1, MAX_PAGE_SIZE);
  const pages = Math.ceil(nKv / pageSize);
  const n = nKvHeads * pages * headDim;
  const lo = allocLike(kt.dtype, n);
  const hi = allocLike(kt.dtype, n);
  const header = Float64Array.of(nKvHeads, nKv, headDim, pageSize, DTYPE_CODE[kt.dtype], kt.strides[0]!, kt.strides[1]!);
  native().questSummarize(header, kt.data as Float32Array | Uint16Array, lo, hi);
  const shape = [nKvHeads, pages, headDim];
  return {
    pageSize, nKv,
    kmin: { dtype: kt.dtype, shape, data: lo } as Tensor<FloatDType>,
    kmax: { dtype: kt.dtype, shape: shape.slice(), data: hi } as Tensor<FloatDType>,
  };
}

/** questSelect's options: Quest's, without the method. */
export type QuestSelectOptions = Omit<QuestSparseOptions, 'method' | 'pageSize'>;

function checkSummaries(value: unknown): { pageSize: number; nKv: number; kmin: ReturnType<typeof checkTensor<FloatDType>>; kmax: ReturnType<typeof checkTensor<FloatDType>> } {
  if (value === null || typeof value !== 'object') throw typeError('summaries', 'the result of questPageSummaries()', value);
  const s = value as Partial<QuestSummaries>;
  const pageSize = checkInteger('summaries.pageSize', s.pageSize, 1, MAX_PAGE_SIZE);
  const nKv = checkInteger('summaries.nKv', s.nKv, 1);
  const kmin = checkTensor('summaries.kmin', s.kmin, FLOAT_TYPES, ['nKvHeads', 'pages', 'headDim']);
  const kmax = checkTensor('summaries.kmax', s.kmax, FLOAT_TYPES, ['nKvHeads', 'pages', 'headDim']);
  const pages = Math.ceil(nKv / pageSize);
  if (kmin.shape[1] !== pages) throw rangeError('summaries.kmin.shape[1] (pages)', `ceil(nKv / pageSize) = ${pages}`, kmin.shape[1]);
  if (kmax.dtype !== kmin.dtype) throw typeError('summaries.kmax.dtype', `kmin's dtype '${kmin.dtype}'`, kmax.dtype);
  if (kmax.shape.some((d, i) => d !== kmin.shape[i])) {
    throw rangeError('summaries.kmax.shape', `kmin's shape [${kmin.shape.join(', ')}]`, `[${kmax.shape.join(', ')}]`);
  }
  for (const [name, t] of [['summaries.kmin', kmin], ['summaries.kmax', kmax]] as const) {
    if (t.strides[0] !== pages * t.shape[2]! || t.strides[1] !== t.shape[2]) throw rangeError(`${name}.strides`, 'contiguous summaries', `[${t.strides.join(', ')}]`);
  }
  return { pageSize, nKv, kmin, kmax };
}

/**
 * The query of a page/block selection, checked against its summaries:
 * q f32 [nHeads, nQ, headDim] with headDim = kmin's and nHeads a multiple of
 * kmin's nKvHeads (shared by questSelect and blockSelect).
 */
export function checkSelectQuery(q: TensorLike<'f32'>, kmin: Tensor) {
  const qt = checkTensor('q', q, ['f32'] as const, ['nHeads', 'nQ', 'headDim']);
  const [nHeads, nQ, headDim] = qt.shape as [number, number, number];
  const [nKvHeads, , sDim] = kmin.shape as [number, number, number];
  if (nKvHeads < 1) throw rangeError('summaries.kmin.shape[0] (nKvHeads)', 'at least 1', nKvHeads);
  if (headDim < 1) throw rangeError('q.shape[2] (headDim)', 'at least 1', headDim);
  if (sDim !== headDim) throw rangeError('summaries.kmin.shape[2] (headDim)', `q's headDim = ${headDim}`, sDim);
  if (nHeads % nKvHeads !== 0) throw rangeError('q.shape[0] (nHeads)', `a multiple of the summaries' nKvHeads = ${nKvHeads}`, nHeads);
  if (nQ < 1) throw rangeError('q.shape[1] (nQ)', 'at least 1 query', nQ);
  return { qt, nHeads, nQ, headDim, nKvHeads };
}

/**
 * Quest selection from q f32 [nHeads, nQ, headDim] and summaries of nKv
 * tokens: i32 [nKvHeads, nSel] ascending token indices (every head selects
 * the same count), for attention(q, k, v, { indices }). Per KV head, the
 * bounds of its group's query heads and query rows combine by `gqa`.
 */
export function questSelect(q: TensorLike<'f32'>, summaries: QuestSummaries, options: QuestSelectOptions): Tensor<'i32'> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('options', "an options object such as { budget: 2048 }", options);
  }
  const o = readOptions('options', options, ['budget', 'sinks', 'recent', 'gqa']);
  const s = checkSummaries(summaries);
  const r = resolveQuest('options', { ...o, method: 'quest', pageSize: s.pageSize });
  const { qt, nHeads, nQ, headDim, nKvHeads } = checkSelectQuery(q, s.kmin);
  const capacity = nKvHeads * s.nKv;
  const indices = new Int32Array(capacity);
  const header = Float64Array.of(
    nHeads, nKvHeads, nQ, headDim, s.nKv, qt.strides[0]!, qt.strides[1]!, DTYPE_CODE[s.kmin.dtype],
    r.budget, r.pageSize, r.sinks, r.recent, r.gqa === 'sum' ? 1 : 0,
  );
  const nSel = native().questSelect(header, qt.data as Float32Array, s.kmin.data as Float32Array | Uint16Array, s.kmax.data as Float32Array | Uint16Array, indices);
  return { dtype: 'i32', shape: [nKvHeads, nSel], data: indices.subarray(0, nKvHeads * nSel) };
}
