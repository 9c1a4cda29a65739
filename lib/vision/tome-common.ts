// Argument checks shared by the ToMe-group operators (tome.ts, pool.ts,
// transform.ts): visual tokens f32 [n, dim] or [t, n, dim], row-major.
import { rangeError } from '../errors.js';
import type { Tensor, TensorLike } from '../tensor.js';
import { checkTensor } from '../validate.js';

/** Visual tokens read in place: t frames of n rows of dim floats (t = 1 for a 2-D input). */
export interface TokenBlock {
  data: Float32Array;
  t: number;
  n: number;
  dim: number;
  /** Whether the input had a leading frame axis (then every output keeps one). */
  framed: boolean;
}

/** Checks tokens f32 [n, dim] or [t, n, dim], contiguous. */
export function checkTokens(arg: string, value: unknown): TokenBlock {
  const c = checkTensor(arg, value, ['f32'] as const, 'any');
  const s = c.shape;
  if (s.length !== 2 && s.length !== 3) throw rangeError(`${arg}.shape`, '[n, dim] or [t, n, dim]', `[${s.join(', ')}]`);
  let expect = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    if (s[i]! > 1 && c.strides[i] !== expect) throw rangeError(`${arg}.strides`, 'a contiguous row-major tensor', `[${c.strides.join(', ')}]`);
    expect *= s[i]!;
  }
  const framed = s.length === 3;
  const t = framed ? s[0]! : 1;
  const n = s[s.length - 2]!;
  const dim = s[s.length - 1]!;
  if (n > 0x7fffffff) throw rangeError(`${arg}.shape`, 'fewer than 2^31 tokens per frame', n);
  if (dim > 1 << 24) throw rangeError(`${arg}.shape`, `dim <= ${1 << 24}`, dim);
  const data = (c.data as Float32Array).subarray(0, t * n * dim);
  return { data, t, n, dim, framed };
}

/** Checks optional per-token sizes f32 [n] or [t, n] (a Float32Array or a tensor), each finite and > 0. */
export function checkSizes(arg: string, value: unknown, block: TokenBlock): Float32Array | undefined {
  if (value === undefined) return undefined;
  const data = value instanceof Float32Array ? value : (checkTensor(arg, value, ['f32'] as const, 'any').data as Float32Array);
  if (data.length !== block.t * block.n) throw rangeError(`${arg}.length`, `t * n = ${block.t * block.n}`, data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v > 0 && v < Infinity)) throw rangeError(`${arg}[${i}]`, 'a finite size > 0', v);
  }
  return data;
}

/** Shape of a per-frame output: [...rows] or [t, ...rows]. */
export function frameShape(block: TokenBlock, rows: number[]): number[] {
  return block.framed ? [block.t, ...rows] : rows;
}

export function f32(block: TokenBlock, data: Float32Array, rows: number[]): Tensor<'f32'> {
  return { dtype: 'f32', shape: frameShape(block, rows), data };
}

export function i32(block: TokenBlock, data: Int32Array, rows: number[]): Tensor<'i32'> {
  return { dtype: 'i32', shape: frameShape(block, rows), data };
}

/** Input tensors of every operator in this group. */
export type Tokens = TensorLike<'f32'>;

