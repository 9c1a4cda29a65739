/**
 * Token Transforming (Zeng et al., "Token Transforming: A Unified and
 * Training-Free Token Compression Framework"): every reduction is Y = W X
 * with a many-to-many matrix W [m, n]. The official repository
 * (AuroraZengfh/TokenTransforming) holds only a README, so the recipe here
 * is OUR READING of the paper (docs/vision-tome.md):
 *   targets: m source tokens picked by a rule (options.targets: explicit
 *     indices, 'score' = top m by options.scores, 'uniform' = evenly spaced);
 *   W[i, j] = softmax over source j's topK most similar targets of
 *     cos(x_target_i, x_j) / tau, 0 elsewhere: every column sums to 1, so
 *     the total mass sum_j s_j is conserved;
 *   outputs: size_i = sum_j W[i, j] s_j, y_i = sum_j W[i, j] s_j x_j / size_i.
 * Pruning (one-hot rows, dropped columns zero: {@link pruneMatrix}) and
 * merging (one-hot columns: {@link mergeMatrix}) go through the same
 * {@link transformApply}. Native kernels: native/reduce/transform.h.
 *
 * Shapes: tokens f32 [(t,) n, dim]; W f32 [(t,) m, n]; outputs tokens
 * [(t,) m, dim], sizes [(t,) m], assignment [(t,) n] (row of each source's
 * largest weight, -1 for a zero column).
 */
import { rangeError, typeError } from '../errors.js';
import { native, type NativeTransformApplyParams, type NativeTransformBuildParams } from '../native.js';
import type { Tensor } from '../tensor.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { checkSizes, checkTokens, f32, i32, type TokenBlock, type Tokens } from './tome-common.js';
import type { MergeResult } from './types.js';

export interface TokenTransformOptions {
  /** Outputs per frame, in [0, n]. */
  m: number;
  /**
   * How targets are picked: 'uniform' (default: index floor((i + 0.5) * n / m)),
   * 'score' (the m highest options.scores, ties to the lower index, then in
   * ascending order), or explicit indices i32 [(t,) m].
   */
  targets?: 'uniform' | 'score' | Int32Array;
  /** f32 [(t,) n]: e.g. [CLS] attention, for targets: 'score'. */
  scores?: Float32Array;
  /** Targets each source spreads over (clipped to m). Default 4. */
  topK?: number;
  /** Softmax temperature over cosine similarities, > 0. Default 0.1. */
  tau?: number;
  sizes?: Float32Array | Tensor<'f32'>;
}

export interface TokenTransformResult extends MergeResult {
  /** The transformation matrix f32 [(t,) m, n]. */
  w: Tensor<'f32'>;
  /** The target indices i32 [(t,) m]. */
  targets: Tensor<'i32'>;
}

const OPTION_NAMES = ['m', 'targets', 'scores', 'topK', 'tau', 'sizes'] as const;
export const TRANSFORM_DEFAULT_TOP_K = 4;
export const TRANSFORM_DEFAULT_TAU = 0.1;

/** Target indices per frame by the rule (see TokenTransformOptions.targets). */
export function pickTargets(rule: 'uniform' | 'score', t: number, n: number, m: number, scores?: Float32Array): Int32Array {
  const out = new Int32Array(t * m);
  for (let f = 0; f < t; f++) {
    if (rule === 'uniform') {
      for (let i = 0; i < m; i++) out[f * m + i] = Math.min(n - 1, Math.floor(((i + 0.5) * n) / m));
    } else {
      const idx = Array.from({ length: n }, (_, j) => j);
      idx.sort((a, b) => scores![f * n + b]! - scores![f * n + a]! || a - b);
      const top = idx.slice(0, m).sort((a, b) => a - b);
      for (let i = 0; i < m; i++) out[f * m + i] = top[i]!;
    }
  }
  return out;
}

interface PreparedBuild {
  block: TokenBlock;
  sizes?: Float32Array;
  build: NativeTransformBuildParams;
  targets: Int32Array;
  m: number;
}

function prepareBuild(tokens: unknown, options: unknown): PreparedBuild {
  const opts = checkOptions('options', options, OPTION_NAMES);
  const block = checkTokens('tokens', tokens);
  const m = checkInteger('options.m', opts.m, 0, block.n);
  const topK = opts.topK === undefined ? TRANSFORM_DEFAULT_TOP_K : checkInteger('options.topK', opts.topK, 1, 0x7fffffff);
  const tau = opts.tau === undefined ? TRANSFORM_DEFAULT_TAU : checkNumber('options.tau', opts.tau, { positive: true });
  const sizes = checkSizes('options.sizes', opts.sizes, block);
  let targets: Int32Array;
  const rule = opts.targets ?? 'uniform';
  if (rule instanceof Int32Array) {
    if (rule.length !== block.t * m) throw rangeError('options.targets.length', `t * m = ${block.t * m}`, rule.length);
    for (let i = 0; i < rule.length; i++) {
      if (rule[i]! < 0 || rule[i]! >= block.n) throw rangeError(`options.targets[${i}]`, `an index in [0, ${block.n})`, rule[i]);
    }
    targets = rule.slice();
  } else if (rule === 'uniform') {
    targets = pickTargets('uniform', block.t, block.n, m);
  } else if (rule === 'score') {
    const s = opts.scores;
    if (!(s instanceof Float32Array)) throw typeError('options.scores', `a Float32Array of t * n = ${block.t * block.n} scores (targets: 'score')`, s);
    if (s.length !== block.t * block.n) throw rangeError('options.scores.length', `t * n = ${block.t * block.n}`, s.length);
    for (let i = 0; i < s.length; i++) if (!Number.isFinite(s[i]!)) throw rangeError(`options.scores[${i}]`, 'a finite number', s[i]);
    targets = pickTargets('score', block.t, block.n, m, s);
  } else {
    throw typeError('options.targets', "'uniform', 'score' or an Int32Array of indices", rule);
  }
  const outW = new Float32Array(block.t * m * block.n);
  const build: NativeTransformBuildParams = { x: block.data, targets, t: block.t, m, n: block.n, d: block.dim, topK, tau, outW };
  return sizes ? { block, sizes, build, targets, m } : { block, build, targets, m };
}

