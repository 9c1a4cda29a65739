/**
 * Slow float64 references for lib/kv/stateless.ts (scoreKv, selectKv,
 * compressKv). Semantics (native/kv/policy_*.cpp):
 *  - streamingllm: score = nKv for p < sinks, else p;
 *  - knorm:        score = -||k[h][p]||;
 *  - random:       splitmix64(seed + (h * nKv + p + 1) * golden) >> 40, / 2^24;
 *  - tova:         causal attention probability of key p for the last query
 *                  row, averaged over the group's query heads;
 *  - h2o:          keyMass (or the causal key mass of all queries), the last
 *                  `recent` positions +Infinity;
 *  - snapkv:       mean causal probability over the last w = min(window, nQ)
 *                  queries and the group's heads, pooled over kernel positions
 *                  centred on p (offsets -floor(kernel/2)..) within the prefix
 *                  [0, nKv - w): avg = sum / kernel (zero padding), max skips
 *                  outside positions; the window +Infinity;
 *  - expected_attention: per query head, mean mu and population covariance S
 *                  of the query rows at positions >= sinks; softmax over keys
 *                  p >= sinks of mu.k/sqrt(d) + k^T S k/(2d) (no S term without
 *                  useCovariance), mean over the group's heads, then
 *                  (score + epsilon) * ||v|| with useVnorm; keys p < sinks +Infinity;
 *  - speckv:       rows = every draft query (sees all keys) + the last
 *                  w = min(window, nQ) queries (causal; w = 0 without queries);
 *                  per key the max (or mean) of the softmax probability over
 *                  rows and the group's heads, pooled like snapkv within
 *                  [0, nKv - w); the window +Infinity;
 *  - ems:          global = keyMass (or the causal key mass of all queries),
 *                  local = causal key mass of the last w = min(window, nQ)
 *                  queries, each divided by its per-head sum; mean (or max) of
 *                  the two before the window; the window +Infinity;
 *  - select:       per head the nKeep best (higher score, then earlier
 *                  position), ascending;
 *  - compact:      gathered rows, raw element bits.
 * Attention probabilities come from the float64 attention reference.
 */
import type { FloatDType, KvInputs, Tensor } from '../../lib/index.js';
import { decode3, referenceAttention } from './attention.js';

export interface RefPolicy {
  name: 'streamingllm' | 'knorm' | 'random' | 'tova' | 'h2o' | 'snapkv' | 'expected_attention' | 'speckv' | 'ems';
  sinks?: number;
  epsilon?: number;
  useCovariance?: boolean;
  useVnorm?: boolean;
  reduction?: 'mean' | 'max';
  combine?: 'mean' | 'max';
  seed?: number;
  recent?: number;
  window?: number;
  kernel?: number;
  pooling?: 'avg' | 'max';
}

/** The stateless API's inputs. */
export type RefInputs = KvInputs;

const MASK64 = (1n << 64n) - 1n;
function splitmix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** Causal key mass of the last n query rows (contiguous f32 copy of them). */
function lastMass(inputs: RefInputs, n: number): Float64Array {
  const q = inputs.queries!;
  const [nHeads, nQ, headDim] = q.shape as [number, number, number];
  const all = decode3(q);
  const last = new Float32Array(nHeads * n * headDim);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < n; i++) {
      for (let d = 0; d < headDim; d++) last[(h * n + i) * headDim + d] = all[(h * nQ + nQ - n + i) * headDim + d]!;
    }
  }
  return referenceAttention({ dtype: 'f32', shape: [nHeads, n, headDim], data: last }, inputs.k, inputs.v, { causal: true }).keyMass;
}

