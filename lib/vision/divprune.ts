// DivPrune: greedy max-min diversity pruning of visual tokens (issue 19).
// Official: vbdi/divprune, LLaVA/llava/model/llava_arch.py (`DivPrune`);
// native/reduce/divprune.h; JS reference lib/vision/reference/divprune.ts.
//
// Per frame: d_ij = 1 - cos(x_i, x_j); first pick = the token whose nearest
// other token is farthest; then, repeatedly, the unselected token whose
// minimum distance to the picks is largest (ties: lower index); kept
// indices sorted back to the original order. Budget round(0.098 * n).
import { native } from '../native.js';
import { checkInteger, checkOptions } from '../validate.js';
import { checkRatio, f32, gatherRows, i32, pythonRound, readFrames, type TokensLike } from './select-util.js';
import type { KeepResult } from './types.js';

/** The official default keep ratio (run_Divprune.sh: 0.098, about 56 of 576). */
export const DIVPRUNE_DEFAULT_RATIO = 0.098;

export interface DivPruneOptions {
  /** Share of tokens kept, in [0, 1]: keep = round(ratio * n) (Python rounding, half to even). Default 0.098. */
  keepRatio?: number;
  /** Exact count kept per frame (overrides keepRatio), in [0, n]. */
  keep?: number;
  /**
   * An APPROXIMATION for speed, off by default (0 = the exact rule): the
   * cosines are taken between the normalised tokens projected to metricDim
   * dimensions by a fixed random Gaussian matrix (the same on every call),
   * costing n*dim*metricDim + n^2*metricDim/2 instead of n^2*dim/2.
   * In [0, 65536].
   */
  metricDim?: number;
}

const OPTIONS = ['keepRatio', 'keep', 'metricDim'] as const;

function prepare(tokens: unknown, options: unknown) {
  const o = checkOptions('options', options ?? {}, OPTIONS);
  const fr = readFrames('tokens', tokens);
  const keep = o.keep !== undefined
    ? checkInteger('options.keep', o.keep, 0, fr.n)
    : Math.min(fr.n, pythonRound(checkRatio('options.keepRatio', o.keepRatio, DIVPRUNE_DEFAULT_RATIO) * fr.n));
  const metricDim = o.metricDim === undefined ? 0 : checkInteger('options.metricDim', o.metricDim, 0, 65536);
  const out = new Int32Array(fr.t * keep);
  return { fr, keep, out, params: { tokens: fr.data, t: fr.t, n: fr.n, dim: fr.dim, keep, metricDim, out } };
}

function finish(p: ReturnType<typeof prepare>): KeepResult {
  const { fr, keep, out } = p;
  const tokens = gatherRows(fr.data, fr.t, fr.n, fr.dim, out, keep);
  return fr.batched
    ? { indices: i32([fr.t, keep], out), tokens: f32([fr.t, keep, fr.dim], tokens) }
    : { indices: i32([keep], out), tokens: f32([keep, fr.dim], tokens) };
}

/**
 * Keeps a diverse subset of tokens f32 [n, dim] or [t, n, dim] (per frame).
 * Cost: the n x n cosine matrix (SIMD, threaded) plus O(keep * n).
 */
export function divPrune(tokens: TokensLike, options: DivPruneOptions = {}): KeepResult {
  const p = prepare(tokens, options);
  native().reduceDivPrune(p.params);
  return finish(p);
}

/** {@link divPrune} off the event loop (inputs copied first). */
export async function divPruneAsync(tokens: TokensLike, options: DivPruneOptions = {}): Promise<KeepResult> {
  const p = prepare(tokens, options);
  await native().reduceDivPruneAsync(p.params);
  return finish(p);
}
