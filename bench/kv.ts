/**
 * KV-cache benchmark (`tokenpress bench kv`): compression speed of every
 * policy on a large cache, KIVI quantization, and decode attention over full
 * and quantized caches, against the machine's read bandwidth: the shared
 * limits of bench/limits.ts (the same figures `bench attention` divides by),
 * measured at the start and refreshed at the end of the run (best of both).
 *
 * Workload (defaults): nLayers 32 x nKvHeads 8 x 32768 tokens x headDim 128,
 * f16 (4 GiB of K and V), 32 query heads (GQA 4).
 *   decode   one attend per layer (nQ 1) over all layers: a full decode pass.
 *   compress for each policy and budget (2048, 4096 tokens per head):
 *            `measureLayers` layers are refilled with 32k tokens, given 32
 *            observation queries (attend, with key mass), the LLC is flushed
 *            by reading 1 GiB, then compress() runs on one layer at a time.
 *            speckv also gets 8 draft-token queries.
 *            Reported per layer: planMs (score + select), applyMs (compaction),
 *            releaseMs (shrinking the storage),
 *            compaction GB/s (bytes read + written / applyMs).
 *   quantize int8 / int4 caches of `quantLayers` layers: append (quantization)
 *            time, memory, decode time and output error vs the f16 cache.
 * Medians over `reps` repetitions. Prints a table and writes JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import {
  KvCache, KV_CACHE_POLICY_NAMES, KV_POLICY_NAMES, backendInfo, f32ToF16Bits,
  type KvCacheDtype, type KvCompressionPolicy, type Tensor,
} from '../lib/index.js';
import { native } from '../lib/native.js';
import { randomBlock, timeIt } from './common.js';
import { printKvAppendTable, runKvAppendBench, type KvAppendReport } from './kv-append.js';
import { cpuModel, limitsReport, measureLimits, refreshLimits, type MachineLimitsReport } from './limits.js';

export interface KvBenchOptions {
  tokens?: number;
  layers?: number;
  kvHeads?: number;
  heads?: number;
  headDim?: number;
  /** Layers each policy compresses per repetition; default 2. */
  measureLayers?: number;
  /** Layers of the int8 / int4 caches; default 8. */
  quantLayers?: number;
  budgets?: number[];
  policies?: string[];
  reps?: number;
  json?: boolean;
  outFile?: string;
  progress?: boolean;
}

export interface PolicyRow {
  policy: string;
  budget: number;
  planMs?: number;
  applyMs?: number;
  /** Shrinking the storage after compaction (allocator copies and frees). */
  releaseMs?: number;
  compactGBs?: number;
  pctReadBw?: number;
  /** planMs / decode ms of one layer: the goal is <= 2. */
  decodePasses?: number;
  skipped?: string;
}

export interface QuantRow {
  dtype: KvCacheDtype;
  appendMsPerLayer: number;
  memoryBytesPerLayer: number;
  /** Median wall time of one layer's attend (passes over `quantLayers` layers, interleaved with f16 passes). */
  decodeMsPerLayer: number;
  /** The f16 cache's attend over as many layers, its passes interleaved with these (same minutes, same load). */
  f16DecodeMsPerLayer: number;
  /** f16DecodeMsPerLayer / decodeMsPerLayer. */
  speedupVsF16: number;
  /** The same ratio in process CPU time (robust to being descheduled; counts every pool thread). */
  speedupVsF16Cpu: number;
  /** Bytes one attend reads per layer: blocks (codes, f16 scales and minima) and the f16 tail. */
  kernelBytesPerLayer: number;
  /** kernelBytesPerLayer / decodeMsPerLayer, GB/s, and as % of the read bandwidth with the bench's threads. */
  kernelGBs: number;
  pctReadBw: number;
  bytesRatioVsF16: number;
  outputRelError: number;
}

/** Bytes a KIVI attend reads per layer (kv_quant.h layout; the cache's default group 32 and residual 128). */
function quantKernelBytes(dtype: 'int8' | 'int4', kvHeads: number, tokens: number, d: number, group = 32, residual = 128): number {
  const blocks = Math.max(0, Math.floor((tokens - residual) / group));
  const tail = tokens - blocks * group;
  const vGroups = Math.ceil(d / group);
  const codes = dtype === 'int8' ? 2 * group * d : group * d;  // int4: half a byte per key and value element
  const blockBytes = Math.ceil((codes + 4 * d + 4 * group * vGroups) / 64) * 64;
  return kvHeads * (blocks * blockBytes + tail * d * 2 * 2);
}

