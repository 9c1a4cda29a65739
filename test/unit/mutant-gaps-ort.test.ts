// The onnxruntime bridges (lib/interop/ort.ts) with a minimal Tensor class of
// onnxruntime's (type, data, dims) form: toOrt's types, batch dimension,
// shared memory and strided copies (expected elements computed here from
// the strides); lastPositions' view; pastKeyValues' and appendPresent's
// options and refusals by message. Stryker showed these could change with
// no test failing.
import { describe, expect, test } from 'vitest';
import { KvCache } from '../../lib/index.js';
import { appendPresent, lastPositions, pastKeyValues, PAST_NAMES, PRESENT_NAMES, toOrt } from '../../lib/interop/ort.js';

class T {
  constructor(readonly type: string, readonly data: ArrayLike<number> & { buffer: ArrayBufferLike }, readonly dims: readonly number[]) {}
}

const seq = (n: number) => Float32Array.from({ length: n }, (_, i) => i);

describe('toOrt', () => {
  test('types, the batch dimension and shared memory', () => {
    const data = seq(6);
    const t = toOrt({ dtype: 'f32', shape: [2, 3], data }, T);
    expect(t.type).toBe('float32');
    expect(t.dims).toEqual([1, 2, 3]);
    expect(t.data).toBe(data); // contiguous: the same memory
    expect(toOrt({ dtype: 'f32', shape: [2, 3], data }, T, { batch: false }).dims).toEqual([2, 3]);
    expect(toOrt({ dtype: 'f16', shape: [2], data: Uint16Array.of(1, 2) }, T).type).toBe('float16');
    expect(toOrt({ dtype: 'i32', shape: [1], data: Int32Array.of(3) }, T).type).toBe('int32');
    expect(toOrt({ dtype: 'bool', shape: [1], data: Uint8Array.of(1) }, T).type).toBe('bool');
    const long = seq(10);
    const cut = toOrt({ dtype: 'f32', shape: [2, 3], strides: [3, 1], data: long }, T);
    expect(Array.from(cut.data)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(cut.data.buffer).toBe(long.buffer); // a prefix view, no copy
  });
  test('a strided view is copied densely, element by element', () => {
    // [2, 2, 3] over a [2, 4, 5] buffer: element (a, b, c) at a*20 + b*5 + c.
    const src = seq(40);
    const t = toOrt({ dtype: 'f32', shape: [2, 2, 3], strides: [20, 5, 1], data: src }, T, { batch: false });
    const want: number[] = [];
    for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) want.push(a * 20 + b * 5 + c);
    expect(Array.from(t.data)).toEqual(want);
    expect(t.data.buffer).not.toBe(src.buffer);
    // Dimensions of size 1 may have any stride and still count as contiguous.
    const one = seq(3);
    expect(toOrt({ dtype: 'f32', shape: [1, 3], strides: [99, 1], data: one }, T).data).toBe(one);
    expect(Array.from(toOrt({ dtype: 'f32', shape: [3, 0], strides: [4, 1], data: seq(4) }, T).data)).toEqual([]);
    expect(Array.from(toOrt({ dtype: 'f32', shape: [3], strides: [1], data: seq(3) }, T).data)).toEqual([0, 1, 2]);
    expect(Array.from(toOrt({ dtype: 'f32', shape: [3, 1], strides: [2, 1], data: seq(6) }, T).data)).toEqual([0, 2, 4]);
  });
  test('refusals', () => {
    const x = { dtype: 'f32' as const, shape: [1], data: seq(1) };
    expect(() => toOrt({ dtype: 'bf16', shape: [1], data: Uint16Array.of(1) }, T)).toThrow(
      new TypeError("tensor.dtype: expected 'f32' | 'f16' | 'i32' | 'bool' (onnxruntime has no bf16 type in JS: use { dtype: 'f16' } or 'f32'), received \"bf16\""));
    expect(() => toOrt(x, {} as never)).toThrow(new TypeError("TensorClass: expected a Tensor class with a (type, data, dims) constructor, e.g. require('onnxruntime-node').Tensor, received an object"));
    expect(() => toOrt(x, T, { batch: 1 as never })).toThrow(new TypeError('opts.batch: expected a boolean, received 1'));
    expect(() => toOrt(x, T, { bach: true } as never)).toThrow('opts: unknown option "bach"');
  });
});

