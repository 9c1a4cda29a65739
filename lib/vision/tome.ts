/**
 * ToMe (Token Merging, Bolya et al. 2023): bipartite soft matching and
 * size-weighted merging of visual tokens, its r schedules, and a
 * multi-layer driver. Official code: facebookresearch/ToMe tome/merge.py
 * (bipartite_soft_matching, merge_wavg, merge_source), tome/utils.py
 * (parse_r), tome/patch/timm.py (per-block use, proportional attention).
 * Native kernel: native/reduce/tome.h. Semantics and differences:
 * docs/vision-tome.md.
 *
 * Shapes: tokens f32 [n, dim] or [t, n, dim] (frames of a video or a batch;
 * threads over t). One step merges r' = min(r, floor((n - protected) / 2))
 * tokens per frame, m = n - r':
 *   tokens f32 [(t,) m, dim], sizes f32 [(t,) m], assignment i32 [(t,) n]
 * Output rows: [unmerged even-position tokens (A) ranked by their best
 * similarity, descending (ascending position with classToken), then every
 * odd-position token (B)]. assignment[i] is the output row of source i.
 */
import { rangeError, typeError } from '../errors.js';
import { native, type NativeTomeParams } from '../native.js';
import type { Tensor } from '../tensor.js';
import { checkBoolean, checkInteger, checkNumber, checkOptions } from '../validate.js';
import { checkSizes, checkTokens, f32, i32, type TokenBlock, type Tokens } from './tome-common.js';
import type { MergeResult } from './types.js';

/** Options of {@link tomeMerge}. */
export interface TomeOptions {
  /** Tokens to merge per frame (clipped to floor((n - protected) / 2), as the official code). */
  r: number;
  /** Protect token 0 (a [CLS] token) from merging, as `class_token=True`. Default false. */
  classToken?: boolean;
  /**
   * Similarity metric f32 [(t,) n, dm], e.g. the block's keys averaged over
   * heads (the official metric). Default: the tokens themselves.
   */
  metric?: Tokens;
  /** Sizes the tokens already carry, f32 [(t,) n] (> 0). Default all 1. */
  sizes?: Float32Array | Tensor<'f32'>;
  /**
   * Speed option (not in the official code): match on a CountSketch of the
   * metric to this many columns (one pass over the metric, then the
   * similarity at this width; ignored when >= the metric's width). The
   * merge itself stays exact. Default: the exact metric.
   */
  sketchDim?: number;
}

const OPTION_NAMES = ['r', 'classToken', 'metric', 'sizes', 'sketchDim'] as const;

/** The r the official code applies to n tokens: min(r, floor((n - protected) / 2)), at least 0. */
export function tomeEffectiveR(n: number, r: number, classToken = false): number {
  checkInteger('n', n, 0);
  checkInteger('r', r, 0);
  const cap = Math.max(0, Math.floor((n - (classToken ? 1 : 0)) / 2));
  return Math.min(r, cap);
}

interface PreparedTome {
  params: NativeTomeParams;
  result: MergeResult;
  block: TokenBlock;
  r: number;
}

function prepare(tokens: unknown, options: unknown): PreparedTome {
  const opts = checkOptions('options', options, OPTION_NAMES);
  const block = checkTokens('tokens', tokens);
  const r = checkInteger('options.r', opts.r, 0, 0x7fffffff);
  const classToken = checkBoolean('options.classToken', opts.classToken, false);
  let metric: Float32Array | undefined;
  let dm = 0;
  if (opts.metric !== undefined) {
    const mb = checkTokens('options.metric', opts.metric);
    if (mb.t !== block.t || mb.n !== block.n || mb.framed !== block.framed) {
      throw rangeError('options.metric.shape', block.framed ? `[${block.t}, ${block.n}, dm]` : `[${block.n}, dm]`, block.framed ? `[${mb.t}, ${mb.n}, ${mb.dim}]` : `[${mb.n}, ${mb.dim}]`);
    }
    if (mb.dim < 1 && block.n > 0) throw rangeError('options.metric.shape', 'dm >= 1', mb.dim);
    metric = mb.data;
    dm = mb.dim;
  }
  const sizes = checkSizes('options.sizes', opts.sizes, block);
  const sketchDim = opts.sketchDim === undefined ? 0 : checkInteger('options.sketchDim', opts.sketchDim, 1, 1 << 24);
  const re = tomeEffectiveR(block.n, r, classToken);
  const m = block.n - re;
  const outX = new Float32Array(block.t * m * block.dim);
  const outSizes = new Float32Array(block.t * m);
  const outAssignment = new Int32Array(block.t * block.n);
  const params: NativeTomeParams = {
    x: block.data, t: block.t, n: block.n, d: block.dim, dm, r, classToken, sketchDim, outX, outSizes, outAssignment,
  };
  if (metric) params.metric = metric;
  if (sizes) params.sizes = sizes;
  const result: MergeResult = {
    tokens: f32(block, outX, [m, block.dim]),
    sizes: f32(block, outSizes, [m]),
    assignment: i32(block, outAssignment, [block.n]),
  };
  return { params, result, block, r: re };
}