export interface KvBenchReport {
  date: string;
  machine: { cpus: number; model: string; threads: number; isa: string };
  config: Required<Omit<KvBenchOptions, 'json' | 'outFile' | 'progress'>>;
  /**
   * Read bandwidth with the run's thread count (bench/limits.ts): the shared
   * figure at the start, and the best of it and a re-measurement at the end
   * (percentages use `end`, the best).
   */
  readBandwidthGBs: { start: number; end: number };
  /** The shared limits this report divides by (CPU model, read/copy bandwidth, FMA and bf16 peaks). */
  limits: MachineLimitsReport;
  decode: { passMs: number; msPerLayer: number; kvBytes: number; gbPerS: number; pctReadBw: number; appendMsPerLayer: number };
  policies: PolicyRow[];
  quantized: QuantRow[];
  /** Append costs (bench/kv-append.ts), also written to their own JSON. */
  append?: KvAppendReport;
  notes: string[];
}

const GiB = 1024 ** 3;

function f16Block(n: number, seed: number): Uint16Array {
  const f = randomBlock(n, seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(f[i]!);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The shared read bandwidth (bench/limits.ts) with `threads` threads, GB/s. */
function readBandwidthGBs(threads: number, refresh: boolean): number {
  const [lim] = (refresh ? refreshLimits : measureLimits)([threads]);
  return lim!.read.bytesPerS / 1e9;
}

/** Reads 1 GiB so the next timed call starts with a cold last-level cache. */
function flushCache(threads: number): void {
  native().measureReadBandwidth(GiB, threads, 1);
}

export async function runKvBench(opts: KvBenchOptions = {}): Promise<KvBenchReport> {
  const cfg = {
    tokens: opts.tokens ?? 32768,
    layers: opts.layers ?? 32,
    kvHeads: opts.kvHeads ?? 8,
    heads: opts.heads ?? 32,
    headDim: opts.headDim ?? 128,
    measureLayers: opts.measureLayers ?? 2,
    quantLayers: opts.quantLayers ?? 8,
    budgets: opts.budgets ?? [2048, 4096],
    policies: opts.policies ?? [...KV_POLICY_NAMES, ...KV_CACHE_POLICY_NAMES],
    reps: opts.reps ?? 3,
  };
  const info = backendInfo();
  const threads = info.threads;
  const { tokens, layers, kvHeads, heads, headDim: d } = cfg;
  const notes: string[] = [];
  const steps = 2 + cfg.policies.length * cfg.budgets.length + 2;
  const bar = opts.progress !== false && !opts.json && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: 'bench kv [{bar}] {value}/{total} {task}', stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(steps, 0, { task: 'bandwidth' });
  const bwStart = readBandwidthGBs(threads, false);

  // The shared K / V content (f16), appended to every layer.
  bar?.update({ task: 'fill f16 cache' });
  const kData = f16Block(kvHeads * tokens * d, 1);
  const vData = f16Block(kvHeads * tokens * d, 2);
  const k: Tensor<'f16'> = { dtype: 'f16', shape: [kvHeads, tokens, d], data: kData };
  const v: Tensor<'f16'> = { dtype: 'f16', shape: [kvHeads, tokens, d], data: vData };
  const q: Tensor<'f32'> = { dtype: 'f32', shape: [heads, 1, d], data: randomBlock(heads * d, 3) };
  const window: Tensor<'f32'> = { dtype: 'f32', shape: [heads, 32, d], data: randomBlock(heads * 32 * d, 4) };
  // speckv's lookahead: 8 draft-token queries per layer.
  const draft: Tensor<'f32'> = { dtype: 'f32', shape: [heads, 8, d], data: randomBlock(heads * 8 * d, 5) };

  const cache = new KvCache({ nLayers: layers, nKvHeads: kvHeads, headDim: d, capacity: tokens, dtype: 'f16' });
  const appendMs: number[] = [];
  for (let l = 0; l < layers; l++) {
    const t0 = performance.now();
    cache.append(l, k, v);
    appendMs.push(performance.now() - t0);
  }
  bar?.increment({ task: 'decode pass' });
  const kvBytes = layers * kvHeads * tokens * d * 2 * 2;
  const decodePass = () => {
    for (let l = 0; l < layers; l++) cache.attend(l, q, { remember: false });
  };
  decodePass();
  const pass = await timeIt('decode pass', decodePass, { time: 2000, iterations: 5 });
  const msPerLayer = pass.medianMs / layers;
  const decode = {
    passMs: pass.medianMs, msPerLayer, kvBytes,
    gbPerS: kvBytes / (pass.medianMs / 1e3) / 1e9,
    pctReadBw: 0,
    appendMsPerLayer: median(appendMs),
  };

  bar?.increment();

  // Compression of each policy, one layer at a time.
  const rows: PolicyRow[] = [];
  for (const name of cfg.policies) {
    for (const budget of cfg.budgets) {
      bar?.update({ task: `${name} -> ${budget}` });
      const plan: number[] = [], apply: number[] = [], release: number[] = [], moved: number[] = [];
      for (let rep = 0; rep < cfg.reps; rep++) {
        for (let l = 0; l < cfg.measureLayers; l++) {
          cache.clear(l);
          cache.append(l, k, v);
          cache.attend(l, window, { accumulateMass: true });
          flushCache(threads);
          const drafts = name === 'speckv' ? Array.from({ length: layers }, (_, i) => (i === l ? draft : undefined)) : undefined;
          const r = cache.compress(name as KvCompressionPolicy, { keep: budget }, { layers: [l], ...(drafts ? { draftQueries: drafts } : {}) });
          plan.push(r.planMs);
          apply.push(r.applyMs);
          release.push(r.releaseMs);
          moved.push(r.bytesMoved);
        }
      }
      const applyMs = median(apply);
      const bytes = median(moved);
      const compactGBs = bytes / (applyMs / 1e3) / 1e9;
      rows.push({
        policy: name, budget,
        planMs: median(plan), applyMs, releaseMs: median(release), compactGBs,
        pctReadBw: 0, // filled in below, against the mean of the start and end bandwidth
        decodePasses: median(plan) / msPerLayer,
      });
      bar?.increment();
    }
  }
  // Leave the measured layers full again, like the others.
  for (let l = 0; l < cfg.measureLayers; l++) {
    cache.clear(l);
    cache.append(l, k, v);
  }

  // Quantized caches: append (quantize), memory, decode, error vs f16.
  const ref = cache.attend(0, q, { remember: false }).output.data;
  const quantized: QuantRow[] = [];
  const f16Layer = kvHeads * tokens * d * 2 * 2;
  for (const dtype of ['int8', 'int4'] as const) {
    bar?.update({ task: `${dtype} cache` });
    const qc = new KvCache({ nLayers: cfg.quantLayers, nKvHeads: kvHeads, headDim: d, capacity: tokens, dtype });
    const ms: number[] = [];
    for (let l = 0; l < cfg.quantLayers; l++) {
      const t0 = performance.now();
      qc.append(l, k, v);
      ms.push(performance.now() - t0);
    }
    const qpass = () => {
      for (let l = 0; l < cfg.quantLayers; l++) qc.attend(l, q, { remember: false });
    };
    // The f16 cache over as many layers, its passes interleaved with the
    // quantized ones: the ratio then compares the same minutes of a shared
    // machine (the decode pass above ran minutes earlier).
    const fpass = () => {
      for (let l = 0; l < cfg.quantLayers; l++) cache.attend(l, q, { remember: false });
    };
    qpass();
    fpass();
    const wq: number[] = [], wf: number[] = [], cq: number[] = [], cf: number[] = [];
    for (let rep = 0; rep < 2 * Math.max(5, cfg.reps * 3); rep++) {
      const first = rep % 2 === 0 ? qpass : fpass;
      for (const run of [first, first === qpass ? fpass : qpass]) {
        const c0 = process.cpuUsage(), t0 = performance.now();
        run();
        const ms = performance.now() - t0, cu = process.cpuUsage(c0);
        (run === qpass ? wq : wf).push(ms / cfg.quantLayers);
        (run === qpass ? cq : cf).push((cu.user + cu.system) / 1e3 / cfg.quantLayers);
      }
    }
    const out = qc.attend(0, q, { remember: false }).output.data;
    let num = 0, den = 0;
    for (let i = 0; i < out.length; i++) {
      num += (out[i]! - ref[i]!) ** 2;
      den += ref[i]! ** 2;
    }
    const perLayer = median(wq), f16PerLayer = median(wf);
    const mem = qc.memoryBytes / cfg.quantLayers;
    const kernelBytes = quantKernelBytes(dtype, kvHeads, tokens, d);
    quantized.push({
      dtype, appendMsPerLayer: median(ms), memoryBytesPerLayer: mem, decodeMsPerLayer: perLayer,
      f16DecodeMsPerLayer: f16PerLayer, speedupVsF16: f16PerLayer / perLayer, speedupVsF16Cpu: median(cf) / median(cq),
      kernelBytesPerLayer: kernelBytes, kernelGBs: kernelBytes / (perLayer / 1e3) / 1e9, pctReadBw: 0,
      bytesRatioVsF16: mem / f16Layer, outputRelError: Math.sqrt(num / den),
    });
    qc.clear();
    bar?.increment();
  }
  const bwEnd = readBandwidthGBs(threads, true);
  bar?.stop();
  // The machine is shared: rate against the best of every measurement (the roof).
  const bw = bwEnd;
  decode.pctReadBw = (100 * decode.gbPerS) / bw;
  for (const r of rows) if (r.compactGBs !== undefined) r.pctReadBw = (100 * r.compactGBs) / bw;
  for (const r of quantized) r.pctReadBw = (100 * r.kernelGBs) / bw;
  notes.push(
    'Compression is timed one layer at a time on freshly refilled layers after a 1 GiB read (cold LLC); planMs = scoring + budgets + selection, applyMs = merging + in-place compaction, releaseMs = shrinking the storage (allocator copies of the kept rows and frees).',
    'compactGBs counts the bytes compaction reads and writes when moving kept rows (K, V, positions, accumulators); pct is of the shared read bandwidth (bench/limits.ts, best of the measurements at the start and at the end of the run).',
    'decodePasses = planMs / (decode time of one layer, nQ 1, 32 query heads): the goal is <= 2.',
    'Quantized decode: passes over the int8 / int4 layers interleaved with passes over as many f16 layers (medians, wall and process CPU time); read MiB = blocks (codes, f16 scales and minima) + the f16 tail one attend reads per layer; % of the read bandwidth with the same threads.',
    'The content is random (scores are not meaningful here); see `tokenpress eval kv` for fidelity.',
  );
  const report: KvBenchReport = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: cpuModel(), threads, isa: info.isa },
    config: cfg,
    readBandwidthGBs: { start: bwStart, end: bwEnd },
    limits: limitsReport(measureLimits([threads])),
    decode,
    policies: rows,
    quantized,
    append: await runKvAppendBench({ headDim: d, kvHeads, outFile: opts.outFile?.replace(/\.json$/, '-append.json') }),
    notes,
  };
  const file = resolve(opts.outFile ?? `bench-results/kv-${report.date.slice(0, 10)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2));
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report;
}

const f = (x: number | undefined, digits = 1) => (x === undefined ? '-' : x.toFixed(digits));

export function printKvTable(r: KvBenchReport): void {
  const c = r.config;
  console.log(`KV cache: ${c.layers} layers x ${c.kvHeads} KV heads x ${c.tokens} tokens x headDim ${c.headDim}, f16; ${c.heads} query heads; ${r.machine.threads} threads (${r.machine.isa})`);
  console.log(`CPU: ${r.limits.cpuModel}; read bandwidth (bench/limits.ts, ${r.machine.threads} threads): ${f(r.readBandwidthGBs.start)} GB/s at start, ${f(r.readBandwidthGBs.end)} GB/s best incl. the end (percentages use the best)`);
  console.log(`decode pass (all layers, nQ 1): ${f(r.decode.passMs)} ms = ${f(r.decode.msPerLayer, 2)} ms/layer, ${f(r.decode.gbPerS)} GB/s (${f(r.decode.pctReadBw, 0)}% of read bandwidth)`);
  console.log('');
  console.log('policy              budget  plan ms/layer  decode passes  compact ms/layer  compact GB/s  % read BW  release ms/layer');
  for (const p of r.policies) {
    if (p.skipped) {
      console.log(`${p.policy.padEnd(20)}${String(p.budget).padStart(6)}  skipped: ${p.skipped}`);
      continue;
    }
    console.log(
      `${p.policy.padEnd(20)}${String(p.budget).padStart(6)}  ${f(p.planMs, 2).padStart(13)}  ${f(p.decodePasses, 2).padStart(13)}  ${f(p.applyMs, 2).padStart(16)}  ${f(p.compactGBs).padStart(12)}  ${f(p.pctReadBw, 0).padStart(9)}  ${f(p.releaseMs, 2).padStart(16)}`,
    );
  }
  console.log('');
  console.log('dtype  quantize ms/layer  MiB/layer  bytes vs f16  decode ms/layer  f16 same minutes  speedup vs f16 (cpu)  read MiB/layer  GB/s  % read BW  output rel. error');
  for (const qr of r.quantized) {
    console.log(
      `${qr.dtype.padEnd(6)} ${f(qr.appendMsPerLayer).padStart(17)}  ${f(qr.memoryBytesPerLayer / 2 ** 20).padStart(9)}  ${f(qr.bytesRatioVsF16, 3).padStart(12)}  ${f(qr.decodeMsPerLayer, 2).padStart(15)}  ${f(qr.f16DecodeMsPerLayer, 2).padStart(16)}  ${`${f(qr.speedupVsF16, 2)} (${f(qr.speedupVsF16Cpu, 2)})`.padStart(20)}  ${f(qr.kernelBytesPerLayer / 2 ** 20).padStart(14)}  ${f(qr.kernelGBs).padStart(4)}  ${f(qr.pctReadBw, 0).padStart(9)}  ${qr.outputRelError.toExponential(2).padStart(17)}`,
    );
  }
  console.log(`(f16 append ${f(r.decode.appendMsPerLayer)} ms/layer, decode ${f(r.decode.msPerLayer, 2)} ms/layer)`);
  for (const n of r.notes) console.log(`note: ${n}`);
  if (r.append) printKvAppendTable(r.append);
}
