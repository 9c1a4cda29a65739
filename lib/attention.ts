/**
 * Attention over full, strided, masked or index-selected KV caches.
 *
 *   q    f32           [nHeads,   nQ,  headDim]
 *   k, v f32|f16|bf16  [nKvHeads, nKv, headDim]   (strides allowed: a view
 *                                                  into a larger cache)
 *   out  f32           [nHeads,   nQ,  headDim]
 * Tensors may be onnxruntime / transformers.js Tensors (TensorLike), and q,
 * k, v may carry a leading batch dimension of 1 ([1, nHeads, nQ, headDim]).
 * GQA / MQA: nHeads % nKvHeads == 0; query head h reads KV head
 * floor(h / (nHeads / nKvHeads)).
 */
import { ATTENTION_HEADER, DTYPE_CODE, native, type NativeAttentionParams } from './native.js';
import { rangeError, typeError } from './errors.js';
import type { FloatDType, Tensor, TensorLike } from './tensor.js';
import { anySharesBuffer, checkBoolean, checkNoOverlap, checkNumber, checkOptions, checkTensor, checkUnshared } from './validate.js';

export interface AttentionOptions {
  /** Logit scale; default 1/sqrt(headDim). Finite and > 0. */
  scale?: number;
  /** Query i sees key positions p <= nKv - nQ + i (queries are the last nQ positions). */
  causal?: boolean;
  /**
   * [nQ, nKv] mask shared by all heads: 'bool' (1 = may attend) or 'f32'
   * (added to the logits; -Infinity masks).
   */
  mask?: TensorLike<'bool'> | TensorLike<'f32'>;
  /**
   * Speculative-decoding tree over the last nQ keys, as a parent array of
   * length nQ: parents[i] is the tree index of query i's parent (< i), or -1
   * for a root. Query i sees every key before the tree, plus the tree keys of
   * its ancestors and itself. At most MAX_TREE_NODES (4096) nodes.
   */
  treeMask?: Int32Array | readonly number[];
  /**
   * i32 [nKvHeads, nSel]: attend only to these key positions (sparse /
   * gathered attention: Quest, TidalDecode). Every value in [0, nKv).
   */
  indices?: TensorLike<'i32'>;
  /** Tanh soft-capping of the logits (Gemma 2): softcap * tanh(s / softcap). */
  softcap?: number;
  /** Also return the log-sum-exp of each row's logits, f32 [nHeads, nQ]. */
  returnLse?: boolean;
  /**
   * Also return f32 [nKvHeads, nKv]: per key, its softmax probability summed
   * over the queries and the query heads of its group (H2O-style scores).
   */
  returnKeyMass?: boolean;
  /** Write the output here (f32, nHeads*nQ*headDim elements) instead of allocating. */
  out?: Float32Array;
  /**
   * Proportional attention (ToMe): f32 [nKv], the size of each key (how many
   * tokens it stands for, finite and > 0). Adds log(keySizes[p]) to every
   * logit of key p, after the softcap, for every query and head. Works with
   * every other option: it is folded into an f32 additive [nQ, nKv] mask
   * (with `mask` too: a bool mask's 0 becomes -Infinity), so it costs
   * nQ * nKv floats per call.
   */
  keySizes?: Float32Array | TensorLike<'f32'>;
}

export interface AttentionResult {
  output: Tensor<'f32'>;
  lse?: Tensor<'f32'>;
  keyMass?: Tensor<'f32'>;
}

const F32 = ['f32'] as const;
const FLOAT_TYPES: readonly FloatDType[] = ['f32', 'f16', 'bf16'];
const Q_DIMS = ['nHeads', 'nQ', 'headDim'] as const;
const KV_DIMS = ['nKvHeads', 'nKv', 'headDim'] as const;

const OPTION_NAMES = [
  'scale', 'causal', 'mask', 'treeMask', 'indices', 'softcap', 'returnLse', 'returnKeyMass', 'out', 'keySizes',
] as const;

/** Most nodes a treeMask may have (native/attention/attention.h kMaxTreeNodes). */
export const MAX_TREE_NODES = 4096;