/** One ToMe merge step (bipartite soft matching + merge_wavg) on every frame. Shapes: see the module comment. */
export function tomeMerge(tokens: Tokens, options: TomeOptions): MergeResult {
  const { params, result } = prepare(tokens, options);
  native().reduceTome(params);
  return result;
}

/** {@link tomeMerge} off the event loop (inputs are copied first). Argument errors reject. */
export async function tomeMergeAsync(tokens: Tokens, options: TomeOptions): Promise<MergeResult> {
  const { params, result } = prepare(tokens, options);
  await native().reduceTomeAsync(params);
  return result;
}

/** An r schedule as tome/utils.py parse_r takes it: constant r, [r, inflection] (a linear ramp), or an explicit list. */
export type TomeR = number | readonly [number, number] | { list: readonly number[] };

/**
 * Per-layer r, as parse_r(num_layers, r): a constant r; a pair [r,
 * inflection] (inflection in [-1, 1]: -1 = decreasing, 0 = constant, +1 =
 * increasing) giving int(min + step * i) with min = int(r * (1 - inflection)),
 * max = 2r - min, step = (max - min) / (numLayers - 1); or { list } padded
 * with zeros to numLayers (longer lists are returned whole, as parse_r).
 * numLayers = 1 with a pair gives [min] (parse_r divides by zero there).
 */
export function tomeSchedule(numLayers: number, r: TomeR): number[] {
  const L = checkInteger('numLayers', numLayers, 1, 1 << 20);
  if (typeof r === 'object' && r !== null && !Array.isArray(r)) {
    const list = (r as { list?: unknown }).list;
    if (!Array.isArray(list)) throw typeError('r.list', 'an array of integers >= 0', list);
    const out = list.map((v, i) => checkInteger(`r.list[${i}]`, v, 0));
    while (out.length < L) out.push(0);
    return out;
  }
  let base: number;
  let inflect = 0;
  if (Array.isArray(r)) {
    if (r.length !== 2) throw rangeError('r', 'a pair [r, inflection]', `${r.length} elements`);
    base = checkInteger('r[0]', r[0], 0);
    inflect = checkNumber('r[1]', r[1]);
    if (inflect < -1 || inflect > 1) throw rangeError('r[1]', 'an inflection in [-1, 1]', inflect);
  } else {
    base = checkInteger('r', r, 0);
  }
  const min = Math.trunc(base * (1 - inflect));
  const max = 2 * base - min;
  const step = L > 1 ? (max - min) / (L - 1) : 0;
  const out: number[] = [];
  for (let i = 0; i < L; i++) out.push(Math.trunc(min + step * i));
  return out;
}

/**
 * Composes two assignments: first i32 [(t,) n0] maps sources to the rows of
 * a step with n1 outputs, second i32 [(t,) n1] maps those to n2 rows; the
 * result [(t,) n0] maps each original source to its final row (-1 stays -1).
 * Traces sources across a schedule (the role of merge_source's N x N map).
 */
export function composeAssignments(first: Tensor<'i32'>, second: Tensor<'i32'>): Tensor<'i32'> {
  const a = first?.data, b = second?.data;
  if (!(a instanceof Int32Array)) throw typeError('first.data', 'an Int32Array', a);
  if (!(b instanceof Int32Array)) throw typeError('second.data', 'an Int32Array', b);
  const sa = first.shape, sb = second.shape;
  if (!Array.isArray(sa) || !Array.isArray(sb) || sa.length !== sb.length || (sa.length !== 1 && sa.length !== 2)) {
    throw rangeError('second.shape', 'the rank of first.shape ([n] or [t, n])', sb);
  }
  const t = sa.length === 2 ? sa[0]! : 1;
  if (sa.length === 2 && sb[0] !== t) throw rangeError('second.shape[0]', `t = ${t}`, sb[0]);
  const n0 = sa[sa.length - 1]!, n1 = sb[sb.length - 1]!;
  if (a.length !== t * n0) throw rangeError('first.data.length', `${t * n0}`, a.length);
  if (b.length !== t * n1) throw rangeError('second.data.length', `${t * n1}`, b.length);
  const out = new Int32Array(t * n0);
  for (let f = 0; f < t; f++) {
    for (let i = 0; i < n0; i++) {
      const mid = a[f * n0 + i]!;
      if (mid < -1 || mid >= n1) throw rangeError(`first.data[${f * n0 + i}]`, `-1 or a row in [0, ${n1})`, mid);
      out[f * n0 + i] = mid < 0 ? -1 : b[f * n1 + mid]!;
    }
  }
  return { dtype: 'i32', shape: [...sa], data: out };
}

