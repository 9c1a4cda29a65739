// `tokenpress eval prompt` (lib/prompt/eval/, lib/cli/eval-prompt.ts): the
// dataset builder on a hand-written GCIDE-format fixture, the answer metric on
// hand-made kept spans, the floors' budgets and ends, the evaluation loop with
// oracle methods, and the command end to end (--quick, --json).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { Command } from 'commander';
import { countTokens } from 'gpt-tokenizer/encoding/cl100k_base';
import { buildPromptEvalDataset, parseDictEntries } from '../../lib/prompt/eval/dataset.js';
import {
  findPromptEvalMethod, keepFirstLastWords, keepFirstWords, keepLastWords, keepRandomWords, PROMPT_EVAL_FLOORS, PROMPT_EVAL_METHODS, tokenBudget,
  type PromptEvalMethod,
} from '../../lib/prompt/eval/methods.js';
import { answerKept, formatPromptEvalTable, rateLabel, runPromptEval, type PromptEvalReport } from '../../lib/prompt/eval/run.js';
import { registerEvalPrompt } from '../../lib/cli/eval-prompt.js';
import type { Span } from '../../lib/prompt/types.js';
import { FIXTURE_ENTRIES, FIXTURE_TEXT } from './prompt-eval-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-evalprompt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** A context size that takes the whole fixture as one context (at least 3/4 full). */
const WHOLE = Buffer.byteLength(FIXTURE_TEXT);
const words = (s: string): string => s.split(/\s+/).filter((w) => w !== '').join(' ');

