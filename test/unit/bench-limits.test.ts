/**
 * The shared machine limits (bench/limits.ts over native/core/machine_limits):
 * every figure positive and physically sane (no timing thresholds: the
 * machines are shared and a test never times), the cache, the argument
 * checks, and the CPU model plus limits in the JSON of `bench limits` and
 * `bench attention`. Small arrays (16 MiB) keep this fast: those figures are
 * cache figures, which is fine for sanity checks.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { cachedLimits, cpuModel, limitsReport, measureGatherBandwidth, measureLimits, refreshLimits, runLimitsBench } from '../../bench/limits.js';
import { runAttentionBench } from '../../bench/attention.js';

const MiB = 2 ** 20;
const SMALL = { reps: 1, bandwidthBytes: 16 * MiB };
const dir = mkdtempSync(join(os.tmpdir(), 'tp-bench-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes/s no memory system reaches (10 TB/s) and none falls below (100 MB/s) while running. */
const saneBandwidth = (x: number) => {
  expect(Number.isFinite(x)).toBe(true);
  expect(x).toBeGreaterThan(1e8);
  expect(x).toBeLessThan(1e13);
};

describe('machine limits', () => {
  it('are positive and sane for one thread and for the pool', () => {
    const threads = [...new Set([1, backendInfo().threads])];
    const lims = measureLimits(threads, SMALL);
    expect(lims.map((l) => l.threads)).toEqual(threads);
    for (const l of lims) {
      saneBandwidth(l.read.bytesPerS);
      saneBandwidth(l.copy.bytesPerS);
      expect(l.read.runs).toHaveLength(1);
      expect(typeof l.read.loop).toBe('string');
      expect(l.read.loop).not.toBe('none');
      // FLOP/s: above 100 MFLOP/s, below 100 TFLOP/s per thread.
      expect(l.fmaPeak).toBeGreaterThan(1e8);
      expect(l.fmaPeak).toBeLessThan(1e14 * l.threads);
      if (backendInfo().features.avx512bf16) {
        expect(l.bf16Peak).toBeGreaterThan(1e8);
        expect(l.bf16Peak).toBeLessThan(1e14 * l.threads);
      } else {
        expect(l.bf16Peak).toBe(0);
      }
    }
  });

  it('are measured once per process and refreshed as the best of all runs', () => {
    const [a] = measureLimits([1], SMALL);
    const [b] = measureLimits([1], SMALL);
    expect(b).toBe(a);
    const before = a!.read.bytesPerS;
    const [c] = refreshLimits([1], SMALL);
    expect(c).toBe(a);
    expect(c!.read.runs.length).toBeGreaterThanOrEqual(2);
    expect(c!.read.bytesPerS).toBe(Math.max(...c!.read.runs));
    expect(c!.read.bytesPerS).toBeGreaterThanOrEqual(before);
    expect(cachedLimits(1, SMALL.bandwidthBytes)).toBe(a);
  });

  it('name the CPU model', () => {
    expect(cpuModel().length).toBeGreaterThan(0);
    const r = limitsReport(measureLimits([1], SMALL), SMALL.bandwidthBytes);
    expect(r.cpuModel).toBe(cpuModel());
    expect(r.oneThreadReadBandwidth).toBe(r.perThreads[0]!.read.bytesPerS);
  });

  it('refuse bad arguments, naming them', () => {
    const n = native();
    expect(() => n.measureBandwidth('write' as 'read', 16 * MiB, 1, 1)).toThrow(TypeError);
    expect(() => n.measureBandwidth('read', 32, 1, 1)).toThrow(/bytes/);
    expect(() => n.measureCopyBandwidth(64, 1, 1)).toThrow(/bytes: expected at least 128 bytes per thread/);
    expect(() => n.measureBf16Peak(0)).toThrow(/threads/);
    expect(() => measureLimits([0], SMALL)).toThrow(RangeError);
    expect(() => measureLimits([1], { reps: 0 })).toThrow(/opts.reps/);
    expect(() => measureLimits([1], { bandwidthBytes: 1000 })).toThrow(/opts.bandwidthBytes/);
    expect(() => measureLimits([1], { rep: 1 } as never)).toThrow(/rep/);
  });

  it('gathered-read bandwidth: sane for every block size, arguments checked', () => {
    const n = native();
    for (const blockBytes of [64, 4096, 65536]) {
      const r = measureGatherBandwidth(blockBytes, 1, SMALL);
      saneBandwidth(r.bytesPerS);
      expect(r.blockBytes).toBe(blockBytes);
      expect(r.loop).toMatch(/^(avx512|avx2|sse2|scalar)/);
    }
    // One block per thread is the least (the whole array read, 1/16 rounds up to 1).
    saneBandwidth(n.measureBandwidth('gather', 4096, 1, 1, 4096).bytesPerS);
    expect(() => n.measureBandwidth('gather', 16 * MiB, 1, 1, 100)).toThrow(/blockBytes: expected a multiple of 64, received 100/);
    expect(() => (n.measureBandwidth as (...a: unknown[]) => unknown)('gather', 16 * MiB, 1, 1)).toThrow(/blockBytes: expected an integer/);
    if (backendInfo().threads >= 2) expect(() => n.measureBandwidth('gather', 4096, 2, 1, 4096)).toThrow(/bytes: expected at least 4096 bytes per thread/);
    expect(() => measureGatherBandwidth(96, 1, SMALL)).toThrow(/blockBytes: expected a multiple of 64/);
    expect(() => measureGatherBandwidth(32 * MiB, 1, SMALL)).toThrow(/blockBytes/);
    expect(() => measureGatherBandwidth(4096, 0, SMALL)).toThrow(/threads/);
  });

  it('measureBandwidth reports how the figure was obtained', () => {
    const r = native().measureBandwidth('copy', 16 * MiB, 1, 1);
    saneBandwidth(r.bytesPerS);
    expect(r.threads).toBe(1);
    expect(r.concurrentReps).toBeGreaterThanOrEqual(1);
    expect(typeof r.hugePages).toBe('boolean');
  });
});

