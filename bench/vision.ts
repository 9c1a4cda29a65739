/**
 * `tokenpress bench vision` (issue 19, "Speed"): each visual-token operator's
 * native form against its straightforward typed-array JS reference
 * (VisionEvalMethod.bench, lib/vision/reference/), on random tokens f32
 * [frames, n, dim] at 576 (one image), 2,880 (AnyRes) and 16 x 576 (video)
 * tokens, D = 1024 and 4096, with the time of one pass over the tokens
 * measured in the same run: the read loop of bench/limits.ts
 * (native measureBandwidth 'read', the best rep) over an array of the same
 * byte size (at least 1 MiB), so a shape that fits the cache is compared with
 * a cached read. The goal: native <= 10x one pass at N = 2,880, D = 4096 on
 * 2 cores.
 *
 * Timing: tinybench (bench/common.ts timeIt) after one warm-up call, medians
 * over --reps; the reference gets --ref-reps, or a single timed call when
 * that call alone took longer than --ref-budget-ms (an O(N^2 D) JS rule at
 * N = 2,880, D = 4,096 is tens of seconds).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { backendInfo, setThreads } from '../lib/index.js';
import { native } from '../lib/native.js';
import type { VisionEvalMethod } from '../lib/vision/types.js';
import { randomBlock, timeIt } from './common.js';
import { cpuModel } from './limits.js';

export interface VisionBenchShape {
  frames: number;
  n: number;
}

export const DEFAULT_VISION_SHAPES: readonly VisionBenchShape[] = [{ frames: 1, n: 576 }, { frames: 1, n: 2880 }, { frames: 16, n: 576 }];
export const DEFAULT_VISION_DIMS: readonly number[] = [1024, 4096];

export interface VisionBenchOptions {
  methods: readonly VisionEvalMethod[];
  shapes?: readonly VisionBenchShape[];
  dims?: readonly number[];
  keepRatio?: number;
  reps?: number;
  refReps?: number;
  refBudgetMs?: number;
  /** Skip the JS references (native and one pass only). */
  reference?: boolean;
  threads?: number;
  outFile?: string;
  progress?: boolean;
  json?: boolean;
}

export interface VisionBenchRow {
  method: string;
  frames: number;
  n: number;
  dim: number;
  /** frames * n * dim * 4. */
  bytes: number;
  nativeMs: number;
  nativeSamples: number;
  referenceMs: number | null;
  referenceSamples: number;
  /** One read pass over `bytes` (ms) and its bandwidth (GB/s), measured in the same run. */
  onePassMs: number;
  readGBs: number;
  /** nativeMs / onePassMs (the goal: <= 10 at n = 2880, dim = 4096 on 2 cores). */
  nativeOverPass: number;
  /** referenceMs / nativeMs. */
  speedup: number | null;
}

export interface VisionBenchReport {
  date: string;
  node: string;
  cpuModel: string;
  threads: number;
  keepRatio: number;
  reps: number;
  refReps: number;
  rows: VisionBenchRow[];
  /** Methods without a `bench` (the floors) and methods that threw. */
  skipped: Array<{ method: string; reason: string }>;
  outFile?: string;
}