/** Softmax of a list of logits (float64). */
function softmax(logits: number[]): number[] {
  let m = -Infinity;
  for (const x of logits) m = Math.max(m, x);
  const e = logits.map((x) => Math.exp(x - m));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function referenceExpectedAttention(policy: RefPolicy, inputs: RefInputs): Float64Array {
  const [nKvHeads, nKv, d] = inputs.k.shape as [number, number, number];
  const [nHeads, nQ] = inputs.queries!.shape as [number, number];
  const group = nHeads / nKvHeads;
  const sinks = policy.sinks ?? 4;
  const eps = policy.epsilon ?? 0;
  const useCov = policy.useCovariance ?? true;
  const useVnorm = policy.useVnorm ?? true;
  const Q = decode3(inputs.queries!);
  const K = decode3(inputs.k);
  const V = decode3(inputs.v);
  const out = new Float64Array(nKvHeads * nKv).fill(Infinity);
  if (nKv <= sinks) return out;
  const rows: number[] = [];
  for (let i = 0; i < nQ; i++) if (nKv - nQ + i >= sinks) rows.push(i);
  for (let kh = 0; kh < nKvHeads; kh++) {
    const acc = new Float64Array(nKv);
    for (let g = 0; g < group; g++) {
      const h = kh * group + g;
      const row = (i: number, a: number) => Q[(h * nQ + i) * d + a]!;
      const mu = Array.from({ length: d }, (_, a) => rows.reduce((s, i) => s + row(i, a), 0) / rows.length);
      const S = Array.from({ length: d }, (_, a) => Array.from({ length: d }, (_, b) =>
        rows.reduce((s, i) => s + (row(i, a) - mu[a]!) * (row(i, b) - mu[b]!), 0) / rows.length));
      const logits: number[] = [];
      for (let p = sinks; p < nKv; p++) {
        const k = (a: number) => K[(kh * nKv + p) * d + a]!;
        let s = 0;
        for (let a = 0; a < d; a++) s += mu[a]! * k(a);
        s /= Math.sqrt(d);
        if (useCov) {
          let quad = 0;
          for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) quad += k(a) * S[a]![b]! * k(b);
          s += quad / d / 2;
        }
        logits.push(s);
      }
      softmax(logits).forEach((x, t) => { acc[sinks + t] = acc[sinks + t]! + x / group; });
    }
    for (let p = sinks; p < nKv; p++) {
      let score = acc[p]!;
      if (useVnorm) {
        let norm = 0;
        for (let a = 0; a < d; a++) norm += V[(kh * nKv + p) * d + a]! ** 2;
        score = (score + eps) * Math.sqrt(norm);
      }
      out[kh * nKv + p] = score;
    }
  }
  return out;
}

/** Reduced (max or sum) softmax probabilities of rows of `q` ([nHeads, nRows, d], float64). */
function reduceRows(
  Q: Float64Array, nRows: number, lastVisible: number, K: Float64Array, nKvHeads: number, nKv: number, d: number,
  group: number, max: boolean, acc: Float64Array,
): void {
  for (let h = 0; h < nKvHeads * group; h++) {
    const kh = Math.floor(h / group);
    for (let r = 0; r < nRows; r++) {
      const visible = lastVisible < 0 ? nKv : Math.min(nKv, lastVisible + r + 1);
      const logits: number[] = [];
      for (let p = 0; p < visible; p++) {
        let s = 0;
        for (let a = 0; a < d; a++) s += Q[(h * nRows + r) * d + a]! * K[(kh * nKv + p) * d + a]!;
        logits.push(s / Math.sqrt(d));
      }
      softmax(logits).forEach((x, p) => {
        const i = kh * nKv + p;
        acc[i] = max ? Math.max(acc[i]!, x) : acc[i]! + x;
      });
    }
  }
}

/** SnapKV pooling of m (one head, already scaled) over [0, prefix). */
function pool(m: (t: number) => number, p: number, prefix: number, kernel: number, max: boolean): number {
  const left = Math.floor(kernel / 2);
  let acc = max ? -Infinity : 0;
  for (let t = p - left; t < p - left + kernel; t++) {
    if (t < 0 || t >= prefix) continue;
    acc = max ? Math.max(acc, m(t)) : acc + m(t);
  }
  return max ? acc : acc / kernel;
}

