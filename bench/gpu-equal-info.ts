/**
 * Equal-Info decoding on the CUDA device vs the CPU (all threads), in the
 * same run (run by bench/gpu-check.sh; needs the CUDA build and a device for
 * the GPU columns, else it times the CPU and the host run of the device
 * algorithm only).
 *
 * Text: the held-out corpus split (bench/corpus.ts) when .corpus/ exists,
 * else generated English-like text; cut into 64 KiB documents and encoded
 * once with the built-in model for b = 16, 32, 64 (16-bit tokens). Then,
 * median of --iters calls each:
 *   gpu   equalInfoDecodeCuda: wall time of the whole call (token parsing,
 *         copies both ways, the kernel, the CPU re-decode of overflowing
 *         windows, joining) and the kernel time alone (CUDA events);
 *   cpu   equalInfoDecode on every thread of the machine;
 *   slots equalInfoDecodePortable (the device algorithm on the CPU threads).
 * Reported: ms, windows/s and decoded MB/s, the GPU/CPU speed ratio (CPU ms /
 * GPU ms, > 1: the GPU is faster), windows re-decoded on the CPU, and whether
 * every path returned exactly the original bytes.
 *
 * Usage: node dist/bench/gpu-equal-info.js [--bytes N] [--iters N] [--json out.json] [--md out.md]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EqualInfoTokenizer } from '../lib/coding/equal-info.js';
import { ByteModel } from '../lib/coding/model.js';
import { cudaAvailability } from '../lib/cuda.js';
import { native } from '../lib/native.js';

const DOC_BYTES = 64 * 1024;
const WINDOW_BITS = [16, 32, 64];
const TOKEN_BITS = 16;

interface Row {
  windowBits: number;
  tokenBits: number;
  bytes: number;
  docs: number;
  windows: number;
  gpuMs: number | null;
  gpuKernelMs: number | null;
  cpuMs: number;
  slotsMs: number;
  gpuWindowsPerS: number | null;
  cpuWindowsPerS: number;
  gpuMBs: number | null;
  cpuMBs: number;
  slotsMBs: number;
  gpuOverCpu: number | null; // cpu ms / gpu ms
  overflowWindows: number;
  exact: boolean;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function fmt(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

/** Deterministic English-like text (words, punctuation, line breaks) when the corpus is absent. */
export function generatedText(n: number): Uint8Array {
  const words = (
    'the of and to in a is that for it as was with be by on not he this are or his from at which but have an they ' +
    'you were her all she there would their we him been has when who will more no if out so said what up its about ' +
    'into than them can only other new some could time these two may then do first any my now such like our over ' +
    'man me even most made after also did many before must through back years where much your way well down should ' +
    'because each just those people how too little state good very make world still own see men work long get here ' +
    'between both life being under never day same another know while last might us great old year off come since ' +
    'against go came right used take three dictionary verb noun adjective meaning sense fortune cookie computer'
  ).split(' ');
  const out = new Uint8Array(n);
  const te = new TextEncoder();
  let s = 0x9e3779b9;
  const rnd = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s;
  };
  let at = 0, sentence = 0;
  while (at < n) {
    let w = words[rnd() % words.length]!;
    if (sentence === 0) w = w[0]!.toUpperCase() + w.slice(1);
    sentence++;
    const end = sentence > 4 && rnd() % 9 === 0;
    const piece = te.encode(w + (end ? (rnd() % 4 === 0 ? '.\n' : '. ') : rnd() % 11 === 0 ? ', ' : ' '));
    if (end) sentence = 0;
    out.set(piece.subarray(0, n - at), at);
    at += piece.length;
  }
  return out;
}

function benchText(bytes: number): { text: Uint8Array; source: string } {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const held = join(dir, '.corpus', 'heldout.txt');
    if (existsSync(join(dir, 'package.json')) && existsSync(held)) {
      const all = readFileSync(held);
      return { text: new Uint8Array(all.buffer, all.byteOffset, Math.min(bytes, all.length)), source: `held-out corpus (${held})` };
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return { text: generatedText(bytes), source: 'generated English-like text (no .corpus/)' };
}

function same(a: Uint8Array[], b: Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x.buffer, x.byteOffset, x.length).equals(b[i]!));
}

