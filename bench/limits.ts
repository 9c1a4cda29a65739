/**
 * The machine's own limits, measured one way for every benchmark and cached
 * once per process: `bench attention`, `bench kv` and anything else that
 * quotes "% of read bandwidth" or "% of FMA peak" divides by these figures.
 *
 * Per thread count (native/core/machine_limits.cpp):
 *   read   STREAM-like read of a >= 1 GiB array (2 MiB-aligned, huge pages
 *          requested), every SIMD loop the CPU has (AVX-512 with and without
 *          software prefetch, AVX2; 8 independent accumulators), threads of
 *          the shared pool released together by a spin barrier; best rep.
 *   copy   memcpy-like: bytes copied / s (memory traffic is twice that),
 *          best of memcpy, SIMD stores and non-temporal stores.
 *   fma    FP32 FMA peak, 16 independent zmm chains (12 ymm on AVX2).
 *   bf16   VDPBF16PS peak (4 FLOPs per f32 lane), 0 without AVX512-BF16.
 * A benchmark calls measureLimits() at its start (measured only if this
 * process has not measured them yet) and may call refreshLimits() at its end:
 * every figure is the best of all runs, so a burst of outside load during one
 * run does not make a kernel look faster than the machine.
 *
 * `tokenpress bench limits` prints them and writes JSON.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { backendInfo, setThreads } from '../lib/index.js';
import { native } from '../lib/native.js';
import { checkBoolean, checkOptions } from '../lib/validate.js';

const GiB = 2 ** 30;
/** The array every bandwidth figure streams: larger than any LLC these machines have. */
export const LIMITS_BANDWIDTH_BYTES = GiB;
const DEFAULT_REPS = 5;

export interface BandwidthFigure {
  /** Best rep over every run, bytes/s. */
  bytesPerS: number;
  /** The best rep of each run (one run per measureLimits / refreshLimits call). */
  runs: number[];
  /** The loop that gave the best rep. */
  loop: string;
  /** madvise(MADV_HUGEPAGE) accepted on the array. */
  hugePages: boolean;
}

export interface ThreadLimits {
  threads: number;
  /** STREAM-like read bandwidth, bytes/s. */
  read: BandwidthFigure;
  /** memcpy-like bandwidth, bytes copied / s (read + write traffic is twice that). */
  copy: BandwidthFigure;
  /** FP32 FMA peak, FLOP/s (2 per FMA lane), best ISA. */
  fmaPeak: number;
  fmaPeakRuns: number[];
  /** VDPBF16PS peak, FLOP/s (4 per f32 lane); 0 without AVX512-BF16. */
  bf16Peak: number;
  bf16PeakRuns: number[];
}

export interface MachineLimitsReport {
  /** /proc/cpuinfo 'model name' (os.cpus()[0].model elsewhere). */
  cpuModel: string;
  logicalCpus: number;
  /** The best ISA the CPU has (the limits use it whatever the kernels are restricted to). */
  detectedIsa: string;
  bf16: boolean;
  bandwidthBytes: number;
  /** Read bandwidth with one thread and with all logical CPUs, bytes/s (when measured). */
  oneThreadReadBandwidth?: number;
  allThreadReadBandwidth?: number;
  perThreads: ThreadLimits[];
}

export interface LimitsOptions {
  /** Reps per run (each rep runs every loop); default 5. */
  reps?: number;
  /** Array size; default 1 GiB. Smaller arrays measure a cache, not DRAM: tests only. */
  bandwidthBytes?: number;
}

let cachedModel: string | undefined;

/** The CPU model: /proc/cpuinfo 'model name', else os.cpus()[0].model, else 'unknown'. */
export function cpuModel(): string {
  if (cachedModel !== undefined) return cachedModel;
  let model: string | undefined;
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    model = m?.[1]?.trim();
  } catch {
    model = undefined;
  }
  cachedModel = model || os.cpus()[0]?.model?.trim() || 'unknown';
  return cachedModel;
}

const cache = new Map<string, ThreadLimits>();
const key = (threads: number, bytes: number) => `${threads}/${bytes}`;

function checkLimitsOptions(opts: LimitsOptions): Required<LimitsOptions> {
  const o = checkOptions('opts', opts, ['reps', 'bandwidthBytes']) as LimitsOptions;
  const reps = o.reps ?? DEFAULT_REPS;
  if (!Number.isInteger(reps) || reps < 1 || reps > 1000) {
    throw new RangeError(`opts.reps: expected an integer in [1, 1000], received ${String(reps)}`);
  }
  const bytes = o.bandwidthBytes ?? LIMITS_BANDWIDTH_BYTES;
  if (!Number.isInteger(bytes) || bytes < 2 ** 20 || bytes > 2 ** 40) {
    throw new RangeError(`opts.bandwidthBytes: expected an integer in [2^20, 2^40], received ${String(bytes)}`);
  }
  return { reps, bandwidthBytes: bytes };
}

