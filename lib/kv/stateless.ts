/**
 * KV-cache compression, stateless API: for packages that own their KV cache.
 *
 *   k, v      f32|f16|bf16 [nKvHeads, nKv, headDim]   (strides allowed)
 *   queries   f32          [nHeads,   nQ,  headDim]   optional; the last nQ
 *                                                     positions (1 <= nQ <= nKv);
 *                                                     GQA: nHeads % nKvHeads == 0
 *   keyMass   f32          [nKvHeads, nKv]            optional accumulated
 *                                                     attention (attention()'s
 *                                                     returnKeyMass), for h2o, ems
 *   draftQueries f32       [nHeads, nDraft, headDim]  optional queries of future /
 *                                                     draft tokens (speckv); each
 *                                                     sees all nKv keys; nHeads
 *                                                     as in queries
 *   scores    f32          [nKvHeads, nKv]            higher = keep
 *   indices   i32          [nKvHeads, nKeep]          kept positions, ascending
 *
 * Inputs may be onnxruntime / transformers.js Tensors (TensorLike), each with
 * a leading batch dimension of 1 or without ([1, nKvHeads, nKv, headDim]).
 * scoreKv -> selectKv -> compaction; compressKv does all three.
 */
import { DTYPE_CODE, native, type NativeKvScoreParams } from '../native.js';
import { rangeError, typeError } from '../errors.js';
import type { FloatDType, Tensor, TensorLike } from '../tensor.js';
import { checkInteger, checkNoOverlap, checkNumber, checkOptions, checkTensor, checkUnshared, type CheckedTensor } from '../validate.js';
import { KV_NEEDS_DRAFT_QUERIES, KV_NEEDS_QUERIES, checkBudgetFits, policyOptions, resolvePolicy, type ResolvedPolicy, type KvPolicy } from './policies.js';

/**
 * The inputs of scoreKv / compressKv. F and Q are the tensor types: plain
 * Tensors by default (so code that reads `inputs.k.shape` keeps compiling);
 * the functions take KvInputsLike, where any TensorLike goes.
 */
export interface KvInputs<F = Tensor<FloatDType>, Q = Tensor<'f32'>> {
  k: F;
  v: F;
  /** The observation window: queries of the last nQ positions. Needed by tova, snapkv, expected_attention, ems (and h2o without keyMass); optional for speckv. */
  queries?: Q;
  /** Accumulated attention per key (h2o, ems). */
  keyMass?: Q;
  /**
   * Queries of draft / lookahead tokens that follow the cache (speckv): each
   * attends to every one of the nKv keys. f32 [nHeads, nDraft, headDim].
   */
  draftQueries?: Q;
  /** Seed of the random policy when the policy config has none (default 0). */
  seed?: number;
}

/**
 * How many tokens to keep per KV head: `{ keep: n }` (0 <= n <= nKv) or
 * `{ compressionRatio: r }`, the fraction removed (kvpress semantics,
 * 0 <= r < 1): nKeep = nKv - floor(nKv * r), so the removed count rounds down
 * and a non-empty cache keeps at least one token.
 */
/** KvInputs whose tensors may be onnxruntime / transformers.js Tensors (or batched). */
export type KvInputsLike = KvInputs<TensorLike<FloatDType>, TensorLike<'f32'>>;

export type KvBudget = { keep: number } | { compressionRatio: number };

export interface SelectKvOptions {
  /** Write the indices here (nKvHeads * nKeep elements) instead of allocating. */
  out?: Int32Array;
}

export interface CompressedKv {
  k: Tensor<FloatDType>;
  v: Tensor<FloatDType>;
  indices: Tensor<'i32'>;
}

const INPUT_NAMES = ['k', 'v', 'queries', 'keyMass', 'draftQueries', 'seed'] as const;
const FLOAT_TYPES: FloatDType[] = ['f32', 'f16', 'bf16'];

interface CheckedInputs {
  k: CheckedTensor<FloatDType>;
  v: CheckedTensor<FloatDType>;
  queries?: CheckedTensor<'f32'>;
  keyMass?: Float32Array;
  draftQueries?: CheckedTensor<'f32'>;
  seed: number | undefined;
  nKvHeads: number;
  nKv: number;
  headDim: number;
}

