// VQToken's training-free part (issue 19; native/reduce/kmeans.h): k-means
// with cosine distance over the L2-normalised tokens of a whole video (all
// frames flattened), k-means++ init (seeded), K = 32, at most 50 iterations,
// stop when the centroids move less than 1e-4 (Frobenius). Codebook = mean
// of the normalised tokens of each code; code map = the code of every
// (frame, position). Official: Hai-chao-Zhang/VQToken, VQToken/vq_token.py,
// VQToken/cluster.py, llava/model/llava_arch.py (token_dynamics). The
// trained VQ-Attn adapter (codebook + code map -> LLM tokens) is out of scope.
import { rangeError } from '../errors.js';
import { native } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { checkBoolean, checkInteger, checkNumber, checkOptions } from '../validate.js';
import { tokenBatch } from './cluster-args.js';
import type { MergeResult } from './types.js';

export interface VqTokenOptions {
  /** Codes K (default 32, official); clamped to the token count. */
  k?: number;
  /** Most k-means iterations (default 50 for fixed K, 100 for adaptive K: official). */
  maxIter?: number;
  /** Stop when ||C_old - C_new||_F < tol (default 1e-4). */
  tol?: number;
  /** Seed of the k-means++ draws (uint32, default 0). */
  seed?: number;
  /** Adaptive K by the official elbow rule over K in [12, maxK] (default false). */
  adaptive?: boolean;
  /** Upper K of the adaptive search (default 32, >= 14). */
  maxK?: number;
}

/** A MergeResult whose tokens are the codebook [K, dim], sizes the code counts, assignment the code map [t, n] (or [n]). */
export interface VqTokenResult extends MergeResult {
  /** The K used. */
  k: number;
  /** k-means iterations of the final run. */
  iterations: number;
}

const NAMES = ['k', 'maxIter', 'tol', 'seed', 'adaptive', 'maxK'] as const;

function prepare(tokens: unknown, options: unknown) {
  const b = tokenBatch('tokens', tokens);
  const o = checkOptions('options', options, NAMES);
  const adaptive = checkBoolean('options.adaptive', o.adaptive, false);
  const k = o.k === undefined ? 32 : checkInteger('options.k', o.k, 1, 1 << 20);
  const maxK = o.maxK === undefined ? 32 : checkInteger('options.maxK', o.maxK, 1, 1 << 20);
  if (adaptive && maxK < 14) throw rangeError('options.maxK', 'an integer >= 14 with adaptive K (three K values from 12)', maxK);
  const maxIter = o.maxIter === undefined ? (adaptive ? 100 : 50) : checkInteger('options.maxIter', o.maxIter, 1, 1 << 20);
  const tol = o.tol === undefined ? 1e-4 : checkNumber('options.tol', o.tol);
  if (!(tol >= 0)) throw rangeError('options.tol', 'a number >= 0', tol);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, 0xffffffff);
  const rows = b.t * b.n;
  const cap = adaptive ? Math.max(k, maxK) : k;
  const out = {
    codebook: new Float32Array(cap * b.dim), counts: new Float32Array(cap), codes: new Int32Array(rows), info: new Int32Array(2),
  };
  const params = {
    tokens: b.data, rows, dim: b.dim, k, maxIter, tol, seed, adaptive, maxK,
    outCodebook: out.codebook, outCounts: out.counts, outCodes: out.codes, outInfo: out.info,
  };
  const finish = (): VqTokenResult => {
    const kk = out.info[0]!;
    return {
      tokens: tensor('f32', [kk, b.dim], out.codebook.slice(0, kk * b.dim)),
      sizes: tensor('f32', [kk], out.counts.slice(0, kk)),
      assignment: tensor('i32', b.batched ? [b.t, b.n] : [b.n], out.codes),
      k: kk,
      iterations: out.info[1]!,
    };
  };
  return { params, finish };
}

/**
 * VQToken codebook and code map of `tokens` f32 [n, dim] or [t, n, dim]
 * (frames clustered jointly). Deterministic for a seed; threads inside the
 * assignment (dot_matrix). Zero tokens stay zero after normalisation.
 */
export function vqToken(tokens: Tensor<'f32'> | unknown, options: VqTokenOptions = {}): VqTokenResult {
  const { params, finish } = prepare(tokens, options);
  native().vqToken(params);
  return finish();
}

/** {@link vqToken} off the event loop (inputs copied first). */
export async function vqTokenAsync(tokens: Tensor<'f32'> | unknown, options: VqTokenOptions = {}): Promise<VqTokenResult> {
  const { params, finish } = prepare(tokens, options);
  await native().vqTokenAsync(params);
  return finish();
}

