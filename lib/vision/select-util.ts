// Shared argument handling of the pruning operators of group `select`
// (divprune, vtc-cls, fastv, globalcom2, todre): token tensors [n, dim] or
// [t, n, dim] read as contiguous f32, score tensors, ratios, and the gather
// of kept rows. Kept small and free of rule logic (the rules live in
// native/reduce/ and, for the tests, lib/vision/reference/).
import { rangeError, typeError } from '../errors.js';
import type { Tensor, TensorLike } from '../tensor.js';
import { checkNumber, checkTensor } from '../validate.js';

/** A token (or score) tensor as contiguous f32 with its frame count. */
export interface Frames {
  data: Float32Array;
  /** Frames (1 for a rank-2 input). */
  t: number;
  /** Rows per frame. */
  n: number;
  /** Row width. */
  dim: number;
  /** Whether the input had a leading frame dimension (results keep it). */
  batched: boolean;
}

/** Copies a strided view into contiguous memory (row-major over `shape`). */
function contiguous(data: Float32Array, shape: readonly number[], strides: readonly number[]): Float32Array {
  let dense = true;
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! > 1 && strides[i] !== expect) dense = false;
    expect *= shape[i]!;
  }
  if (dense) return data.length === expect ? data : data.subarray(0, expect);
  const out = new Float32Array(expect);
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < expect; o++) {
    let off = 0;
    for (let i = 0; i < shape.length; i++) off += idx[i]! * strides[i]!;
    out[o] = data[off]!;
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}

/** Reads tokens f32 [n, dim] or [t, n, dim] (ours or an onnxruntime tensor; strided views are copied). */
export function readFrames(arg: string, value: unknown, rowName = 'n', colName = 'dim'): Frames {
  const c = checkTensor(arg, value, ['f32'] as const, 'any');
  if (c.shape.length !== 2 && c.shape.length !== 3) {
    throw rangeError(`${arg}.shape`, `[${rowName}, ${colName}] or [t, ${rowName}, ${colName}]`, c.shape);
  }
  const batched = c.shape.length === 3;
  const data = contiguous(c.data as Float32Array, c.shape, c.strides);
  const [t, n, dim] = batched ? (c.shape as [number, number, number]) : [1, c.shape[0]!, c.shape[1]!];
  return { data, t, n, dim, batched };
}

/** Reads a score vector f32 [n] (Float32Array, or a rank-1 tensor). */
export function readVector(arg: string, value: unknown, n?: number): Float32Array {
  let v: Float32Array;
  if (value instanceof Float32Array) v = value;
  else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    const c = checkTensor(arg, value, ['f32'] as const, 'any');
    if (c.shape.length !== 1) throw rangeError(`${arg}.shape`, '[n] (1 dimension)', c.shape);
    v = contiguous(c.data as Float32Array, c.shape, c.strides);
  } else throw typeError(arg, 'a Float32Array or an f32 tensor [n]', value);
  if (n !== undefined && v.length !== n) throw rangeError(`${arg}.length`, `${n}`, v.length);
  return v;
}

/** A keep ratio in [0, 1]. */
export function checkRatio(arg: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const r = checkNumber(arg, value);
  if (!(r >= 0 && r <= 1)) throw rangeError(arg, 'a number in [0, 1]', value);
  return r;
}

/** Python's round(x) for x >= 0 (half to even): the official scripts size budgets with round(ratio * n). */
export function pythonRound(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** out [t, keep, dim]: rows idx[f * keep + j] of frame f (indices relative to the frame, offset by `base`). */
export function gatherRows(data: Float32Array, t: number, n: number, dim: number, idx: Int32Array, keep: number, base = 0): Float32Array {
  const out = new Float32Array(t * keep * dim);
  for (let f = 0; f < t; f++) {
    for (let j = 0; j < keep; j++) {
      const r = idx[f * keep + j]! - base;
      const src = (f * n + r) * dim;
      out.set(data.subarray(src, src + dim), (f * keep + j) * dim);
    }
  }
  return out;
}

export function f32(shape: number[], data: Float32Array): Tensor<'f32'> {
  return { dtype: 'f32', shape, data };
}

export function i32(shape: number[], data: Int32Array): Tensor<'i32'> {
  return { dtype: 'i32', shape, data };
}

export type TokensLike = TensorLike<'f32'>;
