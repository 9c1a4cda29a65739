// FastV: after layer K-1, rank the image tokens by the head-averaged
// attention the last prompt token gives them, keep the top share, keep
// every text token, keep the original positions (issue 19). Official:
// pkunlp-icler/FastV, src/transformers/src/transformers/models/llama/
// modeling_llama.py (the in-place variant: hidden states sliced at layer K,
// keep_indexs sorted, position ids of the kept tokens kept). Config:
// fastv_k = 2 and fastv_r = 0.5 in the paper (the HF demo uses K = 3,
// R = 0.75), image_token_start_index 5 and image_token_length 576 (LLaVA-1.5).
// native/reduce/cls_rank.h (fastv_rank); reference lib/vision/reference/fastv.ts.
import { attention, attentionAsync } from '../attention.js';
import { rangeError } from '../errors.js';
import { native, type NativeFastvRankParams } from '../native.js';
import type { FloatDType, TensorLike } from '../tensor.js';
import { checkInteger, checkOptions, checkTensor } from '../validate.js';
import { checkRatio, f32, i32, pythonRound, readFrames, type TokensLike } from './select-util.js';
import type { KeepResult } from './types.js';

export const FASTV_DEFAULTS = { k: 2, r: 0.5, imageStart: 5, imageLength: 576 } as const;

export interface FastvOptions {
  /** First image position in the sequence (image_token_start_index). Default 5. */
  imageStart?: number;
  /** Image tokens (image_token_length). Default 576, clipped to what follows imageStart. */
  imageLength?: number;
  /** Share of image tokens dropped (fastv_r), in [0, 1]: keep = round(length * (1 - r)). Default 0.5. */
  r?: number;
}

/** What FastV keeps, as sequence positions (the position ids the kept tokens keep). */
export interface FastvSelection {
  /** i32: every kept position (text + kept image), ascending. */
  keep: Int32Array;
  /** i32: the kept image positions (absolute), ascending. */
  imageKeep: Int32Array;
  /** f32 [imageLength]: the head-averaged attention of the last token to each image token. */
  scores: Float32Array;
}

const OPTIONS = ['imageStart', 'imageLength', 'r'] as const;

/** Reads attention probabilities [heads, nk] (the last query's rows) or [heads, nq, nk] (the last row is taken). */
function lastRows(value: unknown): { probs: Float32Array; heads: number; nk: number } {
  const c = checkTensor('attention', value, ['f32'] as const, 'any');
  if (c.shape.length === 2) {
    const fr = readFrames('attention', value, 'heads', 'nk');
    return { probs: fr.data, heads: fr.n, nk: fr.dim };
  }
  if (c.shape.length !== 3) throw rangeError('attention.shape', '[heads, nk] or [heads, nq, nk]', c.shape);
  const [heads, nq, nk] = c.shape as [number, number, number];
  if (nq < 1) throw rangeError('attention.shape[1] (nq)', 'at least 1 query', nq);
  const probs = new Float32Array(heads * nk);
  const d = c.data as Float32Array;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < nk; j++) probs[h * nk + j] = d[h * c.strides[0]! + (nq - 1) * c.strides[1]! + j * c.strides[2]!]!;
  }
  return { probs, heads, nk };
}

function prepare(rows: { probs: Float32Array; heads: number; nk: number }, options: unknown) {
  const o = checkOptions('options', options ?? {}, OPTIONS);
  if (rows.heads < 1) throw rangeError('attention.shape (heads)', 'at least 1 head', rows.heads);
  const nk = rows.nk;
  const imageStart = o.imageStart === undefined ? Math.min(FASTV_DEFAULTS.imageStart, nk) : checkInteger('options.imageStart', o.imageStart, 0, nk);
  const imageLength = o.imageLength === undefined
    ? Math.min(FASTV_DEFAULTS.imageLength, nk - imageStart)
    : checkInteger('options.imageLength', o.imageLength, 0, nk - imageStart);
  const r = checkRatio('options.r', o.r, FASTV_DEFAULTS.r);
  const keep = Math.min(imageLength, pythonRound(imageLength * (1 - r)));
  const scores = new Float32Array(imageLength);
  const out = new Int32Array(keep);
  const params: NativeFastvRankParams = { probs: rows.probs, t: 1, heads: rows.heads, nk, start: imageStart, length: imageLength, keep, scores, out };
  return { params, nk, imageStart, imageLength };
}

function selection(p: ReturnType<typeof prepare>): FastvSelection {
  const { nk, imageStart, imageLength } = p;
  const imageKeep = p.params.out;
  const keep = new Int32Array(nk - imageLength + imageKeep.length);
  let w = 0;
  for (let i = 0; i < imageStart; i++) keep[w++] = i;
  for (let j = 0; j < imageKeep.length; j++) keep[w++] = imageKeep[j]!;
  for (let i = imageStart + imageLength; i < nk; i++) keep[w++] = i;
  return { keep, imageKeep, scores: p.params.scores };
}

/**
 * FastV's selection from the attention probabilities of layer K-1:
 * attention f32 [heads, nk] (the last prompt token's row per head) or
 * [heads, nq, nk] (its last row is used). Ties: lower position first.
 */