function dense2(t: CheckedTensor<'f32'>): Float32Array {
  const [rows, cols] = t.shape as [number, number];
  const data = t.data as Float32Array;
  if (t.strides[0] === cols || rows <= 1) return data.subarray(0, rows * cols);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * t.strides[0]!, r * t.strides[0]! + cols), r * cols);
  return out;
}

function checkInputs(inputs: unknown): CheckedInputs {
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw typeError('inputs', 'an object { k, v, queries?, keyMass?, draftQueries?, seed? }', inputs);
  }
  const o = checkOptions('inputs', inputs, INPUT_NAMES) as Partial<KvInputsLike>;
  const k = checkTensor('inputs.k', o.k, FLOAT_TYPES, ['nKvHeads', 'nKv', 'headDim']);
  const v = checkTensor('inputs.v', o.v, FLOAT_TYPES, ['nKvHeads', 'nKv', 'headDim']);
  const [nKvHeads, nKv, headDim] = k.shape as [number, number, number];
  if (nKvHeads < 1) throw rangeError('inputs.k.shape[0] (nKvHeads)', 'at least 1 KV head', nKvHeads);
  if (headDim < 1) throw rangeError('inputs.k.shape[2] (headDim)', 'headDim >= 1', headDim);
  if (nKv > 0x7fffffff) throw rangeError('inputs.k.shape[1] (nKv)', 'nKv < 2^31', nKv);
  if (v.shape[0] !== nKvHeads || v.shape[1] !== nKv || v.shape[2] !== headDim) {
    throw rangeError('inputs.v.shape', `[${nKvHeads}, ${nKv}, ${headDim}] (the shape of k)`, `[${v.shape.join(', ')}]`);
  }
  const out: CheckedInputs = { k, v, seed: undefined, nKvHeads, nKv, headDim };
  if (o.queries !== undefined) {
    const q = checkTensor('inputs.queries', o.queries, ['f32'] as const, ['nHeads', 'nQ', 'headDim']);
    const [nHeads, nQ, qDim] = q.shape as [number, number, number];
    if (qDim !== headDim) throw rangeError('inputs.queries.shape[2] (headDim)', `k's headDim = ${headDim}`, qDim);
    if (nHeads < 1 || nHeads % nKvHeads !== 0) {
      throw rangeError('inputs.queries.shape[0] (nHeads)', `a multiple of nKvHeads = ${nKvHeads} (GQA)`, nHeads);
    }
    if (nQ < 1 || nQ > nKv) throw rangeError('inputs.queries.shape[1] (nQ)', `1 to nKv = ${nKv} (the last nQ positions)`, nQ);
    out.queries = q;
  }
  if (o.keyMass !== undefined) {
    const m = checkTensor('inputs.keyMass', o.keyMass, ['f32'] as const, ['nKvHeads', 'nKv']);
    if (m.shape[0] !== nKvHeads || m.shape[1] !== nKv) {
      throw rangeError('inputs.keyMass.shape', `[nKvHeads, nKv] = [${nKvHeads}, ${nKv}]`, `[${m.shape.join(', ')}]`);
    }
    out.keyMass = dense2(m);
  }
  if (o.draftQueries !== undefined) {
    const d = checkTensor('inputs.draftQueries', o.draftQueries, ['f32'] as const, ['nHeads', 'nDraft', 'headDim']);
    const [nHeads, nDraft, dDim] = d.shape as [number, number, number];
    if (dDim !== headDim) throw rangeError('inputs.draftQueries.shape[2] (headDim)', `k's headDim = ${headDim}`, dDim);
    if (out.queries && nHeads !== out.queries.shape[0]) {
      throw rangeError('inputs.draftQueries.shape[0] (nHeads)', `queries' nHeads = ${out.queries.shape[0]}`, nHeads);
    }
    if (nHeads < 1 || nHeads % nKvHeads !== 0) {
      throw rangeError('inputs.draftQueries.shape[0] (nHeads)', `a multiple of nKvHeads = ${nKvHeads} (GQA)`, nHeads);
    }
    if (nDraft < 1) throw rangeError('inputs.draftQueries.shape[1] (nDraft)', 'at least 1 draft query', nDraft);
    out.draftQueries = d;
  }
  if (o.seed !== undefined) out.seed = checkInteger('inputs.seed', o.seed, 0);
  return out;
}

