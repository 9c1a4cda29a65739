// Straightforward float64 reference of the token-correlation compression
// (../tokencorr.ts, native/reduce/tokencorr.h) for one crop: the test
// reference and the benchmark baseline. Same mulberry32 stream.

import { mulberry32 } from '../eval/rng.js';

/** numpy's linear percentile, q in [0, 1]. */
export function percentileLinear(v: ArrayLike<number>, q: number): number {
  const s = Array.from(v).sort((a, b) => a - b);
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function tokenCorrReference(
  keys: Float32Array, n: number, dk: number, deep: Float32Array, shallow: Float32Array,
  opt: { simThreshold?: number; countLimit?: number; iqrFactor?: number; seed?: number; projectDim?: number } = {},
): { kept: number[]; repetitive: number } {
  if (n === 0) return { kept: [], repetitive: 0 };
  const thr = opt.simThreshold ?? 0.8;
  const limit = opt.countLimit ?? 1;
  const m = opt.projectDim ?? 0;
  if (m > 0 && m < dk) {
    // keys [n, dk] x R^T, R [m, dk] of seeded +-1 signs.
    const pr = mulberry32(((opt.seed ?? 0) ^ 0x9e3779b9) >>> 0);
    const r = Float64Array.from({ length: m * dk }, () => (pr() < 0.5 ? -1 : 1));
    const p = new Float32Array(n * m);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < m; c++) {
        let s = 0;
        for (let q = 0; q < dk; q++) s += keys[i * dk + q]! * r[c * dk + q]!;
        p[i * m + c] = s;
      }
    }
    keys = p;
    dk = m;
  }
  const unit: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const v = Float64Array.from(keys.subarray(i * dk, (i + 1) * dk));
    const s = Math.sqrt(v.reduce((a, e) => a + e * e, 0));
    unit.push(v.map((e) => (s > 0 ? e / s : 0)));
  }
  let rep = 0;
  for (let i = 0; i < n; i++) {
    let c = 0;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let s = 0;
      for (let q = 0; q < dk; q++) s += unit[i]![q]! * unit[j]![q]!;
      if (s > thr) c++;
    }
    if (c >= limit) rep++;
  }
  const budget = Math.max(1, Math.round(n * (1 - rep / n)));
  const q1 = percentileLinear(deep, 0.25);
  const q3 = percentileLinear(deep, 0.75);
  const fence = q3 + (opt.iqrFactor ?? 1.5) * (q3 - q1);
  const keep = new Uint8Array(n);
  const out = Array.from({ length: n }, (_, i) => i).filter((i) => deep[i]! > fence).sort((a, b) => deep[b]! - deep[a]! || a - b);
  let taken = 0;
  for (const i of out) {
    if (taken === budget) break;
    keep[i] = 1;
    taken++;
  }
  const rnd = mulberry32(opt.seed ?? 0);
  const w = Array.from({ length: n }, (_, i) => (keep[i] ? 0 : Math.max(0, shallow[i]!)));
  while (taken < budget) {
    let total = w.reduce((a, e) => a + e, 0);
    const flat = !(total > 0);
    if (flat) total = n - taken;
    const target = rnd() * total;
    let acc = 0;
    let pick = -1;
    for (let i = 0; i < n; i++) {
      if (keep[i]) continue;
      acc += flat ? 1 : w[i]!;
      pick = i;
      if (acc > target) break;
    }
    if (pick < 0) break;
    keep[pick] = 1;
    w[pick] = 0;
    taken++;
  }
  const kept: number[] = [];
  for (let i = 0; i < n; i++) if (keep[i]) kept.push(i);
  return { kept, repetitive: rep };
}