function checkThreadList(threads: number[]): number[] {
  if (!Array.isArray(threads) || threads.length === 0) {
    throw new TypeError(`threads: expected a non-empty array of integers in [1, 1024], received ${typeof threads}`);
  }
  for (const t of threads) {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 1024) {
      throw new RangeError(`threads: expected integers in [1, 1024], received ${String(t)}`);
    }
  }
  return [...new Set(threads)];
}

/** One run for `threads` threads (the pool is grown to `threads` meanwhile). */
function runOnce(threads: number, o: Required<LimitsOptions>, into: ThreadLimits | undefined): ThreadLimits {
  const n = native();
  const before = backendInfo().threads;
  if (before !== threads) setThreads(threads);
  try {
    const read = n.measureBandwidth('read', o.bandwidthBytes, threads, o.reps);
    const copy = n.measureBandwidth('copy', o.bandwidthBytes, threads, o.reps);
    const fma = n.measureFmaPeak(threads);
    const bf16 = n.measureBf16Peak(threads);
    const lim: ThreadLimits = into ?? {
      threads,
      read: { bytesPerS: 0, runs: [], loop: read.loop, hugePages: read.hugePages },
      copy: { bytesPerS: 0, runs: [], loop: copy.loop, hugePages: copy.hugePages },
      fmaPeak: 0, fmaPeakRuns: [], bf16Peak: 0, bf16PeakRuns: [],
    };
    const merge = (f: BandwidthFigure, r: { bytesPerS: number; loop: string; hugePages: boolean }) => {
      f.runs.push(r.bytesPerS);
      if (r.bytesPerS > f.bytesPerS) {
        f.bytesPerS = r.bytesPerS;
        f.loop = r.loop;
        f.hugePages = r.hugePages;
      }
    };
    merge(lim.read, read);
    merge(lim.copy, copy);
    lim.fmaPeakRuns.push(fma);
    lim.fmaPeak = Math.max(...lim.fmaPeakRuns);
    lim.bf16PeakRuns.push(bf16);
    lim.bf16Peak = Math.max(...lim.bf16PeakRuns);
    return lim;
  } finally {
    if (backendInfo().threads !== before) setThreads(before);
  }
}

/**
 * The limits for each thread count, measured once per process (and array
 * size): later calls return the cached figures. Grows the pool to each
 * thread count while measuring and restores it.
 */
export function measureLimits(threads: number[], opts: LimitsOptions = {}): ThreadLimits[] {
  const o = checkLimitsOptions(opts);
  return checkThreadList(threads).map((t) => {
    const k = key(t, o.bandwidthBytes);
    let lim = cache.get(k);
    if (!lim) {
      lim = runOnce(t, o, undefined);
      cache.set(k, lim);
    }
    return lim;
  });
}

/** Measures again and keeps the best of every run (for the end of a long benchmark). */
export function refreshLimits(threads: number[], opts: LimitsOptions = {}): ThreadLimits[] {
  const o = checkLimitsOptions(opts);
  return checkThreadList(threads).map((t) => {
    const k = key(t, o.bandwidthBytes);
    const lim = runOnce(t, o, cache.get(k));
    cache.set(k, lim);
    return lim;
  });
}

/**
 * Gathered read bandwidth, bytes/s: 1/16 of the `blockBytes` blocks of a
 * `bandwidthBytes` array read at random, one per stratum, ascending
 * (native/core/machine_limits.h): the machine's limit for a sparse
 * decode's scattered pages. Not cached (each block size is its own figure).
 */
export function measureGatherBandwidth(blockBytes: number, threads: number, opts: LimitsOptions = {}): { bytesPerS: number; loop: string; hugePages: boolean; blockBytes: number } {
  const o = checkLimitsOptions(opts);
  const [t] = checkThreadList([threads]);
  if (!Number.isInteger(blockBytes) || blockBytes < 64 || blockBytes % 64 !== 0 || blockBytes > o.bandwidthBytes / t!) {
    throw new RangeError(`blockBytes: expected a multiple of 64 in [64, bandwidthBytes / threads = ${Math.floor(o.bandwidthBytes / t!)}], received ${String(blockBytes)}`);
  }
  const before = backendInfo().threads;
  if (before !== t) setThreads(t!);
  try {
    const r = native().measureBandwidth('gather', o.bandwidthBytes, t!, o.reps, blockBytes);
    return { bytesPerS: r.bytesPerS, loop: r.loop, hugePages: r.hugePages, blockBytes };
  } finally {
    if (backendInfo().threads !== before) setThreads(before);
  }
}

