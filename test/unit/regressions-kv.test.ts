// Regressions of issue 12 in the KV cache: a failed append (with or without
// autoCompress) changes nothing, impossible autoCompress configurations are
// refused at construction, non-finite keys / values / queries are refused,
// memoryBytes counts the remembered query windows, positions cannot wrap
// past 2^31 - 1, and scale / softcap are checked alike for every cache dtype.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvCacheDtype, type Tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { mulberry32, randomF32 } from '../reference/random.js';

const f32 = (shape: number[], data: Float32Array): Tensor<'f32'> => ({ dtype: 'f32', shape, data });
const rand = (seed: number, H: number, n: number, d: number) => f32([H, n, d], randomF32(mulberry32(seed), H * n * d));

/** Everything a caller can observe of a cache: lengths and every layer's export. */
function snapshot(c: KvCache): string {
  const layers = Array.from({ length: c.nLayers }, (_, l) => {
    const e = c.export(l, { dtype: 'f32' });
    return [Array.from(e.k.data), Array.from(e.v.data), Array.from(e.positions.data), Array.from(e.counts.data)];
  });
  return JSON.stringify([Array.from(c.lengths().data), layers]);
}

describe('autoCompress: impossible configurations are refused at construction', () => {
  const base = { nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 1000 };
  const cases: [string, unknown, RegExp][] = [
    ['streamingllm sinks above keep', { policy: 'streamingllm', budget: { keep: 2 } }, /budget.*at least 4 tokens per head.*4 sink tokens.*received 2/],
    ['expected_attention sinks above keep', { policy: { name: 'expected_attention', sinks: 8 }, budget: { keep: 5 } }, /at least 8 tokens/],
    ['h2o recent above keep', { policy: 'h2o', budget: { keep: 16 } }, /at least 32 tokens per head.*32 recent tokens/],
    ['snapkv window above keep', { policy: { name: 'snapkv', window: 20 }, budget: { keep: 10 } }, /at least 20 tokens per head.*observation window/],
    ['speckv needs draft queries', { policy: 'speckv', budget: { keep: 64 } }, /speckv.*draft queries/],
  ];
  for (const [label, autoCompress, message] of cases) {
    test(label, () => {
      expect(() => new KvCache({ ...base, autoCompress } as never)).toThrow(message);
    });
  }

  test('the observation window is bounded by the cache window', () => {
    // snapkv's window 32 > keep 10, but the cache remembers only 8 queries: 8 <= 10 fits.
    expect(() => new KvCache({ ...base, window: 8, autoCompress: { policy: 'snapkv', budget: { keep: 10 } } })).not.toThrow();
    expect(() => new KvCache({ ...base, window: 16, autoCompress: { policy: 'snapkv', budget: { keep: 10 } } })).toThrow(/at least 16 tokens/);
  });

  test('the issue 12 case: keep 2 under streamingllm never reaches an append', () => {
    let cache: KvCache | undefined;
    expect(() => { cache = new KvCache({ ...base, autoCompress: { policy: 'streamingllm', budget: { keep: 2 } } }); }).toThrow(RangeError);
    expect(cache).toBeUndefined();
  });
});

