/**
 * `tokenpress bench coding`: the coders on held-out English text (the Debian
 * corpus split of bench/corpus.ts, which training never sees), all in one run:
 *  - plain coding: bits/byte and MB/s with the built-in static model and with
 *    adaptive context mixing;
 *  - Equal-Info windows, b = 16, 32, 64, 128 with 8- and 16-bit tokens: bytes
 *    per token and per window, MB/s, beside the paper's Table 12;
 *  - the classical compressors on the same file (bench/classical.ts);
 *  - the raw coder with a fixed distribution against @thi.ng/range-coder and
 *    memcpy (bench/range-coder-peer.ts).
 * Multi-second passes run once (their spread is small next to the ratios
 * quoted); the raw coder takes the median of 5.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { backendInfo, setThreads } from '../lib/backend.js';
import { native } from '../lib/native.js';
import { ByteModel } from '../lib/coding/model.js';
import { EqualInfoTokenizer } from '../lib/coding/equal-info.js';
import { compressStatic, decompressStatic } from '../lib/coding/static.js';
import { compressAdaptive, decompressAdaptive } from '../lib/coding/adaptive.js';
import { quantizeForRawCoder } from '../lib/coding/raw.js';
import { ensureCorpus } from './corpus.js';
import { runClassical, type ClassicalRow } from './classical.js';
import { fixedDistribution, fixedDistributionBytes, measureMemcpy, runRangeCoderPeer } from './range-coder-peer.js';

export interface CodingBenchOptions {
  /** Use only the first `quickBytes` of the held-out text and skip the classical compressors. */
  quick?: boolean;
  classical?: boolean;
  progress?: boolean;
  json?: boolean;
  outFile?: string;
}

export interface PlainRow {
  name: string;
  bitsPerByte: number;
  encodeMBs: number;
  decodeMBs: number;
  roundTripOk: boolean;
}

export interface EqualInfoRow {
  windowBits: number;
  tokenBits: number;
  bytesPerToken: number;
  bytesPerWindow: number;
  bitsPerByte: number;
  /** The paper's Table 12 (M1: a 3M-parameter transformer, C4), where it gives one. */
  paperBytesPerToken: number | null;
  encodeMBs: number;
  decodeMBs: number;
  decodeMBsAllThreads: number;
  roundTripOk: boolean;
}

export interface RawCoderRow {
  name: string;
  encodeMBs: number;
  decodeMBs: number | null;
  bitsPerByte: number | null;
  note: string;
}

export interface CodingBenchReport {
  date: string;
  machine: { threads: number; isa: string };
  corpus: { description: string; heldOutBytes: number; benchBytes: number };
  model: { identity: string; bytes: number; maxOrder: number };
  plain: PlainRow[];
  equalInfo: EqualInfoRow[];
  classical: ClassicalRow[];
  rawCoder: RawCoderRow[];
  goals: { goal: string; value: string; met: boolean | null }[];
}

const PAPER_TABLE_12: Record<string, number> = { '16/8': 2.66, '16/16': 5.31 };
const QUICK_BYTES = 1 << 20;

function seconds<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, (performance.now() - t0) / 1000];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function plainRows(text: Uint8Array, model: ByteModel, step: (s: string) => void): PlainRow[] {
  step('plain: static model');
  const [sPayload, sEnc] = seconds(() => compressStatic(model, text));
  const [sBack, sDec] = seconds(() => decompressStatic(model, sPayload, text.length));
  step('plain: adaptive mixing');
  const [aPayload, aEnc] = seconds(() => compressAdaptive(text));
  const [aBack, aDec] = seconds(() => decompressAdaptive(aPayload, text.length));
  const mb = text.length / 1e6;
  return [
    { name: 'static (built-in model)', bitsPerByte: (sPayload.length * 8) / text.length, encodeMBs: mb / sEnc, decodeMBs: mb / sDec, roundTripOk: same(sBack, text) },
    { name: 'adaptive (context mixing)', bitsPerByte: (aPayload.length * 8) / text.length, encodeMBs: mb / aEnc, decodeMBs: mb / aDec, roundTripOk: same(aBack, text) },
  ];
}