function applyParams(block: TokenBlock, w: Float32Array, m: number, sizes?: Float32Array): { params: NativeTransformApplyParams; result: MergeResult } {
  const outX = new Float32Array(block.t * m * block.dim);
  const outSizes = new Float32Array(block.t * m);
  const outAssignment = new Int32Array(block.t * block.n);
  const params: NativeTransformApplyParams = { w, x: block.data, t: block.t, m, n: block.n, d: block.dim, outX, outSizes, outAssignment };
  if (sizes) params.sizes = sizes;
  return {
    params,
    result: { tokens: f32(block, outX, [m, block.dim]), sizes: f32(block, outSizes, [m]), assignment: i32(block, outAssignment, [block.n]) },
  };
}

function finish(p: PreparedBuild, r: MergeResult): TokenTransformResult {
  return { ...r, w: f32(p.block, p.build.outW, [p.m, p.block.n]), targets: i32(p.block, p.targets, [p.m]) };
}

/** Builds W from the targets and applies it. Shapes: see the module comment. */
export function tokenTransform(tokens: Tokens, options: TokenTransformOptions): TokenTransformResult {
  const p = prepareBuild(tokens, options);
  native().reduceTransformBuild(p.build);
  const { params, result } = applyParams(p.block, p.build.outW, p.m, p.sizes);
  native().reduceTransformApply(params);
  return finish(p, result);
}

/** {@link tokenTransform} off the event loop (inputs copied first). */
export async function tokenTransformAsync(tokens: Tokens, options: TokenTransformOptions): Promise<TokenTransformResult> {
  const p = prepareBuild(tokens, options);
  const x = p.block.data.slice();
  const sizes = p.sizes?.slice();
  p.build.x = x;
  const block = { ...p.block, data: x };
  await native().reduceTransformBuildAsync(p.build);
  const { params, result } = applyParams(block, p.build.outW, p.m, sizes);
  await native().reduceTransformApplyAsync(params);
  return finish(p, result);
}

function checkW(w: unknown, block: TokenBlock): { data: Float32Array; m: number } {
  const t = w as Tensor<'f32'>;
  if (!t || !(t.data instanceof Float32Array) || !Array.isArray(t.shape)) throw typeError('w', 'a tensor { dtype: "f32", shape: [(t,) m, n], data: Float32Array }', w);
  const rank = block.framed ? 3 : 2;
  if (t.shape.length !== rank) throw rangeError('w.shape', block.framed ? `[${block.t}, m, ${block.n}]` : `[m, ${block.n}]`, t.shape);
  const m = t.shape[rank - 2]!;
  checkInteger('w.shape (m)', m, 0, 0x7fffffff);
  if (t.shape[rank - 1] !== block.n || (block.framed && t.shape[0] !== block.t)) {
    throw rangeError('w.shape', block.framed ? `[${block.t}, m, ${block.n}]` : `[m, ${block.n}]`, t.shape);
  }
  if (t.data.length !== block.t * m * block.n) throw rangeError('w.data.length', `${block.t * m * block.n}`, t.data.length);
  for (let i = 0; i < t.data.length; i++) {
    const v = t.data[i]!;
    if (!(v >= 0 && v < Infinity)) throw rangeError(`w.data[${i}]`, 'a finite weight >= 0', v);
  }
  return { data: t.data, m };
}

/** Applies any W f32 [(t,) m, n] (entries >= 0) to tokens with sizes. */
export function transformApply(tokens: Tokens, w: Tensor<'f32'>, sizes?: Float32Array | Tensor<'f32'>): MergeResult {
  const block = checkTokens('tokens', tokens);
  const W = checkW(w, block);
  const s = checkSizes('sizes', sizes, block);
  const { params, result } = applyParams(block, W.data, W.m, s);
  native().reduceTransformApply(params);
  return result;
}

/** W of pruning: row i is one-hot at kept[i] (kept i32 [m], one frame), dropped columns are zero. */
export function pruneMatrix(kept: Int32Array, n: number): Tensor<'f32'> {
  checkInteger('n', n, 0, 0x7fffffff);
  if (!(kept instanceof Int32Array)) throw typeError('kept', 'an Int32Array of indices', kept);
  const w = new Float32Array(kept.length * n);
  kept.forEach((j, i) => {
    if (j < 0 || j >= n) throw rangeError(`kept[${i}]`, `an index in [0, ${n})`, j);
    w[i * n + j] = 1;
  });
  return { dtype: 'f32', shape: [kept.length, n], data: w };
}

/** W of merging: column j is one-hot at assignment[j] (i32 [n], one frame; -1 = dropped), m rows. */
export function mergeMatrix(assignment: Int32Array, m: number): Tensor<'f32'> {
  checkInteger('m', m, 0, 0x7fffffff);
  if (!(assignment instanceof Int32Array)) throw typeError('assignment', 'an Int32Array of rows', assignment);
  const n = assignment.length;
  const w = new Float32Array(m * n);
  assignment.forEach((i, j) => {
    if (i < -1 || i >= m) throw rangeError(`assignment[${j}]`, `-1 or a row in [0, ${m})`, i);
    if (i >= 0) w[i * n + j] = 1;
  });
  return { dtype: 'f32', shape: [m, n], data: w };
}
