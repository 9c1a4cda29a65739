// Results out in the caller's form (lib/interop/ort.ts), with the real
// onnxruntime-node and transformers.js Tensor classes:
//   toOrt          [d...] -> Tensor [1, d...], memory shared unless strided
//   lastPositions  [1, nKvHeads, len, headDim] -> strided view of the last n rows
//   pastKeyValues  KvCache -> { 'past_key_values.{l}.key': [1, nKvHeads, len, headDim], ... }
//   appendPresent  { 'present.{l}.key': [1, nKvHeads, past + n, headDim], ... } -> KvCache
import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { Tensor as HfTensor } from '@huggingface/transformers';
import {
  appendPresent, attention, KvCache, lastPositions, pastKeyValues, toOrt, toF32, type OrtTensorClass, type Tensor,
} from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';
import { bits, randomTensor } from '../fixtures/interop-tensors.js';

const [KVH, D] = [2, 8];

describe('toOrt', () => {
  test('contiguous tensors share memory with the new Tensor, dims [1, ...shape]', () => {
    const t = randomTensor(mulberry32(1), 'f32', [KVH, 5, D]);
    const classes = [ort.Tensor, HfTensor] as OrtTensorClass<{ type: string; dims: readonly number[]; data: unknown }>[];
    for (const Cls of classes) {
      const o = toOrt(t, Cls);
      expect(o).toBeInstanceOf(Cls);
      expect(o.type).toBe('float32');
      expect(o.dims).toEqual([1, KVH, 5, D]);
      expect(o.data).toBe(t.data);
      t.data[3] = 42;
      expect((o.data as Float32Array)[3]).toBe(42);
    }
    expect(toOrt(t, ort.Tensor, { batch: false }).dims).toEqual([KVH, 5, D]);
  });

  test('dtypes map to onnxruntime types: f16 -> float16 bits, i32 -> int32, bool -> bool', () => {
    const cases: [Tensor, string][] = [
      [randomTensor(mulberry32(2), 'f16', [3, 4]), 'float16'],
      [{ dtype: 'i32', shape: [2, 2], data: Int32Array.of(1, -2, 3, 4) }, 'int32'],
      [{ dtype: 'bool', shape: [4], data: Uint8Array.of(1, 0, 0, 1) }, 'bool'],
    ];
    for (const [t, type] of cases) {
      const o = toOrt(t, ort.Tensor, { batch: false });
      expect(o.type).toBe(type);
      expect(o.data).toBe(t.data);
      expect(o.dims).toEqual(t.shape);
    }
  });

  test('a strided view is copied into a dense tensor with the same values', () => {
    // Rows 1..3 of a [2, 6, 8] buffer: strides [48, 8, 1], offset 8.
    const base = randomTensor(mulberry32(3), 'f32', [KVH, 6, D]);
    const view: Tensor<'f32'> = { dtype: 'f32', shape: [KVH, 3, D], strides: [6 * D, D, 1], data: base.data.subarray(D) };
    const o = toOrt(view, ort.Tensor);
    expect((o.data as Float32Array).buffer).not.toBe(base.data.buffer);
    expect(o.dims).toEqual([1, KVH, 3, D]);
    expect(Array.from(o.data as Float32Array)).toEqual(Array.from(toF32(view).data));
  });

  test('round trip: an attention output through toOrt and back gives the same bits', () => {
    const rng = mulberry32(4);
    const [q, k, v] = [randomTensor(rng, 'f32', [4, 2, D]), randomTensor(rng, 'f32', [KVH, 6, D]), randomTensor(rng, 'f32', [KVH, 6, D])];
    const out = attention(q, k, v).output;
    const again = attention(toOrt(out, HfTensor), toOrt(k, ort.Tensor), v);
    expect(bits(again.output.data)).toEqual(bits(attention(out, k, v).output.data));
  });

  test('bf16 and bad classes are refused with the message template', () => {
    const bf = randomTensor(mulberry32(5), 'bf16', [2, 2]);
    expect(() => toOrt(bf, ort.Tensor)).toThrow(/^tensor\.dtype: expected 'f32' \| 'f16' \| 'i32' \| 'bool' \(onnxruntime has no bf16 type in JS: use \{ dtype: 'f16' \} or 'f32'\), received "bf16"$/);
    expect(() => toOrt(bf, 'Tensor' as never)).toThrow(/^TensorClass: expected a Tensor class/);
    expect(() => toOrt(bf, ort.Tensor, { batched: true } as never)).toThrow(/^opts: unknown option "batched" \(did you mean "batch"\?\)/);
  });
});

