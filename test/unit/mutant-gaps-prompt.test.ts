// Small hand-made cases that pin rules of the prompt-compression engine that
// the Stryker run (group "prompt") showed unpinned: words.ts (word grouping,
// space / punctuation / digit classes, force occurrences), chunk.ts (chunk
// cuts), percentile.ts (numpy lerp branch, argument checks). Every expected
// value is worked out by hand in the comments, or comes from an independent
// reference (JavaScript's own \s and \p{Nd}, Python's string.punctuation,
// test/reference/percentile.ts).
import { describe, expect, test } from 'vitest';
import { chunkBoundaries } from '../../lib/prompt/chunk.js';
import { percentile } from '../../lib/prompt/percentile.js';
import { specpcPool, specpcSelect } from '../../lib/prompt/pool.js';
import { fillToBudget, keptText, Scratch, selectWords } from '../../lib/prompt/select.js';
import { findForceOccurrences, groupWords, hasDigit, isPunctuation, isSpaceCode, type WordProbMode } from '../../lib/prompt/words.js';
import { refPercentile } from '../reference/percentile.js';
import { refPool, refSelect } from '../reference/specpc.js';

/** Token spans of `text`: each listed substring in order, found left to right. */
function spans(text: string, toks: string[]): { st: Int32Array; en: Int32Array } {
  const st = new Int32Array(toks.length);
  const en = new Int32Array(toks.length);
  let at = 0;
  toks.forEach((t, i) => {
    const p = text.indexOf(t, at);
    if (p < 0) throw new Error(`token ${JSON.stringify(t)} not found`);
    st[i] = p;
    en[i] = p + t.length;
    at = p + t.length;
  });
  return { st, en };
}

interface GwOpts {
  scores?: number[];
  bounds?: number[];
  force?: string[];
  digit?: boolean;
  mode?: WordProbMode;
  /** Token count passed as n (default: all tokens). */
  n?: number;
}

/** groupWords on hand-written tokens; returns plain arrays of the word table. */
function gw(text: string, toks: string[], o: GwOpts = {}) {
  const { st, en } = spans(text, toks);
  const n = o.n ?? toks.length;
  const scores = Float64Array.from(o.scores ?? toks.map(() => 0.5));
  const occ = findForceOccurrences(text, o.force ?? []);
  const t = groupWords(text, st, en, scores, n, Int32Array.from(o.bounds ?? [0, n]), occ.start, occ.end, o.digit ?? false, o.mode ?? 'mean');
  return {
    table: t,
    n: t.n,
    words: Array.from({ length: t.n }, (_, w) => text.slice(t.start[w], t.end[w])),
    score: Array.from(t.score),
    raw: Array.from(t.raw),
    forced: Array.from(t.forced),
    chunkWordStart: Array.from(t.chunkWordStart),
    chunkForce: Array.from(t.chunkForce),
    chunkFloor: Array.from(t.chunkFloor),
  };
}

describe('character classes', () => {
  test('isSpaceCode is exactly JavaScript\'s \\s over the whole BMP', () => {
    // Independent reference: the engine's own regex class \s (ECMAScript WhiteSpace + LineTerminator).
    const bad: number[] = [];
    for (let c = 0; c < 65536; c++) if (isSpaceCode(c) !== /\s/.test(String.fromCharCode(c))) bad.push(c);
    expect(bad).toEqual([]);
  });

  test('isPunctuation is exactly Python\'s string.punctuation, one char at a time', () => {
    const py = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';
    const bad: number[] = [];
    for (let c = 0; c < 300; c++) {
      const s = String.fromCharCode(c);
      if (isPunctuation(s, 0, 1) !== py.includes(s)) bad.push(c);
    }
    expect(bad).toEqual([]);
    // A run of punctuation is punctuation; one letter in it is not.
    expect(isPunctuation('a.,;b', 1, 4)).toBe(true);
    expect(isPunctuation('a.,;b', 1, 5)).toBe(false);
  });

  test('isPunctuation of an empty or reversed range is false', () => {
    // Rule: "non-empty and only ASCII punctuation"; an empty loop would say true.
    expect(isPunctuation('...', 1, 1)).toBe(false);
    expect(isPunctuation('...', 2, 1)).toBe(false);
  });

  test('hasDigit is Unicode Nd (as Python re \\d), limited to [s, e)', () => {
    const bad: number[] = [];
    for (let c = 0; c < 3000; c++) {
      const s = String.fromCharCode(c);
      if (hasDigit(s, 0, 1) !== /\p{Nd}/u.test(s)) bad.push(c);
    }
    expect(bad).toEqual([]);
    // The range end is exclusive: the digit at e does not count.
    expect(hasDigit('a1', 0, 1)).toBe(false);
    expect(hasDigit('a1', 0, 2)).toBe(true);
    // A non-ASCII non-digit followed by a digit outside the range: still false
    // (the Unicode test looks at text[i, min(e, i + 2)) only).
    expect(hasDigit('é1', 0, 1)).toBe(false);
    expect(hasDigit('xé', 1, 2)).toBe(false);
    // An astral-plane digit (U+1D7CE MATHEMATICAL BOLD DIGIT ZERO, a surrogate pair) counts.
    expect(hasDigit('\u{1D7CE}', 0, 2)).toBe(true);
    // Arabic-Indic digit five (U+0665).
    expect(hasDigit('x\u0665', 0, 2)).toBe(true);
  });
});

