// Straightforward reference of Recoverable Compression (../recoverable.ts,
// native/reduce/recoverable.h) for one frame: the test reference and the
// benchmark baseline. Official: banjiuyufen/Recoverable-Compression,
// llava/model/multimodal_encoder/clip_encoder.py.
import { lofReference } from './lof.js';

export interface RecoverableReference {
  tokens: Float64Array; // [m, d]
  sizes: Float64Array;
  assignment: Int32Array;
  kept: number[];
  centres: number[];
  textScores: Float64Array;
}

/** Top m positions by (score desc, position asc). */
function top(score: ArrayLike<number>, m: number): number[] {
  const idx = Array.from({ length: score.length }, (_, i) => i);
  idx.sort((a, b) => (score[b]! - score[a]!) || a - b);
  return idx.slice(0, Math.min(m, score.length));
}

function count(v: ArrayLike<number>, scale: number, k: number, thr: number): number {
  if (v.length === 0) return 0;
  return Math.floor(scale * (lofReference(v, k, thr).outliers / v.length));
}

/** text scores = cos(text, x_i) / sqrt(d) in float64. */
export function textScoresReference(x: Float32Array, n: number, d: number, text: Float32Array): Float64Array {
  let tn = 0;
  for (let j = 0; j < d; j++) tn += text[j]! * text[j]!;
  tn = Math.sqrt(tn);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    let xn = 0;
    for (let j = 0; j < d; j++) {
      s += x[i * d + j]! * text[j]!;
      xn += x[i * d + j]! ** 2;
    }
    out[i] = xn > 0 && tn > 0 ? s / Math.sqrt(xn) / tn / Math.sqrt(d) : 0;
  }
  return out;
}

export function recoverableReference(
  x: Float32Array, n: number, d: number, cls: ArrayLike<number>, textScores: ArrayLike<number>,
  opt: { keys?: Float32Array; keyDim?: number; lofNeighbors?: number; lofThreshold?: number; clusterSize?: number; textWeight?: number } = {},
): RecoverableReference {
  const K = opt.lofNeighbors ?? 10;
  const thr = opt.lofThreshold ?? 1.5;
  const cs = opt.clusterSize ?? 32;
  const tw = opt.textWeight ?? 50;
  const keys = opt.keys ?? x;
  const dk = opt.keys ? opt.keyDim! : d;
  const main = new Set([...top(cls, count(cls, n, K, thr)), ...top(textScores, count(textScores, n, K, thr))]);
  const kept = [...main].sort((a, b) => a - b);
  const rows: Float64Array[] = kept.map((i) => Float64Array.from(x.subarray(i * d, (i + 1) * d)));
  const sizes: number[] = kept.map(() => 1);
  const assignment = new Int32Array(n);
  kept.forEach((i, r) => { assignment[i] = r; });
  const rest = Array.from({ length: n }, (_, i) => i).filter((i) => !main.has(i));
  const ts = Float64Array.from(textScores as ArrayLike<number>);
  if (rest.length === 0) return { tokens: concat(rows, d), sizes: Float64Array.from(sizes), assignment, kept, centres: [], textScores: ts };
  const ra = rest.map((i) => cls[i]!);
  const rs = rest.map((i) => Math.fround(tw * Math.fround(textScores[i]!)));
  const left = Math.min(count(Float32Array.from(ra), n, K, thr), rest.length);
  const cpos = top(Float32Array.from(ra), left);
  const isC = new Set(cpos);
  const others = rest.map((_, j) => j).filter((j) => !isC.has(j));
  const unit = (j: number): Float64Array => {
    const v = Float64Array.from(keys.subarray(rest[j]! * dk, (rest[j]! + 1) * dk));
    let s = 0;
    for (const e of v) s += e * e;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    return v.map((e) => e * inv);
  };
  const best = new Float64Array(rest.length).fill(-Infinity);
  const owner = new Int32Array(rest.length).fill(-1);
  const nMain = kept.length;
  cpos.forEach((c, ci) => {
    const cand = [...cpos.filter((_, e) => e !== ci), ...others];
    const kc = unit(c);
    const score = cand.map((j) => {
      const kj = unit(j);
      let s = 0;
      for (let q = 0; q < dk; q++) s += kc[q]! * kj[q]!;
      return s + rs[j]!;
    });
    const acc = Float64Array.from(x.subarray(rest[c]! * d, (rest[c]! + 1) * d));
    for (const p of top(score, cs)) {
      const j = cand[p]!;
      for (let q = 0; q < d; q++) acc[q] = acc[q]! + ra[j]! * x[rest[j]! * d + q]!;
      if (!isC.has(j) && score[p]! > best[j]!) { best[j] = score[p]!; owner[j] = ci; }
    }
    rows.push(acc);
    sizes.push(1);
    assignment[rest[c]!] = nMain + ci;
  });
  const extra = new Float64Array(d);
  const extraRow = nMain + cpos.length;
  sizes.push(0);
  for (const j of others) {
    for (let q = 0; q < d; q++) extra[q] = extra[q]! + ra[j]! * x[rest[j]! * d + q]!;
    const row = owner[j]! >= 0 ? nMain + owner[j]! : extraRow;
    assignment[rest[j]!] = row;
    sizes[row]!++;
  }
  rows.push(extra);
  return { tokens: concat(rows, d), sizes: Float64Array.from(sizes), assignment, kept, centres: cpos.map((c) => rest[c]!), textScores: ts };
}

function concat(rows: Float64Array[], d: number): Float64Array {
  const out = new Float64Array(rows.length * d);
  rows.forEach((r, i) => out.set(r, i * d));
  return out;
}
