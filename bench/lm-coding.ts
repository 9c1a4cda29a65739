/**
 * `tokenpress bench lm-coding`: the trained byte LM (models/lm/main and
 * models/lm/draft, through onnxruntime-node: lib/model/neural-coder.ts) as
 * the coders' model, against the built-in n-gram model (models/default.tpm),
 * on two English texts:
 *
 *   held-out  the held-out split of the Debian corpus (bench/corpus.ts) that
 *             both models' training never saw: `slices` evenly spaced slices
 *             of bytes / slices bytes each (one document per slice);
 *   outside   a text from outside the training corpus: by default the GNU
 *             GPL version 3 as Debian's base-files installs it
 *             (/usr/share/common-licenses/GPL-3), sliced the same way.
 *
 * For each (text, model): Equal-Info windows at b = 16 with 16-bit tokens
 * (bytes/token beside the paper's 5.31 for its 3M-parameter M1, and
 * bits/byte = windows x 16 / bytes) and plain coding with the full context
 * (payload bits/byte; for the LM also the model's ideal -log2 p), encode and
 * decode bytes/s, and a round-trip check of every measurement. Everything
 * runs on one thread (ORT intra-op 1; the native coders with setThreads(1)).
 * The LM's memo and sessions are cleared before each encode and each decode,
 * so a decode never profits from the encode before it. Writes JSON to
 * bench-results/lm-coding-<date>.json.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { backendInfo, setThreads } from '../lib/backend.js';
import { ByteModel } from '../lib/coding/model.js';
import { EqualInfoTokenizer } from '../lib/coding/equal-info.js';
import { compressStatic, decompressStatic } from '../lib/coding/static.js';
import { NeuralByteModel, compressNeuralMeasured, decompressNeural } from '../lib/model/neural-coder.js';
import { ensureCorpus } from './corpus.js';
import { cpuModel } from './limits.js';

/** The paper's Table 12 figure for EqualInfoAC[b=16, v=65k] with M1 (3M parameters, C4). */
export const PAPER_B16_T16_BYTES_PER_TOKEN = 5.31;
export const DEFAULT_OUTSIDE_TEXT = '/usr/share/common-licenses/GPL-3';

export interface LmCodingBenchOptions {
  /** Bytes per text (split into `slices` documents). Default 16384. */
  bytes?: number;
  /** Documents per text, evenly spaced. Default 4. */
  slices?: number;
  /** LMs to measure (built-in names or directories). Default ['main', 'draft']. */
  models?: string[];
  /** The outside text. Default /usr/share/common-licenses/GPL-3. */
  textFile?: string;
  /** NeuralByteModel contextLimit (default: the model's trained context). */
  contextLimit?: number;
  /** NeuralByteModel startByte (default null: none, the first byte gets the stationary row). */
  startByte?: number | null;
  /** Equal-Info window bits and token bits (default 16 / 16: the paper's setting). */
  windowBits?: number;
  tokenBits?: number;
  json?: boolean;
  outFile?: string;
  /** Progress lines on stderr (default true unless json). */
  progress?: boolean;
}

export interface LmCodingRow {
  text: string;
  model: string;
  coding: 'equal-info' | 'plain';
  bytes: number;
  documents: number;
  /** Equal-Info only. */
  tokens: number | null;
  bytesPerToken: number | null;
  paperBytesPerToken: number | null;
  /** Equal-Info: windows x windowBits / bytes; plain: payload bits / bytes. */
  bitsPerByte: number;
  /** Plain LM rows: the model's own -log2 p per byte (what the coder approaches). */
  modelBitsPerByte: number | null;
  /** Bytes per wall-clock second (the machine is shared: see the CPU-time figures too). */
  encodeBytesPerSec: number;
  decodeBytesPerSec: number;
  /** Bytes per CPU second of this process (all its threads): steadier than wall time on a busy machine. */
  encodeBytesPerCpuSec: number;
  decodeBytesPerCpuSec: number;
  roundTripOk: boolean;
  /** LM rows: ORT runs over encode + decode. */
  forwardCalls: number | null;
}