function equalInfoRows(text: Uint8Array, model: ByteModel, threads: number, step: (s: string) => void): EqualInfoRow[] {
  const rows: EqualInfoRow[] = [];
  const mb = text.length / 1e6;
  for (const windowBits of [16, 32, 64, 128]) {
    for (const tokenBits of [8, 16] as const) {
      step(`equal-info b=${windowBits} t=${tokenBits}`);
      const tok = new EqualInfoTokenizer({ model, windowBits, tokenBits, maxBytes: text.length });
      setThreads(1);
      const [ids, enc] = seconds(() => tok.encode(text));
      const [back, dec] = seconds(() => tok.decodeBytes(ids));
      setThreads(threads);
      const [, decAll] = seconds(() => tok.decodeBytes(ids));
      const windows = tok.windowsIn(ids);
      rows.push({
        windowBits, tokenBits,
        bytesPerToken: text.length / ids.length,
        bytesPerWindow: text.length / windows,
        bitsPerByte: (windows * windowBits) / text.length,
        paperBytesPerToken: PAPER_TABLE_12[`${windowBits}/${tokenBits}`] ?? null,
        encodeMBs: mb / enc, decodeMBs: mb / dec, decodeMBsAllThreads: mb / decAll,
        roundTripOk: same(back, text),
      });
    }
  }
  return rows;
}

async function rawCoderRows(step: (s: string) => void): Promise<RawCoderRow[]> {
  const n = 16 << 20;
  step('raw coder');
  const data = fixedDistributionBytes(n, 1);
  const { freqs, totalLog2 } = quantizeForRawCoder(fixedDistribution());
  const addon = native();
  setThreads(1);
  const enc: number[] = [];
  const dec: number[] = [];
  let payload: Uint8Array = new Uint8Array(0);
  let ok = true;
  for (let r = 0; r < 5; r++) {
    const [p, e] = seconds(() => addon.rawEncode({ freqs, totalLog2, data }));
    const [back, d] = seconds(() => addon.rawDecode({ freqs, totalLog2, payload: p, length: n, maxBytes: n }));
    enc.push(e);
    dec.push(d);
    payload = p;
    ok &&= same(back, data);
  }
  step('raw coder: @thi.ng/range-coder');
  const peer = await runRangeCoderPeer(4 << 20);
  step('memcpy');
  const copy = await measureMemcpy(512 << 20);
  return [
    { name: 'tokenpress raw range coder', encodeMBs: n / 1e6 / median(enc), decodeMBs: n / 1e6 / median(dec), bitsPerByte: (payload.length * 8) / n, note: ok ? 'round trip ok' : 'ROUND TRIP FAILED' },
    { name: '@thi.ng/range-coder', encodeMBs: peer.encodeMBs, decodeMBs: peer.decodeMBs, bitsPerByte: peer.bitsPerByte, note: peer.how },
    { name: 'memcpy (Uint8Array.set, 512 MiB)', encodeMBs: copy.MBs, decodeMBs: null, bitsPerByte: null, note: 'the copy limit' },
  ];
}

function goals(r: Omit<CodingBenchReport, 'goals'>): CodingBenchReport['goals'] {
  const adaptive = r.plain.find((p) => p.name.startsWith('adaptive'))!;
  const staticRow = r.plain.find((p) => p.name.startsWith('static'))!;
  const ppmd = r.classical.filter((c) => c.name.toLowerCase().includes('ppmd') && c.bitsPerByte !== null).map((c) => c.bitsPerByte!);
  const zpaq = r.classical.filter((c) => c.name.toLowerCase().includes('zpaq') && c.bitsPerByte !== null).map((c) => c.bitsPerByte!);
  const eq = r.equalInfo.find((e) => e.windowBits === 16 && e.tokenBits === 16)!;
  const raw = r.rawCoder[0]!;
  const bestPpmd = ppmd.length ? Math.min(...ppmd) : null;
  const bestZpaq = zpaq.length ? Math.min(...zpaq) : null;
  return [
    { goal: 'adaptive bits/byte <= 7zz PPMd', value: `${adaptive.bitsPerByte.toFixed(3)} vs ${bestPpmd?.toFixed(3) ?? 'n/a'}`, met: bestPpmd === null ? null : adaptive.bitsPerByte <= bestPpmd },
    { goal: 'stretch: adaptive within 5% of zpaq', value: `${adaptive.bitsPerByte.toFixed(3)} vs ${bestZpaq?.toFixed(3) ?? 'n/a'}`, met: bestZpaq === null ? null : adaptive.bitsPerByte <= bestZpaq * 1.05 },
    { goal: 'Equal-Info b=16, 16-bit tokens >= 5.31 bytes/token', value: eq.bytesPerToken.toFixed(3), met: eq.bytesPerToken >= 5.31 },
    { goal: 'built-in model encode >= 5 MB/s per core', value: `static ${staticRow.encodeMBs.toFixed(2)}, equal-info b=16 ${eq.encodeMBs.toFixed(2)}`, met: Math.min(staticRow.encodeMBs, eq.encodeMBs) >= 5 },
    { goal: 'built-in model decode >= 5 MB/s per core', value: `static ${staticRow.decodeMBs.toFixed(2)}, equal-info b=16 ${eq.decodeMBs.toFixed(2)}`, met: Math.min(staticRow.decodeMBs, eq.decodeMBs) >= 5 },
    { goal: 'raw coder >= 50 MB/s per core', value: `encode ${raw.encodeMBs.toFixed(1)}, decode ${raw.decodeMBs!.toFixed(1)}`, met: Math.min(raw.encodeMBs, raw.decodeMBs!) >= 50 },
  ];
}

