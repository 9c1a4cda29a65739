// Quest sparse attend on the device KV cache (native/cuda/cuda_kv_sparse.cu,
// cuda_quest.cu) against the CPU KvCache fed the same calls. The device
// keeps page summaries beside its K/V (built at the first sparse attend,
// refolded on append, rebuilt on compress, emptied on clear), scores pages
// with the CPU's arithmetic in the CPU's order (native/sparse/quest_hd.h;
// test/unit/sparse-quest-device.test.ts checks that on the host), selects
// with the CPU's rule by a radix top-k, and runs the gathered decode.
//
// What must hold: the page summaries (questSummaries) equal the CPU cache's
// bit for bit after every attend, append, compress and clear; the selected
// rows equal the CPU's exactly (same summaries, the same score bits and the
// same tie rule); outputs within 1e-3 * max|out| and lse within
// 1e-3 * max(1, |lse|) (the decode sums in another order; 4e-3 for int
// caches, whose device attention reads f16 copies of the dequantized rows);
// H2O after a sparse accumulateMass keeps at least 99% of the CPU's rows
// (float masses; 95% for int caches). Sizes: headDim 64 / 128, f16, bf16,
// int8 and int4 (KIVI group 32, residual 40: appends move tail rows into
// blocks, so U8 summaries are refolded), groups 1, 2 and 4, nQ 1 and 3
// (causal), lengths 1, 17, 300 and 4099 reached by appends of several sizes,
// page sizes 16 and 8, gqa 'sum' and 'max', sinks and recent windows, ragged
// heads after adakv.
//
// Without the CUDA build or a device every test here SKIPS (the describe
// title says why); test/unit/kv-cache-device.test.ts covers the CPU fallback.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvCompressionPolicy, type Tensor } from '../../lib/index.js';
import { cudaAvailability } from '../../lib/cuda.js';
import { randomTensor3 as randomWith } from '../unit/helpers.js';
import { mulberry32 } from '../reference/random.js';

const cuda = cudaAvailability();
const title = cuda.available ? `Quest on the cuda KvCache (${cuda.devices})` : `Quest on the cuda KvCache (skipped: ${cuda.reason})`;

interface Setup {
  nKvHeads: number;
  group: number;
  headDim: number;
  dtype: 'f16' | 'bf16' | 'int8' | 'int4';
}

/** Output tolerance (x max|out|): int caches attend f16 copies of their dequantized rows on the device, f32 ones on the CPU. */
const outTol = (s: Setup) => (s.dtype === 'int8' || s.dtype === 'int4' ? 4e-3 : 1e-3);

let seed = 100;
function tensor(shape: [number, number, number], amp = 1): Tensor<'f32'> {
  return randomWith(mulberry32(seed++), 'f32', shape, amp) as Tensor<'f32'>;
}

function pair(s: Setup): [KvCache, KvCache] {
  const quant = s.dtype === 'int8' || s.dtype === 'int4' ? { groupSize: 32, residual: 40 } : {};
  const o = { nLayers: 2, nKvHeads: s.nKvHeads, headDim: s.headDim, capacity: 8192, dtype: s.dtype, ...quant };
  const gpu = new KvCache({ ...o, device: 'cuda' });
  const cpu = new KvCache(o);
  expect(gpu.device).toBe('cuda');
  return [gpu, cpu];
}

function append(s: Setup, caches: KvCache[], layer: number, n: number): void {
  const k = tensor([s.nKvHeads, n, s.headDim], 1.5), v = tensor([s.nKvHeads, n, s.headDim]);
  for (const c of caches) c.append(layer, k, v);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

type Sparse = { method: 'quest'; budget: number; pageSize?: number; sinks?: number; recent?: number; gqa?: 'sum' | 'max' };

let tol = 1e-3;  // set per setup (outTol)

function expectSameQuest(gpu: KvCache, cpu: KvCache, layer: number, q: Tensor<'f32'>, sparse: Sparse, label: string, accumulateMass = false): void {
  const opts = { sparse, returnSelected: true, returnLse: true, accumulateMass } as const;
  const a = gpu.attend(layer, q, opts), b = cpu.attend(layer, q, opts);
  expect(a.selected!.shape, label).toEqual(b.selected!.shape);
  expect(Array.from(a.selected!.data), `${label}: selected rows`).toEqual(Array.from(b.selected!.data));
  const scale = Math.max(1e-6, maxAbs(b.output.data));
  for (let i = 0; i < b.output.data.length; i++) {
    expect(Math.abs(a.output.data[i]! - b.output.data[i]!), `${label}: out[${i}]`).toBeLessThanOrEqual(tol * scale);
  }
  for (let i = 0; i < b.lse!.data.length; i++) {
    const x = a.lse!.data[i]!, y = b.lse!.data[i]!;
    if (y === -Infinity) expect(x, `${label}: lse[${i}]`).toBe(-Infinity);
    else expect(Math.abs(x - y), `${label}: lse[${i}]`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(y)));
  }
  expectSameSummaries(gpu, cpu, layer, label);
}

/** The device's page summaries are the CPU cache's, bit for bit (min / max of the same stored rows). */
function expectSameSummaries(gpu: KvCache, cpu: KvCache, layer: number, label: string): void {
  const a = gpu.questSummaries(layer), b = cpu.questSummaries(layer);
  expect(a.pageSize, `${label}: pageSize`).toBe(b.pageSize);
  expect(Array.from(a.headPages), `${label}: headPages`).toEqual(Array.from(b.headPages));
  expect(a.kmin.shape, label).toEqual(b.kmin.shape);
  expect(Array.from(a.kmin.data), `${label}: kmin`).toEqual(Array.from(b.kmin.data));
  expect(Array.from(a.kmax.data), `${label}: kmax`).toEqual(Array.from(b.kmax.data));
}