describe('benchmark JSON carries the CPU model and the limits', () => {
  it('bench limits', () => {
    const outFile = join(dir, 'limits.json');
    runLimitsBench({ threads: [1], ...SMALL, outFile });
    const json = JSON.parse(readFileSync(outFile, 'utf8')) as Record<string, unknown> & { perThreads: { read: { bytesPerS: number } }[] };
    expect(json.cpuModel).toBe(cpuModel());
    expect(json.oneThreadReadBandwidth).toBeGreaterThan(0);
    expect(json.perThreads[0]!.read.bytesPerS).toBeGreaterThan(0);
  });

  it('bench attention (smoke workload): CPU model, one- and all-thread read bandwidth, limits, roofline columns', async () => {
    const outFile = join(dir, 'attention.json');
    await runAttentionBench({ smoke: true, threads: [1], outFile, progress: false });
    const json = JSON.parse(readFileSync(outFile, 'utf8')) as {
      machine: { cpu: string; oneThreadReadBandwidth: number; allThreadReadBandwidth: number };
      limits: { cpuModel: string; perThreads: { threads: number; read: { bytesPerS: number }; fmaPeak: number }[] };
      rows: { kind: string; modelRoofGBs: number; pctModelRoof: number; ours: { gbPerS: number; pctReadBw: number }; roof: { gbPerS: number; oursOverRoof: number; pctReadBw: number; maxAbsDiff: number } }[];
    };
    expect(json.machine.cpu).toBe(cpuModel());
    expect(json.machine.oneThreadReadBandwidth).toBeGreaterThan(0);
    expect(json.machine.allThreadReadBandwidth).toBeGreaterThan(0);
    expect(json.limits.cpuModel).toBe(cpuModel());
    expect(json.limits.perThreads.map((l) => l.threads)).toContain(1);
    expect(json.limits.perThreads.map((l) => l.threads)).toContain(os.availableParallelism());
    const decode = json.rows.filter((r) => r.kind === 'decode');
    expect(decode.length).toBe(2);
    for (const r of decode) {
      expect(r.ours.gbPerS).toBeGreaterThan(0);
      expect(r.ours.pctReadBw).toBeGreaterThan(0);
      expect(r.roof.gbPerS).toBeGreaterThan(0);
      expect(r.roof.oursOverRoof).toBeGreaterThan(0);
      expect(r.roof.pctReadBw).toBeGreaterThan(0);
      expect(r.modelRoofGBs).toBeGreaterThan(0);
      // modelRoofGBs is bytes/s / 1e9: scaling back can land one ulp above the read bandwidth (seen: ...00569 vs ...005684).
      const oneThreadRead = json.limits.perThreads.find((l) => l.threads === 1)!.read.bytesPerS;
      expect(r.modelRoofGBs * 1e9).toBeLessThanOrEqual(oneThreadRead * (1 + 1e-12));
      expect(r.pctModelRoof).toBeGreaterThan(0);
      // Both are f32 attention over the same K/V: they agree to rounding.
      expect(r.roof.maxAbsDiff).toBeLessThan(1e-4);
    }
  });
});
