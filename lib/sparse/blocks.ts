/**
 * Block retrieval: an inference-only form of Landmark Attention (Mohtashami
 * and Jaggi 2023; code: epfml/landmark-attention). Per block of B tokens
 * (default 64) and KV head, the mean key and Quest's element-wise min / max
 * are kept; a query row scores a block by
 *   mix * bound + (1 - mix) * (q . mean),   bound = sum_d max(q_d * kmax_d, q_d * kmin_d)
 * (default mix 0.5: the midpoint of [q . mean, bound], which brackets the
 * block's log-mean-exp logit), rows combined by sum (or max); the top
 * floor(budget / B) blocks, with the sink block and the local window, are
 * attended exactly. See docs/sparse.md and native/sparse/blocks.h for what
 * differs from the paper (no trained landmark tokens, no grouped softmax).
 *
 * Stateless form, for packages that own their caches:
 *   k          f32|f16|bf16 [nKvHeads, nKv, headDim]
 *   summaries  kmin, kmax   [nKvHeads, ceil(nKv / B), headDim] (k's dtype), kmean f32, the same shape
 *   q          f32          [nHeads, nQ, headDim]   (nHeads % nKvHeads == 0)
 *   indices    i32          [nKvHeads, nSel]        -> attention(q, k, v, { indices })
 */
import { DTYPE_CODE, native } from '../native.js';
import { rangeError, typeError } from '../errors.js';
import type { FloatDType, Tensor, TensorLike } from '../tensor.js';
import { checkInteger, checkNumber, checkTensor } from '../validate.js';
import { readOptions, withoutMethod } from './options.js';
import { checkSelectQuery } from './quest.js';

/** Block retrieval (KvCache.attend's `sparse`, blockSelect). */
export interface BlockSparseOptions {
  method: 'blocks';
  /** Tokens to attend per KV head: max(1, floor(budget / blockSize)) blocks, the forced ones included. */
  budget: number;
  /** Tokens per block; default 64 (the paper's blocks are 50 tokens + a landmark). */
  blockSize?: number;
  /** The blocks holding the first `sinks` tokens are always attended; default 1 (the sink block). */
  sinks?: number;
  /** The blocks holding the newest max(recent, nQ) tokens are always attended (the local window); default blockSize. */
  recent?: number;
  /** GQA: combine the group's per-head (and per-query) block scores by max or sum; default 'sum'. */
  gqa?: 'max' | 'sum';
  /** Weight of the Quest bound in the block score, in [0, 1] (1 - mix for the mean key's score); default 0.5. */
  mix?: number;
}

export const BLOCK_DEFAULTS = Object.freeze({ blockSize: 64, sinks: 1, mix: 0.5, gqa: 'sum' as 'max' | 'sum' });
const MAX_BLOCK_SIZE = 65536;
const BLOCK_KEYS = ['method', 'budget', 'blockSize', 'sinks', 'recent', 'gqa', 'mix'] as const;

export interface ResolvedBlocks {
  method: 'blocks';
  budget: number;
  blockSize: number;
  sinks: number;
  recent: number;
  gqa: 'max' | 'sum';
  mix: number;
}

export function resolveBlocks(arg: string, value: object): ResolvedBlocks {
  const o = readOptions(arg, value, BLOCK_KEYS, withoutMethod(BLOCK_KEYS)) as Partial<BlockSparseOptions>;
  if (o.budget === undefined) throw typeError(`${arg}.budget`, 'an integer >= 1 (tokens per KV head)', undefined);
  const budget = checkInteger(`${arg}.budget`, o.budget, 1);
  const blockSize = o.blockSize === undefined ? BLOCK_DEFAULTS.blockSize : checkInteger(`${arg}.blockSize`, o.blockSize, 1, MAX_BLOCK_SIZE);
  const sinks = o.sinks === undefined ? BLOCK_DEFAULTS.sinks : checkInteger(`${arg}.sinks`, o.sinks, 0);
  const recent = o.recent === undefined ? blockSize : checkInteger(`${arg}.recent`, o.recent, 0);
  let gqa = BLOCK_DEFAULTS.gqa;
  if (o.gqa !== undefined) {
    if (o.gqa !== 'max' && o.gqa !== 'sum') throw typeError(`${arg}.gqa`, "'max' or 'sum'", o.gqa);
    gqa = o.gqa;
  }
  let mix: number = BLOCK_DEFAULTS.mix;
  if (o.mix !== undefined) {
    mix = checkNumber(`${arg}.mix`, o.mix);
    if (mix < 0 || mix > 1) throw rangeError(`${arg}.mix`, 'a number in [0, 1]', mix);
  }
  return { method: 'blocks', budget, blockSize, sinks, recent, gqa, mix };
}

/** Block summaries of a stateless cache (blockSummaries). */
export interface BlockSummaries {
  blockSize: number;
  /** Tokens summarized. */
  nKv: number;
  /** Element-wise min of each block's keys, [nKvHeads, blocks, headDim], k's dtype (exact). */
  kmin: Tensor<FloatDType>;
  /** Element-wise max, the same shape. */
  kmax: Tensor<FloatDType>;
  /** Mean key of each block, f32, the same shape. */
  kmean: Tensor<'f32'>;
}

const FLOAT_TYPES: readonly FloatDType[] = ['f32', 'f16', 'bf16'];
const allocLike = (dtype: FloatDType, n: number): Float32Array | Uint16Array => (dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n));

/**
 * Block summaries of k f32|f16|bf16 [nKvHeads, nKv, headDim] (strided rows
 * allowed): kmin, kmax [nKvHeads, ceil(nKv / blockSize), headDim] of k's
 * dtype, kmean f32 of the same shape (f32 sums in row order / rows).
 */
