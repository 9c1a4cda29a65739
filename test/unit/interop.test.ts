// Ecosystem tensors in: onnxruntime-node and transformers.js Tensors (the
// real classes), and our form with a leading batch dimension of 1, give the
// same bits as plain tensors through attention, KvCache append / attend /
// compress / export, the stateless kv functions and the retrieval-head
// scores; and the memory handed to the native code is the caller's own.
//
//   q, queries      f32      [1?, nHeads, nQ, headDim]
//   k, v            f32|f16  [1?, nKvHeads, nKv, headDim]
//   keyMass, scores f32      [1?, nKvHeads, nKv]
//   mask            bool|f32 [nQ, nKv]            (no batch dimension)
//   indices         i32      [1?, nKvHeads, nSel]
import { afterEach, describe, expect, test, vi } from 'vitest';
import * as ort from 'onnxruntime-node';
import {
  attention, attentionAsync, compressKv, KvCache, scoreKv, scoreRetrievalHeads, selectKv,
  type FloatDType, type Tensor,
} from '../../lib/index.js';
import { native, type NativeKvAppendParams, type NativeKvAttendParams } from '../../lib/native.js';
import { mulberry32 } from '../reference/random.js';
import { bits, FORMS, inForm, randomTensor } from '../fixtures/interop-tensors.js';

const [H, KVH, NQ, NKV, D] = [4, 2, 3, 10, 8];
const ECO = FORMS.filter((f) => f !== 'plain');

function kvInputs(seed: number, dtype: FloatDType) {
  const rng = mulberry32(seed);
  return {
    q: randomTensor(rng, 'f32', [H, NQ, D]),
    k: randomTensor(rng, dtype, [KVH, NKV, D]) as Tensor<'f32' | 'f16'>,
    v: randomTensor(rng, dtype, [KVH, NKV, D]) as Tensor<'f32' | 'f16'>,
  };
}

describe('attention: every form gives the plain result, bit for bit', () => {
  for (const form of ECO) {
    for (const dtype of ['f32', 'f16'] as const) {
      test(`${form}, k/v ${dtype}: output, lse, keyMass (sync and async)`, async () => {
        const { q, k, v } = kvInputs(1, dtype);
        const opts = { causal: true, returnLse: true, returnKeyMass: true };
        const ref = attention(q, k, v, opts);
        for (const got of [attention(inForm(q, form), inForm(k, form), inForm(v, form), opts),
          await attentionAsync(inForm(q, form), inForm(k, form), inForm(v, form), opts)]) {
          expect(got.output.shape).toEqual([H, NQ, D]);
          expect(bits(got.output.data)).toEqual(bits(ref.output.data));
          expect(bits(got.lse!.data)).toEqual(bits(ref.lse!.data));
          expect(bits(got.keyMass!.data)).toEqual(bits(ref.keyMass!.data));
        }
      });
    }
    test(`${form}: bool and additive masks [nQ, nKv], int32 indices [1?, nKvHeads, nSel]`, () => {
      const { q, k, v } = kvInputs(2, 'f32');
      const boolMask: Tensor<'bool'> = { dtype: 'bool', shape: [NQ, NKV], data: Uint8Array.from({ length: NQ * NKV }, (_, i) => (i * 7) % 3 === 0 ? 0 : 1) };
      const addMask: Tensor<'f32'> = { dtype: 'f32', shape: [NQ, NKV], data: Float32Array.from({ length: NQ * NKV }, (_, i) => (i % 4) * -0.5) };
      const indices: Tensor<'i32'> = { dtype: 'i32', shape: [KVH, 4], data: Int32Array.from([0, 3, 5, 9, 1, 2, 8, 9]) };
      // A mask has no batch dimension: every form carries its plain [nQ, nKv].
      const flat = (m: Tensor<'bool' | 'f32'>) => inForm(m, form, false);
      for (const [plainOpts, formOpts] of [
        [{ mask: boolMask }, { mask: flat(boolMask) }],
        [{ mask: addMask }, { mask: flat(addMask) }],
        [{ indices }, { indices: inForm(indices, form) }],
      ] as const) {
        const ref = attention(q, k, v, plainOpts as never);
        const got = attention(inForm(q, form), inForm(k, form), inForm(v, form), formOpts as never);
        expect(bits(got.output.data)).toEqual(bits(ref.output.data));
      }
    });
  }

  test('an onnxruntime tensor in pinned host memory (location cpu-pinned) reads like cpu', () => {
    const { q, k, v } = kvInputs(3, 'f32');
    const pinned = ort.Tensor.fromPinnedBuffer('float32', k.data as Float32Array, [1, KVH, NKV, D]);
    expect(pinned.location).toBe('cpu-pinned');
    expect(bits(attention(q, pinned, v).output.data)).toEqual(bits(attention(q, k, v).output.data));
  });
});