describe('lastPositions', () => {
  test('a strided view of the last n rows over the same memory', () => {
    const present = new ort.Tensor('float32', randomTensor(mulberry32(6), 'f32', [KVH, 7, D]).data, [1, KVH, 7, D]);
    const view = lastPositions(present, 3);
    const src = present.data as Float32Array;
    expect(view.shape).toEqual([KVH, 3, D]);
    expect(view.strides).toEqual([7 * D, D, 1]);
    expect(view.data.buffer).toBe(src.buffer);
    expect(view.data.byteOffset).toBe(src.byteOffset + 4 * 4 * D);
    const dense = toF32(view as Tensor<'f32'>).data;
    for (let h = 0; h < KVH; h++) {
      expect(Array.from(dense.subarray(h * 3 * D, (h + 1) * 3 * D))).toEqual(Array.from(src.subarray((h * 7 + 4) * D, (h * 7 + 7) * D)));
    }
    expect(lastPositions(present, 0).shape).toEqual([KVH, 0, D]);
    expect(() => lastPositions(present, 8)).toThrow(/^n: expected an integer in \[0, 7\], received 8$/);
  });
});

describe('pastKeyValues', () => {
  function filled(opts: { dtype?: 'f32' | 'f16' | 'bf16' } = {}) {
    const cache = new KvCache({ nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 32, ...opts });
    const rng = mulberry32(7);
    for (let l = 0; l < 2; l++) cache.append(l, randomTensor(rng, 'f32', [KVH, 12, D]), randomTensor(rng, 'f32', [KVH, 12, D]));
    return cache;
  }

  test('every layer as past_key_values.{l}.key / .value [1, nKvHeads, len, headDim], sharing the export', () => {
    const cache = filled();
    const feeds = pastKeyValues(cache, ort.Tensor);
    expect(Object.keys(feeds)).toEqual(['past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
    for (let l = 0; l < 2; l++) {
      const e = cache.export(l);
      const key = feeds[`past_key_values.${l}.key`]!;
      expect(key.type).toBe('float16');
      expect(key.dims).toEqual([1, KVH, 12, D]);
      expect(bits(key.data as Uint16Array)).toEqual(bits(e.k.data));
      expect(bits(feeds[`past_key_values.${l}.value`]!.data as Uint16Array)).toEqual(bits(e.v.data));
    }
    const f32 = pastKeyValues(cache, HfTensor, { dtype: 'f32', names: (l, kind) => `past.${kind}.${l}` });
    expect(f32['past.value.1']!.type).toBe('float32');
    expect(bits(f32['past.value.1']!.data as Float32Array)).toEqual(bits(cache.export(1, { dtype: 'f32' }).v.data));
    const empty = pastKeyValues(new KvCache({ nLayers: 1, nKvHeads: KVH, headDim: D, capacity: 4 }), ort.Tensor);
    expect(empty['past_key_values.0.key']!.dims).toEqual([1, KVH, 0, D]);
  });

  test('ragged heads (per-head budgets) are refused unless allowed; the export pads them with zeros', () => {
    const cache = filled({ dtype: 'f32' });
    cache.compress({ name: 'adakv', scorer: 'knorm', alpha: 0 }, { keep: 6 });
    const lengths = Array.from(cache.lengths().data);
    expect(new Set(lengths).size).toBeGreaterThan(1);
    expect(() => pastKeyValues(cache, ort.Tensor)).toThrow(/^cache layer \d: expected the same length in every head \(pass \{ allowRagged: true \}.*received lengths \[\d+, \d+\]$/);
    const feeds = pastKeyValues(cache, ort.Tensor, { allowRagged: true });
    const e = cache.export(0);
    const maxLen = e.k.shape[1]!;
    expect(feeds['past_key_values.0.key']!.dims).toEqual([1, KVH, maxLen, D]);
    const key = feeds['past_key_values.0.key']!.data as Float32Array;
    for (let h = 0; h < KVH; h++) {
      const pad = key.subarray((h * maxLen + e.lengths[h]!) * D, (h + 1) * maxLen * D);
      expect(pad.every((x) => x === 0)).toBe(true);
    }
  });

  test('merged rows are refused unless allowed; a bf16 cache needs an export dtype', () => {
    const cache = filled();
    cache.compress({ name: 'knorm', merge: true }, { keep: 5 });
    expect(() => pastKeyValues(cache, ort.Tensor)).toThrow(/^cache layer 0: expected rows that stand for one token each .*received a row of count \d+/);
    expect(pastKeyValues(cache, ort.Tensor, { allowMerged: true })['past_key_values.0.key']!.dims).toEqual([1, KVH, 5, D]);
    const bf = filled({ dtype: 'bf16' });
    expect(() => pastKeyValues(bf, ort.Tensor)).toThrow(/^opts\.dtype: expected 'f32' \| 'f16' \(a bf16 cache has no onnxruntime type in JS\), received undefined$/);
    expect(pastKeyValues(bf, ort.Tensor, { dtype: 'f32' })['past_key_values.1.value']!.type).toBe('float32');
  });
});

describe('appendPresent', () => {
  function presents(seed: number, total: number) {
    const rng = mulberry32(seed);
    const out: Record<string, ort.Tensor> = {};
    for (let l = 0; l < 2; l++) {
      for (const kind of ['key', 'value']) {
        out[`present.${l}.${kind}`] = new ort.Tensor('float32', randomTensor(rng, 'f32', [KVH, total, D]).data, [1, KVH, total, D]);
      }
    }
    return out;
  }

  test('appends the newest n rows of every layer, as appending those rows by hand does', () => {
    const outputs = presents(8, 9);
    const viaHelper = new KvCache({ nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 16, dtype: 'f32' });
    const byHand = new KvCache({ nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 16, dtype: 'f32' });
    appendPresent(viaHelper, outputs, 4);
    for (let l = 0; l < 2; l++) {
      const rows = (t: ort.Tensor) => {
        const src = t.data as Float32Array;
        const out = new Float32Array(KVH * 4 * D);
        for (let h = 0; h < KVH; h++) out.set(src.subarray((h * 9 + 5) * D, (h * 9 + 9) * D), h * 4 * D);
        return { dtype: 'f32', shape: [KVH, 4, D], data: out } as Tensor<'f32'>;
      };
      byHand.append(l, rows(outputs[`present.${l}.key`]!), rows(outputs[`present.${l}.value`]!));
      const [a, b] = [viaHelper.export(l), byHand.export(l)];
      expect(bits(a.k.data)).toEqual(bits(b.k.data));
      expect(bits(a.v.data)).toEqual(bits(b.v.data));
    }
    const named = new KvCache({ nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 16, dtype: 'f32' });
    const renamed = Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name.replace('present', 'kv'), t]));
    appendPresent(named, renamed, 2, { names: (l, kind) => `kv.${l}.${kind}` });
    expect(Array.from(named.lengths().data)).toEqual([2, 2, 2, 2]);
  });

  test('a missing or malformed output throws before any layer changes', () => {
    const cache = new KvCache({ nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 16, dtype: 'f32' });
    const outputs: Record<string, unknown> = presents(9, 3);
    delete outputs['present.1.value'];
    expect(() => appendPresent(cache, outputs, 1)).toThrow(/^outputs\["present\.1\.value"\]: expected a tensor \{ dtype, shape, data \}.*received undefined$/);
    outputs['present.1.value'] = new ort.Tensor('float32', new Float32Array(2 * KVH * 3 * D), [2, KVH, 3, D]);
    expect(() => appendPresent(cache, outputs, 1)).toThrow(/^outputs\["present\.1\.value"\]\.dims\[0\] \(batch\): expected 1/);
    expect(Array.from(cache.lengths().data)).toEqual([0, 0, 0, 0]);
  });

  test('a layer of the wrong shape, or no room in the cache, throws before any layer changes', () => {
    const cache = new KvCache({ nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 5, dtype: 'f32' });
    const outputs = presents(10, 4);
    outputs['present.1.key'] = new ort.Tensor('float32', new Float32Array(KVH * 4 * (D + 1)), [1, KVH, 4, D + 1]);
    expect(() => appendPresent(cache, outputs, 2)).toThrow(/^outputs\["present\.1\.key"\]: expected the last 2 positions of shape/);
    expect(Array.from(cache.lengths().data)).toEqual([0, 0, 0, 0]);
    const good = presents(11, 4);
    appendPresent(cache, good, 3);
    expect(() => appendPresent(cache, good, 3)).toThrow(/^n: expected at most 2 new positions/);
    expect(Array.from(cache.lengths().data)).toEqual([3, 3, 3, 3]);
  });
});