describe('dataset', () => {
  test('parseDictEntries finds each headword and its answer candidate; the last entry is dropped', () => {
    const entries = parseDictEntries(FIXTURE_TEXT);
    const expected = FIXTURE_ENTRIES.slice(0, -1);
    expect(entries.map((e) => e.headword)).toEqual(expected.map((e) => e.headword));
    for (let i = 0; i < expected.length; i++) {
      const e = entries[i]!;
      const want = expected[i]!.answer;
      expect(e.answer === undefined ? null : words(FIXTURE_TEXT.slice(e.answer.start, e.answer.end)), expected[i]!.headword).toBe(want);
      if (e.answer) {
        expect(e.answer.start).toBeGreaterThanOrEqual(e.start);
        expect(e.answer.end).toBeLessThanOrEqual(e.end);
        expect(FIXTURE_TEXT[e.answer.start]).toMatch(/\S/);
        expect(FIXTURE_TEXT[e.answer.end - 1]).toMatch(/\S/);
      }
    }
  });

  test('--answer-words clips; --min words drops', () => {
    const e3 = parseDictEntries(FIXTURE_TEXT, 0, FIXTURE_TEXT.length, 1, 3);
    const lantern = e3.find((e) => e.headword === 'Lanternist')!;
    expect(FIXTURE_TEXT.slice(lantern.answer!.start, lantern.answer!.end)).toBe('One who tends');
    expect(e3.find((e) => e.headword === 'Tarrier')!.answer).toBeDefined(); // one word, min 1
    const e9 = parseDictEntries(FIXTURE_TEXT, 0, FIXTURE_TEXT.length, 9, 10);
    expect(e9.find((e) => e.headword === 'Brumal')!.answer).toBeUndefined(); // 5 words < 9
  });

  test('answers lie in their context, are the start of their headword\'s definition, and are distinctive', () => {
    for (const contextBytes of [400, 700, WHOLE]) {
      const ds = buildPromptEvalDataset(FIXTURE_TEXT, { contextBytes, contexts: 50, questionsPerContext: 50, blockBytes: 0 });
      expect(ds.contexts.length).toBeGreaterThan(0);
      for (const c of ds.contexts) {
        expect(FIXTURE_TEXT.slice(c.offset, c.offset + c.text.length)).toBe(c.text);
        expect(c.bytes).toBe(Buffer.byteLength(c.text));
        expect(c.bytes).toBeLessThanOrEqual(contextBytes);
        for (const q of c.questions) {
          expect(c.text.slice(q.answer.start, q.answer.end)).toBe(q.answerText);
          const entry = FIXTURE_ENTRIES.find((e) => e.headword === q.headword)!;
          expect(words(q.answerText)).toBe(entry.answer);
          expect(q.question).toBe(`What does "${q.headword}" mean?`);
          // Inside the headword's own entry: after its header line, before the next entry.
          const at = c.text.indexOf(entry.lines[0]!);
          expect(at).toBeGreaterThanOrEqual(0);
          expect(q.answer.start).toBeGreaterThan(at + entry.lines[0]!.length);
          expect(q.answer.end).toBeLessThanOrEqual(at + entry.lines.join('\n').length);
          if (entry.repeated) expect(words(c.text).split(entry.answer!).length - 1).toBe(1);
        }
        const starts = c.questions.map((q) => q.answer.start);
        expect(starts).toEqual([...starts].sort((a, b) => a - b));
      }
      const all = ds.contexts.flatMap((c) => c.questions.map((q) => q.headword));
      expect(new Set(all).size).toBe(all.length); // contexts do not overlap
      expect(all).not.toContain('Endnote');
      expect(all).not.toContain('Gleaming');
      expect(all).not.toContain('Tarrier');
    }
    // A context holding both roots: neither is asked about; every other entry with an answer is.
    const seeds = Array.from({ length: 20 }, (_, seed) => buildPromptEvalDataset(FIXTURE_TEXT, { seed, contextBytes: WHOLE, questionsPerContext: 50, blockBytes: 0 }));
    const whole = seeds.find((d) => d.contexts[0]!.text.includes('Orrisroot') && d.contexts[0]!.text.includes('Violetroot'))!;
    expect(whole).toBeDefined();
    expect(whole.contexts).toHaveLength(1);
    const c = whole.contexts[0]!;
    const asked = c.questions.map((q) => q.headword);
    const inside = FIXTURE_ENTRIES.filter((e) => c.text.includes(e.lines.join('\n')));
    expect(inside.length).toBeGreaterThan(10);
    expect(asked).toEqual(inside.filter((e) => e.answer !== null && !e.repeated).map((e) => e.headword));
  });

  test('deterministic per seed; other seeds draw other contexts; blocks are never crossed', () => {
    const opts = { contextBytes: 500, contexts: 3, questionsPerContext: 1, blockBytes: 0 };
    const a = buildPromptEvalDataset(FIXTURE_TEXT, { ...opts, seed: 7 });
    expect(buildPromptEvalDataset(FIXTURE_TEXT, { ...opts, seed: 7 })).toEqual(a);
    const others = [1, 2, 3, 4, 5].map((seed) => JSON.stringify(buildPromptEvalDataset(FIXTURE_TEXT, { ...opts, seed }).contexts));
    expect(others.some((o) => o !== JSON.stringify(a.contexts))).toBe(true);
    // Two copies of the fixture as two 'blocks': no context crosses the edge.
    const edge = Buffer.byteLength(FIXTURE_TEXT);
    const ds = buildPromptEvalDataset(FIXTURE_TEXT + FIXTURE_TEXT, { contextBytes: WHOLE, contexts: 10, blockBytes: edge });
    expect(ds.contexts).toHaveLength(2);
    for (const c of ds.contexts) expect(c.offset + c.text.length <= FIXTURE_TEXT.length || c.offset >= FIXTURE_TEXT.length).toBe(true);
  });

  test('bad arguments', () => {
    expect(() => buildPromptEvalDataset(42 as unknown as string)).toThrow(/text: expected a string, received 42/);
    expect(() => buildPromptEvalDataset(FIXTURE_TEXT, { contextBytes: 10 })).toThrow(RangeError);
    expect(() => buildPromptEvalDataset(FIXTURE_TEXT, { contxts: 3 } as never)).toThrow(/unknown option "contxts" \(did you mean "contexts"\?\)/);
    expect(() => buildPromptEvalDataset(FIXTURE_TEXT, { minAnswerWords: 5, maxAnswerWords: 4 })).toThrow(/minAnswerWords/);
    expect(() => buildPromptEvalDataset('just some prose without entries\n')).toThrow(/text: expected GCIDE-format/);
  });
});

