/**
 * KV-cache append benchmark (run by `tokenpress bench kv`, or on its own:
 * `node dist/bench/kv-append.js`): what KvCache.append costs per call and
 * per byte, against a plain copy of the same bytes measured in the same run.
 *
 * Workload: nKvHeads 8 x headDim 128 (one layer unless stated), f16 cache.
 *   single   10,000 single-token appends (f16 in, 4 KiB of K + V) into a
 *            layer holding 0, 4096 or 32768 tokens first, each timed alone:
 *            median, p99, p99.9, max; once with storage growing on demand
 *            (reserve 0) and once with reserve = start + calls.
 *   bulk     `bulkTokens`-token appends (f16 -> f16, f32 -> f16, f32 -> bf16,
 *            f16 -> int8 / int4) into an emptied layer, median over `reps`;
 *            GB/s of input bytes vs a memcpy (TypedArray.set) of the same
 *            bytes into a warm buffer and into a fresh one, timed alongside.
 *   decode   a 32-layer decode step at 4096 tokens: per layer, append one
 *            token and attend (nQ 1, 32 query heads), vs attend alone,
 *            interleaved, median over `reps` steps.
 * Prints a table and writes JSON (bench-results/kv-append-<date>.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { KvCache, backendInfo, f32ToF16Bits, type KvCacheDtype, type Tensor } from '../lib/index.js';
import { randomBlock } from './common.js';

export interface KvAppendBenchOptions {
  kvHeads?: number;
  headDim?: number;
  /** Single-token appends timed per starting length; default 10000. */
  singles?: number;
  /** Starting lengths of the single-token runs; default 0, 4096, 32768. */
  lengths?: number[];
  /** Tokens per bulk append; default 16384 (64 MiB of f16 K + V: past the LLC). */
  bulkTokens?: number;
  /** Layers and tokens of the decode step; default 32 x 4096. */
  decodeLayers?: number;
  decodeTokens?: number;
  reps?: number;
  json?: boolean;
  outFile?: string;
}

