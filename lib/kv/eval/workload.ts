/**
 * Synthetic needle-retrieval workload for `tokenpress eval kv`, deterministic
 * from a seed. Per layer:
 *
 *   k, v     f32|f16 [nKvHeads, nKv, headDim]   the prompt's cache (post-RoPE keys)
 *   window   f32     [nHeads,   window, headDim] queries of the last `window`
 *                                               prompt positions (the observation
 *                                               window policies score with)
 *   question f32     [nHeads,   nNeedles, headDim] the question rows of the window
 *                                               (positions nKv - nNeedles + j)
 *   probes   f32     [nHeads,   nProbes, headDim]  haystack-like queries at the
 *                                               future positions nKv + j
 *
 * The structure mimics what real models show (and every piece has a reason):
 *  - RoPE (theta 10000, rotate-half pairs: dims i and i + headDim/2) applied to
 *    keys and queries at their positions, so q.k depends on relative position.
 *  - Topics: the prompt is a run of segments ("documents", 1/32..1/8 of nKv
 *    long), each about one of a few topics; keys and queries carry their
 *    segment's topic direction (per KV head) in the low-frequency RoPE pairs,
 *    so they vary slowly with position and queries favour their own topic.
 *  - Local bias: keys and queries share one vector on the other (high- and
 *    mid-frequency) pairs, equal magnitude per pair; after RoPE it adds
 *    sum_i |a_i|^2 cos(theta_i * distance), which falls roughly linearly in
 *    log(distance) from its peak at 0 to about 0 past ~300 tokens (RoPE's own
 *    recency bias). Its strength differs per query head.
 *  - Outlier channels, the attention sink and heavy hitters: cached
 *    (post-RoPE) keys carry a large negative offset -m on 4 fixed channels
 *    (KIVI's channel outliers); every query has a positive component B there
 *    (B per query head). Position 0 lacks the offset (and has a small key and
 *    a small value, as sink tokens do), so it takes a large, head-dependent
 *    share of every query's attention; 5% of the other tokens lack part of it
 *    (heavy hitters: more attention from every query and a smaller key norm,
 *    the correlation the key-norm papers report).
 *  - Keys are far from isotropic: per-channel key noise is small (0.5) next
 *    to the structure. Values share a per-head mean, a topic part and noise.
 *  - Needles: nNeedles single tokens at random depths in the prompt (outside
 *    the window), each a haystack key plus s * R(pos) u_j, u_j a random unit
 *    direction in the low-frequency pairs orthogonal to the topics (the needle
 *    is an off-topic fact), with a random value of the haystack's RMS.
 *  - Question: the last nNeedles prompt positions are the question, one row
 *    per needle. In each layer's retrieval heads (one query head per KV group,
 *    chosen at random) the question row j is a haystack-like query (with half
 *    the sink component) plus c_j * R(pos_j) u_j: it matches needle j after
 *    RoPE at any depth, so full attention returns mostly needle j's value
 *    (test: cosine >= 0.9). In the other heads question rows are haystack-like.
 *  - Multi-question layout (questionsAfter > 0): only the first nNeedles -
 *    questionsAfter questions close the window; the others are asked after
 *    the prompt, one after another at positions nKv, nKv + 1, ... (their own
 *    keys are not cached: they hold no needle), then the probes. Eviction
 *    compresses once, with a window that saw only the first questions; a
 *    sparse method selects per question. The question component of a row is
 *    position-free (R(needle pos) u_j), so a later question matches its
 *    needle as well as one in the window.
 * Measured on the defaults (probe queries, float64): the sink takes ~7-35% of
 * a head's attention, the last 64 keys ~5-19%, the top 10% of keys ~80-94%.
 * No part of this knows about any policy.
 */
import { castTo } from '../../tensor.js';
import type { Tensor } from '../../tensor.js';
import { rangeError } from '../../errors.js';
import { checkInteger, checkOptions } from '../../validate.js';

