/**
 * Dynamic tokenization (lib/tokenizer/dynamic.ts) on batches of held-out
 * text (not a test): sequence-length reduction per merge count and time.
 *
 * Documents: the built-in held-out text (.corpus/heldout.txt, GCIDE
 * dictionary entries and fortunes; ensureCorpus() builds it) cut at line
 * ends into documents of 2-4 KB (target size drawn per document from a fixed
 * seed), taken in order; batches of 32 and 64 consecutive documents. Each
 * batch is encoded with the vocabulary's own encoder, then merged with
 * boundary 'pretoken' (the official default) and 'word'.
 *
 * Reduction after k merges = 1 - tokens after k merges / base tokens, read
 * off one run of max(k) merges (the first k merges of a run are the run of
 * k merges). Times: medians over the batches of separate runs with
 * maxMerges = k, each including its pair-rule tests (the vocabulary's JS
 * pre-tokenizer, once per distinct pair; the time spent inside it is
 * reported apart). Peer: the official loop (recount
 * every pair of the batch for every merge, memoized pair rule) at the
 * smaller k, on the same batches, in the same run.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/dynamic-tokenization.js [--quick] [--vocabs cl100k,o200k,llama3]
 * Prints a table and writes bench-results/dynamic-tokenization.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { dynamicTokenize, loadVocab, type DynamicBoundary, type TokenVocab, type VocabName } from '../lib/index.js';
import { pairRule } from '../lib/tokenizer/dynamic-rules.js';
import { argValue, median } from './common.js';
import { ensureCorpus } from './corpus.js';
import { cpuModel } from './limits.js';

const MERGES = [10, 50, 100, 500, 1000];
const PEER_MERGES = [10, 50, 100];

/** Held-out text cut at line ends into documents of 2-4 KB (target per document from a seeded LCG). */
function documents(text: string, count: number): string[] {
  const lines = text.split('\n');
  const docs: string[] = [];
  let seed = 12345;
  let cur = '';
  let target = 0;
  const nextTarget = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return 2048 + (seed % 2048);
  };
  target = nextTarget();
  for (const line of lines) {
    cur += line + '\n';
    if (Buffer.byteLength(cur) >= target) {
      docs.push(cur.length > 4096 ? cur.slice(0, 4096) : cur);
      if (docs.length === count) break;
      cur = '';
      target = nextTarget();
    }
  }
  return docs;
}

/** The official loop: every merge recounts all valid pairs of the batch (insertion-ordered, first max wins), then rewrites each sequence. */
function officialLoop(batch: number[][], vocab: TokenVocab, boundary: DynamicBoundary, maxMerges: number): number {
  const rule = pairRule(vocab, boundary);
  const memo = new Map<number, boolean>();
  const valid = (a: number, b: number) => {
    const k = a * 4294967296 + b;
    let v = memo.get(k);
    if (v === undefined) memo.set(k, (v = rule.isValid(a, b)));
    return v;
  };
  let seqs = batch.map((s) => s.slice());
  for (let m = 0; m < maxMerges; m++) {
    const counts = new Map<number, number>();
    for (const s of seqs) {
      for (let i = 0; i + 1 < s.length; i++) {
        if (!valid(s[i]!, s[i + 1]!)) continue;
        const k = s[i]! * 4294967296 + s[i + 1]!;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    }
    let best = -1;
    let bestCount = 0;
    for (const [k, c] of counts) if (c > bestCount) [best, bestCount] = [k, c];
    if (bestCount === 0) break;
    const a = Math.floor(best / 4294967296);
    const b = best % 4294967296;
    const id = vocab.size + m;
    rule.addMerge(a, b);
    seqs = seqs.map((s) => {
      const out: number[] = [];
      for (let i = 0; i < s.length; ) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) (out.push(id), (i += 2));
        else (out.push(s[i]!), (i += 1));
      }
      return out;
    });
  }
  return seqs.reduce((n, s) => n + s.length, 0);
}

function timeMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

interface Row {
  vocab: string;
  boundary: DynamicBoundary;
  batchSize: number;
  batches: number;
  baseTokensPerSeq: number;
  /** merges -> median over batches of 1 - length / base length. */
  reduction: Record<number, number>;
  /** merges -> median over batches of average tokens per sequence. */
  tokensPerSeq: Record<number, number>;
  /** merges -> median ms of dynamicTokenize (native loop + pair rules). */
  ms: Record<number, number>;
  /** merges -> median ms of those spent in the vocabulary's pre-tokenizer (the 'pretoken' rule). */
  pretokenMs: Record<number, number>;
  /** merges -> median ms of the official recount-every-merge loop (TS). */
  peerMs: Record<number, number>;
  /** merges actually made when asked for max(MERGES) (median). */
  mergesMade: number;
}

