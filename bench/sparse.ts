/**
 * Sparse-decoding benchmark (`tokenpress bench sparse`, issue 15's Measure
 * section): one decode step (nQ 1) over a long f16 KvCache, dense against
 * each sparse method, against the read bandwidth measured in the same run.
 *
 * Workload (defaults): nLayers 32 x nKvHeads 8 x headDim 128, f16, 32 query
 * heads (GQA 4), at 32768 and 131072 tokens, budget 2048 tokens per KV head.
 * The step is modelled, not allocated whole: at 131072 tokens 32 layers of
 * K and V are 17 GB. Each size holds `measuredLayers = min(layers, maxGib /
 * one layer's K + V)` distinct layers (>= 1 GiB where the size allows, so
 * the figures are DRAM figures, not cache figures), times passes over them,
 * and reports per layer x `layers` as the step (stated in the report).
 *
 * Per size, two phases (one at a time, so memory holds one copy):
 *   cache      a KvCache of measuredLayers layers: passes of dense attend
 *              and of attend({ sparse }) per method, interleaved (same
 *              minutes, same load), queries cycling over 8 random rows so
 *              the selected pages differ from pass to pass. The total.
 *              The cache keeps one summary layout per layer (Quest's pages
 *              of 16, or block retrieval's blocks of 64 with means), so
 *              methods are timed in one sub-phase per layout over the same
 *              cache (Quest and TidalDecode, which needs no summaries, then
 *              blocks), each with its own interleaved dense passes: a
 *              method's speedup is against the dense passes of its own
 *              minutes, and no pass pays a summary rebuild (the first
 *              sparse attend per layer of a sub-phase is the build, timed
 *              apart).
 *   TidalDecode is a schedule over the step's layers, not a per-layer
 *              selection: the modelled step (the library's default for
 *              `layers`: full layers 0-1, the selection layer 2, a
 *              re-selection at 13 when layers > 13, the others gathered)
 *              is composed from per-call medians on the real path: the
 *              held layers are attended as one step with the selection at
 *              held layer 0 and every other held layer gathered, each call
 *              timed (selection = a full pass with the key mass + top-k;
 *              gathered = attention over the kept rows), and full layers
 *              cost the dense attend. step = 2 dense + 2 selection + 28
 *              gathered at 32 layers.
 *   stateless  per-layer K / V arrays with the method's stateless form:
 *              dense attention(), selection alone (Quest: questSelect over
 *              the f16 page summaries: bounds + top-k), gathered attention
 *              alone (attention(..., { indices })), selection + gathered.
 *              The breakdown.
 * Then the upkeep: single-token and 512-token appends to a layer whose
 * summaries are kept against a layer without (interleaved), and the summary
 * memory against the key memory (goal <= 2 / pageSize).
 *
 * Bytes: dense reads K + V of every token; a Quest step reads the page
 * summaries (kmin, kmax: 2 f16 rows per page of 16) and K + V of the
 * selected rows; blocks read kmin, kmax (f16) and the f32 mean per block of
 * 64 and the selected rows; TidalDecode reads every row in its full and
 * selection layers and the kept rows in the others (bytesPerLayer: the
 * step's bytes / layers). idealSpeedup = dense bytes / sparse bytes (the
 * bandwidth roof).
 *
 * Methods are one array (SPARSE_BENCH_METHODS, bench/sparse-methods.ts); the
 * table is bench/sparse-print.ts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import {
  attention, backendInfo, KvCache, tidalSelect, type SparseOptions, type Tensor,
} from '../lib/index.js';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import { f16Block, median, randomBlock } from './common.js';
import { cpuModel, limitsReport, measureGatherBandwidth, measureLimits, refreshLimits, type LimitsOptions, type MachineLimitsReport } from './limits.js';

import { QUEST_PAGE, SPARSE_BENCH_METHODS, tidalStepLayers, type SparseBenchMethod } from './sparse-methods.js';

export { SPARSE_BENCH_METHODS, tidalStepLayers, type SparseBenchMethod } from './sparse-methods.js';
export { printSparseTable } from './sparse-print.js';
export interface SparseBenchOptions {
  /** Context lengths (tokens per KV head); default [32768, 131072]. */
  tokens?: number[];
  /** Layers of the modelled decode step; default 32. */
  layers?: number;
  kvHeads?: number;
  heads?: number;
  headDim?: number;
  /** Tokens per KV head each sparse step attends; default [2048]. */
  budgets?: number[];
  /** Methods (names in SPARSE_BENCH_METHODS); default all. */
  methods?: string[];
  /** Passes per measurement, medians reported; default 7. */
  reps?: number;
  /** Most GiB of K + V held at once (sets the measured layers); default 4. */
  maxGib?: number;
  /** Tokens of the upkeep cache; default 8192. */
  upkeepTokens?: number;
  quick?: boolean;
  json?: boolean;
  outFile?: string;
  progress?: boolean;
  /** Bandwidth probe options (tests use a small array; the default 1 GiB measures DRAM). */
  limits?: LimitsOptions;
}

