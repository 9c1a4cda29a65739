/**
 * Rebuilding an image from a reduced scene, and its PSNR (issue 19, "Measure").
 *
 * Every source patch i takes an output row: assignment[i] when it is >= 0
 * (the kept token itself, or the merged token it went to); when it is -1
 * (dropped outright) its nearest output row by squared L2 distance between
 * the ORIGINAL patch i and the output tokens (feature space, i.e. the
 * normalised pixels; ties -> the lowest row). With no output row at all,
 * a dropped patch becomes the zero token (CLIP's mean colour).
 *
 * That feature-nearest fill is an oracle: it looks at the dropped patch's own
 * pixels to pick its stand-in, which flatters pruning. The 'spatial' fill
 * does not: a dropped patch takes the output row whose position (the mean
 * patch centre of the source tokens assigned to it) is nearest to its own
 * centre (ties -> the lowest row; rows with no source are never chosen).
 *
 * PSNR is measured on pixels: tokens -> [0, 255] by the inverse CLIP
 * normalisation, the rebuilt pixels clamped to [0, 255], peak 255,
 * MSE over every pixel and channel of every patch (for AnyRes: the
 * thumbnail and the four crops together).
 */
import type { ReducedScene } from '../types.js';
import { patchesToPixels } from './patches.js';

/** How a dropped source patch picks its output row (see header). */
export type DroppedFill = { kind: 'feature' } | { kind: 'spatial'; centres: Float64Array };

/** Row of each -1 source by the nearest row position (mean centre of its sources); -1 when no row has a source. */
function spatialFill(out: Int32Array, n: number, m: number, centres: Float64Array): void {
  if (centres.length !== 2 * n) throw new RangeError(`fill.centres: expected 2 x n = ${2 * n} values, received ${centres.length}`);
  const pos = new Float64Array(2 * m);
  const count = new Float64Array(m);
  for (let i = 0; i < n; i++) {
    const a = out[i]!;
    if (a < 0) continue;
    pos[2 * a] = pos[2 * a]! + centres[2 * i]!;
    pos[2 * a + 1] = pos[2 * a + 1]! + centres[2 * i + 1]!;
    count[a] = count[a]! + 1;
  }
  const dropped: number[] = [];
  for (let i = 0; i < n; i++) if (out[i]! < 0) dropped.push(i);
  for (const i of dropped) {
    let best = -1;
    let bestD = Infinity;
    for (let j = 0; j < m; j++) {
      if (count[j] === 0) continue;
      const dx = pos[2 * j]! / count[j]! - centres[2 * i]!;
      const dy = pos[2 * j + 1]! / count[j]! - centres[2 * i + 1]!;
      const d = dx * dx + dy * dy;
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    out[i] = best;
  }
}

/** The output row of each source patch: `assignment`, with -1 mapped to the nearest output row (see header). */
export function resolveAssignment(original: Float32Array, n: number, dim: number, reduced: ReducedScene, fill: DroppedFill = { kind: 'feature' }): Int32Array {
  const { tokens, m, assignment } = reduced;
  if (!Number.isInteger(m) || m < 0) throw new RangeError(`reduced.m: expected a non-negative integer, received ${String(m)}`);
  if (tokens.length !== m * dim) throw new RangeError(`reduced.tokens: expected m x dim = ${m} x ${dim} values, received ${tokens.length}`);
  if (assignment.length !== n) throw new RangeError(`reduced.assignment: expected ${n} entries, received ${assignment.length}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const a = assignment[i]!;
    if (a < -1 || a >= m) throw new RangeError(`reduced.assignment[${i}]: expected -1 or a row in [0, ${m}), received ${a}`);
    if (a >= 0 || m === 0 || fill.kind === 'spatial') {
      out[i] = a;
      continue;
    }
    let best = -1;
    let bestD = Infinity;
    const oi = i * dim;
    for (let j = 0; j < m; j++) {
      const oj = j * dim;
      let d = 0;
      for (let k = 0; k < dim; k++) {
        const e = original[oi + k]! - tokens[oj + k]!;
        d += e * e;
      }
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    out[i] = best;
  }
  if (fill.kind === 'spatial') spatialFill(out, n, m, fill.centres);
  return out;
}

/** f32 [n, dim]: each source patch replaced by its output row (zeros where none). */
export function reconstructTokens(original: Float32Array, n: number, dim: number, reduced: ReducedScene, fill: DroppedFill = { kind: 'feature' }): Float32Array {
  const rows = resolveAssignment(original, n, dim, reduced, fill);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    if (r >= 0) out.set(reduced.tokens.subarray(r * dim, (r + 1) * dim), i * dim);
  }
  return out;
}

/** PSNR in dB of rebuilt tokens against the original ones (both f32 [n, 768]; see header). Infinity when identical. */
export function patchPsnr(original: Float32Array, rebuilt: Float32Array, n: number): number {
  if (rebuilt.length !== original.length) throw new RangeError(`rebuilt: expected ${original.length} values, received ${rebuilt.length}`);
  if (n < 1) throw new RangeError(`n: expected at least 1 patch, received ${n}`);
  const a = patchesToPixels(original, n);
  const b = patchesToPixels(rebuilt, n);
  let se = 0;
  for (let k = 0; k < a.length; k++) {
    const e = Math.min(255, Math.max(0, a[k]!)) - Math.min(255, Math.max(0, b[k]!));
    se += e * e;
  }
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}