export interface Prepared {
  params: NativeAttentionParams;
  result: AttentionResult;
}

function checkTree(value: unknown, nQ: number, nKv: number): Int32Array {
  if (!(value instanceof Int32Array) && !Array.isArray(value)) {
    throw typeError('options.treeMask', `a parent array (Int32Array or number[]) of length nQ = ${nQ}`, value);
  }
  if (value.length !== nQ) throw rangeError('options.treeMask.length', `nQ = ${nQ}`, value.length);
  if (nQ > nKv) throw rangeError('options.treeMask', `a tree of at most nKv = ${nKv} nodes (the tree is the last nQ keys)`, `${nQ} nodes`);
  if (nQ > MAX_TREE_NODES) throw rangeError('options.treeMask', `a tree of at most ${MAX_TREE_NODES} nodes`, `${nQ} nodes`);
  return readParents('options.treeMask', value);
}

/** A tree's parent array copied to int32: each entry -1 (a root) or an earlier node. */
export function readParents(arg: string, value: ArrayLike<unknown>): Int32Array {
  const n = value.length;
  const parents = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const p = value[i];
    if (typeof p !== 'number' || !Number.isInteger(p) || p < -1 || p >= i) {
      throw rangeError(`${arg}[${i}]`, `-1 (a root) or the index of an earlier node in [0, ${i - 1}]`, p);
    }
    parents[i] = p;
  }
  return parents;
}

function checkIndices(value: unknown, nKvHeads: number, nKv: number): { data: Int32Array; nSel: number } {
  const t = checkTensor('options.indices', value, ['i32'] as const, ['nKvHeads', 'nSel']);
  if (t.shape[0] !== nKvHeads) throw rangeError('options.indices.shape[0]', `nKvHeads = ${nKvHeads}`, t.shape[0]);
  const nSel = t.shape[1]!;
  const data = t.data as Int32Array;
  const dense = t.strides[0] === nSel ? data.subarray(0, nKvHeads * nSel) : new Int32Array(nKvHeads * nSel);
  for (let h = 0; h < nKvHeads; h++) {
    for (let s = 0; s < nSel; s++) {
      const idx = data[h * t.strides[0]! + s]!;
      if (idx < 0 || idx >= nKv) {
        throw rangeError(`options.indices[${h}][${s}]`, `a key position in [0, ${nKv - 1}]`, idx);
      }
      if (dense !== data) dense[h * nSel + s] = idx;
    }
  }
  return { data: dense, nSel };
}

/**
 * keySizes [nKv] folded into a fresh additive mask [nQ, nKv]: log(size) per
 * key, plus the given mask (a bool mask as 0 / -Infinity).
 */
function foldKeySizes(value: unknown, nQ: number, nKv: number, boolMask?: Uint8Array, additiveMask?: Float32Array): Float32Array {
  const data = value instanceof Float32Array ? value : (checkTensor('options.keySizes', value, F32, ['nKv']).data as Float32Array);
  if (data.length !== nKv) throw rangeError('options.keySizes.length', `nKv = ${nKv}`, data.length);
  const logs = new Float32Array(nKv);
  for (let p = 0; p < nKv; p++) {
    const s = data[p]!;
    if (!(s > 0 && s < Infinity)) throw rangeError(`options.keySizes[${p}]`, 'a finite size > 0', s);
    logs[p] = Math.log(s);
  }
  const out = new Float32Array(nQ * nKv);
  for (let i = 0; i < nQ; i++) {
    for (let p = 0; p < nKv; p++) {
      const x = i * nKv + p;
      const base = additiveMask ? additiveMask[x]! : boolMask ? (boolMask[x] ? 0 : -Infinity) : 0;
      out[x] = base + logs[p]!;
    }
  }
  return out;
}

/**
 * Validates the arguments of attention() and builds the flat native
 * parameters plus the result tensors they write (internal: lib/cuda.ts uses it).
 */
