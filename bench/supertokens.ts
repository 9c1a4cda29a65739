/**
 * Supertokens benchmark (docs/tokenizer-supertokens.md): trains SuperBPE-style
 * supertokens over cl100k on the built-in corpus (bench/corpus.ts), then
 * measures bytes per token on the held-out split and on two English texts
 * from outside the corpus (/usr/share/common-licenses/GPL-3 and Apache-2.0),
 * against cl100k and o200k measured in the same run. Checks on samples that
 * @huggingface/tokenizers reading the written tokenizer.json encodes exactly
 * as our encoder does, and that decode inverts encode.
 *
 *   node dist/bench/supertokens.js [--train-bytes 36000000] [--tokens 10000,30000] [--base cl100k] [--out file.json]
 *
 * Training is sequential BPE, so the first n merges of the largest run are
 * what a run for n tokens learns: one training run serves every n.
 * Training and encoding times are single runs (training takes minutes).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ensureCorpus } from './corpus.js';
import { cpuModel } from './limits.js';
import { splitStage2, trainSupertokens, type Supertokenizer } from '../lib/tokenizer/supertokens.js';
import { loadVocab } from '../lib/tokenizer/vocab.js';
import type { VocabName } from '../lib/tokenizer/types.js';

export interface SupertokensBenchOptions {
  trainBytes?: number;
  tokens?: number[];
  base?: VocabName;
  outFile?: string;
  log?: (m: string) => void;
}

interface TextRow { name: string; bytes: number; tokens: Record<string, number>; bytesPerToken: Record<string, number>; encodeSeconds: Record<string, number> }

function readPrefix(path: string, maxBytes: number): string {
  let b: Uint8Array = readFileSync(path);
  if (b.length > maxBytes) {
    let end = maxBytes;
    while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
    b = b.subarray(0, end);
  }
  return new TextDecoder().decode(b);
}

function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const r = fn();
  return [r, (performance.now() - t0) / 1000];
}

/** Compares HF's ids with ours, piece by piece on mismatch: returns the number of texts checked and mismatching stage-2 pieces. */
function hfCheck(ours: Supertokenizer, hf: Tokenizer, text: string): { bytes: number; equal: boolean; badPieces: number } {
  const a = ours.encode(text);
  const b = hf.encode(text).ids;
  const equal = a.length === b.length && a.every((x, i) => x === b[i]);
  let bad = 0;
  if (!equal) for (const p of splitStage2(text)) if (JSON.stringify(ours.encode(p)) !== JSON.stringify(hf.encode(p).ids)) bad++;
  return { bytes: new TextEncoder().encode(text).length, equal, badPieces: bad };
}