export async function runVisionBench(opts: VisionBenchOptions): Promise<VisionBenchReport> {
  const shapes = opts.shapes ?? DEFAULT_VISION_SHAPES;
  const dims = opts.dims ?? DEFAULT_VISION_DIMS;
  const keepRatio = opts.keepRatio ?? 0.25;
  const reps = opts.reps ?? 7;
  const refReps = opts.refReps ?? 3;
  const refBudgetMs = opts.refBudgetMs ?? 20_000;
  if (!(keepRatio > 0 && keepRatio <= 1)) throw new RangeError(`keepRatio: expected a fraction in (0, 1], received ${String(keepRatio)}`);
  const before = backendInfo().threads;
  const threads = opts.threads ?? before;
  if (threads !== before) setThreads(threads);
  const skipped: VisionBenchReport['skipped'] = [];
  const benched = opts.methods.filter((m) => {
    if (!m.bench) skipped.push({ method: m.name, reason: m.family === 'floor' ? 'no bench (a floor: plain JS, not an operator)' : 'no bench adapter' });
    return m.bench !== undefined;
  });
  const total = shapes.length * dims.length * (1 + benched.length);
  const bar = opts.progress !== false && !opts.json && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: 'bench vision [{bar}] {value}/{total} {task}', stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { task: 'start' });
  const rows: VisionBenchRow[] = [];
  try {
    for (const { frames, n } of shapes) {
      for (const dim of dims) {
        const bytes = frames * n * dim * 4;
        const tokens = randomBlock(frames * n * dim, 0x5eed ^ (n * 31 + dim));
        bar?.update({ task: `one pass ${frames}x${n}x${dim}` });
        const bw = native().measureBandwidth('read', Math.max(bytes, 1 << 20), threads, reps).bytesPerS;
        const onePassMs = (bytes / bw) * 1e3;
        bar?.increment();
        for (const m of benched) {
          bar?.update({ task: `${m.name} ${frames}x${n}x${dim}` });
          try {
            const b = m.bench!;
            b.native(tokens, frames, n, dim, keepRatio); // warm-up
            const nat = await timeIt(`${m.name} native`, () => b.native(tokens, frames, n, dim, keepRatio), { time: 0, iterations: reps });
            let referenceMs: number | null = null;
            let referenceSamples = 0;
            if (opts.reference !== false) {
              const t0 = performance.now();
              b.reference(tokens, frames, n, dim, keepRatio);
              const first = performance.now() - t0;
              if (first > refBudgetMs || refReps <= 1) {
                referenceMs = first;
                referenceSamples = 1;
              } else {
                const ref = await timeIt(`${m.name} reference`, () => b.reference(tokens, frames, n, dim, keepRatio), { time: 0, iterations: refReps });
                referenceMs = ref.medianMs;
                referenceSamples = ref.samples;
              }
            }
            rows.push({
              method: m.name, frames, n, dim, bytes,
              nativeMs: nat.medianMs, nativeSamples: nat.samples, referenceMs, referenceSamples,
              onePassMs, readGBs: bw / 1e9, nativeOverPass: nat.medianMs / onePassMs,
              speedup: referenceMs === null ? null : referenceMs / nat.medianMs,
            });
          } catch (e) {
            skipped.push({ method: m.name, reason: `${frames}x${n}x${dim}: ${e instanceof Error ? e.message : String(e)}` });
          }
          bar?.increment();
        }
      }
    }
  } finally {
    bar?.stop();
    if (backendInfo().threads !== before) setThreads(before);
  }
  const date = new Date();
  const report: VisionBenchReport = {
    date: date.toISOString(), node: process.version, cpuModel: cpuModel(), threads, keepRatio, reps, refReps, rows, skipped,
  };
  const outFile = resolve(opts.outFile ?? `bench-results/vision-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
  report.outFile = outFile;
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report;
}

const f = (x: number | null, d = 2) => (x === null ? '-' : x < 10 ? x.toFixed(d) : x.toFixed(1));

/** The speed table as markdown. */
export function formatVisionBenchTable(r: VisionBenchReport): string {
  const lines = [
    `CPU: ${r.cpuModel}; ${r.threads} threads; keep ratio ${r.keepRatio}; medians of ${r.reps} (native) / up to ${r.refReps} (JS reference) reps`,
    '',
    '| method | tokens | D | native ms | JS ref ms | ref / native | one pass ms (GB/s) | native / one pass |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const x of r.rows) {
    lines.push(`| ${x.method} | ${x.frames > 1 ? `${x.frames}x${x.n}` : x.n} | ${x.dim} | ${f(x.nativeMs)} | ${f(x.referenceMs)} | ${f(x.speedup, 1)} | ${f(x.onePassMs, 3)} (${x.readGBs.toFixed(1)}) | ${f(x.nativeOverPass, 1)} |`);
  }
  for (const s of r.skipped) lines.push(`skipped ${s.method}: ${s.reason}`);
  if (r.outFile) lines.push(`JSON: ${r.outFile}`);
  return lines.join('\n');
}
