// KvCache's device option where no CUDA device is present (CI): device
// 'cuda' falls back to the CPU cache with identical results, reports
// device 'cpu', and enforces the device's rules (lib/kv/device.ts) so that
// code written for a GPU cache fails the same way everywhere. With a device,
// test/gpu/cuda-kv-cache.test.ts compares the two caches instead.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvCompressionPolicy, type Tensor } from '../../lib/index.js';
import { cudaAvailability } from '../../lib/cuda.js';
import { randomTensor3 as randomWith } from './helpers.js';
import { mulberry32 } from '../reference/random.js';

/** A random [d0, d1, d2] tensor from its own seed. */
function randomTensor3<D extends 'f32' | 'f16' | 'bf16'>(dtype: D, shape: [number, number, number], seed: number, amp = 1): Tensor<D> {
  return randomWith(mulberry32(seed), dtype, shape, amp) as Tensor<D>;
}

const hasDevice = cudaAvailability().available;

function make(device?: 'cpu' | 'cuda', extra: Record<string, unknown> = {}): KvCache {
  return new KvCache({ nLayers: 2, nKvHeads: 2, headDim: 64, capacity: 512, dtype: 'f16', ...(device ? { device } : {}), ...extra });
}

function fill(c: KvCache, seed: number): void {
  for (let l = 0; l < c.nLayers; l++) {
    c.append(l, randomTensor3('f32', [2, 97 + l, 64], seed + l), randomTensor3('f32', [2, 97 + l, 64], seed + 10 + l));
    c.attend(l, randomTensor3('f32', [4, 5, 64], seed + 20 + l) as Tensor<'f32'>, { accumulateMass: true });
  }
}