export interface NeedleWorkloadOptions {
  /** default 0 */ seed?: number;
  /** default 2 */ nLayers?: number;
  /** default 8 */ nHeads?: number;
  /** default 2 (GQA 8/2) */ nKvHeads?: number;
  /** default 128; even (RoPE pairs), >= 8 */ headDim?: number;
  /** prompt length, default 8192 */ nKv?: number;
  /** k/v dtype, default 'f32' */ dtype?: 'f32' | 'f16';
  /** default 8; at most window */ nNeedles?: number;
  /** observation window, default 32 */ window?: number;
  /** haystack-like probe queries after the prompt, default 32 */ nProbes?: number;
  /**
   * Multi-question layout: the questions of the last `questionsAfter` needles
   * are asked after the prompt, one after another (positions nKv, nKv + 1,
   * ...), so the observation window holds only the first nNeedles -
   * questionsAfter questions; the probes follow them. Default 0: every
   * question closes the window (the classic workload, unchanged bit for bit).
   */
  questionsAfter?: number;
}

export type ResolvedWorkloadOptions = Required<NeedleWorkloadOptions>;

/** One set of evaluation queries: position[i] is query i's token position; it sees keys at positions <= position[i]. */
export interface EvalQueries {
  q: Tensor<'f32'>; // [nHeads, nQ, headDim]
  positions: Int32Array; // [nQ]
}

export interface WorkloadLayer {
  k: Tensor<'f32' | 'f16'>;
  v: Tensor<'f32' | 'f16'>;
  window: Tensor<'f32'>;
  question: EvalQueries;
  probes: EvalQueries;
  /** Query heads whose question rows look up the needles, one per KV group, ascending. */
  retrievalHeads: number[];
  /** needleValues[g][j]: needle j's value in KV head g, length headDim. */
  needleValues: Float32Array[][];
}

export interface NeedleWorkload {
  options: ResolvedWorkloadOptions;
  layers: WorkloadLayer[];
  /** Prompt position of needle j (ascending in j is not guaranteed). */
  needlePositions: number[];
  /** Position of question row j (needle j's question). */
  questionPositions: number[];
}

export const WORKLOAD_DEFAULTS: ResolvedWorkloadOptions = {
  seed: 0, nLayers: 2, nHeads: 8, nKvHeads: 2, headDim: 128, nKv: 8192, dtype: 'f32', nNeedles: 8, window: 32, nProbes: 32, questionsAfter: 0,
};

/** RoPE base frequency. */
export const ROPE_THETA = 10000;

// Strengths (logits are q.k / sqrt(headDim)); see the module comment.
const N_TOPICS = 6;
const TOPIC_KEY = 5; // topic component of keys
const TOPIC_QUERY: [number, number] = [2, 6]; // per query head
const LOCAL_NORM2 = 40; // |a|^2 of the shared local-bias vector (high- and mid-frequency pairs)
const LOCAL_QUERY: [number, number] = [0.5, 3]; // per query head: multiple of a in queries
const OUTLIER_KEY = 8; // m: key offset on the outlier channels
const OUTLIER_JITTER = 0.1; // m varies by +-10% (normal sd) per token
const HEAVY_FRACTION = 0.05; // heavy hitters: tokens with a partly missing offset (salience r)
const HEAVY_SALIENCE: [number, number] = [0.2, 0.5];
const KEY_NOISE = 0.5; // per channel; keys are far from isotropic (low rank) in real models
const VALUE_MEAN = 1; // per channel scale of the value mean shared by a head's tokens
const SINK_QUERY: [number, number] = [8, 20]; // B per query head
const QUESTION_SINK = 0.5; // question rows of retrieval heads keep half of B
const NEEDLE_KEY = 14; // s
const NEEDLE_QUERY: [number, number] = [18, 24]; // c per needle
const VALUE_TOPIC = 1;
const SINK_KEY_NOISE = 0.3;
const SINK_VALUE_NOISE = 0.1;

/** mulberry32 uniform [0, 1) and Box-Muller normals: seeded, platform independent. */
export class Rng {
  private a: number;
  private spare: number | undefined;
  constructor(seed: number) { this.a = seed >>> 0; }
  uniform(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  range([lo, hi]: [number, number]): number { return lo + (hi - lo) * this.uniform(); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.uniform() * (hi - lo + 1)); }
  normal(): number {
    if (this.spare !== undefined) { const s = this.spare; this.spare = undefined; return s; }
    let u = this.uniform();
    while (u === 0) u = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const t = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }
}

