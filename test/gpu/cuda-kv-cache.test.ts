// KvCache with device 'cuda' against the CPU KvCache fed the same calls:
// appends in several chunks (f32 and f16 inputs), decode (nQ 1, 3) and
// prefill (nQ 40) attention over each head's own length, key-mass
// accumulation, compression with every device scorer under uniform,
// pyramid (snapkv scores) and adakv budgets (ragged heads), merging (razor,
// merge: true) against the CPU's rows bit for bit, KIVI int8/int4 blocks
// byte for byte the CPU's, then attention again over the
// compacted heads. headDim 64/128, f16 and bf16, GQA groups 1 and 4, lengths
// 1, 17, 300 and 4099.
//
// Tolerances: outputs within 1e-3 * max|v| (both sides compute in f32 on the
// same stored 16-bit K/V; the prefill path rounds q and P to the K/V dtype:
// 2^-8 * 2 for bf16), lse within 1e-3 * max(1, |lse|). Kept positions: equal
// for integer-valued scores (streamingllm, adakv over them); for float scores
// at least 99% of each head's kept set agrees (the device sums in another
// order, so near-ties may go either way).
//
// Without the CUDA build or a device every test here SKIPS (the describe title
// says why); test/unit/kv-cache-device.test.ts covers the CPU fallback.
import { describe, expect, test } from 'vitest';
import { attention, KvCache, type KvCompressionPolicy, type Tensor } from '../../lib/index.js';
import { cudaAvailability } from '../../lib/cuda.js';
import { native } from '../../lib/native.js';
import { randomTensor3 as randomWith } from '../unit/helpers.js';
import { mulberry32 } from '../reference/random.js';

/** A random [d0, d1, d2] tensor from its own seed. */
function randomTensor3<D extends 'f32' | 'f16' | 'bf16'>(dtype: D, shape: [number, number, number], seed: number, amp = 1): Tensor<D> {
  return randomWith(mulberry32(seed), dtype, shape, amp) as Tensor<D>;
}

const cuda = cudaAvailability();
const title = cuda.available ? `KvCache on cuda (${cuda.devices})` : `KvCache on cuda (skipped: ${cuda.reason})`;

interface Setup {
  nLayers: number;
  nKvHeads: number;
  group: number;
  headDim: number;
  dtype: 'f16' | 'bf16';
}

function pair(s: Setup, capacity = 8192): [KvCache, KvCache] {
  const o = { nLayers: s.nLayers, nKvHeads: s.nKvHeads, headDim: s.headDim, capacity, dtype: s.dtype };
  const gpu = new KvCache({ ...o, device: 'cuda' });
  const cpu = new KvCache(o);
  expect(gpu.device).toBe('cuda');
  expect(cpu.device).toBe('cpu');
  return [gpu, cpu];
}

let seed = 1;
function kvChunk(s: Setup, n: number, dtype: "f32" | "f16" = "f32"): [Tensor<"f32" | "f16">, Tensor<"f32" | "f16">] {
  return [randomTensor3(dtype, [s.nKvHeads, n, s.headDim], seed++), randomTensor3(dtype, [s.nKvHeads, n, s.headDim], seed++)];
}

function queries(s: Setup, nQ: number, amp = 1): Tensor<'f32'> {
  const t = randomTensor3('f32', [s.nKvHeads * s.group, nQ, s.headDim], seed++) as Tensor<'f32'>;
  for (let i = 0; i < t.data.length; i++) (t.data as Float32Array)[i]! *= amp;
  return t;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function expectSameAttend(gpu: KvCache, cpu: KvCache, layer: number, q: Tensor<'f32'>, tol: number, accumulateMass = false): void {
  const a = gpu.attend(layer, q, { returnLse: true, accumulateMass });
  const b = cpu.attend(layer, q, { returnLse: true, accumulateMass });
  const scale = Math.max(1e-6, maxAbs(b.output.data));
  for (let i = 0; i < b.output.data.length; i++) {
    expect(Math.abs(a.output.data[i]! - b.output.data[i]!), `out[${i}]`).toBeLessThanOrEqual(tol * scale);
  }
  for (let i = 0; i < b.lse!.data.length; i++) {
    const x = a.lse!.data[i]!, y = b.lse!.data[i]!;
    if (y === -Infinity) expect(x).toBe(-Infinity);
    else expect(Math.abs(x - y), `lse[${i}]`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(y)));
  }
}

