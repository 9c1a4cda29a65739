/**
 * The seeded per-position sampler: plain (one token per step) decoding and
 * speculative verification (verify.ts) both pick the token at sequence
 * position p with it, so that speculative sampling reproduces plain
 * sampling exactly, token by token (docs/spec-verify.md).
 *
 * - Distribution: softmax(logits / temperature), restricted to the topK
 *   largest logits, then to the topP nucleus, renormalised (targetDistribution).
 *   Order for top-k / top-p: larger logit first, lower token id on ties.
 *   Temperature 0: all mass on the argmax (lowest id on ties).
 * - Random number: u(seed, p) in [0, 1), a pure function of (seed, p):
 *   the (p + 1)-th output of SplitMix64 started from state `seed`, i.e.
 *   mix64(seed + (p + 1) * 0x9e3779b97f4a7c15 mod 2^64), top 53 bits / 2^53.
 *   Counter-based: no state, so the u of a position does not depend on how
 *   many draws came before it (a drafted and rejected token consumes nothing).
 * - Token: the inverse CDF of u with the tokens in id order: the first id i
 *   with u * sum(P) < P[0] + ... + P[i] (among ids with P > 0).
 *
 * lib/model/generate.ts (sampleByte with Sampler) differs: a sequential
 * xorshift32 stream (one draw per sampled byte, so a position's draw depends
 * on every draw before it), top-k only (default 40), no top-p, and the
 * inverse CDF walks the bytes in descending-logit order. Its outputs are not
 * reproduced here; these functions are the ones to use with speculative decoding.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';

/** How to turn a row of logits into a token. */
export interface SamplingOptions {
  /** Softmax temperature, >= 0; default 1. 0 = greedy (argmax, lowest id on ties). */
  temperature?: number;
  /** Keep only the k largest logits (ties: lower id first); default 0 = all. */
  topK?: number;
  /** Keep the smallest prefix (descending probability) whose mass reaches topP, in (0, 1]; default 1 = all. */
  topP?: number;
  /** Seed of the per-position stream, an integer in [0, 2^53); required when temperature > 0. */
  seed?: number;
}

/** The shape of the distribution only (no seed): targetDistribution's options. */
export type DistributionOptions = Omit<SamplingOptions, 'seed'>;

export interface ResolvedSampling { temperature: number; topK: number; topP: number; seed: number }

export const SAMPLING_OPTION_NAMES = ['temperature', 'topK', 'topP', 'seed'] as const;

/** Validates sampling options (arg: the name in messages, e.g. 'options'); `known` adds accepted keys. */
export function resolveSampling(arg: string, options: unknown, known: readonly string[] = SAMPLING_OPTION_NAMES, needSeed = true): ResolvedSampling {
  const o = checkOptions(arg, options, known) as SamplingOptions;
  const temperature = o.temperature === undefined ? 1 : checkNumber(`${arg}.temperature`, o.temperature);
  if (temperature < 0) throw rangeError(`${arg}.temperature`, 'a number >= 0 (0 = greedy)', temperature);
  const topK = o.topK === undefined ? 0 : checkInteger(`${arg}.topK`, o.topK, 0);
  const topP = o.topP === undefined ? 1 : checkNumber(`${arg}.topP`, o.topP);
  if (!(topP > 0 && topP <= 1)) throw rangeError(`${arg}.topP`, 'a number in (0, 1]', topP);
  let seed = 0;
  if (o.seed !== undefined || (needSeed && temperature > 0)) {
    if (o.seed === undefined) throw typeError(`${arg}.seed`, 'an integer in [0, 2^53) (required when temperature > 0)', o.seed);
    seed = checkInteger(`${arg}.seed`, o.seed, 0);
  }
  return { temperature, topK, topP, seed };
}

const MASK64 = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64's output function (Steele, Lea, Flood 2014; the constants of Vigna's splitmix64.c). */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** The 64-bit word behind u(seed, position): the (position + 1)-th output of SplitMix64 from state seed. */
export function seededWord(seed: number, position: number): bigint {
  return mix64((BigInt(seed) + BigInt(position + 1) * GAMMA) & MASK64);
}

/** u(seed, position) in [0, 1): 53 bits, a pure function of its arguments (see the file comment). */
export function seededUniform(seed: number, position: number): number {
  checkInteger('seed', seed, 0);
  checkInteger('position', position, 0);
  return uniformAt(seed, position);
}

/** seededUniform without the checks. */
export function uniformAt(seed: number, position: number): number {
  return Number(seededWord(seed, position) >> 11n) / 9007199254740992;
}