export interface ResolvedSparseBenchOptions {
  tokens: number[];
  layers: number;
  kvHeads: number;
  heads: number;
  headDim: number;
  budgets: number[];
  methods: string[];
  reps: number;
  maxGib: number;
  upkeepTokens: number;
}

const OPTION_KEYS = ['tokens', 'layers', 'kvHeads', 'heads', 'headDim', 'budgets', 'methods', 'reps', 'maxGib', 'upkeepTokens', 'quick', 'json', 'outFile', 'progress', 'limits'];

/** The --quick workload: small enough for CI (a few seconds), same code paths. */
export const SPARSE_BENCH_QUICK = Object.freeze({ tokens: [8192], layers: 32, budgets: [512], reps: 3, maxGib: 0.5, upkeepTokens: 2048 });

function intIn(name: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${name}: expected an integer in [${lo}, ${hi}], received ${JSON.stringify(v)}`);
  if (v < lo || v > hi) throw new RangeError(`${name}: expected an integer in [${lo}, ${hi}], received ${v}`);
  return v;
}

function intListIn(name: string, v: unknown, lo: number, hi: number): number[] {
  if (!Array.isArray(v) || v.length === 0) throw new TypeError(`${name}: expected a non-empty array of integers in [${lo}, ${hi}], received ${JSON.stringify(v)}`);
  return v.map((x, i) => intIn(`${name}[${i}]`, x, lo, hi));
}

/** Validates the options (TypeError / RangeError naming the option) and fills in the defaults. */
export function resolveSparseBenchOptions(opts: SparseBenchOptions = {}): ResolvedSparseBenchOptions {
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new TypeError(`options: expected an options object, received ${JSON.stringify(opts)}`);
  for (const k of Object.keys(opts)) {
    if (!OPTION_KEYS.includes(k)) throw new TypeError(`options.${k}: unknown option; known options: ${OPTION_KEYS.join(', ')}`);
  }
  const base = opts.quick ? { ...SPARSE_BENCH_QUICK } : {};
  const o = { ...base, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as SparseBenchOptions;
  const r: ResolvedSparseBenchOptions = {
    tokens: o.tokens === undefined ? [32768, 131072] : intListIn('options.tokens', o.tokens, 1, 1 << 24),
    layers: o.layers === undefined ? 32 : intIn('options.layers', o.layers, 1, 1024),
    kvHeads: o.kvHeads === undefined ? 8 : intIn('options.kvHeads', o.kvHeads, 1, 1024),
    heads: o.heads === undefined ? 32 : intIn('options.heads', o.heads, 1, 4096),
    headDim: o.headDim === undefined ? 128 : intIn('options.headDim', o.headDim, 1, 4096),
    budgets: o.budgets === undefined ? [2048] : intListIn('options.budgets', o.budgets, 1, 1 << 24),
    methods: SPARSE_BENCH_METHODS.map((m) => m.name),
    reps: o.reps === undefined ? 7 : intIn('options.reps', o.reps, 1, 10000),
    maxGib: 4,
    upkeepTokens: o.upkeepTokens === undefined ? 8192 : intIn('options.upkeepTokens', o.upkeepTokens, 1, 1 << 24),
  };
  if (r.heads % r.kvHeads !== 0) throw new RangeError(`options.heads: expected a multiple of kvHeads = ${r.kvHeads} (GQA), received ${r.heads}`);
  if (o.maxGib !== undefined) {
    if (typeof o.maxGib !== 'number' || !(o.maxGib > 0 && o.maxGib <= 1024)) throw new RangeError(`options.maxGib: expected a number in (0, 1024], received ${JSON.stringify(o.maxGib)}`);
    r.maxGib = o.maxGib;
  }
  if (o.methods !== undefined) {
    if (!Array.isArray(o.methods) || o.methods.length === 0) throw new TypeError(`options.methods: expected a non-empty array of method names, received ${JSON.stringify(o.methods)}`);
    const known = SPARSE_BENCH_METHODS.map((m) => m.name);
    o.methods.forEach((m, i) => {
      if (!known.includes(m)) throw new TypeError(`options.methods[${i}]: expected one of ${known.map((k) => `'${k}'`).join(', ')}, received ${JSON.stringify(m)}`);
    });
    r.methods = [...o.methods];
  }
  if (r.methods.includes('tidal') && r.layers < 3) {
    throw new RangeError(`options.layers: expected at least 3 with the method 'tidal' (its default schedule: full layers 0-1, the selection at 2), received ${r.layers}; pass methods without 'tidal'`);
  }
  return r;
}

export interface StatelessFigures {
  /** attention() over every row, the same passes. */
  denseMsPerLayer: number;
  /** Selection alone (Quest: page bounds from the summaries + top-k). */
  selectMsPerLayer: number;
  /** attention(..., { indices }) over the selected rows alone. */
  gatheredMsPerLayer: number;
  /** Selection + gathered attention, back to back. */
  totalMsPerLayer: number;
  /** The same x the modelled layers. */
  selectStepMs: number;
  gatheredStepMs: number;
  totalStepMs: number;
  denseStepMs: number;
  /** denseMsPerLayer / totalMsPerLayer. */
  speedup: number;
  /** selectMsPerLayer / totalMsPerLayer. */
  selectShare: number;
}

export interface MethodFigures {
  method: string;
  budget: number;
  /** The summary layout the method's sub-phase kept in the cache (null: none). */
  layout: string | null;
  /** Rows each KV head attends per step (TidalDecode: in a gathered layer). */
  selectedPerHead: number;
  /** Bytes one layer's sparse step reads: summaries + selected K and V (TidalDecode: the step's bytes / layers). */
  bytesPerLayer: number;
  /** Dense bytes / sparse bytes: the speedup a bandwidth-bound step can reach. */
  idealSpeedup: number;
  /**
   * KvCache.attend({ sparse }): the real path. denseMsPerLayer: the dense
   * passes interleaved with this method's (its sub-phase); speedup =
   * denseMsPerLayer / msPerLayer. TidalDecode: msPerLayer = stepMs / layers.
   */
  cache: { msPerLayer: number; stepMs: number; speedup: number; denseMsPerLayer: number; gbPerS: number; pctReadBw: number; idealStepMs: number };
  /**
   * The machine's limit for this access pattern: streamed bytes at the read
   * bandwidth + gathered bytes at the gathered-read bandwidth of runs of
   * gatherRun tokens (both measured in this run). pctOfLimit = limit step /
   * measured step; limitSpeedup = the dense step at the read bandwidth /
   * the limit step (what kernels at both limits would show).
   */
  limit: { gatherRun: number; gatheredBytesPerLayer: number; stepMs: number; pctOfLimit: number; limitSpeedup: number };
  /** Summaries this method keeps: bytes per layer (0 for TidalDecode). */
  summaryBytesPerLayer: number;
  /** The first sparse attend per layer builds the summaries: median ms per layer (null: TidalDecode keeps none). */
  summaryBuildMsPerLayer: number | null;
  /** TidalDecode: the modelled step's layers by role, and the per-call medians it is composed of. */
  schedule?: { full: number; select: number; gathered: number; selectMsPerCall: number; gatheredMsPerCall: number; denseMsPerCall: number };
  stateless?: StatelessFigures;
}

export interface SizeFigures {
  tokens: number;
  /** Layers held and timed; the step is per layer x modelledLayers. */
  measuredLayers: number;
  modelledLayers: number;
  /** K + V bytes of one layer (f16). */
  layerKvBytes: number;
  /** Bytes of one layer's Quest summaries in the cache, and over the layer's key bytes (goal <= 2 / pageSize). */
  summaryBytesPerLayer: number;
  summaryOverKeyBytes: number;
  summaryGoal: number;
  dense: { msPerLayer: number; stepMs: number; gbPerS: number; pctReadBw: number; idealStepMs: number };
  methods: MethodFigures[];
  notes: string[];
}

export interface UpkeepFigures {
  tokens: number;
  /** ms per append call, median over reps, with the summaries kept and without. */
  single: { withMs: number; withoutMs: number; overhead: number; appendsPerRep: number };
  chunk: { tokens: number; withMs: number; withoutMs: number; overhead: number };
  goal: number;
}

export interface SparseBenchReport {
  date: string;
  machine: { cpus: number; model: string; threads: number; isa: string };
  config: ResolvedSparseBenchOptions;
  /** Read bandwidth with the run's threads (bench/limits.ts): at the start, and the best including the end (percentages use it). */
  readBandwidthGBs: { start: number; end: number };
  /** Gathered-read bandwidth per run length (bench/limits.ts measureGatherBandwidth), best of the start and the end. */
  gatherBandwidthGBs: { runTokens: number; blockBytes: number; start: number; end: number; loop: string }[];
  limits: MachineLimitsReport;
  sizes: SizeFigures[];
  upkeep: UpkeepFigures;
  notes: string[];
}

/** MemAvailable from /proc/meminfo, bytes (os.freemem() elsewhere). */
function availableBytes(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return os.freemem();
}

/** Timed passes of several functions, interleaved (rotating order); medians in ms. */
function interleaved(fns: (() => void)[], reps: number): number[] {
  const times = fns.map(() => [] as number[]);
  for (let rep = 0; rep < reps; rep++) {
    for (let j = 0; j < fns.length; j++) {
      const i = (j + rep) % fns.length;
      const t0 = performance.now();
      fns[i]!();
      times[i]!.push(performance.now() - t0);
    }
  }
  return times.map(median);
}

/** A full garbage collection, so the previous size's arrays are gone before the next one allocates. */
function collect(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (() => void) | undefined;
  gc?.();
}

export const GiB = 2 ** 30;
const N_QUERIES = 8;

/** Bytes of one gathered run of `tokens` f16 rows, as the probe reads it (a multiple of 64). */
const runBytes = (tokens: number, headDim: number) => Math.max(64, Math.ceil((tokens * headDim * 2) / 64) * 64);

/** Gathered-read bandwidth (GB/s) for each run length, merged into `into` (best of the runs). */
function gatherBw(runs: number[], headDim: number, threads: number, limits: LimitsOptions | undefined, into: SparseBenchReport['gatherBandwidthGBs']): void {
  for (const runTokens of runs) {
    const blockBytes = runBytes(runTokens, headDim);
    const r = measureGatherBandwidth(blockBytes, threads, limits);
    const gbs = r.bytesPerS / 1e9;
    const row = into.find((x) => x.runTokens === runTokens);
    if (!row) into.push({ runTokens, blockBytes, start: gbs, end: gbs, loop: r.loop });
    else if (gbs > row.end) Object.assign(row, { end: gbs, loop: r.loop });
  }
}

function readBw(threads: number, refresh: boolean, limits: LimitsOptions | undefined): number {
  const [lim] = (refresh ? refreshLimits : measureLimits)([threads], limits);
  return lim!.read.bytesPerS / 1e9;
}

function measureSize(
  cfg: ResolvedSparseBenchOptions, tokens: number, methods: SparseBenchMethod[], tick: (task: string) => void,
): SizeFigures {
  const { kvHeads, heads, headDim: d, layers, reps } = cfg;
  const notes: string[] = [];
  const layerKvBytes = kvHeads * tokens * d * 2 * 2;
  let measured = Math.max(1, Math.min(layers, Math.floor((cfg.maxGib * GiB) / layerKvBytes)));
  // Keep a margin for everything else on the machine: 1.5 copies of what this size holds + 1 GiB.
  const avail = availableBytes();
  const fit = Math.floor((avail - 1.5 * GiB) / (1.2 * layerKvBytes));
  if (fit < measured) {
    notes.push(`memory: ${(avail / GiB).toFixed(1)} GiB available, so ${Math.max(1, fit)} of the ${measured} layers maxGib allows are measured`);
    measured = Math.max(1, fit);
  }
  if (measured < layers) {
    notes.push(`${measured} of ${layers} layers held (${((measured * layerKvBytes) / GiB).toFixed(2)} GiB of K + V); step = median ms per layer x ${layers}`);
  }
  const n = kvHeads * tokens * d;
  const kData = f16Block(n, 11 + tokens);
  const vData = f16Block(n, 12 + tokens);
  const qs: Tensor<'f32'>[] = Array.from({ length: N_QUERIES }, (_, i) => ({ dtype: 'f32', shape: [heads, 1, d], data: randomBlock(heads * d, 100 + i) }));
  const kvShape = [kvHeads, tokens, d];

  // Phase 1: the KvCache (the real path), one sub-phase per summary layout (see the module comment).
  tick(`${tokens}: cache`);
  let cache: KvCache | undefined = new KvCache({ nLayers: measured, nKvHeads: kvHeads, headDim: d, capacity: tokens, dtype: 'f16' });
  const k: Tensor<'f16'> = { dtype: 'f16', shape: kvShape, data: kData };
  const v: Tensor<'f16'> = { dtype: 'f16', shape: kvShape, data: vData };
  for (let l = 0; l < measured; l++) cache.append(l, k, v);
  const c = cache;
  let step = 0;
  const densePass = () => {
    const q = qs[step++ % N_QUERIES]!;
    for (let l = 0; l < measured; l++) c.attend(l, q, { remember: false });
  };
  const methodRuns = methods.flatMap((m) => cfg.budgets.map((budget) => ({ m, budget })));
  const layouts = [...new Set(methodRuns.map(({ m }) => m.layout).filter((x): x is string => x !== null))];
  if (layouts.length === 0) layouts.push('none');
  const phaseOf = (m: SparseBenchMethod) => (m.layout === null ? layouts[0]! : m.layout);
  const builds: (number[] | null)[] = methodRuns.map(({ m }) => (m.layout === null ? null : []));
  const perLayerMs: number[] = methodRuns.map(() => 0);
  const phaseDenseMs: number[] = methodRuns.map(() => 0);
  const summaryBytes: number[] = methodRuns.map(() => 0);
  const tidalCalls: ({ select: number[]; gathered: number[] } | null)[] = methodRuns.map(() => null);
  const allDense: number[] = [];
  let questSummaryBytes = 0;
  for (const layout of layouts) {
    const runs = methodRuns.map((r, i) => ({ ...r, i })).filter(({ m }) => phaseOf(m) === layout);
    // Summary build: the first sparse attend of each layer (a rebuild when the layout changes from the previous sub-phase).
    for (const { m, budget, i } of runs) {
      if (m.kind !== 'layer') continue;
      const sparse = m.sparse(budget) as unknown as SparseOptions;
      for (let l = 0; l < measured; l++) {
        const t0 = performance.now();
        c.attend(l, qs[0]!, { remember: false, sparse });
        builds[i]!.push(performance.now() - t0);
      }
      summaryBytes[i] = c.questSummaries(0).bytes;
      if (m.name === 'quest') questSummaryBytes = summaryBytes[i]!;
    }
    const passes = runs.map(({ m, budget, i }) => {
      const sparse = m.sparse(budget) as unknown as SparseOptions;
      if (m.kind === 'layer') {
        return () => {
          const q = qs[step++ % N_QUERIES]!;
          for (let l = 0; l < measured; l++) c.attend(l, q, { remember: false, sparse });
        };
      }
      // TidalDecode: one step over the held layers, each call timed (held layer 0 selects, the others are gathered).
      const calls = { select: [] as number[], gathered: [] as number[] };
      tidalCalls[i] = calls;
      return () => {
        const q = qs[step++ % N_QUERIES]!;
        c.beginStep();
        for (let l = 0; l < measured; l++) {
          const t0 = performance.now();
          c.attend(l, q, { remember: false, sparse });
          (l === 0 ? calls.select : calls.gathered).push(performance.now() - t0);
        }
      };
    });
    densePass();
    for (const p of passes) p(); // warm-up
    for (const { i } of runs) { // TidalDecode: discard the warm-up's call times (this sub-phase's runs only)
      const t = tidalCalls[i];
      if (t) { t.select.length = 0; t.gathered.length = 0; }
    }
    const denseTimes: number[] = [];
    const timedDense = () => { const t0 = performance.now(); densePass(); denseTimes.push(performance.now() - t0); };
    const medians = interleaved([timedDense, ...passes], reps);
    allDense.push(...denseTimes);
    runs.forEach(({ i }, j) => {
      perLayerMs[i] = medians[j + 1]! / measured;
      phaseDenseMs[i] = medians[0]! / measured;
    });
  }
  cache.clear();
  cache = undefined;
  // Phase 2: the stateless breakdown over per-layer arrays.
  const stateless: (StatelessFigures | undefined)[] = methodRuns.map(() => undefined);
  const withStateless = methodRuns.filter(({ m }) => m.stateless || m.kind === 'step');
  if (withStateless.length > 0) {
    tick(`${tokens}: stateless`);
    const ks: Tensor<'f16'>[] = [];
    const vs: Tensor<'f16'>[] = [];
    for (let l = 0; l < measured; l++) {
      ks.push({ dtype: 'f16', shape: kvShape, data: kData.slice() });
      vs.push({ dtype: 'f16', shape: kvShape, data: vData.slice() });
    }
    const prepared = new Map<SparseBenchMethod, unknown[]>();
    for (const { m } of withStateless) if (m.stateless && !prepared.has(m)) prepared.set(m, ks.map((kk) => m.stateless!.prepare(kk)));
    let sstep = 0;
    const denseS = () => {
      const q = qs[sstep++ % N_QUERIES]!;
      for (let l = 0; l < measured; l++) attention(q, ks[l]!, vs[l]!);
    };
    denseS();
    methodRuns.forEach(({ m, budget }, i) => {
      if (m.kind === 'step') {
        stateless[i] = statelessTidal(ks, vs, qs, budget, reps, layers, denseS);
        return;
      }
      if (!m.stateless) return;
      const prep = prepared.get(m)!;
      // Indices per (query, layer), selected once, for the gathered-only passes.
      const idx = qs.map((q) => prep.map((p) => m.stateless!.select(q, p, budget)));
      let s = 0;
      const select = () => {
        const q = qs[s++ % N_QUERIES]!;
        for (let l = 0; l < measured; l++) m.stateless!.select(q, prep[l], budget);
      };
      let g = 0;
      const gathered = () => {
        const j = g++ % N_QUERIES;
        for (let l = 0; l < measured; l++) attention(qs[j]!, ks[l]!, vs[l]!, { indices: idx[j]![l]! });
      };
      let t = 0;
      const total = () => {
        const q = qs[t++ % N_QUERIES]!;
        for (let l = 0; l < measured; l++) attention(q, ks[l]!, vs[l]!, { indices: m.stateless!.select(q, prep[l], budget) });
      };
      select(); gathered(); total();
      const [dMs, sMs, gMs, tMs] = interleaved([denseS, select, gathered, total], reps).map((x) => x / measured) as [number, number, number, number];
      stateless[i] = {
        denseMsPerLayer: dMs, selectMsPerLayer: sMs, gatheredMsPerLayer: gMs, totalMsPerLayer: tMs,
        selectStepMs: sMs * layers, gatheredStepMs: gMs * layers, totalStepMs: tMs * layers, denseStepMs: dMs * layers,
        speedup: dMs / tMs, selectShare: sMs / tMs,
      };
    });
  }

  // The size's dense figure: every dense pass of the cache sub-phases.
  const denseMsPerLayer = median(allDense) / measured;
  return {
    tokens, measuredLayers: measured, modelledLayers: layers, layerKvBytes,
    summaryBytesPerLayer: questSummaryBytes,
    summaryOverKeyBytes: questSummaryBytes / (layerKvBytes / 2),
    summaryGoal: 2 / QUEST_PAGE,
    dense: { msPerLayer: denseMsPerLayer, stepMs: denseMsPerLayer * layers, gbPerS: layerKvBytes / (denseMsPerLayer / 1e3) / 1e9, pctReadBw: 0, idealStepMs: 0 },
    methods: methodRuns.map(({ m, budget }, i) => {
      const sel = m.selectedPerHead(budget, tokens);
      const bytesPerLayer = m.bytesPerLayer(budget, tokens, cfg);
      const phaseDense = phaseDenseMs[i]!;
      let msPerLayer = perLayerMs[i]!;
      let schedule: MethodFigures['schedule'];
      const calls = tidalCalls[i];
      if (calls) {
        // The modelled step from per-call medians (module comment); with one held layer no gathered call was timed.
        const st = tidalStepLayers(layers);
        const selectMs = median(calls.select);
        const gatheredMs = calls.gathered.length > 0 ? median(calls.gathered) : Number.NaN;
        if (calls.gathered.length === 0) notes.push(`tidal: 1 layer held, so no gathered attend was timed in the cache (its figures are NaN)`);
        schedule = { ...st, selectMsPerCall: selectMs, gatheredMsPerCall: gatheredMs, denseMsPerCall: phaseDense };
        msPerLayer = (st.full * phaseDense + st.select * selectMs + st.gathered * gatheredMs) / layers;
      }
      const fig: MethodFigures = {
        method: m.name, budget, layout: m.layout, selectedPerHead: sel, bytesPerLayer, idealSpeedup: layerKvBytes / bytesPerLayer,
        cache: {
          msPerLayer, stepMs: msPerLayer * layers, speedup: phaseDense / msPerLayer, denseMsPerLayer: phaseDense,
          gbPerS: bytesPerLayer / (msPerLayer / 1e3) / 1e9, pctReadBw: 0, idealStepMs: 0,
        },
        limit: { gatherRun: m.gatherRun, gatheredBytesPerLayer: m.gatheredBytesPerLayer(budget, tokens, cfg), stepMs: 0, pctOfLimit: 0, limitSpeedup: 0 },
        summaryBytesPerLayer: summaryBytes[i]!,
        summaryBuildMsPerLayer: builds[i] ? median(builds[i]!) : null,
      };
      if (schedule) fig.schedule = schedule;
      if (stateless[i]) fig.stateless = stateless[i];
      return fig;
    }),
    notes,
  };
}

/**
 * TidalDecode's stateless breakdown over the held layers: the selection
 * call (attention(..., { returnKeyMass }) + tidalSelect), the gathered call
 * (attention(..., { indices })) and the dense call, per-call medians
 * (interleaved), composed into the modelled step (tidalStepLayers):
 * select = selection layers x selection call, gathered = gathered layers x
 * gathered call, total = those + full layers x dense call; per layer =
 * step / layers.
 */
function statelessTidal(
  ks: Tensor<'f16'>[], vs: Tensor<'f16'>[], qs: Tensor<'f32'>[], budget: number, reps: number, layers: number, denseS: () => void,
): StatelessFigures {
  const measured = ks.length;
  const selectOne = (q: Tensor<'f32'>, l: number) => tidalSelect(attention(q, ks[l]!, vs[l]!, { returnKeyMass: true }).keyMass!, { budget });
  const idx = qs.map((q) => selectOne(q, 0)); // the kept positions of each query's step (held layer 0 selects)
  let s = 0;
  const select = () => {
    const q = qs[s++ % N_QUERIES]!;
    for (let l = 0; l < measured; l++) selectOne(q, l);
  };
  let g = 0;
  const gathered = () => {
    const j = g++ % N_QUERIES;
    for (let l = 0; l < measured; l++) attention(qs[j]!, ks[l]!, vs[l]!, { indices: idx[j]! });
  };
  select(); gathered();
  const [dMs, sMs, gMs] = interleaved([denseS, select, gathered], reps).map((x) => x / measured) as [number, number, number];
  const st = tidalStepLayers(layers);
  const selectStepMs = st.select * sMs;
  const gatheredStepMs = st.gathered * gMs;
  const totalStepMs = st.full * dMs + selectStepMs + gatheredStepMs;
  return {
    denseMsPerLayer: dMs, selectMsPerLayer: selectStepMs / layers, gatheredMsPerLayer: gatheredStepMs / layers, totalMsPerLayer: totalStepMs / layers,
    selectStepMs, gatheredStepMs, totalStepMs, denseStepMs: dMs * layers,
    speedup: (dMs * layers) / totalStepMs, selectShare: selectStepMs / totalStepMs,
  };
}

function measureUpkeep(cfg: ResolvedSparseBenchOptions): UpkeepFigures {
  const { kvHeads, headDim: d, upkeepTokens: T } = cfg;
  const appendsPerRep = 256;
  const chunk = 512;
  const reps = Math.max(5, cfg.reps * 2);
  const extra = reps * (appendsPerRep + chunk);
  // Layer 0 keeps Quest summaries (a sparse attend built them), layer 1 has none: the same appends to both.
  const cache = new KvCache({ nLayers: 2, nKvHeads: kvHeads, headDim: d, capacity: T + extra, dtype: 'f16' });
  const shape = (n: number) => [kvHeads, n, d];
  const k: Tensor<'f16'> = { dtype: 'f16', shape: shape(T), data: f16Block(kvHeads * T * d, 21) };
  const v: Tensor<'f16'> = { dtype: 'f16', shape: shape(T), data: f16Block(kvHeads * T * d, 22) };
  cache.append(0, k, v);
  cache.append(1, k, v);
  const q: Tensor<'f32'> = { dtype: 'f32', shape: [kvHeads, 1, d], data: randomBlock(kvHeads * d, 23) };
  cache.attend(0, q, { remember: false, sparse: { method: 'quest', budget: 256, pageSize: QUEST_PAGE } });
  const ones = Array.from({ length: appendsPerRep }, (_, i) => ({
    k: { dtype: 'f16', shape: shape(1), data: f16Block(kvHeads * d, 30 + i) } as Tensor<'f16'>,
    v: { dtype: 'f16', shape: shape(1), data: f16Block(kvHeads * d, 300 + i) } as Tensor<'f16'>,
  }));
  const ck: Tensor<'f16'> = { dtype: 'f16', shape: shape(chunk), data: f16Block(kvHeads * chunk * d, 24) };
  const cv: Tensor<'f16'> = { dtype: 'f16', shape: shape(chunk), data: f16Block(kvHeads * chunk * d, 25) };
  const singles = (layer: number) => () => { for (const o of ones) cache.append(layer, o.k, o.v); };
  const chunks = (layer: number) => () => { cache.append(layer, ck, cv); };
  // Each kind in its own phase, with and without alternating: a 512-token
  // append right after 256 single-token ones (which leave the pool's
  // workers asleep) paid their wake-up, 1-10 ms on a loaded machine, and
  // the four rotated together put the layer with summaries there every
  // time and the one without never: +1270% to +2330% in 6 runs on a
  // loaded AMD EPYC Zen 3, 2026-12-08.
  const [w1, wo1] = interleaved([singles(0), singles(1)], reps);
  const [wc, woc] = interleaved([chunks(0), chunks(1)], reps);
  if (cache.questSummaries(0).pageSize !== QUEST_PAGE || cache.questSummaries(1).pageSize !== 0) {
    throw new Error('bench sparse: the upkeep cache lost its summaries layout (layer 0 with, layer 1 without)');
  }
  cache.clear();
  return {
    tokens: T,
    single: { withMs: w1! / appendsPerRep, withoutMs: wo1! / appendsPerRep, overhead: w1! / wo1! - 1, appendsPerRep },
    chunk: { tokens: chunk, withMs: wc!, withoutMs: woc!, overhead: wc! / woc! - 1 },
    goal: 0.1,
  };
}

export async function runSparseBench(opts: SparseBenchOptions = {}): Promise<SparseBenchReport> {
  const cfg = resolveSparseBenchOptions(opts);
  const methods = cfg.methods.map((n) => SPARSE_BENCH_METHODS.find((m) => m.name === n)!);
  const info = backendInfo();
  const threads = info.threads;
  const bar = opts.progress !== false && !opts.json && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: 'bench sparse [{bar}] {value}/{total} {task}', stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(2 + 2 * cfg.tokens.length, 0, { task: 'bandwidth' });
  const tick = (task: string) => bar?.increment({ task });
  const bwStart = readBw(threads, false, opts.limits);
  const runs = [...new Set(methods.map((m) => m.gatherRun))];
  const gather: SparseBenchReport['gatherBandwidthGBs'] = [];
  gatherBw(runs, cfg.headDim, threads, opts.limits, gather);
  const sizes: SizeFigures[] = [];
  for (const t of cfg.tokens) {
    collect();
    sizes.push(measureSize(cfg, t, methods, tick));
    await new Promise<void>((r) => setImmediate(r));
  }
  tick('upkeep');
  const upkeep = measureUpkeep(cfg);
  const bwEnd = readBw(threads, true, opts.limits);
  gatherBw(runs, cfg.headDim, threads, opts.limits, gather);
  bar?.stop();
  const bw = Math.max(bwStart, bwEnd);
  for (const s of sizes) {
    s.dense.pctReadBw = (100 * s.dense.gbPerS) / bw;
    s.dense.idealStepMs = (s.layerKvBytes * s.modelledLayers) / (bw * 1e9) * 1e3;
    for (const m of s.methods) {
      m.cache.pctReadBw = (100 * m.cache.gbPerS) / bw;
      m.cache.idealStepMs = (m.bytesPerLayer * s.modelledLayers) / (bw * 1e9) * 1e3;
      const gbw = gather.find((g) => g.runTokens === m.limit.gatherRun)!.end;
      const streamed = m.bytesPerLayer - m.limit.gatheredBytesPerLayer;
      m.limit.stepMs = (s.modelledLayers * (streamed / (bw * 1e9) + m.limit.gatheredBytesPerLayer / (gbw * 1e9))) * 1e3;
      m.limit.pctOfLimit = (100 * m.limit.stepMs) / m.cache.stepMs;
      m.limit.limitSpeedup = s.dense.idealStepMs / m.limit.stepMs;
    }
  }
  const report: SparseBenchReport = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: cpuModel(), threads, isa: info.isa },
    config: cfg,
    readBandwidthGBs: { start: bwStart, end: bw },
    gatherBandwidthGBs: gather,
    limits: limitsReport(measureLimits([threads], opts.limits), opts.limits?.bandwidthBytes),
    sizes,
    upkeep,
    notes: [
      'One decode step (nQ 1) per layer; medians over interleaved passes (dense and sparse in the same minutes); per layer = pass / measured layers; step = per layer x modelled layers.',
      'cache: KvCache.attend with and without `sparse` (the real path: selection + gathered attention inside one call), one sub-phase per summary layout over the same cache (Quest and TidalDecode, then blocks), each method against the dense passes of its own sub-phase. stateless: the breakdown, attention() and the method\'s stateless selection on per-layer arrays of the same content.',
      'TidalDecode: the modelled step (full layers 0-1, selection at 2, re-selection at 13 when layers > 13, the others gathered) composed from per-call medians: the selection call (a full pass with key mass + top-k) and the gathered call timed in one step over the held layers, full layers at the dense attend; per layer = step / layers. stateless select = the selection layers\' calls, gathered = the gathered layers\' calls.',
      'Bytes: dense = K + V of every token (f16); Quest = 2 f16 summary rows per page of 16 + K + V of the selected rows; blocks = kmin, kmax (f16) and kmean (f32) per block of 64 + the selected rows; TidalDecode = every row in its full and selection layers, the kept rows in the others, averaged per layer. idealSpeedup = dense bytes / sparse bytes; idealStepMs = bytes / the read bandwidth measured in this run.',
      'limit: the machine\'s own limit for the access pattern: streamed bytes (summaries, full layers) at the read bandwidth plus the gathered K + V at the gathered-read bandwidth of runs of the method\'s length (a page, a block, one row; 1/16 of the blocks of a 1 GiB array at random, measured at the start and the end); pctOfLimit = limit step / measured step; limitSpeedup = dense bytes at the read bandwidth / the limit step.',
      'The content is random f16 in [-1, 1): the selection is meaningless here (timing only); fidelity is `tokenpress eval kv`.',
      `Upkeep: ${upkeep.single.appendsPerRep} single-token appends and one ${upkeep.chunk.tokens}-token append per rep, to a layer with Quest summaries and to one without (interleaved); overhead = with / without - 1 (goal <= 10%).`,
    ],
  };
  const file = resolve(opts.outFile ?? `bench-results/sparse-${report.date.slice(0, 10)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report;
}
