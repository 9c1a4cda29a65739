// Batched Orthogonal Matching Pursuit (native/text/omp.h), the core of
// embedding transplantation (./transplant.ts). Semantics of mergekit's
// batch_omp (arcee-ai/mergekit, mergekit/tokensurgeon/omp.py): per target,
// up to k atoms picked greedily by max |<residual, atom>|, every picked
// coefficient refit by least squares after every step; k = 64 by default.
import { rangeError, typeError } from '../errors.js';
import { native } from '../native.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';

/** Options of {@link ompBatch}. */
export interface OmpOptions {
  /** Most atoms per target, in [1, 1024]. Default 64 (mergekit's `--k`). */
  k?: number;
  /** Bytes of Gram columns (nAtoms floats each) cached across targets. Default 1 GiB. */
  gramCacheBytes?: number;
}

/** Options of {@link ompBatchAsync}. */
export interface OmpAsyncOptions extends OmpOptions {
  /** Called off and on with the number of targets finished. */
  onProgress?: (targetsDone: number) => void;
}

/**
 * Per target t: `counts[t]` atoms picked (<= k), in pick order, at
 * `indices[t * k + i]` with least-squares coefficients `coeffs[t * k + i]`;
 * slots past the count hold -1 and 0.
 */
export interface OmpResult {
  k: number;
  nTargets: number;
  indices: Int32Array;
  coeffs: Float32Array;
  counts: Int32Array;
}

export const OMP_DEFAULT_K = 64;
export const OMP_MAX_K = 1024;
const OPTION_NAMES = ['k', 'gramCacheBytes'] as const;
const ASYNC_OPTION_NAMES = [...OPTION_NAMES, 'onProgress'] as const;

/** Checks a row-major f32 matrix of `dim` columns: every value finite. Returns its row count. */
export function checkF32Rows(arg: string, value: unknown, dim: number): number {
  if (!(value instanceof Float32Array)) throw typeError(arg, `a Float32Array [rows, ${dim}]`, value);
  if (dim === 0 ? value.length !== 0 : value.length % dim !== 0) {
    throw rangeError(arg, `a length that is a multiple of dim = ${dim}`, value.length);
  }
  for (let i = 0; i < value.length; i++) {
    if (!Number.isFinite(value[i]!)) throw rangeError(`${arg}[${i}]`, 'a finite number', value[i]);
  }
  return dim === 0 ? 0 : value.length / dim;
}

interface Prepared {
  params: Parameters<ReturnType<typeof native>['ompBatch']>[0];
  result: OmpResult;
}

function prepare(atoms: unknown, targets: unknown, dim: unknown, opts: Record<string, unknown>): Prepared {
  const d = checkInteger('dim', dim, 1, 1 << 24);
  const nAtoms = checkF32Rows('atoms', atoms, d);
  if (nAtoms > 0x7fffffff) throw rangeError('atoms', 'fewer than 2^31 rows', nAtoms);
  const nTargets = checkF32Rows('targets', targets, d);
  const k = opts.k === undefined ? OMP_DEFAULT_K : checkInteger('options.k', opts.k, 1, OMP_MAX_K);
  const gramCacheBytes = opts.gramCacheBytes === undefined ? 2 ** 30 : checkNumber('options.gramCacheBytes', opts.gramCacheBytes);
  if (gramCacheBytes < 0) throw rangeError('options.gramCacheBytes', 'a number >= 0', gramCacheBytes);
  const result: OmpResult = {
    k, nTargets,
    indices: new Int32Array(nTargets * k),
    coeffs: new Float32Array(nTargets * k),
    counts: new Int32Array(nTargets),
  };
  return {
    params: {
      atoms: atoms as Float32Array, nAtoms, targets: targets as Float32Array, nTargets, dim: d, k, gramCacheBytes,
      outIndices: result.indices, outCoeffs: result.coeffs, outCounts: result.counts,
    },
    result,
  };
}

/**
 * Sparse codes of `targets` over `atoms` by OMP.
 *
 * Shapes: atoms f32 [nAtoms, dim], targets f32 [nTargets, dim] (row-major,
 * finite) -> indices i32 / coeffs f32 [nTargets, k], counts i32 [nTargets].
 * An atom that is numerically a combination of the picked ones (a
 * duplicate, or k > rank) is skipped; a target stops early when its residual
 * is zero or orthogonal to every atom; a zero target picks nothing.
 * Threads over targets (setThreads); results do not depend on the thread count.
 */
export function ompBatch(atoms: Float32Array, targets: Float32Array, dim: number, options: OmpOptions = {}): OmpResult {
  const opts = checkOptions('options', options, OPTION_NAMES);
  const { params, result } = prepare(atoms, targets, dim, opts);
  native().ompBatch(params);
  return result;
}

/** {@link ompBatch} off the event loop (inputs are copied first: the caller may change them meanwhile). */
export async function ompBatchAsync(atoms: Float32Array, targets: Float32Array, dim: number, options: OmpAsyncOptions = {}): Promise<OmpResult> {
  const opts = checkOptions('options', options, ASYNC_OPTION_NAMES);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw typeError('options.onProgress', 'a function', opts.onProgress);
  const { params, result } = prepare(atoms, targets, dim, opts);
  // Progress events travel on their own queue, so the promise can settle
  // before the last one is delivered (or a stale one after it): report only
  // increasing counts, and the total once the work is done.
  const user = opts.onProgress as ((n: number) => void) | undefined;
  let last = -1;
  const report = user && ((n: number): void => {
    if (n > last) {
      last = n;
      user(n);
    }
  });
  await native().ompBatchAsync(params, report);
  report?.(result.nTargets);
  return result;
}

/**
 * Applies sparse codes to another space: out[t] = sum_i coeffs[t, i] * base[indices[t, i]].
 * Shapes: codes over nAtoms atoms, base f32 [nAtoms, baseDim] -> f32 [nTargets, baseDim] (float64 sums).
 */
export function applyOmpCodes(codes: OmpResult, base: Float32Array, baseDim: number): Float32Array {
  const bd = checkInteger('baseDim', baseDim, 1, 1 << 24);
  const nBase = checkF32Rows('base', base, bd);
  const out = new Float32Array(codes.nTargets * bd);
  const acc = new Float64Array(bd);
  for (let t = 0; t < codes.nTargets; t++) {
    acc.fill(0);
    for (let i = 0; i < codes.counts[t]!; i++) {
      const j = codes.indices[t * codes.k + i]!;
      if (j < 0 || j >= nBase) throw rangeError('codes.indices', `atoms in [0, ${nBase})`, j);
      const c = codes.coeffs[t * codes.k + i]!;
      for (let d = 0; d < bd; d++) acc[d] = acc[d]! + c * base[j * bd + d]!;
    }
    for (let d = 0; d < bd; d++) out[t * bd + d] = acc[d]!;
  }
  return out;
}