/** Bits of each position after a context reset every `window` bytes (as after Equal-Info window starts). */
export interface PositionBits {
  model: string;
  text: string;
  bytes: number;
  window: number;
  bits: number[];
}

export interface LmCodingBenchReport {
  date: string;
  command: string;
  machine: { cpu: string; isa: string; threadsUsed: 1; loadAverage: number[] };
  texts: { name: string; description: string; bytes: number; documents: number; sha256: string }[];
  models: { name: string; dir: string; parameters: number; context: number; contextLimit: number; startByte: number | null; firstByte: string; weightsSha256: string; training: unknown; ortVersion: string }[];
  ngram: { identity: string; bytes: number; maxOrder: number };
  windowBits: number;
  tokenBits: number;
  rows: LmCodingRow[];
  positionBits: PositionBits[];
}

const POSITION_WINDOW = 8;
const POSITION_BYTES = 2048;

/** The held-out docs' first POSITION_BYTES bytes, cut into blocks of `window`, each coded from an empty context. */
async function lmPositionBits(nm: NeuralByteModel, docs: Uint8Array[], window: number): Promise<{ bits: number[]; bytes: number }> {
  const sums = new Array<number>(window).fill(0);
  const counts = new Array<number>(window).fill(0);
  let bytes = 0;
  for (const d of docs) {
    const text = d.subarray(0, Math.floor(POSITION_BYTES / docs.length));
    for (let start = 0; start + window <= text.length; start += window) {
      for (let i = 0; i < window; i++) {
        const row = await nm.probabilities([text.subarray(start, start + i)]);
        sums[i]! -= Math.log2(row[text[start + i]!]!);
        counts[i]!++;
        bytes++;
      }
    }
  }
  return { bits: sums.map((s, i) => s / counts[i]!), bytes };
}