describe('findForceOccurrences', () => {
  test('at one position the longest force token wins, whatever the list order', () => {
    // "a" and "ab" both match at 0: the occurrence is "ab" = [0, 2).
    const r = findForceOccurrences('abc', ['a', 'ab']);
    expect(Array.from(r.start)).toEqual([0]);
    expect(Array.from(r.end)).toEqual([2]);
  });

  test('each force token matches on its own (alternatives, not a concatenation)', () => {
    const r = findForceOccurrences('a b', ['a', 'b']);
    expect(Array.from(r.start)).toEqual([0, 2]);
    expect(Array.from(r.end)).toEqual([1, 3]);
  });

  test('empty text has no occurrences, even of an empty force token', () => {
    const r = findForceOccurrences('', ['']);
    expect(r.start.length).toBe(0);
    expect(r.end.length).toBe(0);
  });
});

describe('groupWords', () => {
  test('a word score is the mean of its token scores, also for the last (and only) word', () => {
    // "abc" has no spaces: tokens a, b, c form one word; mean (0.2 + 0.4 + 0.9) / 3 = 0.5.
    const t = gw('abc', ['a', 'b', 'c'], { scores: [0.2, 0.4, 0.9] });
    expect(t.words).toEqual(['abc']);
    expect(t.score[0]).toBeCloseTo(0.5, 12);
    expect(t.raw[0]).toBeCloseTo(0.5, 12);
  });

  test('mode "first": score and raw are the first token\'s, for every word including the last', () => {
    // Words "ab" (0.2, 0.6) and "cd" (0.3, 0.7): first -> 0.2 and 0.3 (the mean would be 0.4 and 0.5).
    const t = gw('ab cd', ['a', 'b', 'c', 'd'], { scores: [0.2, 0.6, 0.3, 0.7], mode: 'first' });
    expect(t.words).toEqual(['ab', 'cd']);
    expect(t.score).toEqual([0.2, 0.3]);
    expect(t.raw).toEqual([0.2, 0.3]);
  });

  test('mean of the non-last word and raw of a forced word ignore forcing', () => {
    // "ab" tokens 0.2, 0.4 -> 0.3; "x" forced: score F = 1, raw = its scorer score 0.1.
    const t = gw('ab x', ['a', 'b', 'x'], { scores: [0.2, 0.4, 0.1], force: ['x'] });
    expect(t.words).toEqual(['ab', 'x']);
    expect(t.score[0]).toBeCloseTo(0.3, 12);
    expect(t.raw[0]).toBeCloseTo(0.3, 12);
    expect(t.score[1]).toBe(1);
    expect(t.raw[1]).toBe(0.1);
    expect(t.forced).toEqual([0, 1]);
  });

  test('forced flag: 1 for the first occurrence (index 0), 0 for plain words', () => {
    const t = gw('x a', ['x', 'a'], { force: ['x'] });
    expect(t.words).toEqual(['x', 'a']);
    expect(t.forced).toEqual([1, 0]);
  });

  test('a covered occurrence is one word, and an uncovered one after it is a word of its own', () => {
    // Force "x" (covered by token x) and "\n" (between no tokens: uncovered, a virtual word, raw NaN).
    const t = gw('a x\n', ['a', 'x'], { force: ['x', '\n'], scores: [0.3, 0.4] });
    expect(t.words).toEqual(['a', 'x', '\n']);
    expect(t.forced).toEqual([0, 1, 1]);
    expect(t.score).toEqual([0.3, 1, 1]);
    expect(t.raw[2]).toBeNaN();
  });

  test('an uncovered occurrence before a covered one is kept', () => {
    // "\n" at 2 is covered by no token; "y" at 4 is token y. Words: x, "\n", y.
    const t = gw('x \n y', ['x', 'y'], { force: ['\n', 'y'] });
    expect(t.words).toEqual(['x', '\n', 'y']);
    expect(t.forced).toEqual([0, 1, 1]);
  });

  test('a token overlapping two occurrences belongs to the first', () => {
    // Occurrences "a" [0,1) and "bc" [1,3). Token "ab" overlaps both -> occurrence 0; token "c" -> occurrence 1.
    // Different occurrences: two words "ab" and "c".
    const t = gw('abc', ['ab', 'c'], { force: ['a', 'bc'] });
    expect(t.words).toEqual(['ab', 'c']);
    expect(t.forced).toEqual([1, 1]);
  });

  test('only the first n tokens count: an occurrence over token n is uncovered', () => {
    // n = 1: token "cd" is not a scorer token, so the occurrence "cd" is a virtual word.
    const t = gw('ab cd', ['ab', 'cd'], { n: 1, force: ['cd'], scores: [0.4, 0.9] });
    expect(t.words).toEqual(['ab', 'cd']);
    expect(t.forced).toEqual([0, 1]);
    expect(t.raw[1]).toBeNaN();
  });

  test('the first token of a chunk starts a word, even with no space before it', () => {
    const t = gw('abcd', ['ab', 'cd'], { bounds: [0, 1, 2] });
    expect(t.words).toEqual(['ab', 'cd']);
    expect(t.chunkWordStart).toEqual([0, 1, 2]);
  });

  test('the first item of a later chunk starts a word when it is force occurrence #2', () => {
    // Three "x" occurrences (0, 1, 2); chunk 1 starts at token x #2: a new word.
    const t = gw('x x x', ['x', 'x', 'x'], { force: ['x'], bounds: [0, 2, 3] });
    expect(t.words).toEqual(['x', 'x', 'x']);
    expect(t.chunkWordStart).toEqual([0, 2, 3]);
  });

  test('an uncovered occurrence belongs to the chunk whose span holds it', () => {
    // Chunks: [a] and [b, c]; "\n" at 3 lies after b (chunk 1): words a | b, "\n", c.
    const t = gw('a b\nc', ['a', 'b', 'c'], { force: ['\n'], bounds: [0, 1, 3] });
    expect(t.words).toEqual(['a', 'b', '\n', 'c']);
    expect(t.chunkWordStart).toEqual([0, 1, 4]);
  });

  test('chunk force F and floor L use only the chunk\'s own tokens', () => {
    // Chunk 0: scores 0.5, -0.25 -> F = max(1, 0.5) = 1, L = min(0, -0.25) = -0.25.
    // Chunk 1: scores 3, -2 -> F = 3, L = -2.
    const t = gw('a b c d', ['a', 'b', 'c', 'd'], { scores: [0.5, -0.25, 3, -2], bounds: [0, 2, 4] });
    expect(t.chunkForce).toEqual([1, 3]);
    expect(t.chunkFloor).toEqual([-0.25, -2]);
    // The last chunk does not read past its end: one chunk [c] of a longer token array.
    const u = gw('a b', ['a', 'b'], { scores: [0.5, 7], n: 1, bounds: [0, 1] });
    expect(u.chunkForce).toEqual([1]);
  });

  test('a digit token gets F with forceReserveDigit, its scorer score without', () => {
    const on = gw('a 7', ['a', '7'], { scores: [0.3, 0.2], digit: true });
    expect(on.score).toEqual([0.3, 1]);
    expect(on.raw).toEqual([0.3, 0.2]);
    const off = gw('a 7', ['a', '7'], { scores: [0.3, 0.2], digit: false });
    expect(off.score).toEqual([0.3, 0.2]);
  });

  test('space and punctuation start words; letters after letters do not', () => {
    // "b" follows an ideographic space; "," is punctuation; "cd" follows a space, "d" is glued to "c".
    const t = gw('a\u3000b, cd', ['a', 'b', ',', 'c', 'd']);
    expect(t.words).toEqual(['a', 'b', ',', 'cd']);
  });
});

