/**
 * Token embeddings learned from co-occurrence, for the transplantation eval
 * (bench/transplant.ts): counts in a symmetric window over a token stream ->
 * PPMI (context counts smoothed ^0.75, Levy, Goldberg and Dagan 2015) ->
 * randomized truncated SVD (Halko, Martinsson and Tropp 2011: one power
 * iteration, 16 extra columns) -> rows U * sqrt(S). Dense, in JS: rows are
 * the tokens seen >= minCount times, columns the `contexts` most frequent.
 */
import { mulberry32 } from '../test/reference/random.js';

export interface CoocOptions {
  window: number;
  minCount: number;
  contexts: number;
  dim: number;
  seed: number;
}

/** f32 [vocabSize, dim] (zero rows for tokens seen < minCount times) and the embedded ids. */
export interface TokenEmbeddings {
  matrix: Float32Array;
  dim: number;
  embedded: Int32Array;
}

/** C = A B with A [n, m], B [m, p], row-major f64 (ikj loop order). */
function matmul(a: Float64Array, b: Float64Array, n: number, m: number, p: number): Float64Array {
  const c = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < m; k++) {
      const v = a[i * m + k]!;
      if (v === 0) continue;
      const bo = k * p, co = i * p;
      for (let j = 0; j < p; j++) c[co + j] = c[co + j]! + v * b[bo + j]!;
    }
  }
  return c;
}

/** C = A^T B with A [n, m], B [n, p] -> [m, p]. */
function matmulT(a: Float64Array, b: Float64Array, n: number, m: number, p: number): Float64Array {
  const c = new Float64Array(m * p);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < m; k++) {
      const v = a[i * m + k]!;
      if (v === 0) continue;
      const bo = i * p, co = k * p;
      for (let j = 0; j < p; j++) c[co + j] = c[co + j]! + v * b[bo + j]!;
    }
  }
  return c;
}

/** Orthonormalises the columns of y [n, p] in place (modified Gram-Schmidt, twice). */
function orthonormalize(y: Float64Array, n: number, p: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < p; j++) {
      for (let i = 0; i < j; i++) {
        let d = 0;
        for (let r = 0; r < n; r++) d += y[r * p + i]! * y[r * p + j]!;
        for (let r = 0; r < n; r++) y[r * p + j] = y[r * p + j]! - d * y[r * p + i]!;
      }
      let nn = 0;
      for (let r = 0; r < n; r++) nn += y[r * p + j]! ** 2;
      const s = nn > 0 ? 1 / Math.sqrt(nn) : 0;
      for (let r = 0; r < n; r++) y[r * p + j] = y[r * p + j]! * s;
    }
  }
}

/** Eigen-decomposition of a symmetric [p, p] matrix by cyclic Jacobi: values (descending) and vectors (columns). */
function symEig(a: Float64Array, p: number): { values: Float64Array; vectors: Float64Array } {
  const m = a.slice();
  const v = new Float64Array(p * p);
  for (let i = 0; i < p; i++) v[i * p + i] = 1;
  for (let sweep = 0; sweep < 30; sweep++) {
    let off = 0;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) off += m[i * p + j]! ** 2;
    if (off < 1e-22) break;
    for (let i = 0; i < p; i++) {
      for (let j = i + 1; j < p; j++) {
        const aij = m[i * p + j]!;
        if (Math.abs(aij) < 1e-300) continue;
        const theta = (m[j * p + j]! - m[i * p + i]!) / (2 * aij);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < p; k++) { // rows i, j
          const mik = m[i * p + k]!, mjk = m[j * p + k]!;
          m[i * p + k] = c * mik - s * mjk;
          m[j * p + k] = s * mik + c * mjk;
        }
        for (let k = 0; k < p; k++) { // columns i, j
          const mki = m[k * p + i]!, mkj = m[k * p + j]!;
          m[k * p + i] = c * mki - s * mkj;
          m[k * p + j] = s * mki + c * mkj;
          const vki = v[k * p + i]!, vkj = v[k * p + j]!;
          v[k * p + i] = c * vki - s * vkj;
          v[k * p + j] = s * vki + c * vkj;
        }
      }
    }
  }
  const order = Array.from({ length: p }, (_, i) => i).sort((x, y) => m[y * p + y]! - m[x * p + x]!);
  const values = Float64Array.from(order, (i) => m[i * p + i]!);
  const vectors = new Float64Array(p * p);
  order.forEach((src, dst) => { for (let k = 0; k < p; k++) vectors[k * p + dst] = v[k * p + src]!; });
  return { values, vectors };
}