export async function runDynamicTokenizationBench(quick: boolean, vocabNames: string[]): Promise<Record<string, unknown>> {
  const corpus = await ensureCorpus({ log: (m) => console.error(m) });
  const text = readFileSync(corpus.heldOutPath, 'utf8');
  const nBatches = quick ? 2 : 6;
  const sizes = [32, 64];
  const docs = documents(text, Math.max(...sizes) * nBatches);
  const rows: Row[] = [];
  const skipped: string[] = [];
  for (const name of vocabNames) {
    let vocab: TokenVocab;
    try {
      vocab = await loadVocab(name as VocabName);
    } catch (e) {
      skipped.push(`${name}: ${(e as Error).message}`);
      continue;
    }
    const encoded = docs.map((d) => vocab.encode(d));
    // The same vocabulary with its pre-tokenizer timed (the rule's cost, apart from the loop's).
    let inPretok = 0;
    const timed: TokenVocab = Object.assign(Object.create(vocab) as TokenVocab, {
      pretokenStarts: (b: Uint8Array) => {
        const t0 = process.hrtime.bigint();
        const r = vocab.pretokenStarts(b);
        inPretok += Number(process.hrtime.bigint() - t0) / 1e6;
        return r;
      },
    });
    for (const boundary of ['pretoken', 'word'] as const) {
      for (const size of sizes) {
        const batches = Array.from({ length: nBatches }, (_, i) => encoded.slice(i * size, (i + 1) * size));
        const red: Record<number, number[]> = {};
        const per: Record<number, number[]> = {};
        const ms: Record<number, number[]> = {};
        const pms: Record<number, number[]> = {};
        const peer: Record<number, number[]> = {};
        const made: number[] = [];
        for (const batch of batches) {
          const full = dynamicTokenize(batch, vocab, { boundary, maxMerges: Math.max(...MERGES) });
          made.push(full.merges.length);
          for (const k of MERGES) {
            const len = full.baseLength - full.merges.slice(0, k).reduce((n, m) => n + m.applied, 0);
            (red[k] ??= []).push(1 - len / full.baseLength);
            (per[k] ??= []).push(len / batch.length);
            inPretok = 0;
            (ms[k] ??= []).push(timeMs(() => dynamicTokenize(batch, timed, { boundary, maxMerges: k })));
            (pms[k] ??= []).push(inPretok);
          }
          (per[0] ??= []).push(full.baseLength / batch.length);
          for (const k of quick ? PEER_MERGES.slice(0, 2) : PEER_MERGES) {
            let len = 0;
            (peer[k] ??= []).push(timeMs(() => (len = officialLoop(batch, vocab, boundary, k))));
            const want = full.baseLength - full.merges.slice(0, k).reduce((n, m) => n + m.applied, 0);
            if (len !== want) throw new Error(`peer disagrees: ${name} ${boundary} k=${k}: ${len} vs ${want}`);
          }
        }
        const med = (r: Record<number, number[]>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)]));
        const row: Row = {
          vocab: name, boundary, batchSize: size, batches: nBatches, baseTokensPerSeq: median(per[0]!),
          reduction: med(red), tokensPerSeq: med(per), ms: med(ms), pretokenMs: med(pms), peerMs: med(peer), mergesMade: median(made),
        };
        rows.push(row);
        console.log(
          `${name.padEnd(7)} ${boundary.padEnd(8)} B=${String(size).padEnd(3)} base ${row.baseTokensPerSeq.toFixed(0).padStart(5)} tok/seq | ` +
            MERGES.map((k) => `${k}: -${(100 * row.reduction[k]!).toFixed(1)}% ${row.ms[k]!.toFixed(0)}ms (${row.pretokenMs[k]!.toFixed(0)} pretok)`).join(' | ') +
            ' | official loop ' + Object.entries(row.peerMs).map(([k, v]) => `${k}: ${v.toFixed(0)}ms`).join(' '),
        );
      }
    }
  }
  return {
    cpu: cpuModel(),
    node: process.version,
    command: `node dist/bench/dynamic-tokenization.js${quick ? ' --quick' : ''} --vocabs ${vocabNames.join(',')}`,
    documents: { source: 'heldout.txt', count: docs.length, bytes: docs.reduce((n, d) => n + Buffer.byteLength(d), 0) },
    merges: MERGES,
    rows,
    skipped,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const quick = process.argv.includes('--quick');
  const vocabs = argValue('vocabs', 'cl100k,o200k,llama3').split(',');
  const result = await runDynamicTokenizationBench(quick, vocabs);
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/dynamic-tokenization.json', JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench-results/dynamic-tokenization.json');
}
