/**
 * Decode-step benchmark of the byte-level transformer (lib/model/byte-lm.ts):
 * one single-byte forward through ORT + tokenpress attention (the stage
 * graphs around a KvCache, f32 and f16) against ORT's own plain graph with
 * past_key_values, at several context lengths, side by side in one process.
 *
 *   For each context (ascending), every path's state is extended to that
 *   context by chunked prefill (512 bytes a chunk; the prefill time is
 *   reported, not compared), then `steps` single-byte decode steps run
 *   interleaved: one step of each path per round, the order rotating each
 *   round, so load on a shared machine hits every path alike. Medians per
 *   path, and ratios of medians from the same run. A step advances the
 *   context, so the next context starts `warmup + steps` bytes later than
 *   named (reported). Positions past the model's trained context are fine
 *   for timing.
 *
 *   paths: tokenpress f32 cache, tokenpress f16 cache, plain (the same
 *   runner as the tokenpress paths: onnxruntime-node's native run when
 *   present), plain-public (ORT's public InferenceSession.run, as a user of
 *   onnxruntime-node would call it).
 *
 * Garbage: the plain path allocates its whole past again every step (ORT's
 * present.* outputs are copied into fresh JS buffers: 2 x nLayers x nKvHeads
 * x context x headDim x 4 bytes), and the collections this forces land on
 * whichever step runs next, of any path: interleaved without care, every path
 * measures the plain path's garbage (2048 bytes of context: all three paths
 * 15-27 ms a step instead of 2-3 ms). So a full collection runs, untimed,
 * before every timed step; this leaves the plain path's collection cost out
 * of its own figure (in its favour).
 *
 * Threads: ORT's intra-op threads and tokenpress's pool are set to the same
 * count (default 1) so no path has more cores than another.
 *
 * Prints a table; writes JSON to bench-results/lm-<date>.json. tinybench is
 * not used: a decode step changes the state it runs on, so each sample is one
 * timed step (performance.now), not a repeatable call.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from '../lib/cli/int-arg.js';
import { backendInfo, setThreads } from '../lib/backend.js';
import { ByteLm } from '../lib/model/byte-lm.js';
import { cpuModel } from './limits.js';

export const LM_PATHS = ['tokenpress-f32', 'tokenpress-f16', 'plain', 'plain-public'] as const;
export type LmPath = (typeof LM_PATHS)[number];

export interface LmBenchOptions {
  /** Model name or directory; default 'main'. */
  model?: string;
  /** Contexts in bytes; default 512, 2048, 4096, 8192. */
  contexts?: number[];
  /** Timed decode steps per path and context; default 64. */
  steps?: number;
  /** Untimed steps per path before each context's timed ones; default 4. */
  warmup?: number;
  /** ORT intra-op threads and tokenpress pool threads; default 1. */
  threads?: number;
  /** Paths to run; default all. */
  paths?: LmPath[];
  outFile?: string;
  progress?: boolean;
  json?: boolean;
}

export interface LmBenchRow {
  /** Bytes in the context when the timed steps start. */
  context: number;
  /** Median ms per decode step, per path. */
  medianMs: Partial<Record<LmPath, number>>;
  /** 10th and 90th percentiles, per path. */
  p10Ms: Partial<Record<LmPath, number>>;
  p90Ms: Partial<Record<LmPath, number>>;
  /** Cumulative prefill ms to reach this context, per path (chunks of 512). */
  prefillMs: Partial<Record<LmPath, number>>;
  /** plain median / path median (> 1: the path is faster than plain), for each tokenpress path. */
  speedupVsPlain: Partial<Record<LmPath, number>>;
  speedupVsPlainPublic: Partial<Record<LmPath, number>>;
  /** The same ratio of 10th percentiles: the steps least disturbed by other load on a shared machine. */
  speedupVsPlainP10: Partial<Record<LmPath, number>>;
}

export interface LmBenchReport {
  date: string;
  machine: { cpu: string; cpuFlags: string[]; logicalCpus: number; node: string; isa: string; loadAvgStart: number[]; loadAvgEnd: number[] };
  model: { name: string; dir: string; parameters: number; nLayers: number; nHeads: number; nKvHeads: number; headDim: number; trainingStep?: unknown };
  ort: { version: string; runner: string };
  threads: number;
  steps: number;
  warmup: number;
  paths: LmPath[];
  rows: LmBenchRow[];
  notes: string[];
  file?: string;
}