describe('lastPositions', () => {
  test('a view of the last n rows, with or without the batch dimension', () => {
    const data = seq(2 * 5 * 3); // [2, 5, 3]
    const v = lastPositions({ dtype: 'f32', shape: [1, 2, 5, 3], data }, 2);
    expect(v.shape).toEqual([2, 2, 3]);
    expect(v.strides).toEqual([15, 3, 1]);
    expect(v.data.buffer).toBe(data.buffer);
    // Row r of head h: v.data[h * 15 + r * 3 + c] = element (h, 3 + r, c).
    expect(Array.from(v.data.subarray(0, 6))).toEqual([9, 10, 11, 12, 13, 14]);
    expect(v.data[15]).toBe(15 + 9);
    expect(lastPositions({ dtype: 'f32', shape: [2, 5, 3], data }, 5).data.length).toBe(30);
    expect(lastPositions({ dtype: 'f32', shape: [2, 5, 3], data }, 0).shape).toEqual([2, 0, 3]);
  });
  test('n in [0, len]', () => {
    expect(() => lastPositions({ dtype: 'f32', shape: [2, 5, 3], data: seq(30) }, 6)).toThrow(new RangeError('n: expected an integer in [0, 5], received 6'));
    expect(() => lastPositions({ dtype: 'f32', shape: [2, 5, 3], data: seq(30) }, -1)).toThrow(new RangeError('n: expected an integer in [0, 5], received -1'));
    expect(() => lastPositions({ dtype: 'i32', shape: [1, 1, 1], data: Int32Array.of(1) } as never, 0, 'outputs["x"]')).toThrow(/^outputs\["x"\]\.dtype: /);
  });
});