export interface LatencyRow { startTokens: number; calls: number; medianUs: number; p99Us: number; p999Us: number; maxUs: number; /** KvCache reserve option (0: storage grows on demand). */ reserve: number }
/** The same statistics for a trivial native call (cache.memoryBytes): the machine's timing noise floor. */
export type NoiseRow = Omit<LatencyRow, 'startTokens' | 'reserve'>;
export interface BulkRow {
  input: string; cache: KvCacheDtype; tokens: number; inputBytes: number; medianMs: number; gbPerS: number;
  memcpyWarmGBs: number; memcpyFreshGBs: number; pctOfMemcpyWarm: number; pctOfMemcpyFresh: number;
}
export interface KvAppendReport {
  date: string;
  machine: { cpus: number; model: string; threads: number; isa: string };
  config: Required<Omit<KvAppendBenchOptions, 'json' | 'outFile'>>;
  single: LatencyRow[];
  noiseFloor: NoiseRow;
  bulk: BulkRow[];
  decode: { layers: number; tokens: number; attendMs: number; appendAttendMs: number; overheadPct: number; appendUsPerLayer: number };
  notes: string[];
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
const nowNs = () => process.hrtime.bigint();
const msSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

function f16Block(n: number, seed: number): Uint16Array {
  const f = randomBlock(n, seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(f[i]!);
  return out;
}

export async function runKvAppendBench(opts: KvAppendBenchOptions = {}): Promise<KvAppendReport> {
  const cfg = {
    kvHeads: opts.kvHeads ?? 8,
    headDim: opts.headDim ?? 128,
    singles: opts.singles ?? 10000,
    lengths: opts.lengths ?? [0, 4096, 32768],
    bulkTokens: opts.bulkTokens ?? 16384,
    decodeLayers: opts.decodeLayers ?? 32,
    decodeTokens: opts.decodeTokens ?? 4096,
    reps: opts.reps ?? 9,
  };
  const { kvHeads: H, headDim: d } = cfg;
  const info = backendInfo();
  const notes: string[] = [];

  // Single-token appends.
  const maxStart = Math.max(...cfg.lengths);
  const fillK = f16Block(H * Math.max(maxStart, 1) * d, 11);
  const fillV = f16Block(H * Math.max(maxStart, 1) * d, 12);
  const tokK: Tensor<'f16'> = { dtype: 'f16', shape: [H, 1, d], data: f16Block(H * d, 13) };
  const tokV: Tensor<'f16'> = { dtype: 'f16', shape: [H, 1, d], data: f16Block(H * d, 14) };
  const single: LatencyRow[] = [];
  {
    // Warm up the JIT and the native path on a throwaway cache.
    const w = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d });
    for (let i = 0; i < 2000; i++) w.append(0, tokK, tokV);
    w.clear();
  }
  // Each start length twice: storage growing on demand (the default), and
  // with reserve = start + calls (no growth during the run).
  for (const [start, reserve] of [...cfg.lengths.map((l) => [l, 0]), ...cfg.lengths.map((l) => [l, l + cfg.singles])] as [number, number][]) {
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, reserve });
    if (start > 0) {
      const n = H * start * d;
      cache.append(0, { dtype: 'f16', shape: [H, start, d], data: fillK.subarray(0, n) }, { dtype: 'f16', shape: [H, start, d], data: fillV.subarray(0, n) });
    }
    const us = new Float64Array(cfg.singles);
    for (let i = 0; i < cfg.singles; i++) {
      const t0 = nowNs();
      cache.append(0, tokK, tokV);
      us[i] = Number(nowNs() - t0) / 1e3;
    }
    const s = Array.from(us).sort((a, b) => a - b);
    single.push({ startTokens: start, calls: cfg.singles, medianUs: quantile(s, 0.5), p99Us: quantile(s, 0.99), p999Us: quantile(s, 0.999), maxUs: s[s.length - 1]!, reserve });
    cache.clear();
  }

  // Noise floor: a trivial native call timed the same way (preemption,
  // GC and timer noise of this machine show in its tail too).
  let noiseFloor: NoiseRow;
  {
    const c = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d });
    const us = new Float64Array(cfg.singles);
    let sink = 0;
    for (let i = 0; i < cfg.singles; i++) {
      const t0 = nowNs();
      sink += c.memoryBytes;
      us[i] = Number(nowNs() - t0) / 1e3;
    }
    const s = Array.from(us).sort((a, b) => a - b);
    noiseFloor = { calls: cfg.singles + (sink > 0 ? 0 : 0), medianUs: quantile(s, 0.5), p99Us: quantile(s, 0.99), p999Us: quantile(s, 0.999), maxUs: s[s.length - 1]! };
  }

  // Bulk appends vs memcpy of the same bytes.
  const n = cfg.bulkTokens;
  const bulk: BulkRow[] = [];
  const f16k = f16Block(H * n * d, 21), f16v = f16Block(H * n * d, 22);
  const f32k = randomBlock(H * n * d, 23), f32v = randomBlock(H * n * d, 24);
  const cases: { input: 'f16' | 'f32'; cache: KvCacheDtype }[] = [
    { input: 'f16', cache: 'f16' }, { input: 'f32', cache: 'f32' }, { input: 'f32', cache: 'f16' }, { input: 'f32', cache: 'bf16' },
    { input: 'f16', cache: 'int8' }, { input: 'f16', cache: 'int4' },
  ];
  for (const c of cases) {
    const [kd, vd] = c.input === 'f16' ? [f16k, f16v] : [f32k, f32v];
    const k = { dtype: c.input, shape: [H, n, d], data: kd } as Tensor<'f16' | 'f32'>;
    const v = { dtype: c.input, shape: [H, n, d], data: vd } as Tensor<'f16' | 'f32'>;
    const bytes = kd.byteLength + vd.byteLength;
    // memcpy references: the same bytes into warm buffers (the copy roof)
    // and into fresh ones (the kernel zeroes new pages, as for new storage).
    const warmK = new Uint8Array(kd.byteLength), warmV = new Uint8Array(vd.byteLength);
    const srcK = new Uint8Array(kd.buffer, kd.byteOffset, kd.byteLength), srcV = new Uint8Array(vd.buffer, vd.byteOffset, vd.byteLength);
    warmK.set(srcK);
    warmV.set(srcV);
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype: c.cache });
    cache.append(0, k, v); // warm-up
    const app: number[] = [], warm: number[] = [], fresh: number[] = [];
    for (let r = 0; r < cfg.reps; r++) {
      cache.clear(0);
      let t0 = nowNs();
      cache.append(0, k, v);
      app.push(msSince(t0));
      t0 = nowNs();
      warmK.set(srcK);
      warmV.set(srcV);
      warm.push(msSince(t0));
      t0 = nowNs();
      const fk = new Uint8Array(kd.byteLength), fv = new Uint8Array(vd.byteLength);
      fk.set(srcK);
      fv.set(srcV);
      fresh.push(msSince(t0));
    }
    cache.clear();
    const ms = median(app), mw = median(warm), mf = median(fresh);
    const gb = (x: number) => bytes / (x / 1e3) / 1e9;
    bulk.push({
      input: c.input, cache: c.cache, tokens: n, inputBytes: bytes, medianMs: ms, gbPerS: gb(ms),
      memcpyWarmGBs: gb(mw), memcpyFreshGBs: gb(mf), pctOfMemcpyWarm: (100 * mw) / ms, pctOfMemcpyFresh: (100 * mf) / ms,
    });
  }

  // Decode step: append one token + attend per layer, vs attend alone.
  const L = cfg.decodeLayers, T = cfg.decodeTokens, nHeads = 4 * H;
  const dc = new KvCache({ nLayers: L, nKvHeads: H, headDim: d });
  const lk = f16Block(H * T * d, 31), lv = f16Block(H * T * d, 32);
  for (let l = 0; l < L; l++) dc.append(l, { dtype: 'f16', shape: [H, T, d], data: lk }, { dtype: 'f16', shape: [H, T, d], data: lv });
  const q: Tensor<'f32'> = { dtype: 'f32', shape: [nHeads, 1, d], data: randomBlock(nHeads * d, 33) };
  const out = new Float32Array(nHeads * d);
  const attendOnly = () => { for (let l = 0; l < L; l++) dc.attend(l, q, { remember: false, out }); };
  const appendAttend = () => {
    for (let l = 0; l < L; l++) {
      dc.append(l, tokK, tokV);
      dc.attend(l, q, { remember: false, out });
    }
  };
  attendOnly();
  appendAttend();
  const a: number[] = [], b: number[] = [];
  const steps = Math.max(cfg.reps * 4, 20);
  for (let r = 0; r < steps; r++) {
    let t0 = nowNs();
    attendOnly();
    a.push(msSince(t0));
    t0 = nowNs();
    appendAttend();
    b.push(msSince(t0));
  }
  const attendMs = median(a), appendAttendMs = median(b);
  dc.clear();
  notes.push(
    'single: each call timed alone (process.hrtime) through the public KvCache.append, JS validation included; reserve 0: storage grows during the calls (doubling; one growth event from 32768 tokens, eight from 0); reserve = start + calls: no growth.',
    'bulk: input GB/s = K + V input bytes / median time of one append into an emptied layer (clear() frees the storage; its huge-page mappings are retained, TOKENPRESS_KV_RETAIN_MB, default 256, and serve the next append of the same size: run with TOKENPRESS_KV_RETAIN_MB=0 for fresh pages every time). memcpy warm = TypedArray.set into buffers already written; memcpy fresh = into new buffers.',
    'decode: medians of interleaved steps; overheadPct = (append+attend - attend) / attend.',
  );
  const report: KvAppendReport = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '?', threads: info.threads, isa: info.isa },
    config: cfg,
    single,
    noiseFloor,
    bulk,
    decode: {
      layers: L, tokens: T, attendMs, appendAttendMs,
      overheadPct: (100 * (appendAttendMs - attendMs)) / attendMs,
      appendUsPerLayer: ((appendAttendMs - attendMs) * 1e3) / L,
    },
    notes,
  };
  const file = resolve(opts.outFile ?? `bench-results/kv-append-${report.date.slice(0, 10)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2));
  if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  return report;
}

const f = (x: number, digits = 1) => x.toFixed(digits);

export function printKvAppendTable(r: KvAppendReport): void {
  const c = r.config;
  console.log(`KV append: ${c.kvHeads} KV heads x headDim ${c.headDim}; ${r.machine.model}, ${r.machine.threads} threads (${r.machine.isa})`);
  console.log('single-token append (f16, 4 KiB K+V), us per call');
  console.log('start tokens  reserve   calls   median     p99   p99.9       max');
  for (const s of r.single) {
    console.log(`${String(s.startTokens).padStart(12)}  ${String(s.reserve).padStart(7)}  ${String(s.calls).padStart(6)}  ${f(s.medianUs, 2).padStart(7)}  ${f(s.p99Us, 1).padStart(6)}  ${f(s.p999Us, 1).padStart(6)}  ${f(s.maxUs, 0).padStart(8)}`);
  }
  const nf = r.noiseFloor;
  console.log(`noise floor            ${String(nf.calls).padStart(6)}  ${f(nf.medianUs, 2).padStart(7)}  ${f(nf.p99Us, 1).padStart(6)}  ${f(nf.p999Us, 1).padStart(6)}  ${f(nf.maxUs, 0).padStart(8)}  (cache.memoryBytes, a trivial native call)`);
  console.log('');
  console.log('bulk append   tokens  MiB in   ms (median)   GB/s in   memcpy warm GB/s  % of warm   memcpy fresh GB/s  % of fresh');
  for (const b of r.bulk) {
    console.log(
      `${`${b.input} -> ${b.cache}`.padEnd(13)} ${String(b.tokens).padStart(6)}  ${f(b.inputBytes / 2 ** 20, 0).padStart(6)}  ${f(b.medianMs, 2).padStart(12)}  ${f(b.gbPerS, 2).padStart(8)}  ${f(b.memcpyWarmGBs, 2).padStart(16)}  ${f(b.pctOfMemcpyWarm, 0).padStart(9)}  ${f(b.memcpyFreshGBs, 2).padStart(17)}  ${f(b.pctOfMemcpyFresh, 0).padStart(10)}`,
    );
  }
  console.log('');
  const dd = r.decode;
  console.log(`decode step, ${dd.layers} layers x ${dd.tokens} tokens: attend alone ${f(dd.attendMs, 2)} ms, append 1 token + attend ${f(dd.appendAttendMs, 2)} ms (${f(dd.overheadPct, 1)}%, ${f(dd.appendUsPerLayer, 2)} us per layer)`);
  for (const n of r.notes) console.log(`note: ${n}`);
}

// Run on its own: node dist/bench/kv-append.js
if (import.meta.url === `file://${process.argv[1]}`) {
  printKvAppendTable(await runKvAppendBench());
}
