// Recoverable Compression (issue 19; native/reduce/recoverable.h): [CLS]
// attention plus text-patch similarity, LOF-based automatic ratios
// (n_neighbors 10, contamination 'auto' = LOF > 1.5), the union of both top
// sets kept, the rest clustered into summary tokens (centres absorb their 32
// nearest by key cosine + 50 x text score, weighted by attention) plus one
// extra token. Official: banjiuyufen/Recoverable-Compression,
// llava/model/multimodal_encoder/clip_encoder.py (get_score_by_text,
// token_recycling_with_text_clustering, find_max_derivative_position).
import { rangeError, typeError } from '../errors.js';
import { native } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { f32Exact, tokenBatch } from './cluster-args.js';
import type { MergeResult } from './types.js';

export interface RecoverableOptions {
  /** [CLS] -> patch attention f32 [n] or [t, n] (required). */
  clsAttention: Float32Array;
  /** Text embedding f32 [dim] (shared by every frame) or [t, dim]; text score = cos(text, token) / sqrt(dim). */
  textEmbedding?: Float32Array;
  /** Called with the frame count when textEmbedding is absent: returns the text embedding ([dim] or [t, dim]). */
  textEmbedder?: (frames: number) => Float32Array;
  /** Text scores f32 [n] or [t, n] given directly (instead of an embedding). */
  textScores?: Float32Array;
  /** Keys f32 [n, keyDim] or [t, n, keyDim] for the absorption cosine (official: layer-23 keys); default the tokens. */
  keys?: Float32Array;
  keyDim?: number;
  /** LOF neighbours (default 10) and outlier threshold (default 1.5 = contamination 'auto'). */
  lofNeighbors?: number;
  lofThreshold?: number;
  /** Tokens each centre absorbs (default 32) and the text-score weight in that ranking (default 50). */
  clusterSize?: number;
  textWeight?: number;
}

/**
 * One frame's result: a MergeResult whose rows are [kept tokens (size 1)...,
 * summary centres..., extra token], with the indices of the kept and centre
 * source tokens.
 */
export interface RecoverableResult extends MergeResult {
  /** i32 [kept]: the union of the attention and text top sets, ascending. */
  kept: Int32Array;
  /** i32 [centres]: source index of each summary centre (descending attention). */
  centres: Int32Array;
  /** f32 [n]: the text scores used. */
  textScores: Float32Array;
}

const NAMES = ['clsAttention', 'textEmbedding', 'textEmbedder', 'textScores', 'keys', 'keyDim', 'lofNeighbors', 'lofThreshold', 'clusterSize', 'textWeight'] as const;