export function prepareAttention(q: unknown, k: unknown, v: unknown, options: unknown): Prepared {
  const opts = checkOptions('options', options, OPTION_NAMES) as AttentionOptions;
  const qt = checkTensor('q', q, F32, Q_DIMS);
  const kt = checkTensor('k', k, FLOAT_TYPES, KV_DIMS);
  const vt = checkTensor('v', v, FLOAT_TYPES, KV_DIMS);
  const [nHeads, nQ, headDim] = qt.shape as [number, number, number];
  const [nKvHeads, nKv, kDim] = kt.shape as [number, number, number];
  if (kDim !== headDim) throw rangeError('k.shape[2] (headDim)', `q's headDim = ${headDim}`, kDim);
  if (vt.shape[0] !== nKvHeads || vt.shape[1] !== nKv || vt.shape[2] !== headDim) {
    throw rangeError('v.shape', `[${nKvHeads}, ${nKv}, ${headDim}] (the shape of k)`, `[${vt.shape.join(', ')}]`);
  }
  if (nHeads < 1) throw rangeError('q.shape[0] (nHeads)', 'at least 1 head', nHeads);
  if (headDim < 1) throw rangeError('q.shape[2] (headDim)', 'headDim >= 1', headDim);
  if (nKvHeads < 1 || nHeads % nKvHeads !== 0) {
    throw rangeError('k.shape[0] (nKvHeads)', `a divisor of nHeads = ${nHeads} (GQA)`, nKvHeads);
  }

  const scale = opts.scale === undefined ? 1 / Math.sqrt(headDim) : checkNumber('options.scale', opts.scale, { positive: true });
  const softcap = opts.softcap === undefined ? 0 : checkNumber('options.softcap', opts.softcap, { positive: true });
  const causal = checkBoolean('options.causal', opts.causal, false);
  const returnLse = checkBoolean('options.returnLse', opts.returnLse, false);
  const returnKeyMass = checkBoolean('options.returnKeyMass', opts.returnKeyMass, false);

  let boolMask: Uint8Array | undefined;
  let additiveMask: Float32Array | undefined;
  if (opts.mask !== undefined) {
    const m = checkTensor('options.mask', opts.mask, ['bool', 'f32'] as const, ['nQ', 'nKv']);
    if (m.shape[0] !== nQ || m.shape[1] !== nKv) {
      throw rangeError('options.mask.shape', `[nQ, nKv] = [${nQ}, ${nKv}]`, `[${m.shape.join(', ')}]`);
    }
    if (m.strides[0] !== nKv) throw rangeError('options.mask.strides', 'a contiguous [nQ, nKv] mask', `[${m.strides.join(', ')}]`);
    if (m.dtype === 'bool') boolMask = (m.data as Uint8Array).subarray(0, nQ * nKv);
    else additiveMask = (m.data as Float32Array).subarray(0, nQ * nKv);
  }
  if (opts.keySizes !== undefined) {
    additiveMask = foldKeySizes(opts.keySizes, nQ, nKv, boolMask, additiveMask);
    boolMask = undefined;
  }
  const treeParents = opts.treeMask === undefined ? undefined : checkTree(opts.treeMask, nQ, nKv);
  const sparse = opts.indices === undefined ? undefined : checkIndices(opts.indices, nKvHeads, nKv);

  const outLen = nHeads * nQ * headDim;
  let out: Float32Array;
  if (opts.out !== undefined) {
    if (!(opts.out instanceof Float32Array)) throw typeError('options.out', `a Float32Array of ${outLen} elements`, opts.out);
    if (opts.out.length !== outLen) throw rangeError('options.out.length', `${outLen} (nHeads * nQ * headDim)`, opts.out.length);
    checkUnshared('options.out', opts.out);
    // The kernel writes out while it still reads the inputs: no shared memory.
    // (anySharesBuffer is the cheap test; checkNoOverlap names the culprit.)
    const inputs = [qt.data, kt.data, vt.data, boolMask ?? additiveMask, treeParents, sparse?.data] as const;
    if (anySharesBuffer(opts.out, inputs)) {
      checkNoOverlap([['options.out', opts.out]], [
        ['q', inputs[0]], ['k', inputs[1]], ['v', inputs[2]], ['options.mask', inputs[3]],
        ['options.treeMask', inputs[4]], ['options.indices', inputs[5]],
      ]);
    }
    out = opts.out;
  } else {
    out = new Float32Array(outLen);
  }
  const lse = returnLse ? new Float32Array(nHeads * nQ) : undefined;
  const keyMass = returnKeyMass ? new Float32Array(nKvHeads * nKv) : undefined;

  const params: NativeAttentionParams = {
    nHeads, nKvHeads, nQ, nKv, headDim,
    q: qt.data as Float32Array,
    qStrides: [qt.strides[0]!, qt.strides[1]!],
    k: kt.data as Float32Array | Uint16Array,
    kDtype: DTYPE_CODE[kt.dtype],
    kStrides: [kt.strides[0]!, kt.strides[1]!],
    v: vt.data as Float32Array | Uint16Array,
    vDtype: DTYPE_CODE[vt.dtype],
    vStrides: [vt.strides[0]!, vt.strides[1]!],
    scale, softcap, causal,
    nSel: sparse ? sparse.nSel : 0,
    out,
  };
  if (boolMask) params.boolMask = boolMask;
  if (additiveMask) params.additiveMask = additiveMask;
  if (treeParents) params.treeParents = treeParents;
  if (sparse) params.indices = sparse.data;
  if (lse) params.lse = lse;
  if (keyMass) params.keyMass = keyMass;

  const result: AttentionResult = { output: { dtype: 'f32', shape: [nHeads, nQ, headDim], data: out } };
  if (lse) result.lse = { dtype: 'f32', shape: [nHeads, nQ], data: lse };
  if (keyMass) result.keyMass = { dtype: 'f32', shape: [nKvHeads, nKv], data: keyMass };
  return { params, result };
}