function ngramPositionBits(model: ByteModel, docs: Uint8Array[], window: number): { bits: number[]; bytes: number } {
  const sums = new Array<number>(window).fill(0);
  const counts = new Array<number>(window).fill(0);
  let bytes = 0;
  for (const d of docs) {
    const text = d.subarray(0, Math.floor(POSITION_BYTES / docs.length));
    const n = text.length - (text.length % window);
    const r = model.evaluate(text.subarray(0, n), { window });
    bytes += n;
    // positionBits is the mean per position over this doc's n / window blocks.
    for (let i = 0; i < window; i++) {
      sums[i]! += r.positionBits[i]! * (n / window);
      counts[i]! += n / window;
    }
  }
  return { bits: sums.map((s, i) => s / counts[i]!), bytes };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function allSame(a: Uint8Array[], b: Uint8Array[]): boolean {
  return a.length === b.length && a.every((d, i) => same(d, b[i]!));
}

/** `slices` evenly spaced slices of total `bytes` (the whole text when it is shorter). */
export function sliceText(text: Uint8Array, bytes: number, slices: number): Uint8Array[] {
  if (bytes >= text.length) return [text];
  const len = Math.floor(bytes / slices);
  const out: Uint8Array[] = [];
  for (let s = 0; s < slices; s++) {
    const off = slices === 1 ? 0 : Math.floor((s * (text.length - len)) / (slices - 1));
    out.push(text.subarray(off, off + len));
  }
  return out;
}

function debianVersion(file: string): string | null {
  try {
    const pkg = execFileSync('dpkg-query', ['-S', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(':')[0]!.trim();
    const version = execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `Debian ${pkg} ${version}`;
  } catch {
    return null;
  }
}

/** Wall seconds and this process's CPU seconds (all threads: ORT's included) of fn. */
interface Seconds {
  wall: number;
  cpu: number;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, Seconds]> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await fn();
  const c = process.cpuUsage(c0);
  return [r, { wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 }];
}

/** Throughputs from a byte count and the encode / decode seconds. */
function speeds(bytes: number, enc: Seconds, dec: Seconds) {
  return {
    encodeBytesPerSec: bytes / enc.wall, decodeBytesPerSec: bytes / dec.wall,
    encodeBytesPerCpuSec: bytes / enc.cpu, decodeBytesPerCpuSec: bytes / dec.cpu,
  };
}

interface Text {
  name: string;
  docs: Uint8Array[];
  bytes: number;
}

async function lmRows(text: Text, name: string, nm: NeuralByteModel, windowBits: number, tokenBits: number): Promise<LmCodingRow[]> {
  const { docs, bytes } = text;
  const tok = new EqualInfoTokenizer({ model: nm.callback, windowBits, tokenBits, maxBytes: bytes + 1 });
  const calls0 = nm.stats.forwardCalls;
  nm.clear();
  const [ids, enc] = await timed(() => tok.encodeBatchAsync(docs));
  nm.clear();
  const [back, dec] = await timed(() => tok.decodeBatchAsync(ids));
  const tokens = ids.reduce((s, t) => s + t.length, 0);
  const windows = ids.reduce((s, t) => s + tok.windowsIn(t), 0);
  const eqCalls = nm.stats.forwardCalls - calls0;
  nm.clear();
  const [payloads, penc] = await timed(async () => {
    const out = [];
    for (const d of docs) out.push(await compressNeuralMeasured(nm, d));
    return out;
  });
  const [plainBack, pdec] = await timed(async () => {
    const out = [];
    for (let i = 0; i < docs.length; i++) out.push(await decompressNeural(nm, payloads[i]!.payload, docs[i]!.length));
    return out;
  });
  const payloadBytes = payloads.reduce((s, p) => s + p.payload.length, 0);
  const modelBits = payloads.reduce((s, p) => s + p.modelBits, 0);
  const base = { text: text.name, model: name, bytes, documents: docs.length };
  return [
    {
      ...base, coding: 'equal-info', tokens, bytesPerToken: bytes / tokens,
      paperBytesPerToken: windowBits === 16 && tokenBits === 16 ? PAPER_B16_T16_BYTES_PER_TOKEN : null,
      bitsPerByte: (windows * windowBits) / bytes, modelBitsPerByte: null,
      ...speeds(bytes, enc, dec), roundTripOk: allSame(back, docs), forwardCalls: eqCalls,
    },
    {
      ...base, coding: 'plain', tokens: null, bytesPerToken: null, paperBytesPerToken: null,
      bitsPerByte: (payloadBytes * 8) / bytes, modelBitsPerByte: modelBits / bytes,
      ...speeds(bytes, penc, pdec), roundTripOk: allSame(plainBack, docs),
      forwardCalls: nm.stats.forwardCalls - calls0 - eqCalls,
    },
  ];
}

async function ngramRows(text: Text, model: ByteModel, windowBits: number, tokenBits: number): Promise<LmCodingRow[]> {
  const { docs, bytes } = text;
  const tok = new EqualInfoTokenizer({ model, windowBits, tokenBits, maxBytes: bytes + 1 });
  const [ids, enc] = await timed(() => tok.encodeBatch(docs));
  const [back, dec] = await timed(() => tok.decodeBatch(ids));
  const tokens = ids.reduce((s, t) => s + t.length, 0);
  const windows = ids.reduce((s, t) => s + tok.windowsIn(t), 0);
  const [payloads, penc] = await timed(() => docs.map((d) => compressStatic(model, d)));
  const [plainBack, pdec] = await timed(() => payloads.map((p, i) => decompressStatic(model, p, docs[i]!.length)));
  const payloadBytes = payloads.reduce((s, p) => s + p.length, 0);
  const base = { text: text.name, model: `n-gram (built-in, order ${model.maxOrder})`, bytes, documents: docs.length, forwardCalls: null };
  return [
    {
      ...base, coding: 'equal-info', tokens, bytesPerToken: bytes / tokens,
      paperBytesPerToken: windowBits === 16 && tokenBits === 16 ? PAPER_B16_T16_BYTES_PER_TOKEN : null,
      bitsPerByte: (windows * windowBits) / bytes, modelBitsPerByte: null,
      ...speeds(bytes, enc, dec), roundTripOk: allSame(back, docs),
    },
    {
      ...base, coding: 'plain', tokens: null, bytesPerToken: null, paperBytesPerToken: null,
      bitsPerByte: (payloadBytes * 8) / bytes, modelBitsPerByte: null,
      ...speeds(bytes, penc, pdec), roundTripOk: allSame(plainBack, docs),
    },
  ];
}

export async function runLmCodingBench(opts: LmCodingBenchOptions = {}): Promise<LmCodingBenchReport> {
  const bytes = opts.bytes ?? 16384;
  const slices = opts.slices ?? 4;
  const models = opts.models ?? ['main', 'draft'];
  const windowBits = opts.windowBits ?? 16;
  const tokenBits = opts.tokenBits ?? 16;
  const textFile = opts.textFile ?? DEFAULT_OUTSIDE_TEXT;
  const log = opts.progress ?? !opts.json ? (s: string) => process.stderr.write(`${s}\n`) : () => undefined;
  if (!existsSync(textFile)) {
    throw new Error(`bench lm-coding: the outside text ${textFile} is missing (Debian's base-files installs it; pass --text <file>)`);
  }
  const corpus = await ensureCorpus();
  const heldOut = new Uint8Array(readFileSync(corpus.heldOutPath));
  const outside = new Uint8Array(readFileSync(textFile));
  const texts: Text[] = [
    { name: 'held-out', docs: sliceText(heldOut, bytes, slices), bytes: 0 },
    { name: basename(textFile), docs: sliceText(outside, bytes, slices), bytes: 0 },
  ];
  for (const t of texts) t.bytes = t.docs.reduce((s, d) => s + d.length, 0);
  const threads = backendInfo().threads;
  setThreads(1);
  try {
    const ngram = ByteModel.loadDefault();
    const rows: LmCodingRow[] = [];
    const positionBits: PositionBits[] = [];
    for (const t of texts) {
      log(`n-gram on ${t.name}`);
      rows.push(...(await ngramRows(t, ngram, windowBits, tokenBits)));
    }
    const ngramName = `n-gram (built-in, order ${ngram.maxOrder})`;
    const pb = ngramPositionBits(ngram, texts[0]!.docs, POSITION_WINDOW);
    positionBits.push({ model: ngramName, text: 'held-out', bytes: pb.bytes, window: POSITION_WINDOW, bits: pb.bits });
    const modelInfo: LmCodingBenchReport['models'] = [];
    for (const name of models) {
      const nm = await NeuralByteModel.load(name, {
        ...(opts.contextLimit !== undefined ? { contextLimit: opts.contextLimit } : {}),
        ...(opts.startByte !== undefined ? { startByte: opts.startByte } : {}),
      });
      modelInfo.push({
        name, dir: nm.lm.dir, parameters: nm.lm.parameters, context: nm.config.context, contextLimit: nm.contextLimit,
        startByte: nm.startByte, firstByte: nm.firstByte, weightsSha256: sha256(readFileSync(join(nm.lm.dir, 'weights.bin'))),
        training: nm.lm.card.training ?? null, ortVersion: nm.lm.ortVersion,
      });
      for (const t of texts) {
        log(`${name} on ${t.name} (${t.bytes} bytes)`);
        const r = await lmRows(t, `${name} (${(nm.lm.parameters / 1e6).toFixed(2)}M)`, nm, windowBits, tokenBits);
        for (const row of r) log(`  ${row.coding}: ${row.bitsPerByte.toFixed(3)} bits/byte, ${row.encodeBytesPerSec.toFixed(0)} / ${row.decodeBytesPerSec.toFixed(0)} B/s (${row.encodeBytesPerCpuSec.toFixed(0)} / ${row.decodeBytesPerCpuSec.toFixed(0)} B/cpu-s), round trip ${row.roundTripOk}`);
        rows.push(...r);
      }
      nm.clear();
      const lp = await lmPositionBits(nm, texts[0]!.docs, POSITION_WINDOW);
      positionBits.push({ model: name, text: 'held-out', bytes: lp.bytes, window: POSITION_WINDOW, bits: lp.bits });
      await nm.lm.release();
    }
    const report: LmCodingBenchReport = {
      date: new Date().toISOString(),
      command: `tokenpress bench lm-coding ${process.argv.slice(4).join(' ')}`.trim(),
      machine: { cpu: cpuModel(), isa: backendInfo().isa, threadsUsed: 1, loadAverage: os.loadavg() },
      texts: [
        { name: 'held-out', description: `${corpus.description}; held-out split, ${slices} evenly spaced slices`, bytes: texts[0]!.bytes, documents: texts[0]!.docs.length, sha256: sha256(heldOut) },
        { name: texts[1]!.name, description: `${textFile} (${debianVersion(textFile) ?? 'not from a Debian package'}), ${outside.length} bytes; ${texts[1]!.docs.length} evenly spaced slices`, bytes: texts[1]!.bytes, documents: texts[1]!.docs.length, sha256: sha256(outside) },
      ],
      models: modelInfo,
      ngram: { identity: ngram.identity, bytes: ngram.info.bytes, maxOrder: ngram.maxOrder },
      windowBits, tokenBits, rows,
      positionBits,
    };
    const file = resolve(opts.outFile ?? `bench-results/lm-coding-${report.date.slice(0, 10)}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(report, null, 2));
    if (opts.json) console.log(JSON.stringify(report, null, 2));
    return report;
  } finally {
    setThreads(threads);
  }
}

const f = (x: number | null, d = 3) => (x === null ? '-' : x.toFixed(d));

export function printLmCodingTable(r: LmCodingBenchReport): void {
  console.log(`\nCPU: ${r.machine.cpu} (${r.machine.isa}); one thread; load average at the end ${r.machine.loadAverage.map((x) => x.toFixed(1)).join(' ')}. Equal-Info b=${r.windowBits}, ${r.tokenBits}-bit tokens.`);
  for (const t of r.texts) console.log(`  ${t.name}: ${t.bytes} bytes in ${t.documents} documents. ${t.description}`);
  for (const m of r.models) console.log(`  ${m.name}: ${m.parameters} parameters, context ${m.context} (limit ${m.contextLimit}), start byte ${m.startByte ?? 'none'}, first byte ${m.startByte === null ? m.firstByte : '-'}, weights sha256 ${m.weightsSha256.slice(0, 16)}`);
  console.table(r.rows.map((x) => ({
    text: x.text, model: x.model, coding: x.coding,
    'bytes/token': f(x.bytesPerToken), 'paper bytes/token': f(x.paperBytesPerToken, 2),
    'bits/byte': f(x.bitsPerByte), 'model bits/byte': f(x.modelBitsPerByte),
    'encode B/s': x.encodeBytesPerSec.toFixed(0), 'decode B/s': x.decodeBytesPerSec.toFixed(0),
    'encode B/cpu-s': x.encodeBytesPerCpuSec.toFixed(0), 'decode B/cpu-s': x.decodeBytesPerCpuSec.toFixed(0),
    'round trip': x.roundTripOk,
  })));
  console.log(`\nBits per position after a context reset every ${r.positionBits[0]?.window ?? POSITION_WINDOW} bytes (held-out, ${r.positionBits[0]?.bytes ?? 0} bytes)`);
  console.table(r.positionBits.map((p) => Object.fromEntries([['model', p.model], ...p.bits.map((b, i) => [String(i), b.toFixed(2)])])));
}
