/**
 * Attention benchmark: tokenpress's CPU kernels vs onnxruntime-node graphs on
 * the same shapes, and vs the machine's own limits (read bandwidth and FMA
 * peak measured in the same run, per thread count).
 *
 * Workloads (batch 1, headDim 128, scale 1/sqrt(headDim)):
 *   decode  nHeads 32, nQ 1, nKv 4k..64k, KV f32 or f16, MHA (32 KV heads) and
 *           GQA (8 KV heads). Memory-bound: every timed call reads a different
 *           copy of the KV cache, and one rotation through the copies reads at
 *           least 1 GiB, so calls read KV from DRAM, not from the (large) LLC.
 *   prefill nQ = nKv = S causal, 32 heads, f32 (S = 2048; 512 in quick mode).
 *           Compute-bound; inputs are not rotated.
 * Metrics: median ms (tinybench), effective GB/s = KV bytes / median, % of the
 * measured read bandwidth, % of the measured FMA peak (4 * headDim FLOPs per
 * unmasked query-key pair: QK^T and PV, 2 each per multiply-add), and ratios
 * ORT median / ours (> 1: ours is faster).
 * Roofline peer (decode rows): native/attention/roofline_decode.h, the
 * simplest loop that does the same K/V traffic (one pass per KV head, 64-key
 * chunks, online softmax, the GQA group sharing each load), timed on the same
 * KV copies, interleaved with ours; ours/roof = roof median / ours median
 * (1.0: ours streams as fast as the roof loop).
 * Limits come from bench/limits.ts, shared with every other benchmark.
 * Called by `tokenpress bench attention` (lib/cli); prints a table and writes JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { loadOrt as loadOrtModule } from '../lib/model/ort-loader.js';
import cliProgress from 'cli-progress';
import { randomBlock, timeIt, type Budget, type Timed } from './common.js';
import {
  attention, backendInfo, setThreads, f32ToF16Bits, f16BitsToF32,
  type BackendInfo, type FloatDType, type Tensor,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { checkBoolean, checkOptions } from '../lib/validate.js';
import {
  cpuModel, limitsLines, limitsReport, measureLimits, refreshLimits, LIMITS_BANDWIDTH_BYTES,
  type MachineLimitsReport, type ThreadLimits,
} from './limits.js';
import * as graphs from './ort-graphs.js';

// ---- public types ----------------------------------------------------------

export interface AttentionBenchOptions {
  /**
   * Small subset for `npm start` (about 30 s on an idle 2-core VM): MHA nKv 4k/16k f32/f16, GQA 32/8
   * nKv 4k f16, prefill 512, the current thread count, fewer samples.
   */
  quick?: boolean;
  /** Print the JSON report to stdout instead of the table. */
  json?: boolean;
  /** Thread counts to measure; default [1, os.availableParallelism()] (quick: the current pool size). */
  threads?: number[];
  /** Where to write the JSON; default bench-results/attention-<date>.json. */
  outFile?: string;
  /** Progress bar on stderr (only when stderr is a TTY); default true. */
  progress?: boolean;
  /** Run the onnxruntime-node graphs when the package loads; default true. */
  ort?: boolean;
  /**
   * Tests only: one tiny decode row per dtype (nKv 300), no prefill, no ORT,
   * no KV rotation, a 16 MiB limits array. The figures mean nothing; the
   * report has the full structure.
   */
  smoke?: boolean;
}

export type OrtGraph = 'plain' | 'mha' | 'gqa';

export interface Timing {
  medianMs: number;
  samples: number;
  /** Relative margin of error of the mean, percent (tinybench rme). */
  rmePct: number;
}

export interface OrtResult extends Partial<Timing> {
  graph: OrtGraph;
  /** What the graph is (ops, dtypes, layout). */
  detail: string;
  /** max |ORT output - tokenpress output| over all outputs (not asserted). */
  maxAbsDiff?: number;
  /** Why this graph did not run for this row. */
  skipped?: string;
  error?: string;
}

/** The roofline peer's timing on a decode row. */
export interface RooflineResult extends Timing {
  gbPerS: number;
  /** roof median / ours median: 1.0 = ours streams as fast as the roof loop. */
  oursOverRoof: number;
  /** % of the read bandwidth measured with the row's thread count. */
  pctReadBw: number;
  /** % of the one-thread read bandwidth (the single-core streaming figure). */
  pctOneThreadReadBw: number;
  /** max |roof output - tokenpress output| (not asserted; both are f32 attention). */
  maxAbsDiff: number;
}

export interface AttentionBenchRow {
  kind: 'decode' | 'prefill';
  label: string;
  nHeads: number;
  nKvHeads: number;
  nQ: number;
  nKv: number;
  headDim: number;
  kvDtype: 'f32' | 'f16';
  causal: boolean;
  threads: number;
  /** Distinct KV copies cycled through, and bytes read by one full rotation. */
  kvCopies: number;
  rotationBytes: number;
  /** K + V bytes one call reads. */
  kvBytes: number;
  /** FLOPs counted per call (unmasked pairs only). */
  flops: number;
  ours: (Timing & { gbPerS: number; pctReadBw: number; pctFmaPeak: number; pctOneThreadReadBw: number }) | { error: string };
  /** The roofline peer (decode rows). */
  roof?: RooflineResult | { error: string };
  /**
   * The classic roofline bound for the row, GB/s of K/V: min(read bandwidth,
   * FMA peak * kvBytes / flops) with the row's thread count. Below the read
   * bandwidth when the arithmetic (4 * headDim FLOPs per query row and key,
   * times the GQA group) cannot keep up with the memory: then no loop streams
   * at the read bandwidth in f32 arithmetic.
   */
  modelRoofGBs?: number;
  /** ours GB/s as % of modelRoofGBs. */
  pctModelRoof?: number;
  ort: OrtResult[];
  /** Fastest ORT graph's median / ours. */
  vsOrtBest?: number;
  ortBestGraph?: OrtGraph;
  /** ORT GroupQueryAttention's median / ours. */
  vsOrtGqa?: number;
}