/** Validates and fills in the options. */
export function resolveWorkloadOptions(opts: unknown): ResolvedWorkloadOptions {
  const o = checkOptions('options', opts, Object.keys(WORKLOAD_DEFAULTS)) as NeedleWorkloadOptions;
  const r: ResolvedWorkloadOptions = { ...WORKLOAD_DEFAULTS };
  if (o.seed !== undefined) r.seed = checkInteger('options.seed', o.seed, 0, 0xffffffff);
  if (o.nLayers !== undefined) r.nLayers = checkInteger('options.nLayers', o.nLayers, 1, 1024);
  if (o.nHeads !== undefined) r.nHeads = checkInteger('options.nHeads', o.nHeads, 1, 1024);
  if (o.nKvHeads !== undefined) r.nKvHeads = checkInteger('options.nKvHeads', o.nKvHeads, 1, 1024);
  if (o.headDim !== undefined) r.headDim = checkInteger('options.headDim', o.headDim, 8, 4096);
  if (o.window !== undefined) r.window = checkInteger('options.window', o.window, 1, 4096);
  if (o.nNeedles !== undefined) r.nNeedles = checkInteger('options.nNeedles', o.nNeedles, 1, 4096);
  if (o.nProbes !== undefined) r.nProbes = checkInteger('options.nProbes', o.nProbes, 1, 4096);
  if (o.nKv !== undefined) r.nKv = checkInteger('options.nKv', o.nKv, 1, 1 << 22);
  if (o.questionsAfter !== undefined) r.questionsAfter = checkInteger('options.questionsAfter', o.questionsAfter, 0, 4096);
  if (o.dtype !== undefined) {
    if (o.dtype !== 'f32' && o.dtype !== 'f16') throw new TypeError(`options.dtype: expected 'f32' | 'f16', received ${JSON.stringify(o.dtype)}`);
    r.dtype = o.dtype;
  }
  if (r.headDim % 2 !== 0) throw rangeError('options.headDim', 'an even head dimension (RoPE rotates pairs)', r.headDim);
  if (r.nHeads % r.nKvHeads !== 0) throw rangeError('options.nKvHeads', `a divisor of nHeads = ${r.nHeads} (GQA)`, r.nKvHeads);
  if (r.nNeedles > r.window) throw rangeError('options.nNeedles', `at most window = ${r.window} (the question rows are in the window)`, r.nNeedles);
  if (r.questionsAfter > r.nNeedles) throw rangeError('options.questionsAfter', `at most nNeedles = ${r.nNeedles}`, r.questionsAfter);
  const minKv = 4 * r.window + 4 * r.nNeedles;
  if (r.nKv < minKv) throw rangeError('options.nKv', `at least ${minKv} (4 * window + 4 * nNeedles: room for the needles before the window)`, r.nKv);
  return r;
}

const FREQS = new Map<number, Float64Array>();
/** theta^(-2i/headDim) for the headDim/2 pairs. */
function ropeFrequencies(headDim: number): Float64Array {
  let f = FREQS.get(headDim);
  if (!f) {
    f = Float64Array.from({ length: headDim / 2 }, (_, i) => Math.pow(ROPE_THETA, (-2 * i) / headDim));
    FREQS.set(headDim, f);
  }
  return f;
}

/** Rotates x (one row of headDim, pre-RoPE) to position pos in place: rotate-half pairs (i, i + headDim/2). */
export function applyRope(x: Float32Array | Float64Array, off: number, headDim: number, pos: number): void {
  const half = headDim / 2;
  const freq = ropeFrequencies(headDim);
  for (let i = 0; i < half; i++) {
    const ang = pos * freq[i]!;
    const c = Math.cos(ang);
    const s = Math.sin(ang);
    const a = x[off + i]!;
    const b = x[off + i + half]!;
    x[off + i] = a * c - b * s;
    x[off + i + half] = a * s + b * c;
  }
}

