/**
 * Soak (docs/soak.md): a server-like process that runs mixed async
 * tokenpress calls from several worker_threads for minutes, terminates and
 * restarts workers at random moments (mid-call: every worker always has calls
 * in flight), checks a sample of results against references written here,
 * and samples RSS against the caches' memoryBytes.
 *
 *   node dist/bench/soak.js [--minutes 2] [--workers 4] [--no-terminate] ...
 *
 * Each worker runs `--concurrency` request loops; each loop owns a KvCache
 * and picks, per request, one of:
 *   kv          appendAsync of 1-4 tokens (one request in ten: a prefill of
 *               64-256) + attendAsync (with key mass) on a random layer of a
 *               cache of 4 layers x 4 KV heads x headDim 128 (8 query
 *               heads; f16, f32, int8, int4 or bf16 by loop); compressAsync
 *               (h2o / snapkv / tova / streamingllm / knorm) to a quarter of
 *               --max-tokens when a head passes it; clear() now and then;
 *               checked: attend output vs a float64 reference over the
 *               layer's exported rows (float caches)
 *   attention   attentionAsync, causal, GQA 8/2, nQ 1 or 5, nKv 64..600;
 *               checked: vs a float64 reference
 *   equal-info  EqualInfoTokenizer encodeAsync + decodeAsync: exact round trip
 *   zip         zipBytes + unzipBytes ('static' or 'equal-info'): exact
 *   adaptive    compressAdaptiveAsync + decompressAdaptiveAsync (2^20 bytes
 *               of model memory): exact
 *   select      selectKv vs a sort-based reference
 * Float results are checked on one request in --check-every; exact round
 * trips always.
 *
 * Restarts: with termination on (default), every ~--restart-ms one random
 * worker gets worker.terminate() while its calls run, and a new one takes
 * its place. With --no-terminate, the worker is recycled instead: it stops
 * issuing requests, lets the calls in flight settle and exits by itself.
 *
 * RSS: sampled every second with the sum of the live workers' memoryBytes.
 * "drift" is RSS at the end minus RSS after the warm-up (first 20% of the
 * run); "unexplained" subtracts the change of memoryBytes over the same
 * span, and the slope is a least-squares fit of RSS after the warm-up.
 *
 * Exit code 1 on any wrong result, failed call, unexpected worker exit, or
 * (with --max-drift-mib) an unexplained drift above that. Prints a table
 * and writes JSON to bench-results/ (or --out).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Command, InvalidArgumentError } from 'commander';
import {
  ByteModel, EqualInfoTokenizer, KvCache, attentionAsync, backendInfo, compressAdaptiveAsync, decompressAdaptiveAsync,
  selectKv, unzipBytes, zipBytes,
  type KvCacheDtype, type KvCompressionPolicy, type Tensor,
} from '../lib/index.js';

const OPS = ['kv', 'attention', 'equal-info', 'zip', 'adaptive', 'select'] as const;
type Op = (typeof OPS)[number];
/** Relative weights of the operations (kv is the decode-loop hot path). */
const WEIGHTS: Record<Op, number> = { kv: 6, attention: 3, 'equal-info': 2, zip: 1, adaptive: 1, select: 2 };

interface WorkerConfig {
  id: number;
  seed: number;
  concurrency: number;
  checkEvery: number;
  maxTokens: number;
}

/** Cumulative counters of one worker, posted every STATS_MS. */
interface WorkerStats {
  ops: Record<Op, number>;
  checked: number;
  mismatches: number;
  errors: number;
  memoryBytes: number;
  messages: string[]; // first few error / mismatch messages
}

const STATS_MS = 250;
/** Shape of every soak KvCache: f16 at 1024 tokens per head holds 8 MiB of K and V. */
const KV = { nLayers: 4, nKvHeads: 4, nHeads: 8, headDim: 128 } as const;

// ---------------------------------------------------------------- helpers