/** The policy's required inputs are present (queries, draft queries, key mass). */
function checkPolicyInputs(p: ResolvedPolicy, c: CheckedInputs): void {
  if (KV_NEEDS_QUERIES.has(p.name) && !c.queries) {
    throw typeError('inputs.queries', `a tensor [nHeads, nQ, headDim] (policy "${p.name}" needs queries)`, undefined);
  }
  if (KV_NEEDS_DRAFT_QUERIES.has(p.name) && !c.draftQueries) {
    throw typeError('inputs.draftQueries', `a tensor [nHeads, nDraft, headDim] (policy "${p.name}" needs draft queries)`, undefined);
  }
  if (p.name === 'h2o' && !c.queries && !c.keyMass) {
    throw typeError('inputs.queries', 'a tensor [nHeads, nQ, headDim] or inputs.keyMass (policy "h2o" needs one of them)', undefined);
  }
}

function scoreChecked(policy: unknown, c: CheckedInputs): Tensor<'f32'> {
  const p = resolvePolicy(policy);
  checkPolicyInputs(p, c);
  const scores = new Float32Array(c.nKvHeads * c.nKv);
  const params: NativeKvScoreParams = {
    policy: p.name,
    nHeads: c.queries ? c.queries.shape[0]! : c.draftQueries ? c.draftQueries.shape[0]! : 0,
    nKvHeads: c.nKvHeads,
    nQ: c.queries ? c.queries.shape[1]! : 0,
    nKv: c.nKv,
    headDim: c.headDim,
    k: c.k.data as Float32Array | Uint16Array,
    kDtype: DTYPE_CODE[c.k.dtype],
    kStrides: [c.k.strides[0]!, c.k.strides[1]!],
    v: c.v.data as Float32Array | Uint16Array,
    vDtype: DTYPE_CODE[c.v.dtype],
    vStrides: [c.v.strides[0]!, c.v.strides[1]!],
    ...policyOptions(p, c.seed),
    scores,
  };
  if (c.queries) {
    params.q = c.queries.data as Float32Array;
    params.qStrides = [c.queries.strides[0]!, c.queries.strides[1]!];
  }
  if (c.keyMass) params.keyMass = c.keyMass;
  if (c.draftQueries) {
    params.draftQ = c.draftQueries.data as Float32Array;
    params.draftQStrides = [c.draftQueries.strides[0]!, c.draftQueries.strides[1]!];
    params.nDraft = c.draftQueries.shape[1]!;
  }
  native().kvScore(params);
  return { dtype: 'f32', shape: [c.nKvHeads, c.nKv], data: scores };
}

/**
 * Per-token scores of one policy, f32 [nKvHeads, nKv] (higher = keep).
 * Shapes: see the module comment. Inputs are only read.
 */
export function scoreKv(policy: KvPolicy, inputs: KvInputsLike): Tensor<'f32'> {
  return scoreChecked(policy, checkInputs(inputs));
}

/** nKeep for a budget over nKv tokens (see KvBudget). */
export function budgetToKeep(budget: unknown, nKv: number, arg = 'budget'): number {
  if (budget === null || typeof budget !== 'object' || Array.isArray(budget)) {
    throw typeError(arg, '{ keep: n } or { compressionRatio: r }', budget);
  }
  const b = checkOptions(arg, budget, ['keep', 'compressionRatio']);
  const hasKeep = b.keep !== undefined;
  const hasRatio = b.compressionRatio !== undefined;
  if (hasKeep === hasRatio) throw typeError(arg, 'exactly one of keep or compressionRatio', budget);
  if (hasKeep) return checkInteger(`${arg}.keep`, b.keep, 0, nKv);
  const r = checkNumber(`${arg}.compressionRatio`, b.compressionRatio);
  if (!(r >= 0 && r < 1)) throw rangeError(`${arg}.compressionRatio`, 'a fraction removed in [0, 1)', r);
  return nKv - Math.floor(nKv * r);
}