function referenceSpecKv(policy: RefPolicy, inputs: RefInputs): Float64Array {
  const [nKvHeads, nKv, d] = inputs.k.shape as [number, number, number];
  const [nHeads, nDraft] = inputs.draftQueries!.shape as [number, number];
  const group = nHeads / nKvHeads;
  const nQ = inputs.queries ? inputs.queries.shape[1]! : 0;
  const w = inputs.queries ? Math.min(policy.window ?? 32, nQ) : 0;
  const kernel = policy.kernel ?? 7;
  const maxPool = (policy.pooling ?? 'max') === 'max';
  const maxReduce = (policy.reduction ?? 'max') === 'max';
  const K = decode3(inputs.k);
  const acc = new Float64Array(nKvHeads * nKv);
  reduceRows(decode3(inputs.draftQueries!), nDraft, -1, K, nKvHeads, nKv, d, group, maxReduce, acc);
  if (w > 0) {
    const all = decode3(inputs.queries!);
    const last = new Float64Array(nHeads * w * d);
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < w; i++) for (let a = 0; a < d; a++) last[(h * w + i) * d + a] = all[(h * nQ + nQ - w + i) * d + a]!;
    }
    reduceRows(last, w, nKv - w, K, nKvHeads, nKv, d, group, maxReduce, acc);
  }
  const scale = maxReduce ? 1 : 1 / ((nDraft + w) * group);
  const prefix = nKv - w;
  const out = new Float64Array(nKvHeads * nKv);
  for (let h = 0; h < nKvHeads; h++) {
    for (let p = 0; p < nKv; p++) {
      out[h * nKv + p] = p >= prefix ? Infinity : pool((t) => acc[h * nKv + t]! * scale, p, prefix, kernel, maxPool);
    }
  }
  return out;
}

function referenceEms(policy: RefPolicy, inputs: RefInputs): Float64Array {
  const [nKvHeads, nKv] = inputs.k.shape as [number, number];
  const nQ = inputs.queries!.shape[1]!;
  const w = Math.min(policy.window ?? 32, nQ);
  const max = (policy.combine ?? 'mean') === 'max';
  const global = inputs.keyMass ? decodeMass(inputs.keyMass) : lastMass(inputs, nQ);
  const local = lastMass(inputs, w);
  const out = new Float64Array(nKvHeads * nKv);
  for (let h = 0; h < nKvHeads; h++) {
    let sg = 0;
    let sl = 0;
    for (let p = 0; p < nKv; p++) { sg += global[h * nKv + p]!; sl += local[h * nKv + p]!; }
    for (let p = 0; p < nKv; p++) {
      if (p >= nKv - w) { out[h * nKv + p] = Infinity; continue; }
      const g = sg > 0 ? global[h * nKv + p]! / sg : 0;
      const l = sl > 0 ? local[h * nKv + p]! / sl : 0;
      out[h * nKv + p] = max ? Math.max(g, l) : (g + l) / 2;
    }
  }
  return out;
}