/** mulberry32: deterministic [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomF32(rand: () => number, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  return a;
}

const WORDS = ['the ', 'cache ', 'keeps ', 'tokens ', 'of ', 'a ', 'long ', 'prompt ', 'window ', 'model ', 'server.\n', 'Attention '];
function randomText(rand: () => number, bytes: number): string {
  let s = '';
  while (s.length < bytes) s += WORDS[Math.floor(rand() * WORDS.length)]!;
  return s;
}

/**
 * Float64 reference of one query row over n keys (all visible):
 * out[d] = sum_j softmax(scale * q.k_j)_j v_j[d]. k, v rows of headDim at
 * kOff + j * headDim.
 */
function refRow(q: Float32Array, qOff: number, k: Float32Array, v: Float32Array, kOff: number, n: number, headDim: number,
  scale: number): Float64Array {
  const logits = new Float64Array(n);
  let max = -Infinity;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let d = 0; d < headDim; d++) s += q[qOff + d]! * k[kOff + j * headDim + d]!;
    logits[j] = s * scale;
    if (logits[j]! > max) max = logits[j]!;
  }
  const out = new Float64Array(headDim);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const p = Math.exp(logits[j]! - max);
    sum += p;
    for (let d = 0; d < headDim; d++) out[d]! += p * v[kOff + j * headDim + d]!;
  }
  for (let d = 0; d < headDim; d++) out[d]! /= sum;
  return out;
}