describe('KvCache device option', () => {
  test('defaults to the CPU; bad values are named', () => {
    expect(make().device).toBe('cpu');
    expect(make('cpu').device).toBe('cpu');
    expect(() => make('gpu' as 'cuda')).toThrow(/options\.device: expected 'cpu' \| 'cuda', received "gpu"/);
    expect(() => make(1 as unknown as 'cuda')).toThrow(TypeError);
    expect(() => make('cuda', { devise: 'cuda' })).toThrow(/devise.*did you mean "device"/);
  });

  test.skipIf(hasDevice)("device 'cuda' without a device runs on the CPU with the same results", () => {
    const a = make('cuda'), b = make('cpu');
    expect(a.device).toBe('cpu');
    fill(a, 5);
    fill(b, 5);
    const q = randomTensor3('f32', [4, 1, 64], 99) as Tensor<'f32'>;
    expect(Array.from(a.attend(1, q).output.data)).toEqual(Array.from(b.attend(1, q).output.data));
    const ra = a.compress('snapkv', { keep: 40 }), rb = b.compress('snapkv', { keep: 40 });
    expect(ra.tokensAfter).toBe(rb.tokensAfter);
    expect(Array.from(a.export(0).positions.data)).toEqual(Array.from(b.export(0).positions.data));
  });

  test('device rules: f32 caches, odd head sizes, CPU-only policies, softcap', () => {
    const code = { code: 'ERR_UNSUPPORTED' };
    expect(() => make('cuda', { dtype: 'f32' })).toThrow(expect.objectContaining(code));
    expect(() => make('cuda', { dtype: 'f32' })).toThrow(/dtype 'f32' is not stored on the device/);
    expect(() => make('cuda', { headDim: 96 })).toThrow(/headDim 96/);
    expect(() => make('cuda', { autoCompress: { policy: 'expected_attention', budget: { keep: 64 } } })).toThrow(expect.objectContaining(code));
    const c = make('cuda');
    fill(c, 7);
    const before = Array.from(c.lengths().data);
    const refused: KvCompressionPolicy[] = ['expected_attention', { name: 'random', seed: 1 } as KvCompressionPolicy, 'ems'];
    for (const p of refused) {
      expect(() => c.compress(p, { keep: 40 }), JSON.stringify(p)).toThrow(expect.objectContaining(code));
    }
    expect(() => c.attend(0, randomTensor3('f32', [4, 1, 64], 3) as Tensor<'f32'>, { softcap: 30 })).toThrow(/softcap/);
    expect(Array.from(c.lengths().data)).toEqual(before);
    // What the device runs is accepted (on the CPU here, on the GPU with a device).
    const accepted = [
      'streamingllm', 'knorm', 'h2o', 'tova', 'snapkv', { name: 'pyramidkv' }, { name: 'adakv', scorer: 'knorm' },
      { name: 'knorm', merge: true }, { name: 'razor', retrievalHeads: [[true, false], [false, true]] },
    ] as KvCompressionPolicy[];
    for (const p of accepted) {
      const d = make('cuda');
      fill(d, 11);
      const r = d.compress(p, { keep: 60 });
      if (typeof p === 'object' && p.name === 'razor') expect(r.tokensAfter, 'razor').toBeLessThan(r.tokensBefore);
      else expect(r.tokensAfter, JSON.stringify(p)).toBe(2 * 2 * 60);
    }
  });

  test.skipIf(hasDevice)("int8 / int4 caches with device 'cuda' run (here on the CPU) like CPU caches", () => {
    for (const dtype of ['int8', 'int4']) {
      const a = make('cuda', { dtype, groupSize: 8, residual: 16 }), b = make('cpu', { dtype, groupSize: 8, residual: 16 });
      fill(a, 17);
      fill(b, 17);
      a.compress({ name: 'knorm', merge: true } as KvCompressionPolicy, { keep: 50 });
      b.compress({ name: 'knorm', merge: true } as KvCompressionPolicy, { keep: 50 });
      expect(Array.from(a.export(1).k.data)).toEqual(Array.from(b.export(1).k.data));
    }
  });

  test("sparse: Quest runs with device 'cuda' (every device dtype); TidalDecode and block retrieval are refused, changing nothing", () => {
    const code = { code: 'ERR_UNSUPPORTED' };
    const q = randomTensor3('f32', [4, 1, 64], 31) as Tensor<'f32'>;
    const others = [{ method: 'tidal', budget: 32, selectLayer: 1 }, { method: 'blocks', budget: 32 }] as const;
    for (const sparse of others) {
      const c = make('cuda');
      fill(c, 19);
      const before = Array.from(c.lengths().data);
      expect(() => c.attend(1, q, { sparse }), sparse.method).toThrow(expect.objectContaining(code));
      expect(() => c.attend(1, q, { sparse }), sparse.method).toThrow(/runs on CPU caches only \(the device runs 'quest'\)/);
      expect(Array.from(c.lengths().data)).toEqual(before);
    }
    // Accepted everywhere; without a device it runs on the CPU with the CPU cache's results.
    for (const dtype of ['f16', 'bf16', 'int8', 'int4']) {
      const extra = dtype.startsWith('int') ? { dtype, groupSize: 8, residual: 16 } : { dtype };
      const a = make('cuda', extra), b = make('cpu', extra);
      fill(a, 29);
      fill(b, 29);
      const sparse = { method: 'quest', budget: 32, pageSize: 8, gqa: 'max', sinks: 4 } as const;
      const x = a.attend(0, q, { sparse, returnSelected: true }), y = b.attend(0, q, { sparse, returnSelected: true });
      // 97 rows: 4 pages of 8, the current one holding 1 row: 25 rows per KV head.
      expect(Array.from(x.selected!.data).filter((i) => i >= 0).length, dtype).toBe(2 * 25);
      expect(a.questSummaries(0).pageSize, dtype).toBe(8);
      if (!hasDevice) {
        expect(Array.from(x.selected!.data), dtype).toEqual(Array.from(y.selected!.data));
        expect(Array.from(x.output.data), dtype).toEqual(Array.from(y.output.data));
        expect(Array.from(a.questSummaries(0).kmin.data), dtype).toEqual(Array.from(b.questSummaries(0).kmin.data));
      }
    }
  });

  test('a device-rule refusal on a CPU cache does not apply', () => {
    const c = make('cpu', { dtype: 'int8' });
    fill(c, 13);
    expect(c.compress('expected_attention', { keep: 40 }).tokensAfter).toBe(2 * 2 * 40);
  });
});
