// Token-level correlation-guided compression for documents (issue 19;
// native/reduce/tokencorr.h). Per crop: pattern repetitiveness from patch-key
// cosine similarity (a patch is repetitive when >= countLimit others have
// cosine > simThreshold), information density 1 - r -> keep = max(1,
// round(n (1 - r))); global branch: deep-layer [CLS] attention above
// Q3 + 1.5 IQR kept first; local branch: the rest drawn by the shallow-layer
// [CLS] attention (seeded). Official: JiuTian-VL/TokenCorrCompressor has only
// a README; the rule follows the paper. simThreshold, countLimit and the
// density -> budget mapping are OUR choices (docs/vision-cluster.md).
import { rangeError } from '../errors.js';
import { native } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { f32Exact, tokenBatch } from './cluster-args.js';
import type { KeepResult } from './types.js';

export interface TokenCorrOptions {
  /** Deep-layer [CLS] -> patch attention f32 [n] or [t, n] (required). */
  deepAttention: Float32Array;
  /** Shallow-layer [CLS] -> patch attention f32 [n] or [t, n] (required): the sampling weights. */
  shallowAttention: Float32Array;
  /** Patch keys f32 [n, keyDim] or [t, n, keyDim] for the repetitiveness; default the tokens. */
  keys?: Float32Array;
  keyDim?: number;
  /** Cosine above which two patches repeat a pattern (default 0.8, ours). */
  simThreshold?: number;
  /** Repeating partners that make a patch repetitive (default 1, ours). */
  countLimit?: number;
  /** Tukey fence factor of the global branch (default 1.5). */
  iqrFactor?: number;
  /** Seed of the local branch's draws (uint32, default 0). */
  seed?: number;
}

/** A KeepResult (scores = the deep attention) plus the crop's repetitive-patch count. */
export interface TokenCorrResult extends KeepResult {
  repetitive: number;
}

const NAMES = ['deepAttention', 'shallowAttention', 'keys', 'keyDim', 'simThreshold', 'countLimit', 'iqrFactor', 'seed'] as const;

function prepare(tokens: unknown, options: unknown) {
  const b = tokenBatch('tokens', tokens);
  const o = checkOptions('options', options, NAMES);
  const { t, n, dim } = b;
  const deep = f32Exact('options.deepAttention', o.deepAttention, t * n, 'frames * n');
  const shallow = f32Exact('options.shallowAttention', o.shallowAttention, t * n, 'frames * n');
  let keyDim = dim;
  let keys = b.data;
  if (o.keys !== undefined) {
    keyDim = checkInteger('options.keyDim', o.keyDim ?? dim, 1, 1 << 24);
    keys = f32Exact('options.keys', o.keys, t * n * keyDim, 'frames * n * keyDim');
  } else if (o.keyDim !== undefined) throw rangeError('options.keyDim', 'absent without options.keys', o.keyDim);
  const simThreshold = o.simThreshold === undefined ? 0.8 : checkNumber('options.simThreshold', o.simThreshold);
  const countLimit = o.countLimit === undefined ? 1 : checkInteger('options.countLimit', o.countLimit, 1, 2 ** 30);
  const iqrFactor = o.iqrFactor === undefined ? 1.5 : checkNumber('options.iqrFactor', o.iqrFactor);
  if (!Number.isFinite(simThreshold)) throw rangeError('options.simThreshold', 'a finite number', simThreshold);
  if (!Number.isFinite(iqrFactor)) throw rangeError('options.iqrFactor', 'a finite number', iqrFactor);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, 0xffffffff);
  const out = { keep: new Uint8Array(t * n), info: new Float64Array(t * 2) };
  const params = { keys, frames: t, n, keyDim, deep, shallow, simThreshold, countLimit, iqrFactor, seed, outKeep: out.keep, outInfo: out.info };
  const finish = (): TokenCorrResult[] => {
    const res: TokenCorrResult[] = [];
    for (let f = 0; f < t; f++) {
      const idx: number[] = [];
      for (let j = 0; j < n; j++) if (out.keep[f * n + j]) idx.push(j);
      const kept = new Float32Array(idx.length * dim);
      idx.forEach((j, r) => kept.set(b.data.subarray((f * n + j) * dim, (f * n + j + 1) * dim), r * dim));
      res.push({
        indices: tensor('i32', [idx.length], Int32Array.from(idx)),
        tokens: tensor('f32', [idx.length, dim], kept),
        scores: tensor('f32', [n], deep.slice(f * n, (f + 1) * n)),
        repetitive: out.info[f * 2 + 1]!,
      });
    }
    return res;
  };
  return { params, finish, batched: b.batched };
}

/** Token-correlation compression of one crop `tokens` f32 [n, dim]; the keep count follows the crop's information density. */
export function tokenCorrCompress(tokens: Tensor<'f32'> | unknown, options: TokenCorrOptions): TokenCorrResult {
  const p = prepare(tokens, options);
  if (p.batched) throw rangeError('tokens.shape', '[n, dim] (use tokenCorrCompressFrames for [t, n, dim])', (tokens as Tensor).shape);
  native().tokenCorr(p.params);
  return p.finish()[0]!;
}

/** Every crop of `tokens` f32 [t, n, dim] (threads over crops). */
export function tokenCorrCompressFrames(tokens: Tensor<'f32'> | unknown, options: TokenCorrOptions): TokenCorrResult[] {
  const p = prepare(tokens, options);
  native().tokenCorr(p.params);
  return p.finish();
}

/** {@link tokenCorrCompressFrames} off the event loop (inputs copied first). */
export async function tokenCorrCompressAsync(tokens: Tensor<'f32'> | unknown, options: TokenCorrOptions): Promise<TokenCorrResult[]> {
  const p = prepare(tokens, options);
  await native().tokenCorrAsync(p.params);
  return p.finish();
}
