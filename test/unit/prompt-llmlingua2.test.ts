// compressPrompt (lib/prompt/llmlingua2.ts) against hand-made cases that pin
// each LLMLingua-2 rule (microsoft/LLMLingua compress_prompt_llmlingua2): the
// numpy percentile and its "+1", repetition by target tokens, strict ">" and
// the tie rule, forced tokens, forceReserveDigit, dropConsecutive, chunking,
// word grouping, 'mean' / 'first', targetTokens, the context-level filter;
// a small sort-based reference of the selection on random cases; hostile
// inputs; and the achieved rate in cl100k tokens on a long text.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { runCompressPrompt } from '../../lib/cli/compress-prompt.js';
import { compressPrompt, compressScored, scorePrompt, type CompressPromptOptions } from '../../lib/prompt/llmlingua2.js';
import { percentile } from '../../lib/prompt/percentile.js';
import { chunkBoundaries } from '../../lib/prompt/chunk.js';
import { findForceOccurrences, groupWords } from '../../lib/prompt/words.js';
import { randomScorer, simpleTokenize } from '../../lib/prompt/scorers.js';
import { cl100kCounter, o200kCounter } from '../../lib/prompt/tokenizers.js';
import type { Span, TokenScorer } from '../../lib/prompt/types.js';
import { mulberry32 } from '../reference/random.js';
import { refPercentile } from '../reference/percentile.js';

/** Whitespace-separated words: one target token each. */
const wordCount = (s: string): number => (s.match(/\S+/g) ?? []).length;

/** A scorer over simpleTokenize whose score is a function of the token text and its index in the chunk; records its calls. */
function tableScorer(scoreOf: (tok: string, i: number) => number, maxTokens?: number): TokenScorer & { calls: string[] } {
  const calls: string[] = [];
  return {
    name: 'table',
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    calls,
    tokenize: simpleTokenize,
    score(text: string, tokens: Span[]) {
      calls.push(text);
      return tokens.map((t, i) => scoreOf(text.slice(t.start, t.end), i));
    },
  };
}

/** Scores from a word -> score map (default 0). */
const mapScorer = (m: Record<string, number>, maxTokens?: number) => tableScorer((t) => m[t] ?? 0, maxTokens);

const run = (text: string | string[], o: Partial<CompressPromptOptions> & { scorer: TokenScorer }) =>
  compressPrompt(text, { countTokens: wordCount, ...o });


describe('percentile (numpy linear)', () => {
  test('matches values numpy 1.x/2.x printed for these arrays', () => {
    expect(percentile([10, 20], 67)).toBe(16.7);
    expect(percentile([3, 1, 2], 25)).toBe(1.5);
    expect(percentile([0.1, 0.9, 0.5, 0.3, 0.7], 51)).toBe(0.508);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([0.3, 0.1, 0.7, 0.2, 0.25, 0.9, 0.05], 67)).toBe(0.30800000000000016);
    expect(percentile([5.5, -2, 3.25, 8, 1e-3], 81)).toBe(6.1000000000000005);
    expect(percentile([0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.9, 0.8, 0.7, 0.6], 51)).toBe(0.2);
    expect(percentile([7], 0)).toBe(7);
    expect(percentile([4, 9, 1], 0)).toBe(1);
    expect(percentile([4, 9, 1], 100)).toBe(9);
  });
  test('equals a sort-based reference on random arrays with ties (quickselect)', () => {
    const rng = mulberry32(7);
    for (let k = 0; k < 200; k++) {
      const n = 1 + Math.floor(rng() * 60);
      const a = Array.from({ length: n }, () => Math.round(rng() * 8) / 4 - 1);
      const q = Math.floor(rng() * 101);
      expect(percentile(a, q)).toBe(refPercentile(a, q));
    }
  });
  test('refuses empty arrays, NaN and q outside [0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1, NaN], 50)).toThrow(/values\[1\]/);
    expect(() => percentile([1], 101)).toThrow(/q: expected a number in \[0, 100\]/);
    expect(() => percentile([1], -1)).toThrow(RangeError);
  });
});