describe('answer metric', () => {
  const text = 'The dog barked at   the\n   moon all night.';
  const answer = { start: 4, end: 31 }; // "dog barked at   the\n   moon"
  const hold = (spans: [number, number][]) => answerKept(text, answer, spans.map(([start, end]) => ({ start, end })));

  test('whole, partly, not kept', () => {
    expect(text.slice(answer.start, answer.end)).toBe('dog barked at   the\n   moon');
    expect(hold([[0, text.length]])).toEqual({ whole: true, words: 5, wordsKept: 5 });
    // Words kept one by one, whitespace dropped: still whole.
    expect(hold([[4, 7], [8, 14], [15, 17], [20, 23], [27, 31]])).toEqual({ whole: true, words: 5, wordsKept: 5 });
    // "barked" cut to "barke": that word is lost.
    expect(hold([[4, 7], [8, 13], [15, 17], [20, 23], [27, 31]])).toEqual({ whole: false, words: 5, wordsKept: 4 });
    expect(hold([[0, 3], [32, 41]])).toEqual({ whole: false, words: 5, wordsKept: 0 });
    expect(hold([])).toEqual({ whole: false, words: 5, wordsKept: 0 });
    // Adjacent spans covering one word between them.
    expect(hold([[4, 6], [6, 7]])).toEqual({ whole: false, words: 5, wordsKept: 1 });
  });

  test('kept spans out of order, overlapping or out of range are refused', () => {
    expect(() => hold([[10, 12], [4, 6]])).toThrow(`kept[1]: expected a span in [12, ${text.length}]`);
    expect(() => hold([[4, 12], [10, 14]])).toThrow(RangeError);
    expect(() => hold([[0, 99]])).toThrow(RangeError);
    expect(() => answerKept(text, { start: 5, end: 99 }, [])).toThrow(`answer: expected a span inside [0, ${text.length}]`);
    expect(() => answerKept(text, answer, 'all' as never)).toThrow(TypeError);
  });
});

