// Straightforward float64 reference of VQToken's k-means (../vqtoken.ts,
// native/reduce/kmeans.h): the test reference and the benchmark baseline.
// Same rule and the same mulberry32 stream; independent of the native code.
// Official: Hai-chao-Zhang/VQToken VQToken/cluster.py, VQToken/vq_token.py.

import { mulberry32 } from '../eval/rng.js';

function normalize(x: Float64Array | Float32Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[i * d + j]! * x[i * d + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = x[i * d + j]! * inv;
  }
  return out;
}

/** One k-means run (KMeansTorch.fit); returns the last centroids and labels. */
function kmeans(x: Float64Array, n: number, d: number, kIn: number, maxIter: number, tol: number, rnd: () => number) {
  const k = Math.min(kIn, n);
  const c = new Float64Array(k * d);
  const labels = new Int32Array(n);
  let iterations = 0;
  if (k === 0) return { c, labels, k, iterations };
  const mind = new Float64Array(n).fill(Infinity);
  let pick = Math.min(Math.floor(rnd() * n), n - 1);
  for (let cc = 0; cc < k; cc++) {
    if (cc > 0) {
      let total = 0;
      for (let i = 0; i < n; i++) total += mind[i]! + 1e-6;
      const target = rnd() * total;
      let acc = 0;
      pick = n - 1;
      for (let i = 0; i < n; i++) {
        acc += mind[i]! + 1e-6;
        if (acc > target) { pick = i; break; }
      }
    }
    for (let j = 0; j < d; j++) c[cc * d + j] = x[pick * d + j]!;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[i * d + j]! - x[pick * d + j]!) ** 2;
      if (s < mind[i]!) mind[i] = s;
    }
  }
  for (let it = 0; it < maxIter; it++) {
    iterations = it + 1;
    const cn = normalize(c, k, d);
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bv = -Infinity;
      for (let q = 0; q < k; q++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += x[i * d + j]! * cn[q * d + j]!;
        if (s > bv) { bv = s; best = q; }
      }
      labels[i] = best;
    }
    const sums = new Float64Array(k * d);
    const cnt = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      cnt[labels[i]!]!++;
      for (let j = 0; j < d; j++) sums[labels[i]! * d + j] = sums[labels[i]! * d + j]! + x[i * d + j]!;
    }
    let shift = 0;
    const next = Float64Array.from(c);
    for (let q = 0; q < k; q++) {
      if (cnt[q] === 0) continue;
      for (let j = 0; j < d; j++) {
        next[q * d + j] = sums[q * d + j]! / cnt[q]!;
        shift += (c[q * d + j]! - next[q * d + j]!) ** 2;
      }
    }
    if (Math.sqrt(shift) < tol) break;
    c.set(next);
  }
  return { c, labels, k, iterations };
}

export interface VqTokenReference {
  codebook: Float64Array;
  counts: Float64Array;
  codes: Int32Array;
  k: number;
}

/** tokens [rows, d] (frames flattened) -> codebook [K, d], counts [K], codes [rows]. */
export function vqTokenReference(
  tokens: Float32Array, rows: number, d: number,
  opt: { k?: number; maxIter?: number; tol?: number; seed?: number; adaptive?: boolean; maxK?: number } = {},
): VqTokenReference {
  const x = normalize(tokens, rows, d);
  const rnd = mulberry32(opt.seed ?? 0);
  const tol = opt.tol ?? 1e-4;
  const maxIter = opt.maxIter ?? (opt.adaptive ? 100 : 50);
  let K = opt.k ?? 32;
  if (opt.adaptive && rows > 0) {
    const dist: number[] = [];
    for (let kk = 12; kk <= (opt.maxK ?? 32); kk++) {
      const r = kmeans(x, rows, d, kk, maxIter, tol, rnd);
      let s = 0;
      for (let i = 0; i < rows; i++) for (let j = 0; j < d; j++) s += (x[i * d + j]! - r.c[r.labels[i]! * d + j]!) ** 2;
      dist.push(s);
    }
    let best = 0;
    let bv = -Infinity;
    for (let i = 0; i + 2 < dist.length; i++) {
      const v = dist[i + 2]! - dist[i + 1]! - (dist[i + 1]! - dist[i]!);
      if (v > bv) { bv = v; best = i; }
    }
    K = Math.max(best + 4, 12);
  }
  const r = kmeans(x, rows, d, K, maxIter, tol, rnd);
  const codebook = new Float64Array(r.k * d);
  const counts = new Float64Array(r.k);
  for (let i = 0; i < rows; i++) {
    counts[r.labels[i]!]!++;
    for (let j = 0; j < d; j++) codebook[r.labels[i]! * d + j] = codebook[r.labels[i]! * d + j]! + x[i * d + j]!;
  }
  for (let q = 0; q < r.k; q++) for (let j = 0; j < d; j++) codebook[q * d + j] = counts[q]! > 0 ? codebook[q * d + j]! / counts[q]! : 0;
  return { codebook, counts, codes: r.labels, k: r.k };
}
