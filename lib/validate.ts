/** Argument checks shared by every API: one message template (errors.ts). */
import { rangeError, typeError } from './errors.js';
import { contiguousStrides, ORT_TYPE, type DType, type Tensor } from './tensor.js';

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

/** What checkInteger(arg, value, 0) accepts: a safe integer >= 0. */
const isDim = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER;

export interface CheckedTensor<D extends DType = DType> {
  dtype: D;
  shape: number[];
  strides: number[];
  data: Tensor<D>['data'];
}

// The intrinsic %TypedArray% accessors: an own `length` or `buffer` property
// defined on a typed array cannot make them lie, and they throw on anything
// that is not a real typed array (a Proxy, for one).
const TYPED_PROTO = Object.getPrototypeOf(Uint8Array.prototype) as object;
const intrinsic = (name: string) => Object.getOwnPropertyDescriptor(TYPED_PROTO, name)!.get!;
const TA_LENGTH = intrinsic('length');
const TA_BUFFER = intrinsic('buffer');
const TA_OFFSET = intrinsic('byteOffset');

function isDetached(view: ArrayBufferView): boolean {
  const buffer = TA_BUFFER.call(view) as ArrayBuffer & { detached?: boolean };
  if (buffer.detached === true) return true;
  // Node 20 lacks ArrayBuffer.prototype.detached: a detached buffer has byteLength 0.
  return buffer.byteLength === 0 && TA_OFFSET.call(view) === 0 && TA_LENGTH.call(view) === 0;
}

/** Where an ecosystem tensor's data may live: host memory we can read in place. */
const HOST_LOCATIONS: readonly unknown[] = [undefined, 'cpu', 'cpu-pinned'];
const MAX_RANK = 64;
/** Tensors whose first dimension is one of these may carry a leading batch of 1. */
const BATCHED_DIMS: readonly string[] = ['nHeads', 'nKvHeads'];

const TENSOR_KEYS: readonly string[] = ['dtype', 'shape', 'data', 'strides'];

/** One read of a tensor argument's fields, before any validation. */
interface RawTensor {
  /** 'ecosystem': { type, dims, data } (onnxruntime-common, transformers.js). */
  form: 'plain' | 'ecosystem';
  /** `dtype`, or the ecosystem `type`. */
  dtype: unknown;
  shape: unknown;
  strides: unknown;
  data: unknown;
}

const quoted = (xs: readonly string[]) => xs.map((x) => `'${x}'`).join(' | ');
const ortTypes = (dtypes: readonly DType[]) => dtypes.map((d) => ORT_TYPE[d]).filter((t): t is string => t !== undefined);

function tensorExpected(dtypes: readonly DType[]): string {
  const ort = ortTypes(dtypes);
  const eco = ort.length ? ` or an onnxruntime / transformers.js Tensor { type, dims, data } with type ${quoted(ort)}` : '';
  return `a tensor { dtype, shape, data } with dtype ${quoted(dtypes)}${eco}`;
}

/** A copy of a small array (so later reads see what was validated); anything else as is. */
function snapshot(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  const n = value.length;
  if (n > MAX_RANK) return value;
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) out[i] = value[i];
  return out;
}

/**
 * Reads each field of a tensor argument exactly once (getters may change
 * things). An ecosystem tensor not in host memory is refused before its
 * `data` is read: onnxruntime's getter throws for GPU data.
 */
function readTensor(arg: string, value: unknown, dtypes: readonly DType[]): RawTensor {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw typeError(arg, tensorExpected(dtypes), value);
  }
  const o = value as Record<string, unknown>;
  if (!('dtype' in o) && 'type' in o && 'dims' in o) {
    const type = o.type;
    const dims = snapshot(o.dims);
    const location = 'location' in o ? o.location : o.dataLocation;
    if (!HOST_LOCATIONS.includes(location)) {
      const why = location === 'none' ? 'this tensor was disposed' : 'download device data first: await tensor.getData()';
      throw typeError(`${arg}.location`, `'cpu' (data in host memory; ${why})`, location);
    }
    return { form: 'ecosystem', dtype: type, shape: dims, strides: undefined, data: o.data };
  }
  checkOptions(arg, o, TENSOR_KEYS);
  const dtype = o.dtype;
  const shape = snapshot(o.shape);
  const data = o.data;
  const strides = snapshot(o.strides);
  return { form: 'plain', dtype, shape, strides, data };
}