/** Co-occurrence -> PPMI -> truncated SVD embeddings of the tokens in `stream`. */
export function cooccurrenceEmbeddings(stream: ArrayLike<number>, vocabSize: number, o: CoocOptions): TokenEmbeddings {
  const freq = new Float64Array(vocabSize);
  for (let i = 0; i < stream.length; i++) freq[stream[i]!] = freq[stream[i]!]! + 1;
  const rowsIds: number[] = [];
  for (let id = 0; id < vocabSize; id++) if (freq[id]! >= o.minCount) rowsIds.push(id);
  const ctxIds = Array.from({ length: vocabSize }, (_, i) => i).sort((a, b) => freq[b]! - freq[a]!).slice(0, o.contexts);
  const rowOf = new Int32Array(vocabSize).fill(-1);
  rowsIds.forEach((id, r) => { rowOf[id] = r; });
  const colOf = new Int32Array(vocabSize).fill(-1);
  ctxIds.forEach((id, c) => { colOf[id] = c; });
  const n = rowsIds.length, m = ctxIds.length;
  const counts = new Float64Array(n * m);
  for (let i = 0; i < stream.length; i++) {
    const r = rowOf[stream[i]!]!;
    if (r < 0) continue;
    for (let j = Math.max(0, i - o.window); j <= Math.min(stream.length - 1, i + o.window); j++) {
      if (j === i) continue;
      const c = colOf[stream[j]!]!;
      if (c >= 0) counts[r * m + c] = counts[r * m + c]! + 1;
    }
  }
  // PPMI with context distribution smoothing.
  const rowSum = new Float64Array(n), colPow = new Float64Array(m);
  let total = 0, colTotal = 0;
  for (let r = 0; r < n; r++) for (let c = 0; c < m; c++) { const v = counts[r * m + c]!; rowSum[r] = rowSum[r]! + v; total += v; }
  for (let c = 0; c < m; c++) {
    let s = 0;
    for (let r = 0; r < n; r++) s += counts[r * m + c]!;
    colPow[c] = s ** 0.75;
    colTotal += colPow[c]!;
  }
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < m; c++) {
      const v = counts[r * m + c]!;
      const pmi = v > 0 ? Math.log((v / total) / ((rowSum[r]! / total) * (colPow[c]! / colTotal))) : 0;
      counts[r * m + c] = pmi > 0 ? pmi : 0;
    }
  }
  // Randomized SVD of X = counts [n, m].
  const p = Math.min(o.dim + 16, m, n);
  const rng = mulberry32(o.seed);
  const omega = new Float64Array(m * p);
  for (let i = 0; i < omega.length; i++) omega[i] = rng() + rng() + rng() - 1.5;
  let y = matmul(counts, omega, n, m, p);
  orthonormalize(y, n, p);
  const z = matmulT(counts, y, n, m, p); // [m, p]
  orthonormalize(z, m, p);
  y = matmul(counts, z, n, m, p);
  orthonormalize(y, n, p); // Q [n, p]
  const b = matmulT(y, counts, n, p, m); // Q^T X [p, m]
  const bbt = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let j = i; j < p; j++) {
    let s = 0;
    for (let k = 0; k < m; k++) s += b[i * m + k]! * b[j * m + k]!;
    bbt[i * p + j] = s;
    bbt[j * p + i] = s;
  }
  const { values, vectors } = symEig(bbt, p);
  const dim = Math.min(o.dim, p);
  const u = matmul(y, vectors, n, p, p); // Q W: left singular vectors [n, p]
  const matrix = new Float32Array(vocabSize * dim);
  for (let r = 0; r < n; r++) {
    for (let d = 0; d < dim; d++) matrix[rowsIds[r]! * dim + d] = u[r * p + d]! * Math.sqrt(Math.sqrt(Math.max(0, values[d]!)));
  }
  return { matrix, dim, embedded: Int32Array.from(rowsIds) };
}