export function blockSummaries(k: TensorLike<FloatDType>, options?: { blockSize?: number }): BlockSummaries {
  const o = readOptions('options', options, ['blockSize']) as { blockSize?: number };
  const kt = checkTensor('k', k, FLOAT_TYPES, ['nKvHeads', 'nKv', 'headDim']);
  const [nKvHeads, nKv, headDim] = kt.shape as [number, number, number];
  if (nKvHeads < 1) throw rangeError('k.shape[0] (nKvHeads)', 'at least 1', nKvHeads);
  if (nKv < 1) throw rangeError('k.shape[1] (nKv)', 'at least 1 token', nKv);
  if (headDim < 1) throw rangeError('k.shape[2] (headDim)', 'at least 1', headDim);
  const blockSize = o.blockSize === undefined ? BLOCK_DEFAULTS.blockSize : checkInteger('options.blockSize', o.blockSize, 1, MAX_BLOCK_SIZE);
  const blocks = Math.ceil(nKv / blockSize);
  const n = nKvHeads * blocks * headDim;
  const lo = allocLike(kt.dtype, n), hi = allocLike(kt.dtype, n), mean = new Float32Array(n);
  const header = Float64Array.of(nKvHeads, nKv, headDim, blockSize, DTYPE_CODE[kt.dtype], kt.strides[0]!, kt.strides[1]!);
  native().blockSummarize(header, kt.data as Float32Array | Uint16Array, lo, hi, mean);
  const shape = [nKvHeads, blocks, headDim];
  return {
    blockSize, nKv,
    kmin: { dtype: kt.dtype, shape, data: lo } as Tensor<FloatDType>,
    kmax: { dtype: kt.dtype, shape: shape.slice(), data: hi } as Tensor<FloatDType>,
    kmean: { dtype: 'f32', shape: shape.slice(), data: mean },
  };
}

/** blockSelect's options: the block method's, without the method and block size (the summaries'). */
export type BlockSelectOptions = Omit<BlockSparseOptions, 'method' | 'blockSize'>;

function checkBlockSummaries(value: unknown) {
  if (value === null || typeof value !== 'object') throw typeError('summaries', 'the result of blockSummaries()', value);
  const s = value as Partial<BlockSummaries>;
  const blockSize = checkInteger('summaries.blockSize', s.blockSize, 1, MAX_BLOCK_SIZE);
  const nKv = checkInteger('summaries.nKv', s.nKv, 1);
  const kmin = checkTensor('summaries.kmin', s.kmin, FLOAT_TYPES, ['nKvHeads', 'blocks', 'headDim']);
  const kmax = checkTensor('summaries.kmax', s.kmax, FLOAT_TYPES, ['nKvHeads', 'blocks', 'headDim']);
  const kmean = checkTensor('summaries.kmean', s.kmean, ['f32'] as const, ['nKvHeads', 'blocks', 'headDim']);
  const blocks = Math.ceil(nKv / blockSize);
  if (kmin.shape[1] !== blocks) throw rangeError('summaries.kmin.shape[1] (blocks)', `ceil(nKv / blockSize) = ${blocks}`, kmin.shape[1]);
  if (kmax.dtype !== kmin.dtype) throw typeError('summaries.kmax.dtype', `kmin's dtype '${kmin.dtype}'`, kmax.dtype);
  for (const [name, t] of [['summaries.kmax', kmax], ['summaries.kmean', kmean]] as const) {
    if (t.shape.some((d, i) => d !== kmin.shape[i])) throw rangeError(`${name}.shape`, `kmin's shape [${kmin.shape.join(', ')}]`, `[${t.shape.join(', ')}]`);
  }
  for (const [name, t] of [['summaries.kmin', kmin], ['summaries.kmax', kmax], ['summaries.kmean', kmean]] as const) {
    if (t.strides[0] !== blocks * t.shape[2]! || t.strides[1] !== t.shape[2]) throw rangeError(`${name}.strides`, 'contiguous summaries', `[${t.strides.join(', ')}]`);
  }
  return { blockSize, nKv, kmin, kmax, kmean };
}

/**
 * Block selection from q f32 [nHeads, nQ, headDim] and block summaries of
 * nKv tokens: i32 [nKvHeads, nSel] ascending token indices (every head the
 * same count), for attention(q, k, v, { indices }).
 */
export function blockSelect(q: TensorLike<'f32'>, summaries: BlockSummaries, options: BlockSelectOptions): Tensor<'i32'> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('options', 'an options object such as { budget: 2048 }', options);
  }
  const o = readOptions('options', options, ['budget', 'sinks', 'recent', 'gqa', 'mix']);
  const s = checkBlockSummaries(summaries);
  const r = resolveBlocks('options', { ...o, method: 'blocks', blockSize: s.blockSize });
  const { qt, nHeads, nQ, headDim, nKvHeads } = checkSelectQuery(q, s.kmin);
  const indices = new Int32Array(nKvHeads * s.nKv);
  const header = Float64Array.of(
    nHeads, nKvHeads, nQ, headDim, s.nKv, qt.strides[0]!, qt.strides[1]!, DTYPE_CODE[s.kmin.dtype],
    r.budget, r.blockSize, r.sinks, r.recent, r.gqa === 'sum' ? 1 : 0, r.mix,
  );
  const nSel = native().blockSelect(header, qt.data as Float32Array, s.kmin.data as Float32Array | Uint16Array, s.kmax.data as Float32Array | Uint16Array,
    s.kmean.data as Float32Array, indices);
  return { dtype: 'i32', shape: [nKvHeads, nSel], data: indices.subarray(0, nKvHeads * nSel) };
}