/** The dtype of a raw tensor, mapping an ecosystem type ('float32', ...) to ours. */
function rawDtype<D extends DType>(arg: string, raw: RawTensor, dtypes: readonly D[]): D {
  if (raw.form === 'plain') {
    if (!dtypes.includes(raw.dtype as D)) throw typeError(`${arg}.dtype`, quoted(dtypes), raw.dtype);
    return raw.dtype as D;
  }
  const d = dtypes.find((x) => ORT_TYPE[x] !== undefined && ORT_TYPE[x] === raw.dtype);
  if (d === undefined) {
    const ort = ortTypes(dtypes);
    const what = ort.length ? quoted(ort) : `none (this argument takes dtype ${quoted(dtypes)}, which onnxruntime has no type for)`;
    throw typeError(`${arg}.type`, what, raw.dtype);
  }
  return d;
}

/**
 * The data as the typed array the dtype needs. f16 also takes a Float16Array
 * (where the runtime has it), viewed as a Uint16Array over the same memory.
 */
function rawData(arg: string, data: unknown, dtype: DType): ArrayBufferView & { length: number } {
  const f16Array = (globalThis as { Float16Array?: abstract new (...a: never[]) => object }).Float16Array;
  if (dtype === 'f16' && typeof f16Array === 'function' && data instanceof f16Array && ArrayBuffer.isView(data)) {
    return new Uint16Array(TA_BUFFER.call(data) as ArrayBuffer, TA_OFFSET.call(data) as number, TA_LENGTH.call(data) as number);
  }
  if (!(data instanceof (ARRAY_CTOR[dtype] as never)) || !ArrayBuffer.isView(data)) {
    throw typeError(`${arg}.data`, `a ${ARRAY_NAME[dtype]} for dtype '${dtype}'`, data);
  }
  checkUnshared(`${arg}.data`, data);
  return data as ArrayBufferView & { length: number };
}

const SAB = (globalThis as { SharedArrayBuffer?: Function }).SharedArrayBuffer;

/** What plainRows found (reused: the hot path allocates nothing). */
export interface PlainRows { dtype: 'f32' | 'f16' | 'bf16'; n: number; data: Float32Array | Uint16Array }
const PLAIN_ROWS: PlainRows = { dtype: 'f32', n: 0, data: new Float32Array(0) };

/**
 * The allocation-free form of checkTensor(arg, value, ['f32', 'f16', 'bf16'],
 * [d0, n, d2]) for the sync hot path (KvCache.append, one call per layer and
 * token): a plain `{ dtype, shape: [d0, n, d2], data }` with n >= 1, no
 * strides (or strides: undefined), no other enumerable key, data a
 * Float32Array (f32) or Uint16Array (f16, bf16) over an ArrayBuffer holding
 * exactly d0 * n * d2 elements. Returns a shared object describing it
 * (overwritten by the next call), or undefined for anything else, which
 * checkTensor then accepts or refuses with its usual error: this path only
 * ever accepts what checkTensor accepts, reading each field once. Keeping the
 * per-call garbage at zero keeps the young-generation collections (0.1-1 ms
 * each here) out of a decode loop.
 */
