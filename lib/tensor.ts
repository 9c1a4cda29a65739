/**
 * Tensors as plain objects: `{ dtype, shape, data, strides? }`.
 * f32 data is a Float32Array; f16 and bf16 data are Uint16Array bit patterns;
 * bool is a Uint8Array (0 / 1); i32 is an Int32Array. Row-major; `strides`
 * (in elements) describe non-contiguous views. Native code reads the memory
 * in place.
 */

export type FloatDType = 'f32' | 'f16' | 'bf16';
export type DType = FloatDType | 'bool' | 'i32';

export interface DataFor {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  bool: Uint8Array;
  i32: Int32Array;
}

export interface Tensor<D extends DType = DType> {
  dtype: D;
  shape: readonly number[];
  data: DataFor[D];
  /** Element strides, one per dimension; row-major contiguous when absent. */
  strides?: readonly number[];
}

/**
 * An onnxruntime-common or transformers.js tensor, recognised by its shape
 * (`type`, `dims`, `data`), never by `instanceof`: several copies of
 * onnxruntime-common coexist in one process. Accepted wherever a Tensor is:
 * type 'float32' -> f32, 'float16' -> f16 (Uint16Array bits, or
 * Float16Array), 'int32' -> i32, 'bool' -> bool. `location` must be 'cpu'
 * (or 'cpu-pinned'). The data is read in place.
 */
export interface EcosystemTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  readonly location?: string;
}

/**
 * What tensor arguments accept: our `{ dtype, shape, data, strides? }` or an
 * EcosystemTensor. Either may carry a leading batch dimension of exactly 1
 * where the first dimension is a head count (q, k, v, queries, key mass,
 * scores: [1, nKvHeads, n, headDim] reads as [nKvHeads, n, headDim]); masks
 * [nQ, nKv] take none.
 */
export type TensorLike<D extends DType = DType> = Tensor<D> | EcosystemTensor;

/** onnxruntime / transformers.js element type of each dtype (bf16 has none in JS). */
export const ORT_TYPE: Readonly<Record<DType, string | undefined>> = {
  f32: 'float32',
  f16: 'float16',
  bf16: undefined,
  bool: 'bool',
  i32: 'int32',
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

const ARRAY_FOR: { [D in DType]: new (n: number) => DataFor[D] } = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  bool: Uint8Array,
  i32: Int32Array,
};

/** A zero-filled contiguous tensor. */
export function zeros<D extends DType>(dtype: D, shape: readonly number[]): Tensor<D> {
  return { dtype, shape: [...shape], data: new ARRAY_FOR[dtype](numel(shape)) };
}

/** Wraps existing data as a contiguous tensor (no copy). */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data: DataFor[D]): Tensor<D> {
  return { dtype, shape: [...shape], data };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 -> f16 bits, round to nearest even. */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) {
    f32[0] = Math.abs(value) * 16777216; // exact
    const scaled = f32[0]!;
    let m = Math.round(scaled);
    if (Math.abs(scaled - Math.trunc(scaled)) === 0.5 && m % 2 === 1) m -= 1; // ties to even
    return sign | m;
  }
  const rounded = (abs + 0xfff + ((abs >>> 13) & 1)) >>> 0;
  return sign | ((rounded - 0x38000000) >>> 13);
}

/** f16 bits -> number. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f32 -> bf16 bits, round to nearest even. */
export function f32ToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** bf16 bits -> number. */
export function bf16BitsToF32(b: number): number {
  u32[0] = (b << 16) >>> 0;
  return f32[0]!;
}

/** Converts an f32 tensor (any strides) to a contiguous f16 / bf16 / f32 copy. */
export function castTo<D extends FloatDType>(src: Tensor<'f32'>, dtype: D): Tensor<D> {
  const dense = toF32(src); // contiguous copy, strides applied
  if (dtype === 'f32') return dense as Tensor<D>;
  const n = dense.data.length;
  const out = new Uint16Array(n);
  const conv = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < n; i++) out[i] = conv(dense.data[i]!);
  return { dtype, shape: [...src.shape], data: out as DataFor[D] };
}

/** Converts any float tensor to a contiguous f32 copy. */
export function toF32(src: Tensor<FloatDType>): Tensor<'f32'> {
  if (src.dtype === 'f32' && !src.strides) return { dtype: 'f32', shape: [...src.shape], data: new Float32Array(src.data as Float32Array) };
  const shape = src.shape;
  const strides = src.strides ?? contiguousStrides(shape);
  const out = new Float32Array(numel(shape));
  const conv = src.dtype === 'f32' ? (x: number) => x : src.dtype === 'f16' ? f16BitsToF32 : bf16BitsToF32;
  const idx = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let off = 0;
    for (let d = 0; d < shape.length; d++) off += idx[d]! * strides[d]!;
    out[o] = conv(src.data[off]!);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return { dtype: 'f32', shape: [...shape], data: out };
}
