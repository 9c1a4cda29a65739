/**
 * Metrics of a compressed cache against the full one, for one layer and one
 * set of evaluation queries:
 *
 *   qs.q          f32 [nHeads, nQ, headDim] (contiguous)
 *   qs.positions  Int32Array(nQ): query i sees the keys at positions <= positions[i]
 *   cache         EvalLayerCache: per KV head g, rows [1, nKeep_g, headDim] and positions
 *   outputs       Float32Array [nHeads, nQ, headDim]
 *   probabilities Float32Array [nHeads, nQ, nKv]: the full cache's attention
 *
 * - relative error of a row: ||o_c - o_full|| / ||o_full|| (0 when both are 0);
 * - retained mass of a row: sum of the full attention probabilities over the
 *   positions the compressed cache keeps (and the query sees);
 * - needle hit: cosine(o_c, needle value) >= NEEDLE_COSINE.
 * GQA: query head h reads KV head floor(h / (nHeads / nKvHeads)).
 */
import { attention } from '../../attention.js';
import type { EvalLayerCache } from './compress.js';
import type { EvalQueries } from './workload.js';

/** A needle counts as retrieved when the output's cosine to its value reaches this. */
export const NEEDLE_COSINE = 0.9;

function groupQueries(qs: EvalQueries, g: number, group: number): { dtype: 'f32'; shape: number[]; data: Float32Array } {
  const [, nQ, headDim] = qs.q.shape as [number, number, number];
  const block = group * nQ * headDim;
  return { dtype: 'f32', shape: [group, nQ, headDim], data: qs.q.data.subarray(g * block, (g + 1) * block) };
}

/** bool [nQ, n]: query i sees kept row j when positions[j] <= qs.positions[i]; undefined when every pair is visible. */
function visibilityMask(qs: EvalQueries, positions: Int32Array): Uint8Array | undefined {
  const nQ = qs.positions.length;
  const n = positions.length;
  let maxPos = -1;
  for (const p of positions) if (p > maxPos) maxPos = p;
  let minQ = Infinity;
  for (const p of qs.positions) if (p < minQ) minQ = p;
  if (maxPos <= minQ) return undefined;
  const mask = new Uint8Array(nQ * n);
  for (let i = 0; i < nQ; i++) {
    const qp = qs.positions[i]!;
    for (let j = 0; j < n; j++) mask[i * n + j] = positions[j]! <= qp ? 1 : 0;
  }
  return mask;
}

/** Attention of the queries over a per-head cache: f32 [nHeads, nQ, headDim]. A head with no visible row gives zeros. */
export function attendCache(qs: EvalQueries, cache: EvalLayerCache): Float32Array {
  const [nHeads, nQ, headDim] = qs.q.shape as [number, number, number];
  const nKvHeads = cache.k.length;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(nHeads * nQ * headDim);
  for (let g = 0; g < nKvHeads; g++) {
    const n = cache.positions[g]!.length;
    if (n === 0) continue;
    const mask = visibilityMask(qs, cache.positions[g]!);
    const block = group * nQ * headDim;
    attention(groupQueries(qs, g, group), cache.k[g]!, cache.v[g]!, {
      ...(mask ? { mask: { dtype: 'bool', shape: [nQ, n], data: mask } } : {}),
      out: out.subarray(g * block, (g + 1) * block),
    });
  }
  return out;
}

/**
 * The full cache's attention probabilities, f32 [nHeads, nQ, nKv] (0 where a
 * query does not see the key). One attention call per (head, query) with
 * returnKeyMass: a single query's key mass is its probability row.
 */
export function fullProbabilities(qs: EvalQueries, full: EvalLayerCache): Float32Array {
  const [nHeads, nQ, headDim] = qs.q.shape as [number, number, number];
  const nKvHeads = full.k.length;
  const nKv = full.positions[0]!.length;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(nHeads * nQ * nKv);
  const scratch = new Float32Array(headDim);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < nQ; i++) {
      const one: EvalQueries = {
        q: { dtype: 'f32', shape: [1, 1, headDim], data: qs.q.data.subarray((h * nQ + i) * headDim, (h * nQ + i + 1) * headDim) },
        positions: qs.positions.subarray(i, i + 1),
      };
      const mask = visibilityMask(one, full.positions[g]!);
      const r = attention(one.q, full.k[g]!, full.v[g]!, {
        ...(mask ? { mask: { dtype: 'bool', shape: [1, nKv], data: mask } } : {}),
        returnKeyMass: true,
        out: scratch,
      });
      out.set(r.keyMass!.data, (h * nQ + i) * nKv);
    }
  }
  return out;
}

/** Per row (h, i): ||comp - full|| / ||full||, Float64Array [nHeads * nQ]; 0 when both rows are zero, 1 when only full is. */
export function relativeErrors(full: Float32Array, comp: Float32Array, headDim: number): Float64Array {
  const rows = full.length / headDim;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let num = 0;
    let den = 0;
    for (let d = 0; d < headDim; d++) {
      const f = full[r * headDim + d]!;
      const diff = comp[r * headDim + d]! - f;
      num += diff * diff;
      den += f * f;
    }
    out[r] = den > 0 ? Math.sqrt(num / den) : num > 0 ? 1 : 0;
  }
  return out;
}

/** Per row (h, i): the full attention's probability mass on the positions kept for h's KV head, Float64Array [nHeads * nQ]. */
export function retainedMass(probs: Float32Array, qs: EvalQueries, cache: EvalLayerCache, nKv: number): Float64Array {
  const [nHeads, nQ] = qs.q.shape as [number, number, number];
  const group = nHeads / cache.positions.length;
  const out = new Float64Array(nHeads * nQ);
  for (let h = 0; h < nHeads; h++) {
    const positions = cache.positions[Math.floor(h / group)]!;
    for (let i = 0; i < nQ; i++) {
      const base = (h * nQ + i) * nKv;
      let s = 0;
      for (const p of positions) s += probs[base + p]!; // invisible positions hold 0
      out[h * nQ + i] = s;
    }
  }
  return out;
}

/** cosine(a[ao..ao+n), b[bo..bo+n)); 0 when either is zero. */
export function cosine(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let d = 0; d < n; d++) {
    const x = a[ao + d]!;
    const y = b[bo + d]!;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

export function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length > 0 ? s / xs.length : NaN;
}
