// Ecosystem tensors refused with the one message template (argument,
// expected, received): a batch > 1, a type the argument cannot take, data
// that is not in host memory, a wrong rank; hostile objects whose getters
// change things are read once; a failed call leaves a cache as it was.
import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Tensor as HfTensor } from '@huggingface/transformers';
import { attention, KvCache, scoreKv, selectKv, type Tensor } from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';
import { bits, inForm, randomTensor } from '../fixtures/interop-tensors.js';

const [H, KVH, NQ, NKV, D] = [4, 2, 3, 10, 8];
const rng = mulberry32(5);
const q = randomTensor(rng, 'f32', [H, NQ, D]);
const k = randomTensor(rng, 'f32', [KVH, NKV, D]);
const v = randomTensor(rng, 'f32', [KVH, NKV, D]);
const kvN = KVH * NKV * D;

type ErrorCtor = typeof TypeError | typeof RangeError;
const cases: [string, () => unknown, ErrorCtor, RegExp][] = [
  // A batch of more than one sequence.
  ['ort k batch 2', () => attention(q, new ort.Tensor('float32', new Float32Array(2 * kvN), [2, KVH, NKV, D]), v), RangeError,
    /^k\.dims\[0\] \(batch\): expected 1 \(one sequence: \[1, nKvHeads, nKv, headDim\] or \[nKvHeads, nKv, headDim\]\), received 2$/],
  ['transformers.js q batch 3', () => attention(new HfTensor('float32', new Float32Array(3 * H * NQ * D), [3, H, NQ, D]), k, v), RangeError,
    /^q\.dims\[0\] \(batch\): expected 1 .*\[1, nHeads, nQ, headDim\].*, received 3$/],
  ['plain v batch 2', () => attention(q, k, { dtype: 'f32', shape: [2, KVH, NKV, D], data: new Float32Array(2 * kvN) }), RangeError,
    /^v\.shape\[0\] \(batch\): expected 1 .*, received 2$/],
  ['ort keyMass batch 0', () => scoreKv('h2o', { k, v, keyMass: new ort.Tensor('float32', new Float32Array(0), [0, KVH, NKV]) }), RangeError,
    /^inputs\.keyMass\.dims\[0\] \(batch\): expected 1 .*, received 0$/],
  // Types the argument cannot take.
  ['ort int64 k', () => attention(q, new ort.Tensor('int64', new BigInt64Array(kvN), [1, KVH, NKV, D]), v), TypeError,
    /^k\.type: expected 'float32' \| 'float16', received "int64"$/],
  ['ort float64 v', () => attention(q, k, new ort.Tensor('float64', new Float64Array(kvN), [1, KVH, NKV, D])), TypeError,
    /^v\.type: expected 'float32' \| 'float16', received "float64"$/],
  ['ort float16 q (f32 only)', () => attention(new ort.Tensor('float16', new Uint16Array(H * NQ * D), [1, H, NQ, D]), k, v), TypeError,
    /^q\.type: expected 'float32', received "float16"$/],
  ['transformers.js int32 scores', () => selectKv(new HfTensor('int32', new Int32Array(KVH * NKV), [KVH, NKV]), { keep: 1 }), TypeError,
    /^scores\.type: expected 'float32', received "int32"$/],
  ['ort float32 indices', () => attention(q, k, v, { indices: new ort.Tensor('float32', new Float32Array(4), [KVH, 2]) }), TypeError,
    /^options\.indices\.type: expected 'int32', received "float32"$/],
  ['ort uint8 mask', () => attention(q, k, v, { mask: new ort.Tensor('uint8', new Uint8Array(NQ * NKV), [NQ, NKV]) }), TypeError,
    /^options\.mask\.type: expected 'bool' \| 'float32', received "uint8"$/],
  ['a type whose data does not match', () => attention(q, { type: 'float32', dims: [KVH, NKV, D], data: new Float64Array(kvN) }, v), TypeError,
    /^k\.data: expected a Float32Array for dtype 'f32', received Float64Array\(160\)$/],
  ['dims that the data does not fill', () => attention(q, { type: 'float32', dims: [1, KVH, NKV, D], data: new Float32Array(kvN - 1) }, v), RangeError,
    /^k\.data\.length: expected 160 elements \(2 x 10 x 8\), received 159$/],
  // Data not in host memory.
  ['ort gpu-buffer k', () => attention(q, new ort.Tensor({ location: 'gpu-buffer', type: 'float32', dims: [1, KVH, NKV, D], gpuBuffer: { size: 4 * kvN } } as never), v), TypeError,
    /^k\.location: expected 'cpu' \(data in host memory; download device data first: await tensor\.getData\(\)\), received "gpu-buffer"$/],
  ['a disposed ort tensor', () => { const t = new ort.Tensor('float32', new Float32Array(kvN), [1, KVH, NKV, D]); t.dispose(); return attention(q, t, v); }, TypeError,
    /^k\.location: expected 'cpu' \(data in host memory; this tensor was disposed\), received "none"$/],
  // Rank.
  ['ort k rank 2', () => attention(q, new ort.Tensor('float32', new Float32Array(kvN), [KVH * NKV, D]), v), TypeError,
    /^k\.dims: expected \[nKvHeads, nKv, headDim\] \(3 dimensions\) or \[1, nKvHeads, nKv, headDim\] \(a batch of 1\), received an array of length 2$/],
  ['a mask takes no batch dimension', () => attention(q, k, v, { mask: new ort.Tensor('bool', new Uint8Array(NQ * NKV), [1, NQ, NKV]) }), TypeError,
    /^options\.mask\.dims: expected \[nQ, nKv\] \(2 dimensions\), received an array of length 3$/],
  ['neither form', () => attention(q, { kind: 'float32', size: [KVH, NKV, D] } as never, v), TypeError,
    /^k: unknown option "kind"/],
];