/** |a - b| <= tol (1 + |b|) everywhere; the first offending index otherwise. */
function firstMismatch(a: Float32Array, aOff: number, b: Float64Array, tol: number): number {
  for (let i = 0; i < b.length; i++) {
    if (!(Math.abs(a[aOff + i]! - b[i]!) <= tol * (1 + Math.abs(b[i]!)))) return i;
  }
  return -1;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- worker

/** One request loop: owns a KvCache and picks weighted random operations. */
class Loop {
  readonly cache: KvCache;
  readonly dtype: KvCacheDtype;
  /** memoryBytes after the last request (the getter refuses while a call is in flight). */
  memoryBytes = 0;
  private n = 0;
  constructor(private readonly cfg: WorkerConfig, index: number, private readonly stats: WorkerStats,
    private readonly rand: () => number, private readonly model: ByteModel, private readonly tokenizer: EqualInfoTokenizer) {
    const dtypes: KvCacheDtype[] = ['f16', 'f32', 'int8', 'int4', 'bf16'];
    this.dtype = dtypes[(cfg.id + index) % dtypes.length]!;
    this.cache = new KvCache({ nLayers: KV.nLayers, nKvHeads: KV.nKvHeads, headDim: KV.headDim, dtype: this.dtype, residual: 32 });
  }

  private pick(): Op {
    const total = OPS.reduce((s, op) => s + WEIGHTS[op], 0);
    let r = this.rand() * total;
    for (const op of OPS) {
      r -= WEIGHTS[op];
      if (r < 0) return op;
    }
    return 'kv';
  }

  private fail(kind: 'mismatches' | 'errors', msg: string): void {
    this.stats[kind]++;
    if (this.stats.messages.length < 10) this.stats.messages.push(`worker ${this.cfg.id}: ${msg}`);
  }

  async run(stop: () => boolean): Promise<void> {
    while (!stop()) {
      const op = this.pick();
      const check = ++this.n % this.cfg.checkEvery === 0;
      try {
        switch (op) {
          case 'kv': await this.kv(check); break;
          case 'attention': await this.attention(check); break;
          case 'equal-info': await this.equalInfo(); break;
          case 'zip': await this.zip(); break;
          case 'adaptive': await this.adaptive(); break;
          case 'select': this.select(check); break;
        }
        this.stats.ops[op]++;
      } catch (e) {
        this.fail('errors', `${op}: ${(e as Error).stack ?? String(e)}`);
      }
    }
  }

  async kv(check: boolean): Promise<void> {
    const { nKvHeads: H, nHeads, headDim: d } = KV;
    const rand = this.rand;
    const layer = Math.floor(rand() * KV.nLayers);
    // Mostly decode steps of 1-4 tokens; one request in ten is a prefill.
    const n = rand() < 0.1 ? 64 + Math.floor(rand() * 193) : 1 + Math.floor(rand() * 4);
    const t = (rows: number, heads: number = H): Tensor<'f32'> => ({ dtype: 'f32', shape: [heads, rows, d], data: randomF32(rand, heads * rows * d) });
    await this.cache.appendAsync(layer, t(n), t(n));
    const q = t(1, nHeads);
    const { output } = await this.cache.attendAsync(layer, q, { accumulateMass: true });
    if (check && (this.dtype === 'f32' || this.dtype === 'f16' || this.dtype === 'bf16')) {
      this.stats.checked++;
      const e = await this.cache.exportAsync(layer, { dtype: 'f32' });
      const maxLen = e.k.shape[1]!;
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / (nHeads / H));
        const ref = refRow(q.data, h * d, e.k.data as Float32Array, e.v.data as Float32Array, kvh * maxLen * d,
          e.lengths[kvh]!, d, 1 / Math.sqrt(d));
        const bad = firstMismatch(output.data, h * d, ref, 2e-3);
        if (bad >= 0) {
          this.fail('mismatches', `kv ${this.dtype} head ${h}[${bad}]: ${output.data[h * d + bad]} vs ${ref[bad]}`);
          break;
        }
      }
    }
    if (this.cache.lengths().data.some((len) => len > this.cfg.maxTokens)) {
      const policies: KvCompressionPolicy[] = ['h2o', 'snapkv', 'tova', 'streamingllm', 'knorm'];
      const policy = policies[Math.floor(rand() * policies.length)]!;
      await this.cache.compressAsync(policy, { keep: Math.floor(this.cfg.maxTokens / 4) });
    }
    if (rand() < 0.005) this.cache.clear();
    this.memoryBytes = this.cache.memoryBytes;
  }

  async attention(check: boolean): Promise<void> {
    const rand = this.rand, nHeads = 8, H = 2, d = 64;
    const nQ = rand() < 0.7 ? 1 : 5;
    const nKv = 64 + Math.floor(rand() * 537);
    const q: Tensor<'f32'> = { dtype: 'f32', shape: [nHeads, nQ, d], data: randomF32(rand, nHeads * nQ * d) };
    const k: Tensor<'f32'> = { dtype: 'f32', shape: [H, nKv, d], data: randomF32(rand, H * nKv * d) };
    const v: Tensor<'f32'> = { dtype: 'f32', shape: [H, nKv, d], data: randomF32(rand, H * nKv * d) };
    const { output } = await attentionAsync(q, k, v, { causal: true });
    if (!check) return;
    this.stats.checked++;
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < nQ; i++) {
        const kvh = Math.floor(h / (nHeads / H));
        // causal: query i (the last nQ positions) sees keys p <= nKv - nQ + i.
        const ref = refRow(q.data, (h * nQ + i) * d, k.data, v.data, kvh * nKv * d, nKv - nQ + i + 1, d, 1 / Math.sqrt(d));
        const bad = firstMismatch(output.data, (h * nQ + i) * d, ref, 1e-4);
        if (bad >= 0) return this.fail('mismatches', `attention h${h} q${i}[${bad}]: ${output.data[(h * nQ + i) * d + bad]} vs ${ref[bad]}`);
      }
    }
  }

  async equalInfo(): Promise<void> {
    const text = randomText(this.rand, 200 + Math.floor(this.rand() * 4000));
    const ids = await this.tokenizer.encodeAsync(text);
    const back = await this.tokenizer.decodeAsync(ids);
    if (back !== text) this.fail('mismatches', `equal-info round trip: ${text.length} bytes in, ${back.length} out`);
  }

  async zip(): Promise<void> {
    const data = new TextEncoder().encode(randomText(this.rand, 500 + Math.floor(this.rand() * 8000)));
    const mode = this.rand() < 0.5 ? 'static' : 'equal-info';
    const file = await zipBytes(data, { mode, model: this.model });
    const back = await unzipBytes(file, { model: this.model });
    if (!sameBytes(back, data)) this.fail('mismatches', `zip ${mode} round trip: ${data.length} bytes in, ${back.length} out`);
  }

  async adaptive(): Promise<void> {
    const data = new TextEncoder().encode(randomText(this.rand, 500 + Math.floor(this.rand() * 8000)));
    const opts = { memoryLog2: 20 };
    const payload = await compressAdaptiveAsync(data, opts);
    const back = await decompressAdaptiveAsync(payload, data.length, opts);
    if (!sameBytes(back, data)) this.fail('mismatches', `adaptive round trip: ${data.length} bytes in, ${back.length} out`);
  }

  select(check: boolean): void {
    const H = 2, nKv = 50 + Math.floor(this.rand() * 400), keep = 1 + Math.floor(this.rand() * 49);
    const scores = randomF32(this.rand, H * nKv);
    const got = selectKv({ dtype: 'f32', shape: [H, nKv], data: scores }, { keep }).data;
    if (!check) return;
    this.stats.checked++;
    for (let h = 0; h < H; h++) {
      // The keep highest scores (earlier position first on ties), ascending.
      const order = Array.from({ length: nKv }, (_, i) => i)
        .sort((a, b) => scores[h * nKv + b]! - scores[h * nKv + a]! || a - b)
        .slice(0, keep).sort((a, b) => a - b);
      for (let j = 0; j < keep; j++) {
        if (got[h * keep + j] !== order[j]) return this.fail('mismatches', `selectKv head ${h}[${j}]: ${got[h * keep + j]} vs ${order[j]}`);
      }
    }
  }
}