describe('selection rules', () => {
  // 101 one-token words w0..w100 with scores 0.00 .. 1.00.
  const words = Array.from({ length: 101 }, (_, i) => `w${i}`);
  const text = words.join(' ');
  const byIndex = tableScorer((t) => Number(t.slice(1)) / 100);

  test('the "+1": rate 1/2 keeps 49 of 101 (threshold = percentile 51 = 0.51), not 50', async () => {
    const r = await run(text, { scorer: byIndex, rate: 0.5 });
    expect(r.keptWords).toBe(49);
    expect(r.text).toBe(words.slice(52).join(' '));
    expect(r.kept).toEqual([{ context: 0, start: text.indexOf('w52'), end: text.length }]);
  });

  test('the percentile is int(100 (1 - rate) + 1) in float64, as Python: rate 0.9 gives q = 10, keeping 90', async () => {
    const r = await run(text, { scorer: byIndex, rate: 0.9 });
    expect(r.keptWords).toBe(90);
    const r3 = await run(text, { scorer: byIndex, rate: 1 / 3 }); // q = 67: keep 0.68 .. 1.00
    expect(r3.keptWords).toBe(33);
  });

  test('each word counts once per target token: a 6-token word moves the threshold', async () => {
    const count = (s: string) => (s.startsWith('aaaaaa') ? 6 : wordCount(s));
    const scorer = mapScorer({ aaaaaa: 0.2, b: 0.9, c: 0.8, d: 0.7, e: 0.6 });
    const r = await compressPrompt('aaaaaa b c d e', { scorer, rate: 0.5, countTokens: count });
    // repeated [0.2 x6, .9, .8, .7, .6] -> percentile 51 = 0.2 -> keep b c d e (without repetition: 0.704 -> b c).
    expect(r.text).toBe('b c d e');
    const flat = await compressPrompt('aaaaaa b c d e', { scorer, rate: 0.5, countTokens: wordCount });
    expect(flat.text).toBe('b c');
  });

  test('keep is strictly above the threshold; ties at the threshold are dropped unless it equals the force value', async () => {
    const r = await run('a b c d', { scorer: tableScorer(() => 0.5), rate: 0.5 });
    expect(r.text).toBe('');
    expect(r.kept).toEqual([]);
    const ones = await run('a b c d', { scorer: tableScorer(() => 1), rate: 0.5 });
    expect(ones.text).toBe('a b c d'); // threshold 1.0 == F: the official tie rule keeps them
  });

  test('forced tokens are kept; with probabilities, a threshold made of forced words keeps only them (official 1.0 rule)', async () => {
    const scorer = mapScorer({ x: 0.2, y: 0.3, z: 0.4, ',': 0 });
    const r = await run('x , , y , , z , , ,', { scorer, rate: 0.5, forceTokens: [','] });
    // scores [.2, 1 x2, .3, 1 x2, .4, 1 x3] -> threshold 1.0 -> only the commas.
    expect(r.text).toBe(', , , , , , ,');
    const none = await run('x , , y , , z , , ,', { scorer, rate: 0.5 });
    expect(none.text).toBe('x y z');
  });

  test('forced words get max(1, largest score) with unbounded scores: always kept, others ranked as usual', async () => {
    const scorer = mapScorer({ alpha: 40, beta: 10, gamma: 30, delta: 20, '?': -5 });
    const r = await run('alpha beta ? gamma delta ?', { scorer, rate: 0.5, forceTokens: ['?'] });
    // scores [40, 10, F=40, 30, 20, F=40] -> percentile 51 of them = 35.5 -> keep alpha and both '?'
    expect(r.text).toBe('alpha ? ?');
  });

  test('a force string the scorer splits into several tokens is one forced word', async () => {
    const scorer = mapScorer({ keep: 0.9, drop: 0.1 });
    const r = await run('drop <eos> keep drop drop <eos>', { scorer, rate: 0.5, forceTokens: ['<eos>'] });
    expect(r.words).toBe(6);
    expect(r.text).toBe('<eos> keep <eos>');
  });

  test('a whitespace force token between scorer tokens ("\\n") is a word of its own, always kept', async () => {
    const scorer = mapScorer({ keep: 0.9, more: 0.8 });
    const r = await run('keep a b\nc d\nmore', { scorer, rate: 0.4, forceTokens: ['\n'] });
    expect(r.text).toBe('keep\n\nmore');
  });

  test('forceReserveDigit keeps every token with a digit (ASCII or other decimal digits)', async () => {
    const scorer = mapScorer({ alpha: 0.9 });
    const t = 'room 101 alpha is on floor ٣ now';
    expect((await run(t, { scorer, rate: 0.3 })).text).toBe('alpha');
    expect((await run(t, { scorer, rate: 0.3, forceReserveDigit: true })).text).toBe('101 alpha ٣');
  });

  test('dropConsecutive: a repeated force word with nothing kept between is dropped', async () => {
    const scorer = mapScorer({ a: 0.9, b: 0.1, c: 0.9 });
    const t = 'a , , b , c';
    expect((await run(t, { scorer, rate: 0.5, forceTokens: [','] })).text).toBe(', , ,');
    expect((await run(t, { scorer, rate: 0.5, forceTokens: [','], dropConsecutive: true })).text).toBe('a , c');
  });

  test("rate 1 gives the input verbatim, without calling the scorer (as the official reduce_rate <= 0 path)", async () => {
    const scorer = mapScorer({});
    const t = '  Hello,\n\nworld!  ';
    const r = await run(t, { scorer, rate: 1 });
    expect(r.text).toBe(t);
    expect(r.kept).toEqual([{ context: 0, start: 0, end: t.length }]);
    expect(scorer.calls).toEqual([]);
    expect(r.rate).toBe(1);
  });

  test('targetTokens sets rate = target / original tokens', async () => {
    const a = await run(text, { scorer: byIndex, targetTokens: 50 });
    expect(a.tokenRate).toBeCloseTo(50 / 101, 15);
    const b = await run(text, { scorer: byIndex, rate: 50 / 101 });
    expect(a.text).toBe(b.text);
    const all = await run(text, { scorer: byIndex, targetTokens: 1000 });
    expect(all.text).toBe(text);
  });

  test('empty input and an input with no tokens', async () => {
    for (const t of ['', '   \n ']) {
      const r = await run(t, { scorer: mapScorer({}), rate: 0.5 });
      expect(r.text).toBe('');
      expect(r.kept).toEqual([]);
      expect(r.words).toBe(0);
      expect(r.rate).toBe(1);
    }
  });

  test('kept text: the input between adjacent kept words, one space where words were dropped', async () => {
    const scorer = mapScorer({ Keep: 0.9, this: 0.9, and: 0.8, that: 0.9 });
    const r = await run('Keep\tthis, not this-one and\n\nthat.', { scorer, rate: 0.6 });
    expect(r.text).toBe('Keep\tthis this and\n\nthat');
    expect(r.kept.map((s) => 'Keep\tthis, not this-one and\n\nthat.'.slice(s.start, s.end))).toEqual(['Keep\tthis', 'this', 'and\n\nthat']);
  });
});