const FLAGS_OF_INTEREST = ['avx2', 'fma', 'f16c', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_bf16', 'avx512_fp16', 'avx_vnni', 'amx_bf16', 'amx_tile'];

function cpuFlags(): string[] {
  try {
    const m = /^flags\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    const all = new Set((m?.[1] ?? '').split(/\s+/));
    return FLAGS_OF_INTEREST.filter((f) => all.has(f));
  } catch {
    return [];
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Deterministic text-like bytes (the context's content does not change a step's cost). */
function contextBytes(n: number): Uint8Array {
  const seed = new TextEncoder().encode('ABANDON, v. t. To give up wholly; to forsake. The key is 8351. ');
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = seed[(i * 7 + (i >> 6)) % seed.length]!;
  return out;
}

/** global.gc without --expose-gc on the command line (set before the first use). */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

interface Runner {
  path: LmPath;
  forward(bytes: Uint8Array | number[]): Promise<Float32Array>;
  readonly position: number;
}

export async function runLmBench(o: LmBenchOptions = {}): Promise<LmBenchReport> {
  const contexts = [...(o.contexts ?? [512, 2048, 4096, 8192])].sort((a, b) => a - b);
  const steps = o.steps ?? 64;
  const warmup = o.warmup ?? 4;
  const threads = o.threads ?? 1;
  const paths = o.paths ?? [...LM_PATHS];
  const previousThreads = backendInfo().threads;
  setThreads(threads);
  const gc = collector();
  const loadAvgStart = os.loadavg();
  const model = await ByteLm.load(o.model ?? 'main', { threads });
  const publicModel = paths.includes('plain-public') ? await ByteLm.load(o.model ?? 'main', { threads, stages: false, directRun: false }) : undefined;
  const runners: Runner[] = [];
  for (const path of paths) {
    if (path === 'tokenpress-f32') runners.push(Object.assign(model.session({ dtype: 'f32' }), { path }) as unknown as Runner);
    else if (path === 'tokenpress-f16') runners.push(Object.assign(model.session({ dtype: 'f16' }), { path }) as unknown as Runner);
    else if (path === 'plain') runners.push(Object.assign(model.plainSession(), { path }) as unknown as Runner);
    else runners.push(Object.assign(publicModel!.plainSession(), { path }) as unknown as Runner);
  }
  const total = contexts.length * (runners.length + warmup + steps);
  const bar = o.progress !== false && o.json !== true && process.stderr.isTTY
    ? new cliProgress.SingleBar({ stream: process.stderr, format: 'bench lm [{bar}] {value}/{total} {label}', hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(total, 0, { label: '' });
  const maxContext = contexts[contexts.length - 1]! + contexts.length * (warmup + steps) + 1;
  const text = contextBytes(maxContext);
  const prefillMs = new Map<LmPath, number>(paths.map((p) => [p, 0]));
  const rows: LmBenchRow[] = [];
  try {
    for (const ctx of contexts) {
      for (const r of runners) {
        bar?.increment(1, { label: `prefill ${r.path} to ${ctx}` });
        const t0 = performance.now();
        for (let p = r.position; p < ctx; p = r.position) await r.forward(text.subarray(p, Math.min(ctx, p + 512)));
        prefillMs.set(r.path, prefillMs.get(r.path)! + performance.now() - t0);
      }
      const start = runners[0]!.position;
      const times = new Map<LmPath, number[]>(paths.map((p) => [p, []]));
      for (let s = 0; s < warmup + steps; s++) {
        bar?.increment(1, { label: `decode at ${ctx}` });
        for (let j = 0; j < runners.length; j++) {
          const r = runners[(s + j) % runners.length]!;
          const b = text[r.position]!;
          gc();
          const t0 = performance.now();
          await r.forward([b]);
          const dt = performance.now() - t0;
          if (s >= warmup) times.get(r.path)!.push(dt);
        }
      }
      const row: LmBenchRow = { context: start, medianMs: {}, p10Ms: {}, p90Ms: {}, prefillMs: {}, speedupVsPlain: {}, speedupVsPlainPublic: {}, speedupVsPlainP10: {} };
      for (const p of paths) {
        const t = times.get(p)!;
        row.medianMs[p] = quantile(t, 0.5);
        row.p10Ms[p] = quantile(t, 0.1);
        row.p90Ms[p] = quantile(t, 0.9);
        row.prefillMs[p] = prefillMs.get(p)!;
      }
      for (const p of paths.filter((x) => x.startsWith('tokenpress'))) {
        if (row.medianMs.plain !== undefined) row.speedupVsPlain[p] = row.medianMs.plain / row.medianMs[p]!;
        if (row.p10Ms.plain !== undefined) row.speedupVsPlainP10[p] = row.p10Ms.plain / row.p10Ms[p]!;
        if (row.medianMs['plain-public'] !== undefined) row.speedupVsPlainPublic[p] = row.medianMs['plain-public'] / row.medianMs[p]!;
      }
      rows.push(row);
    }
  } finally {
    bar?.stop();
    await model.release();
    await publicModel?.release();
    setThreads(previousThreads);
  }
  const step = (model.card.training as { step?: unknown } | undefined)?.step;
  const report: LmBenchReport = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpuModel(), cpuFlags: cpuFlags(), logicalCpus: os.cpus().length, node: process.version, isa: backendInfo().isa,
      loadAvgStart, loadAvgEnd: os.loadavg(),
    },
    model: {
      name: model.config.name, dir: model.dir, parameters: model.parameters, nLayers: model.config.nLayers, nHeads: model.config.nHeads,
      nKvHeads: model.config.nKvHeads, headDim: model.config.headDim, ...(step !== undefined ? { trainingStep: step } : {}),
    },
    ort: { version: model.ortVersion, runner: model.runner },
    threads, steps, warmup, paths, rows,
    notes: [
      'ms per single-byte decode step, medians of interleaved steps (order rotating each round); ratios are plain / tokenpress from the same run (> 1: tokenpress faster)',
      `threads: ORT intra-op ${threads} per graph and tokenpress pool ${threads}`,
      "plain runs decoder.onnx through the same runner as tokenpress's stage graphs; plain-public through onnxruntime-node's public InferenceSession.run",
      'a full garbage collection runs, untimed, before every timed step (the plain path re-allocates its past every step; left alone, its collections land on every path)',
      'the context grows by warmup + steps bytes per context measured (the rows give the context at the first timed step)',
    ],
  };
  const file = resolve(o.outFile ?? `bench-results/lm-${report.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  report.file = file;
  if (o.json === true) console.log(JSON.stringify(report, null, 2));
  return report;
}

const ms = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(3));
const ratio = (x: number | undefined) => (x === undefined ? '-' : `${x.toFixed(2)}x`);

export function printLmTable(r: LmBenchReport): void {
  console.log(`bench lm: ${r.model.name} (${(r.model.parameters / 1e6).toFixed(2)}M parameters, ${r.model.nLayers} layers, ${r.model.nHeads}/${r.model.nKvHeads} heads x ${r.model.headDim}), ` +
    `onnxruntime-node ${r.ort.version} (${r.ort.runner} run), threads ${r.threads}, ${r.steps} steps per path`);
  console.log(`CPU: ${r.machine.cpu} (${r.machine.cpuFlags.join(' ')}), ${r.machine.logicalCpus} logical CPUs; load average ${r.machine.loadAvgStart.map((x) => x.toFixed(1)).join(' ')} at the start`);
  const tp = r.paths.filter((p) => p.startsWith('tokenpress'));
  const hasPlain = r.paths.includes('plain');
  const hasPublic = r.paths.includes('plain-public');
  const head = ['context', ...r.paths.map((p) => `${p} ms (p10)`),
    ...tp.flatMap((p) => [...(hasPlain ? [`${p} vs plain (p10)`] : []), ...(hasPublic ? [`${p} vs plain-public`] : [])])];
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => '---').join('|')}|`);
  for (const row of r.rows) {
    const cells = [String(row.context), ...r.paths.map((p) => `${ms(row.medianMs[p])} (${ms(row.p10Ms[p])})`),
      ...tp.flatMap((p) => [
        ...(hasPlain ? [`${ratio(row.speedupVsPlain[p])} (${ratio(row.speedupVsPlainP10[p])})`] : []),
        ...(hasPublic ? [ratio(row.speedupVsPlainPublic[p])] : []),
      ])];
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log('ms per decode step: median (10th percentile); "vs plain" = plain / tokenpress from the same run (> 1: tokenpress faster), of medians (of 10th percentiles).');
  if (r.file) console.log(`JSON: ${r.file}`);
}

function intList(value: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 1 << 20)) {
    throw new InvalidArgumentError(`--contexts: expected a comma-separated list of integers in [1, 1048576], received "${value}"`);
  }
  return list;
}

const posInt = (name: string, max: number) => intArg(name, 1, max);

function pathList(value: string): LmPath[] {
  const list = value.split(',').map((s) => s.trim());
  for (const p of list) {
    if (!(LM_PATHS as readonly string[]).includes(p)) throw new InvalidArgumentError(`--paths: expected a comma-separated list of ${LM_PATHS.join(', ')}, received "${value}"`);
  }
  return list as LmPath[];
}

/** `tokenpress bench lm`. */
export function registerBenchLm(bench: Command): void {
  bench
    .command('lm')
    .description(
      'Decode step of the byte-level transformer: ORT + tokenpress attention (f32 and f16 KvCache) vs ORT\'s own plain graph ' +
        'with past_key_values, at contexts 512-8192, interleaved, medians and ratios from one run.',
    )
    .option('--model <name-or-dir>', 'main, draft, or a directory export.py wrote', 'main')
    .option('--contexts <list>', 'contexts in bytes (default 512,2048,4096,8192)', intList)
    .option('--steps <n>', 'timed decode steps per path and context (default 64)', posInt('--steps', 100000))
    .option('--threads <n>', 'ORT intra-op threads and tokenpress pool threads (default 1)', posInt('--threads', 256))
    .option('--paths <list>', `paths to run (default all: ${LM_PATHS.join(',')})`, pathList)
    .option('--out <file>', 'where to write the JSON report (default bench-results/lm-<date>.json)')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the JSON report instead of the table')
    .action(async (f: { model: string; contexts?: number[]; steps?: number; threads?: number; paths?: LmPath[]; out?: string; progress: boolean; json?: boolean }) => {
      const report = await runLmBench({
        model: f.model,
        progress: f.progress,
        json: f.json === true,
        ...(f.contexts ? { contexts: f.contexts } : {}),
        ...(f.steps ? { steps: f.steps } : {}),
        ...(f.threads ? { threads: f.threads } : {}),
        ...(f.paths ? { paths: f.paths } : {}),
        ...(f.out ? { outFile: f.out } : {}),
      });
      if (f.json !== true) printLmTable(report);
    });
}