function unit(rng: Rng, headDim: number, pairs: (i: number) => boolean): Float64Array {
  const half = headDim / 2;
  const u = new Float64Array(headDim);
  let n2 = 0;
  for (let i = 0; i < half; i++) {
    if (!pairs(i)) continue;
    u[i] = rng.normal();
    u[i + half] = rng.normal();
    n2 += u[i]! ** 2 + u[i + half]! ** 2;
  }
  const n = Math.sqrt(n2);
  for (let d = 0; d < headDim; d++) u[d] = u[d]! / n;
  return u;
}

/**
 * The shared local-bias vector: equal magnitude on each selected pair, random
 * phase, |a|^2 = LOCAL_NORM2. After RoPE it adds sum_i |a_i|^2 cos(theta_i d)
 * at distance d: with log-spaced theta_i this falls roughly linearly in log d,
 * from LOCAL_NORM2 at d = 0 to about 0 at d = 1 / (smallest theta).
 */
function localVector(rng: Rng, headDim: number, pairs: (i: number) => boolean): Float64Array {
  const half = headDim / 2;
  const chosen = Array.from({ length: half }, (_, i) => i).filter(pairs);
  const r = Math.sqrt(LOCAL_NORM2 / chosen.length);
  const a = new Float64Array(headDim);
  for (const i of chosen) {
    const phase = 2 * Math.PI * rng.uniform();
    a[i] = r * Math.cos(phase);
    a[i + half] = r * Math.sin(phase);
  }
  return a;
}

/** u minus its projections on the (orthonormalised) basis, renormalised. */
function orthogonalUnit(u: Float64Array, basis: Float64Array[]): Float64Array {
  const ortho: Float64Array[] = [];
  for (const b of basis) ortho.push(normalise(subtractProjections(Float64Array.from(b), ortho)));
  return normalise(subtractProjections(u, ortho));
}

function subtractProjections(x: Float64Array, ortho: Float64Array[]): Float64Array {
  for (const o of ortho) {
    let d = 0;
    for (let i = 0; i < x.length; i++) d += x[i]! * o[i]!;
    for (let i = 0; i < x.length; i++) x[i] = x[i]! - d * o[i]!;
  }
  return x;
}

function normalise(x: Float64Array): Float64Array {
  let n = 0;
  for (const v of x) n += v * v;
  n = Math.sqrt(n);
  for (let i = 0; i < x.length; i++) x[i] = x[i]! / n;
  return x;
}

/** Segment topics per position: segments of nKv/32..nKv/8 tokens (at least 4), consecutive topics differ. */
function topicSchedule(rng: Rng, nKv: number, nExtra: number): Uint8Array {
  const topic = new Uint8Array(nKv + nExtra);
  const lo = Math.max(4, Math.floor(nKv / 32));
  const hi = Math.max(lo, Math.floor(nKv / 8));
  let cur = rng.int(0, N_TOPICS - 1);
  for (let p = 0; p < nKv;) {
    const len = rng.int(lo, hi);
    topic.fill(cur, p, Math.min(nKv, p + len));
    p += len;
    cur = (cur + rng.int(1, N_TOPICS - 1)) % N_TOPICS;
  }
  topic.fill(topic[nKv - 1]!, nKv); // the probes continue the last segment
  return topic;
}

/** Needle depths: distinct, spread over [1, nKv - window), at least 2 apart. */
function needleDepths(rng: Rng, nKv: number, window: number, nNeedles: number): number[] {
  const out: number[] = [];
  const hi = nKv - window - 1;
  while (out.length < nNeedles) {
    const p = rng.int(1, hi);
    if (out.every((q) => Math.abs(q - p) >= 2)) out.push(p);
  }
  return out;
}

interface HeadParams { sink: number; topic: number; local: number }

