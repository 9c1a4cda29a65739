/**
 * Speed of extractive selection (lib/prompt/extractive.ts) with BM25 on
 * held-out corpus text: the text cut into ~2 KB "documents" at blank lines,
 * each query a few words taken from the middle of the first document of its
 * group, `docsPerCall` documents per selectSentences call (a RAG top-k), topK 3.
 *
 * Rows, each over the same documents, median of `reps` passes:
 *   split           splitSentences only (Intl.Segmenter)
 *   terms           bm25Terms over the sentences (the tokenisation floor)
 *   bm25 (package)  bm25Scores over pre-split sentences (okapibm25 adapter)
 *   bm25 (peer)     a plain Map-count BM25 with the same formula: what the
 *                   package's RegExp-per-term scan costs against a direct loop
 *   select          selectSentences end to end, counting tokens by
 *                   chars/4 (no tokenizer) and with cl100k (the default)
 *
 * Usage (after `npx tsc -p tsconfig.json`):
 *   node dist/bench/prompt-rag.js [--corpus .corpus/heldout.txt] [--mb 1] [--reps 7]
 * Writes bench-results/prompt-rag.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { bm25Scores, bm25Terms, selectSentences, splitSentences } from '../lib/index.js';
import { argValue, median } from './common.js';
import { cpuModel } from './limits.js';

/** Cuts text into documents of about `size` UTF-16 units, ending at blank lines. */
function documentsOf(text: string, size: number): string[] {
  const docs: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n\n', start + size);
    end = end < 0 ? text.length : end + 2;
    docs.push(text.slice(start, end));
    start = end;
  }
  return docs;
}

/** Three to four words from the middle of a document (deterministic). */
function queryOf(doc: string, i: number): string {
  const ws = doc.match(/\p{L}{3,}/gu) ?? ['query'];
  const at = Math.floor(ws.length / 2);
  return ws.slice(at, at + 3 + (i % 2)).join(' ');
}

/** The peer: BM25 with the package's formula over Map term counts. */
function peerBm25(query: string, sentences: string[], k1 = 1.5, b = 0.75): Float64Array {
  const docs = sentences.map((s) => {
    const m = new Map<string, number>();
    const ts = bm25Terms(s);
    for (const t of ts) m.set(t, (m.get(t) ?? 0) + 1);
    return { m, len: ts.length };
  });
  const n = docs.length;
  const avgdl = docs.reduce((a, d) => a + d.len, 0) / n;
  const out = new Float64Array(n);
  for (const t of bm25Terms(query)) {
    let df = 0;
    for (const d of docs) if (d.m.has(t)) df++;
    if (df === 0) continue;
    const idf = Math.log((n - df + 0.5) / (df + 0.5) + 1);
    docs.forEach((d, i) => {
      const tf = d.m.get(t) ?? 0;
      out[i]! += (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * d.len) / avgdl));
    });
  }
  return out;
}

interface Row {
  what: string;
  docsPerCall: number;
  medianMs: number;
  sentencesPerS: number;
  mbPerS: number;
}

async function main(): Promise<void> {
  const corpusPath = argValue('corpus', join(process.cwd(), '.corpus', 'heldout.txt'));
  const mb = Number(argValue('mb', '1'));
  const reps = Number(argValue('reps', '7'));
  const text = readFileSync(corpusPath, 'utf8').slice(0, Math.round(mb * 2 ** 20));
  const docs = documentsOf(text, 2048);
  const bytes = docs.reduce((a, d) => a + Buffer.byteLength(d), 0);
  const sentencesPerDoc = docs.map((d) => splitSentences(d).map((s) => d.slice(s.start, s.end)));
  const nSentences = sentencesPerDoc.reduce((a, s) => a + s.length, 0);
  const quarter = (t: string) => Math.ceil(t.length / 4);

  const rows: Row[] = [];
  const time = async (what: string, docsPerCall: number, pass: () => unknown) => {
    await pass(); // warm-up (two passes: the JIT settles late on this code)
    await pass();
    const ms: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await pass();
      ms.push(performance.now() - t0);
    }
    const m = median(ms);
    rows.push({ what, docsPerCall, medianMs: m, sentencesPerS: nSentences / (m / 1e3), mbPerS: bytes / 2 ** 20 / (m / 1e3) });
  };
  const groups = (k: number) => Array.from({ length: Math.ceil(docs.length / k) }, (_, g) => g * k);

  await time('split', 1, () => docs.forEach((d) => splitSentences(d)));
  await time('terms', 1, () => sentencesPerDoc.forEach((ss) => ss.forEach((s) => bm25Terms(s))));
  for (const k of [1, 5, 20]) {
    const gs = groups(k);
    const sents = gs.map((g) => sentencesPerDoc.slice(g, g + k).flat());
    await time('bm25 (package)', k, () => gs.forEach((g, i) => bm25Scores(queryOf(docs[g]!, g), sents[i]!)));
    await time('bm25 (peer)', k, () => gs.forEach((g, i) => peerBm25(queryOf(docs[g]!, g), sents[i]!)));
    await time('select, chars/4', k, async () => {
      for (const g of gs) await selectSentences(queryOf(docs[g]!, g), docs.slice(g, g + k), { topK: 3, countTokens: quarter });
    });
    await time('select, cl100k', k, async () => {
      for (const g of gs) await selectSentences(queryOf(docs[g]!, g), docs.slice(g, g + k), { topK: 3, countTokens: cl100k });
    });
  }

  console.log(`prompt-rag: extractive selection with BM25, CPU ${cpuModel()}, node ${process.version}`);
  console.log(`${docs.length} documents (~2 KB), ${nSentences} sentences, ${(bytes / 2 ** 20).toFixed(2)} MB of ${corpusPath}, median of ${reps}`);
  console.log(`${'what'.padEnd(18)} ${'docs/call'.padStart(9)} ${'ms'.padStart(9)} ${'sentences/s'.padStart(12)} ${'MB/s'.padStart(8)}`);
  for (const r of rows) {
    console.log(`${r.what.padEnd(18)} ${String(r.docsPerCall).padStart(9)} ${r.medianMs.toFixed(1).padStart(9)} ${Math.round(r.sentencesPerS).toString().padStart(12)} ${r.mbPerS.toFixed(2).padStart(8)}`);
  }
  mkdirSync('bench-results', { recursive: true });
  const report = { cpu: cpuModel(), node: process.version, corpus: corpusPath, documents: docs.length, sentences: nSentences, bytes, reps, rows };
  writeFileSync('bench-results/prompt-rag.json', JSON.stringify(report, null, 2));
}

await main();