export function runGpuEqualInfoBench(): Row[] {
  const iters = Number(arg('--iters') ?? 5);
  const { text, source } = benchText(Number(arg('--bytes') ?? 4 * 2 ** 20));
  const docs: Uint8Array[] = [];
  for (let at = 0; at < text.length; at += DOC_BYTES) docs.push(text.subarray(at, Math.min(text.length, at + DOC_BYTES)));
  const model = ByteModel.loadDefault();
  const cuda = cudaAvailability();
  const threads = native().backendInfo().threads;
  const rows: Row[] = [];
  for (const b of WINDOW_BITS) {
    const tok = new EqualInfoTokenizer({ model, windowBits: b, tokenBits: TOKEN_BITS });
    const ids = tok.encodeBatch(docs);
    const windows = ids.reduce((n, l) => n + tok.windowsIn(l), 0);
    const params = { model: model.handle, windowBits: b, tokenBits: TOKEN_BITS, tokens: ids, maxBytes: tok.maxBytes };
    let exact = true;
    const time = <T>(fn: () => T, check: (r: T) => boolean): number[] => {
      exact = check(fn()) && exact; // warmup (the GPU one uploads the model)
      const ms: number[] = [];
      for (let i = 0; i < iters; i++) {
        const t0 = process.hrtime.bigint();
        fn();
        ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return ms;
    };
    const cpuMs = median(time(() => native().equalInfoDecode(params), (r) => same(r, docs)));
    let overflow = 0;
    const slotsMs = median(time(() => native().equalInfoDecodePortable(params), (r) => ((overflow = r.overflowWindows), same(r.docs, docs))));
    let gpuMs: number | null = null, gpuKernelMs: number | null = null;
    if (cuda.available) {
      const kernel: number[] = [];
      gpuMs = median(time(() => {
        const r = native().equalInfoDecodeCuda(params);
        kernel.push(r.kernelMs);
        return r;
      }, (r) => r.overflowWindows === overflow && same(r.docs, docs)));
      gpuKernelMs = median(kernel.slice(1));
    }
    const mbs = (ms: number) => text.length / (ms / 1e3) / 1e6;
    rows.push({
      windowBits: b, tokenBits: TOKEN_BITS, bytes: text.length, docs: docs.length, windows,
      gpuMs, gpuKernelMs, cpuMs, slotsMs,
      gpuWindowsPerS: gpuMs === null ? null : windows / (gpuMs / 1e3),
      cpuWindowsPerS: windows / (cpuMs / 1e3),
      gpuMBs: gpuMs === null ? null : mbs(gpuMs), cpuMBs: mbs(cpuMs), slotsMBs: mbs(slotsMs),
      gpuOverCpu: gpuMs === null ? null : cpuMs / gpuMs,
      overflowWindows: overflow, exact,
    });
  }
  const device = cuda.available ? cuda.devices : `none (${cuda.reason})`;
  const lines: string[] = [];
  lines.push(`Equal-Info decoding, built-in model, ${TOKEN_BITS}-bit tokens; text: ${source}, ${text.length} bytes in ${docs.length} documents`);
  lines.push(`device: ${device}; CPU: ${threads} threads; median of ${iters} calls after one warmup; GPU ms = the whole call, kernel ms = CUDA events`);
  lines.push('');
  lines.push('| b | windows | GPU ms | kernel ms | CPU ms | GPU/CPU speed | GPU windows/s | CPU windows/s | GPU MB/s | CPU MB/s | slots on CPU MB/s | re-decoded windows | bit-exact |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    lines.push(
      `| ${r.windowBits} | ${r.windows} | ${fmt(r.gpuMs, 1)} | ${fmt(r.gpuKernelMs, 1)} | ${fmt(r.cpuMs, 1)} | ${fmt(r.gpuOverCpu)} | ` +
        `${fmt(r.gpuWindowsPerS, 0)} | ${fmt(r.cpuWindowsPerS, 0)} | ${fmt(r.gpuMBs)} | ${fmt(r.cpuMBs)} | ${fmt(r.slotsMBs)} | ` +
        `${r.overflowWindows} | ${r.exact ? 'yes' : 'NO'} |`,
    );
  }
  const out = lines.join('\n');
  console.log(out);
  const json = arg('--json');
  if (json) writeFileSync(json, JSON.stringify({ device, threads, iters, source, rows }, null, 2));
  const md = arg('--md');
  if (md) writeFileSync(md, out + '\n');
  if (rows.some((r) => !r.exact)) process.exitCode = 1;
  return rows;
}

if (process.argv[1] && /gpu-equal-info\.js$/.test(process.argv[1])) runGpuEqualInfoBench();