describe('chunkBoundaries', () => {
  const cb = (text: string, toks: string[], max: number, ends: string[]) => {
    const { st, en } = spans(text, toks);
    return Array.from(chunkBoundaries(text, st, en, toks.length, max, ends));
  };

  test('n <= maxTokens: one chunk [0, n]', () => {
    expect(cb('a b c', ['a', 'b', 'c'], 3, ['.'])).toEqual([0, 3]);
  });

  test('a chunk end in the gap after a token cuts there; no gap after a token never does', () => {
    // Tokens a b | c d with "\n" between b and c; window of 3 = [a, b, c]:
    // c has no gap after it (d follows at once) -> not an end; b has "\n" after it -> cut after b.
    expect(cb('ab\ncd', ['a', 'b', 'c', 'd'], 3, ['\n'])).toEqual([0, 2, 4]);
  });

  test('the search never stops at the window\'s first token', () => {
    // Window [".", b, c]: only token 0 is an end, and it is not searched -> a full window cut.
    expect(cb('. b c d', ['.', 'b', 'c', 'd'], 3, ['.'])).toEqual([0, 3, 4]);
  });

  test('a remainder of exactly maxTokens tokens is one last chunk, not searched', () => {
    // 6 tokens, window 3: [a b c] has no end -> cut 3; remainder [d . f] has 3 tokens -> [3, 6].
    expect(cb('a b c d . f', ['a', 'b', 'c', 'd', '.', 'f'], 3, ['.'])).toEqual([0, 3, 6]);
  });
});

