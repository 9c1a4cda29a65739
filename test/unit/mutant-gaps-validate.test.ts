// The shared argument checks (lib/validate.ts) and the message template
// (lib/errors.ts), called directly and pinned by message: Stryker showed
// value descriptions, boundaries (min / max, strides, batch) and the
// aliasing / shared-memory rules that could change with no test failing.
// Expected texts follow the template "<arg>: expected <what>, received <value>".
import { describe, expect, test } from 'vitest';
import { TokenpressError, argMessage, describe as describeValue, rangeError, typeError } from '../../lib/errors.js';
import { checkBoolean, checkInteger, checkNoOverlap, checkNumber, checkOptions, checkTensor, checkUnshared, closestName } from '../../lib/validate.js';

describe('errors.ts: how a received value is described', () => {
  test('every kind of value', () => {
    class Thing {}
    const cases: [unknown, string][] = [
      [null, 'null'], [undefined, 'undefined'], [3, '3'], [-0.5, '-0.5'], [NaN, 'NaN'], [Infinity, 'Infinity'],
      ['ab', '"ab"'], ['x'.repeat(40), JSON.stringify('x'.repeat(40))], ['y'.repeat(41), JSON.stringify('y'.repeat(40) + '…')],
      [12n, '12n'], [true, 'true'], [false, 'false'], [Symbol('s'), 'Symbol(s)'], [() => 1, 'a function'],
      [[1, 2, 3], 'an array of length 3'], [new Float32Array(5), 'Float32Array(5)'], [new DataView(new ArrayBuffer(6)), 'DataView(6)'],
      [new ArrayBuffer(7), 'ArrayBuffer(7)'], [{}, 'an object'], [new Thing(), 'a Thing'], [Object.create(null), 'an object'], [new Map(), 'a Map'],
    ];
    for (const [v, want] of cases) expect(describeValue(v), String(want)).toBe(want);
  });
  test('the template and the error classes', () => {
    expect(argMessage('a.b', 'a number', 'x')).toBe('a.b: expected a number, received "x"');
    const t = typeError('x', 'y', 1);
    expect(t).toBeInstanceOf(TypeError);
    expect(t.message).toBe('x: expected y, received 1');
    const r = rangeError('x', 'y', 2);
    expect(r).toBeInstanceOf(RangeError);
    expect(r.message).toBe('x: expected y, received 2');
    const cause = new Error('inner');
    const e = new TokenpressError('ERR_BAD_FILE', 'msg', { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('TokenpressError');
    expect(e.code).toBe('ERR_BAD_FILE');
    expect(e.message).toBe('msg');
    expect(e.cause).toBe(cause);
  });
});

describe('scalar checks', () => {
  test('checkBoolean', () => {
    expect(checkBoolean('o.b', undefined, true)).toBe(true);
    expect(checkBoolean('o.b', undefined, false)).toBe(false);
    expect(checkBoolean('o.b', false, true)).toBe(false);
    expect(() => checkBoolean('o.b', 1, true)).toThrow(new TypeError('o.b: expected a boolean, received 1'));
  });
  test('checkNumber', () => {
    expect(checkNumber('n', -2.5)).toBe(-2.5);
    expect(checkNumber('n', 0)).toBe(0);
    expect(() => checkNumber('n', '1')).toThrow(new TypeError('n: expected a number, received "1"'));
    expect(() => checkNumber('n', Infinity)).toThrow(new RangeError('n: expected a finite number, received Infinity'));
    expect(() => checkNumber('n', NaN)).toThrow(new RangeError('n: expected a finite number, received NaN'));
    expect(checkNumber('n', 1e-9, { positive: true })).toBe(1e-9);
    expect(() => checkNumber('n', 0, { positive: true })).toThrow(new RangeError('n: expected a positive number, received 0'));
    expect(() => checkNumber('n', -1, { positive: true })).toThrow(new RangeError('n: expected a positive number, received -1'));
  });
  test('checkInteger at both bounds', () => {
    expect(checkInteger('i', 0, 0)).toBe(0);
    expect(checkInteger('i', 5, 1, 5)).toBe(5);
    expect(checkInteger('i', 1, 1, 5)).toBe(1);
    expect(() => checkInteger('i', 6, 1, 5)).toThrow(new RangeError('i: expected an integer in [1, 5], received 6'));
    expect(() => checkInteger('i', 0, 1, 5)).toThrow(new RangeError('i: expected an integer in [1, 5], received 0'));
    expect(() => checkInteger('i', -1, 0)).toThrow(new RangeError('i: expected an integer >= 0, received -1'));
    expect(() => checkInteger('i', 1.5, 0)).toThrow(new RangeError('i: expected an integer, received 1.5'));
    expect(() => checkInteger('i', '2', 0)).toThrow(new TypeError('i: expected an integer, received "2"'));
    expect(checkInteger('i', Number.MAX_SAFE_INTEGER, 0)).toBe(Number.MAX_SAFE_INTEGER);
  });
  test('checkOptions and closestName', () => {
    expect(checkOptions('o', undefined, ['a'])).toEqual({});
    expect(() => checkOptions('o', 3, ['a'])).toThrow(new TypeError('o: expected an options object, received 3'));
    expect(() => checkOptions('o', [], ['a'])).toThrow(new TypeError('o: expected an options object, received an array of length 0'));
    expect(() => checkOptions('o', null, ['a'])).toThrow(new TypeError('o: expected an options object, received null'));
    expect(() => checkOptions('o', { windw: 1 }, ['window', 'kernel'])).toThrow(new TypeError('o: unknown option "windw" (did you mean "window"?); known options: window, kernel'));
    expect(() => checkOptions('o', { zzzzzzzzz: 1 }, ['window'])).toThrow(new TypeError('o: unknown option "zzzzzzzzz"; known options: window'));
    expect(closestName('kernl', ['window', 'kernel'])).toBe('kernel');
    expect(closestName('KERNEL', ['window', 'kernel'])).toBe('kernel'); // case-insensitive
    expect(closestName('ab', ['abc', 'abd'])).toBe('abc'); // the first of equal distances
    expect(closestName('abcdefghij', ['abcdefghXYZ'])).toBe('abcdefghXYZ'); // distance 3 <= 10 / 3
    expect(closestName('abcdefgh', ['abcdeXYZ'])).toBeUndefined(); // distance 3 > max(2, 8 / 3)
    expect(closestName('zz', [])).toBeUndefined();
  });
});

describe('shared memory and aliasing', () => {
  test('checkUnshared refuses a SharedArrayBuffer view only', () => {
    expect(() => checkUnshared('x', new Float32Array(new SharedArrayBuffer(8)))).toThrow(
      new TypeError('x: expected a typed array over an ArrayBuffer, received one over a SharedArrayBuffer (copy it first, e.g. new Float32Array(view))'));
    expect(() => checkUnshared('x', new Float32Array(2))).not.toThrow();
  });
  test('checkNoOverlap: output over an input, over an earlier output; empty and absent views skipped', () => {
    const buf = new ArrayBuffer(64);
    const a = new Float32Array(buf, 0, 4), b = new Float32Array(buf, 32, 4), other = new Float32Array(4), other2 = new Float32Array(4);
    expect(() => checkNoOverlap([['out', b]], [['in', other], ['q', a]])).toThrow(
      new RangeError('out: expected an output that shares no memory with the input q, received a view of the same ArrayBuffer'));
    expect(() => checkNoOverlap([['o1', a], ['o2', other], ['o3', b]], [])).toThrow(
      new RangeError('o3: expected an output that shares no memory with the output o1, received a view of the same ArrayBuffer'));
    expect(() => checkNoOverlap([['o1', other], ['o2', other2]], [['in', a]])).not.toThrow();
    expect(() => checkNoOverlap([['o1', new Float32Array(buf, 0, 0)]], [['in', a]])).not.toThrow(); // empty output
    expect(() => checkNoOverlap([['o1', a]], [['in', new Float32Array(buf, 8, 0)]])).not.toThrow(); // empty input
    expect(() => checkNoOverlap([['o1', undefined], ['o2', a]], [['in', undefined]])).not.toThrow();
  });
});

describe('checkTensor', () => {
  const f32 = (shape: unknown, n: number, extra: object = {}) => ({ dtype: 'f32', shape, data: new Float32Array(n), ...extra });
  const ok = (v: unknown, dims: readonly string[] | 'any' = ['nKvHeads', 'n', 'd']) => checkTensor('t', v, ['f32', 'f16'] as const, dims);
  test('plain, batched and strided tensors', () => {
    expect(ok(f32([2, 3, 4], 24))).toMatchObject({ dtype: 'f32', shape: [2, 3, 4], strides: [12, 4, 1] });
    expect(ok(f32([1, 2, 3, 4], 24))).toMatchObject({ shape: [2, 3, 4], strides: [12, 4, 1] }); // batch of 1 dropped
    expect(ok(f32([2, 3, 4], 40, { strides: [20, 5, 1] }))).toMatchObject({ strides: [20, 5, 1] });
    expect(ok(f32([1, 2, 3, 4], 40, { strides: [40, 20, 5, 1] }))).toMatchObject({ shape: [2, 3, 4], strides: [20, 5, 1] });
    expect(ok(f32([2, 3, 1], 6, { strides: [3, 1, 7] }))).toMatchObject({ strides: [3, 1, 7] }); // last dim 1: any stride
    expect(ok(f32([1, 5], 5), 'any')).toMatchObject({ shape: [1, 5] }); // 'any' keeps the leading 1
    expect(ok(f32([0, 3, 4], 0))).toMatchObject({ shape: [0, 3, 4] });
    expect(ok(f32([2, 0, 4], 0))).toMatchObject({ shape: [2, 0, 4] });
  });
  test('ecosystem tensors', () => {
    expect(ok({ type: 'float32', dims: [2, 3, 4], data: new Float32Array(24) })).toMatchObject({ dtype: 'f32', shape: [2, 3, 4] });
    expect(ok({ type: 'float16', dims: [1, 1, 2], data: new Uint16Array(2), location: 'cpu' })).toMatchObject({ dtype: 'f16' });
    expect(() => ok({ type: 'float32', dims: [1, 1, 1], data: new Float32Array(1), location: 'gpu-buffer' })).toThrow(
      new TypeError("t.location: expected 'cpu' (data in host memory; download device data first: await tensor.getData()), received \"gpu-buffer\""));
    expect(() => ok({ type: 'float32', dims: [1, 1, 1], data: new Float32Array(1), location: 'none' })).toThrow(
      new TypeError("t.location: expected 'cpu' (data in host memory; this tensor was disposed), received \"none\""));
    expect(() => ok({ type: 'int32', dims: [1, 1, 1], data: new Int32Array(1) })).toThrow(new TypeError("t.type: expected 'float32' | 'float16', received \"int32\""));
    expect(() => checkTensor('t', { type: 'float32', dims: [1], data: new Uint16Array(1) }, ['bf16'] as const, ['n'])).toThrow(
      new TypeError("t.type: expected none (this argument takes dtype 'bf16', which onnxruntime has no type for), received \"float32\""));
    expect(() => ok({ type: 'float32', dims: [2, 3], data: new Float32Array(6) })).toThrow(
      new TypeError('t.dims: expected [nKvHeads, n, d] (3 dimensions) or [1, nKvHeads, n, d] (a batch of 1), received an array of length 2'));
  });
  const cases: [unknown, ErrorConstructor, string][] = [
    [5, TypeError, "t: expected a tensor { dtype, shape, data } with dtype 'f32' | 'f16' or an onnxruntime / transformers.js Tensor { type, dims, data } with type 'float32' | 'float16', received 5"],
    [new Float32Array(2), TypeError, 't: expected a tensor { dtype, shape, data } with dtype'],
    [{ dtype: 'bf16', shape: [1, 1, 1], data: new Uint16Array(1) }, TypeError, "t.dtype: expected 'f32' | 'f16', received \"bf16\""],
    [{ dtype: 'f32', shape: [1, 1, 1], data: new Float32Array(1), extra: 1 }, TypeError, 't: unknown option "extra"'],
    [{ dtype: 'f32', shape: 'x', data: new Float32Array(1) }, TypeError, 't.shape: expected [nKvHeads, n, d] (3 dimensions), received "x"'],
    [{ dtype: 'f32', shape: new Array(65).fill(1), data: new Float32Array(1) }, TypeError, 't.shape: expected [nKvHeads, n, d] (3 dimensions), received an array of length 65'],
    [{ dtype: 'f32', shape: [2, 1, 1, 1], data: new Float32Array(2) }, RangeError, 't.shape[0] (batch): expected 1 (one sequence: [1, nKvHeads, n, d] or [nKvHeads, n, d]), received 2'],
    [{ dtype: 'f32', shape: [1, 2, 3, 4, 5], data: new Float32Array(120) }, TypeError, 't.shape: expected [nKvHeads, n, d] (3 dimensions) or [1, nKvHeads, n, d] (a batch of 1), received an array of length 5'],
    [{ dtype: 'f32', shape: [2, -1, 4], data: new Float32Array(8) }, RangeError, 't.shape[1] (n): expected an integer >= 0, received -1'],
    [{ dtype: 'f32', shape: [1, 2, 1.5, 4], data: new Float32Array(8) }, RangeError, 't.shape[2] (n): expected an integer, received 1.5'],
    [{ dtype: 'f32', shape: [1, 1, 2], data: new Int32Array(2) }, TypeError, "t.data: expected a Float32Array for dtype 'f32', received Int32Array(2)"],
    [{ dtype: 'f16', shape: [1, 1, 2], data: new Float32Array(2) }, TypeError, "t.data: expected a Uint16Array for dtype 'f16', received Float32Array(2)"],
    [{ dtype: 'f32', shape: [1, 1, 2], data: new Float32Array(new SharedArrayBuffer(8)) }, TypeError, 't.data: expected a typed array over an ArrayBuffer, received one over a SharedArrayBuffer'],
    [{ dtype: 'f32', shape: [1, 1, 2], data: new Float32Array(2), strides: [2, 1] }, TypeError, 't.strides: expected 3 element strides, received an array of length 2'],
    [{ dtype: 'f32', shape: [1, 1, 2], data: new Float32Array(2), strides: 1 }, TypeError, 't.strides: expected 3 element strides, received 1'],
    [{ dtype: 'f32', shape: [1, 1, 2], data: new Float32Array(4), strides: [2, 2, -1] }, RangeError, 't.strides[2]: expected an integer >= 0, received -1'],
    [{ dtype: 'f32', shape: [1, 1, 2], data: new Float32Array(4), strides: [4, 4, 2] }, RangeError, 't.strides[2]: expected 1 (rows must be contiguous), received 2'],
    [{ dtype: 'f32', shape: [1, 1, 1, 2], data: new Float32Array(4), strides: [4, 4, 4, 2] }, RangeError, 't.strides[3]: expected 1 (rows must be contiguous), received 2'],
    [{ dtype: 'f32', shape: [2, 3, 4], data: new Float32Array(23) }, RangeError, 't.data.length: expected 24 elements (2 x 3 x 4), received 23'],
    [{ dtype: 'f32', shape: [2, 3, 4], data: new Float32Array(25) }, RangeError, 't.data.length: expected 24 elements (2 x 3 x 4), received 25'],
    [{ dtype: 'f32', shape: [2, 3, 4], data: new Float32Array(24), strides: [13, 4, 1] }, RangeError, 't.data.length: expected at least 25 elements for shape [2, 3, 4] with strides [13, 4, 1], received 24'],
  ];
  for (const [v, kind, message] of cases) {
    test(message, () => {
      expect(() => ok(v)).toThrow(kind);
      expect(() => ok(v)).toThrow(message);
    });
  }
  test('a detached buffer is refused unless the tensor is empty', () => {
    const data = new Float32Array(4);
    structuredClone(data.buffer, { transfer: [data.buffer] });
    expect(() => ok({ dtype: 'f32', shape: [1, 1, 4], data })).toThrow(new TypeError('t.data: expected a live Float32Array, received a detached buffer'));
    expect(ok({ dtype: 'f32', shape: [1, 0, 4], data })).toMatchObject({ shape: [1, 0, 4] });
  });
  test('the shape is read once: a later change to the caller\'s array is not seen', () => {
    const shape = [1, 2, 2];
    const r = ok({ dtype: 'f32', shape, data: new Float32Array(4) });
    shape[1] = 99;
    expect(r.shape).toEqual([1, 2, 2]);
  });
});