function prepare(tokens: unknown, options: unknown) {
  const b = tokenBatch('tokens', tokens);
  const o = checkOptions('options', options, NAMES);
  const { t, n, dim } = b;
  const cls = f32Exact('options.clsAttention', o.clsAttention, t * n, 'frames * n');
  let text: Float32Array | undefined;
  let textScores: Float32Array | undefined;
  const given = [o.textEmbedding, o.textEmbedder, o.textScores].filter((v) => v !== undefined).length;
  if (given !== 1) throw typeError('options', 'exactly one of textEmbedding, textEmbedder, textScores', `${given} of them`);
  if (o.textScores !== undefined) textScores = f32Exact('options.textScores', o.textScores, t * n, 'frames * n');
  else {
    let e = o.textEmbedding;
    if (o.textEmbedder !== undefined) {
      if (typeof o.textEmbedder !== 'function') throw typeError('options.textEmbedder', 'a function', o.textEmbedder);
      e = (o.textEmbedder as (f: number) => Float32Array)(t);
      if (!(e instanceof Float32Array)) throw typeError('options.textEmbedder()', 'a Float32Array', e);
    }
    if (!(e instanceof Float32Array)) throw typeError('options.textEmbedding', 'a Float32Array', e);
    if (e.length === dim && t > 1) {
      const rep = new Float32Array(t * dim);
      for (let f = 0; f < t; f++) rep.set(e, f * dim);
      e = rep;
    }
    text = f32Exact('options.textEmbedding', e, t * dim, 'dim or frames * dim');
  }
  let keyDim = dim;
  let keys: Float32Array | undefined;
  if (o.keys !== undefined) {
    keyDim = checkInteger('options.keyDim', o.keyDim ?? dim, 1, 1 << 24);
    keys = f32Exact('options.keys', o.keys, t * n * keyDim, 'frames * n * keyDim');
  } else if (o.keyDim !== undefined) throw typeError('options.keyDim', 'absent without options.keys', o.keyDim);
  const lofNeighbors = o.lofNeighbors === undefined ? 10 : checkInteger('options.lofNeighbors', o.lofNeighbors, 1, 1 << 20);
  const lofThreshold = o.lofThreshold === undefined ? 1.5 : checkNumber('options.lofThreshold', o.lofThreshold);
  const clusterSize = o.clusterSize === undefined ? 32 : checkInteger('options.clusterSize', o.clusterSize, 0, 1 << 30);
  const textWeight = o.textWeight === undefined ? 50 : checkNumber('options.textWeight', o.textWeight);
  if (!Number.isFinite(lofThreshold)) throw rangeError('options.lofThreshold', 'a finite number', lofThreshold);
  if (!Number.isFinite(textWeight)) throw rangeError('options.textWeight', 'a finite number', textWeight);
  const out = {
    tokens: new Float32Array(t * (n + 1) * dim), sizes: new Float32Array(t * (n + 1)), assignment: new Int32Array(t * n),
    main: new Int32Array(t * n), centres: new Int32Array(t * n), counts: new Int32Array(t * 3), scores: new Float32Array(t * n),
  };
  const params = {
    tokens: b.data, frames: t, n, dim, keys, keyDim, cls, text, textScores, lofNeighbors, lofThreshold, clusterSize, textWeight,
    outTokens: out.tokens, outSizes: out.sizes, outAssignment: out.assignment, outMain: out.main, outCentres: out.centres,
    outCounts: out.counts, outTextScores: out.scores,
  };
  const finish = (): RecoverableResult[] => {
    const res: RecoverableResult[] = [];
    for (let f = 0; f < t; f++) {
      const [m, km, kc] = [out.counts[f * 3]!, out.counts[f * 3 + 1]!, out.counts[f * 3 + 2]!];
      res.push({
        tokens: tensor('f32', [m, dim], out.tokens.slice(f * (n + 1) * dim, f * (n + 1) * dim + m * dim)),
        sizes: tensor('f32', [m], out.sizes.slice(f * (n + 1), f * (n + 1) + m)),
        assignment: tensor('i32', [n], out.assignment.slice(f * n, (f + 1) * n)),
        kept: out.main.slice(f * n, f * n + km),
        centres: out.centres.slice(f * n, f * n + kc),
        textScores: out.scores.slice(f * n, (f + 1) * n),
      });
    }
    return res;
  };
  return { params, finish, batched: b.batched };
}

/**
 * Recoverable Compression of one image `tokens` f32 [n, dim]; for [t, n, dim]
 * use {@link recoverableCompressFrames}. The output count is chosen by the
 * rule (LOF ratios), not by the caller.
 */
export function recoverableCompress(tokens: Tensor<'f32'> | unknown, options: RecoverableOptions): RecoverableResult {
  const p = prepare(tokens, options);
  if (p.batched) throw rangeError('tokens.shape', '[n, dim] (use recoverableCompressFrames for [t, n, dim])', (tokens as Tensor).shape);
  native().recoverableCompress(p.params);
  return p.finish()[0]!;
}

/** Recoverable Compression of every frame of `tokens` f32 [t, n, dim] (or [n, dim]): threads over frames. */
export function recoverableCompressFrames(tokens: Tensor<'f32'> | unknown, options: RecoverableOptions): RecoverableResult[] {
  const p = prepare(tokens, options);
  native().recoverableCompress(p.params);
  return p.finish();
}

/** {@link recoverableCompressFrames} off the event loop (inputs copied first). */
export async function recoverableCompressAsync(tokens: Tensor<'f32'> | unknown, options: RecoverableOptions): Promise<RecoverableResult[]> {
  const p = prepare(tokens, options);
  await native().recoverableCompressAsync(p.params);
  return p.finish();
}
