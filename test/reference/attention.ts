/**
 * Slow, obviously-correct float64 reference for lib/attention.ts.
 *
 *   q    f32           [nHeads,   nQ,  headDim]   (strides allowed)
 *   k, v f32|f16|bf16  [nKvHeads, nKv, headDim]   (strides allowed)
 *   output             [nHeads,   nQ,  headDim]   float64
 *   lse                [nHeads,   nQ]             natural log; -Infinity for a
 *                                                 query that sees no key
 *   keyMass            [nKvHeads, nKv]
 *
 * Semantics (lib/attention.ts, native/attention/attention.h):
 *  - query head h reads KV head floor(h / (nHeads / nKvHeads)) (GQA / MQA);
 *  - key position p is visible to query i when every given rule holds:
 *      causal:  p <= nKv - nQ + i
 *      mask:    bool mask[i][p] != 0, or additive mask[i][p] > -Infinity
 *      tree:    p < nKv - nQ, or p - (nKv - nQ) is i or an ancestor of i
 *      indices: only the positions listed in indices[kvHead] take part; each
 *               listed entry is its own softmax term (a repeated index counts
 *               twice, and its mass is summed at that position);
 *  - logit s = (q . k) * scale; s = softcap * tanh(s / softcap) if softcap;
 *    then s += additive mask[i][p];
 *  - output row = sum_j softmax(s)_j v_j; a query that sees no key gets a zero
 *    row and lse = -Infinity, and adds no key mass;
 *  - keyMass[kvHead][p] = sum over queries and the group's query heads of the
 *    softmax probability of p.
 *
 * Inputs are decoded exactly to float64 (f16 / bf16 by decoders written here,
 * independent of lib/tensor.ts), so the reference sees the same values as the
 * kernel and differs from it only by the kernel's f32 rounding.
 */
import type { AttentionOptions, DType, FloatDType, Tensor, TensorLike } from '../../lib/index.js';

export { mulberry32, randomF32, randomInt, randomU32, type Rng } from './random.js';

export interface ReferenceResult {
  output: Float64Array;
  lse: Float64Array;
  keyMass: Float64Array;
}

/** f16 bits -> exact value (IEEE 754 binary16). */
export function decodeF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * 2 ** -24; // subnormal (and zero)
  return sign * (1024 + m) * 2 ** (e - 25);
}

const bfView = new DataView(new ArrayBuffer(4));
/** bf16 bits -> exact value: the top 16 bits of an f32. */
export function decodeBf16(b: number): number {
  bfView.setUint32(0, (b & 0xffff) << 16 >>> 0);
  return bfView.getFloat32(0);
}

function decoderFor(dtype: FloatDType): (x: number) => number {
  if (dtype === 'f32') return (x) => x;
  if (dtype === 'f16') return decodeF16;
  return decodeBf16;
}

/** Any rank-3 float tensor (with strides) -> contiguous float64 copy. */
export function decode3(t: Tensor<FloatDType>): Float64Array {
  const [d0, d1, d2] = t.shape as [number, number, number];
  const [s0, s1, s2] = (t.strides ?? [d1 * d2, d2, 1]) as [number, number, number];
  const dec = decoderFor(t.dtype);
  const out = new Float64Array(d0 * d1 * d2);
  let o = 0;
  for (let a = 0; a < d0; a++) {
    for (let b = 0; b < d1; b++) {
      for (let c = 0; c < d2; c++) out[o++] = dec(t.data[a * s0 + b * s1 + c * s2]!);
    }
  }
  return out;
}

/** anc[i]: the set of tree nodes query i may see (itself and its ancestors). */
function treeVisibility(parents: ArrayLike<number>): Set<number>[] {
  const out: Set<number>[] = [];
  for (let i = 0; i < parents.length; i++) {
    const s = new Set<number>();
    for (let j = i; j !== -1; j = parents[j]!) s.add(j);
    out.push(s);
  }
  return out;
}

function dot(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number): number {
  let s = 0;
  for (let d = 0; d < n; d++) s += a[ao + d]! * b[bo + d]!;
  return s;
}