/** Checks a row: finite numbers or -Infinity (a masked token), at least one finite. */
function checkRow(arg: string, row: Float32Array | Float64Array): void {
  let finite = false;
  for (let i = 0; i < row.length; i++) {
    const x = row[i]!;
    if (x === -Infinity) continue;
    if (!Number.isFinite(x)) throw rangeError(`${arg}[${i}]`, 'a finite logit or -Infinity', x);
    finite = true;
  }
  if (!finite) throw rangeError(arg, 'at least one finite logit', 'a row of -Infinity');
}

/** The argmax of a checked row, lowest id on ties. */
function argmaxOf(row: Float32Array | Float64Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/**
 * The target's probabilities for a checked row, f64 [vocab], zero outside
 * the top-k / top-p set. Shared by targetDistribution, sampleAt and the verifiers.
 */
export function distributionOf(row: Float32Array | Float64Array, o: ResolvedSampling): Float64Array {
  const v = row.length;
  const p = new Float64Array(v);
  if (o.temperature === 0) {
    p[argmaxOf(row)] = 1;
    return p;
  }
  const max = row[argmaxOf(row)]!;
  const k = o.topK === 0 || o.topK >= v ? v : o.topK;
  // Order by logit (larger first, lower id on ties) only when a cut needs it.
  let order: Int32Array | undefined;
  if (k < v || o.topP < 1) {
    order = new Int32Array(v);
    for (let i = 0; i < v; i++) order[i] = i;
    order.sort((a, b) => row[b]! - row[a]! || a - b);
  }
  let sum = 0;
  for (let r = 0; r < k; r++) {
    const i = order ? order[r]! : r;
    const w = row[i] === -Infinity ? 0 : Math.exp((row[i]! - max) / o.temperature);
    p[i] = w;
    sum += w;
  }
  if (order && o.topP < 1) {
    // Keep token r while the mass strictly before it is < topP; zero the rest.
    let before = 0;
    let kept = 0;
    for (let r = 0; r < k; r++) {
      const i = order[r]!;
      if (before < o.topP) {
        before += p[i]! / sum;
        kept += p[i]!;
      } else p[i] = 0;
    }
    sum = kept;
  }
  for (let i = 0; i < v; i++) p[i]! /= sum;
  return p;
}

/** The inverse CDF of u in token-id order: the first id whose cumulative mass exceeds u * total. */
export function inverseCdf(p: Float64Array, u: number): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) total += p[i]!;
  const r = u * total;
  let c = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i]! > 0)) continue;
    c += p[i]!;
    if (r < c) return i;
    last = i;
  }
  return last; // rounding: u * total >= the running sum at the end
}

/** The token at `position` for a checked row (the verifiers call this on rows they checked). */
export function pickAt(row: Float32Array | Float64Array, position: number, o: ResolvedSampling): number {
  if (o.temperature === 0) return argmaxOf(row);
  return inverseCdf(distributionOf(row, o), uniformAt(o.seed, position));
}

function checkLogitsRow(arg: string, row: unknown): Float32Array | Float64Array {
  if (!(row instanceof Float32Array) && !(row instanceof Float64Array)) throw typeError(arg, 'a Float32Array (or Float64Array) row of vocab logits', row);
  if (row.length === 0) throw rangeError(`${arg}.length`, 'at least 1 (the vocabulary size)', 0);
  checkRow(arg, row);
  return row;
}

/** checkRow for the verifiers (a row of a [nodes, vocab] logits array). */
export function checkNodeRow(node: number, row: Float32Array | Float64Array): void {
  checkRow(`logits (row ${node})`, row);
}

/**
 * The distribution sampleAt draws from, as f64 probabilities [vocab] (zero
 * outside top-k / top-p; one-hot at the argmax when temperature is 0).
 * logits: one row [vocab], finite or -Infinity.
 */
export function targetDistribution(logits: Float32Array | Float64Array, options: DistributionOptions = {}): Float64Array {
  const row = checkLogitsRow('logits', logits);
  return distributionOf(row, resolveSampling('options', options, ['temperature', 'topK', 'topP'], false));
}

/**
 * The token at sequence position `position` (an integer >= 0: the index the
 * new token will have) from one row of logits [vocab]: the inverse CDF of
 * u(seed, position) over targetDistribution(logits, options), in token-id
 * order; temperature 0 is the argmax. The same (logits, position, options)
 * always give the same token.
 */
export function sampleAt(logits: Float32Array | Float64Array, position: number, options: SamplingOptions = {}): number {
  const row = checkLogitsRow('logits', logits);
  checkInteger('position', position, 0);
  return pickAt(row, position, resolveSampling('options', options));
}
