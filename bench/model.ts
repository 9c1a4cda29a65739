/**
 * Byte model benchmark: load time of a .tpm file (default: the embedded
 * models/default.tpm), masses() nanoseconds per call on the held-out split
 * of the Debian corpus (bench/corpus.ts), and the held-out bits per byte
 * with full context and with the context restarting every 8 and 16 bytes
 * (as after Equal-Info window resets). Prints a table; writes JSON to
 * bench-results/model-<date>.json. Medians of a few repetitions: the
 * machines are shared, so compare numbers from one run only.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ByteModel } from '../lib/coding/model.js';
import { ensureCorpus } from './corpus.js';

export interface ModelBenchReport {
  file: string;
  bytes: number;
  maxOrder: number;
  loadMs: number; // median of 5 ByteModel.fromBytes calls
  heldOutBytes: number;
  nsPerCall: { fullContext: number; window16: number; window8: number }; // median of 3
  bitsPerByte: { fullContext: number; window8: number; window16: number };
  window8PositionBits: number[];
  corpus: string;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function runModelBench(opts: { file?: string; outFile?: string; maxBytes?: number } = {}): Promise<ModelBenchReport> {
  const file = opts.file ?? ByteModel.defaultPath();
  const bytes = readFileSync(file);
  const loads: number[] = [];
  let model: ByteModel | undefined;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    model = ByteModel.fromBytes(bytes);
    loads.push(performance.now() - t0);
  }
  const m = model!;
  const corpus = await ensureCorpus();
  let heldOut: Uint8Array = readFileSync(corpus.heldOutPath);
  if (opts.maxBytes !== undefined) heldOut = heldOut.subarray(0, opts.maxBytes);
  const time = (window: number) => median([0, 1, 2].map(() => m.handle.benchMasses(heldOut, window)));
  const w8 = m.evaluate(heldOut, { window: 8 });
  const report: ModelBenchReport = {
    file,
    bytes: bytes.length,
    maxOrder: m.maxOrder,
    loadMs: median(loads),
    heldOutBytes: heldOut.length,
    nsPerCall: { fullContext: time(0), window16: time(16), window8: time(8) },
    bitsPerByte: {
      fullContext: m.evaluate(heldOut).bitsPerByte,
      window8: w8.bitsPerByte,
      window16: m.evaluate(heldOut, { window: 16 }).bitsPerByte,
    },
    window8PositionBits: [...w8.positionBits],
    corpus: corpus.description,
  };
  const out = opts.outFile ?? join('bench-results', `model-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  return report;
}

export function printModelTable(r: ModelBenchReport): void {
  console.log(`model ${r.file}: ${r.bytes} bytes, order ${r.maxOrder}; held-out ${r.heldOutBytes} bytes`);
  console.log('| measure | full context | context reset every 16 B | every 8 B |');
  console.log('|---|---|---|---|');
  console.log(`| masses() ns/call (median of 3) | ${r.nsPerCall.fullContext.toFixed(0)} | ${r.nsPerCall.window16.toFixed(0)} | ${r.nsPerCall.window8.toFixed(0)} |`);
  console.log(`| held-out bits/byte | ${r.bitsPerByte.fullContext.toFixed(4)} | ${r.bitsPerByte.window16.toFixed(4)} | ${r.bitsPerByte.window8.toFixed(4)} |`);
  console.log(`window positions 0..7 (bits): ${r.window8PositionBits.map((b) => b.toFixed(3)).join(' ')}`);
  console.log(`load (ByteModel.fromBytes, median of 5): ${r.loadMs.toFixed(1)} ms`);
}