describe('ecosystem tensors: errors name the argument, the expectation and what was received', () => {
  for (const [label, call, ErrorType, pattern] of cases) {
    test(label, () => {
      let thrown: unknown;
      try {
        call();
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `${label}: should throw`).toBeInstanceOf(ErrorType);
      expect((thrown as Error).message).toMatch(pattern);
    });
  }

  test('a refused append leaves the cache as it was', () => {
    const cache = new KvCache({ nLayers: 1, nKvHeads: KVH, headDim: D, capacity: 32, dtype: 'f32' });
    cache.append(0, inForm(k, 'ort'), inForm(v, 'ort'));
    const before = cache.export(0);
    expect(() => cache.append(0, new ort.Tensor('float32', new Float32Array(2 * kvN), [2, KVH, NKV, D]), inForm(v, 'ort'))).toThrow(RangeError);
    expect(() => cache.append(0, inForm(k, 'ort'), new ort.Tensor('int32', new Int32Array(kvN), [1, KVH, NKV, D]))).toThrow(TypeError);
    const after = cache.export(0);
    expect(Array.from(cache.lengths().data)).toEqual([NKV, NKV]);
    expect(bits(after.k.data)).toEqual(bits(before.k.data));
  });
});

describe('hostile tensor objects: every field is read once, before validation', () => {
  /** An ecosystem-shaped object whose getters count their reads and may misbehave. */
  function hostile(t: Tensor<'f32'>, onData?: (dims: number[]) => void, location = 'cpu') {
    const reads = { type: 0, dims: 0, data: 0, location: 0 };
    const dims = [1, ...t.shape];
    const obj = {
      get type() { reads.type++; return 'float32'; },
      get dims() { reads.dims++; return dims; },
      get location() { reads.location++; return location; },
      get data() { reads.data++; onData?.(dims); return t.data; },
    };
    return { obj, reads };
  }

  test('each getter runs once; a data getter that rewrites dims changes nothing', () => {
    const ref = attention(q, k, v);
    // After dims was read, the data getter grows the array's nKv: the shape
    // that was read (and validated) is the one used.
    const { obj, reads } = hostile(k as Tensor<'f32'>, (dims) => { dims[2] = 1000; });
    const got = attention(q, obj, v);
    expect(reads).toEqual({ type: 1, dims: 1, data: 1, location: 1 });
    expect(bits(got.output.data)).toEqual(bits(ref.output.data));
  });

  test('data not in host memory is refused without reading data (ORT\'s getter throws there)', () => {
    const { obj, reads } = hostile(k as Tensor<'f32'>, () => { throw new Error('data getter ran'); }, 'gpu-buffer');
    expect(() => attention(q, obj, v)).toThrow(/^k\.location: expected 'cpu'/);
    expect(reads.data).toBe(0);
  });

  test('our form with getters: dtype, shape, data and strides are read once each', () => {
    const reads = { dtype: 0, shape: 0, data: 0, strides: 0 };
    const shape = [KVH, NKV, D];
    const obj = {
      get dtype() { reads.dtype++; return 'f32'; },
      get shape() { reads.shape++; return shape; },
      get data() { reads.data++; shape[1] = 1; return k.data; }, // rewrites nKv after shape was read
      get strides() { reads.strides++; return undefined; },
    };
    const got = attention(q, obj as never, v);
    expect(reads).toEqual({ dtype: 1, shape: 1, data: 1, strides: 1 });
    expect(bits(got.output.data)).toEqual(bits(attention(q, k, v).output.data));
  });

  test('a typed array with a lying own length is measured by its real length', () => {
    const data = new Float32Array(kvN - 8);
    Object.defineProperty(data, 'length', { value: kvN });
    expect(() => attention(q, { type: 'float32', dims: [KVH, NKV, D], data }, v)).toThrow(/^k\.data\.length: expected 160 elements .*, received 152$/);
  });
});