async function workerMain(cfg: WorkerConfig): Promise<void> {
  const port = parentPort!;
  const stats: WorkerStats = {
    ops: Object.fromEntries(OPS.map((op) => [op, 0])) as Record<Op, number>,
    checked: 0, mismatches: 0, errors: 0, memoryBytes: 0, messages: [],
  };
  const model = ByteModel.loadDefault();
  const tokenizer = new EqualInfoTokenizer({ model });
  const loops = Array.from({ length: cfg.concurrency }, (_, i) => new Loop(cfg, i, stats, rng(cfg.seed * 7919 + i), model, tokenizer));
  const post = (final: boolean): void => {
    stats.memoryBytes = loops.reduce((s, l) => s + l.memoryBytes, 0);
    port.postMessage({ type: 'stats', final, stats });
  };
  let stopping = false;
  port.on('message', (m: { type: string }) => { if (m.type === 'stop') stopping = true; });
  const timer = setInterval(() => post(false), STATS_MS);
  await Promise.all(loops.map((l) => l.run(() => stopping)));
  // Recycled: every call has settled; leave with no work in flight.
  clearInterval(timer);
  post(true);
  port.close();
}

// ---------------------------------------------------------------- main

interface Options {
  minutes: number;
  workers: number;
  concurrency: number;
  terminate: boolean;
  restartMs: number;
  checkEvery: number;
  maxTokens: number;
  seed: number;
  maxDriftMib?: number;
  out?: string;
}

interface Slot {
  worker: Worker;
  generation: number;
  expectedExit: boolean;
  last?: WorkerStats; // latest stats of the live worker
  exited: Promise<number>;
}

interface Sample { t: number; rss: number; memoryBytes: number; live: number }