export function plainRows(value: unknown, d0: number, d2: number): PlainRows | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) return undefined;
  const o = value as Record<string, unknown>;
  for (const key in o) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data' && key !== 'strides') return undefined;
  }
  const dtype = o.dtype, shape = o.shape, data = o.data, strides = o.strides;
  if (strides !== undefined || (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'bf16')) return undefined;
  if (!Array.isArray(shape) || shape.length !== 3) return undefined;
  const a = shape[0] as unknown, n = shape[1] as unknown, b = shape[2] as unknown;
  if (a !== d0 || b !== d2 || typeof n !== 'number' || !Number.isInteger(n) || n < 1) return undefined;
  if (!(dtype === 'f32' ? data instanceof Float32Array : data instanceof Uint16Array) || !ArrayBuffer.isView(data)) return undefined;
  let length: number;
  try {
    if (SAB !== undefined && TA_BUFFER.call(data) instanceof SAB) return undefined;
    length = TA_LENGTH.call(data) as number;
  } catch {
    return undefined;
  }
  if (length !== d0 * n * d2) return undefined;
  PLAIN_ROWS.dtype = dtype;
  PLAIN_ROWS.n = n;
  PLAIN_ROWS.data = data as Float32Array | Uint16Array;
  return PLAIN_ROWS;
}

/**
 * Refuses a typed array over a SharedArrayBuffer: another thread could change
 * an index or a length between a check and its use, so tokenpress never
 * reads shared memory in place. The native binding refuses it too.
 */
export function checkUnshared(arg: string, view: ArrayBufferView): void {
  const buffer = TA_BUFFER.call(view) as unknown;
  if (SAB !== undefined && buffer instanceof SAB) {
    throw new TypeError(`${arg}: expected a typed array over an ArrayBuffer, received one over a SharedArrayBuffer (copy it first, e.g. new Float32Array(view))`);
  }
}

/**
 * The aliasing rule: an output may not share memory with any input, nor with
 * another output. Two views of one ArrayBuffer are refused whatever their
 * offsets (kernels write outputs while they still read inputs); empty views
 * and absent (undefined) entries are skipped. Throws a RangeError naming the
 * output and the array it shares memory with.
 */
export function checkNoOverlap(
  outputs: readonly (readonly [string, ArrayBufferView | undefined])[],
  inputs: readonly (readonly [string, ArrayBufferView | undefined])[],
): void {
  const live = (xs: readonly (readonly [string, ArrayBufferView | undefined])[]) =>
    xs.filter((x): x is readonly [string, ArrayBufferView] => x[1] !== undefined && (TA_LENGTH.call(x[1]) as number) > 0);
  const outs = live(outputs);
  const ins = live(inputs);
  for (let i = 0; i < outs.length; i++) {
    const [name, view] = outs[i]!;
    const buffer = TA_BUFFER.call(view);
    for (const [other, w] of ins) {
      if (TA_BUFFER.call(w) === buffer) {
        throw new RangeError(`${name}: expected an output that shares no memory with the input ${other}, received a view of the same ArrayBuffer`);
      }
    }
    for (let j = 0; j < i; j++) {
      const [other, w] = outs[j]!;
      if (TA_BUFFER.call(w) === buffer) {
        throw new RangeError(`${name}: expected an output that shares no memory with the output ${other}, received a view of the same ArrayBuffer`);
      }
    }
  }
}

/**
 * True when `out` (non-empty) shares its ArrayBuffer with any non-empty view
 * of `inputs`: the cheap test before checkNoOverlap builds its message.
 */
export function anySharesBuffer(out: ArrayBufferView, inputs: readonly (ArrayBufferView | undefined)[]): boolean {
  if ((TA_LENGTH.call(out) as number) === 0) return false;
  const buffer = TA_BUFFER.call(out);
  for (let i = 0; i < inputs.length; i++) {
    const w = inputs[i];
    if (w !== undefined && TA_BUFFER.call(w) === buffer && (TA_LENGTH.call(w) as number) > 0) return true;
  }
  return false;
}

/**
 * Validates a tensor argument: our `{ dtype, shape, data, strides? }` or an
 * onnxruntime / transformers.js `{ type, dims, data }` (TensorLike). Checks
 * the dtype among `dtypes`, the rank, the data's type and length, and the
 * strides (innermost must be 1; every element must lie inside data). When
 * the first dimension is nHeads or nKvHeads, a leading batch dimension of
 * exactly 1 is dropped (with its stride); a batch > 1 is a RangeError. The returned data is the caller's memory (no copy).
 * `dims` names the dimensions for messages, e.g. ['nHeads', 'nQ', 'headDim'];
 * 'any' takes any rank and keeps a leading 1.
 */
