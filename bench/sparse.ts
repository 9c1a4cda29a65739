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
 *   stateless  per-layer K / V arrays with the method's stateless form:
 *              dense attention(), selection alone (Quest: questSelect over
 *              the f16 page summaries: bounds + top-k), gathered attention
 *              alone (attention(..., { indices })), selection + gathered.
 *              The breakdown.
 * Then the upkeep: single-token and 512-token appends to a layer whose
 * summaries are kept against a layer without (interleaved), and the summary
 * memory against the key memory (goal <= 2 / pageSize).
 *
 * Bytes: dense reads K + V of every token; a sparse step reads the page
 * summaries (kmin, kmax: 2 rows per page) and K + V of the selected rows.
 * idealSpeedup = dense bytes / sparse bytes (the bandwidth roof).
 *
 * Methods are one array (SPARSE_BENCH_METHODS): TidalDecode and block
 * retrieval append their entries there.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import {
  attention, backendInfo, f32ToF16Bits, KvCache, questPageSummaries, questSelect, type SparseOptions, type Tensor,
} from '../lib/index.js';
import { runInNewContext } from 'node:vm';
import v8 from 'node:v8';
import { randomBlock } from './common.js';
import { cpuModel, limitsReport, measureLimits, refreshLimits, type LimitsOptions, type MachineLimitsReport } from './limits.js';

/** One sparse method as the bench drives it. */
export interface SparseBenchMethod {
  name: string;
  /** tokens selected per KV head for a budget at nKv tokens (the bytes model). */
  selectedPerHead(budget: number, nKv: number): number;
  /** Rows of summaries read per KV head (f16 rows of headDim), for the bytes model. */
  summaryRowsPerHead(nKv: number): number;
  /** KvCache.attend's `sparse` option. */
  sparse(budget: number): Record<string, unknown>;
  /** The stateless form, for the breakdown (selection, gathered attention); absent = cache total only. */
  stateless?: {
    prepare(k: Tensor<'f16'>): unknown;
    select(q: Tensor<'f32'>, prepared: unknown, budget: number): Tensor<'i32'>;
  };
}

const QUEST_PAGE = 16;