/** Kept positions per head of one layer. */
function keptPositions(c: KvCache, layer: number): number[][] {
  const e = c.export(layer);
  const out: number[][] = [];
  for (let h = 0; h < c.nKvHeads; h++) {
    const m = e.positions.shape[1]!;
    out.push(Array.from(e.positions.data.subarray(h * m, h * m + e.lengths[h]!)));
  }
  return out;
}

function expectKeptAgree(gpu: KvCache, cpu: KvCache, layer: number, exact: boolean): void {
  const a = keptPositions(gpu, layer), b = keptPositions(cpu, layer);
  for (let h = 0; h < a.length; h++) {
    expect(a[h]!.length, `layer ${layer} head ${h} length`).toBe(b[h]!.length);
    if (exact) {
      expect(a[h], `layer ${layer} head ${h}`).toEqual(b[h]);
    } else {
      const set = new Set(b[h]);
      const same = a[h]!.filter((p) => set.has(p)).length;
      expect(same, `layer ${layer} head ${h} overlap`).toBeGreaterThanOrEqual(Math.floor(0.99 * b[h]!.length));
    }
  }
}

describe.skipIf(!cuda.available)(title, () => {
  const SETUPS: Setup[] = [
    { nLayers: 2, nKvHeads: 2, group: 4, headDim: 128, dtype: 'f16' },
    { nLayers: 2, nKvHeads: 3, group: 1, headDim: 64, dtype: 'bf16' },
  ];

  for (const s of SETUPS) {
    const tag = `d${s.headDim} g${s.group} ${s.dtype}`;

    test(`${tag}: append, decode and prefill attention match the CPU cache`, () => {
      const [gpu, cpu] = pair(s);
      for (const n of [1, 16, 283, 3799]) {  // 1, 17, 300, 4099 tokens
        const [k, v] = kvChunk(s, n, n % 2 ? 'f32' : 'f16');
        gpu.append(0, k, v);
        cpu.append(0, k, v);
        const tol = s.dtype === 'bf16' ? 2 * 2 ** -8 : 2 * 2 ** -11;
        expectSameAttend(gpu, cpu, 0, queries(s, 1), 1e-3);
        expectSameAttend(gpu, cpu, 0, queries(s, 3, 4), 1e-3);
        expectSameAttend(gpu, cpu, 0, queries(s, 40), Math.max(1e-3, tol));
      }
      expect(Array.from(gpu.lengths().data)).toEqual(Array.from(cpu.lengths().data));
      const a = gpu.export(0), b = cpu.export(0);
      expect(Array.from(a.k.data)).toEqual(Array.from(b.k.data));
      expect(Array.from(a.positions.data)).toEqual(Array.from(b.positions.data));
    });

    const POLICIES: { policy: KvCompressionPolicy; exact: boolean }[] = [
      { policy: 'streamingllm', exact: true },
      { policy: { name: 'pyramidkv' }, exact: false },
      { policy: { name: 'adakv', scorer: 'streamingllm', alpha: 0.2 } as KvCompressionPolicy, exact: true },
      { policy: 'knorm', exact: false },
      { policy: { name: 'h2o', recent: 8 } as KvCompressionPolicy, exact: false },
      { policy: 'tova', exact: false },
      { policy: 'snapkv', exact: false },
      { policy: { name: 'snapkv', window: 4, kernel: 3, pooling: 'max' } as KvCompressionPolicy, exact: false },
      { policy: { name: 'adakv', scorer: 'knorm', alpha: 0.2 } as KvCompressionPolicy, exact: false },
    ];
    for (const { policy, exact } of POLICIES) {
      test(`${tag}: compress ${JSON.stringify(policy)} keeps what the CPU keeps, then attends alike`, () => {
        const [gpu, cpu] = pair(s);
        for (let l = 0; l < s.nLayers; l++) {
          const [k, v] = kvChunk(s, 1000 + 37 * l);
          gpu.append(l, k, v);
          cpu.append(l, k, v);
          for (let i = 0; i < 3; i++) expectSameAttend(gpu, cpu, l, queries(s, 8, 3), 1e-3, true);
        }
        const ra = gpu.compress(policy, { keep: 300 });
        const rb = cpu.compress(policy, { keep: 300 });
        expect(ra.tokensAfter).toBe(rb.tokensAfter);
        for (let l = 0; l < s.nLayers; l++) {
          expectKeptAgree(gpu, cpu, l, exact);
          if (exact) expectSameAttend(gpu, cpu, l, queries(s, 1), 1e-3);
        }
      });
    }
  }

  for (const s of SETUPS) {
    const MERGES: { policy: KvCompressionPolicy; exactRows: boolean }[] = [
      // Razor: fixed targets (every evicted row into the compensation row): bit for bit.
      { policy: { name: 'razor', retrievalHeads: Array.from({ length: s.nLayers }, (_, l) => Array.from({ length: s.nKvHeads }, (_, h) => (l + h) % 3 === 0)) } as KvCompressionPolicy, exactRows: true },
      // Nearest-by-cosine targets: the device rounds the dots like the CPU (unfused, channel order): bit for bit.
      { policy: { name: 'streamingllm', merge: true } as KvCompressionPolicy, exactRows: true },
      // knorm's selection may differ on a near-tie of key norms (sums in another order): most rows agree.
      { policy: { name: 'knorm', merge: true } as KvCompressionPolicy, exactRows: false },
    ];
    for (const { policy, exactRows } of MERGES) {
      test(`d${s.headDim} ${s.dtype}: merge ${JSON.stringify(policy).slice(0, 60)} folds rows like the CPU, then attends alike`, () => {
        const [gpu, cpu] = pair(s);
        for (let l = 0; l < s.nLayers; l++) {
          const [k, v] = kvChunk(s, 700 + 51 * l);
          gpu.append(l, k, v);
          cpu.append(l, k, v);
          expectSameAttend(gpu, cpu, l, queries(s, 4), 1e-3, true);
        }
        gpu.compress(policy, { keep: 200 });
        cpu.compress(policy, { keep: 200 });
        for (let l = 0; l < s.nLayers; l++) {
          const a = gpu.export(l, { dtype: 'f32' }), b = cpu.export(l, { dtype: 'f32' });
          expect(Array.from(a.lengths)).toEqual(Array.from(b.lengths));
          expect(Array.from(a.positions.data)).toEqual(Array.from(b.positions.data));
          const d = s.headDim, rows = b.counts.data.length;
          let same = 0;
          for (let r = 0; r < rows; r++) {
            let eq = a.counts.data[r] === b.counts.data[r];
            for (let c = 0; c < d && eq; c++) eq = a.k.data[r * d + c] === b.k.data[r * d + c] && a.v.data[r * d + c] === b.v.data[r * d + c];
            if (eq) same++;
          }
          if (exactRows) expect(same, `layer ${l}: rows equal bit for bit`).toBe(rows);
          else expect(same, `layer ${l}: rows equal bit for bit`).toBeGreaterThanOrEqual(Math.floor(0.98 * rows));
          let ca = 0, cb = 0;
          for (let r = 0; r < rows; r++) { ca += a.counts.data[r]!; cb += b.counts.data[r]!; }
          if (exactRows) expect(ca).toBe(cb);
          if (exactRows) expectSameAttend(gpu, cpu, l, queries(s, 2), 1e-3);
        }
      });
    }
  }

  for (const dtype of ['int8', 'int4'] as const) {
    test(`${dtype} (KIVI): blocks byte for byte the CPU's; attention over them; compress re-quantizes alike`, () => {
      const s = { nLayers: 1, nKvHeads: 2, group: 4, headDim: 128, dtype: 'f16' as const };
      const o = { nLayers: 1, nKvHeads: 2, headDim: 128, capacity: 4096, dtype, groupSize: 32, residual: 40 };
      const gpu = new KvCache({ ...o, device: 'cuda' }), cpu = new KvCache(o);
      expect(gpu.device).toBe('cuda');
      for (const n of [1, 30, 75, 1000]) {  // crosses group boundaries, then many groups at once
        const [k, v] = kvChunk(s, n, 'f16');
        gpu.append(0, k, v);
        cpu.append(0, k, v);
        const a = gpu.export(0, { dtype: 'f32' }), b = cpu.export(0, { dtype: 'f32' });
        expect(Array.from(a.k.data), `k after +${n}`).toEqual(Array.from(b.k.data));
        expect(Array.from(a.v.data), `v after +${n}`).toEqual(Array.from(b.v.data));
        // The device attends over f16 copies of the dequantized rows: compare with exact attention over them.
        const q = queries(s, 1);
        const got = gpu.attend(0, q, { remember: false }).output.data;
        const want = attention(q, a.k as Tensor<'f32'>, a.v as Tensor<'f32'>, { causal: true }).output.data;
        const scale = Math.max(1e-6, maxAbs(want));
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `out[${i}]`).toBeLessThanOrEqual(2e-3 * scale);
      }
      gpu.compress('streamingllm', { keep: 300 });
      cpu.compress('streamingllm', { keep: 300 });
      const a = gpu.export(0, { dtype: 'f32' }), b = cpu.export(0, { dtype: 'f32' });
      expect(Array.from(a.positions.data)).toEqual(Array.from(b.positions.data));
      expect(Array.from(a.k.data)).toEqual(Array.from(b.k.data));
      expect(Array.from(a.v.data)).toEqual(Array.from(b.v.data));
    });
  }

  for (const dtype of ['int8', 'int4'] as const) {
    test(`${dtype}: ragged heads (adakv), razor retrieval heads and merging keep the CPU's bytes (keys with a non-zero mean)`, () => {
      const o = { nLayers: 2, nKvHeads: 3, headDim: 64, capacity: 4096, dtype, groupSize: 16, residual: 24 };
      const gpu = new KvCache({ ...o, device: 'cuda' }), cpu = new KvCache(o);
      const s = { nLayers: 2, nKvHeads: 3, group: 2, headDim: 64, dtype: 'f16' as const };
      for (let l = 0; l < 2; l++) {
        const [k, v] = kvChunk(s, 900 + 40 * l);
        for (let i = 0; i < k.data.length; i++) (k.data as Float32Array)[i] = (k.data as Float32Array)[i]! * 2 + 3 + (i % 64) * 0.25;
        gpu.append(l, k, v);
        cpu.append(l, k, v);
      }
      const steps: KvCompressionPolicy[] = [
        { name: 'adakv', scorer: 'streamingllm', alpha: 0.3 } as KvCompressionPolicy,
        { name: 'razor', retrievalHeads: [[true, false, false], [false, true, false]] } as KvCompressionPolicy,
        { name: 'streamingllm', merge: true } as KvCompressionPolicy,
      ];
      const keeps = [500, 300, 120];
      steps.forEach((p, i) => {
        gpu.compress(p, { keep: keeps[i]! });
        cpu.compress(p, { keep: keeps[i]! });
        for (let l = 0; l < 2; l++) {
          const a = gpu.export(l, { dtype: 'f32' }), b = cpu.export(l, { dtype: 'f32' });
          expect(Array.from(a.lengths), `step ${i} layer ${l} lengths`).toEqual(Array.from(b.lengths));
          expect(Array.from(a.positions.data), `step ${i} layer ${l} positions`).toEqual(Array.from(b.positions.data));
          expect(Array.from(a.counts.data), `step ${i} layer ${l} counts`).toEqual(Array.from(b.counts.data));
          expect(Array.from(a.k.data), `step ${i} layer ${l} k`).toEqual(Array.from(b.k.data));
          expect(Array.from(a.v.data), `step ${i} layer ${l} v`).toEqual(Array.from(b.v.data));
        }
      });
    });
  }

  // The fused KIVI decode (blocks read in place) against exact attention over
  // the exported (dequantized) rows, head by head (ragged after adakv): the
  // device rounds the dequantized values to f16, hence 2e-3 * max|v|.
  function expectExactPerHead(c: KvCache, layer: number, q: Tensor<'f32'>, got: Float32Array): void {
    const e = c.export(layer, { dtype: 'f32' });
    const [nHeads, nQ, d] = q.shape as [number, number, number];
    const group = nHeads / c.nKvHeads, m = e.positions.shape[1]!;
    for (let h = 0; h < c.nKvHeads; h++) {
      const len = e.lengths[h]!;
      const k: Tensor<'f32'> = { dtype: 'f32', shape: [1, len, d], data: (e.k.data as Float32Array).slice(h * m * d, (h * m + len) * d) };
      const v: Tensor<'f32'> = { dtype: 'f32', shape: [1, len, d], data: (e.v.data as Float32Array).slice(h * m * d, (h * m + len) * d) };
      const qh: Tensor<'f32'> = { dtype: 'f32', shape: [group, nQ, d], data: (q.data as Float32Array).slice(h * group * nQ * d, (h + 1) * group * nQ * d) };
      const want = attention(qh, k, v, { causal: true }).output.data;
      const scale = Math.max(1e-6, maxAbs(want));
      for (let i = 0; i < want.length; i++) {
        expect(Math.abs(got[h * group * nQ * d + i]! - want[i]!), `layer ${layer} head ${h} out[${i}]`).toBeLessThanOrEqual(2e-3 * scale);
      }
    }
  }

  const FUSED: { headDim: number; groupSize: number; group: number; dtype: 'int8' | 'int4' }[] = [
    { headDim: 64, groupSize: 8, group: 1, dtype: 'int4' },
    { headDim: 256, groupSize: 16, group: 2, dtype: 'int8' },
    { headDim: 128, groupSize: 64, group: 8, dtype: 'int4' },
    { headDim: 64, groupSize: 12, group: 4, dtype: 'int8' },  // not a multiple of 8: the dequantized-copy path
  ];
  for (const f of FUSED) {
    test(`${f.dtype} d${f.headDim} groupSize ${f.groupSize} GQA ${f.group}: decode over the blocks (nQ 1..16, ragged heads) matches exact attention`, () => {
      const o = { nLayers: 1, nKvHeads: 3, headDim: f.headDim, capacity: 4096, dtype: f.dtype, groupSize: f.groupSize, residual: 20 };
      const c = new KvCache({ ...o, device: 'cuda' });
      const s: Setup = { nLayers: 1, nKvHeads: 3, group: f.group, headDim: f.headDim, dtype: 'f16' };
      for (const n of [5, 40, 600]) {
        const [k, v] = kvChunk(s, n);
        c.append(0, k, v);
        for (const nQ of [1, 2, 7, 16]) {
          const q = queries(s, nQ);
          expectExactPerHead(c, 0, q, c.attend(0, q, { remember: false }).output.data);
        }
      }
      c.attend(0, queries(s, 8));  // the observation window, for adakv's scores
      c.compress({ name: 'adakv', scorer: 'knorm', alpha: 0.2 } as KvCompressionPolicy, { keep: 200 });
      expect(new Set(Array.from(c.lengths().data)).size, 'adakv made the heads ragged').toBeGreaterThan(1);
      for (const nQ of [1, 5]) {
        const q = queries(s, nQ);
        expectExactPerHead(c, 0, q, c.attend(0, q, { remember: false }).output.data);
      }
    });
  }

  test('device out of memory at any allocation: ERR_OUT_OF_MEMORY, the cache exactly as it was, the process fine', () => {
    const inject = (n: number) => native().cudaFailAllocationsAfter(n);
    for (const dtype of ['f16', 'int4'] as const) {
      for (let k = 0; k < 40; k++) {
        const o = { nLayers: 2, nKvHeads: 2, headDim: 64, capacity: 4096, dtype, groupSize: 16, residual: 24, device: 'cuda' as const };
        const c = new KvCache(o);
        const s: Setup = { nLayers: 2, nKvHeads: 2, group: 2, headDim: 64, dtype: 'f16' };
        const [k0, v0] = kvChunk(s, 200);
        c.append(0, k0, v0);
        c.append(1, k0, v0);
        const snapshot = () => [0, 1].map((l) => {
          const e = c.export(l, { dtype: 'f32' });
          return [Array.from(e.lengths), Array.from(e.positions.data), Array.from(e.k.data), Array.from(e.v.data), Array.from(e.counts.data)];
        });
        const [k1, v1] = kvChunk(s, 700);
        const ops: [string, () => unknown][] = [
          ['append', () => c.append(0, k1, v1)],
          ['attend', () => c.attend(1, queries(s, 20), { accumulateMass: true })],
          ['compress knorm merge', () => c.compress({ name: 'knorm', merge: true } as KvCompressionPolicy, { keep: 150 })],
          ['compress snapkv', () => c.compress('snapkv', { keep: 100 })],
        ];
        for (const [name, op] of ops) {
          inject(-1);
          const before = snapshot();
          inject(k);
          let failed = false;
          try {
            op();
          } catch (e) {
            failed = true;
            expect((e as { code?: string }).code, `${dtype} ${name} after ${k} allocations`).toBe('ERR_OUT_OF_MEMORY');
          } finally {
            inject(-1);
          }
          if (failed) expect(snapshot(), `${dtype} ${name} after ${k} allocations: unchanged`).toEqual(before);
        }
      }
    }
  });

  test('unsupported requests throw ERR_UNSUPPORTED and change nothing', () => {
    const s: Setup = { nLayers: 1, nKvHeads: 2, group: 2, headDim: 64, dtype: 'f16' };
    const [gpu] = pair(s);
    const [k, v] = kvChunk(s, 100);
    gpu.append(0, k, v);
    expect(() => gpu.compress('ems', { keep: 10 })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(() => gpu.compress('expected_attention', { keep: 10 })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(Array.from(gpu.lengths().data)).toEqual([100, 100]);
  });
});
