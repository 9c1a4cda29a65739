/**
 * Retrieval-head detection for RazorAttention (Tang et al. 2024,
 * "RazorAttention: Efficient KV Cache Compression Through Retrieval Heads").
 *
 * The caller runs the model on a random token block of length `period`
 * repeated several times (the paper: 2500 random tokens, 4 repetitions) and
 * captures one layer's queries and keys as the attention saw them:
 *
 *   queries  f32          [nHeads,   n, headDim]   (strides allowed)
 *   keys     f32|f16|bf16 [nKvHeads, n, headDim]   (strides allowed)
 *   GQA: nHeads % nKvHeads == 0; query head h reads KV head h / (nHeads / nKvHeads).
 *
 * Token i equals token i - period, so for a query at i >= period:
 *  - echo heads attend to the previous occurrences of the current token:
 *    keys i - m*period (m >= 1);
 *  - induction heads attend to the token after each previous occurrence:
 *    keys i - m*period + 1.
 * Echo (induction) score of a head = the causal softmax probability on those
 * keys, summed over the previous occurrences, averaged over the query rows
 * i in [period, n) (the second and later repetitions). Probabilities come from
 * attention()'s log-sum-exp: p[i][j] = exp(scale * q_i.k_j - lse_i).
 *
 * pickRetrievalHeads then protects the top 14% heads by induction score and
 * the top 1% by echo score (the paper's setting), ranked jointly over every
 * layer passed in; a KV head is a retrieval head when any query head of its
 * group is picked (its cache is shared by the group).
 */
import { attention } from '../attention.js';
import { rangeError, typeError } from '../errors.js';
import { bf16BitsToF32, f16BitsToF32, type FloatDType, type TensorLike } from '../tensor.js';
import { checkInteger, checkNumber, checkOptions, checkTensor, type CheckedTensor } from '../validate.js';

export interface RetrievalHeadInputs {
  /** One layer's queries, f32 [nHeads, n, headDim] (TensorLike: a leading batch of 1 is fine). */
  queries: TensorLike<'f32'>;
  /** The same layer's keys, f32|f16|bf16 [nKvHeads, n, headDim]. */
  keys: TensorLike<FloatDType>;
  /** Length of the repeated random block (1 <= period < n). */
  period: number;
}

export interface ScoreRetrievalHeadsOptions {
  /** Logit scale of the layer; default 1/sqrt(headDim). */
  scale?: number;
}

export interface RetrievalHeadScores {
  nHeads: number;
  nKvHeads: number;
  /** [nHeads] mean probability on the previous occurrences of the current token. */
  echo: Float64Array;
  /** [nHeads] mean probability on the tokens after the previous occurrences. */
  induction: Float64Array;
  /** [nKvHeads] max of `echo` over the group's query heads. */
  kvEcho: Float64Array;
  /** [nKvHeads] max of `induction` over the group's query heads. */
  kvInduction: Float64Array;
}

export interface PickRetrievalHeadsOptions {
  /** Fraction of all query heads protected by induction score; default 0.14. */
  induction?: number;
  /** Fraction of all query heads protected by echo score; default 0.01. */
  echo?: number;
}

/** The paper's protected fractions. */
export const RETRIEVAL_HEAD_DEFAULTS = { induction: 0.14, echo: 0.01 } as const;

function reader(t: CheckedTensor<FloatDType>): (a: number, b: number, c: number) => number {
  const [s0, s1] = t.strides as [number, number, number];
  const data = t.data;
  const decode = t.dtype === 'f16' ? f16BitsToF32 : t.dtype === 'bf16' ? bf16BitsToF32 : (x: number) => x;
  return (a, b, c) => decode(data[a * s0 + b * s1 + c]!);
}

/**
 * Echo and induction scores of every head of one layer (shapes: see the
 * module comment). Inputs are only read.
 */
