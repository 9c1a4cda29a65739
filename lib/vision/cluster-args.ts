// Argument helpers shared by the clustering group (vqtoken.ts,
// recoverable.ts, corematching.ts): tokens as a Tensor / TensorLike f32
// [n, dim] or [t, n, dim], contiguous, every value finite.
import { rangeError, typeError } from '../errors.js';
import { checkTensor } from '../validate.js';

export interface TokenBatch {
  data: Float32Array;
  /** Frames (1 for an [n, dim] input). */
  t: number;
  n: number;
  dim: number;
  /** True for a [t, n, dim] input. */
  batched: boolean;
}

/** Validates `value` as f32 [n, dim] or [t, n, dim] (contiguous, finite). */
export function tokenBatch(arg: string, value: unknown, minDim = 1): TokenBatch {
  const c = checkTensor(arg, value, ['f32'], 'any');
  if (c.shape.length !== 2 && c.shape.length !== 3) throw typeError(`${arg}.shape`, '[n, dim] or [t, n, dim]', c.shape);
  const batched = c.shape.length === 3;
  const t = batched ? c.shape[0]! : 1;
  const n = c.shape[batched ? 1 : 0]!;
  const dim = c.shape[batched ? 2 : 1]!;
  if (dim < minDim) throw rangeError(`${arg}.shape[${batched ? 2 : 1}] (dim)`, `an integer >= ${minDim}`, dim);
  let stride = 1;
  for (let i = c.shape.length - 1; i >= 0; i--) {
    if (c.shape[i]! > 1 && c.strides[i] !== stride) throw rangeError(`${arg}.strides`, 'contiguous row-major strides', c.strides);
    stride *= c.shape[i]!;
  }
  const data = c.data as Float32Array;
  checkFinite(arg, data);
  return { data, t, n, dim, batched };
}

/** Throws a RangeError naming the first non-finite element. */
export function checkFinite(arg: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw rangeError(`${arg}[${i}]`, 'a finite number', data[i]);
  }
}

/** A Float32Array of exactly `length` finite values. */
export function f32Exact(arg: string, value: unknown, length: number, what: string): Float32Array {
  if (!(value instanceof Float32Array)) throw typeError(arg, `a Float32Array of ${what} = ${length} values`, value);
  if (value.length !== length) throw rangeError(`${arg}.length`, `${what} = ${length}`, value.length);
  checkFinite(arg, value);
  return value;
}