/** The reference reads only this library's own tensor form ({ dtype, shape, data }). */
function ownTensor<D extends DType>(t: TensorLike<D>, name: string): Tensor<D> {
  if (!('dtype' in t)) throw new TypeError(`reference: ${name} must be a { dtype, shape, data } tensor`);
  return t;
}

/** y[yo..yo+n) += alpha * x[xo..xo+n) */
function axpy(alpha: number, x: Float64Array, xo: number, y: Float64Array, yo: number, n: number): void {
  for (let d = 0; d < n; d++) y[yo + d] = y[yo + d]! + alpha * x[xo + d]!;
}

export function referenceAttention(
  q: Tensor<'f32'>,
  k: Tensor<FloatDType>,
  v: Tensor<FloatDType>,
  options: AttentionOptions = {},
): ReferenceResult {
  const [nHeads, nQ, headDim] = q.shape as [number, number, number];
  const [nKvHeads, nKv] = k.shape as [number, number];
  const group = nHeads / nKvHeads;
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const softcap = options.softcap ?? 0;
  const causal = options.causal ?? false;
  const Q = decode3(q);
  const K = decode3(k);
  const V = decode3(v);

  const mask = options.mask === undefined ? undefined : ownTensor<'bool' | 'f32'>(options.mask, 'mask');
  const boolMask = mask?.dtype === 'bool' ? (mask.data as Uint8Array) : undefined;
  const addMask = mask?.dtype === 'f32' ? (mask.data as Float32Array) : undefined;
  const tree = options.treeMask ? treeVisibility(options.treeMask) : undefined;
  const past = nKv - nQ; // position of query 0 (queries are the last nQ positions)

  // Selected positions per KV head (a list; repeats allowed).
  const selected: number[][] = [];
  for (let kh = 0; kh < nKvHeads; kh++) {
    const row: number[] = [];
    if (options.indices) {
      const t = ownTensor(options.indices, 'indices');
      const nSel = t.shape[1]!;
      const [s0, s1] = (t.strides ?? [nSel, 1]) as [number, number];
      for (let s = 0; s < nSel; s++) row.push(t.data[kh * s0 + s * s1]!);
    } else {
      for (let p = 0; p < nKv; p++) row.push(p);
    }
    selected.push(row);
  }

  const visible = (i: number, p: number): boolean => {
    if (causal && p > past + i) return false;
    if (boolMask && boolMask[i * nKv + p] === 0) return false;
    if (addMask && !(addMask[i * nKv + p]! > -Infinity)) return false;
    if (tree && p >= past && !tree[i]!.has(p - past)) return false;
    return true;
  };

  const output = new Float64Array(nHeads * nQ * headDim);
  const lse = new Float64Array(nHeads * nQ);
  const keyMass = new Float64Array(nKvHeads * nKv);
  for (let h = 0; h < nHeads; h++) {
    const kh = Math.floor(h / group);
    const kBase = kh * nKv * headDim;
    for (let i = 0; i < nQ; i++) {
      const qBase = (h * nQ + i) * headDim;
      const pos: number[] = [];
      const logit: number[] = [];
      for (const p of selected[kh]!) {
        if (!visible(i, p)) continue;
        let s = dot(Q, qBase, K, kBase + p * headDim, headDim) * scale;
        if (softcap > 0) s = softcap * Math.tanh(s / softcap);
        if (addMask) s += addMask[i * nKv + p]!;
        pos.push(p);
        logit.push(s);
      }
      const outBase = (h * nQ + i) * headDim;
      if (pos.length === 0) {
        lse[h * nQ + i] = -Infinity; // output row stays zero
        continue;
      }
      let m = -Infinity;
      for (const s of logit) if (s > m) m = s;
      let sum = 0;
      for (const s of logit) sum += Math.exp(s - m);
      lse[h * nQ + i] = m + Math.log(sum);
      for (let j = 0; j < pos.length; j++) {
        const prob = Math.exp(logit[j]! - m) / sum;
        axpy(prob, V, kBase + pos[j]! * headDim, output, outBase, headDim); // v has k's shape
        keyMass[kh * nKv + pos[j]!]! += prob;
      }
    }
  }
  return { output, lse, keyMass };
}