/** The cached limits for `threads` (undefined if not measured in this process). */
export function cachedLimits(threads: number, bandwidthBytes = LIMITS_BANDWIDTH_BYTES): ThreadLimits | undefined {
  return cache.get(key(threads, bandwidthBytes));
}

/** The report section every benchmark's JSON carries: CPU model and the limits it divided by. */
export function limitsReport(perThreads: ThreadLimits[], bandwidthBytes = LIMITS_BANDWIDTH_BYTES): MachineLimitsReport {
  const info = backendInfo();
  const all = os.availableParallelism();
  const one = perThreads.find((l) => l.threads === 1) ?? cachedLimits(1, bandwidthBytes);
  const full = perThreads.find((l) => l.threads === all) ?? cachedLimits(all, bandwidthBytes);
  return {
    cpuModel: cpuModel(),
    logicalCpus: all,
    detectedIsa: info.detectedIsa,
    bf16: perThreads.some((l) => l.bf16Peak > 0),
    bandwidthBytes,
    ...(one ? { oneThreadReadBandwidth: one.read.bytesPerS } : {}),
    ...(full ? { allThreadReadBandwidth: full.read.bytesPerS } : {}),
    perThreads: [...perThreads].sort((a, b) => a.threads - b.threads),
  };
}

// ---- `tokenpress bench limits` ----------------------------------------------------

export interface LimitsBenchOptions extends LimitsOptions {
  /** Thread counts; default 1 and all logical CPUs. */
  threads?: number[];
  json?: boolean;
  outFile?: string;
}

export interface LimitsBenchReport extends MachineLimitsReport {
  date: string;
  node: string;
  outFile?: string;
}

export function runLimitsBench(opts: LimitsBenchOptions = {}): LimitsBenchReport {
  const o = checkOptions('opts', opts, ['threads', 'json', 'outFile', 'reps', 'bandwidthBytes']) as LimitsBenchOptions;
  checkBoolean('opts.json', o.json, false);
  if (o.outFile !== undefined && typeof o.outFile !== 'string') {
    throw new TypeError(`opts.outFile: expected a path string, received ${typeof o.outFile}`);
  }
  const threads = checkThreadList(o.threads ?? [1, os.availableParallelism()]);
  const lopts: LimitsOptions = {
    ...(o.reps !== undefined ? { reps: o.reps } : {}),
    ...(o.bandwidthBytes !== undefined ? { bandwidthBytes: o.bandwidthBytes } : {}),
  };
  const per = measureLimits(threads, lopts);
  const date = new Date();
  const report: LimitsBenchReport = {
    date: date.toISOString(),
    node: process.version,
    ...limitsReport(per, o.bandwidthBytes ?? LIMITS_BANDWIDTH_BYTES),
  };
  const outFile = resolve(o.outFile ?? `bench-results/limits-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
  report.outFile = outFile;
  if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report;
}

const g = (x: number, unit: number, digits = 1) => (x > 0 ? (x / unit).toFixed(digits) : '-');

/** One line per thread count, for the headers of every benchmark's table. */
export function limitsLines(r: MachineLimitsReport): string[] {
  const lines = [`  CPU: ${r.cpuModel} (${r.logicalCpus} logical CPUs, ${r.detectedIsa}${r.bf16 ? ', AVX512-BF16' : ''})`];
  for (const l of r.perThreads) {
    lines.push(
      `  limits, ${l.threads} thread(s): read ${g(l.read.bytesPerS, 1e9)} GB/s (${l.read.loop}), ` +
        `copy ${g(l.copy.bytesPerS, 1e9)} GB/s copied (${l.copy.loop}), FMA f32 ${g(l.fmaPeak, 1e9)} GFLOP/s, ` +
        `bf16 dot ${g(l.bf16Peak, 1e9)} GFLOP/s`,
    );
  }
  return lines;
}

export function printLimitsTable(r: LimitsBenchReport): void {
  const lines = [`tokenpress machine limits  ${r.date}  node ${r.node}`, ...limitsLines(r)];
  lines.push(
    `  array ${(r.bandwidthBytes / GiB).toFixed(2)} GiB, huge pages ${r.perThreads.some((l) => l.read.hugePages) ? 'requested (madvise accepted)' : 'not available'}; ` +
      'every figure is the best rep; read runs: ' +
      r.perThreads.map((l) => `${l.threads}t [${l.read.runs.map((x) => (x / 1e9).toFixed(1)).join(', ')}]`).join(' '),
  );
  if (r.outFile) lines.push(`JSON: ${r.outFile}`);
  console.log(lines.join('\n'));
}