export interface AttentionBenchReport {
  date: string;
  quick: boolean;
  machine: {
    /** /proc/cpuinfo 'model name' (bench/limits.ts cpuModel()). */
    cpu: string;
    /** Read bandwidth, bytes/s, with one thread and with all logical CPUs (bench/limits.ts). */
    oneThreadReadBandwidth?: number;
    allThreadReadBandwidth?: number;
    logicalCpus: number;
    totalMemBytes: number;
    platform: string;
    node: string;
    backend: BackendInfo;
    /** os.loadavg() at the start and the end: other load on a shared machine skews every figure. */
    loadAvgStart: number[];
    loadAvgEnd: number[];
  };
  ort: { available: boolean; version?: string; reason?: string; notes: string[] };
  /** The shared limits (bench/limits.ts) every percentage divides by. */
  limits: MachineLimitsReport;
  notes: string[];
  rows: AttentionBenchRow[];
  outFile?: string;
}

// ---- constants ---------------------------------------------------------------

const GiB = 2 ** 30;
/** One rotation through the KV copies reads at least this much (LLC here is ~36 MiB). */
const ROTATION_BYTES = GiB;
const HEAD_DIM = 128;
const N_HEADS = 32;

const DEFAULT_NOTES = [
  'median ms from tinybench (latency p50); ratios vsOrt* = ORT median / tokenpress median (> 1: tokenpress faster)',
  'decode: each timed call reads a different copy of K/V; one rotation reads >= 1 GiB, so KV comes from DRAM',
  'prefill: compute-bound, inputs not rotated; GB/s and %BW of prefill rows are K+V bytes / time and mean little',
  'FLOPs: 4 * headDim per unmasked (query, key) pair; causal prefill counts S(S+1)/2 pairs per head, not S^2',
  '% of read bandwidth and FMA peak use the limits measured with the same thread count in this run ' +
    '(bench/limits.ts; best of a measurement at the start and one at the end)',
  'roof: the roofline peer (native/attention/roofline_decode.h), the simplest loop with the same K/V traffic, timed on the ' +
    'same KV copies, interleaved with ours (A B A B, best median of each); ours/roof = roof ms / ours ms',
  '%1T BW: GB/s / the one-thread read bandwidth (what one core can stream)',
  'model GB/s: min(read bandwidth, FMA peak * KV bytes / FLOPs) with the row\'s thread count (the classic roofline bound: ' +
    'GQA rows do group-times the arithmetic per byte); %model: ours of it',
];

// ---- small helpers -----------------------------------------------------------




/** Rounds every value to the nearest f16 (so f16 and f32 runs see the same numbers). */
function roundToF16(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = f16BitsToF32(f32ToF16Bits(a[i]!));
  return a;
}

function toF16Bits(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f32ToF16Bits(a[i]!);
  return out;
}

function f16ToF32Array(a: Uint16Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f16BitsToF32(a[i]!);
  return out;
}

/** Fills `dst` by repeating `block` (random data generated once, copied at memcpy speed). */
function tile<T extends Float32Array | Uint16Array>(dst: T, block: T): void {
  for (let off = 0; off < dst.length; off += block.length) {
    const n = Math.min(block.length, dst.length - off);
    dst.set(n === block.length ? block : block.subarray(0, n), off);
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** [nHeads, S, D] <-> [S, nHeads, D] (tokenpress BNSH vs ORT BSNH). */
function bnshToBsnh(a: Float32Array, nHeads: number, s: number, d: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < s; i++) out.set(a.subarray((h * s + i) * d, (h * s + i + 1) * d), (i * nHeads + h) * d);
  }
  return out;
}

function bsnhToBnsh(a: Float32Array, nHeads: number, s: number, d: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < s; i++) out.set(a.subarray((i * nHeads + h) * d, (i * nHeads + h + 1) * d), (h * s + i) * d);
  }
  return out;
}

const fmtGiB = (b: number): string => `${(b / GiB).toFixed(b >= GiB ? 1 : 3)} GiB`;
const kLabel = (n: number): string => (n % 1024 === 0 ? `${n / 1024}k` : String(n));

// ---- onnxruntime-node (optional) ----------------------------------------------

type OrtTypeName = 'float32' | 'float16' | 'int32';

interface OrtTensor {
  readonly type: string;
  readonly data: unknown;
  readonly dims: readonly number[];
}

interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

interface OrtModule {
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: OrtTypeName, data: Float32Array | Uint16Array | Int32Array, dims: readonly number[]) => OrtTensor;
}

interface OrtLoad {
  ort?: OrtModule;
  version?: string;
  reason?: string;
}

/** onnxruntime-node through the model runner's loader (lib/model/ort-loader.ts), or why not. */
async function loadOrt(): Promise<OrtLoad> {
  try {
    const { ort, version } = await loadOrtModule();
    return version === 'unknown' ? { ort: ort as unknown as OrtModule } : { ort: ort as unknown as OrtModule, version };
  } catch (e) {
    const code = ((e as { cause?: { code?: string } }).cause)?.code;
    return {
      reason: code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
        ? 'not installed'
        : `failed to load: ${(e as Error).message}`,
    };
  }
}

function sessionOptions(threads: number): Record<string, unknown> {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
}

function ortOutputF32(t: OrtTensor | undefined): Float32Array {
  if (!t) throw new Error('missing ORT output');
  if (t.data instanceof Float32Array) return t.data;
  if (t.type === 'float16' && t.data instanceof Uint16Array) return f16ToF32Array(t.data);
  throw new Error(`unexpected ORT output type ${t.type}`);
}