describe('KvCache: append, attend, compress and export agree with plain tensors', () => {
  for (const form of ECO) {
    test(`${form}: f32 and f16 chunks, h2o mass, speckv drafts, async forms`, async () => {
      const rng = mulberry32(11);
      const opts = { nLayers: 2, nKvHeads: KVH, headDim: D, capacity: 64 };
      const plain = new KvCache(opts);
      const eco = new KvCache(opts);
      for (let chunk = 0; chunk < 3; chunk++) {
        const dtype = chunk === 1 ? 'f16' : 'f32';
        for (let l = 0; l < 2; l++) {
          const k = randomTensor(rng, dtype, [KVH, 5, D]) as Tensor<'f32' | 'f16'>;
          const v = randomTensor(rng, dtype, [KVH, 5, D]) as Tensor<'f32' | 'f16'>;
          const q = randomTensor(rng, 'f32', [H, 2, D]);
          plain.append(l, k, v);
          if (chunk === 2) await eco.appendAsync(l, inForm(k, form), inForm(v, form));
          else eco.append(l, inForm(k, form), inForm(v, form));
          const a = plain.attend(l, q, { accumulateMass: true, returnLse: true });
          const b = chunk === 2 ? await eco.attendAsync(l, inForm(q, form), { accumulateMass: true, returnLse: true })
            : eco.attend(l, inForm(q, form), { accumulateMass: true, returnLse: true });
          expect(bits(b.output.data)).toEqual(bits(a.output.data));
          expect(bits(b.lse!.data)).toEqual(bits(a.lse!.data));
        }
      }
      const drafts = [randomTensor(rng, 'f32', [H, 3, D]), randomTensor(rng, 'f32', [H, 3, D])];
      const counts = (r: { tokensBefore: number; tokensAfter: number }) => [r.tokensBefore, r.tokensAfter];
      expect(counts(eco.compress('speckv', { keep: 12 }, { draftQueries: drafts.map((d) => inForm(d, form)) })))
        .toEqual(counts(plain.compress('speckv', { keep: 12 }, { draftQueries: drafts })));
      const h2o = { name: 'h2o', recent: 2 } as const; // scores with the key mass attend accumulated
      eco.compress(h2o, { keep: 8 });
      plain.compress(h2o, { keep: 8 });
      for (let l = 0; l < 2; l++) {
        const [a, b] = [plain.export(l), eco.export(l)];
        expect(b.k.shape).toEqual([KVH, 8, D]);
        for (const key of ['k', 'v', 'positions', 'counts'] as const) expect(bits(b[key].data)).toEqual(bits(a[key].data));
      }
    });
  }
});