describe('non-finite keys, values and queries are refused before anything changes', () => {
  for (const dtype of ['f32', 'f16', 'bf16', 'int8', 'int4'] as KvCacheDtype[]) {
    test(`append (${dtype} cache): NaN / Infinity in k or v, named with its index`, () => {
      const c = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 4, capacity: 64, dtype, residual: 4, groupSize: 4 });
      c.append(0, rand(1, 2, 10, 4), rand(2, 2, 10, 4));
      const before = snapshot(c);
      const bad = (x: number, at: number) => { const t = rand(3, 2, 3, 4); t.data[at] = x; return t; };
      expect(() => c.append(0, bad(NaN, 13), rand(4, 2, 3, 4))).toThrow(/^k: expected finite values, received NaN at \[1, 0, 1\]/);
      expect(() => c.append(0, rand(4, 2, 3, 4), bad(-Infinity, 2))).toThrow(/^v: expected finite values, received -Infinity at \[0, 0, 2\]/);
      expect(snapshot(c)).toBe(before);
    });
  }

  test('f16 / bf16 inputs: non-finite bit patterns are refused too', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 2, capacity: 8 });
    const ok = { dtype: 'f16' as const, shape: [1, 1, 2], data: Uint16Array.of(0x3c00, 0x3c00) };
    expect(() => c.append(0, { dtype: 'f16', shape: [1, 1, 2], data: Uint16Array.of(0x3c00, 0x7e00) }, ok)).toThrow(/k: expected finite values, received NaN at \[0, 0, 1\]/);
    expect(() => c.append(0, ok, { dtype: 'bf16', shape: [1, 1, 2], data: Uint16Array.of(0x7f80, 0) })).toThrow(/v: expected finite values, received Infinity/);
    expect(Array.from(c.lengths().data)).toEqual([0]);
  });

  test('the issue 12 case: autoCompress and a NaN key, the lengths stay', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 64, dtype: 'f32', autoCompress: { policy: 'knorm', budget: { keep: 2 }, interval: 1 } });
    c.append(0, rand(1, 1, 2, 4), rand(2, 1, 2, 4));
    const before = snapshot(c);
    const k = rand(3, 1, 4, 4);
    k.data[0] = NaN;
    expect(() => c.append(0, k, rand(4, 1, 4, 4))).toThrow(/k: expected finite values, received NaN at \[0, 0, 0\]/);
    expect(snapshot(c)).toBe(before);
  });

  test('appendAsync refuses them too, cache unchanged', async () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 64, dtype: 'f32' });
    c.append(0, rand(1, 1, 5, 4), rand(2, 1, 5, 4));
    const before = snapshot(c);
    const k = rand(3, 1, 2, 4);
    k.data[7] = NaN;
    await expect(c.appendAsync(0, k, rand(4, 1, 2, 4))).rejects.toThrow(/k: expected finite values/);
    expect(snapshot(c)).toBe(before);
  });

  for (const dtype of ['f32', 'f16', 'int4'] as KvCacheDtype[]) {
    test(`attend (${dtype} cache): NaN queries are refused, nothing remembered`, () => {
      const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 64, dtype, window: 4, autoCompress: { policy: 'snapkv', budget: { keep: 8 }, interval: 4 } });
      c.append(0, rand(1, 1, 6, 4), rand(2, 1, 6, 4));
      const q = rand(3, 2, 1, 4);
      q.data[5] = NaN;
      expect(() => c.attend(0, q)).toThrow(/^q: expected finite values, received NaN at \[1, 0, 1\]/);
      // No queries were remembered: snapkv still waits, so 7 more tokens do not compress.
      c.append(0, rand(4, 1, 7, 4), rand(5, 1, 7, 4));
      expect(Array.from(c.lengths().data)).toEqual([13]);
    });
  }
});

describe('autoCompress: an append whose compression fails is undone', () => {
  // Remembered queries of 3e38 (finite) make expected_attention's scores
  // overflow to NaN, so the compression that follows the append fails
  // (the NaN case of issue 12, with inputs the append cannot refuse). The
  // cache remembers 2 queries, so a later attend replaces them.
  const huge = (H: number, n: number, d: number) => f32([H, n, d], new Float32Array(H * n * d).fill(3e38));
  const make = (dtype: KvCacheDtype, capacity = 200) => new KvCache({
    nLayers: 1, nKvHeads: 2, headDim: 4, capacity, dtype, residual: 4, groupSize: 4, window: 2,
    autoCompress: { policy: 'expected_attention', budget: { keep: 8 }, interval: 4 },
  });
  for (const dtype of ['f32', 'f16', 'bf16', 'int8', 'int4'] as KvCacheDtype[]) {
    for (const sync of [true, false]) {
      test(`${dtype}, ${sync ? 'append' : 'appendAsync'}: lengths, rows (quantized blocks and f16 tail) and positions as before`, async () => {
        const c = make(dtype);
        c.append(0, rand(1, 2, 7, 4), rand(2, 2, 7, 4));
        c.attend(0, huge(4, 2, 4), { causal: false });
        const before = snapshot(c);
        const k = f32([2, 9, 4], new Float32Array(72).fill(1)), v = rand(4, 2, 9, 4);
        if (sync) expect(() => c.append(0, k, v)).toThrow(/NaN/);
        else await expect(c.appendAsync(0, k, v)).rejects.toThrow(/NaN/);
        expect(snapshot(c)).toBe(before);
        // The cache still works: with sane queries the same append goes in and compresses.
        c.attend(0, rand(5, 4, 2, 4), { causal: false });
        c.append(0, k, v);
        expect(Array.from(c.lengths().data)).toEqual([8, 8]);
        // Positions count on from before the failed append: 7 + 9 tokens are
        // 0..15, so the next token is 16 (not 25).
        c.append(0, rand(6, 2, 1, 4), rand(7, 2, 1, 4));
        const e = c.export(0);
        expect(e.positions.data[e.lengths[0]! - 1]).toBe(16);
      });
    }
  }

  test('a policy that would keep a head over the capacity: refused, no head compressed', () => {
    // Razor keeps every token of a retrieval head (head 0). Before the fix the
    // other head was compressed first, then the append was refused.
    const c = new KvCache({
      nLayers: 1, nKvHeads: 2, headDim: 4, capacity: 20, dtype: 'f32',
      autoCompress: { policy: { name: 'razor', retrievalHeads: [[true, false]] }, budget: { keep: 8 }, interval: 10 },
    });
    c.append(0, rand(1, 2, 17, 4), rand(2, 2, 17, 4));
    const before = snapshot(c);
    expect(() => c.append(0, rand(3, 2, 4, 4), rand(4, 2, 4, 4))).toThrow(/head 0 would keep 21 tokens, over the capacity of 20/);
    expect(snapshot(c)).toBe(before);
  });

  test('a prefill that overflows the capacity compresses with it, or changes nothing', () => {
    const c = make('f32', 20);
    c.append(0, rand(1, 2, 10, 4), rand(2, 2, 10, 4));
    c.attend(0, huge(4, 2, 4), { causal: false });
    const before = snapshot(c);
    expect(() => c.append(0, f32([2, 12, 4], new Float32Array(96).fill(1)), rand(4, 2, 12, 4))).toThrow(/NaN/);
    expect(snapshot(c)).toBe(before);
    c.attend(0, rand(7, 4, 2, 4), { causal: false });
    c.append(0, rand(3, 2, 12, 4), rand(4, 2, 12, 4));
    expect(Array.from(c.lengths().data)).toEqual([8, 8]);
  });
});

