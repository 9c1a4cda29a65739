// VTC-CLS: keep the visual tokens with the largest [CLS] attention summed
// over vision-encoder layers (issue 19). Official: THU-MIG/VTC-CLS,
// llava/model/multimodal_encoder/clip_encoder.py (`cls_token_only`):
// score_i = sum over layers start_layer .. second-to-last (attentions
// [start_layer:-1]) of the head-averaged [CLS] -> patch i attention; the top
// token_num patches, in spatial order. native/reduce/cls_rank.h; reference
// lib/vision/reference/vtc-cls.ts.
import { rangeError } from '../errors.js';
import { native, type NativeClsRankParams } from '../native.js';
import { checkInteger, checkOptions } from '../validate.js';
import { checkRatio, f32, gatherRows, i32, readFrames, type TokensLike } from './select-util.js';
import type { KeepResult } from './types.js';

export interface VtcClsOptions {
  /** Tokens kept per frame (the official token_num), in [0, n]. Either keep or keepRatio. */
  keep?: number;
  /** Share kept (floor(ratio * n)) when keep is absent. */
  keepRatio?: number;
  /** First layer summed (the official start_layer; the reproduce scripts use 0). Default 0. */
  startLayer?: number;
  /** One past the last layer summed. Default layers - 1 (the official [start_layer:-1]: the last layer is left out). */
  endLayer?: number;
}

const OPTIONS = ['keep', 'keepRatio', 'startLayer', 'endLayer'] as const;

function prepare(tokens: unknown, clsAttention: unknown, options: unknown) {
  const o = checkOptions('options', options ?? {}, OPTIONS);
  const fr = readFrames('tokens', tokens);
  const at = readFrames('clsAttention', clsAttention, 'layers', 'n');
  if (at.batched !== fr.batched || at.t !== fr.t) {
    throw rangeError('clsAttention.shape', fr.batched ? `[${fr.t}, layers, ${fr.n}]` : `[layers, ${fr.n}]`, at.batched ? [at.t, at.n, at.dim] : [at.n, at.dim]);
  }
  if (at.dim !== fr.n) throw rangeError('clsAttention.shape (last dimension)', `n = ${fr.n}`, at.dim);
  const layers = at.n;
  if (layers < 1) throw rangeError('clsAttention.shape (layers)', 'at least 1 layer', layers);
  const startLayer = o.startLayer === undefined ? 0 : checkInteger('options.startLayer', o.startLayer, 0, layers - 1);
  const endDefault = Math.max(startLayer + 1, layers - 1);
  const endLayer = o.endLayer === undefined ? endDefault : checkInteger('options.endLayer', o.endLayer, startLayer + 1, layers);
  let keep: number;
  if (o.keep !== undefined) keep = checkInteger('options.keep', o.keep, 0, fr.n);
  else if (o.keepRatio !== undefined) keep = Math.floor(checkRatio('options.keepRatio', o.keepRatio, 0) * fr.n);
  else throw rangeError('options', 'keep (token_num) or keepRatio', o);
  const out = new Int32Array(fr.t * keep);
  const scores = new Float32Array(fr.t * fr.n);
  const params: NativeClsRankParams = { attention: at.data, t: fr.t, layers, n: fr.n, start: startLayer, end: endLayer, keep, scores, out };
  return { fr, keep, out, scores, params };
}

function finish(p: ReturnType<typeof prepare>): KeepResult {
  const { fr, keep, out, scores } = p;
  const tokens = gatherRows(fr.data, fr.t, fr.n, fr.dim, out, keep);
  return fr.batched
    ? { indices: i32([fr.t, keep], out), tokens: f32([fr.t, keep, fr.dim], tokens), scores: f32([fr.t, fr.n], scores) }
    : { indices: i32([keep], out), tokens: f32([keep, fr.dim], tokens), scores: f32([fr.n], scores) };
}

/**
 * Keeps the tokens f32 [n, dim] (or [t, n, dim]) with the largest summed
 * [CLS] attention; clsAttention f32 [layers, n] (or [t, layers, n]): per
 * encoder layer, the head-averaged [CLS] -> patch row (the [CLS] column
 * itself left out). Ties: lower index first (native/reduce/topk.h).
 */
export function vtcCls(tokens: TokensLike, clsAttention: TokensLike, options: VtcClsOptions = {}): KeepResult {
  const p = prepare(tokens, clsAttention, options);
  native().reduceClsRank(p.params);
  return finish(p);
}

/** {@link vtcCls} off the event loop (inputs copied first). */
export async function vtcClsAsync(tokens: TokensLike, clsAttention: TokensLike, options: VtcClsOptions = {}): Promise<KeepResult> {
  const p = prepare(tokens, clsAttention, options);
  await native().reduceClsRankAsync(p.params);
  return finish(p);
}