describe('percentile', () => {
  test('fraction exactly 0.5 interpolates from the upper value (numpy _lerp)', () => {
    // h = 0.5 * 1 = 0.5: numpy gives b - (b - a) * 0.5, which differs in float64 from a + (b - a) * 0.5 here.
    const a = 0.1, b = 0.7;
    expect(a + (b - a) * 0.5).not.toBe(b - (b - a) * 0.5); // the case distinguishes the branches
    expect(percentile([a, b], 50)).toBe(refPercentile([a, b], 50));
    expect(percentile([b, a], 50)).toBe(b - (b - a) * 0.5);
  });

  test('many sizes and q agree bit for bit with the sorting reference', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    for (let n = 1; n <= 40; n++) {
      const v = Array.from({ length: n }, () => Math.round(rnd() * 20) / 7 - 1);
      for (const q of [0, 10, 25, 37.5, 50, 75, 90, 99, 100]) expect(percentile(v, q)).toBe(refPercentile(v, q));
    }
  });

  test('argument checks: TypeError for non-arrays and non-number q, RangeError with the argument named', () => {
    expect(() => percentile(null as never, 50)).toThrow(/^values: expected an array of numbers/);
    expect(() => percentile('123' as never, 50)).toThrow(TypeError);
    expect(() => percentile('123' as never, 50)).toThrow(/^values: expected an array of numbers/);
    expect(() => percentile(5 as never, 50)).toThrow(/^values: expected an array of numbers/);
    expect(() => percentile({ length: 'x' } as never, 50)).toThrow(/^values: expected an array of numbers/);
    expect(() => percentile([1, 2], '50' as never)).toThrow(TypeError);
    expect(() => percentile([1, 2], '50' as never)).toThrow(/^q: expected a number in \[0, 100\]/);
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([], 50)).toThrow(/^values: expected a non-empty array/);
    expect(() => percentile([1, Infinity], 50)).toThrow(/^values\[1\]: expected a finite number/);
    expect(() => percentile([1, '2' as never], 50)).toThrow(/^values\[1\]: expected a finite number/);
  });
});

/** Words of a string: runs of non-space characters. */
const nWords = (s: string): number => s.split(/\s+/).filter((x) => x.length > 0).length;