/** Options of {@link tomeLayers}. */
export interface TomeLayersOptions {
  /** The r schedule (see {@link tomeSchedule}). */
  r: TomeR;
  /** Layers the schedule spans. */
  numLayers: number;
  classToken?: boolean;
  sizes?: Float32Array | Tensor<'f32'>;
  /** See TomeOptions.sketchDim. */
  sketchDim?: number;
}

/** What {@link tomeLayers} returns: the final merge, plus the token count after each layer. */
export interface TomeLayersResult extends MergeResult {
  /** Tokens per frame after each layer (length numLayers). */
  counts: number[];
  /** The r applied at each layer after clipping. */
  applied: number[];
}

const LAYER_OPTION_NAMES = ['r', 'numLayers', 'classToken', 'sizes', 'sketchDim'] as const;

function layerPlan(tokens: unknown, options: unknown): { block: TokenBlock; schedule: number[]; classToken: boolean; sketchDim?: number; sizes?: Float32Array } {
  const opts = checkOptions('options', options, LAYER_OPTION_NAMES);
  const block = checkTokens('tokens', tokens);
  const numLayers = checkInteger('options.numLayers', opts.numLayers, 1, 1 << 20);
  const schedule = tomeSchedule(numLayers, opts.r as TomeR).slice(0, numLayers);
  const classToken = checkBoolean('options.classToken', opts.classToken, false);
  const sizes = checkSizes('options.sizes', opts.sizes, block);
  const plan: { block: TokenBlock; schedule: number[]; classToken: boolean; sketchDim?: number; sizes?: Float32Array } = { block, schedule, classToken };
  if (opts.sketchDim !== undefined) plan.sketchDim = checkInteger('options.sketchDim', opts.sketchDim, 1, 1 << 24);
  if (sizes) plan.sizes = sizes;
  return plan;
}

function stepOptions(plan: { classToken: boolean; sketchDim?: number }, r: number, sizes?: Float32Array): TomeOptions {
  const o: TomeOptions = { r, classToken: plan.classToken };
  if (plan.sketchDim !== undefined) o.sketchDim = plan.sketchDim;
  if (sizes) o.sizes = sizes;
  return o;
}

function asTensor(block: TokenBlock): Tensor<'f32'> {
  return { dtype: 'f32', shape: block.framed ? [block.t, block.n, block.dim] : [block.n, block.dim], data: block.data };
}

/**
 * The multi-layer driver: ToMe applied once per layer with the schedule's r.
 * A features-only operator has no transformer between layers, so each
 * layer's metric is the merged tokens themselves and the only state carried
 * is (tokens, sizes, assignment). The result equals running tomeMerge per
 * layer with the previous output and its sizes; assignments are composed so
 * that `assignment` maps every original token to its final row.
 */
export function tomeLayers(tokens: Tokens, options: TomeLayersOptions): TomeLayersResult {
  const plan = layerPlan(tokens, options);
  let cur: Tensor<'f32'> = asTensor(plan.block);
  let sizes: Float32Array | undefined = plan.sizes;
  let assign: Tensor<'i32'> | undefined;
  const counts: number[] = [], applied: number[] = [];
  let last: MergeResult | undefined;
  for (const r of plan.schedule) {
    const n = cur.shape[cur.shape.length - 2]!;
    applied.push(tomeEffectiveR(n, r, plan.classToken));
    last = tomeMerge(cur, stepOptions(plan, r, sizes));
    assign = assign ? composeAssignments(assign, last.assignment) : last.assignment;
    cur = last.tokens;
    sizes = last.sizes.data;
    counts.push(cur.shape[cur.shape.length - 2]!);
  }
  return { tokens: last!.tokens, sizes: last!.sizes, assignment: assign!, counts, applied };
}

/** {@link tomeLayers} off the event loop, one native call per layer (inputs copied by each call). */
export async function tomeLayersAsync(tokens: Tokens, options: TomeLayersOptions): Promise<TomeLayersResult> {
  const plan = layerPlan(tokens, options);
  // Copy the input first: the caller may change it while the layers run.
  const block = { ...plan.block, data: plan.block.data.slice() };
  let cur: Tensor<'f32'> = asTensor(block);
  let sizes: Float32Array | undefined = plan.sizes?.slice();
  let assign: Tensor<'i32'> | undefined;
  const counts: number[] = [], applied: number[] = [];
  let last: MergeResult | undefined;
  for (const r of plan.schedule) {
    const n = cur.shape[cur.shape.length - 2]!;
    applied.push(tomeEffectiveR(n, r, plan.classToken));
    last = await tomeMergeAsync(cur, stepOptions(plan, r, sizes));
    assign = assign ? composeAssignments(assign, last.assignment) : last.assignment;
    cur = last.tokens;
    sizes = last.sizes.data;
    counts.push(cur.shape[cur.shape.length - 2]!);
  }
  return { tokens: last!.tokens, sizes: last!.sizes, assignment: assign!, counts, applied };
}