// ---- progress --------------------------------------------------------------

interface Progress {
  tick(label: string): void;
  stop(): void;
}

function makeProgress(enabled: boolean, total: number): Progress {
  if (!enabled || !process.stderr.isTTY) return { tick: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'bench attention [{bar}] {value}/{total} {label}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  return {
    tick: (label) => bar.increment(1, { label }),
    stop: () => bar.stop(),
  };
}

// ---- KV copies ----------------------------------------------------------------

/**
 * One big ArrayBuffer reused for every configuration's KV copies, so that
 * large caches are not left to the garbage collector between configurations.
 */
class Arena {
  private buf: ArrayBuffer | undefined;

  constructor(private readonly bytes: number) {}

  get size(): number {
    return this.bytes;
  }

  view<T extends Float32Array | Uint16Array>(ctor: new (b: ArrayBuffer, off: number, n: number) => T, byteOffset: number, n: number): T {
    this.buf ??= new ArrayBuffer(this.bytes);
    return new ctor(this.buf, byteOffset, n);
  }

  release(): void {
    this.buf = undefined;
  }
}

interface KvCopy {
  k: Tensor<FloatDType>;
  v: Tensor<FloatDType>;
}

interface DecodeConfig {
  nKvHeads: number;
  nKv: number;
  dtype: 'f32' | 'f16';
}

function kvCopyBytes(c: DecodeConfig): number {
  return 2 * c.nKvHeads * c.nKv * HEAD_DIM * (c.dtype === 'f32' ? 4 : 2);
}

/** Copies needed so one rotation reads >= rotationBytes (default ROTATION_BYTES), within the arena. */
function copiesFor(c: DecodeConfig, arenaBytes: number, rotationBytes = ROTATION_BYTES): number {
  const per = kvCopyBytes(c);
  const want = Math.max(1, Math.ceil(rotationBytes / per));
  return Math.max(1, Math.min(want, Math.floor(arenaBytes / per)));
}

const BLOCK = 1 << 20; // elements of random data (8k tokens of one head at D=128), tiled over each cache

function makeKvCopies(c: DecodeConfig, arena: Arena, copies: number): KvCopy[] {
  const n = c.nKvHeads * c.nKv * HEAD_DIM;
  const elemBytes = c.dtype === 'f32' ? 4 : 2;
  const kBlock = roundToF16(randomBlock(Math.min(BLOCK, n), 0x9e3779b9));
  const vBlock = roundToF16(randomBlock(Math.min(BLOCK, n), 0x7f4a7c15));
  const shape = [c.nKvHeads, c.nKv, HEAD_DIM];
  const out: KvCopy[] = [];
  for (let i = 0; i < copies; i++) {
    const base = i * 2 * n * elemBytes;
    if (c.dtype === 'f32') {
      const k = arena.view(Float32Array, base, n);
      const v = arena.view(Float32Array, base + n * elemBytes, n);
      if (i === 0) {
        tile(k, kBlock);
        tile(v, vBlock);
      } else {
        k.set((out[0]!.k.data as Float32Array));
        v.set((out[0]!.v.data as Float32Array));
      }
      out.push({ k: { dtype: 'f32', shape, data: k }, v: { dtype: 'f32', shape, data: v } });
    } else {
      const k = arena.view(Uint16Array, base, n);
      const v = arena.view(Uint16Array, base + n * elemBytes, n);
      if (i === 0) {
        tile(k, toF16Bits(kBlock));
        tile(v, toF16Bits(vBlock));
      } else {
        k.set((out[0]!.k.data as Uint16Array));
        v.set((out[0]!.v.data as Uint16Array));
      }
      out.push({ k: { dtype: 'f16', shape, data: k }, v: { dtype: 'f16', shape, data: v } });
    }
  }
  return out;
}

// ---- the run -------------------------------------------------------------------

interface Plan {
  quick: boolean;
  threads: number[];
  decode: DecodeConfig[];
  prefillS: number;
  budget: { fast: Budget; slow: Budget };
  bandwidthReps: number;
  ort: boolean;
  prefill: boolean;
  rotationBytes: number;
  limitsBytes: number;
}

function makePlan(quick: boolean, threads: number[], ort: boolean, smoke: boolean): Plan {
  const decode: DecodeConfig[] = [];
  if (smoke) {
    decode.push({ nKvHeads: N_HEADS, nKv: 300, dtype: 'f32' }, { nKvHeads: 8, nKv: 300, dtype: 'f16' });
    return {
      quick, threads, decode, prefillS: 64,
      budget: { fast: { time: 10, iterations: 2 }, slow: { time: 10, iterations: 2 } },
      bandwidthReps: 1, ort: false, prefill: false, rotationBytes: 1, limitsBytes: 16 * 2 ** 20,
    };
  }
  if (quick) {
    for (const dtype of ['f32', 'f16'] as const) {
      for (const nKv of [4096, 16384]) decode.push({ nKvHeads: N_HEADS, nKv, dtype });
    }
    decode.push({ nKvHeads: 8, nKv: 4096, dtype: 'f16' });
  } else {
    for (const nKvHeads of [N_HEADS, 8]) {
      for (const dtype of ['f32', 'f16'] as const) {
        for (const nKv of [4096, 16384, 32768, 65536]) decode.push({ nKvHeads, nKv, dtype });
      }
    }
  }
  return {
    quick,
    threads,
    decode,
    prefillS: quick ? 512 : 2048,
    budget: quick
      ? { fast: { time: 150, iterations: 3 }, slow: { time: 150, iterations: 2 } }
      : { fast: { time: 1000, iterations: 7 }, slow: { time: 1000, iterations: 5 } },
    bandwidthReps: quick ? 3 : 5,
    ort,
    prefill: true,
    rotationBytes: ROTATION_BYTES,
    limitsBytes: LIMITS_BANDWIDTH_BYTES,
  };
}