describe('floors', () => {
  const ctx = buildPromptEvalDataset(FIXTURE_TEXT, { contextBytes: WHOLE, blockBytes: 0 }).contexts[0]!.text;
  const original = countTokens(ctx);
  const opts = (rate: number, seed = 0) => ({ rate, countTokens, seed });

  test.each([1 / 2, 1 / 3, 1 / 5])('rate %s: within 2 percent of the target in cl100k tokens, budget never exceeded', (rate) => {
    expect(original).toBeGreaterThan(500);
    const budget = tokenBudget(rate, original);
    for (const f of [keepRandomWords, keepFirstWords, keepLastWords, keepFirstLastWords]) {
      const r = f(ctx, opts(rate));
      expect(r.originalTokens).toBe(original);
      expect(r.compressedTokens).toBe(countTokens(r.text));
      expect(r.compressedTokens).toBeLessThanOrEqual(budget);
      expect(Math.abs(r.rate - rate) / rate, f.name).toBeLessThanOrEqual(0.02);
      expect(r.text).toBe(r.kept.map((s) => ctx.slice(s.start, s.end)).join(' '));
    }
  });

  test('first keeps a prefix of the words, last a suffix, first+last both ends', () => {
    const first = keepFirstWords(ctx, opts(1 / 3));
    const cut = first.kept.at(-1)!.end;
    expect(first.text).toBe(words(ctx.slice(0, cut)));
    expect(first.kept[0]!.start).toBe(0);
    const last = keepLastWords(ctx, opts(1 / 3));
    const from = last.kept[0]!.start;
    expect(last.text).toBe(words(ctx.slice(from)));
    expect(last.kept.at(-1)!.end).toBe(ctx.length);
    const both = keepFirstLastWords(ctx, opts(1 / 3));
    expect(both.kept[0]!.start).toBe(0);
    expect(both.kept.at(-1)!.end).toBe(ctx.length);
    // Two runs: the words before some point a, and after some point b >= a.
    const gaps = both.kept.slice(1).map((s, i) => words(ctx.slice(both.kept[i]!.end, s.start)).length);
    expect(gaps.filter((g) => g > 0)).toHaveLength(1);
    const half = tokenBudget(1 / 3, original) / 2;
    const head = both.kept.slice(0, gaps.findIndex((g) => g > 0) + 1);
    expect(countTokens(head.map((s) => ctx.slice(s.start, s.end)).join(' '))).toBeLessThanOrEqual(half);
  });

  test('random: seeded, in text order, made of the words (the last one maybe cut)', () => {
    const a = keepRandomWords(ctx, opts(1 / 3, 11));
    expect(keepRandomWords(ctx, opts(1 / 3, 11))).toEqual(a);
    expect(keepRandomWords(ctx, opts(1 / 3, 12)).text).not.toBe(a.text);
    const wordSpans = [...ctx.matchAll(/\S+/g)].map((m) => ({ start: m.index!, end: m.index! + m[0].length }));
    let cut = 0;
    for (let i = 0; i < a.kept.length; i++) {
      const s = a.kept[i]!;
      if (i > 0) expect(s.start).toBeGreaterThan(a.kept[i - 1]!.end);
      const w = wordSpans.find((x) => x.start === s.start)!;
      expect(w).toBeDefined();
      if (w.end !== s.end) cut++;
    }
    expect(cut).toBeLessThanOrEqual(1);
    // Not a contiguous run: the words come from all over the context.
    expect(a.kept[0]!.start).toBeLessThan(ctx.length / 10);
    expect(a.kept.at(-1)!.end).toBeGreaterThan((ctx.length * 9) / 10);
  });

  test('awkward inputs and bad arguments', () => {
    expect(keepFirstWords('', opts(0.5))).toEqual({ text: '', kept: [], originalTokens: 0, compressedTokens: 0, rate: 1 });
    expect(keepLastWords('   \n  ', opts(0.5)).kept).toEqual([]);
    expect(keepFirstWords('one two three', opts(1)).text).toBe('one two three');
    expect(() => keepFirstWords(ctx, opts(0))).toThrow(/opts.rate: expected a rate in \(0, 1\], received 0/);
    expect(() => keepFirstWords(ctx, opts(1.5))).toThrow(RangeError);
    expect(() => keepRandomWords(ctx, { rate: 0.5, countTokens, seed: -1 })).toThrow(/opts.seed/);
    expect(() => keepFirstWords(ctx, { rate: 0.5, countTokens: 'cl100k' as never, seed: 0 })).toThrow(/opts.countTokens: expected a function/);
    expect(() => keepFirstWords(ctx, { rate: 0.5, countTokens: () => -1, seed: 0 })).toThrow(/non-negative integer/);
    expect(() => findPromptEvalMethod('radnom')).toThrow(/unknown method "radnom" \(did you mean "random"\?\)/);
  });
});