export function scoreRetrievalHeads(inputs: RetrievalHeadInputs, opts?: ScoreRetrievalHeadsOptions): RetrievalHeadScores {
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw typeError('inputs', 'an object { queries, keys, period }', inputs);
  }
  const o = checkOptions('inputs', inputs, ['queries', 'keys', 'period']) as Partial<RetrievalHeadInputs>;
  const options = checkOptions('opts', opts, ['scale']) as ScoreRetrievalHeadsOptions;
  const q = checkTensor('inputs.queries', o.queries, ['f32'] as const, ['nHeads', 'n', 'headDim']);
  const k = checkTensor('inputs.keys', o.keys, ['f32', 'f16', 'bf16'] as const, ['nKvHeads', 'n', 'headDim']);
  const [nHeads, n, headDim] = q.shape as [number, number, number];
  const [nKvHeads, nK, kDim] = k.shape as [number, number, number];
  if (headDim < 1) throw rangeError('inputs.queries.shape[2] (headDim)', 'headDim >= 1', headDim);
  if (kDim !== headDim) throw rangeError('inputs.keys.shape[2] (headDim)', `queries' headDim = ${headDim}`, kDim);
  if (nK !== n) throw rangeError('inputs.keys.shape[1] (n)', `queries' n = ${n}`, nK);
  if (nKvHeads < 1 || nHeads % nKvHeads !== 0) {
    throw rangeError('inputs.keys.shape[0] (nKvHeads)', `a divisor of nHeads = ${nHeads} (GQA)`, nKvHeads);
  }
  if (n < 2) throw rangeError('inputs.queries.shape[1] (n)', 'at least 2 tokens (one block and one repeat)', n);
  const period = checkInteger('inputs.period', o.period, 1, n - 1);
  const scale = options.scale === undefined ? 1 / Math.sqrt(headDim) : checkNumber('opts.scale', options.scale, { positive: true });

  // Causal lse per query row; keys double as values (the output is unused).
  // The checked views, not the inputs again: each input is read once.
  const { lse } = attention(q, k, k, { causal: true, returnLse: true, scale });
  const lseData = lse!.data;
  const readQ = reader(q as CheckedTensor<FloatDType>);
  const readK = reader(k);
  const group = nHeads / nKvHeads;
  const prob = (h: number, i: number, j: number): number => {
    let dot = 0;
    for (let d = 0; d < headDim; d++) dot += readQ(h, i, d) * readK(Math.floor(h / group), j, d);
    return Math.exp(scale * dot - lseData[h * n + i]!);
  };

  const echo = new Float64Array(nHeads);
  const induction = new Float64Array(nHeads);
  const rows = n - period;
  for (let h = 0; h < nHeads; h++) {
    let e = 0;
    let ind = 0;
    for (let i = period; i < n; i++) {
      for (let prev = i - period; prev >= 0; prev -= period) {
        e += prob(h, i, prev);
        ind += prob(h, i, prev + 1);
      }
    }
    echo[h] = e / rows;
    induction[h] = ind / rows;
  }
  const kvEcho = new Float64Array(nKvHeads).fill(-Infinity);
  const kvInduction = new Float64Array(nKvHeads).fill(-Infinity);
  for (let h = 0; h < nHeads; h++) {
    const kv = Math.floor(h / group);
    kvEcho[kv] = Math.max(kvEcho[kv]!, echo[h]!);
    kvInduction[kv] = Math.max(kvInduction[kv]!, induction[h]!);
  }
  return { nHeads, nKvHeads, echo, induction, kvEcho, kvInduction };
}

function checkScores(arg: string, s: unknown): RetrievalHeadScores {
  const r = s as RetrievalHeadScores;
  const ok = s !== null && typeof s === 'object'
    && Number.isInteger(r.nHeads) && Number.isInteger(r.nKvHeads) && r.nKvHeads >= 1 && r.nHeads % r.nKvHeads === 0
    && r.echo instanceof Float64Array && r.echo.length === r.nHeads
    && r.induction instanceof Float64Array && r.induction.length === r.nHeads;
  if (!ok) throw typeError(arg, 'the result of scoreRetrievalHeads()', s);
  return r;
}

/** Indices of the `count` largest values (ties: the lower index first). */
function topIndices(values: number[], count: number): number[] {
  const order = values.map((_, i) => i);
  order.sort((a, b) => (values[b]! - values[a]!) || a - b);
  return order.slice(0, count);
}

/**
 * Retrieval KV heads: boolean [nKvHeads] per layer. With one layer's scores
 * the fractions apply to that layer's heads; with an array (one entry per
 * layer) the heads of all layers are ranked together, as in the paper. The
 * number of heads protected by each criterion is ceil(fraction * total heads).
 */
export function pickRetrievalHeads(scores: RetrievalHeadScores, opts?: PickRetrievalHeadsOptions): boolean[];
export function pickRetrievalHeads(scores: readonly RetrievalHeadScores[], opts?: PickRetrievalHeadsOptions): boolean[][];
export function pickRetrievalHeads(
  scores: RetrievalHeadScores | readonly RetrievalHeadScores[],
  opts?: PickRetrievalHeadsOptions,
): boolean[] | boolean[][] {
  const o = checkOptions('opts', opts, ['induction', 'echo']) as PickRetrievalHeadsOptions;
  const fraction = (name: 'induction' | 'echo'): number => {
    const v = o[name] === undefined ? RETRIEVAL_HEAD_DEFAULTS[name] : checkNumber(`opts.${name}`, o[name]);
    if (!(v >= 0 && v <= 1)) throw rangeError(`opts.${name}`, 'a fraction in [0, 1]', v);
    return v;
  };
  const induction = fraction('induction');
  const echo = fraction('echo');
  const layers = Array.isArray(scores)
    ? (scores as readonly RetrievalHeadScores[]).map((s, i) => checkScores(`scores[${i}]`, s))
    : [checkScores('scores', scores)];
  // Flatten (layer, head) pairs in layer order.
  const owner: [number, number][] = [];
  const inductionAll: number[] = [];
  const echoAll: number[] = [];
  layers.forEach((s, layer) => {
    for (let h = 0; h < s.nHeads; h++) {
      owner.push([layer, h]);
      inductionAll.push(s.induction[h]!);
      echoAll.push(s.echo[h]!);
    }
  });
  const masks = layers.map((s) => new Array<boolean>(s.nKvHeads).fill(false));
  const picked = [
    ...topIndices(inductionAll, Math.ceil(induction * owner.length)),
    ...topIndices(echoAll, Math.ceil(echo * owner.length)),
  ];
  for (const x of picked) {
    const [layer, h] = owner[x]!;
    const s = layers[layer]!;
    masks[layer]![Math.floor(h / (s.nHeads / s.nKvHeads))] = true;
  }
  return Array.isArray(scores) ? masks : masks[0]!;
}
