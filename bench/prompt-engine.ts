/**
 * Throughput of the LLMLingua-2 engine (lib/prompt/llmlingua2.ts) given the
 * scores: a scorer that returns precomputed spans and scores (no model), so
 * the time is the engine's own: span and score checks, chunking, word
 * grouping, per-chunk percentiles, the kept text, and the target-token
 * counting. Measured with a trivial counter (ceil(length / 4): the engine
 * alone) and with cl100k (gpt-tokenizer: BPE counting of every distinct word
 * plus the whole input and output), with 510-token chunks and with one chunk.
 *
 *   npx tsc -p tsconfig.json && node dist/bench/prompt-engine.js [--mb 4] [--reps 7] [--out file.json]
 *
 * Prints MB/s (UTF-16 code units / 1e6 per second; the text is ASCII, so
 * bytes) as the median of the repetitions, and writes a JSON report.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compressPrompt, compressScored, scorePrompt } from '../lib/prompt/llmlingua2.js';
import { simpleTokenize } from '../lib/prompt/scorers.js';
import { cl100kCounter } from '../lib/prompt/tokenizers.js';
import type { CountTokens, Span, TokenScorer } from '../lib/prompt/types.js';
import { argValue, median } from './common.js';
import { cpuModel } from './limits.js';

/** Pseudo-English with a Zipf-like word distribution, numbers, punctuation and paragraphs (seeded). */
export function benchText(chars: number, seed = 1): string {
  let s = seed >>> 0 || 1;
  const rnd = () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  const vocab = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were ' +
    'compression token model attention budget retrieval percentile threshold classifier generation interpretation ' +
    'notwithstanding approximately characteristics Mediterranean photosynthesis bureaucracy quantization').split(' ');
  const parts: string[] = [];
  let n = 0;
  while (n < chars) {
    let w = rnd() < 0.03 ? String(Math.floor(rnd() * 100000)) : vocab[Math.floor(rnd() ** 1.5 * vocab.length)]!;
    if (rnd() < 0.06) w += ',';
    w += rnd() < 0.07 ? (rnd() < 0.2 ? '.\n\n' : '. ') : ' ';
    parts.push(w);
    n += w.length;
  }
  return parts.join('');
}

/** A scorer with precomputed tokens and scores: tokenize returns them, score hands back the next chunk's slice. */
function cachedScorer(text: string, maxTokens: number | undefined): TokenScorer & { reset(): void } {
  const spans = simpleTokenize(text);
  const scores = new Float64Array(spans.length);
  let s = 12345;
  for (let i = 0; i < scores.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    scores[i] = s / 4294967296;
  }
  let cursor = 0;
  return {
    name: 'cached',
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    reset: () => void (cursor = 0),
    tokenize: () => spans,
    score: (_t: string, tokens: Span[]) => {
      const out = scores.subarray(cursor, cursor + tokens.length);
      cursor += tokens.length;
      return out;
    },
  };
}

export interface PromptEngineRow {
  /** 'engine': compressScored on scores from scorePrompt; 'full': compressPrompt with the cached scorer (adds span rebasing and checks). */
  path: 'engine' | 'full';
  counter: string;
  maxTokens: number | null;
  rate: number;
  /** MB/s of wall time and of this process's CPU time (user + system), medians over the repetitions. */
  mbPerS: number;
  mbPerCpuS: number;
  msMedian: number;
  achievedRate: number;
}

/** Median wall and CPU milliseconds of fn over reps runs after one warm-up run (JIT, gpt-tokenizer's merge cache). */
async function timeIt(reps: number, fn: () => Promise<number> | number): Promise<{ ms: number; cpuMs: number; last: number }> {
  let last = await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    last = await fn();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { ms: median(wall), cpuMs: median(cpu), last };
}

export async function runPromptEngineBench(o: { mb: number; reps: number; outFile?: string }): Promise<{ rows: PromptEngineRow[]; cpu: string; chars: number }> {
  const text = benchText(Math.round(o.mb * 1e6));
  const quarter: CountTokens = (t) => (t.length + 3) >> 2;
  const rows: PromptEngineRow[] = [];
  const rate = 1 / 3;
  const mb = text.length / 1e6;
  for (const maxTokens of [510, undefined]) {
    const scorer = cachedScorer(text, maxTokens);
    const scored = await scorePrompt(text, { scorer });
    for (const [counterName, counter] of [['length/4', quarter], ['cl100k', cl100kCounter]] as const) {
      const e = await timeIt(o.reps, () => compressScored(scored, { rate, countTokens: counter }).rate);
      rows.push({ path: 'engine', counter: counterName, maxTokens: maxTokens ?? null, rate, mbPerS: mb / (e.ms / 1000), mbPerCpuS: mb / (e.cpuMs / 1000), msMedian: e.ms, achievedRate: e.last });
      const f = await timeIt(o.reps, async () => {
        scorer.reset();
        return (await compressPrompt(text, { scorer, rate, countTokens: counter })).rate;
      });
      rows.push({ path: 'full', counter: counterName, maxTokens: maxTokens ?? null, rate, mbPerS: mb / (f.ms / 1000), mbPerCpuS: mb / (f.cpuMs / 1000), msMedian: f.ms, achievedRate: f.last });
    }
  }
  const report = { cpu: cpuModel(), chars: text.length, reps: o.reps, rows };
  const out = o.outFile ?? join('bench-results', `prompt-engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`LLMLingua-2 engine, ${mb.toFixed(1)} MB of text, rate 1/3, 1 thread, ${report.cpu}; medians of ${o.reps} runs`);
  console.log('path    counter   chunks   MB/s (wall)  MB/s (CPU)  ms (wall)  achieved rate');
  for (const r of rows) {
    console.log(`${r.path.padEnd(7)} ${r.counter.padEnd(9)} ${String(r.maxTokens ?? 'one').padEnd(6)} ${r.mbPerS.toFixed(1).padStart(11)} ${r.mbPerCpuS.toFixed(1).padStart(11)} ${r.msMedian.toFixed(0).padStart(10)}  ${r.achievedRate.toFixed(4)}`);
  }
  console.log(`report: ${out}`);
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await runPromptEngineBench({ mb: Number(argValue('mb', '4')), reps: Number(argValue('reps', '7')), ...(process.argv.includes('--out') ? { outFile: argValue('out', '') } : {}) });
}