/** The methods measured; TidalDecode and block retrieval append theirs. */
export const SPARSE_BENCH_METHODS: SparseBenchMethod[] = [
  {
    name: 'quest',
    selectedPerHead: (budget, nKv) => Math.min(nKv, Math.max(1, Math.floor(budget / QUEST_PAGE)) * QUEST_PAGE),
    summaryRowsPerHead: (nKv) => 2 * Math.ceil(nKv / QUEST_PAGE),
    sparse: (budget) => ({ method: 'quest', budget, pageSize: QUEST_PAGE }),
    stateless: {
      prepare: (k) => questPageSummaries(k, { pageSize: QUEST_PAGE }),
      select: (q, prepared, budget) => questSelect(q, prepared as ReturnType<typeof questPageSummaries>, { budget }),
    },
  },
];

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
  /** Rows each KV head attends per step. */
  selectedPerHead: number;
  /** Bytes one layer's sparse step reads: summaries + selected K and V. */
  bytesPerLayer: number;
  /** Dense bytes / sparse bytes: the speedup a bandwidth-bound step can reach. */
  idealSpeedup: number;
  /** KvCache.attend({ sparse }): the real path. */
  cache: { msPerLayer: number; stepMs: number; speedup: number; gbPerS: number; pctReadBw: number; idealStepMs: number };
  /** The first sparse attend per layer builds the summaries: median ms per layer. */
  summaryBuildMsPerLayer: number;
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
  limits: MachineLimitsReport;
  sizes: SizeFigures[];
  upkeep: UpkeepFigures;
  notes: string[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function f16Block(n: number, seed: number): Uint16Array {
  const f = randomBlock(n, seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(f[i]!);
  return out;
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

const GiB = 2 ** 30;
const N_QUERIES = 8;

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

  // Phase 1: the KvCache (the real path).
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
  const builds: number[][] = methodRuns.map(() => []);
  const sparsePasses = methodRuns.map(({ m, budget }) => {
    const sparse = m.sparse(budget) as unknown as SparseOptions;
    return () => {
      const q = qs[step++ % N_QUERIES]!;
      for (let l = 0; l < measured; l++) c.attend(l, q, { remember: false, sparse });
    };
  });
  // Summary build: the first sparse attend of each layer (per method: a rebuild when the page size changes).
  methodRuns.forEach(({ m, budget }, i) => {
    const sparse = m.sparse(budget) as unknown as SparseOptions;
    for (let l = 0; l < measured; l++) {
      const t0 = performance.now();
      c.attend(l, qs[0]!, { remember: false, sparse });
      builds[i]!.push(performance.now() - t0);
    }
  });
  const summaryBytes = c.questSummaries(0).bytes;
  densePass();
  const [denseMs, ...sparseMs] = interleaved([densePass, ...sparsePasses], reps);
  cache.clear();
  cache = undefined;

  // Phase 2: the stateless breakdown over per-layer arrays.
  const stateless: (StatelessFigures | undefined)[] = methodRuns.map(() => undefined);
  const withStateless = methodRuns.filter(({ m }) => m.stateless);
  if (withStateless.length > 0) {
    tick(`${tokens}: stateless`);
    const ks: Tensor<'f16'>[] = [];
    const vs: Tensor<'f16'>[] = [];
    for (let l = 0; l < measured; l++) {
      ks.push({ dtype: 'f16', shape: kvShape, data: kData.slice() });
      vs.push({ dtype: 'f16', shape: kvShape, data: vData.slice() });
    }
    const prepared = new Map<SparseBenchMethod, unknown[]>();
    for (const { m } of withStateless) if (!prepared.has(m)) prepared.set(m, ks.map((kk) => m.stateless!.prepare(kk)));
    let sstep = 0;
    const denseS = () => {
      const q = qs[sstep++ % N_QUERIES]!;
      for (let l = 0; l < measured; l++) attention(q, ks[l]!, vs[l]!);
    };
    denseS();
    methodRuns.forEach(({ m, budget }, i) => {
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

  const denseMsPerLayer = denseMs! / measured;
  return {
    tokens, measuredLayers: measured, modelledLayers: layers, layerKvBytes,
    summaryBytesPerLayer: summaryBytes,
    summaryOverKeyBytes: summaryBytes / (layerKvBytes / 2),
    summaryGoal: 2 / QUEST_PAGE,
    dense: { msPerLayer: denseMsPerLayer, stepMs: denseMsPerLayer * layers, gbPerS: layerKvBytes / (denseMsPerLayer / 1e3) / 1e9, pctReadBw: 0, idealStepMs: 0 },
    methods: methodRuns.map(({ m, budget }, i) => {
      const sel = m.selectedPerHead(budget, tokens);
      const bytesPerLayer = kvHeads * (m.summaryRowsPerHead(tokens) * d * 2 + sel * d * 2 * 2);
      const msPerLayer = sparseMs[i]! / measured;
      const fig: MethodFigures = {
        method: m.name, budget, selectedPerHead: sel, bytesPerLayer, idealSpeedup: layerKvBytes / bytesPerLayer,
        cache: { msPerLayer, stepMs: msPerLayer * layers, speedup: denseMsPerLayer / msPerLayer, gbPerS: bytesPerLayer / (msPerLayer / 1e3) / 1e9, pctReadBw: 0, idealStepMs: 0 },
        summaryBuildMsPerLayer: median(builds[i]!),
      };
      if (stateless[i]) fig.stateless = stateless[i];
      return fig;
    }),
    notes,
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
  const [w1, wo1, wc, woc] = interleaved([singles(0), singles(1), chunks(0), chunks(1)], reps);
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
  const sizes: SizeFigures[] = [];
  for (const t of cfg.tokens) {
    collect();
    sizes.push(measureSize(cfg, t, methods, tick));
    await new Promise<void>((r) => setImmediate(r));
  }
  tick('upkeep');
  const upkeep = measureUpkeep(cfg);
  const bwEnd = readBw(threads, true, opts.limits);
  bar?.stop();
  const bw = Math.max(bwStart, bwEnd);
  for (const s of sizes) {
    s.dense.pctReadBw = (100 * s.dense.gbPerS) / bw;
    s.dense.idealStepMs = (s.layerKvBytes * s.modelledLayers) / (bw * 1e9) * 1e3;
    for (const m of s.methods) {
      m.cache.pctReadBw = (100 * m.cache.gbPerS) / bw;
      m.cache.idealStepMs = (m.bytesPerLayer * s.modelledLayers) / (bw * 1e9) * 1e3;
    }
  }
  const report: SparseBenchReport = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: cpuModel(), threads, isa: info.isa },
    config: cfg,
    readBandwidthGBs: { start: bwStart, end: bw },
    limits: limitsReport(measureLimits([threads], opts.limits), opts.limits?.bandwidthBytes),
    sizes,
    upkeep,
    notes: [
      'One decode step (nQ 1) per layer; medians over interleaved passes (dense and sparse in the same minutes); per layer = pass / measured layers; step = per layer x modelled layers.',
      'cache: KvCache.attend with and without `sparse` (the real path: selection + gathered attention inside one call). stateless: the breakdown, attention() and the method\'s stateless selection on per-layer arrays of the same content.',
      'Bytes: dense = K + V of every token (f16); sparse = the summaries (2 f16 rows per page and KV head) + K + V of the selected rows. idealSpeedup = dense bytes / sparse bytes; idealStepMs = bytes / the read bandwidth measured in this run.',
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

const f = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));

export function printSparseTable(r: SparseBenchReport): void {
  const c = r.config;
  console.log(`Sparse decode step: ${c.layers} layers x ${c.kvHeads} KV heads x headDim ${c.headDim}, f16, ${c.heads} query heads, nQ 1; ${r.machine.threads} threads (${r.machine.isa})`);
  console.log(`CPU: ${r.machine.model}; read bandwidth (bench/limits.ts): ${f(r.readBandwidthGBs.start)} GB/s at start, ${f(r.readBandwidthGBs.end)} GB/s best incl. the end (percentages use the best)`);
  for (const s of r.sizes) {
    console.log('');
    console.log(`${s.tokens} tokens: ${s.measuredLayers} of ${s.modelledLayers} layers measured (${f((s.measuredLayers * s.layerKvBytes) / GiB, 2)} GiB K + V); summaries ${f(s.summaryBytesPerLayer / 2 ** 20)} MiB/layer = ${f(100 * s.summaryOverKeyBytes, 2)}% of the keys (goal <= ${f(100 * s.summaryGoal, 1)}%)`);
    console.log(`  dense step ${f(s.dense.stepMs)} ms (${f(s.dense.msPerLayer, 3)} ms/layer), ${f(s.dense.gbPerS)} GB/s = ${f(s.dense.pctReadBw, 0)}% of read BW; bandwidth-ideal ${f(s.dense.idealStepMs)} ms`);
    console.log('  method   budget  sel/head  step ms  speedup  ideal  GB/s  %BW  | stateless: select ms  gathered ms  total ms  speedup  select share | build ms/layer');
    for (const m of s.methods) {
      const st = m.stateless;
      console.log(
        `  ${m.method.padEnd(8)} ${String(m.budget).padStart(6)}  ${String(m.selectedPerHead).padStart(8)}  ${f(m.cache.stepMs, 2).padStart(7)}  ${f(m.cache.speedup, 2).padStart(7)}  ${f(m.idealSpeedup, 1).padStart(5)}  ${f(m.cache.gbPerS).padStart(4)}  ${f(m.cache.pctReadBw, 0).padStart(3)}  | ` +
          `${f(st?.selectStepMs, 2).padStart(20)}  ${f(st?.gatheredStepMs, 2).padStart(11)}  ${f(st?.totalStepMs, 2).padStart(8)}  ${f(st?.speedup, 2).padStart(7)}  ${st ? `${f(100 * st.selectShare, 0)}%`.padStart(12) : '-'.padStart(12)} | ${f(m.summaryBuildMsPerLayer, 2)}`,
      );
    }
    for (const n of s.notes) console.log(`  note: ${n}`);
  }
  const u = r.upkeep;
  console.log('');
  console.log(`Summary upkeep on append (${u.tokens}-token f16 cache, ${c.kvHeads} KV heads): single token ${f(u.single.withMs * 1e3, 2)} us with vs ${f(u.single.withoutMs * 1e3, 2)} us without (${f(100 * u.single.overhead, 1)}%); ${u.chunk.tokens} tokens ${f(u.chunk.withMs, 3)} ms vs ${f(u.chunk.withoutMs, 3)} ms (${f(100 * u.chunk.overhead, 1)}%); goal <= ${f(100 * u.goal, 0)}%`);
  for (const n of r.notes) console.log(`note: ${n}`);
}