function kept(c: KvCache, layer: number): number[][] {
  const e = c.export(layer), m = e.positions.shape[1]!;
  return Array.from({ length: c.nKvHeads }, (_, h) => Array.from(e.positions.data.subarray(h * m, h * m + e.lengths[h]!)));
}

describe.skipIf(!cuda.available)(title, () => {
  const SETUPS: Setup[] = [
    { nKvHeads: 2, group: 4, headDim: 128, dtype: 'f16' },
    { nKvHeads: 3, group: 1, headDim: 64, dtype: 'bf16' },
    { nKvHeads: 2, group: 2, headDim: 128, dtype: 'int8' },
    { nKvHeads: 2, group: 4, headDim: 64, dtype: 'int4' },
  ];
  for (const s of SETUPS) {
    const tag = `d${s.headDim} g${s.group} ${s.dtype}`;
    const R = s.nKvHeads * s.group;

    test(`${tag}: selection and output equal the CPU cache while the layer grows`, () => {
      tol = outTol(s);
      const [gpu, cpu] = pair(s);
      const variants: Sparse[] = [
        { method: 'quest', budget: 64 },
        { method: 'quest', budget: 200, gqa: 'max', sinks: 20, recent: 40 },
        { method: 'quest', budget: 5 },  // below one page: the current page only
      ];
      for (const n of [1, 16, 283, 3799]) {  // 1, 17, 300, 4099 tokens
        append(s, [gpu, cpu], 0, n);
        for (const sp of variants) {
          const label = `${tag} len ${Array.from(cpu.lengths().data)[0]} ${JSON.stringify(sp)}`;
          expectSameQuest(gpu, cpu, 0, tensor([R, 1, s.headDim], 2), sp, `${label} nQ 1`);
          expectSameQuest(gpu, cpu, 0, tensor([R, 3, s.headDim], 2), sp, `${label} nQ 3`);
        }
        // Single-token appends fold into the open page (summaries kept between attends).
        for (let i = 0; i < 3; i++) {
          append(s, [gpu, cpu], 0, 1);
          expectSameSummaries(gpu, cpu, 0, `${tag} append ${i + 1}`);
          expectSameQuest(gpu, cpu, 0, tensor([R, 1, s.headDim], 2), variants[0]!, `${tag} +${i + 1}`);
        }
      }
    });

    test(`${tag}: page size change, clear, compress (ragged heads) and key mass`, () => {
      tol = outTol(s);
      const [gpu, cpu] = pair(s);
      append(s, [gpu, cpu], 1, 2500);
      const q = () => tensor([R, 1, s.headDim], 2);
      expectSameQuest(gpu, cpu, 1, q(), { method: 'quest', budget: 256 }, `${tag} P16`);
      expectSameQuest(gpu, cpu, 1, q(), { method: 'quest', budget: 256, pageSize: 8 }, `${tag} P8 (rebuilt)`);
      // Exact eviction policies, so both caches keep the same rows; adakv leaves heads of other lengths.
      const policies: KvCompressionPolicy[] = ['streamingllm', { name: 'adakv', scorer: 'streamingllm', alpha: 0.2 } as KvCompressionPolicy];
      for (const p of policies) {
        gpu.compress(p, { keep: 1500 }, { layers: [1] });
        cpu.compress(p, { keep: 1500 }, { layers: [1] });
        expect(kept(gpu, 1)).toEqual(kept(cpu, 1));
        expectSameSummaries(gpu, cpu, 1, `${tag} rebuilt after ${JSON.stringify(p)}`);
        expectSameQuest(gpu, cpu, 1, q(), { method: 'quest', budget: 256, pageSize: 8 }, `${tag} after ${JSON.stringify(p)}`);
        append(s, [gpu, cpu], 1, 37);
        expectSameQuest(gpu, cpu, 1, tensor([R, 3, s.headDim], 2), { method: 'quest', budget: 300, pageSize: 8, sinks: 8 }, `${tag} appended`);
      }
      // Key mass of the selected rows, then H2O on it: the CPU's rows up to float ties.
      for (let i = 0; i < 4; i++) expectSameQuest(gpu, cpu, 1, q(), { method: 'quest', budget: 256 }, `${tag} mass ${i}`, true);
      gpu.compress({ name: 'h2o', recent: 8 } as KvCompressionPolicy, { keep: 600 }, { layers: [1] });
      cpu.compress({ name: 'h2o', recent: 8 } as KvCompressionPolicy, { keep: 600 }, { layers: [1] });
      const a = kept(gpu, 1), b = kept(cpu, 1);
      for (let h = 0; h < b.length; h++) {
        const set = new Set(b[h]);
        expect(a[h]!.filter((x) => set.has(x)).length, `${tag} h2o head ${h}`).toBeGreaterThanOrEqual(Math.floor((tol > 1e-3 ? 0.95 : 0.99) * b[h]!.length));
      }
      gpu.clear(1);
      cpu.clear(1);
      expectSameSummaries(gpu, cpu, 1, `${tag} cleared`);
      append(s, [gpu, cpu], 1, 100);
      expectSameSummaries(gpu, cpu, 1, `${tag} appended after clear`);
      expectSameQuest(gpu, cpu, 1, q(), { method: 'quest', budget: 48 }, `${tag} after clear`);
    });
  }

  test('methods the device does not run are refused, and change nothing', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 64, capacity: 1024, dtype: 'f16', device: 'cuda' });
    c.append(0, tensor([2, 100, 64]), tensor([2, 100, 64]));
    const q = tensor([2, 1, 64]);
    expect(() => c.attend(0, q, { sparse: { method: 'blocks', budget: 64 } })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(Array.from(c.lengths().data)).toEqual([100, 100]);
  });
});
