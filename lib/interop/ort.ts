/**
 * onnxruntime-node / transformers.js bridges: results out in their Tensor
 * form, a KvCache as an ONNX session's past_key_values, and a session's
 * present.* outputs back into the cache without copies.
 *
 *   toOrt(t)              [d0, ..., dn]            -> new TensorClass(type, data, [1, d0, ..., dn])
 *   lastPositions(t, n)   [1?, nKvHeads, len, headDim] -> view [nKvHeads, n, headDim] (rows len-n .. len-1)
 *   pastKeyValues(cache)  every layer l: `past_key_values.${l}.key` / `.value`
 *                         [1, nKvHeads, len_l, headDim]
 *   appendPresent(cache, outputs, n)
 *                         every layer l: the last n rows of `present.${l}.key` / `.value`
 *                         [1, nKvHeads, past + n, headDim] appended to layer l
 *
 * The Tensor class is passed in (never imported here): session.run() only
 * takes instances of its own onnxruntime-common copy, and tokenpress does not
 * depend on onnxruntime. Both onnxruntime's and transformers.js's Tensor
 * constructors take (type, data, dims).
 */
import { rangeError, typeError } from '../errors.js';
import type { KvCache } from '../kv/cache.js';
import { numel, ORT_TYPE, type DType, type FloatDType, type Tensor, type TensorLike } from '../tensor.js';
import { checkBoolean, checkInteger, checkOptions, checkTensor, type CheckedTensor } from '../validate.js';

/**
 * A Tensor class with onnxruntime's `(type, data, dims)` constructor:
 * `require('onnxruntime-node').Tensor` or transformers.js's `Tensor`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type OrtTensorClass<T> = new (type: any, data: any, dims: any) => T;

export interface ToOrtOptions {
  /** Prepend a batch dimension of 1 (BNSH, as sessions expect); default true. */
  batch?: boolean;
}

/** Names of the per-layer KV inputs / outputs of an ONNX decoder. */
export type KvNames = (layer: number, kind: 'key' | 'value') => string;

/** Hugging Face / Optimum decoder exports: past_key_values.{l}.key, ... */
export const PAST_NAMES: KvNames = (l, kind) => `past_key_values.${l}.${kind}`;
/** Hugging Face / Optimum decoder exports: present.{l}.key, ... */
export const PRESENT_NAMES: KvNames = (l, kind) => `present.${l}.${kind}`;

const ALL_DTYPES: DType[] = ['f32', 'f16', 'bf16', 'bool', 'i32'];
const FLOAT_TYPES: FloatDType[] = ['f32', 'f16', 'bf16'];

/** A contiguous copy of a checked tensor (rows are contiguous: stride 1 innermost). */
function denseCopy(t: CheckedTensor): Tensor['data'] {
  const { shape, strides, data } = t;
  const src = data as Float32Array;
  const out = new (src.constructor as Float32ArrayConstructor)(numel(shape));
  if (out.length === 0) return out;
  const rank = shape.length;
  const row = rank === 0 ? 1 : shape[rank - 1]!;
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let o = 0; o < out.length; o += row) {
    let off = 0;
    for (let d = 0; d < rank - 1; d++) off += idx[d]! * strides[d]!;
    out.set(src.subarray(off, off + row), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Whether the strides are row-major contiguous (dimensions of size 1 have any stride). */
function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expect = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) return false;
    expect *= shape[d]!;
  }
  return true;
}

/**
 * Our tensor as an onnxruntime / transformers.js Tensor:
 * `new TensorClass(type, data, [1, ...shape])` (no leading 1 with
 * `{ batch: false }`). A contiguous tensor shares its memory with the result
 * (writes to one show in the other); a strided view is copied. Types:
 * f32 -> 'float32', f16 -> 'float16' (Uint16Array bits; onnxruntime views
 * them as a Float16Array where the runtime has one), i32 -> 'int32',
 * bool -> 'bool'. bf16 has no onnxruntime type in JS: export or cast to
 * f16 / f32 first (cache.export(l, { dtype: 'f16' }), castTo).
 */