export function checkTensor<D extends DType>(
  arg: string,
  value: unknown,
  dtypes: readonly D[],
  dims: readonly string[] | 'any',
): CheckedTensor<D> {
  const raw = readTensor(arg, value, dtypes);
  const shapeKey = raw.form === 'plain' ? 'shape' : 'dims';
  const dtype = rawDtype(arg, raw, dtypes);
  const rawShape = raw.shape;
  const anyRank = dims === 'any';
  if (!Array.isArray(rawShape) || rawShape.length > MAX_RANK) {
    throw typeError(`${arg}.${shapeKey}`, anyRank ? 'an array of dimensions' : `[${dims.join(', ')}] (${dims.length} dimensions)`, rawShape);
  }
  const names = anyRank ? rawShape.map((_, i) => `dim${i}`) : dims;
  const rank = names.length;
  // A leading batch dimension before the heads (BNSH, as in past_key_values):
  // [1, nKvHeads, n, headDim] reads as [nKvHeads, n, headDim].
  const batchable = !anyRank && BATCHED_DIMS.includes(names[0]!);
  const batched = batchable && rawShape.length === rank + 1;
  if (rawShape.length !== rank && !batched) {
    const also = batchable ? ` or [1, ${names.join(', ')}] (a batch of 1)` : '';
    throw typeError(`${arg}.${shapeKey}`, `[${names.join(', ')}] (${rank} dimensions)${also}`, rawShape);
  }
  if (batched && rawShape[0] !== 1) {
    throw rangeError(`${arg}.${shapeKey}[0] (batch)`, `1 (one sequence: [1, ${names.join(', ')}] or [${names.join(', ')}])`, rawShape[0]);
  }
  const skip = batched ? 1 : 0;
  const shape = rawShape.slice(skip) as number[];
  for (let i = 0; i < rank; i++) {
    // The message is built only for a bad dimension (this runs on every call).
    const d = shape[i];
    if (!isDim(d)) checkInteger(`${arg}.${shapeKey}[${i + skip}] (${names[i]})`, d, 0);
  }
  const view = rawData(arg, raw.data, dtype);
  const length = TA_LENGTH.call(view) as number;
  // A detached view has length 0, so only an empty one needs the full test.
  if (length === 0 && isDetached(view) && shape.every((d) => d > 0)) {
    throw new TypeError(`${arg}.data: expected a live ${ARRAY_NAME[dtype]}, received a detached buffer`);
  }
  let strides: number[];
  const rawStrides = raw.strides;
  if (rawStrides === undefined) {
    strides = contiguousStrides(shape);
  } else {
    if (!Array.isArray(rawStrides) || rawStrides.length !== rawShape.length) {
      throw typeError(`${arg}.strides`, `${rawShape.length} element strides`, rawStrides);
    }
    for (let i = 0; i < rawStrides.length; i++) {
      if (!isDim(rawStrides[i])) checkInteger(`${arg}.strides[${i}]`, rawStrides[i], 0);
    }
    strides = rawStrides.slice(skip) as number[];
    if (strides[rank - 1] !== 1 && shape[rank - 1]! > 1) {
      throw rangeError(`${arg}.strides[${rank - 1 + skip}]`, '1 (rows must be contiguous)', strides[rank - 1]);
    }
  }
  let span = 1;
  let empty = false;
  for (let i = 0; i < rank; i++) {
    if (shape[i] === 0) empty = true;
    span += (shape[i]! - 1) * strides[i]!;
  }
  if (!empty && span > length) {
    const need = rawStrides === undefined ? `${span} elements (${shape.join(' x ')})` : `at least ${span} elements for shape [${shape.join(', ')}] with strides [${strides.join(', ')}]`;
    throw rangeError(`${arg}.data.length`, need, length);
  }
  if (rawStrides === undefined && length !== span && !empty) {
    throw rangeError(`${arg}.data.length`, `${span} elements (${shape.join(' x ')})`, length);
  }
  return { dtype, shape, strides, data: view as unknown as Tensor<D>['data'] };
}