export async function runCodingBench(opts: CodingBenchOptions = {}): Promise<CodingBenchReport> {
  const info = backendInfo();
  const threads = info.threads;
  const corpus = await ensureCorpus();
  const heldOut = new Uint8Array(readFileSync(corpus.heldOutPath));
  const text = opts.quick ? heldOut.subarray(0, QUICK_BYTES) : heldOut;
  const model = ByteModel.loadDefault();
  const classicalOn = opts.classical !== false && !opts.quick;
  const steps = 2 + 8 + 3 + (classicalOn ? 1 : 0);
  const bar = opts.progress !== false && !opts.json && process.stderr.isTTY
    ? new cliProgress.SingleBar({ format: '{bar} {value}/{total} {step}', stream: process.stderr }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(steps, 0, { step: '' });
  let done = 0;
  const step = (s: string) => bar?.update(done++, { step: s });
  try {
    const plain = plainRows(text, model, step);
    const equalInfo = equalInfoRows(text, model, threads, step);
    const rawCoder = await rawCoderRows(step);
    let classical: ClassicalRow[] = [];
    if (classicalOn) {
      step('classical compressors');
      classical = await runClassical(corpus.heldOutPath, { onProgress: (name) => bar?.update(done, { step: `classical: ${name}` }) });
    }
    bar?.update(steps, { step: 'done' });
    const partial = {
      date: new Date().toISOString(),
      machine: { threads, isa: info.isa },
      corpus: { description: corpus.description, heldOutBytes: heldOut.length, benchBytes: text.length },
      model: { identity: model.info.identity, bytes: model.info.bytes, maxOrder: model.info.maxOrder },
      plain, equalInfo, classical, rawCoder,
    };
    const report: CodingBenchReport = { ...partial, goals: goals(partial) };
    const file = resolve(opts.outFile ?? `bench-results/coding-${report.date.slice(0, 10)}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(report, null, 2));
    if (opts.json) console.log(JSON.stringify(report, null, 2));
    return report;
  } finally {
    bar?.stop();
    setThreads(threads);
  }
}

const f = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
const short = (s: string) => (s.length > 60 ? s.slice(0, 57) + '...' : s);

export function printCodingTable(r: CodingBenchReport): void {
  console.log(`\nHeld-out text: ${r.corpus.description}; ${r.corpus.benchBytes} bytes. Model ${r.model.identity} (${r.model.bytes} bytes, order ${r.model.maxOrder}). ${r.machine.threads} threads, ${r.machine.isa}.`);
  console.log('\nPlain coding (1 thread)');
  console.table(r.plain.map((p) => ({ coder: p.name, 'bits/byte': f(p.bitsPerByte, 3), 'encode MB/s': f(p.encodeMBs), 'decode MB/s': f(p.decodeMBs), 'round trip': p.roundTripOk })));
  console.log('\nEqual-Info windows (encode and decode on 1 thread; decode also on all threads)');
  console.table(r.equalInfo.map((e) => ({
    b: e.windowBits, 'token bits': e.tokenBits, 'bytes/token': f(e.bytesPerToken, 3), 'paper bytes/token': f(e.paperBytesPerToken),
    'bytes/window': f(e.bytesPerWindow, 3), 'bits/byte': f(e.bitsPerByte, 3), 'encode MB/s': f(e.encodeMBs), 'decode MB/s': f(e.decodeMBs),
    [`decode MB/s (${r.machine.threads} thr)`]: f(e.decodeMBsAllThreads), 'round trip': e.roundTripOk,
  })));
  if (r.classical.length > 0) {
    console.log('\nClassical compressors on the same text');
    console.table(r.classical.map((c) => ({ compressor: c.name, 'bits/byte': f(c.bitsPerByte, 3), 'compress MB/s': f(c.compressMBs), 'decompress MB/s': f(c.decompressMBs), note: short(c.note ?? '') })));
  }
  console.log('\nRaw coder, fixed distribution (1 thread)');
  console.table(r.rawCoder.map((c) => ({ coder: c.name, 'encode MB/s': f(c.encodeMBs, 1), 'decode MB/s': f(c.decodeMBs, 1), 'bits/byte': f(c.bitsPerByte, 3), note: short(c.note) })));
  console.log('(full notes in the JSON report)');
  console.log('\nGoals');
  console.table(r.goals.map((g) => ({ goal: g.goal, value: g.value, met: g.met === null ? 'n/a' : g.met ? 'yes' : 'no' })));
}