export function toOrt<T>(tensor: TensorLike, TensorClass: OrtTensorClass<T>, opts?: ToOrtOptions): T {
  const o = checkOptions('opts', opts, ['batch']) as ToOrtOptions;
  const batch = checkBoolean('opts.batch', o.batch, true);
  if (typeof TensorClass !== 'function') {
    throw typeError('TensorClass', "a Tensor class with a (type, data, dims) constructor, e.g. require('onnxruntime-node').Tensor", TensorClass);
  }
  const t = checkTensor('tensor', tensor, ALL_DTYPES, 'any');
  const type = ORT_TYPE[t.dtype];
  if (type === undefined) {
    throw typeError('tensor.dtype', "'f32' | 'f16' | 'i32' | 'bool' (onnxruntime has no bf16 type in JS: use { dtype: 'f16' } or 'f32')", t.dtype);
  }
  const n = numel(t.shape);
  let data: Tensor['data'];
  if (!isContiguous(t.shape, t.strides)) data = denseCopy(t);
  else data = t.data.length === n ? t.data : t.data.subarray(0, n);
  return new TensorClass(type, data, batch ? [1, ...t.shape] : [...t.shape]);
}

/**
 * A view of the last n positions of a KV tensor, e.g. the new rows of an
 * onnxruntime `present.*` output: [1?, nKvHeads, len, headDim] ->
 * [nKvHeads, n, headDim] with strides [len * headDim, headDim, 1] over the
 * same memory (no copy). Pass it to KvCache.append.
 */
export function lastPositions(tensor: TensorLike<FloatDType>, n: number, arg = 'tensor'): Tensor<FloatDType> {
  const t = checkTensor(arg, tensor, FLOAT_TYPES, ['nKvHeads', 'len', 'headDim']);
  const [nKvHeads, len, headDim] = t.shape as [number, number, number];
  checkInteger('n', n, 0, len);
  const start = (len - n) * t.strides[1]!;
  return {
    dtype: t.dtype,
    shape: [nKvHeads, n, headDim],
    strides: [...t.strides],
    data: t.data.subarray(Math.min(start, t.data.length)),
  } as Tensor<FloatDType>;
}

export interface PastKeyValuesOptions {
  /** Element type of the feeds: default the cache's export dtype ('f16' for f16 and int caches). */
  dtype?: 'f32' | 'f16';
  /** Input names; default PAST_NAMES (past_key_values.{l}.key / .value). */
  names?: KvNames;
  /**
   * Allow layers whose heads hold different numbers of tokens (per-head
   * budgets such as adakv). Their export is zero padded past each head's
   * length (exported.lengths; positions -1), and a plain decoder graph would
   * attend to the padding: only allow this when the graph masks it per head.
   * Default false: a ragged layer is a RangeError.
   */
  allowRagged?: boolean;
  /**
   * Allow merged rows (exported.counts > 1, from merging policies). attend()
   * adds log(count) to a merged row's logit; a plain decoder graph does not,
   * so only allow this when the graph adds that bias. Default false: a
   * merged row is a RangeError.
   */
  allowMerged?: boolean;
}

/**
 * Every layer of the cache as an ONNX decoder's past_key_values feeds:
 * `{ 'past_key_values.0.key': T [1, nKvHeads, len_0, headDim], ... }`,
 * built with cache.export (a fresh dense copy) and sharing its memory. An
 * empty layer gives len 0. Rows keep the cache's order (original positions
 * ascending); after compression len_l is the kept count, not the number of
 * tokens seen, so give the model explicit position ids.
 */