const MiB = 1024 * 1024;

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name}: expected a positive integer, received ${v}`);
    return n;
  };
}
function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError(`${name}: expected a positive number, received ${v}`);
    return n;
  };
}

function parseArgs(argv: string[]): Options {
  const program = new Command('soak')
    .description('Mixed async tokenpress calls from several worker_threads, with worker restarts (docs/soak.md)')
    .option('--minutes <m>', 'how long to run', positiveNumber('--minutes'), 2)
    .option('--workers <n>', 'worker_threads running at once', positiveInt('--workers'), 4)
    .option('--concurrency <n>', 'request loops (calls in flight) per worker', positiveInt('--concurrency'), 3)
    .option('--no-terminate', 'recycle workers gracefully (let their calls settle) instead of worker.terminate() mid-call')
    .option('--restart-ms <ms>', 'mean time between worker restarts', positiveInt('--restart-ms'), 3000)
    .option('--check-every <n>', 'check one float result in n against its reference', positiveInt('--check-every'), 5)
    .option('--max-tokens <n>', 'compress a cache layer past this many tokens per head', positiveInt('--max-tokens'), 1024)
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1)
    .option('--max-drift-mib <m>', 'fail when the unexplained RSS drift exceeds this', positiveNumber('--max-drift-mib'))
    .option('--out <file>', 'JSON output (default bench-results/soak-<time>.json)')
    .allowExcessArguments(false);
  program.parse(argv);
  return program.opts<Options>();
}

function slope(samples: Sample[]): number {
  // Least-squares RSS slope in bytes per minute.
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((s, x) => s + x.t, 0) / n;
  const mr = samples.reduce((s, x) => s + x.rss, 0) / n;
  let num = 0, den = 0;
  for (const x of samples) {
    num += (x.t - mt) * (x.rss - mr);
    den += (x.t - mt) ** 2;
  }
  return den === 0 ? 0 : (num / den) * 60_000;
}

function addStats(into: WorkerStats, s: WorkerStats): void {
  for (const op of OPS) into.ops[op] += s.ops[op];
  into.checked += s.checked;
  into.mismatches += s.mismatches;
  into.errors += s.errors;
  for (const m of s.messages) if (into.messages.length < 20) into.messages.push(m);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv);
  const self = fileURLToPath(import.meta.url);
  const rand = rng(o.seed);
  const durationMs = o.minutes * 60_000;
  const warmupMs = durationMs * 0.2;
  const done: WorkerStats = {
    ops: Object.fromEntries(OPS.map((op) => [op, 0])) as Record<Op, number>,
    checked: 0, mismatches: 0, errors: 0, memoryBytes: 0, messages: [],
  };
  let generations = 0, terminated = 0, recycled = 0, unexpectedExits = 0;
  let running = true;
  const rssBefore = process.memoryUsage().rss;
  const t0 = Date.now();

  const spawn = (i: number): Slot => {
    const cfg: WorkerConfig = { id: i, seed: o.seed * 1000 + generations++, concurrency: o.concurrency, checkEvery: o.checkEvery, maxTokens: o.maxTokens };
    const worker = new Worker(self, { workerData: cfg });
    const slot: Slot = { worker, generation: cfg.seed, expectedExit: false, exited: Promise.resolve(0) };
    worker.on('message', (m: { type: string; final: boolean; stats: WorkerStats }) => {
      if (m.type === 'stats') slot.last = m.stats;
    });
    worker.on('error', (e) => {
      unexpectedExits++;
      if (done.messages.length < 20) done.messages.push(`worker ${i} error: ${e.stack ?? String(e)}`);
    });
    slot.exited = new Promise((res) => worker.once('exit', (code) => {
      if (slot.last) addStats(done, slot.last);
      slot.last = undefined;
      if (!slot.expectedExit) {
        unexpectedExits++;
        if (done.messages.length < 20) done.messages.push(`worker ${i} exited unexpectedly with code ${code}`);
        if (running && slots[i] === slot) slots[i] = spawn(i); // keep the load on
      }
      res(code);
    }));
    return slot;
  };

  const slots: Slot[] = [];
  for (let i = 0; i < o.workers; i++) slots.push(spawn(i));
  const samples: Sample[] = [];
  const liveMemory = (): number => slots.reduce((s, x) => s + (x.last?.memoryBytes ?? 0), 0);
  const sampler = setInterval(() => {
    samples.push({ t: Date.now() - t0, rss: process.memoryUsage().rss, memoryBytes: liveMemory(), live: slots.length });
  }, 1000);

  // Restart one random worker every ~restartMs (uniform in [0.5, 1.5] x).
  const restarter = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, o.restartMs * (0.5 + rand())));
      if (!running) break;
      const i = Math.floor(rand() * slots.length);
      const slot = slots[i]!;
      slot.expectedExit = true;
      if (o.terminate) {
        await slot.worker.terminate();
        terminated++;
      } else {
        slot.worker.postMessage({ type: 'stop' });
        await slot.exited;
        recycled++;
      }
      await slot.exited;
      if (running) slots[i] = spawn(i);
    }
  })();

  const progress = setInterval(() => {
    const s = samples[samples.length - 1];
    if (s) process.stderr.write(`\r  ${((Date.now() - t0) / 1000).toFixed(0)}s  rss ${(s.rss / MiB).toFixed(0)} MiB  memoryBytes ${(s.memoryBytes / MiB).toFixed(1)} MiB  restarts ${terminated + recycled}   `);
  }, 5000);
  await new Promise((r) => setTimeout(r, durationMs));
  running = false;
  const rssEnd = process.memoryUsage().rss;
  const memEnd = liveMemory();
  await restarter;
  clearInterval(sampler);
  clearInterval(progress);
  process.stderr.write('\n');

  // Stop every worker gracefully; count their last stats.
  for (const slot of slots) {
    slot.expectedExit = true;
    slot.worker.postMessage({ type: 'stop' });
  }
  await Promise.all(slots.map((s) => Promise.race([s.exited, new Promise((r) => setTimeout(r, 60_000)).then(() => s.worker.terminate())])));

  const after = samples.filter((s) => s.t >= warmupMs);
  const start = after[0] ?? samples[0]!;
  const rssDrift = rssEnd - start.rss;
  const unexplained = rssDrift - (memEnd - start.memoryBytes);
  const opsTotal = OPS.reduce((s, op) => s + done.ops[op], 0);
  const info = backendInfo();
  const result = {
    date: new Date().toISOString(),
    command: `node ${process.argv.slice(1).join(' ')}`,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    isa: info.isa,
    threads: info.threads,
    options: o,
    seconds: (Date.now() - t0) / 1000,
    operations: { total: opsTotal, ...done.ops },
    checked: done.checked,
    mismatches: done.mismatches,
    errors: done.errors,
    workerRestarts: { terminated, recycled },
    unexpectedWorkerExits: unexpectedExits,
    rssMiB: {
      beforeWorkers: rssBefore / MiB,
      afterWarmup: start.rss / MiB,
      end: rssEnd / MiB,
      max: Math.max(...samples.map((s) => s.rss)) / MiB,
      drift: rssDrift / MiB,
      unexplainedDrift: unexplained / MiB,
      slopePerMinuteAfterWarmup: slope(after) / MiB,
    },
    memoryBytesMiB: {
      afterWarmup: start.memoryBytes / MiB,
      end: memEnd / MiB,
      max: Math.max(...samples.map((s) => s.memoryBytes)) / MiB,
    },
    messages: done.messages,
    samples,
  };

  const f = (x: number): string => x.toFixed(1);
  const rows: [string, string][] = [
    ['cpu', `${result.cpu} (${result.cores} cores, isa ${result.isa}, ${result.threads} pool threads)`],
    ['duration', `${f(result.seconds)} s, ${o.workers} workers x ${o.concurrency} loops`],
    ['operations', `${opsTotal} (${OPS.map((op) => `${op} ${done.ops[op]}`).join(', ')})`],
    ['checked vs reference', String(done.checked)],
    ['mismatches', String(done.mismatches)],
    ['errors', String(done.errors)],
    ['worker restarts', `${terminated} terminated mid-call, ${recycled} recycled`],
    ['unexpected worker exits', String(unexpectedExits)],
    ['RSS MiB', `before workers ${f(result.rssMiB.beforeWorkers)}, after warm-up ${f(result.rssMiB.afterWarmup)}, end ${f(result.rssMiB.end)}, max ${f(result.rssMiB.max)}`],
    ['RSS drift MiB', `${f(result.rssMiB.drift)} (unexplained by memoryBytes ${f(result.rssMiB.unexplainedDrift)}; slope ${f(result.rssMiB.slopePerMinuteAfterWarmup)} MiB/min)`],
    ['memoryBytes MiB', `after warm-up ${f(result.memoryBytesMiB.afterWarmup)}, end ${f(result.memoryBytesMiB.end)}, max ${f(result.memoryBytesMiB.max)}`],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  for (const m of done.messages) console.log(`  ! ${m.split('\n')[0]}`);

  const out = resolve(o.out ?? `bench-results/soak-${result.date.replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${out}`);

  const driftFailed = o.maxDriftMib !== undefined && result.rssMiB.unexplainedDrift > o.maxDriftMib;
  if (done.mismatches || done.errors || unexpectedExits || driftFailed) process.exitCode = 1;
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
} else {
  void workerMain(workerData as WorkerConfig);
}
