/**
 * Shared helpers for the KvCache tests: exports as per-head rows, a seeded
 * cache builder, and a selection check against float64 reference scores that
 * allows only the rounding the arithmetic permits (see tolerance.ts).
 */
import { expect } from 'vitest';
import { KvCache, type FloatDType, type KvCacheDtype, type Tensor } from '../../lib/index.js';
import { decode3 } from '../reference/attention.js';
import type { RefHead } from '../reference/kv-cache.js';
import type { RefPolicy } from '../reference/kv.js';
import type { Rng } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { f32SumBound, logitBound, probabilityRelBound, U32 } from './tolerance.js';

export const f32 = (shape: number[], data: Float32Array): Tensor<'f32'> => ({ dtype: 'f32', shape, data });

/** [a, b, c] tensor -> a lists of b rows of c float64 values. */
export function rows3(t: Tensor<FloatDType>): number[][][] {
  const [a, b, c] = t.shape as [number, number, number];
  const x = decode3(t);
  return Array.from({ length: a }, (_, h) => Array.from({ length: b }, (_, r) => Array.from(x.subarray((h * b + r) * c, (h * b + r + 1) * c))));
}

/** Export of one layer as per-head lists of rows (only the valid rows). */
export function heads(cache: KvCache, layer: number): RefHead[] {
  const e = cache.export(layer, { dtype: 'f32' });
  const k = rows3(e.k);
  const v = rows3(e.v);
  return Array.from(e.lengths, (n, h) => ({
    k: k[h]!.slice(0, n), v: v[h]!.slice(0, n),
    pos: Array.from(e.positions.data.subarray(h * e.k.shape[1]!, h * e.k.shape[1]! + n)),
    count: new Array<number>(n).fill(1),
  }));
}

export function headTensor(rows: number[][], d: number): Tensor<'f32'> {
  return f32([1, rows.length, d], Float32Array.from(rows.flat()));
}

export interface CacheSpec { nLayers?: number; H: number; d: number; n: number; dtype?: KvCacheDtype; capacity?: number; residual?: number; groupSize?: number; window?: number }

/** A cache with n random tokens per head in every layer, and the f32 inputs that went in. */
export function makeCache(rng: Rng, opts: CacheSpec) {
  const nLayers = opts.nLayers ?? 1;
  const cache = new KvCache({
    nLayers, nKvHeads: opts.H, headDim: opts.d, capacity: opts.capacity ?? Math.max(opts.n, 1) * 2, dtype: opts.dtype ?? 'f32',
    ...(opts.residual !== undefined ? { residual: opts.residual } : {}), ...(opts.groupSize !== undefined ? { groupSize: opts.groupSize } : {}),
    ...(opts.window !== undefined ? { window: opts.window } : {}),
  });
  const inputs: { k: Tensor<'f32'>; v: Tensor<'f32'> }[] = [];
  for (let l = 0; l < nLayers; l++) {
    const k = randomTensor3(rng, 'f32', [opts.H, opts.n, opts.d], 1);
    const v = randomTensor3(rng, 'f32', [opts.H, opts.n, opts.d], 1);
    cache.append(l, k, v);
    inputs.push({ k, v });
  }
  return { cache, inputs };
}

/**
 * `kept` (ascending rows of one head) must be a top-`keep` choice under the
 * float64 scores `ref`, where each score may be off by tol[i] in the kernel:
 * no dropped row may beat a kept one by more than both their tolerances.
 * Rows with +Infinity (forced: window, sinks, recent) must all be kept.
 */