export async function runSupertokensBench(o: SupertokensBenchOptions = {}) {
  const log = o.log ?? ((m: string) => console.error(m));
  const baseName = o.base ?? 'cl100k';
  const sizes = [...(o.tokens ?? [10000, 30000])].sort((x, y) => x - y);
  const corpus = await ensureCorpus({ log });
  const train = readPrefix(corpus.trainPath, o.trainBytes ?? 36_000_000);
  const base = await loadVocab(baseName);
  const o200k = await loadVocab('o200k');
  const cl100k = await loadVocab('cl100k');
  log(`training ${sizes.at(-1)} supertokens over ${baseName} on ${train.length} chars of ${corpus.trainPath}`);
  let lastLog = 0;
  const [{ tokenizer, stats }, trainSeconds] = timed(() =>
    trainSupertokens(base, train, {
      tokens: sizes.at(-1)!,
      onProgress: (done, total) => {
        if (done - lastLog >= 5000) { log(`  ${done}/${total}`); lastLog = done; }
      },
    }),
  );
  log(`trained ${stats.learned} in ${trainSeconds.toFixed(1)} s`);
  const supers = new Map<string, Supertokenizer>(sizes.map((n) => [`${baseName}+super${n}`, tokenizer.withTokens(Math.min(n, stats.learned))]));

  const texts: [string, string][] = [
    ['heldout', readFileSync(corpus.heldOutPath, 'utf8')],
    ['GPL-3', readFileSync('/usr/share/common-licenses/GPL-3', 'utf8')],
    ['Apache-2.0', readFileSync('/usr/share/common-licenses/Apache-2.0', 'utf8')],
    ['train (seen)', train.slice(0, 2_000_000)],
  ];
  const rows: TextRow[] = [];
  for (const [name, text] of texts) {
    const bytes = new TextEncoder().encode(text).length;
    const row: TextRow = { name, bytes, tokens: {}, bytesPerToken: {}, encodeSeconds: {} };
    const encoders: [string, (t: string) => number[]][] = [
      ['cl100k', (t) => cl100k.encode(t)],
      ['o200k', (t) => o200k.encode(t)],
      ...[...supers].map(([k, s]) => [k, (t: string) => s.encode(t)] as [string, (t: string) => number[]]),
    ];
    for (const [k, encode] of encoders) {
      const [ids, sec] = timed(() => encode(text));
      row.tokens[k] = ids.length;
      row.bytesPerToken[k] = bytes / ids.length;
      row.encodeSeconds[k] = sec;
      if (k.includes('+super') && name !== 'train (seen)') {
        const s = supers.get(k)!;
        if (s.decode(ids) !== text) throw new Error(`${k}: decode(encode(${name})) differs from the text`);
      }
    }
    rows.push(row);
    log(`${name}: ${JSON.stringify(row.bytesPerToken)}`);
  }
  // Hugging Face check on the largest tokenizer: the written JSON, read back.
  const largest = [...supers.values()].at(-1)!;
  const [hf, loadSeconds] = timed(() => new Tokenizer(JSON.parse(JSON.stringify(largest.toTokenizerJson())) as Record<string, unknown>, {}));
  const hfChecks = [
    { text: 'heldout[0:300k]', ...hfCheck(largest, hf, texts[0]![1].slice(0, 300_000)) },
    { text: 'GPL-3', ...hfCheck(largest, hf, texts[1]![1]) },
    { text: 'Apache-2.0', ...hfCheck(largest, hf, texts[2]![1]) },
  ];
  log(`HF check: ${JSON.stringify(hfChecks)}`);
  const newTokens = Array.from({ length: Math.min(40, stats.learned) }, (_, k) => new TextDecoder().decode(tokenizer.tokenBytes(tokenizer.baseSize + k)));
  const report = {
    bench: 'supertokens',
    date: new Date().toISOString(),
    cpu: cpuModel(),
    command: `node dist/bench/supertokens.js --train-bytes ${o.trainBytes ?? 36_000_000} --tokens ${sizes.join(',')} --base ${baseName}`,
    base: baseName,
    training: { textBytes: stats.textBytes, chunks: stats.chunks, uniqueChunks: stats.uniqueChunks, baseTokensStage2: stats.baseTokens, learned: stats.learned, seconds: trainSeconds, maxWords: 4, minCount: 2 },
    texts: rows,
    reduction: Object.fromEntries(rows.map((r) => [r.name, Object.fromEntries([...supers.keys()].map((k) => [k, { vsCl100k: 1 - r.tokens[k]! / r.tokens.cl100k!, vsO200k: 1 - r.tokens[k]! / r.tokens.o200k! }]))])),
    huggingFace: { package: '@huggingface/tokenizers 0.2.0', loadSeconds, checks: hfChecks },
    firstNewTokens: newTokens,
  };
  const file = resolve(o.outFile ?? `bench-results/supertokens-${report.date.slice(0, 10)}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(report, null, 2));
  log(`wrote ${file}`);
  return report;
}

export function printSupertokensTable(report: Awaited<ReturnType<typeof runSupertokensBench>>): void {
  const keys = Object.keys(report.texts[0]!.tokens);
  console.log(`| text | bytes | ${keys.map((k) => `${k} B/token`).join(' | ')} |`);
  console.log(`|---|---:|${keys.map(() => '---:').join('|')}|`);
  for (const r of report.texts) console.log(`| ${r.name} | ${r.bytes} | ${keys.map((k) => r.bytesPerToken[k]!.toFixed(3)).join(' | ')} |`);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[1] && /bench\/supertokens\.js$/.test(process.argv[1])) {
  const tokens = arg('--tokens')?.split(',').map(Number);
  const trainBytes = arg('--train-bytes');
  const report = await runSupertokensBench({
    ...(tokens ? { tokens } : {}),
    ...(trainBytes ? { trainBytes: Number(trainBytes) } : {}),
    ...(arg('--base') ? { base: arg('--base') as VocabName } : {}),
    ...(arg('--out') ? { outFile: arg('--out')! } : {}),
  });
  printSupertokensTable(report);
}
