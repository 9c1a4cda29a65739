/**
 * Drafter micro-benchmark (not a test): Token Recycling draft, update from
 * top-k ids and update from logits at a 128k vocabulary with the default
 * 80-node template (81 nodes with the root), and prompt lookup on a
 * 32k-token context. Medians of per-call times (process.hrtime).
 *
 * The logits update reads f32 [81, 131072] = 42.5 MB per call; it rotates
 * over copies totalling >= 1 GiB (--logits-mib to change) so it reads DRAM,
 * and is set beside the machine's STREAM-like read bandwidth measured in
 * the same run (bench/limits.ts): "% of read bw" = bytes / median / bw.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/spec-drafters.js [--quick]
 * Prints a table and writes bench-results/spec-drafters.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { backendInfo, PromptLookupDrafter, setThreads, TokenRecyclingDrafter } from '../lib/index.js';
import { median } from './common.js';
import { cpuModel, measureLimits } from './limits.js';

const VOCAB = 131072;

function timeCalls(n: number, fn: (i: number) => void): number {
  fn(0); // warm-up
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ms);
}

/** A full table: every row holds 8 distinct pseudo-random tokens (so a draft walks all 81 nodes). */
function fullTable(): Int32Array {
  const t = new Int32Array(VOCAB * 8);
  let s = 12345;
  for (let r = 0; r < VOCAB; r++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    for (let j = 0; j < 8; j++) t[r * 8 + j] = (s + j * 40503) % VOCAB;
  }
  return t;
}

export async function runSpecDraftersBench(quick: boolean): Promise<Record<string, unknown>> {
  const rows: { what: string; medianUs: number; note: string }[] = [];
  const tr = new TokenRecyclingDrafter({ vocab: VOCAB });
  tr.setTable(fullTable());
  const roots = Int32Array.from({ length: 4096 }, (_, i) => (i * 2654435761) % VOCAB);
  const ctx = new Int32Array(1);
  const draftMs = timeCalls(quick ? 2000 : 20000, (i) => {
    ctx[0] = roots[i % roots.length]!;
    tr.draft(ctx);
  });
  const tree = tr.draft(Int32Array.of(7));
  rows.push({ what: 'TR draft (81 nodes)', medianUs: draftMs * 1e3, note: `${tree.tokens.length} nodes, random roots` });

  const ids = Int32Array.from({ length: 81 * 8 }, (_, i) => (i * 7919) % VOCAB);
  const idsMs = timeCalls(quick ? 2000 : 20000, () => tr.updateTopK(tree, ids));
  rows.push({ what: 'TR update from top-8 ids [81, 8]', medianUs: idsMs * 1e3, note: '' });

  const rowBytes = 81 * VOCAB * 4;
  const mib = Number(process.argv.includes('--logits-mib') ? process.argv[process.argv.indexOf('--logits-mib') + 1] : quick ? 256 : 1024);
  const copies = Math.max(2, Math.ceil((mib * 2 ** 20) / rowBytes));
  const logits: Float32Array[] = [];
  for (let c = 0; c < copies; c++) {
    const l = new Float32Array(81 * VOCAB);
    let s = 777 + c;
    for (let i = 0; i < l.length; i++) {
      s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
      l[i] = s / 2147483648 - 1;
    }
    logits.push(l);
  }
  const threads = backendInfo().threads;
  const results: Record<string, number> = {};
  for (const t of [1, threads]) {
    setThreads(t);
    const ms = timeCalls(quick ? 10 : 40, (i) => tr.update(tree, logits[i % copies]!, VOCAB));
    results[`logits_${t}t`] = ms;
    rows.push({ what: `TR update from logits [81, 128k], ${t} thread(s)`, medianUs: ms * 1e3, note: `${(rowBytes / (ms / 1e3) / 1e9).toFixed(1)} GB/s` });
    if (t === threads) break;
  }
  setThreads(threads);

  // Prompt lookup, 32k-token context: random tokens (the 3-gram misses, the
  // 2-gram rarely matches: near-worst case) and a repetitive one (early match).
  const L = 32768;
  const random = Int32Array.from({ length: L }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 0) % 32000);
  const repetitive = Int32Array.from({ length: L }, (_, i) => ((i % 1000) * 31) % 32000);
  const pl = new PromptLookupDrafter();
  rows.push({ what: 'prompt lookup, 32k random context', medianUs: timeCalls(quick ? 50 : 300, () => pl.draft(random)) * 1e3, note: `${pl.draft(random).tokens.length} nodes` });
  rows.push({ what: 'prompt lookup, 32k repetitive context', medianUs: timeCalls(quick ? 50 : 300, () => pl.draft(repetitive)) * 1e3, note: `${pl.draft(repetitive).tokens.length} nodes` });

  const limits = measureLimits([1, threads].filter((t, i, a) => a.indexOf(t) === i), quick ? { reps: 2, bandwidthBytes: 256 * 2 ** 20 } : {});
  const lines = rows.map((r) => `${r.what.padEnd(48)} ${r.medianUs.toFixed(1).padStart(10)} us  ${r.note}`);
  for (const lim of limits) {
    const ms = results[`logits_${lim.threads}t`];
    if (ms === undefined) continue;
    const bw = lim.read.bytesPerS;
    lines.push(`read bandwidth ${lim.threads} thread(s): ${(bw / 1e9).toFixed(1)} GB/s; TR logits update at ${((rowBytes / (ms / 1e3) / bw) * 100).toFixed(0)}% of it`);
  }
  console.log(`spec drafters, CPU ${cpuModel()}, ${threads} pool threads, logits rotated over ${copies} copies (${((copies * rowBytes) / 2 ** 20).toFixed(0)} MiB)`);
  for (const l of lines) console.log(l);
  const report = { cpu: cpuModel(), threads, rows, limits };
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/spec-drafters.json', JSON.stringify(report, null, 2));
  return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await runSpecDraftersBench(process.argv.includes('--quick'));
}