export function referenceScores(policy: RefPolicy, inputs: RefInputs): Float64Array {
  const [nKvHeads, nKv, headDim] = inputs.k.shape as [number, number, number];
  const out = new Float64Array(nKvHeads * nKv);
  const group = inputs.queries ? inputs.queries.shape[0]! / nKvHeads : 1;
  const nQ = inputs.queries ? inputs.queries.shape[1]! : 0;
  switch (policy.name) {
    case 'streamingllm': {
      const sinks = policy.sinks ?? 4;
      for (let h = 0; h < nKvHeads; h++) for (let p = 0; p < nKv; p++) out[h * nKv + p] = p < sinks ? nKv : p;
      return out;
    }
    case 'knorm': {
      const K = decode3(inputs.k);
      for (let r = 0; r < nKvHeads * nKv; r++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += K[r * headDim + d]! ** 2;
        out[r] = -Math.sqrt(s);
      }
      return out;
    }
    case 'random': {
      const seed = BigInt(policy.seed ?? inputs.seed ?? 0);
      for (let r = 0; r < nKvHeads * nKv; r++) {
        const z = splitmix64((seed + BigInt(r + 1) * 0x9e3779b97f4a7c15n) & MASK64);
        out[r] = Number(z >> 40n) / 2 ** 24;
      }
      return out;
    }
    case 'tova': {
      const m = lastMass(inputs, 1);
      for (let r = 0; r < out.length; r++) out[r] = m[r]! / group;
      return out;
    }
    case 'h2o': {
      const recent = policy.recent ?? 32;
      const m = inputs.keyMass ? decodeMass(inputs.keyMass) : lastMass(inputs, nQ);
      for (let h = 0; h < nKvHeads; h++) {
        for (let p = 0; p < nKv; p++) out[h * nKv + p] = p >= nKv - recent ? Infinity : m[h * nKv + p]!;
      }
      return out;
    }
    case 'snapkv': {
      const w = Math.min(policy.window ?? 32, nQ);
      const kernel = policy.kernel ?? 5;
      const max = policy.pooling === 'max';
      const m = lastMass(inputs, w);
      const prefix = nKv - w;
      const left = Math.floor(kernel / 2);
      for (let h = 0; h < nKvHeads; h++) {
        for (let p = 0; p < nKv; p++) {
          if (p >= prefix) { out[h * nKv + p] = Infinity; continue; }
          let acc = max ? -Infinity : 0;
          for (let t = p - left; t < p - left + kernel; t++) {
            if (t < 0 || t >= prefix) continue;
            const x = m[h * nKv + t]! / (w * group);
            acc = max ? Math.max(acc, x) : acc + x;
          }
          out[h * nKv + p] = max ? acc : acc / kernel;
        }
      }
      return out;
    }
    case 'expected_attention':
      return referenceExpectedAttention(policy, inputs);
    case 'speckv':
      return referenceSpecKv(policy, inputs);
    case 'ems':
      return referenceEms(policy, inputs);
  }
}

function decodeMass(t: Tensor<'f32'>): Float64Array {
  const [a, b] = t.shape as [number, number];
  const s0 = t.strides?.[0] ?? b;
  const out = new Float64Array(a * b);
  for (let i = 0; i < a; i++) for (let j = 0; j < b; j++) out[i * b + j] = t.data[i * s0 + j]!;
  return out;
}

/** Kept positions per head: [nKvHeads][nKeep], ascending. */
export function referenceSelect(scores: ArrayLike<number>, nKvHeads: number, nKv: number, nKeep: number): number[][] {
  const out: number[][] = [];
  for (let h = 0; h < nKvHeads; h++) {
    const pos = Array.from({ length: nKv }, (_, p) => p);
    pos.sort((a, b) => {
      const sa = scores[h * nKv + a]!;
      const sb = scores[h * nKv + b]!;
      return sa === sb ? a - b : sb > sa ? 1 : -1;
    });
    out.push(pos.slice(0, nKeep).sort((a, b) => a - b));
  }
  return out;
}

/** Raw element bits of the gathered rows, contiguous [nKvHeads, nKeep, headDim]. */
export function referenceCompact(t: Tensor<FloatDType>, kept: number[][]): number[] {
  const [, nKv, headDim] = t.shape as [number, number, number];
  const [s0, s1] = (t.strides ?? [nKv * headDim, headDim]) as [number, number];
  const out: number[] = [];
  kept.forEach((row, h) => {
    for (const p of row) for (let d = 0; d < headDim; d++) out.push(t.data[h * s0 + p * s1 + d]!);
  });
  return out;
}