describe('a sort-based reference of the per-chunk selection', () => {
  test('random scores, random token counts, several chunks: same kept words', async () => {
    const rng = mulberry32(11);
    for (let k = 0; k < 30; k++) {
      const n = 5 + Math.floor(rng() * 80);
      const ws = Array.from({ length: n }, (_, i) => `t${i}`);
      const sc = ws.map(() => Math.round(rng() * 20) / 20);
      const cost = ws.map(() => 1 + Math.floor(rng() * 3));
      const maxTokens = 3 + Math.floor(rng() * 30);
      const rate = [0.2, 1 / 3, 0.5, 0.7][k % 4]!;
      const scorer = tableScorer((t) => sc[Number(t.slice(1))]!, maxTokens);
      const count = (s: string) => (/^t\d+$/.test(s) ? cost[Number(s.slice(1))]! : wordCount(s));
      const r = await compressPrompt(ws.join(' '), { scorer, rate, countTokens: count });
      // Reference: no chunk ends in the text, so chunks are consecutive runs of maxTokens words.
      const expected: string[] = [];
      for (let c0 = 0; c0 < n; c0 += maxTokens) {
        const idx = ws.map((_, i) => i).slice(c0, c0 + maxTokens);
        const rep = idx.flatMap((i) => Array<number>(cost[i]!).fill(sc[i]!));
        const thr = refPercentile(rep, Math.trunc(100 * (1 - rate) + 1));
        for (const i of idx) if (sc[i]! > thr || (thr === 1 && sc[i] === 1)) expected.push(ws[i]!);
      }
      expect(r.text).toBe(expected.join(' '));
      expect(r.chunks).toBe(Math.ceil(n / maxTokens));
    }
  });
});

