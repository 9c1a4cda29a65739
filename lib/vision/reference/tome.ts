// Straightforward float64 JS ToMe step (one frame), the test reference and
// the speed baseline of lib/vision/tome.ts. Same rule as
// facebookresearch/ToMe tome/merge.py bipartite_soft_matching + merge_wavg
// (zero metric rows have cosine 0; ties: lowest b partner, stable rank).
export interface RefMerge {
  tokens: Float64Array; // [m, d]
  sizes: Float64Array; // [m]
  assignment: Int32Array; // [n]
  m: number;
}

export function refTomeFrame(x: ArrayLike<number>, n: number, d: number, r: number, classToken = false,
  metric?: ArrayLike<number>, dm = d, sizes?: ArrayLike<number>): RefMerge {
  const met = metric ?? x;
  const cap = Math.max(0, Math.floor((n - (classToken ? 1 : 0)) / 2));
  r = Math.max(0, Math.min(r, cap));
  const na = Math.ceil(n / 2), nb = Math.floor(n / 2);
  const s = (i: number): number => (sizes ? sizes[i]! : 1);
  const norm = (i: number): number => {
    let q = 0;
    for (let k = 0; k < dm; k++) q += met[i * dm + k]! * met[i * dm + k]!;
    return Math.sqrt(q);
  };
  const m = n - r;
  const tokens = new Float64Array(m * d), outSizes = new Float64Array(m), assignment = new Int32Array(n);
  if (r === 0) {
    for (let i = 0; i < n * d; i++) tokens[i] = x[i]!;
    for (let i = 0; i < n; i++) { outSizes[i] = s(i); assignment[i] = i; }
    return { tokens, sizes: outSizes, assignment, m };
  }
  const best = new Float64Array(na), partner = new Int32Array(na);
  const norms = Float64Array.from({ length: n }, (_, i) => norm(i));
  for (let a = 0; a < na; a++) {
    const ia = 2 * a, naNorm = norms[ia]!;
    best[a] = -Infinity;
    for (let b = 0; b < nb; b++) {
      const ib = 2 * b + 1, nbNorm = norms[ib]!;
      let dot = 0;
      for (let k = 0; k < dm; k++) dot += met[ia * dm + k]! * met[ib * dm + k]!;
      const c = naNorm > 0 && nbNorm > 0 ? dot / (naNorm * nbNorm) : 0;
      if (c > best[a]!) { best[a] = c; partner[a] = b; }
    }
  }
  if (classToken) { best[0] = -Infinity; partner[0] = 0; }
  // Descending by best score, lower index first on ties (-Infinity included).
  const order = Array.from({ length: na }, (_, a) => a);
  order.sort((p, q) => {
    const bp = best[p]!, bq = best[q]!;
    if (bp === bq) return p - q;
    return bq > bp ? 1 : -1;
  });
  const unm = order.slice(r);
  if (classToken) unm.sort((p, q) => p - q);
  const nu = na - r;
  unm.forEach((a, u) => {
    for (let k = 0; k < d; k++) tokens[u * d + k] = x[2 * a * d + k]!;
    outSizes[u] = s(2 * a);
    assignment[2 * a] = u;
  });
  for (let b = 0; b < nb; b++) {
    const i = 2 * b + 1;
    for (let k = 0; k < d; k++) tokens[(nu + b) * d + k] = s(i) * x[i * d + k]!;
    outSizes[nu + b] = s(i);
    assignment[i] = nu + b;
  }
  for (let e = 0; e < r; e++) {
    const a = order[e]!, i = 2 * a, row = nu + partner[a]!;
    for (let k = 0; k < d; k++) tokens[row * d + k]! += s(i) * x[i * d + k]!;
    outSizes[row]! += s(i);
    assignment[i] = row;
  }
  for (let b = 0; b < nb; b++) for (let k = 0; k < d; k++) tokens[(nu + b) * d + k]! /= outSizes[nu + b]!;
  return { tokens, sizes: outSizes, assignment, m };
}

/** Every frame of x [t, n, d]; outputs concatenated per frame. */
export function refTome(x: ArrayLike<number>, t: number, n: number, d: number, r: number, classToken = false): RefMerge[] {
  const out: RefMerge[] = [];
  for (let f = 0; f < t; f++) out.push(refTomeFrame(Array.prototype.slice.call(x, f * n * d, (f + 1) * n * d) as number[], n, d, r, classToken));
  return out;
}

/** CountSketch of rows [n, dm] to [n, s], float64 (the slot mix of native/reduce/tome.h tome_sketch_slot). */
export function refSketch(metric: ArrayLike<number>, n: number, dm: number, s: number): Float64Array {
  const bucket = new Int32Array(dm), sign = new Float64Array(dm);
  for (let k = 0; k < dm; k++) {
    let h = Math.imul(k, 0x9e3779b1) >>> 0;
    h = (h ^ (h >>> 15)) >>> 0;
    h = Math.imul(h, 0x85ebca77) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
    h = Math.imul(h, 0xc2b2ae3d) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    bucket[k] = (h & 0x7fffffff) % s;
    sign[k] = h >>> 31 ? -1 : 1;
  }
  const out = new Float64Array(n * s);
  for (let i = 0; i < n; i++) for (let k = 0; k < dm; k++) out[i * s + bucket[k]!]! += sign[k]! * metric[i * dm + k]!;
  return out;
}