describe('evaluation loop', () => {
  const ds = buildPromptEvalDataset(FIXTURE_TEXT, { contextBytes: 700, contexts: 4, blockBytes: 0 });
  const oracle: PromptEvalMethod = {
    name: 'oracle', kind: 'other', description: 'keeps the asked answer only', usesQuestion: true,
    compress: async (text, o) => {
      const q = ds.contexts.find((c) => c.text === text)!.questions.find((x) => x.question === o.question)!;
      const kept: Span[] = [{ ...q.answer }];
      return { text: q.answerText, kept, originalTokens: countTokens(text), compressedTokens: countTokens(q.answerText), rate: 0 };
    },
  };
  const nothing: PromptEvalMethod = {
    name: 'nothing', kind: 'other', description: 'keeps nothing',
    compress: async (text) => ({ text: '', kept: [], originalTokens: countTokens(text), compressedTokens: 0, rate: 0 }),
  };

  test('question-aware methods get each question; metrics and deviations', async () => {
    const seen: string[] = [];
    const r = await runPromptEval(ds, {
      methods: [oracle, nothing], rates: [0.5], countTokens, onProgress: (_d, _t, label) => seen.push(label),
    });
    const nq = ds.contexts.reduce((n, c) => n + c.questions.length, 0);
    expect(r.rows).toHaveLength(2);
    const [o, n] = r.rows as [PromptEvalReport['rows'][0], PromptEvalReport['rows'][0]];
    expect(o).toMatchObject({ method: 'oracle', usesQuestion: true, questions: nq, answersKept: 1, answerWordsKept: 1 });
    expect(n).toMatchObject({ method: 'nothing', usesQuestion: false, questions: nq, answersKept: 0, answerWordsKept: 0, achievedRate: 0 });
    expect(n.meanDeviation).toBeCloseTo(-0.5, 12);
    expect(n.maxAbsDeviation).toBeCloseTo(0.5, 12);
    expect(n.maxRelDeviation).toBeCloseTo(1, 12);
    expect(seen).toHaveLength(2 * ds.contexts.length);
    expect(seen[0]).toBe('oracle @ 1/2');
    expect(r.questionAgnostic).toMatch(/usesQuestion/);
  });

  test('a method returning bad kept spans is refused, naming it', async () => {
    const bad: PromptEvalMethod = { ...nothing, name: 'bad', compress: async (text) => ({ text: 'x', kept: [{ start: 5, end: 2 }], originalTokens: 1, compressedTokens: 1, rate: 1 }) };
    await expect(runPromptEval(ds, { methods: [bad], countTokens })).rejects.toThrow(/method bad: result.kept\[0\]/);
    await expect(runPromptEval(ds, { methods: [], countTokens })).rejects.toThrow(/options.methods/);
    await expect(runPromptEval(ds, { methods: [nothing], countTokens, rates: [0] })).rejects.toThrow(/options.rates\[0\]/);
  });

  test('rate labels', () => {
    expect([1 / 2, 1 / 3, 1 / 5, 0.3, 1].map(rateLabel)).toEqual(['1/2', '1/3', '1/5', '0.3', '1']);
  });
});

async function cli(args: string[]): Promise<string> {
  const logs: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { logs.push(a.join(' ')); });
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (s) => logs.push(s) });
  registerEvalPrompt(program.command('eval').exitOverride());
  for (const c of program.commands) for (const sub of c.commands) sub.exitOverride().configureOutput({ writeErr: () => undefined });
  await program.parseAsync(['node', 'tokenpress', 'eval', 'prompt', '--no-progress', ...args]);
  return logs.join('\n');
}

