// GlobalCom2: thumbnail-guided token retention for LLaVA-NeXT AnyRes
// inputs (a thumbnail plus a grid of crops; issue 19). Official:
// xuyang-liu16/GlobalCom2, llava/model/llava_arch.py (`compress_thumbnail`,
// `generate_scale_for_crop_features`, `interpolate_and_split_cls_attn_scores`,
// `select_topk_crop_features`). The rule is in native/reduce/globalcom2.h;
// reference lib/vision/reference/globalcom2.ts.
import { rangeError, typeError } from '../errors.js';
import { native, type NativeGlobalCom2Params } from '../native.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { checkRatio, f32, gatherRows, i32, readFrames, readVector, type TokensLike } from './select-util.js';
import type { KeepResult } from './types.js';

export const GLOBALCOM2_DEFAULTS = { retention: 0.25, temperature: 10 } as const;

export interface GlobalCom2Input {
  /** Thumbnail tokens f32 [side * side, dim] (a square grid, row-major). */
  thumbnail: TokensLike;
  /** The thumbnail's [CLS] -> patch attention f32 [side * side]. */
  thumbnailScores: Float32Array;
  /** Crop tokens f32 [nph * npw, h * w, dim]: crops row-major over the crop grid, each row-major over its h x w patches. */
  crops: TokensLike;
  /** Each crop's [CLS] -> patch attention f32 [nph * npw, h * w] (flat). */
  cropScores: Float32Array;
  /** Crop grid [nph, npw] (num_patch_height, num_patch_width). */
  cropGrid: readonly [number, number];
  /** Patch grid of one crop [h, w]. Default: square, sqrt(h * w). */
  cropSize?: readonly [number, number];
}

export interface GlobalCom2Options {
  /** Base retention ratio (retention_ratio). Default 0.25. */
  retention?: number;
  /** Softmax temperature of the crop ratios. Default 10. */
  temperature?: number;
}

export interface GlobalCom2Result {
  /** The thumbnail's kept tokens (top int(side^2 * retention)), ascending indices. */
  thumbnail: KeepResult;
  /**
   * The crops' kept tokens: indices i32 [kept] into the flat crop tokens
   * (crop * h * w + patch), ascending (crop by crop, spatial order inside);
   * tokens f32 [kept, dim]; scores f32 [nph * npw * h * w] (normalised local + global).
   */
  crops: KeepResult;
  /** f64 [nph * npw]: each crop's retention ratio. */
  ratios: Float64Array;
  /** i32 [nph * npw]: tokens kept per crop, int(h * w * ratio). */
  counts: Int32Array;
}

const OPTIONS = ['retention', 'temperature'] as const;
const INPUT = ['thumbnail', 'thumbnailScores', 'crops', 'cropScores', 'cropGrid', 'cropSize'] as const;

function pair(arg: string, v: unknown): [number, number] {
  if (!Array.isArray(v) || v.length !== 2) throw typeError(arg, 'a pair [rows, columns]', v);
  return [checkInteger(`${arg}[0]`, v[0], 1, 4096), checkInteger(`${arg}[1]`, v[1], 1, 4096)];
}

function prepare(input: unknown, options: unknown) {
  const o = checkOptions('options', options ?? {}, OPTIONS);
  const inp = checkOptions('input', input, INPUT);
  const th = readFrames('input.thumbnail', inp.thumbnail);
  if (th.batched) throw rangeError('input.thumbnail.shape', '[side * side, dim]', [th.t, th.n, th.dim]);
  const side = Math.round(Math.sqrt(th.n));
  if (side < 1 || side * side !== th.n) throw rangeError('input.thumbnail.shape[0]', 'a square count side * side >= 1', th.n);
  const cr = readFrames('input.crops', inp.crops);
  if (!cr.batched) throw rangeError('input.crops.shape', '[crops, h * w, dim]', [cr.n, cr.dim]);
  if (cr.dim !== th.dim) throw rangeError('input.crops.shape[2] (dim)', `the thumbnail's dim = ${th.dim}`, cr.dim);
  const [nph, npw] = pair('input.cropGrid', inp.cropGrid);
  if (nph * npw !== cr.t) throw rangeError('input.cropGrid', `nph * npw = ${cr.t} crops`, inp.cropGrid);
  let h: number, w: number;
  if (inp.cropSize === undefined) {
    h = w = Math.round(Math.sqrt(cr.n));
    if (h * w !== cr.n || h < 1) throw rangeError('input.cropSize', `[h, w] (the crops hold ${cr.n} patches, not a square)`, undefined);
  } else {
    [h, w] = pair('input.cropSize', inp.cropSize);
    if (h * w !== cr.n) throw rangeError('input.cropSize', `h * w = ${cr.n} patches per crop`, inp.cropSize);
  }
  const thumb = readVector('input.thumbnailScores', inp.thumbnailScores, th.n);
  const crops = readVector('input.cropScores', inp.cropScores, cr.t * cr.n);
  const base = checkRatio('options.retention', o.retention, GLOBALCOM2_DEFAULTS.retention);
  const temperature = o.temperature === undefined ? GLOBALCOM2_DEFAULTS.temperature : checkNumber('options.temperature', o.temperature, { positive: true });
  if (!Number.isFinite(temperature)) throw rangeError('options.temperature', 'a finite number > 0', temperature);
  const c = nph * npw;
  const params: NativeGlobalCom2Params = {
    thumb, side, crops, nph, npw, h, w, base, temperature,
    thumbKeep: new Int32Array(Math.floor(side * side * base)), scales: new Float64Array(c), cropCounts: new Int32Array(c),
    cropKeep: new Int32Array(c * h * w), cropScores: new Float32Array(c * h * w),
  };
  return { params, th, cr };
}

function finish(p: ReturnType<typeof prepare>): GlobalCom2Result {
  const { params: q, th, cr } = p;
  const k0 = q.thumbKeep.length;
  const thumbnail: KeepResult = {
    indices: i32([k0], q.thumbKeep), tokens: f32([k0, th.dim], gatherRows(th.data, 1, th.n, th.dim, q.thumbKeep, k0)),
    scores: f32([th.n], q.thumb.slice()),
  };
  let total = 0;
  for (let c = 0; c < q.cropCounts.length; c++) total += q.cropCounts[c]!;
  const flat = new Int32Array(total);
  let wr = 0;
  for (let c = 0; c < q.cropCounts.length; c++) {
    for (let j = 0; j < q.cropCounts[c]!; j++) flat[wr++] = c * cr.n + q.cropKeep[c * cr.n + j]!;
  }
  const crops: KeepResult = {
    indices: i32([total], flat), tokens: f32([total, cr.dim], gatherRows(cr.data, 1, cr.t * cr.n, cr.dim, flat, total)),
    scores: f32([cr.t * cr.n], q.cropScores),
  };
  return { thumbnail, crops, ratios: q.scales, counts: q.cropCounts };
}

/** GlobalCom2 on one AnyRes image (threads over crops). See GlobalCom2Input for the shapes. */
export function globalCom2(input: GlobalCom2Input, options: GlobalCom2Options = {}): GlobalCom2Result {
  const p = prepare(input, options);
  native().reduceGlobalCom2(p.params);
  return finish(p);
}

/** {@link globalCom2} off the event loop (inputs copied first). */
export async function globalCom2Async(input: GlobalCom2Input, options: GlobalCom2Options = {}): Promise<GlobalCom2Result> {
  const p = prepare(input, options);
  await native().reduceGlobalCom2Async(p.params);
  return finish(p);
}