/** A countSpan that checks its arguments are offsets and counts one token per non-space run. */
function spanCounter(text: string, per: (w: string) => number = () => 1) {
  return (s: number, e: number): number => {
    if (typeof s !== 'number' || typeof e !== 'number') throw new Error('countSpan: offsets expected');
    return per(text.slice(s, e));
  };
}

function sel(text: string, t: ReturnType<typeof gw>, reduce: number, dropConsecutive: boolean, force: string[], per?: (w: string) => number) {
  return Array.from(selectWords(text, t.table, { reduce, countSpan: spanCounter(text, per), dropConsecutive, forceSet: new Set(force), scratch: new Scratch() }));
}

describe('Scratch', () => {
  test('keeps its buffer while it is large enough, else grows to max(n, twice)', () => {
    const s = new Scratch();
    const b0 = s.buf;
    expect(b0.length).toBe(1024);
    expect(s.get(1024)).toBe(b0);
    expect(s.get(1025).length).toBe(2048);
    expect(s.get(5000).length).toBe(5000);
  });

  test('a chunk of more than 1024 target tokens: the threshold sees all of them', () => {
    // Words a (0.9, 1 token), b (0.1, 2000 tokens), c (0.5, 1 token); reduce 0.5 -> q = 51.
    // Repeated: 2000 x 0.1 plus 0.5, 0.9: the 51st percentile is 0.1 -> keep a and c (> 0.1), not b.
    const text = 'a b c';
    const t = gw(text, ['a', 'b', 'c'], { scores: [0.9, 0.1, 0.5] });
    expect(sel(text, t, 0.5, false, [], (w) => (w === 'b' ? 2000 : 1))).toEqual([1, 0, 1]);
  });
});

describe('selectWords', () => {
  test('words that cost no target token: the whole chunk is kept (threshold -Infinity)', () => {
    const text = 'a b';
    const t = gw(text, ['a', 'b'], { scores: [0.2, 0.7] });
    expect(sel(text, t, 0.5, false, [], () => 0)).toEqual([1, 1]);
  });

  test('drop_consecutive: a kept force word equal to the word kept just before it is dropped (also the first word)', () => {
    // Zero-cost words (threshold -Infinity, all pass the score rule). Words X, X (both forced):
    // step 1 floors the second X (no word between); the keep rule keeps X #0 (nothing kept before it)
    // and drops X #1 (same text as the last kept word).
    const text = 'X X';
    const t = gw(text, ['X', 'X'], { force: ['X'], scores: [0.3, 0.3] });
    expect(sel(text, t, 0.5, true, ['X'], () => 0)).toEqual([1, 0]);
    expect(t.table.score[1]).toBe(0); // the chunk floor min(0, 0.3) = 0
  });

  test('drop_consecutive keep rule: the first kept word has no word before it, even when it is the whole text', () => {
    // Text "X", one forced word, zero cost: kept (there is no last kept word to equal).
    const text = 'X';
    const t = gw(text, ['X'], { force: ['X'] });
    expect(sel(text, t, 0.5, true, ['X'], () => 0)).toEqual([1]);
  });

  test('drop_consecutive keep rule: forced X after a kept X with an unkept word between is dropped', () => {
    // Words X(1) a(0.5) X(1) b(0.1), F = 1; countSpan: X -> 10 tokens, others 1; reduce 0.25.
    // Step 1: threshold0 = percentile([1, .5, 1, .1], 25) = 0.4 (h = 0.75: 0.5 - 0.4 * 0.25);
    //   a = 0.5 > 0.4 sits between the X's, so X #2 keeps score 1.
    // Step 2: q = 26 over 10 x 1, 0.5, 10 x 1, 0.1 (22 values): h = 5.46, sorted[5] = sorted[6] = 1 -> threshold 1 = F:
    //   X #0 and X #2 pass (score == F), a and b do not.
    // Keep rule: X #2 equals the last kept word (X #0) -> dropped.
    const text = 'X a X b';
    const t = gw(text, ['X', 'a', 'X', 'b'], { force: ['X'], scores: [0.2, 0.5, 0.2, 0.1] });
    expect(sel(text, t, 0.25, true, ['X'], (w) => (w === 'X' ? 10 : 1))).toEqual([1, 0, 0, 0]);
    expect(Array.from(t.table.score)).toEqual([1, 0.5, 1, 0.1]);
    // Without drop_consecutive both X's stay.
    const u = gw(text, ['X', 'a', 'X', 'b'], { force: ['X'], scores: [0.2, 0.5, 0.2, 0.1] });
    expect(sel(text, u, 0.25, false, ['X'], (w) => (w === 'X' ? 10 : 1))).toEqual([1, 0, 1, 0]);
  });

  test('drop_consecutive step 1: a high word between resets, and a repeat after the reset is floored', () => {
    // Words X(1) a(0.9) X(1) X(1) b(0.1) c(0.1); reduce 0.25: threshold0 = percentile(scores, 25):
    // sorted .1 .1 .9 1 1 1, h = 1.25 -> 0.1 + 0.8 * 0.25 = 0.3. a > 0.3: X #2 is not floored (between);
    // X #3 repeats X #2 with nothing between -> floor 0.
    const text = 'X a X X b c';
    const t = gw(text, ['X', 'a', 'X', 'X', 'b', 'c'], { force: ['X'], scores: [0.5, 0.9, 0.5, 0.5, 0.1, 0.1] });
    sel(text, t, 0.25, true, ['X']);
    expect(Array.from(t.table.score)).toEqual([1, 0.9, 1, 0, 0.1, 0.1]);
  });

  test('drop_consecutive step 1 works per chunk: a force word opening a chunk is never a repeat', () => {
    // Chunks [X] and [X]: the second X is the first force word of its chunk, so it keeps F = 1.
    const text = 'X X';
    const t = gw(text, ['X', 'X'], { force: ['X'], scores: [0.5, 0.5], bounds: [0, 1, 2] });
    expect(sel(text, t, 0.5, true, ['X'])).toEqual([1, 1]);
    expect(Array.from(t.table.score)).toEqual([1, 1]);
  });
});