describe('stateless kv functions and retrieval-head scores agree with plain tensors', () => {
  for (const form of ECO) {
    test(`${form}: scoreKv (snapkv, h2o keyMass, speckv drafts), selectKv, compressKv`, () => {
      const { q, k, v } = kvInputs(21, 'f16');
      const rng = mulberry32(22);
      const keyMass = randomTensor(rng, 'f32', [KVH, NKV]);
      const drafts = randomTensor(rng, 'f32', [H, 2, D]);
      const f = <D extends 'f32' | 'f16'>(t: Tensor<D>) => inForm(t, form);
      const cases: [string, Parameters<typeof scoreKv>[1], Parameters<typeof scoreKv>[1]][] = [
        ['snapkv', { k, v, queries: q }, { k: f(k), v: f(v), queries: f(q) }],
        ['h2o', { k, v, keyMass }, { k: f(k), v: f(v), keyMass: f(keyMass) }],
        ['speckv', { k, v, draftQueries: drafts }, { k: f(k), v: f(v), draftQueries: f(drafts) }],
      ];
      for (const [policy, plainIn, ecoIn] of cases) {
        const ref = scoreKv(policy as 'snapkv', plainIn);
        const got = scoreKv(policy as 'snapkv', ecoIn);
        expect(bits(got.data), policy).toEqual(bits(ref.data));
        expect(bits(selectKv(f(got), { keep: 4 }).data)).toEqual(bits(selectKv(ref, { keep: 4 }).data));
      }
      const ref = compressKv({ k, v, queries: q }, 'tova', { keep: 5 });
      const got = compressKv({ k: f(k), v: f(v), queries: f(q) }, 'tova', { keep: 5 });
      for (const key of ['k', 'v', 'indices'] as const) expect(bits(got[key].data)).toEqual(bits(ref[key].data));
    });

    test(`${form}: scoreRetrievalHeads`, () => {
      const rng = mulberry32(31);
      const queries = randomTensor(rng, 'f32', [H, 12, D]);
      const keys = randomTensor(rng, 'f16', [KVH, 12, D]);
      const ref = scoreRetrievalHeads({ queries, keys, period: 5 });
      expect(scoreRetrievalHeads({ queries: inForm(queries, form), keys: inForm(keys, form), period: 5 })).toEqual(ref);
    });
  }
});

describe('no copies on the way in: the native code gets the caller\'s memory', () => {
  afterEach(() => vi.restoreAllMocks());

  const sameMemory = (seen: ArrayBufferView, source: ArrayBufferView) => {
    expect(seen.buffer).toBe(source.buffer);
    expect(seen.byteOffset).toBe(source.byteOffset);
    expect(seen.byteLength).toBe(source.byteLength);
  };

  test('attention and kvScore receive the data arrays of onnxruntime / transformers.js tensors', () => {
    const { q, k, v } = kvInputs(41, 'f16');
    const attn = vi.spyOn(native(), 'attention');
    const score = vi.spyOn(native(), 'kvScore');
    for (const form of ['ort', 'transformers.js'] as const) {
      const [oq, ok, ov] = [inForm(q, form), inForm(k, form), inForm(v, form)] as ort.Tensor[];
      attention(oq!, ok!, ov!);
      const [, pq, pk, pv] = attn.mock.lastCall!; // the positional form: (header, q, k, v, ...)
      sameMemory(pq, oq!.data as Float32Array);
      sameMemory(pk, ok!.data as Uint16Array);
      sameMemory(pv, ov!.data as Uint16Array);
      scoreKv('snapkv', { k: ok!, v: ov!, queries: oq! });
      const s = score.mock.lastCall![0];
      sameMemory(s.k, ok!.data as Uint16Array);
      sameMemory(s.q!, oq!.data as Float32Array);
    }
    expect(attn).toHaveBeenCalledTimes(2);
  });

  test('KvCache append and attend hand the native cache the tensors\' own memory', () => {
    const addon = native();
    const Handle = addon.KvCacheHandle;
    const appends: NativeKvAppendParams[] = [];
    const attends: NativeKvAttendParams[] = [];
    addon.KvCacheHandle = class extends Handle {
      append(p: NativeKvAppendParams) { appends.push(p); return super.append(p); }
      // The sync CPU append's positional form (lib/kv/cache.ts): k is args[2], v args[6].
      appendRows(...a: Parameters<InstanceType<typeof Handle>['appendRows']>) {
        appends.push({ k: a[2], v: a[6] } as NativeKvAppendParams);
        return super.appendRows(...a);
      }
      attend(p: NativeKvAttendParams) { attends.push(p); return super.attend(p); }
    } as typeof Handle;
    try {
      const cache = new KvCache({ nLayers: 1, nKvHeads: KVH, headDim: D, capacity: 16, dtype: 'f32' });
      const { q, k, v } = kvInputs(42, 'f32');
      const [oq, ok, ov] = [inForm(q, 'ort'), inForm(k, 'ort'), inForm(v, 'ort')] as ort.Tensor[];
      cache.append(0, ok!, ov!);
      cache.attend(0, oq!);
      expect(appends).toHaveLength(1);
      sameMemory(appends[0]!.k, ok!.data as Float32Array);
      sameMemory(appends[0]!.v, ov!.data as Float32Array);
      sameMemory(attends[0]!.q, oq!.data as Float32Array);
    } finally {
      addon.KvCacheHandle = Handle;
    }
  });
});