describe('tokenpress eval prompt', () => {
  const file = join(dir, 'dict.txt');
  writeFileSync(file, FIXTURE_TEXT);

  test('--quick on the floors: markdown table and --json <file>', async () => {
    const json = join(dir, 'r.json');
    const out = await cli(['--text', file, '--quick', '--context-bytes', '700', '--json', json, '--methods', PROMPT_EVAL_FLOORS.map((m) => m.name).join(',')]);
    expect(out).toMatch(/^\| method \| rate \| answers kept whole \| answer words kept \| achieved rate \|/m);
    expect(out).toMatch(/^\| first\+last \| 1\/5 \| /m);
    const r = JSON.parse(readFileSync(json, 'utf8')) as PromptEvalReport;
    expect(formatPromptEvalTable(r)).toBe(out);
    expect(r.kind).toBe('prompt-eval');
    expect(r.tokenizer).toMatch(/cl100k/);
    expect(r.rates.map(rateLabel)).toEqual(['1/2', '1/3', '1/5']);
    expect(r.methods.map((m) => m.name)).toEqual(PROMPT_EVAL_FLOORS.map((m) => m.name));
    expect(PROMPT_EVAL_METHODS.slice(0, 4)).toEqual(PROMPT_EVAL_FLOORS);
    expect(r.dataset.contexts).toBeGreaterThan(1);
    expect(r.dataset.contexts).toBeLessThanOrEqual(6);
    expect(r.dataset.source).toBe(file);
    expect(r.machine?.cpu).toBeTruthy();
    expect(r.command).toMatch(/^tokenpress eval prompt --contexts \d+ --context-bytes 700 .*--methods random,first,last,first\+last/);
    expect(r.rows).toHaveLength(12);
    for (const row of r.rows) {
      expect(row.questions).toBe(r.dataset.questions);
      for (const k of ['answersKept', 'answerWordsKept'] as const) expect(row[k]).toBeGreaterThanOrEqual(0), expect(row[k]).toBeLessThanOrEqual(1);
      expect(row.answersKept).toBeLessThanOrEqual(row.answerWordsKept);
      expect(row.achievedRate).toBeLessThanOrEqual(row.rate);
      expect(row.maxRelDeviation).toBeLessThanOrEqual(0.05); // 700-byte contexts: ~1 token of ~40 at 1/5
      expect(row.mbPerSecond).toBeGreaterThan(0);
      expect(row.msPerContext).toBeGreaterThan(0);
    }
  });

  test('--json alone prints the report; --rates, --methods, --tokenizer; bad flags', async () => {
    const out = await cli(['--text', file, '--contexts', '2', '--context-bytes', '900', '--rates', '0.5,25%', '--methods', 'last', '--tokenizer', 'o200k', '--json']);
    const r = JSON.parse(out) as PromptEvalReport;
    expect(r.rows.map((x) => [x.method, x.rate])).toEqual([['last', 0.5], ['last', 0.25]]);
    expect(r.tokenizer).toMatch(/o200k/);
    await expect(cli(['--text', file, '--rates', '2'])).rejects.toThrow(/--rates: expected a comma-separated list of rates/);
    await expect(cli(['--text', file, '--methods', 'frist'])).rejects.toThrow(/--methods: unknown method "frist" \(did you mean "first"\?\)/);
    await expect(cli(['--text', file, '--tokenizer', 'p50k'])).rejects.toThrow(/--tokenizer: expected cl100k or o200k/);
    await expect(cli(['--text', file, '--contexts', '0'])).rejects.toThrow(/--contexts: expected an integer/);
  });
});

describe('the real methods in the eval registry', () => {
  // Each entry is a thin adapter; this checks the adapters on a small
  // dataset: valid kept spans (runPromptEval rejects bad ones), the budget
  // kept where the method promises it, and the memoised scores giving the
  // same result as a fresh scoring pass.
  const ds = buildPromptEvalDataset(FIXTURE_TEXT, { contexts: 2, contextBytes: 700, seed: 3, blockBytes: 0 });
  test('llmlingua2:self-info(+fill), specpc, bm25 run and stay in range', async () => {
    const names = ['llmlingua2:self-info', 'llmlingua2:self-info+fill', 'specpc', 'bm25'];
    const r = await runPromptEval(ds, { methods: names.map(findPromptEvalMethod), rates: [1 / 2, 1 / 3], countTokens });
    expect(r.rows).toHaveLength(names.length * 2);
    for (const row of r.rows) {
      expect(row.answersKept).toBeGreaterThanOrEqual(0);
      expect(row.answersKept).toBeLessThanOrEqual(row.answerWordsKept);
      expect(row.achievedRate).toBeGreaterThan(0);
      // fillBudget and bm25 never exceed floor(rate x tokens); the others may by a unit.
      if (row.method === 'llmlingua2:self-info+fill' || row.method === 'bm25') expect(row.achievedRate).toBeLessThanOrEqual(row.rate);
    }
    // Filling never keeps less than the official rule alone.
    for (const rate of [1 / 2, 1 / 3]) {
      const plain = r.rows.find((x) => x.method === 'llmlingua2:self-info' && x.rate === rate)!;
      const fill = r.rows.find((x) => x.method === 'llmlingua2:self-info+fill' && x.rate === rate)!;
      expect(fill.achievedRate).toBeGreaterThanOrEqual(plain.achievedRate);
    }
  });
});