describe('keptText', () => {
  const kt = (text: string, toks: string[], keep: number[]) => {
    const t = gw(text, toks);
    const r = keptText(text, t.table, Uint8Array.from(keep), (s, e) => ({ start: s, end: e }));
    return { text: r.text, spans: r.spans.map((x) => [x.start, x.end]) };
  };

  test('runs are joined by one space where the dropped stretch held whitespace', () => {
    expect(kt('ab cd ef', ['ab', 'cd', 'ef'], [1, 0, 1])).toEqual({ text: 'ab ef', spans: [[0, 2], [6, 8]] });
  });

  test('runs are joined by nothing where the dropped stretch held no whitespace', () => {
    // Words ab, "-cd", "-ef" ("-" is punctuation and starts a word; "cd" is glued to it).
    expect(kt('ab-cd-ef', ['ab', '-', 'cd', '-', 'ef'], [1, 0, 1])).toEqual({ text: 'ab-ef', spans: [[0, 2], [5, 8]] });
  });

  test('a run keeps the text between its words, and a long kept text (> 8192 code units) is verbatim', () => {
    expect(kt('ab cd ef', ['ab', 'cd', 'ef'], [1, 1, 0])).toEqual({ text: 'ab cd', spans: [[0, 5]] });
    const words = Array.from({ length: 5000 }, (_, i) => `w${i % 10}`);
    const text = words.join(' ');
    const r = kt(text, words, words.map(() => 1));
    expect(r.text).toBe(text);
    expect(r.spans).toEqual([[0, text.length]]);
  });
});

