/** Argument checks shared by every API: one message template (errors.ts). */
import { rangeError, typeError } from './errors.js';
import { contiguousStrides, type DType, type Tensor } from './tensor.js';

const ARRAY_NAME: Record<DType, string> = {
  f32: 'Float32Array',
  f16: 'Uint16Array',
  bf16: 'Uint16Array',
  bool: 'Uint8Array',
  i32: 'Int32Array',
};
const ARRAY_CTOR: Record<DType, Function> = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  bool: Uint8Array,
  i32: Int32Array,
};

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** Rejects unknown keys in an options object, suggesting the closest known one. */
export function checkOptions(arg: string, options: unknown, known: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError(arg, 'an options object', options);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const best = closestName(key, known);
    const hint = best !== undefined ? ` (did you mean "${best}"?)` : '';
    throw new TypeError(`${arg}: unknown option "${key}"${hint}; known options: ${known.join(', ')}`);
  }
  return options as Record<string, unknown>;
}

/** The closest of `known` to `key` when it is a plausible misspelling, else undefined. */
export function closestName(key: string, known: readonly string[]): string | undefined {
  let best = '';
  let bestDist = Infinity;
  for (const k of known) {
    const d = levenshtein(key.toLowerCase(), k.toLowerCase());
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  return bestDist <= Math.max(2, key.length / 3) ? best : undefined;
}

export function checkBoolean(arg: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw typeError(arg, 'a boolean', value);
  return value;
}

/** A finite number; `positive` also excludes 0 and negatives. */
export function checkNumber(arg: string, value: unknown, opts: { positive?: boolean } = {}): number {
  if (typeof value !== 'number') throw typeError(arg, 'a number', value);
  if (!Number.isFinite(value)) throw rangeError(arg, 'a finite number', value);
  if (opts.positive && !(value > 0)) throw rangeError(arg, 'a positive number', value);
  return value;
}

export function checkInteger(arg: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number') throw typeError(arg, 'an integer', value);
  if (!Number.isInteger(value)) throw rangeError(arg, 'an integer', value);
  if (value < min || value > max) {
    throw rangeError(arg, max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

export interface CheckedTensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  strides: number[];
  data: Tensor<D>['data'];
}

function isDetached(view: ArrayBufferView): boolean {
  const buffer = view.buffer as ArrayBuffer & { detached?: boolean };
  if (buffer.detached === true) return true;
  // Node 20 lacks ArrayBuffer.prototype.detached: a detached buffer has byteLength 0.
  return buffer.byteLength === 0 && view.byteOffset === 0 && view.byteLength === 0;
}

/**
 * Validates a tensor argument: dtype among `dtypes`, rank, data type and
 * length, strides (innermost must be 1; every element must lie inside data).
 * `dims` names the dimensions for messages, e.g. ['nHeads', 'nQ', 'headDim'].
 */
export function checkTensor<D extends DType>(
  arg: string,
  value: unknown,
  dtypes: readonly D[],
  dims: readonly string[],
): CheckedTensor<D> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError(arg, `a tensor { dtype, shape, data } with dtype ${dtypes.map((d) => `'${d}'`).join(' | ')}`, value);
  }
  const t = value as Partial<Tensor>;
  checkOptions(arg, t, ['dtype', 'shape', 'data', 'strides']);
  if (!dtypes.includes(t.dtype as D)) {
    throw typeError(`${arg}.dtype`, dtypes.map((d) => `'${d}'`).join(' | '), t.dtype);
  }
  const dtype = t.dtype as D;
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length !== dims.length) {
    throw typeError(`${arg}.shape`, `[${dims.join(', ')}] (${dims.length} dimensions)`, shape);
  }
  shape.forEach((d, i) => checkInteger(`${arg}.shape[${i}] (${dims[i]})`, d, 0));
  const data = t.data;
  if (!(data instanceof (ARRAY_CTOR[dtype] as never))) {
    throw typeError(`${arg}.data`, `a ${ARRAY_NAME[dtype]} for dtype '${dtype}'`, data);
  }
  const view = data as unknown as ArrayBufferView & { length: number };
  if (isDetached(view) && shape.every((d) => d > 0)) {
    throw new TypeError(`${arg}.data: expected a live ${ARRAY_NAME[dtype]}, received a detached buffer`);
  }
  let strides: number[];
  if (t.strides === undefined) {
    strides = contiguousStrides(shape);
  } else {
    if (!Array.isArray(t.strides) || t.strides.length !== dims.length) {
      throw typeError(`${arg}.strides`, `${dims.length} element strides`, t.strides);
    }
    strides = t.strides.map((s, i) => checkInteger(`${arg}.strides[${i}]`, s, 0));
    if (strides[dims.length - 1] !== 1 && shape[dims.length - 1]! > 1) {
      throw rangeError(`${arg}.strides[${dims.length - 1}]`, '1 (rows must be contiguous)', strides[dims.length - 1]);
    }
  }
  let span = 1;
  let empty = false;
  for (let i = 0; i < dims.length; i++) {
    if (shape[i] === 0) empty = true;
    span += (shape[i]! - 1) * strides[i]!;
  }
  if (!empty && span > view.length) {
    const need = t.strides === undefined ? `${span} elements (${shape.join(' x ')})` : `at least ${span} elements for shape [${shape.join(', ')}] with strides [${strides.join(', ')}]`;
    throw rangeError(`${arg}.data.length`, need, view.length);
  }
  if (t.strides === undefined && view.length !== span && !empty) {
    throw rangeError(`${arg}.data.length`, `${span} elements (${shape.join(' x ')})`, view.length);
  }
  return { dtype, shape: [...shape], strides, data: data as Tensor<D>['data'] };
}