function checkThreads(value: unknown): number[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0) {
    throw new TypeError(`opts.threads: expected a non-empty array of integers in [1, 1024], received ${typeof value}`);
  }
  for (const t of value) {
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 1 || t > 1024) {
      throw new RangeError(`opts.threads: expected integers in [1, 1024], received ${String(t)}`);
    }
  }
  return [...new Set(value as number[])];
}

/** Thread counts the limits are measured for: the rows' and always 1 and all logical CPUs. */
function oneAndAll(limits: ThreadLimits[]): { oneThreadReadBandwidth?: number; allThreadReadBandwidth?: number } {
  const one = limits.find((l) => l.threads === 1);
  const all = limits.find((l) => l.threads === os.availableParallelism());
  return {
    ...(one ? { oneThreadReadBandwidth: one.read.bytesPerS } : {}),
    ...(all ? { allThreadReadBandwidth: all.read.bytesPerS } : {}),
  };
}

function limitThreads(threads: number[]): number[] {
  return [...new Set([1, ...threads, os.availableParallelism()])].sort((x, y) => x - y);
}

/** Percentages are filled in at the end, once the limits are final. */
function oursTiming(t: Timed, kvBytes: number) {
  return { ...t, gbPerS: kvBytes / (t.medianMs / 1000) / 1e9, pctReadBw: NaN, pctFmaPeak: NaN, pctOneThreadReadBw: NaN };
}

function fillPercentages(rows: AttentionBenchRow[], limits: ThreadLimits[]): void {
  const one = limits.find((l) => l.threads === 1);
  for (const row of rows) {
    const lim = limits.find((l) => l.threads === row.threads);
    if (!lim) continue;
    if (!('error' in row.ours)) {
      const s = row.ours.medianMs / 1000;
      row.ours.pctReadBw = (100 * row.kvBytes) / s / lim.read.bytesPerS;
      row.ours.pctFmaPeak = (100 * row.flops) / s / lim.fmaPeak;
      if (one) row.ours.pctOneThreadReadBw = (100 * row.kvBytes) / s / one.read.bytesPerS;
    }
    row.modelRoofGBs = Math.min(lim.read.bytesPerS, (lim.fmaPeak * row.kvBytes) / row.flops) / 1e9;
    if (!('error' in row.ours)) row.pctModelRoof = (100 * row.ours.gbPerS) / row.modelRoofGBs;
    if (row.roof && !('error' in row.roof)) {
      const s = row.roof.medianMs / 1000;
      row.roof.pctReadBw = (100 * row.kvBytes) / s / lim.read.bytesPerS;
      if (one) row.roof.pctOneThreadReadBw = (100 * row.kvBytes) / s / one.read.bytesPerS;
    }
  }
}

function finishRatios(row: AttentionBenchRow): void {
  if ('error' in row.ours) return;
  const ok = row.ort.filter((r): r is OrtResult & { medianMs: number } => typeof r.medianMs === 'number');
  if (ok.length > 0) {
    const best = ok.reduce((a, b) => (b.medianMs < a.medianMs ? b : a));
    row.vsOrtBest = best.medianMs / row.ours.medianMs;
    row.ortBestGraph = best.graph;
  }
  const gqa = ok.find((r) => r.graph === 'gqa');
  if (gqa) row.vsOrtGqa = gqa.medianMs / row.ours.medianMs;
}

const errMsg = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 300);

interface OrtCase {
  graph: OrtGraph;
  detail: string;
  /** Creates the session and the feeds for every copy (or a skip reason). */
  prepare: (threads: number) => Promise<{ session: OrtSession; run: (i: number) => Promise<Float32Array> } | { skipped: string }>;
}

/**
 * Times each ORT graph at `threads`: the first run is checked against our
 * output (max abs diff, kept per graph), then timed runs use input
 * `runIndex(i)` for the i-th call (decode rotates KV copies, prefill reuses 0).
 */
async function benchOrtCases(
  cases: OrtCase[], threads: number, label: string, diffs: Map<OrtGraph, number>, oursOut: Float32Array | undefined,
  budget: Budget, progress: Progress, runIndex: (i: number) => number,
): Promise<OrtResult[]> {
  const results: OrtResult[] = [];
  for (const oc of cases) {
    progress.tick(`${label} ort ${oc.graph}`);
    const res: OrtResult = { graph: oc.graph, detail: oc.detail };
    let session: OrtSession | undefined;
    try {
      const prepared = await oc.prepare(threads);
      if ('skipped' in prepared) {
        res.skipped = prepared.skipped;
      } else {
        session = prepared.session;
        const first = await prepared.run(0);
        if (!diffs.has(oc.graph) && oursOut) diffs.set(oc.graph, maxAbsDiff(first, oursOut));
        const d = diffs.get(oc.graph);
        if (d !== undefined) res.maxAbsDiff = d;
        let i = 0;
        Object.assign(res, await timeIt(`ort-${oc.graph}`, () => prepared.run(runIndex(i++)), budget));
      }
    } catch (e) {
      res.error = errMsg(e);
    } finally {
      await session?.release().catch(() => undefined);
    }
    results.push(res);
  }
  return results;
}

