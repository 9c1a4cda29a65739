/**
 * The floors of `tokenpress eval vision` (issue 19: "Random keeping and
 * uniform grid pooling are the floors"). Plain JS: they are baselines of the
 * quality tables, not operators, so they have no `bench`.
 *
 *   random  keeps `keep` tokens drawn uniformly without replacement
 *           (partial Fisher-Yates on a mulberry32 stream seeded by the seed
 *           mixed with a hash of the scene's first tokens, so every image
 *           gets its own draw and every run the same), kept rows ascending;
 *           dropped tokens get -1 (the eval maps them to their nearest kept
 *           token).
 *   pool    uniform grid pooling: the gridH x gridW grid cut into windows of
 *           sh x sw tokens (sw = sh or sh + 1, the pair whose window count
 *           ceil(gridH / sh) * ceil(gridW / sw) is closest to `keep`, ties to
 *           more windows), each window averaged (edge windows over the
 *           tokens they have) with its token count as size: LLaVolta-style
 *           average pooling at one stage. Output rows row-major over the
 *           windows.
 */
import type { PatchScene, ReducedScene, VisionEvalMethod } from '../types.js';
import { mixSeed, mulberry32 } from './rng.js';

function checkKeep(scene: PatchScene, keep: number): void {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep: expected a non-negative integer, received ${String(keep)}`);
  if (scene.tokens.length !== scene.n * scene.dim) throw new RangeError(`scene.tokens: expected n x dim = ${scene.n} x ${scene.dim} values, received ${scene.tokens.length}`);
}

/** A 32-bit hash of the first (up to) 64 token values. */
function tokenHash(tokens: Float32Array): number {
  const bits = new Uint32Array(tokens.buffer, tokens.byteOffset, Math.min(64, tokens.length));
  let h = 0x811c9dc5;
  for (const b of bits) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** Random keeping (see header). */
export function randomKeep(scene: PatchScene, keep: number, seed = 0): ReducedScene {
  checkKeep(scene, keep);
  const { n, dim, tokens } = scene;
  const k = Math.min(keep, n);
  const u = mulberry32(mixSeed(seed, tokenHash(tokens)));
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(u() * (n - i));
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  const kept = perm.subarray(0, k).sort();
  const out = new Float32Array(k * dim);
  const assignment = new Int32Array(n).fill(-1);
  kept.forEach((src, row) => {
    out.set(tokens.subarray(src * dim, (src + 1) * dim), row * dim);
    assignment[src] = row;
  });
  return { tokens: out, m: k, assignment };
}

/** The pooling window (sh, sw) for `keep` windows on a gridH x gridW grid (see header). */
export function poolWindow(gridH: number, gridW: number, keep: number): { sh: number; sw: number } {
  let best = { sh: 1, sw: 1 };
  let bestErr = Infinity;
  let bestCount = 0;
  for (let sh = 1; sh <= gridH; sh++) {
    for (const sw of [sh, sh + 1]) {
      if (sw > gridW) continue;
      const count = Math.ceil(gridH / sh) * Math.ceil(gridW / sw);
      const err = Math.abs(count - keep);
      if (err < bestErr || (err === bestErr && count > bestCount)) {
        best = { sh, sw };
        bestErr = err;
        bestCount = count;
      }
    }
  }
  return best;
}

/** Uniform grid pooling (see header). */
export function gridPool(scene: PatchScene, keep: number): ReducedScene {
  checkKeep(scene, keep);
  const { n, dim, gridH, gridW, tokens } = scene;
  if (gridH * gridW !== n) throw new RangeError(`scene.gridH x scene.gridW: expected ${n} cells, received ${gridH} x ${gridW}`);
  const { sh, sw } = poolWindow(gridH, gridW, keep);
  const wh = Math.ceil(gridH / sh);
  const ww = Math.ceil(gridW / sw);
  const m = wh * ww;
  const sums = new Float64Array(m * dim);
  const sizes = new Float64Array(m);
  const assignment = new Int32Array(n);
  for (let y = 0; y < gridH; y++) {
    for (let x = 0; x < gridW; x++) {
      const i = y * gridW + x;
      const r = Math.floor(y / sh) * ww + Math.floor(x / sw);
      assignment[i] = r;
      sizes[r] = sizes[r]! + 1;
      for (let k = 0; k < dim; k++) sums[r * dim + k] = sums[r * dim + k]! + tokens[i * dim + k]!;
    }
  }
  const out = new Float32Array(m * dim);
  for (let r = 0; r < m; r++) for (let k = 0; k < dim; k++) out[r * dim + k] = sums[r * dim + k]! / sizes[r]!;
  return { tokens: out, m, assignment };
}

export const floorMethods: VisionEvalMethod[] = [
  { name: 'random', family: 'floor', usesSideInputs: false, run: (scene, keep) => randomKeep(scene, keep, 0) },
  { name: 'pool', family: 'floor', usesSideInputs: false, run: (scene, keep) => gridPool(scene, keep) },
];