// One header reused by every call: the binding copies it out before it
// returns (sync) or before the promise is created (async), and no JS runs
// between filling it and that copy.
const HEADER = new Float64Array(ATTENTION_HEADER.length);

/**
 * The header of the positional native arguments (NativeAttentionArgs) of
 * validated params: the binding then reads no params object (no property
 * lookups, no snapshot).
 */
function header(p: NativeAttentionParams): Float64Array {
  const h = HEADER;
  h[0] = p.nHeads; h[1] = p.nKvHeads; h[2] = p.nQ; h[3] = p.nKv; h[4] = p.headDim; h[5] = p.nSel;
  h[6] = p.kDtype; h[7] = p.vDtype;
  h[8] = p.qStrides[0]; h[9] = p.qStrides[1]; h[10] = p.kStrides[0]; h[11] = p.kStrides[1];
  h[12] = p.vStrides[0]; h[13] = p.vStrides[1];
  h[14] = p.scale; h[15] = p.softcap; h[16] = p.causal ? 1 : 0;
  return h;
}

/** Attention, computed synchronously on the native thread pool. Shapes: see the module comment. */
export function attention(
  q: TensorLike<'f32'>,
  k: TensorLike<FloatDType>,
  v: TensorLike<FloatDType>,
  options?: AttentionOptions,
): AttentionResult {
  const { params, result } = prepareAttention(q, k, v, options);
  const p = params;
  native().attention(header(p), p.q, p.k, p.v, p.out, p.lse, p.keyMass, p.boolMask, p.additiveMask, p.treeParents, p.indices);
  return result;
}

/**
 * Attention computed off the event loop. The inputs are copied before this
 * returns and the result is written into `out` when the promise settles
 * (docs/guarantees.md): the caller may write to, resize or transfer any of
 * its arrays meanwhile; an `out` resized or transferred by then is left
 * alone and the promise rejects with code ERR_OUTPUT_CHANGED.
 * Argument errors reject the promise.
 */
export async function attentionAsync(
  q: TensorLike<'f32'>,
  k: TensorLike<FloatDType>,
  v: TensorLike<FloatDType>,
  options?: AttentionOptions,
): Promise<AttentionResult> {
  const { params, result } = prepareAttention(q, k, v, options);
  const p = params;
  await native().attentionAsync(header(p), p.q, p.k, p.v, p.out, p.lse, p.keyMass, p.boolMask, p.additiveMask, p.treeParents, p.indices);
  return result;
}
