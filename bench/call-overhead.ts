/**
 * Fixed cost of one call (run by `tokenpress bench overhead`, or on its own:
 * `node dist/bench/call-overhead.js`): process CPU time per call of small
 * attention() / KvCache.attend calls in a tight loop, where argument
 * checking and the N-API crossing cost more than the kernel.
 *
 * Workloads (all f32 q, `out` given so nothing is allocated per call):
 *   tiny      attention(q [1, 1, 128], k/v f32 [1, 16, 128], { scale, out })
 *   gqa       attention(q [32, 1, 128], k/v f16 [8, 4096, 128], { scale, out })
 *             (a 32-layer decode step's per-layer call at 4k tokens)
 *   attend    KvCache.attend(0, q [8, 1, 128], { out }) on a 1-layer f16 cache
 *             of 8 KV heads x 16 tokens x 128
 *   native    the addon's attention(params) alone for `tiny`, params built
 *             once: the object form (hostile-params safe snapshot), which
 *             direct callers and cudaAttention use
 *   args      the addon's positional form (header, q, k, v, out, ...) that
 *             attention() uses, alone: the cost left once the TS checks are gone
 * Each row: `reps` runs of `calls` calls; CPU time (user + system) per call,
 * median and min over the runs, and wall time per call (median).
 * Prints a table and writes JSON (bench-results/overhead-<date>.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { attention, KvCache, f32ToF16Bits, backendInfo, type Tensor } from '../lib/index.js';
import { native } from '../lib/native.js';
import { prepareAttention } from '../lib/attention.js';

export interface OverheadBenchOptions {
  /** Calls per run of the small cases (the gqa case runs calls / 20); default 200000. */
  calls?: number;
  /** Runs per case; default 7. */
  reps?: number;
  /** Cases to run; default all. */
  cases?: string[];
  json?: boolean;
  outFile?: string;
}

export interface OverheadRow { case: string; calls: number; cpuUsMedian: number; cpuUsMin: number; wallUsMedian: number }
export interface OverheadReport {
  date: string;
  machine: { cpus: number; model: string; threads: number; node: string };
  config: { calls: number; reps: number };
  rows: OverheadRow[];
}

const CASES = ['native', 'args', 'tiny', 'gqa', 'attend'] as const;

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    a[i] = (x / 4294967296) * 2 - 1;
  }
  return a;
}

const f16 = (a: Float32Array): Uint16Array => {
  const o = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) o[i] = f32ToF16Bits(a[i]!);
  return o;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** `reps` runs of `calls` calls of fn after a warmup run; CPU and wall microseconds per call. */
function measure(name: string, calls: number, reps: number, fn: () => void): OverheadRow {
  for (let i = 0; i < Math.min(calls, 20000); i++) fn();
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) fn();
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    cpu.push((c1.user + c1.system) / calls);
    wall.push(Number(t1 - t0) / 1e3 / calls);
  }
  return { case: name, calls, cpuUsMedian: median(cpu), cpuUsMin: Math.min(...cpu), wallUsMedian: median(wall) };
}

