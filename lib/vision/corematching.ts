// CoreMatching (issue 19; native/reduce/corematch.h): core image tokens from
// FFN co-activation. B = (silu(gate) * up > 0) (or the activation product
// > 0) over the sequence [rows, inter]; score_j = co-activated neurons of the
// query token (official: row -5, a late text token) and image token j;
// keep the scores above the elbow of the sorted curve (largest distance from
// its chord). Official: wangqinsi1/2025-ICML-CoreMatching,
// transformers/models/llama/modeling_llama.py (LlamaMLP.forward).
import { rangeError, typeError } from '../errors.js';
import { native } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { checkInteger, checkOptions } from '../validate.js';
import { f32Exact, tokenBatch } from './cluster-args.js';
import type { KeepResult } from './types.js';

export interface CoreMatchingOptions {
  /** FFN activations f32 [rows, inter] (or [t, rows, inter]): act(gate) * up, or the gate when `up` is given. */
  activations: Float32Array;
  /** Up projection f32, same shape as activations: then the product is silu(gate) * up. */
  up?: Float32Array;
  /** Sequence length (rows) and FFN width. */
  rows: number;
  inter: number;
  /** First row of the image tokens in the sequence (default 0); the span has n rows (the tokens' n). */
  imageStart?: number;
  /** Query row; negative counts from the end (default -5, official). */
  queryRow?: number;
}

/** A KeepResult plus the elbow value (kept = score > threshold). */
export interface CoreMatchingResult extends KeepResult {
  threshold: number;
}

const NAMES = ['activations', 'up', 'rows', 'inter', 'imageStart', 'queryRow'] as const;

function prepare(tokens: unknown, options: unknown) {
  const b = tokenBatch('tokens', tokens);
  const o = checkOptions('options', options, NAMES);
  const { t, n, dim } = b;
  const rows = checkInteger('options.rows', o.rows, 1, 2 ** 30);
  const inter = checkInteger('options.inter', o.inter, 1, 1 << 24);
  const act = f32Exact('options.activations', o.activations, t * rows * inter, 'frames * rows * inter');
  const up = o.up === undefined ? undefined : f32Exact('options.up', o.up, t * rows * inter, 'frames * rows * inter');
  const start = o.imageStart === undefined ? 0 : checkInteger('options.imageStart', o.imageStart, 0, rows);
  if (start + n > rows) throw rangeError('options.imageStart', `an image span [start, start + ${n}) inside ${rows} rows`, start);
  const q = o.queryRow === undefined ? -5 : o.queryRow;
  if (typeof q !== 'number' || !Number.isInteger(q)) throw typeError('options.queryRow', 'an integer', q);
  const query = q < 0 ? rows + q : q;
  if (query < 0 || query >= rows) throw rangeError('options.queryRow', `a row in [-${rows}, ${rows})`, q);
  const out = { scores: new Float32Array(t * n), keep: new Uint8Array(t * n), threshold: new Float64Array(t) };
  const params = {
    activations: act, up, frames: t, rows, inter, query, start, len: n, outScores: out.scores, outKeep: out.keep, outThreshold: out.threshold,
  };
  const finish = (): CoreMatchingResult[] => {
    const res: CoreMatchingResult[] = [];
    for (let f = 0; f < t; f++) {
      const idx: number[] = [];
      for (let j = 0; j < n; j++) if (out.keep[f * n + j]) idx.push(j);
      const kept = new Float32Array(idx.length * dim);
      idx.forEach((j, r) => kept.set(b.data.subarray((f * n + j) * dim, (f * n + j + 1) * dim), r * dim));
      res.push({
        indices: tensor('i32', [idx.length], Int32Array.from(idx)),
        tokens: tensor('f32', [idx.length, dim], kept),
        scores: tensor('f32', [n], out.scores.slice(f * n, (f + 1) * n)),
        threshold: out.threshold[f]!,
      });
    }
    return res;
  };
  return { params, finish, batched: b.batched };
}

/** CoreMatching of one image: `tokens` f32 [n, dim] are the image span's tokens (gathered into the result). */
export function coreMatching(tokens: Tensor<'f32'> | unknown, options: CoreMatchingOptions): CoreMatchingResult {
  const p = prepare(tokens, options);
  if (p.batched) throw rangeError('tokens.shape', '[n, dim] (use coreMatchingFrames for [t, n, dim])', (tokens as Tensor).shape);
  native().coreMatch(p.params);
  return p.finish()[0]!;
}

/** CoreMatching of every sequence of a batch: tokens [t, n, dim], activations [t, rows, inter]; threads over t. */
export function coreMatchingFrames(tokens: Tensor<'f32'> | unknown, options: CoreMatchingOptions): CoreMatchingResult[] {
  const p = prepare(tokens, options);
  native().coreMatch(p.params);
  return p.finish();
}

/** {@link coreMatchingFrames} off the event loop (inputs copied first). */
export async function coreMatchingAsync(tokens: Tensor<'f32'> | unknown, options: CoreMatchingOptions): Promise<CoreMatchingResult[]> {
  const p = prepare(tokens, options);
  await native().coreMatchAsync(p.params);
  return p.finish();
}