/** Generates the workload (see the module comment); deterministic in options.seed. */
export function makeNeedleWorkload(options?: NeedleWorkloadOptions): NeedleWorkload {
  const o = resolveWorkloadOptions(options);
  const { nLayers, nHeads, nKvHeads, headDim, nKv, window, nNeedles, nProbes, questionsAfter } = o;
  const inWindow = nNeedles - questionsAfter; // questions that close the observation window
  const rng = new Rng(o.seed ^ 0x9e3779b9);
  const half = headDim / 2;
  const lowPair = (i: number) => i >= Math.floor((half * 5) / 8); // low-frequency RoPE pairs: topics
  const highPair = (i: number) => !lowPair(i); // the other pairs: local bias
  const topicOf = topicSchedule(rng, nKv, nProbes + questionsAfter);
  const needlePositions = needleDepths(rng, nKv, window, nNeedles);
  // Question j: in the window at nKv - inWindow + j, or after the prompt at nKv + (j - inWindow).
  const questionPositions = Array.from({ length: nNeedles }, (_, j) => nKv - inWindow + j);
  const probeStart = nKv + questionsAfter;
  const group = nHeads / nKvHeads;
  const layers: WorkloadLayer[] = [];

  for (let l = 0; l < nLayers; l++) {
    const K = new Float32Array(nKvHeads * nKv * headDim);
    const V = new Float32Array(nKvHeads * nKv * headDim);
    const W = new Float32Array(nHeads * window * headDim);
    const P = new Float32Array(nHeads * nProbes * headDim);
    const A = new Float32Array(nHeads * questionsAfter * headDim); // questions asked after the prompt
    const retrievalHeads: number[] = [];
    const needleValues: Float32Array[][] = [];
    for (let g = 0; g < nKvHeads; g++) {
      const topics = Array.from({ length: N_TOPICS }, () => unit(rng, headDim, lowPair));
      const valueTopics = Array.from({ length: N_TOPICS }, () => Float64Array.from({ length: headDim }, () => rng.normal()));
      const valueMean = Float64Array.from({ length: headDim }, () => VALUE_MEAN * rng.normal());
      const local = localVector(rng, headDim, highPair);
      const outlier = new Float64Array(headDim); // unit vector on 4 random channels, post-RoPE
      while (outlier.reduce((n, x) => n + (x !== 0 ? 1 : 0), 0) < 4) outlier[rng.int(0, headDim - 1)] = rng.uniform() < 0.5 ? -0.5 : 0.5;
      // Needles are off-topic facts: their directions are orthogonal to the haystack's topics.
      const needleDirs = Array.from({ length: nNeedles }, () => orthogonalUnit(unit(rng, headDim, lowPair), topics));
      const needleStrength = Array.from({ length: nNeedles }, () => rng.range(NEEDLE_QUERY));
      needleValues.push(needleDirs.map(() => {
        const v = Float32Array.from({ length: headDim }, () => rng.normal());
        const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
        return v.map((x) => (x * Math.sqrt(headDim)) / n);
      }));

      // Keys and values of KV head g.
      const needleAt = new Map(needlePositions.map((p, j) => [p, j]));
      for (let p = 0; p < nKv; p++) {
        const off = (g * nKv + p) * headDim;
        if (p === 0) { // the sink: small key without the outlier offset, small value
          for (let d = 0; d < headDim; d++) { K[off + d] = SINK_KEY_NOISE * rng.normal(); V[off + d] = SINK_VALUE_NOISE * rng.normal(); }
          applyRope(K, off, headDim, p);
          continue;
        }
        const t = topics[topicOf[p]!]!;
        const vt = valueTopics[topicOf[p]!]!;
        for (let d = 0; d < headDim; d++) {
          K[off + d] = TOPIC_KEY * t[d]! + local[d]! + KEY_NOISE * rng.normal();
          V[off + d] = valueMean[d]! + VALUE_TOPIC * vt[d]! + rng.normal();
        }
        const j = needleAt.get(p);
        if (j !== undefined) {
          for (let d = 0; d < headDim; d++) { K[off + d] = K[off + d]! + NEEDLE_KEY * needleDirs[j]![d]!; V[off + d] = needleValues[g]![j]![d]!; }
        }
        applyRope(K, off, headDim, p);
        const salience = j === undefined && rng.uniform() < HEAVY_FRACTION ? rng.range(HEAVY_SALIENCE) : 0;
        const m = OUTLIER_KEY * (1 - salience) * (1 + OUTLIER_JITTER * rng.normal());
        for (let d = 0; d < headDim; d++) if (outlier[d] !== 0) K[off + d] = K[off + d]! - m * outlier[d]!;
      }

      // Queries of the group's heads: window rows (positions nKv - window + i) and probes (nKv + i).
      const retrieval = g * group + rng.int(0, group - 1);
      retrievalHeads.push(retrieval);
      for (let hh = 0; hh < group; hh++) {
        const h = g * group + hh;
        const hp: HeadParams = { sink: rng.range(SINK_QUERY), topic: rng.range(TOPIC_QUERY), local: rng.range(LOCAL_QUERY) };
        const query = (dst: Float32Array, off: number, pos: number, sinkScale: number) => {
          const t = topics[topicOf[pos]!]!;
          for (let d = 0; d < headDim; d++) dst[off + d] = hp.topic * t[d]! + hp.local * local[d]! + rng.normal();
          applyRope(dst, off, headDim, pos);
          for (let d = 0; d < headDim; d++) dst[off + d] = dst[off + d]! + sinkScale * hp.sink * outlier[d]!;
        };
        for (let i = 0; i < window; i++) {
          const pos = nKv - window + i;
          const off = (h * window + i) * headDim;
          const j = i - (window - inWindow); // question row index, when >= 0
          if (h === retrieval && j >= 0) {
            query(W, off, pos, QUESTION_SINK);
            // c_j * R(needle pos) u_j, built in rotated space so it matches the needle key at any depth.
            const u = Float64Array.from(needleDirs[j]!);
            applyRope(u, 0, headDim, needlePositions[j]!);
            for (let d = 0; d < headDim; d++) W[off + d] = W[off + d]! + needleStrength[j]! * u[d]!;
          } else {
            query(W, off, pos, 1);
          }
        }
        for (let i = 0; i < nProbes; i++) query(P, (h * nProbes + i) * headDim, probeStart + i, 1);
        // Drawn last, so questionsAfter = 0 draws exactly what the classic workload draws.
        for (let t = 0; t < questionsAfter; t++) {
          const j = inWindow + t;
          const off = (h * questionsAfter + t) * headDim;
          if (h === retrieval) {
            query(A, off, nKv + t, QUESTION_SINK);
            const u = Float64Array.from(needleDirs[j]!);
            applyRope(u, 0, headDim, needlePositions[j]!);
            for (let d = 0; d < headDim; d++) A[off + d] = A[off + d]! + needleStrength[j]! * u[d]!;
          } else {
            query(A, off, nKv + t, 1);
          }
        }
      }
    }

    const kf: Tensor<'f32'> = { dtype: 'f32', shape: [nKvHeads, nKv, headDim], data: K };
    const vf: Tensor<'f32'> = { dtype: 'f32', shape: [nKvHeads, nKv, headDim], data: V };
    const windowT: Tensor<'f32'> = { dtype: 'f32', shape: [nHeads, window, headDim], data: W };
    // Question rows: the last inWindow window rows, then the rows asked after the prompt, per head.
    const Qd = new Float32Array(nHeads * nNeedles * headDim);
    for (let h = 0; h < nHeads; h++) {
      Qd.set(W.subarray((h * window + window - inWindow) * headDim, (h * window + window) * headDim), h * nNeedles * headDim);
      Qd.set(A.subarray(h * questionsAfter * headDim, (h + 1) * questionsAfter * headDim), (h * nNeedles + inWindow) * headDim);
    }
    layers.push({
      k: o.dtype === 'f32' ? kf : castTo(kf, 'f16'),
      v: o.dtype === 'f32' ? vf : castTo(vf, 'f16'),
      window: windowT,
      question: { q: { dtype: 'f32', shape: [nHeads, nNeedles, headDim], data: Qd }, positions: Int32Array.from(questionPositions) },
      probes: {
        q: { dtype: 'f32', shape: [nHeads, nProbes, headDim], data: P },
        positions: Int32Array.from({ length: nProbes }, (_, i) => probeStart + i),
      },
      retrievalHeads,
      needleValues,
    });
  }
  return { options: o, layers, needlePositions, questionPositions };
}