async function benchDecodeConfig(
  c: DecodeConfig, plan: Plan, arena: Arena, ort: OrtModule | undefined,
  progress: Progress, rows: AttentionBenchRow[],
): Promise<void> {
  const nH = N_HEADS;
  const D = HEAD_DIM;
  const scale = 1 / Math.sqrt(D);
  const copies = copiesFor(c, arena.size, plan.rotationBytes);
  const kv = makeKvCopies(c, arena, copies);
  const q = roundToF16(randomBlock(nH * D, 0x1234567 + c.nKv));
  const qT: Tensor<'f32'> = { dtype: 'f32', shape: [nH, 1, D], data: q };
  const out = new Float32Array(nH * D);
  const kvBytes = kvCopyBytes(c);
  const flops = 4 * nH * 1 * c.nKv * D;
  const label = `decode ${c.nKvHeads === nH ? 'MHA' : `GQA ${nH}/${c.nKvHeads}`} nKv=${kLabel(c.nKv)} ${c.dtype}`;

  // Reference output (copy 0) for the ORT cross-check.
  let oursOut: Float32Array | undefined;
  try {
    attention(qT, kv[0]!.k, kv[0]!.v, { scale, out });
    oursOut = out.slice();
  } catch {
    oursOut = undefined;
  }

  const ortCases: OrtCase[] = [];
  if (ort) {
    const elem: graphs.OrtElem = c.dtype === 'f32' ? 'float32' : 'float16';
    const kvArr = (t: Tensor<FloatDType>) => t.data as Float32Array | Uint16Array;
    const shape = { nHeads: nH, nKvHeads: c.nKvHeads, headDim: D, scale };
    const group = nH / c.nKvHeads;
    const qElem = elem === 'float32' ? q : toF16Bits(q);
    ortCases.push({
      graph: 'plain',
      detail: c.dtype === 'f32'
        ? 'Mul(q,scale) MatMul Transpose(k) Softmax MatMul v; f32; q as [nKvHeads, group, D]'
        : 'Cast(k,v f16->f32) then Mul MatMul Transpose Softmax MatMul; q/out f32',
      prepare: async (threads) => {
        const session = await ort.InferenceSession.create(graphs.plainDecodeModel(shape, elem), sessionOptions(threads));
        const feeds = kv.map((x) => ({
          q: new ort.Tensor('float32', q, [c.nKvHeads, group, D]),
          k: new ort.Tensor(elem, kvArr(x.k), [c.nKvHeads, c.nKv, D]),
          v: new ort.Tensor(elem, kvArr(x.v), [c.nKvHeads, c.nKv, D]),
        }));
        return { session, run: async (i) => ortOutputF32((await session.run(feeds[i % feeds.length]!)).out) };
      },
    });
    ortCases.push({
      graph: 'mha',
      detail: `com.microsoft MultiHeadAttention, ${elem} q/k/v/out, key/value BNSH [1, nHeads, nKv, D]`,
      prepare: async (threads) => {
        if (c.nKvHeads !== nH) return { skipped: 'MultiHeadAttention has no GQA (nKvHeads must equal nHeads)' };
        const session = await ort.InferenceSession.create(graphs.mhaDecodeModel(shape, elem), sessionOptions(threads));
        const feeds = kv.map((x) => ({
          query: new ort.Tensor(elem, qElem, [1, 1, nH * D]),
          key: new ort.Tensor(elem, kvArr(x.k), [1, nH, c.nKv, D]),
          value: new ort.Tensor(elem, kvArr(x.v), [1, nH, c.nKv, D]),
        }));
        return { session, run: async (i) => ortOutputF32((await session.run(feeds[i % feeds.length]!)).output) };
      },
    });
    ortCases.push({
      graph: 'gqa',
      detail: `com.microsoft GroupQueryAttention, ${elem}, past_key/past_value = the cache (BNSH, nKv slots), ` +
        'key/value = its last token, seqlens_k = nKv-1, total_sequence_length = nKv, ' +
        'present_* bound to the past buffers (past_present_share_buffer: no KV copy)',
      prepare: async (threads) => {
        const session = await ort.InferenceSession.create(graphs.gqaDecodeModel(shape, elem), sessionOptions(threads));
        const kvD = c.nKvHeads * D;
        const lastToken = (a: Float32Array | Uint16Array) => {
          const o = a instanceof Float32Array ? new Float32Array(kvD) : new Uint16Array(kvD);
          for (let h = 0; h < c.nKvHeads; h++) o.set(a.subarray((h * c.nKv + c.nKv - 1) * D, (h * c.nKv + c.nKv) * D), h * D);
          return o;
        };
        const kLast = lastToken(kvArr(kv[0]!.k));
        const vLast = lastToken(kvArr(kv[0]!.v));
        const sets = kv.map((x) => {
          const pastK = new ort.Tensor(elem, kvArr(x.k), [1, c.nKvHeads, c.nKv, D]);
          const pastV = new ort.Tensor(elem, kvArr(x.v), [1, c.nKvHeads, c.nKv, D]);
          return {
            feeds: {
              query: new ort.Tensor(elem, qElem, [1, 1, nH * D]),
              key: new ort.Tensor(elem, kLast, [1, 1, kvD]),
              value: new ort.Tensor(elem, vLast, [1, 1, kvD]),
              past_key: pastK,
              past_value: pastV,
              seqlens_k: new ort.Tensor('int32', Int32Array.of(c.nKv - 1), [1]),
              total_sequence_length: new ort.Tensor('int32', Int32Array.of(c.nKv), []),
            },
            fetches: { output: null, present_key: pastK, present_value: pastV },
          };
        });
        return {
          session,
          run: async (i) => {
            const s = sets[i % sets.length]!;
            return ortOutputF32((await session.run(s.feeds, s.fetches)).output);
          },
        };
      },
    });
  }

  const diffs = new Map<OrtGraph, number>();
  for (const t of plan.threads) {
    setThreads(t);
    const row: AttentionBenchRow = {
      kind: 'decode', label, nHeads: nH, nKvHeads: c.nKvHeads, nQ: 1, nKv: c.nKv, headDim: D, kvDtype: c.dtype,
      causal: false, threads: t, kvCopies: copies, rotationBytes: copies * kvBytes, kvBytes, flops,
      ours: { error: 'not run' }, ort: [],
    };
    progress.tick(`${label} t=${t} tokenpress + roof`);
    await timeOursAndRoof(row, plan, kv, qT, scale, out, t, oursOut);
    row.ort.push(...await benchOrtCases(ortCases, t, `${label} t=${t}`, diffs, oursOut, plan.budget.slow, progress, (i) => i + 1));
    finishRatios(row);
    rows.push(row);
  }
}