export function runOverheadBench(opts: OverheadBenchOptions = {}): OverheadReport {
  const calls = opts.calls ?? 200_000;
  const reps = opts.reps ?? 7;
  const want = new Set(opts.cases ?? CASES);
  const rows: OverheadRow[] = [];
  const addon = native();

  const d = 128;
  const tq: Tensor<'f32'> = { dtype: 'f32', shape: [1, 1, d], data: fill(d, 1) };
  const tk: Tensor<'f32'> = { dtype: 'f32', shape: [1, 16, d], data: fill(16 * d, 2) };
  const tv: Tensor<'f32'> = { dtype: 'f32', shape: [1, 16, d], data: fill(16 * d, 3) };
  const tout = new Float32Array(d);
  const scale = 1 / Math.sqrt(d);

  if (want.has('native')) {
    const { params } = prepareAttention(tq, tk, tv, { scale, out: tout });
    rows.push(measure('native: addon.attention(params), tiny', calls, reps, () => addon.attention(params)));
  }
  if (want.has('args')) {
    const { params: p } = prepareAttention(tq, tk, tv, { scale, out: tout });
    const h = Float64Array.of(p.nHeads, p.nKvHeads, p.nQ, p.nKv, p.headDim, p.nSel, p.kDtype, p.vDtype,
      ...p.qStrides, ...p.kStrides, ...p.vStrides, p.scale, p.softcap, p.causal ? 1 : 0);
    rows.push(measure('args: addon.attention(header, q, k, v, out, ...), tiny', calls, reps, () => {
      addon.attention(h, p.q, p.k, p.v, p.out, undefined, undefined, undefined, undefined, undefined, undefined);
    }));
  }
  if (want.has('tiny')) {
    rows.push(measure('tiny: attention q[1,1,128] kv f32[1,16,128]', calls, reps, () => { attention(tq, tk, tv, { scale, out: tout }); }));
  }
  if (want.has('gqa')) {
    const n = 4096;
    const gq: Tensor<'f32'> = { dtype: 'f32', shape: [32, 1, d], data: fill(32 * d, 4) };
    const gk: Tensor<'f16'> = { dtype: 'f16', shape: [8, n, d], data: f16(fill(8 * n * d, 5)) };
    const gv: Tensor<'f16'> = { dtype: 'f16', shape: [8, n, d], data: f16(fill(8 * n * d, 6)) };
    const gout = new Float32Array(32 * d);
    rows.push(measure('gqa: attention q[32,1,128] kv f16[8,4096,128]', Math.max(1, Math.floor(calls / 20)), reps, () => {
      attention(gq, gk, gv, { scale, out: gout });
    }));
  }
  if (want.has('attend')) {
    const cache = new KvCache({ nLayers: 1, nKvHeads: 8, headDim: d, dtype: 'f16' });
    const kt: Tensor<'f32'> = { dtype: 'f32', shape: [8, 16, d], data: fill(8 * 16 * d, 7) };
    cache.append(0, kt, { dtype: 'f32', shape: [8, 16, d], data: fill(8 * 16 * d, 8) });
    const aq: Tensor<'f32'> = { dtype: 'f32', shape: [8, 1, d], data: fill(8 * d, 9) };
    const aout = new Float32Array(8 * d);
    rows.push(measure('attend: KvCache.attend q[8,1,128], 16 f16 tokens', calls, reps, () => {
      cache.attend(0, aq, { out: aout, remember: false });
    }));
  }

  const report: OverheadReport = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', threads: backendInfo().threads, node: process.version },
    config: { calls, reps },
    rows,
  };
  const file = opts.outFile ?? resolve('bench-results', `overhead-${report.date.slice(0, 10)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2));
  if (opts.json) console.log(JSON.stringify(report, null, 2));
  return report;
}

export function printOverheadTable(r: OverheadReport): void {
  console.log(`call overhead: ${r.machine.model}, ${r.machine.cpus} CPUs, ${r.machine.threads} pool threads, Node ${r.machine.node}`);
  console.log(`${r.config.reps} runs per case; CPU time (user + system) per call\n`);
  const w = Math.max(...r.rows.map((x) => x.case.length));
  console.log(`${'case'.padEnd(w)}  ${'calls/run'.padStart(9)}  ${'CPU us med'.padStart(10)}  ${'CPU us min'.padStart(10)}  ${'wall us med'.padStart(11)}`);
  for (const x of r.rows) {
    console.log(`${x.case.padEnd(w)}  ${String(x.calls).padStart(9)}  ${x.cpuUsMedian.toFixed(2).padStart(10)}  ${x.cpuUsMin.toFixed(2).padStart(10)}  ${x.wallUsMedian.toFixed(2).padStart(11)}`);
  }
}

const isMain = process.argv[1] !== undefined && /call-overhead\.(js|ts)$/.test(process.argv[1]);
if (isMain) printOverheadTable(runOverheadBench());
