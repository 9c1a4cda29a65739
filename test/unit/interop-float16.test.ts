// Float16Array data, as onnxruntime gives 'float16' tensors on runtimes that
// have Float16Array (Node 24+). Node 20 has none, so this file installs a
// stand-in before onnxruntime-common first looks (it checks once, at its
// first Tensor): a 2-byte typed array that is not a Uint16Array, so only the
// Float16Array path of the intake can accept it. tokenpress must view it as
// a Uint16Array over the same memory (the f16 bits), never copy or convert.
// Vitest runs each test file in its own process: the global stays here.
import { afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { bits, randomTensor } from '../fixtures/interop-tensors.js';
import { mulberry32 } from '../reference/random.js';

type F16Ctor = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => ArrayBufferView & { length: number };
const g = globalThis as { Float16Array?: F16Ctor };
const standIn = !g.Float16Array;
if (standIn) g.Float16Array = class Float16Array extends Int16Array {} as unknown as F16Ctor;
const F16 = g.Float16Array!;

// onnxruntime-common looks for Float16Array at its first Tensor construction,
// which comes after this line (the fixture's static import only loads it);
// the library is imported dynamically so nothing at its load time runs first.
let ort: typeof import('onnxruntime-node');
let tp: typeof import('../../lib/index.js');
let nativeMod: typeof import('../../lib/native.js');
beforeAll(async () => {
  ort = await import('onnxruntime-node');
  tp = await import('../../lib/index.js');
  nativeMod = await import('../../lib/native.js');
});
afterEach(() => vi.restoreAllMocks());

const [H, KVH, NQ, NKV, D] = [4, 2, 2, 9, 8];
const rng = mulberry32(17);
const q = randomTensor(rng, 'f32', [H, NQ, D]);
const k = randomTensor(rng, 'f16', [KVH, NKV, D]);
const v = randomTensor(rng, 'f16', [KVH, NKV, D]);
// Typed as the Uint16Array that onnxruntime's overloads name (TypeScript's lib
// has no Float16Array here); at run time it is the Float16Array (or stand-in).
const asF16 = (u: Uint16Array) => new F16(u.buffer, u.byteOffset, u.length) as unknown as Uint16Array;

describe(`Float16Array data (${standIn ? 'a stand-in: this runtime has none' : 'the runtime\'s own'})`, () => {
  test('onnxruntime builds float16 tensors on it, and they give the Uint16Array bits\' result', () => {
    const ok = new ort.Tensor('float16', asF16(k.data), [1, KVH, NKV, D]);
    const ov = new ort.Tensor('float16', asF16(v.data), [1, KVH, NKV, D]);
    expect(ok.data).toBeInstanceOf(F16);
    expect(ok.data).not.toBeInstanceOf(Uint16Array);
    const ref = tp.attention(q, k, v, { returnLse: true });
    const got = tp.attention(q, ok, ov, { returnLse: true });
    expect(bits(got.output.data)).toEqual(bits(ref.output.data));
    expect(bits(got.lse!.data)).toEqual(bits(ref.lse!.data));
    // Our form takes it too, for dtype f16 only (bf16 bits mean something else).
    const plain = { dtype: 'f16' as const, shape: [KVH, NKV, D], data: asF16(k.data) as unknown as Uint16Array };
    expect(bits(tp.attention(q, plain, v).output.data)).toEqual(bits(ref.output.data));
    expect(() => tp.attention(q, { ...plain, dtype: 'bf16' }, v)).toThrow(/^k\.data: expected a Uint16Array for dtype 'bf16', received Float16Array\(144\)$/);
  });

  test('it is viewed in place: the native code gets a Uint16Array over the same bytes', () => {
    const spy = vi.spyOn(nativeMod.native(), 'attention');
    // An offset view, so the byte offset has to carry over too.
    const backing = new Uint16Array(k.data.length + 4);
    backing.set(k.data, 4);
    const data = new F16(backing.buffer, 8, k.data.length) as unknown as Uint16Array;
    tp.attention(q, new ort.Tensor('float16', data, [1, KVH, NKV, D]), v);
    const seen = spy.mock.lastCall![2]; // the positional form: (header, q, k, v, ...)
    expect(seen).toBeInstanceOf(Uint16Array);
    expect(seen.buffer).toBe(backing.buffer);
    expect(seen.byteOffset).toBe(8);
    expect(seen.length).toBe(k.data.length);
  });

  test('a KvCache round trip: float16 present in, float16 past_key_values out, memory shared', () => {
    const cache = new tp.KvCache({ nLayers: 1, nKvHeads: KVH, headDim: D, capacity: 16 });
    const present = {
      'present.0.key': new ort.Tensor('float16', asF16(k.data), [1, KVH, NKV, D]),
      'present.0.value': new ort.Tensor('float16', asF16(v.data), [1, KVH, NKV, D]),
    };
    tp.appendPresent(cache, present, NKV);
    const past = tp.pastKeyValues(cache, ort.Tensor);
    const key = past['past_key_values.0.key']!;
    expect(key.type).toBe('float16');
    // onnxruntime wraps our Uint16Array export in its Float16Array over the same memory.
    expect(key.data).toBeInstanceOf(F16);
    expect(bits(key.data as ArrayBufferView)).toEqual(bits(k.data));
    const exported = cache.export(0);
    expect(bits(exported.v.data)).toEqual(bits(v.data));
    expect((tp.toOrt(exported.k, ort.Tensor).data as ArrayBufferView).buffer).toBe(exported.k.data.buffer);
  });
});