/** Ours and the roofline peer on the same KV copies, interleaved A B A B (half the budget each); best median of each. */
async function timeOursAndRoof(
  row: AttentionBenchRow, plan: Plan, kv: KvCopy[], qT: Tensor<'f32'>, scale: number, out: Float32Array, threads: number,
  oursOut: Float32Array | undefined,
): Promise<void> {
  const n = native();
  const q = qT.data;
  const roofOut = new Float32Array(q.length);
  const roof = (x: KvCopy) => n.rooflineDecode({
    q, k: x.k.data as Float32Array | Uint16Array, v: x.v.data as Float32Array | Uint16Array, out: roofOut,
    kvDtype: row.kvDtype === 'f32' ? 0 : 1, nHeads: row.nHeads, nKvHeads: row.nKvHeads, nKv: row.nKv, headDim: row.headDim,
    scale, isa: -1, threads,
  });
  const ours = (x: KvCopy) => attention(qT, x.k, x.v, { scale, out });
  const half: Budget = { time: plan.budget.fast.time / 2, iterations: Math.max(2, Math.ceil(plan.budget.fast.iterations / 2)) };
  const best = (a: Timed | undefined, b: Timed): Timed =>
    a === undefined ? b : { ...(b.medianMs < a.medianMs ? b : a), samples: a.samples + b.samples };
  let oursT: Timed | undefined;
  let roofT: Timed | undefined;
  let oursErr: string | undefined;
  let roofErr: string | undefined;
  let maxDiff = NaN;
  try {
    roof(kv[0]!);
    maxDiff = oursOut ? maxAbsDiff(roofOut, oursOut) : NaN;
  } catch (e) {
    roofErr = errMsg(e);
  }
  for (let round = 0; round < 2; round++) {
    if (oursErr === undefined) {
      try {
        let i = 0;
        ours(kv[kv.length - 1]!); // warmup
        oursT = best(oursT, await timeIt('tokenpress', () => ours(kv[i++ % kv.length]!), half));
      } catch (e) {
        oursErr = errMsg(e);
      }
    }
    if (roofErr === undefined) {
      try {
        let i = 0;
        roof(kv[kv.length - 1]!); // warmup
        roofT = best(roofT, await timeIt('roof', () => roof(kv[i++ % kv.length]!), half));
      } catch (e) {
        roofErr = errMsg(e);
      }
    }
  }
  row.ours = oursErr !== undefined || !oursT ? { error: oursErr ?? 'not run' } : oursTiming(oursT, row.kvBytes);
  if (roofErr !== undefined || !roofT) {
    row.roof = { error: roofErr ?? 'not run' };
  } else {
    row.roof = {
      ...roofT,
      gbPerS: row.kvBytes / (roofT.medianMs / 1000) / 1e9,
      oursOverRoof: oursT ? roofT.medianMs / oursT.medianMs : NaN,
      pctReadBw: NaN,
      pctOneThreadReadBw: NaN,
      maxAbsDiff: maxDiff,
    };
  }
}