describe('chunking', () => {
  test('windows of maxTokens cut back to the last "." inside them', async () => {
    const scorer = mapScorer({}, 4);
    await run('a b. c d e f. g', { scorer, rate: 0.5 });
    expect(scorer.calls).toEqual(['a b.', 'c d e f', '. g']);
  });
  test('a newline between tokens is a chunk end; other chunkEndTokens can be given', async () => {
    const scorer = mapScorer({}, 4);
    await run('a b\nc d e f g', { scorer, rate: 0.5 });
    expect(scorer.calls).toEqual(['a b', 'c d e f', 'g']);
    const s2 = mapScorer({}, 4);
    await run('a b; c d; e f', { scorer: s2, rate: 0.5, chunkEndTokens: [';'] });
    expect(s2.calls).toEqual(['a b;', 'c d;', 'e f']);
  });
  test('chunkBoundaries: never an empty chunk, the whole input when it fits', () => {
    const t = '. . . . . .';
    const spans = simpleTokenize(t);
    const st = Int32Array.from(spans, (s) => s.start);
    const en = Int32Array.from(spans, (s) => s.end);
    expect(Array.from(chunkBoundaries(t, st, en, 6, 3, ['.']))).toEqual([0, 3, 6]);
    expect(Array.from(chunkBoundaries(t, st, en, 6, 6, ['.']))).toEqual([0, 6]);
    expect(Array.from(chunkBoundaries(t, st, en, 6, 1, ['.']))).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
  test('a chunk starts a new word and has its own threshold', async () => {
    // Chunk 1 scores 0.9 .. 0.6, chunk 2 scores 0.4 .. 0.1: per-chunk thresholds keep half of each.
    const scorer = mapScorer({ a: 0.9, b: 0.8, c: 0.7, d: 0.6, e: 0.4, f: 0.3, g: 0.2, h: 0.1 }, 4);
    const r = await run('a b c d e f g h', { scorer, rate: 0.5 });
    expect(r.text).toBe('a b e f');
    expect(r.chunks).toBe(2);
  });
});

describe('word grouping', () => {
  function group(text: string, scores: number[], mode: 'mean' | 'first', force: string[] = []) {
    const spans = simpleTokenize(text);
    const st = Int32Array.from(spans, (s) => s.start);
    const en = Int32Array.from(spans, (s) => s.end);
    const occ = findForceOccurrences(text, force);
    const t = groupWords(text, st, en, Float64Array.from(scores), spans.length, Int32Array.of(0, spans.length), occ.start, occ.end, false, mode);
    return Array.from({ length: t.n }, (_, w) => ({ word: text.slice(t.start[w]!, t.end[w]!), score: t.score[w]!, raw: t.raw[w]! }));
  }
  test("a word starts after whitespace or at punctuation; following pieces join it (don ' t -> don, 't)", () => {
    expect(group("don't stop", [0.2, 0.4, 0.9, 0.5], 'mean')).toEqual([
      { word: 'don', score: 0.2, raw: 0.2 },
      { word: "'t", score: 0.65, raw: 0.65 },
      { word: 'stop', score: 0.5, raw: 0.5 },
    ]);
    expect(group("don't stop", [0.2, 0.4, 0.9, 0.5], 'first').map((w) => w.score)).toEqual([0.2, 0.4, 0.5]);
  });
  test('a forced word ends at its occurrence; raw scores ignore forcing', () => {
    expect(group('a,b c', [0.1, 0.2, 0.3, 0.4], 'mean', [','])).toEqual([
      { word: 'a', score: 0.1, raw: 0.1 },
      { word: ',', score: 1, raw: 0.2 },
      { word: 'b', score: 0.3, raw: 0.3 },
      { word: 'c', score: 0.4, raw: 0.4 },
    ]);
  });
  test("'mean' and 'first' change the kept words", async () => {
    // "x'y": x .1, ' .9, y .1 -> words x (.1), 'y (mean .5, first .9); z .6
    const scorer = tableScorer((t) => ({ x: 0.1, "'": 0.9, y: 0.1, z: 0.6 })[t] ?? 0);
    expect((await run("x'y z", { scorer, rate: 0.5 })).text).toBe('z');
    expect((await run("x'y z", { scorer, rate: 0.5, wordProb: 'first' })).text).toBe("'y");
  });
});

describe('context-level filter', () => {
  const contexts = ['a b c', 'd e f', 'g h i', 'j k l'];
  const m: Record<string, number> = {};
  'abcdefghijkl'.split('').forEach((ch, i) => (m[ch] = 0.1 * (1 + Math.floor(i / 3))));
  test('keeps contexts whose mean word score >= percentile(100 (1 - contextRate)); joins them with a blank line', async () => {
    const r = await run(contexts, { scorer: mapScorer(m), rate: 1, useContextLevelFilter: true, contextRate: 0.5 });
    expect(r.keptContexts).toEqual([2, 3]);
    expect(r.text).toBe('g h i\n\nj k l');
    expect(r.kept).toEqual([{ context: 2, start: 0, end: 5 }, { context: 3, start: 0, end: 5 }]);
    const f = await run(contexts, { scorer: mapScorer(m), rate: 1, useContextLevelFilter: true, contextRate: 0.5, forceContexts: [0] });
    expect(f.keptContexts).toEqual([0, 2, 3]);
  });
  test('default context rate (rate + 1) / 2: percentile 25 = 0.175 drops the first context', async () => {
    const r = await run(contexts, { scorer: mapScorer(m), rate: 0.5, useContextLevelFilter: true });
    expect(r.keptContexts).toEqual([1, 2, 3]);
    expect(r.texts).toHaveLength(3);
  });
  test('off by default, and off with a single context', async () => {
    const r = await run(contexts, { scorer: mapScorer(m), rate: 1 });
    expect(r.keptContexts).toEqual([0, 1, 2, 3]);
    expect(r.text).toBe(contexts.join('\n\n'));
    const one = await run(['a b c'], { scorer: mapScorer(m), rate: 1, useContextLevelFilter: true, contextRate: 0.1 });
    expect(one.text).toBe('a b c');
  });
});

describe('hostile inputs', () => {
  const good = mapScorer({});
  test('bad options are refused before any scorer call', async () => {
    const cases: [unknown, unknown, RegExp][] = [
      [42, { scorer: good }, /text: expected a string or an array/],
      [[], { scorer: good }, /text: expected a string or a non-empty array/],
      [['a', 3], { scorer: good }, /text\[1\]/],
      ['a', undefined, /options/],
      ['a', { scorer: {} }, /options.scorer/],
      ['a', { scorer: good, rate: 0 }, /options.rate: expected a number in \(0, 1\]/],
      ['a', { scorer: good, rate: 1.5 }, /options.rate/],
      ['a', { scorer: good, rate: NaN }, /options.rate/],
      ['a', { scorer: good, rate: 0.5, targetTokens: 3 }, /rate or targetTokens, not both/],
      ['a', { scorer: good, targetTokens: 0 }, /options.targetTokens/],
      ['a', { scorer: good, targetTokens: 2.5 }, /options.targetTokens/],
      ['a', { scorer: good, forceTokens: Array(101).fill('x') }, /options.forceTokens.length: expected at most 100/],
      ['a', { scorer: good, forceTokens: [''] }, /options.forceTokens\[0\]/],
      ['a', { scorer: good, wordProb: 'max' }, /options.wordProb/],
      ['a', { scorer: good, ratio: 0.5 }, /unknown option "ratio" \(did you mean "rate"\?\)/],
      ['a', { scorer: { ...good, maxTokens: 0 } }, /options.scorer.maxTokens/],
      [['a', 'b'], { scorer: good, forceContexts: [2] }, /options.forceContexts\[0\]/],
    ];
    for (const [t, o, re] of cases) {
      await expect(compressPrompt(t as string, o as CompressPromptOptions)).rejects.toThrow(re);
    }
    expect(good.calls).toEqual([]);
  });
  test('a scorer that breaks the contract: NaN, wrong length, spans out of order or outside the text', async () => {
    const bad = (score: TokenScorer['score'], tokenize: TokenScorer['tokenize'] = simpleTokenize): TokenScorer => ({ name: 'bad', tokenize, score });
    await expect(run('a b', { scorer: bad(() => [0.1, NaN]) })).rejects.toThrow(/scorer "bad" score\(\) result\[1\]: expected a finite number, received NaN/);
    await expect(run('a b', { scorer: bad(() => [0.1]) })).rejects.toThrow(/result.length: expected 2/);
    await expect(run('a b', { scorer: bad(() => [0.1, '1' as unknown as number]) })).rejects.toThrow(TypeError);
    await expect(run('a b', { scorer: bad(() => [1, 1], () => [{ start: 2, end: 3 }, { start: 0, end: 1 }]) })).rejects.toThrow(/tokenize\(\) result\[1\].start/);
    await expect(run('a b', { scorer: bad(() => [1], () => [{ start: 2, end: 9 }]) })).rejects.toThrow(/result\[0\].end/);
    await expect(run('a b', { scorer: bad(() => [1], () => [{ start: 1, end: 1 }]) })).rejects.toThrow(/non-empty span/);
    await expect(run('a b', { scorer: bad(() => [1], () => 'ab' as unknown as Span[]) })).rejects.toThrow(/tokenize\(\) result/);
  });
  test('a bad countTokens and an aborted signal', async () => {
    await expect(compressPrompt('a b', { scorer: good, countTokens: () => -1 })).rejects.toThrow(/countTokens\(\) result/);
    await expect(compressPrompt('a b', { scorer: good, countTokens: () => NaN })).rejects.toThrow(RangeError);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(run('a b', { scorer: good, signal: ac.signal })).rejects.toThrow('stop');
  });
  test('special-token text and lone surrogates are ordinary text', async () => {
    const r = await compressPrompt('say <|endoftext|> now \ud800 ok', { scorer: randomScorer({ seed: 3 }), rate: 0.5 });
    expect(r.originalTokens).toBeGreaterThan(5);
    expect(r.compressedTokens).toBeLessThan(r.originalTokens);
  });
});

/** Pseudo-English: words of varied length, punctuation, numbers, sentences and paragraphs. */
function longText(nWords: number, seed: number): string {
  const rng = mulberry32(seed);
  const vocab = ('the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were ' +
    'compression token model attention budget retrieval percentile threshold classifier generation interpretation ' +
    'notwithstanding approximately characteristics Mediterranean photosynthesis bureaucracy quantization').split(' ');
  const out: string[] = [];
  for (let i = 0; i < nWords; i++) {
    let w = vocab[Math.floor(rng() ** 1.5 * vocab.length)]!;
    if (rng() < 0.03) w = String(Math.floor(rng() * 100000));
    if (rng() < 0.06) w += ',';
    out.push(w);
    if (rng() < 0.07) out[out.length - 1] += rng() < 0.2 ? '.\n\n' : '. ';
    else out[out.length - 1] += ' ';
  }
  return out.join('');
}

describe('scorePrompt + compressScored', () => {
  test('one scoring, several rates: the same results as compressPrompt, no further scorer calls', async () => {
    const text = longText(600, 8);
    const scorer = tableScorer((t, i) => ((t.length * 7 + i * 13) % 17) / 17, 50);
    const scored = await scorePrompt(text, { scorer });
    const calls = scorer.calls.length;
    expect(scored.chunks).toBe(calls);
    for (const rate of [0.5, 1 / 3, 0.2]) {
      const a = compressScored(scored, { rate, forceTokens: ['\n'], countTokens: wordCount });
      const b = await compressPrompt(text, { scorer, rate, forceTokens: ['\n'], countTokens: wordCount });
      expect(a).toEqual(b);
    }
    expect(() => compressScored({ contexts: ['a'], scorer: 'x', chunks: 0 })).toThrow(/scored: expected a ScoredPrompt/);
    expect(() => compressScored(scored, { scorer } as never)).toThrow(/unknown option "scorer"/);
    expect(() => compressScored(scored, { rate: 2 })).toThrow(/options.rate/);
    await expect(scorePrompt(text, { scorer, rate: 0.5 } as never)).rejects.toThrow(/unknown option "rate"/);
  });
});

describe('achieved rate in cl100k tokens', () => {
  test('random scores on a long text: within 2% of the target at rates 1/2, 1/3, 1/5', async () => {
    const text = longText(12000, 5);
    for (const rate of [1 / 2, 1 / 3, 1 / 5]) {
      const r = await compressPrompt(text, { scorer: randomScorer({ seed: 9 }), rate });
      expect(r.originalTokens).toBe(cl100kCounter(text));
      expect(r.compressedTokens).toBe(cl100kCounter(r.text));
      expect(Math.abs(r.rate - rate)).toBeLessThanOrEqual(0.02);
      expect(r.chunks).toBeGreaterThan(10);
    }
  });
});

describe('tokenpress compress-prompt (the built CLI, dist/lib/cli/main.js)', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  const main = join(root, 'dist/lib/cli/main.js');
  const dir = mkdtempSync(join(tmpdir(), 'tokenpress-prompt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const cli = (args: string[], input?: string) => {
    if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build:ts`);
    const r = spawnSync(process.execPath, [main, 'compress-prompt', ...args], { encoding: 'utf8', timeout: 60_000, ...(input !== undefined ? { input } : {}) });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };
  const text = longText(400, 3);
  const file = join(dir, 'prompt.txt');
  writeFileSync(file, text);

  test('prints the text the API gives and the statistics; a bad flag exits 1 naming it', async () => {
    const api = await compressPrompt(text, { scorer: randomScorer({ seed: 4 }), rate: 0.33, forceTokens: ['\n'] });
    const r = cli([file, '--rate', '0.33', '--scorer', 'random', '--seed', '4', '--force', '\\n']);
    expect(r.status).toBe(0);
    expect(r.out).toBe(api.text + '\n');
    expect(r.err).toContain(`${api.originalTokens} -> ${api.compressedTokens} cl100k tokens`);
    const bad = cli([file, '--rate', '0']);
    expect(bad.status).toBe(1);
    expect(bad.err).toMatch(/--rate: expected a number in \(0, 1\]/);
  });
  test('runCompressPrompt: --json report, --target-tokens, bad scorer and both budgets refused', async () => {
    const logs: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((m: string) => void logs.push(m));
    try {
      const api = await compressPrompt(text, { scorer: randomScorer({ seed: 4 }), rate: 0.33 });
      const rep = await runCompressPrompt('x', text, { rate: 0.33, seed: 4, scorer: 'random', countTokens: 'cl100k', json: true });
      expect(JSON.parse(logs[0]!)).toEqual(JSON.parse(JSON.stringify(rep)));
      expect(rep.text).toBe(api.text);
      expect(rep.compressedTokens).toBe(api.compressedTokens);
      expect(rep.rate).toBe(api.rate);
      expect(rep.scorer).toBe('random:4');
      const t = await runCompressPrompt('x', text, { targetTokens: 60, scorer: 'length', countTokens: 'o200k', json: true });
      expect(t.originalTokens).toBe(o200kCounter(text));
      expect(t.compressedTokens).toBeLessThanOrEqual(61);
      await expect(runCompressPrompt('x', text, { scorer: 'nope', countTokens: 'cl100k' })).rejects.toThrow(/--scorer: expected one of random, length/);
      await expect(runCompressPrompt('x', text, { rate: 0.5, targetTokens: 9, scorer: 'random', countTokens: 'cl100k' })).rejects.toThrow(/not both/);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('fillBudget (ours, not the official rule)', () => {
  // Counter: non-space characters. "x yyyy z" costs 1 + 4 + 1 = 6; rate 0.5 -> budget 3.
  // Official: repeated scores [1, 2, 2, 2, 2, 3], q = 51 -> 2 (linear, index 2.55 between 2 and 2)
  // -> keeps x (3) only: 1 of 3. Filling adds the best dropped words that fit: yyyy (4) does not
  // fit (5 > 3), z (1) does (2 <= 3).
  const chars = (s: string): number => s.replace(/\s/g, '').length;
  const scorer = mapScorer({ x: 3, yyyy: 2, z: 1 });
  test('adds the best-scoring dropped words that fit, skipping those that do not', async () => {
    const plain = await run('x yyyy z', { scorer, rate: 0.5, countTokens: chars });
    expect(plain.text).toBe('x');
    const filled = await run('x yyyy z', { scorer, rate: 0.5, countTokens: chars, fillBudget: true });
    expect(filled.text).toBe('x z');
    expect(filled.compressedTokens).toBe(2);
    expect(filled.kept).toEqual([{ context: 0, start: 0, end: 1 }, { context: 0, start: 7, end: 8 }]);
  });
  test('never exceeds floor(rate x tokens), takes back words when the real count is over', async () => {
    // A counter whose count of a joined text exceeds the sum of the words' counts: every space costs 1.
    const spaced = (s: string): number => s.length;
    const text = 'a b c d e f g h';
    const flat = mapScorer({ a: 8, b: 7, c: 6, d: 5, e: 4, f: 3, g: 2, h: 1 });
    for (const rate of [0.2, 0.5, 0.8]) {
      const r = await run(text, { scorer: flat, rate, countTokens: spaced, fillBudget: true });
      expect(r.compressedTokens).toBeLessThanOrEqual(Math.floor(rate * text.length));
      const plain = await run(text, { scorer: flat, rate, countTokens: spaced });
      expect(r.compressedTokens).toBeGreaterThanOrEqual(plain.compressedTokens);
    }
    await expect(run(text, { scorer: flat, rate: 0.5, fillBudget: 'yes' as unknown as boolean })).rejects.toThrow(/options.fillBudget/);
  });
});