export function expectTopChoice(kept: number[], ref: ArrayLike<number>, tol: ArrayLike<number>, keep: number, label: string): void {
  const n = ref.length;
  expect(kept.length, `${label}: rows kept`).toBe(Math.min(keep, n));
  for (let j = 1; j < kept.length; j++) expect(kept[j]! > kept[j - 1]!, `${label}: kept rows ascending and distinct`).toBe(true);
  const isKept = new Uint8Array(n);
  for (const r of kept) isKept[r] = 1;
  // Need: every dropped d and kept k have ref[d] - tol[d] <= ref[k] + tol[k].
  let dropped = -1;
  let keptLow = -1;
  for (let r = 0; r < n; r++) {
    if (isKept[r]) {
      if (keptLow < 0 || ref[r]! + tol[r]! < ref[keptLow]! + tol[keptLow]!) keptLow = r;
    } else if (dropped < 0 || ref[r]! - tol[r]! > ref[dropped]! - tol[dropped]!) {
      dropped = r;
    }
  }
  if (keptLow < 0 || dropped < 0) return;
  const ok = ref[dropped]! - tol[dropped]! <= ref[keptLow]! + tol[keptLow]!;
  if (!ok) {
    expect.fail(`${label}: kept row ${keptLow} (reference score ${ref[keptLow]}) but dropped row ${dropped} (${ref[dropped]}); rounding allows ${tol[keptLow]! + tol[dropped]!}`);
  }
}

/**
 * Rounding bound of each f32 score of a policy, relative to the float64
 * reference score (tolerance.ts): exact for streamingllm (positions) and
 * random (integer hashes); knorm sums headDim squares; the attention-based
 * policies sum `terms` softmax probabilities (probabilityRelBound), ems
 * divides two such sums. qAmp, kAmp: the largest |q|, |k| element.
 */
export function scoreTolerance(
  policy: RefPolicy, ref: ArrayLike<number>,
  dims: { headDim: number; nKv: number; rows: number; group: number; qAmp?: number; kAmp?: number },
): Float64Array {
  const { headDim: d, nKv, rows, group } = dims;
  const qAmp = dims.qAmp ?? 1, kAmp = dims.kAmp ?? 1;
  let rel: number;
  switch (policy.name) {
    case 'streamingllm':
    case 'random':
      rel = 0;
      break;
    case 'knorm':
      rel = (d + 2) * U32;
      break;
    case 'expected_attention': {
      // mu.k / sqrt(d) + k^T S k / (2d): d + d^2 products of terms up to these sizes.
      const mag = (d * qAmp * kAmp) / Math.sqrt(d) + (d * d * 4 * qAmp * qAmp * kAmp * kAmp) / (2 * d);
      rel = probabilityRelBound(f32SumBound(d * d + d + rows, mag), nKv) + (group + d) * U32;
      break;
    }
    default: {
      const terms = Math.max(rows, 1) * group * (policy.kernel ?? 5) + 1;
      rel = probabilityRelBound(logitBound(d, (d * qAmp * kAmp) / Math.sqrt(d)), nKv) + terms * U32;
      if (policy.name === 'ems') rel = 2 * rel + nKv * U32;
    }
  }
  return Float64Array.from(ref, (s) => (Number.isFinite(s) ? rel * Math.abs(s) + (rel > 0 ? 1e-30 : 0) : 0));
}

/**
 * Fails unless the top-`keep` choice under `ref` is decisive: the keep-th and
 * (keep+1)-th best scores differ by more than their rounding bounds. Tests
 * that compare exact selections (merging, AdaKV counts) need this, or a
 * rounding-level tie could pick either row.
 */
export function expectDecisive(ref: ArrayLike<number>, tol: ArrayLike<number>, keep: number, label: string): void {
  const order = Array.from({ length: ref.length }, (_, i) => i).sort((a, b) => ref[b]! - ref[a]! || a - b);
  if (keep <= 0 || keep >= ref.length) return;
  const a = order[keep - 1]!, b = order[keep]!;
  if (ref[a] === Infinity && ref[b] === Infinity) expect.fail(`${label}: rows ${a} and ${b} are both forced (+Infinity) at the budget edge`);
  const gap = ref[a]! - ref[b]!;
  expect(gap, `${label}: the case must separate the ${keep}th and ${keep + 1}th scores by more than rounding (choose another seed)`).toBeGreaterThan(tol[a]! + tol[b]!);
}