describe('memoryBytes counts the remembered query windows', () => {
  test('window 4096: the query window shows in memoryBytes', () => {
    const c = new KvCache({ nLayers: 2, nKvHeads: 1, headDim: 64, capacity: 64, dtype: 'f16', window: 4096 });
    c.append(0, rand(1, 1, 4, 64), rand(2, 1, 4, 64));
    const before = c.memoryBytes;
    c.attend(0, rand(3, 8, 1, 64));
    // The window is [nHeads = 8, 4096, headDim = 64] floats: 8 MiB.
    expect(c.memoryBytes - before).toBeGreaterThanOrEqual(8 * 4096 * 64 * 4);
    c.clear(0);
    expect(c.memoryBytes).toBe(0);
  });
});

describe('positions never wrap past 2^31 - 1', () => {
  test('counting on past INT32_MAX is refused, naming the layer; the cache is unchanged', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 2, capacity: 16, dtype: 'f32' });
    c.append(0, rand(1, 1, 1, 2), rand(2, 1, 1, 2), { positions: Int32Array.of(0x7fffffff - 2) });
    c.append(0, rand(1, 1, 2, 2), rand(2, 1, 2, 2)); // 2^31 - 2, 2^31 - 1: fits
    const before = snapshot(c);
    expect(() => c.append(0, rand(3, 1, 1, 2), rand(4, 1, 1, 2))).toThrow(/positions: .*2\^31 - 1.*layer 0/);
    expect(snapshot(c)).toBe(before);
    // Explicit positions still work.
    c.append(0, rand(3, 1, 1, 2), rand(4, 1, 1, 2), { positions: Int32Array.of(5) });
    expect(Array.from(c.lengths().data)).toEqual([4]);
  });
});

describe('scale and softcap are checked alike for every cache dtype', () => {
  const handle = (dtype: number) => {
    const h = new (native().KvCacheHandle)({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 64, dtype, groupSize: 4, residual: 0, window: 32 });
    const k = new Float32Array(32).fill(0.5);
    h.append({ layer: 0, n: 8, k, kDtype: 0, kStrides: [32, 4], v: k, vDtype: 0, vStrides: [32, 4] });
    return h;
  };
  const attend = (h: ReturnType<typeof handle>, scale: number, softcap: number) => h.attend({
    layer: 0, nHeads: 1, nQ: 1, q: new Float32Array(4).fill(1), qStrides: [4, 4], scale, softcap,
    causal: true, accumulateMass: false, remember: false, out: new Float32Array(4),
  });
  for (const [name, code] of [['f32', 0], ['f16', 1], ['bf16', 2], ['int8', 3], ['int4', 4]] as const) {
    test(`${name}: scale Infinity / NaN and softcap Infinity are refused`, () => {
      const h = handle(code);
      expect(() => attend(h, Infinity, 0)).toThrow(/scale: expected a finite number/);
      expect(() => attend(h, NaN, 0)).toThrow(/scale/);
      expect(() => attend(h, 1, Infinity)).toThrow(/softcap: expected a finite number/);
      expect(() => attend(h, 0.5, 0)).not.toThrow();
    });
  }
});