export function pastKeyValues<T>(cache: KvCache, TensorClass: OrtTensorClass<T>, opts?: PastKeyValuesOptions): Record<string, T> {
  const o = checkOptions('opts', opts, ['dtype', 'names', 'allowRagged', 'allowMerged']) as PastKeyValuesOptions;
  if (o.dtype !== undefined && o.dtype !== 'f32' && o.dtype !== 'f16') throw typeError('opts.dtype', "'f32' | 'f16'", o.dtype);
  if (o.dtype === undefined && cache.dtype === 'bf16') {
    throw typeError('opts.dtype', "'f32' | 'f16' (a bf16 cache has no onnxruntime type in JS)", o.dtype);
  }
  const names = o.names ?? PAST_NAMES;
  if (typeof names !== 'function') throw typeError('opts.names', 'a function (layer, kind) => input name', names);
  const allowRagged = checkBoolean('opts.allowRagged', o.allowRagged, false);
  const allowMerged = checkBoolean('opts.allowMerged', o.allowMerged, false);
  const feeds: Record<string, T> = {};
  for (let l = 0; l < cache.nLayers; l++) {
    const e = cache.export(l, o.dtype === undefined ? undefined : { dtype: o.dtype });
    const lengths = Array.from(e.lengths);
    if (!allowRagged && lengths.some((x) => x !== lengths[0])) {
      throw new RangeError(`cache layer ${l}: expected the same length in every head (pass { allowRagged: true } if the graph masks the zero padding per head), received lengths [${lengths.join(', ')}]`);
    }
    if (!allowMerged) {
      const len = e.k.shape[1]!;
      const merged = e.counts.data.findIndex((c, i) => c > 1 && i % len < lengths[Math.floor(i / len)]!);
      if (merged >= 0) {
        throw new RangeError(`cache layer ${l}: expected rows that stand for one token each (pass { allowMerged: true } if the graph adds log(counts) to the logits), received a row of count ${e.counts.data[merged]} (head ${Math.floor(merged / len)}, row ${merged % len})`);
      }
    }
    feeds[names(l, 'key')] = toOrt(e.k, TensorClass);
    feeds[names(l, 'value')] = toOrt(e.v, TensorClass);
  }
  return feeds;
}

export interface AppendPresentOptions {
  /** Output names; default PRESENT_NAMES (present.{l}.key / .value). */
  names?: KvNames;
}

/**
 * Appends the newest n positions of every layer's `present.*` outputs
 * (onnxruntime Tensors [1, nKvHeads, past + n, headDim], f32 or f16) to the
 * cache, read in place through lastPositions. `outputs` is what
 * session.run() returned. Every output is validated before the first append;
 * the appends then run layer by layer, so leave the cache room (capacity,
 * compress, or autoCompress, which applies as in append): a capacity error
 * at layer l leaves layers before l appended.
 */
export function appendPresent(cache: KvCache, outputs: Readonly<Record<string, unknown>>, n: number, opts?: AppendPresentOptions): void {
  const o = checkOptions('opts', opts, ['names']) as AppendPresentOptions;
  const names = o.names ?? PRESENT_NAMES;
  if (typeof names !== 'function') throw typeError('opts.names', 'a function (layer, kind) => output name', names);
  if (outputs === null || typeof outputs !== 'object') throw typeError('outputs', 'the outputs of session.run()', outputs);
  checkInteger('n', n, 0);
  // Every view first, so a missing or malformed output changes nothing.
  const views: [Tensor<FloatDType>, Tensor<FloatDType>][] = [];
  for (let l = 0; l < cache.nLayers; l++) {
    const kName = names(l, 'key');
    const vName = names(l, 'value');
    views.push([
      lastPositions(outputs[kName] as TensorLike<FloatDType>, n, `outputs["${kName}"]`),
      lastPositions(outputs[vName] as TensorLike<FloatDType>, n, `outputs["${vName}"]`),
    ]);
  }
  // Shapes and room checked for every layer too, so that no layer is appended when another would fail.
  const want = `[${cache.nKvHeads}, ${n}, ${cache.headDim}]`;
  views.forEach(([k, v], l) => {
    for (const [t, kind] of [[k, 'key'], [v, 'value']] as const) {
      if (t.shape[0] !== cache.nKvHeads || t.shape[2] !== cache.headDim) {
        throw rangeError(`outputs["${names(l, kind)}"]`, `the last ${n} positions of shape ${want} (the cache's nKvHeads and headDim)`, `[${t.shape.join(', ')}]`);
      }
    }
  });
  const lengths = cache.lengths().data;
  const fullest = Math.max(0, ...lengths);
  if (fullest + n > cache.capacity) {
    throw rangeError('n', `at most ${cache.capacity - fullest} new positions (a head already holds ${fullest} of its capacity ${cache.capacity})`, n);
  }
  views.forEach(([k, v], l) => cache.append(l, k, v));
}
