// `tokenpress bench sparse` (bench/sparse.ts): argument validation and a
// tiny-size smoke run that checks the JSON report's shape and its internal
// consistency (step = per layer x layers, ratios, the bytes model, summary
// memory <= 2 / P). Benchmarks are not tests: no timing threshold here.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { resolveSparseBenchOptions, runSparseBench, SPARSE_BENCH_METHODS, tidalStepLayers, type SparseBenchReport } from '../../bench/sparse.js';

const dir = mkdtempSync(join(os.tmpdir(), 'tp-bench-sparse-'));

describe('bench sparse options', () => {
  test('defaults are the issue\'s workload', () => {
    const r = resolveSparseBenchOptions();
    expect(r).toMatchObject({ tokens: [32768, 131072], layers: 32, kvHeads: 8, heads: 32, headDim: 128, budgets: [2048], reps: 7, maxGib: 4 });
    expect(r.methods).toEqual(SPARSE_BENCH_METHODS.map((m) => m.name));
    expect(r.methods).toEqual(['quest', 'blocks', 'tidal']);
    expect(resolveSparseBenchOptions({ quick: true })).toMatchObject({ tokens: [8192], budgets: [512], reps: 3, maxGib: 0.5 });
    expect(resolveSparseBenchOptions({ quick: true, tokens: [4096] }).tokens).toEqual([4096]);
  });

  test.each([
    [{ tokenz: [1] }, TypeError, /options.tokenz: unknown option/],
    [{ tokens: [] }, TypeError, /options.tokens: expected a non-empty array/],
    [{ tokens: [0] }, RangeError, /options.tokens\[0\]: expected an integer in \[1/],
    [{ tokens: [1.5] }, TypeError, /options.tokens\[0\]/],
    [{ layers: 0 }, RangeError, /options.layers/],
    [{ heads: 12, kvHeads: 8 }, RangeError, /options.heads: expected a multiple of kvHeads = 8/],
    [{ budgets: ['2048'] }, TypeError, /options.budgets\[0\]/],
    [{ methods: ['qwest'] }, TypeError, /options.methods\[0\]: expected one of 'quest'/],
    [{ methods: [] }, TypeError, /options.methods: expected a non-empty array/],
    [{ maxGib: 0 }, RangeError, /options.maxGib/],
    [{ reps: -1 }, RangeError, /options.reps/],
    [{ layers: 2 }, RangeError, /options.layers: expected at least 3 with the method 'tidal'/],
  ])('%j is refused', (opts, type, msg) => {
    expect(() => resolveSparseBenchOptions(opts as never)).toThrow(type);
    expect(() => resolveSparseBenchOptions(opts as never)).toThrow(msg);
  });
});

describe('bench sparse smoke (tiny sizes)', () => {
  test('JSON report: shape and internal consistency', async () => {
    const outFile = join(dir, 'sparse.json');
    const cfg = { tokens: [300, 1000], layers: 6, kvHeads: 2, heads: 4, headDim: 32, budgets: [64, 5000], reps: 2, upkeepTokens: 200 };
    // 1000 tokens x 2 heads x 32 x 2 x 2 bytes = 256000 bytes per layer: 2 of the 6 layers fit 0.0005 GiB.
    await runSparseBench({ ...cfg, maxGib: 0.0005, outFile, progress: false, limits: { reps: 1, bandwidthBytes: 2 ** 20 } });
    const r = JSON.parse(readFileSync(outFile, 'utf8')) as SparseBenchReport;
    expect(r.config).toMatchObject({ ...cfg, methods: ['quest', 'blocks', 'tidal'], maxGib: 0.0005 });
    expect(typeof r.machine.model).toBe('string');
    expect(r.limits.cpuModel).toBe(r.machine.model);
    expect(r.readBandwidthGBs.end).toBeGreaterThanOrEqual(r.readBandwidthGBs.start);
    expect(r.sizes.map((s) => s.tokens)).toEqual([300, 1000]);
    // One gathered-read probe per run length (a page of 16, a block of 64, one row; f16 rows of 32 = 64 B).
    expect(r.gatherBandwidthGBs.map((g) => [g.runTokens, g.blockBytes])).toEqual([[16, 1024], [64, 4096], [1, 64]]);
    for (const g of r.gatherBandwidthGBs) {
      expect(g.end).toBeGreaterThanOrEqual(g.start);
      expect(g.start).toBeGreaterThan(0);
      expect(g.loop).toMatch(/^(avx512|avx2|sse2|scalar)/);
    }
    const pos = (x: number) => expect(Number.isFinite(x) && x > 0).toBe(true);
    for (const s of r.sizes) {
      expect(s.modelledLayers).toBe(6);
      expect(s.layerKvBytes).toBe(2 * s.tokens * 32 * 4);
      expect(s.measuredLayers).toBe(Math.min(6, Math.floor((0.0005 * 2 ** 30) / s.layerKvBytes)));
      if (s.measuredLayers < 6) expect(s.notes.join(' ')).toMatch(new RegExp(`${s.measuredLayers} of 6 layers held`));
      pos(s.dense.msPerLayer);
      expect(s.dense.stepMs).toBeCloseTo(s.dense.msPerLayer * 6, 9);
      expect(s.dense.idealStepMs).toBeCloseTo((s.layerKvBytes * 6) / (r.readBandwidthGBs.end * 1e9) * 1e3, 9);
      // Summaries: 2 f16 rows per page of 16 per KV head: 2 / 16 of the keys, up to the partial last page and
      // the rows the cache allocated ahead (the summaries follow the key capacity), which weigh at tiny sizes.
      expect(s.summaryGoal).toBe(2 / 16);
      pos(s.summaryBytesPerLayer);
      expect(s.summaryBytesPerLayer).toBeGreaterThanOrEqual(2 * 2 * Math.ceil(s.tokens / 16) * 32 * 2);
      expect(s.summaryOverKeyBytes).toBeLessThanOrEqual(0.2);
      expect(s.summaryOverKeyBytes).toBeCloseTo(s.summaryBytesPerLayer / (s.layerKvBytes / 2), 12);
      expect(s.methods.map((m) => [m.method, m.budget])).toEqual([['quest', 64], ['quest', 5000], ['blocks', 64], ['blocks', 5000], ['tidal', 64], ['tidal', 5000]]);
      const row = 2 * 32 * 2 * 2; // K + V bytes of one token, 2 KV heads, f16
      for (const m of s.methods) {
        if (m.method === 'tidal') {
          // The modelled step of 6 layers: full 0-1, the selection at 2, 3 gathered (no re-selection below 14 layers).
          expect(tidalStepLayers(6)).toEqual({ full: 2, select: 1, gathered: 3 });
          const kept = Math.min(s.tokens, m.budget);
          expect(m.selectedPerHead).toBe(kept);
          expect(m.bytesPerLayer).toBeCloseTo((3 * s.tokens * row + 3 * kept * row) / 6, 9);
          expect(m.layout).toBeNull();
          expect(m.summaryBuildMsPerLayer).toBeNull();
          const sc = m.schedule!;
          expect([sc.full, sc.select, sc.gathered]).toEqual([2, 1, 3]);
          expect(sc.denseMsPerCall).toBe(m.cache.denseMsPerLayer);
          if (s.measuredLayers > 1) {
            expect(m.cache.msPerLayer).toBeCloseTo((2 * sc.denseMsPerCall + sc.selectMsPerCall + 3 * sc.gatheredMsPerCall) / 6, 9);
          } else {
            expect(Number.isNaN(sc.gatheredMsPerCall)).toBe(true);
          }
        } else {
          const unit = m.method === 'quest' ? 16 : 64;
          const sel = Math.min(s.tokens, Math.floor(m.budget / unit) * unit);
          expect(m.selectedPerHead).toBe(sel);
          // Summary rows per unit: Quest kmin + kmax (f16); blocks also the f32 mean (= 2 f16 rows).
          const summaryRows = (m.method === 'quest' ? 2 : 4) * Math.ceil(s.tokens / unit);
          expect(m.bytesPerLayer).toBe(2 * 32 * 2 * (summaryRows + 2 * sel));
          expect(m.layout).toBe(m.method === 'quest' ? 'pages of 16' : 'blocks of 64');
          pos(m.summaryBuildMsPerLayer!);
          pos(m.summaryBytesPerLayer);
          if (m.method === 'quest') expect(m.summaryBytesPerLayer).toBe(s.summaryBytesPerLayer);
          else {
            // Blocks of 64: kmin, kmax (f16) and the f32 mean, 4 f16 rows per 64 keys: half of Quest's 2 per 16.
            expect(m.summaryBytesPerLayer).toBeGreaterThan(s.summaryBytesPerLayer / 4);
            expect(m.summaryBytesPerLayer).toBeLessThan(s.summaryBytesPerLayer);
          }
          pos(m.cache.msPerLayer);
        }
        expect(m.idealSpeedup).toBeCloseTo(s.layerKvBytes / m.bytesPerLayer, 12);
        // The machine limit: streamed bytes at the read bandwidth, gathered runs at the gathered-read bandwidth.
        const run = m.method === 'quest' ? 16 : m.method === 'blocks' ? 64 : 1;
        expect(m.limit.gatherRun).toBe(run);
        const gathered = m.method === 'tidal' ? (3 * Math.min(s.tokens, m.budget) * row) / 6 : m.selectedPerHead * row;
        expect(m.limit.gatheredBytesPerLayer).toBeCloseTo(gathered, 9);
        const g = r.gatherBandwidthGBs.find((x) => x.runTokens === run)!;
        const bw = r.readBandwidthGBs.end * 1e9;
        expect(m.limit.stepMs).toBeCloseTo(6e3 * ((m.bytesPerLayer - gathered) / bw + gathered / (g.end * 1e9)), 9);
        expect(m.limit.pctOfLimit).toBeCloseTo((100 * m.limit.stepMs) / m.cache.stepMs, 9);
        expect(m.limit.limitSpeedup).toBeCloseTo(s.dense.idealStepMs / m.limit.stepMs, 9);
        pos(m.cache.denseMsPerLayer);
        expect(m.cache.stepMs).toBeCloseTo(m.cache.msPerLayer * 6, 9);
        expect(m.cache.speedup).toBeCloseTo(m.cache.denseMsPerLayer / m.cache.msPerLayer, 9);
        expect(m.cache.pctReadBw).toBeCloseTo((100 * m.cache.gbPerS) / r.readBandwidthGBs.end, 9);
        const st = m.stateless!;
        for (const x of [st.denseMsPerLayer, st.selectMsPerLayer, st.gatheredMsPerLayer, st.totalMsPerLayer]) pos(x);
        expect(st.totalStepMs).toBeCloseTo(st.totalMsPerLayer * 6, 9);
        expect(st.selectStepMs).toBeCloseTo(st.selectMsPerLayer * 6, 9);
        expect(st.speedup).toBeCloseTo(st.denseMsPerLayer / st.totalMsPerLayer, 9);
        expect(st.selectShare).toBeCloseTo(st.selectMsPerLayer / st.totalMsPerLayer, 9);
      }
    }
    const u = r.upkeep;
    expect(u.tokens).toBe(200);
    expect(u.goal).toBe(0.1);
    for (const x of [u.single.withMs, u.single.withoutMs, u.chunk.withMs, u.chunk.withoutMs]) pos(x);
    expect(u.single.overhead).toBeCloseTo(u.single.withMs / u.single.withoutMs - 1, 9);
    expect(u.chunk.overhead).toBeCloseTo(u.chunk.withMs / u.chunk.withoutMs - 1, 9);
    expect(r.notes.length).toBeGreaterThan(0);
  }, 120_000);
});