describe('fillToBudget', () => {
  // One target token per word, for a word and for a text.
  const run = (text: string, toks: string[], scores: number[], keep: number[], budget: number, perWord: (w: string) => number = nWords, perText: (s: string) => number = nWords) => {
    const t = gw(text, toks, { scores });
    const k = Uint8Array.from(keep);
    fillToBudget(text, t.table, k, budget, perWord, perText);
    return Array.from(k);
  };

  test('adds the unkept words best score first while the estimate stays within the budget', () => {
    // Scores a .4, b .9, c .1, d .6; nothing kept; budget 2: b (1), d (2); a would make 3.
    expect(run('a b c d', ['a', 'b', 'c', 'd'], [0.4, 0.9, 0.1, 0.6], [0, 0, 0, 0], 2)).toEqual([0, 1, 0, 1]);
  });

  test('additions follow the estimate (kept count plus each added word\'s own count), not the real count', () => {
    // countText says 0 for everything, so no take-back happens; the estimate alone stops after b, d (budget 2).
    expect(run('a b c d', ['a', 'b', 'c', 'd'], [0.4, 0.9, 0.1, 0.6], [0, 0, 0, 0], 2, nWords, () => 0)).toEqual([0, 1, 0, 1]);
  });

  test('already kept words count once and are not added again', () => {
    // b kept (estimate 1); budget 3: d (2), a (3); c does not fit.
    expect(run('a b c d', ['a', 'b', 'c', 'd'], [0.4, 0.9, 0.1, 0.6], [0, 1, 0, 0], 3)).toEqual([1, 1, 0, 1]);
  });

  test('a kept text already at the budget is left as it is, even with free words', () => {
    // "," costs 0 tokens (for a word and in a text) and would fit, but the kept text already has 2 = budget tokens.
    const letters = (s: string) => s.split(/\s+/).filter((x) => /\w/.test(x)).length;
    expect(run('a b ,', ['a', 'b', ','], [0.4, 0.9, 0.95], [1, 1, 0], 2, letters, letters)).toEqual([1, 1, 0]);
  });
});

describe('specpcPool / specpcSelect', () => {
  test('max pooling: the zero padding takes part only in windows that reach it (negative scores)', () => {
    // n = 5, kernel 3 (one pad left, one right): windows 0 and 4 touch the padding (max 0);
    // windows 1..3 lie inside: max of negatives. Kernel 4 (one left, two right): windows 3, 4 touch the right padding.
    const s = Float64Array.of(-1, -2, -3, -4, -5);
    expect(Array.from(specpcPool(s, { kernelSize: 3 }))).toEqual([0, -1, -2, -3, 0]);
    expect(Array.from(specpcPool(s, { kernelSize: 3 }))).toEqual(refPool(s, 3, 'max'));
    expect(Array.from(specpcPool(s, { kernelSize: 4 }))).toEqual(refPool(s, 4, 'max'));
    expect(Array.from(specpcPool(s, { kernelSize: 4, poolType: 'avg' }))).toEqual(refPool(s, 4, 'avg'));
    expect(Array.from(specpcPool(Float32Array.of(-2, -1), { kernelSize: 1 }))).toEqual([-2, -1]);
  });

  test('top-capacity ties go to the lower index', () => {
    // All pooled scores equal: the top 2 are tokens 0 and 1 (then sorted).
    const s = new Float64Array(12).fill(1);
    const o = { capacity: 2, windowSize: 0, kernelSize: 1, poolType: 'max' as const, neighborTokens: 0 };
    expect(Array.from(specpcSelect(s, o))).toEqual([0, 1]);
    expect(Array.from(specpcSelect(s, o))).toEqual(refSelect(s, o));
    const o3 = { ...o, capacity: 5, neighborTokens: 1 };
    expect(Array.from(specpcSelect(s, o3))).toEqual(refSelect(s, o3));
  });

  test('argument errors name the argument', () => {
    expect(() => specpcPool(Float64Array.of(1, NaN))).toThrow(/^scores\[1\]: expected a finite number/);
    expect(() => specpcPool([1, 2] as never)).toThrow(/^scores: expected a Float32Array or Float64Array/);
    expect(() => specpcPool(Float64Array.of(1), { poolType: 'min' as never })).toThrow(/^options\.poolType: expected 'max' or 'avg'/);
    expect(() => specpcPool(Float64Array.of(1), { kernelSize: 0 })).toThrow(/^options\.kernelSize: /);
    expect(() => specpcSelect(Float64Array.of(1), undefined as never)).toThrow(TypeError);
    expect(() => specpcSelect(Float64Array.of(1), undefined as never)).toThrow(/^options: expected \{ capacity, windowSize\?/);
    expect(() => specpcSelect(Float64Array.of(1), { capacity: 1, windowSize: -1 })).toThrow(/^options\.windowSize: /);
    expect(() => specpcSelect(Float64Array.of(1), { capacity: 1, neighborTokens: -1 })).toThrow(/^options\.neighborTokens: /);
  });
});