describe('pastKeyValues / appendPresent', () => {
  const make = (dtype: 'f32' | 'f16' | 'bf16' = 'f32') => {
    const c = new KvCache({ nLayers: 2, nKvHeads: 2, headDim: 3, capacity: 6, dtype });
    for (let l = 0; l < 2; l++) c.append(l, { dtype: 'f32', shape: [2, 2, 3], data: seq(12) }, { dtype: 'f32', shape: [2, 2, 3], data: seq(12) });
    return c;
  };
  test('names, dtypes and shapes of the feeds', () => {
    const f = pastKeyValues(make(), T);
    expect(Object.keys(f)).toEqual(['past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
    expect(f['past_key_values.1.value']!.dims).toEqual([1, 2, 2, 3]);
    expect(f['past_key_values.0.key']!.type).toBe('float32');
    expect(Array.from(f['past_key_values.0.key']!.data)).toEqual(Array.from(seq(12)));
    expect(pastKeyValues(make('f16'), T)['past_key_values.0.key']!.type).toBe('float16');
    expect(pastKeyValues(make(), T, { dtype: 'f16' })['past_key_values.0.key']!.type).toBe('float16');
    expect(pastKeyValues(make('bf16'), T, { dtype: 'f32' })['past_key_values.0.key']!.type).toBe('float32');
    expect(Object.keys(pastKeyValues(make(), T, { names: (l, k) => `${k}${l}` }))).toEqual(['key0', 'value0', 'key1', 'value1']);
    expect(PAST_NAMES(1, 'key')).toBe('past_key_values.1.key');
    expect(PRESENT_NAMES(1, 'value')).toBe('present.1.value');
  });
  test('pastKeyValues refusals', () => {
    expect(() => pastKeyValues(make(), T, { dtype: 'bf16' as never })).toThrow(new TypeError("opts.dtype: expected 'f32' | 'f16', received \"bf16\""));
    expect(() => pastKeyValues(make('bf16'), T)).toThrow(new TypeError("opts.dtype: expected 'f32' | 'f16' (a bf16 cache has no onnxruntime type in JS), received undefined"));
    expect(() => pastKeyValues(make(), T, { names: 'x' as never })).toThrow(new TypeError('opts.names: expected a function (layer, kind) => input name, received "x"'));
    expect(() => pastKeyValues(make(), T, { allowRagged: 1 as never })).toThrow(new TypeError('opts.allowRagged: expected a boolean, received 1'));
    expect(() => pastKeyValues(make(), T, { allowMerged: 1 as never })).toThrow(new TypeError('opts.allowMerged: expected a boolean, received 1'));
  });
  test('ragged and merged layers are refused unless allowed', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 3, capacity: 10, dtype: 'f32' });
    const k = Float32Array.from({ length: 2 * 6 * 3 }, (_, i) => Math.sin(i * 1.7));
    c.append(0, { dtype: 'f32', shape: [2, 6, 3], data: k }, { dtype: 'f32', shape: [2, 6, 3], data: k.slice() });
    c.compress({ name: 'knorm', merge: true }, { keep: 4 });
    expect(() => pastKeyValues(c, T)).toThrow(/^cache layer 0: expected rows that stand for one token each \(pass \{ allowMerged: true \} if the graph adds log\(counts\) to the logits\), received a row of count [2-9] \(head 0, row \d\)$/);
    expect(() => pastKeyValues(c, T, { allowMerged: true })).not.toThrow();
    const r = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 3, capacity: 10, dtype: 'f32' });
    r.append(0, { dtype: 'f32', shape: [2, 6, 3], data: k }, { dtype: 'f32', shape: [2, 6, 3], data: k.slice() });
    r.compress({ name: 'adakv', scorer: 'knorm', alpha: 0 }, { keep: 3 });
    const lengths = Array.from(r.lengths().data);
    if (lengths[0] !== lengths[1]) {
      expect(() => pastKeyValues(r, T)).toThrow(`cache layer 0: expected the same length in every head (pass { allowRagged: true } if the graph masks the zero padding per head), received lengths [${lengths.join(', ')}]`);
      expect(Object.keys(pastKeyValues(r, T, { allowRagged: true }))).toHaveLength(2);
    }
  });
  test('appendPresent appends the last n rows of every layer; refusals change nothing', () => {
    const c = make();
    // present: [1, 2, 3 (= 2 past + 1 new), 3]; the new row of head h is row 2.
    const present = (l: number) => toOrt({ dtype: 'f32', shape: [2, 3, 3], data: Float32Array.from({ length: 18 }, (_, i) => 100 * (l + 1) + i) }, T);
    const outputs = { 'present.0.key': present(0), 'present.0.value': present(0), 'present.1.key': present(1), 'present.1.value': present(1) };
    const before = Array.from(c.lengths().data);
    expect(() => appendPresent(c, outputs, 1, { names: 1 as never })).toThrow(new TypeError('opts.names: expected a function (layer, kind) => output name, received 1'));
    expect(() => appendPresent(c, null as never, 1)).toThrow(new TypeError('outputs: expected the outputs of session.run(), received null'));
    expect(() => appendPresent(c, outputs, -1)).toThrow(new RangeError('n: expected an integer >= 0, received -1'));
    expect(() => appendPresent(c, { ...outputs, 'present.1.value': undefined }, 1)).toThrow(/^outputs\["present\.1\.value"\]: expected a tensor/);
    const wrong = toOrt({ dtype: 'f32', shape: [1, 3, 3], data: new Float32Array(9) }, T);
    expect(() => appendPresent(c, { ...outputs, 'present.1.key': wrong }, 1)).toThrow(
      new RangeError('outputs["present.1.key"]: expected the last 1 positions of shape [2, 1, 3] (the cache\'s nKvHeads and headDim), received "[1, 1, 3]"'));
    const wide = toOrt({ dtype: 'f32', shape: [2, 3, 4], data: new Float32Array(24) }, T);
    expect(() => appendPresent(c, { ...outputs, 'present.0.value': wide }, 1)).toThrow('outputs["present.0.value"]: expected the last 1 positions of shape [2, 1, 3]');
    const big = (l: number) => toOrt({ dtype: 'f32', shape: [2, 5, 3], data: new Float32Array(30).fill(l) }, T);
    expect(() => appendPresent(c, { 'present.0.key': big(0), 'present.0.value': big(0), 'present.1.key': big(1), 'present.1.value': big(1) }, 5)).toThrow(
      new RangeError('n: expected at most 4 new positions (a head already holds 2 of its capacity 6), received 5'));
    expect(Array.from(c.lengths().data)).toEqual(before);
    appendPresent(c, { 'present.0.key': big(0), 'present.0.value': big(0), 'present.1.key': big(1), 'present.1.value': big(1) }, 4); // exactly fills
    expect(Array.from(c.lengths().data)).toEqual([6, 6, 6, 6]);
    const d = make();
    appendPresent(d, outputs, 1);
    expect(Array.from(d.lengths().data)).toEqual([3, 3, 3, 3]);
    const e = d.export(1, { dtype: 'f32' });
    expect(Array.from(e.k.data.subarray(6, 9))).toEqual([206, 207, 208]); // head 0, new row = present row 2
    expect(Array.from(e.k.data.subarray(15, 18))).toEqual([215, 216, 217]); // head 1
  });
});