/**
 * The kept positions: i32 [nKvHeads, nKeep], ascending per head. Per head the
 * nKeep highest scores win; among equal scores the earlier position wins.
 * scores: f32 [nKvHeads, nKv] (strides allowed); NaN is a RangeError naming
 * the first NaN position.
 */
export function selectKv(scores: TensorLike<'f32'>, budget: KvBudget, opts?: SelectKvOptions): Tensor<'i32'> {
  const o = checkOptions('opts', opts, ['out']) as SelectKvOptions;
  const s = checkTensor('scores', scores, ['f32'] as const, ['nKvHeads', 'nKv']);
  const [nKvHeads, nKv] = s.shape as [number, number];
  if (nKv > 0x7fffffff) throw rangeError('scores.shape[1] (nKv)', 'nKv < 2^31', nKv);
  const nKeep = budgetToKeep(budget, nKv);
  const dense = dense2(s);
  for (let i = 0; i < dense.length; i++) {
    if (Number.isNaN(dense[i])) {
      throw rangeError(`scores[${Math.floor(i / nKv)}][${i % nKv}]`, 'a number (scores must not be NaN)', NaN);
    }
  }
  let out: Int32Array;
  if (o.out !== undefined) {
    if (!(o.out instanceof Int32Array)) throw typeError('opts.out', `an Int32Array of ${nKvHeads * nKeep} elements`, o.out);
    if (o.out.length !== nKvHeads * nKeep) throw rangeError('opts.out.length', `${nKvHeads * nKeep} (nKvHeads * nKeep)`, o.out.length);
    checkUnshared('opts.out', o.out);
    // Selection writes out while it still reads the scores: no shared memory.
    checkNoOverlap([['opts.out', o.out]], [['scores', s.data]]);
    out = o.out;
  } else {
    out = new Int32Array(nKvHeads * nKeep);
  }
  native().kvSelect({ nKvHeads, nKv, nKeep, scores: dense, out });
  return { dtype: 'i32', shape: [nKvHeads, nKeep], data: out };
}

function gather(t: CheckedTensor<FloatDType>, indices: Tensor<'i32'>, nKv: number, headDim: number): Tensor<FloatDType> {
  const [nKvHeads, nKeep] = indices.shape as [number, number];
  const n = nKvHeads * nKeep * headDim;
  const dst = t.dtype === 'f32' ? new Float32Array(n) : new Uint16Array(n);
  native().kvCompact({
    nKvHeads, nKv, headDim, nKeep,
    dtype: DTYPE_CODE[t.dtype],
    src: t.data as Float32Array | Uint16Array,
    strides: [t.strides[0]!, t.strides[1]!],
    indices: indices.data,
    dst,
  });
  return { dtype: t.dtype, shape: [nKvHeads, nKeep, headDim], data: dst } as Tensor<FloatDType>;
}

/**
 * Scores, selects and compacts: k and v become contiguous
 * [nKvHeads, nKeep, headDim] copies in their input dtypes (rows copied bit
 * for bit), with the kept positions. The inputs are not modified.
 */
export function compressKv(inputs: KvInputsLike, policy: KvPolicy, budget: KvBudget): CompressedKv {
  const c = checkInputs(inputs);
  const keep = budgetToKeep(budget, c.nKv); // reject a bad budget before scoring
  const p = resolvePolicy(policy);
  checkPolicyInputs(p, c);
  checkBudgetFits(p, keep, c.queries ? c.queries.shape[1]! : 0, c.nKv);
  const scores = scoreChecked(policy, c);
  const indices = selectKv(scores, budget);
  return { k: gather(c.k, indices, c.nKv, c.headDim), v: gather(c.v, indices, c.nKv, c.headDim), indices };
}
