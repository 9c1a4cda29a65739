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
 *  - select:       per head the nKeep best (higher score, then earlier
 *                  position), ascending;
 *  - compact:      gathered rows, raw element bits.
 * Attention probabilities come from the float64 attention reference.
 */
import type { FloatDType, Tensor } from '../../lib/index.js';
import { decode3, referenceAttention } from './attention.js';

export interface RefPolicy {
  name: 'streamingllm' | 'knorm' | 'random' | 'tova' | 'h2o' | 'snapkv';
  sinks?: number;
  seed?: number;
  recent?: number;
  window?: number;
  kernel?: number;
  pooling?: 'avg' | 'max';
}

export interface RefInputs {
  k: Tensor<FloatDType>;
  v: Tensor<FloatDType>;
  queries?: Tensor<'f32'>;
  keyMass?: Tensor<'f32'>;
  seed?: number;
}

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