async function benchPrefill(
  plan: Plan, ort: OrtModule | undefined, progress: Progress, rows: AttentionBenchRow[],
): Promise<void> {
  const nH = N_HEADS;
  const D = HEAD_DIM;
  const S = plan.prefillS;
  const scale = 1 / Math.sqrt(D);
  const n = nH * S * D;
  const q = randomBlock(n, 11);
  const k = randomBlock(n, 12);
  const v = randomBlock(n, 13);
  const shape = [nH, S, D];
  const qT: Tensor<'f32'> = { dtype: 'f32', shape, data: q };
  const kT: Tensor<'f32'> = { dtype: 'f32', shape, data: k };
  const vT: Tensor<'f32'> = { dtype: 'f32', shape, data: v };
  const out = new Float32Array(n);
  const kvBytes = 2 * n * 4;
  const pairs = (S * (S + 1)) / 2;
  const flops = 4 * nH * D * pairs;
  const label = `prefill ${S}x${S} causal f32`;

  let oursOut: Float32Array | undefined;
  try {
    attention(qT, kT, vT, { scale, causal: true, out });
    oursOut = out.slice();
  } catch {
    oursOut = undefined;
  }

  const ortCases: OrtCase[] = [];
  if (ort) {
    const qb = bnshToBsnh(q, nH, S, D);
    const kb = bnshToBsnh(k, nH, S, D);
    const vb = bnshToBsnh(v, nH, S, D);
    const mask = new Float32Array(S * S);
    for (let i = 0; i < S; i++) mask.fill(-Infinity, i * S + i + 1, (i + 1) * S);
    ortCases.push({
      graph: 'plain',
      detail: 'Mul(q,scale) MatMul Transpose(k) Add(causal mask [S,S], -inf) Softmax MatMul v; f32; full S^2 scores',
      prepare: async (threads) => {
        const session = await ort.InferenceSession.create(graphs.plainPrefillModel(nH, D, scale), sessionOptions(threads));
        const feeds = {
          q: new ort.Tensor('float32', q, shape), k: new ort.Tensor('float32', k, shape),
          v: new ort.Tensor('float32', v, shape), mask: new ort.Tensor('float32', mask, [S, S]),
        };
        return { session, run: async () => ortOutputF32((await session.run(feeds)).out) };
      },
    });
    ortCases.push({
      graph: 'mha',
      detail: 'com.microsoft MultiHeadAttention, f32, q/k/v BSD [1, S, nHeads*D], unidirectional=1',
      prepare: async (threads) => {
        const session = await ort.InferenceSession.create(graphs.mhaPrefillModel(nH, D, scale, 'float32'), sessionOptions(threads));
        const dims = [1, S, nH * D];
        const feeds = {
          query: new ort.Tensor('float32', qb, dims), key: new ort.Tensor('float32', kb, dims),
          value: new ort.Tensor('float32', vb, dims),
        };
        return { session, run: async () => bsnhToBnsh(ortOutputF32((await session.run(feeds)).output), nH, S, D) };
      },
    });
    ortCases.push({
      graph: 'gqa',
      detail: 'com.microsoft GroupQueryAttention prompt (no past), f32, kv_num_heads = num_heads, seqlens_k = S-1',
      prepare: async (threads) => {
        const session = await ort.InferenceSession.create(graphs.gqaPrefillModel(nH, D, scale, 'float32'), sessionOptions(threads));
        const dims = [1, S, nH * D];
        const feeds = {
          query: new ort.Tensor('float32', qb, dims), key: new ort.Tensor('float32', kb, dims),
          value: new ort.Tensor('float32', vb, dims),
          seqlens_k: new ort.Tensor('int32', Int32Array.of(S - 1), [1]),
          total_sequence_length: new ort.Tensor('int32', Int32Array.of(S), []),
        };
        return { session, run: async () => bsnhToBnsh(ortOutputF32((await session.run(feeds)).output), nH, S, D) };
      },
    });
  }

  const diffs = new Map<OrtGraph, number>();
  for (const t of plan.threads) {
    setThreads(t);
    const row: AttentionBenchRow = {
      kind: 'prefill', label, nHeads: nH, nKvHeads: nH, nQ: S, nKv: S, headDim: D, kvDtype: 'f32', causal: true,
      threads: t, kvCopies: 1, rotationBytes: kvBytes, kvBytes, flops, ours: { error: 'not run' }, ort: [],
    };
    progress.tick(`${label} t=${t} tokenpress`);
    try {
      attention(qT, kT, vT, { scale, causal: true, out }); // warmup
      const timed = await timeIt('tokenpress', () => attention(qT, kT, vT, { scale, causal: true, out }), plan.budget.slow);
      row.ours = oursTiming(timed, kvBytes);
    } catch (e) {
      row.ours = { error: errMsg(e) };
    }
    row.ort.push(...await benchOrtCases(ortCases, t, `${label} t=${t}`, diffs, oursOut, plan.budget.slow, progress, () => 0));
    finishRatios(row);
    rows.push(row);
  }
}

/**
 * Runs the attention benchmark. Changes the native pool size while it runs
 * and restores it afterwards. Writes the JSON report (opts.outFile or
 * bench-results/attention-<date>.json) and returns it.
 */