export function fastvSelect(attention: TensorLike<'f32'>, options: FastvOptions = {}): FastvSelection {
  const p = prepare(lastRows(attention), options);
  native().reduceFastvRank(p.params);
  return selection(p);
}

/** {@link fastvSelect} off the event loop (inputs copied first). */
export async function fastvSelectAsync(attention: TensorLike<'f32'>, options: FastvOptions = {}): Promise<FastvSelection> {
  const p = prepare(lastRows(attention), options);
  await native().reduceFastvRankAsync(p.params);
  return selection(p);
}

/**
 * FastV's selection with the probabilities from tokenpress's own attention
 * kernel: q f32 [nHeads, nQ, headDim] of layer K-1 (its last row, the last
 * prompt token, is used), k [nKvHeads, nKv, headDim] (f32 / f16 / bf16,
 * strided views allowed). `returnKeyMass` of the last query gives, per KV
 * head, the probability summed over the query heads of its group; divided
 * by the group size it is the group's head mean, and the mean over KV
 * heads is the mean over all query heads (equal groups).
 */
/** The last query row of q [nHeads, nQ, headDim] as [nHeads, 1, headDim], and the attention options. */
function lastQuery(q: TensorLike<'f32'>, options: FastvOptions & { scale?: number }) {
  const { scale, ...rest } = (options ?? {}) as FastvOptions & { scale?: number };
  const qc = checkTensor('q', q, ['f32'] as const, ['nHeads', 'nQ', 'headDim']);
  const [nHeads, nQ, hd] = qc.shape as [number, number, number];
  if (nQ < 1) throw rangeError('q.shape[1] (nQ)', 'at least 1 query', nQ);
  const last = new Float32Array(nHeads * hd);
  const qd = qc.data as Float32Array;
  for (let h = 0; h < nHeads; h++) {
    for (let d = 0; d < hd; d++) last[h * hd + d] = qd[h * qc.strides[0]! + (nQ - 1) * qc.strides[1]! + d * qc.strides[2]!]!;
  }
  const query: TensorLike<'f32'> = { dtype: 'f32', shape: [nHeads, 1, hd], data: last };
  return { query, nHeads, rest, attnOptions: { returnKeyMass: true, ...(scale === undefined ? {} : { scale }) } };
}

/** Key mass [nKvHeads, nKv] (summed over each group's query heads) -> per-KV-head probabilities (the group mean). */
function groupMeans(mass: { shape: readonly number[]; data: Float32Array }, nHeads: number) {
  const [nKvHeads, nKv] = mass.shape as [number, number];
  const group = nHeads / nKvHeads;
  const probs = new Float32Array(mass.data.length);
  for (let i = 0; i < probs.length; i++) probs[i] = mass.data[i]! / group;
  return { probs, heads: nKvHeads, nk: nKv };
}

export function fastvSelectFromQK(
  q: TensorLike<'f32'>, k: TensorLike<FloatDType>, options: FastvOptions & { scale?: number } = {},
): FastvSelection {
  const lq = lastQuery(q, options);
  const res = attention(lq.query, k, k, lq.attnOptions);
  const p = prepare(groupMeans(res.keyMass!, lq.nHeads), lq.rest);
  native().reduceFastvRank(p.params);
  return selection(p);
}

/** {@link fastvSelectFromQK} off the event loop (attentionAsync, then the native ranking; inputs copied first). */
export async function fastvSelectFromQKAsync(
  q: TensorLike<'f32'>, k: TensorLike<FloatDType>, options: FastvOptions & { scale?: number } = {},
): Promise<FastvSelection> {
  const lq = lastQuery(q, options);
  const res = await attentionAsync(lq.query, k, k, lq.attnOptions);
  const p = prepare(groupMeans(res.keyMass!, lq.nHeads), lq.rest);
  await native().reduceFastvRankAsync(p.params);
  return selection(p);
}

/**
 * The in-place FastV step on hidden states f32 [seq, dim]: the kept rows
 * (text + top image tokens) in sequence order. `indices` are the kept
 * positions (the position ids they keep); scores f32 [seq]: the image
 * tokens' head-averaged attention, +Infinity for text (always kept).
 */
export function fastv(hidden: TokensLike, attention: TensorLike<'f32'>, options: FastvOptions = {}): KeepResult {
  const fr = readFrames('hidden', hidden, 'seq', 'dim');
  if (fr.batched) throw rangeError('hidden.shape', '[seq, dim] (one sequence)', [fr.t, fr.n, fr.dim]);
  const rows = lastRows(attention);
  if (rows.nk !== fr.n) throw rangeError('attention.shape (nk)', `seq = ${fr.n}`, rows.nk);
  const p = prepare(rows, options);
  native().reduceFastvRank(p.params);
  const sel = selection(p);
  const tokens = new Float32Array(sel.keep.length * fr.dim);
  for (let j = 0; j < sel.keep.length; j++) tokens.set(fr.data.subarray(sel.keep[j]! * fr.dim, (sel.keep[j]! + 1) * fr.dim), j * fr.dim);
  const scores = new Float32Array(fr.n).fill(Infinity);
  scores.set(sel.scores, p.imageStart);
  return { indices: i32([sel.keep.length], sel.keep), tokens: f32([sel.keep.length, fr.dim], tokens), scores: f32([fr.n], scores) };
}