export async function runAttentionBench(opts: AttentionBenchOptions = {}): Promise<AttentionBenchReport> {
  const o = checkOptions('opts', opts, ['quick', 'json', 'threads', 'outFile', 'progress', 'ort', 'smoke']) as AttentionBenchOptions;
  const quick = checkBoolean('opts.quick', o.quick, false);
  const useOrt = checkBoolean('opts.ort', o.ort, true);
  const smoke = checkBoolean('opts.smoke', o.smoke, false);
  const showProgress = checkBoolean('opts.progress', o.progress, true);
  checkBoolean('opts.json', o.json, false);
  if (o.outFile !== undefined && typeof o.outFile !== 'string') {
    throw new TypeError(`opts.outFile: expected a path string, received ${typeof o.outFile}`);
  }
  const startInfo = backendInfo();
  const loadAvgStart = os.loadavg();
  const originalThreads = startInfo.threads;
  const threads = checkThreads(o.threads)
    ?? (quick ? [originalThreads] : [...new Set([1, os.availableParallelism()])]);
  const plan = makePlan(quick, threads, useOrt, smoke);

  const ortLoad: OrtLoad = plan.ort ? await loadOrt() : { reason: 'not requested (opts.ort false or smoke)' };
  const ort = ortLoad.ort;
  const decodeRuns = plan.decode.length * threads.length;
  const perRun = 1 + (ort ? 3 : 0);
  const total = 2 + decodeRuns * perRun + (plan.prefill ? threads.length * perRun : 0);
  const progress = makeProgress(showProgress, total);

  const maxCopyBytes = Math.max(...plan.decode.map((c) => copiesFor(c, Infinity, plan.rotationBytes) * kvCopyBytes(c)));
  const arena = new Arena(Math.min(maxCopyBytes, 2 * GiB + 64 * 2 ** 20));
  const rows: AttentionBenchRow[] = [];
  const limThreads = limitThreads(threads);
  const limOpts = { reps: plan.bandwidthReps, bandwidthBytes: plan.limitsBytes };
  let limits: ThreadLimits[] = [];
  try {
    progress.tick('machine limits');
    limits = measureLimits(limThreads, limOpts);
    for (const c of plan.decode) await benchDecodeConfig(c, plan, arena, ort, progress, rows);
    arena.release();
    if (plan.prefill) await benchPrefill(plan, ort, progress, rows);
    progress.tick('machine limits again');
    limits = refreshLimits(limThreads, limOpts);
    fillPercentages(rows, limits);
  } finally {
    progress.stop();
    arena.release();
    setThreads(originalThreads);
  }

  const ortNotes: string[] = [];
  if (ort) {
    ortNotes.push(
      'intraOpNumThreads = the row\'s thread count, interOpNumThreads 1, sequential, graphOptimizationLevel all, CPU EP',
      'f16 rows: MultiHeadAttention and GroupQueryAttention run in float16 end to end (q rounded to f16 for every engine); ' +
        'the plain graph casts f16 K/V to f32',
      'MultiHeadAttention has no GQA form, so GQA rows have plain and GroupQueryAttention only',
    );
  }
  const date = new Date();
  const report: AttentionBenchReport = {
    date: date.toISOString(),
    quick,
    machine: {
      cpu: cpuModel(),
      ...oneAndAll(limits),
      logicalCpus: os.cpus().length,
      totalMemBytes: os.totalmem(),
      platform: `${os.platform()} ${os.release()} ${os.arch()}`,
      node: process.version,
      backend: startInfo,
      loadAvgStart,
      loadAvgEnd: os.loadavg(),
    },
    ort: {
      available: ort !== undefined,
      ...(ortLoad.version !== undefined ? { version: ortLoad.version } : {}),
      ...(ortLoad.reason !== undefined ? { reason: ortLoad.reason } : {}),
      notes: ortNotes,
    },
    limits: limitsReport(limits, plan.limitsBytes),
    notes: [
      ...DEFAULT_NOTES,
      `prefill: S = ${plan.prefillS}, ${N_HEADS} heads, headDim ${HEAD_DIM}${quick ? ' (quick mode; the full run uses 2048)' : ''}`,
    ],
    rows,
  };
  const outFile = resolve(o.outFile ?? `bench-results/attention-${date.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
  report.outFile = outFile;
  if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report;
}

// ---- table ---------------------------------------------------------------------

function fmt(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}

function ortCell(row: AttentionBenchRow, g: OrtGraph): string {
  const r = row.ort.find((x) => x.graph === g);
  if (!r) return '-';
  if (r.skipped) return 'n/a';
  if (r.error) return 'error';
  return fmt(r.medianMs, r.medianMs !== undefined && r.medianMs < 10 ? 2 : 1);
}

/** Prints the report as an aligned table on stdout (plus limits and notes). */
export function printAttentionTable(report: AttentionBenchReport): void {
  const lines: string[] = [];
  const m = report.machine;
  const gb = (x: number | undefined) => (x === undefined ? '-' : (x / 1e9).toFixed(1));
  lines.push(`tokenpress attention benchmark  ${report.date}  ${m.cpu}  isa=${m.backend.isa}  ` +
    `load avg ${m.loadAvgStart[0]?.toFixed(1)} -> ${m.loadAvgEnd[0]?.toFixed(1)} on ${m.logicalCpus} CPUs`);
  lines.push(`  read bandwidth: ${gb(m.oneThreadReadBandwidth)} GB/s one thread, ${gb(m.allThreadReadBandwidth)} GB/s all ${m.logicalCpus} threads ` +
    `(${fmtGiB(report.limits.bandwidthBytes)} array, bench/limits.ts)`);
  lines.push(...limitsLines(report.limits));
  lines.push(report.ort.available
    ? `  onnxruntime-node ${report.ort.version ?? ''}: plain = MatMul/Softmax graph, mha = MultiHeadAttention, gqa = GroupQueryAttention`
    : `  onnxruntime-node: ${report.ort.reason ?? 'unavailable'}`);
  const header = ['workload', 'thr', 'ours ms', 'GB/s', 'roof GB/s', 'ours/roof', '%BW', 'roof %BW', '%1T BW', '%FMA', 'model GB/s', '%model',
    'plain ms', 'mha ms', 'gqa ms', 'x best', 'x gqa'];
  const body: string[][] = report.rows.map((r) => {
    const ours = 'error' in r.ours ? undefined : r.ours;
    const roof = r.roof && !('error' in r.roof) ? r.roof : undefined;
    return [
      r.label, String(r.threads),
      ours ? fmt(ours.medianMs, ours.medianMs < 10 ? 2 : 1) : 'error',
      fmt(ours?.gbPerS), r.roof ? (roof ? fmt(roof.gbPerS) : 'error') : '-', fmt(roof?.oursOverRoof, 2),
      fmt(ours?.pctReadBw, 0), fmt(roof?.pctReadBw, 0), fmt(ours?.pctOneThreadReadBw, 0), fmt(ours?.pctFmaPeak, 1),
      r.kind === 'decode' ? fmt(r.modelRoofGBs) : '-', r.kind === 'decode' ? fmt(r.pctModelRoof, 0) : '-',
      ortCell(r, 'plain'), ortCell(r, 'mha'), ortCell(r, 'gqa'),
      r.vsOrtBest !== undefined ? `${fmt(r.vsOrtBest, 2)} (${r.ortBestGraph})` : '-',
      fmt(r.vsOrtGqa, 2),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push('', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line), '');
  for (const r of report.rows) {
    if ('error' in r.ours) lines.push(`  ${r.label} t=${r.threads}: tokenpress error: ${r.ours.error}`);
    if (r.roof && 'error' in r.roof) lines.push(`  ${r.label} t=${r.threads}: roof error: ${r.roof.error}`);
    for (const x of r.ort) if (x.error) lines.push(`  ${r.label} t=${r.threads}: ort ${x.graph} error: ${x.error}`);
  }
  lines.push('ours/roof: roofline-peer ms / tokenpress ms (1.0: tokenpress streams K/V as fast as the minimal loop).');
  lines.push('%BW, roof %BW: of the read bandwidth with the row\'s thread count; %1T BW: ours of the one-thread read bandwidth.');
  lines.push('model GB/s: min(read bandwidth, FMA peak x KV bytes / FLOPs), the classic roofline bound; %model: ours of it.');
  lines.push('x best / x gqa: ORT median / tokenpress median (> 1 means tokenpress is faster).');
  if (report.outFile) lines.push(`JSON: ${report.outFile}`);
  console.log(lines.join('\n'));
}
