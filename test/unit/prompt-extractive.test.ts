// Extractive selection for RAG (lib/prompt/extractive.ts and its scorers):
// sentence splitting pinned on hand-made text, BM25 against an independent
// formula, the selection rules (top-k, threshold, minScore, order, budget,
// empty selection) with fixed scores, the embedding scorer against
// hand-computed dot products and cosines, the Yes/No scorer's softmax and
// prompt, and hostile inputs.
import { describe, expect, test } from 'vitest';
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import {
  bm25Scorer, bm25Scores, embeddingScorer, EXIT_TEMPLATE, selectSentences, splitSentences, yesNoScorer, yesProbability,
  type SentenceScorer,
} from '../../lib/index.js';

const texts = (text: string, spans: { start: number; end: number }[]) => spans.map((s) => text.slice(s.start, s.end));
const words = (t: string) => (t.match(/\S+/g) ?? []).length;

describe('splitSentences (Intl.Segmenter)', () => {
  test('hand-made text: spans trimmed, known segmenter behaviour pinned', () => {
    const text = '  Dr. Smith went home.  He was tired!! Really? e.g. this stays. U.S. troops landed. It cost $3.50 today.\nNo stop here\n\n"Quoted." Last one';
    const spans = splitSentences(text);
    expect(texts(text, spans)).toEqual([
      'Dr.', // splits after an abbreviation followed by a capital
      'Smith went home.',
      'He was tired!!',
      'Really?',
      'e.g. this stays.', // lower case after "e.g." does not split
      'U.S. troops landed.',
      'It cost $3.50 today.', // decimals do not split
      'No stop here', // a line break ends a sentence
      '"Quoted."',
      'Last one',
    ]);
    for (const s of spans) {
      expect(text[s.start]).toMatch(/\S/);
      expect(text[s.end - 1]).toMatch(/\S/);
    }
  });

  test('empty and all-whitespace text give no spans; one sentence gives one span', () => {
    expect(splitSentences('')).toEqual([]);
    expect(splitSentences(' \n\t ')).toEqual([]);
    expect(splitSentences(' x ')).toEqual([{ start: 1, end: 2 }]);
  });

  test('bad arguments are refused, naming them', () => {
    expect(() => splitSentences(5 as never)).toThrow(TypeError);
    expect(() => splitSentences('a', { locale: 'not a locale!' })).toThrow(/options\.locale/);
    expect(() => splitSentences('a', { locale: 7 as never })).toThrow(TypeError);
    expect(() => splitSentences('a', { locael: 'en' } as never)).toThrow(/did you mean "locale"/);
  });
});

/** Independent BM25: the package's IDF ln((N - n + 0.5) / (n + 0.5) + 1), the usual TF part. */
function referenceBm25(query: string, sentences: string[], k1 = 1.5, b = 0.75): number[] {
  const tok = (s: string) => s.toLowerCase().split(/[^\p{L}\p{M}\p{N}]+/u).filter((t) => t !== '');
  const docs = sentences.map(tok);
  const n = docs.length;
  const avgdl = docs.reduce((a, d) => a + d.length, 0) / n;
  return docs.map((d) =>
    tok(query).reduce((acc, t) => {
      const df = docs.filter((x) => x.includes(t)).length;
      if (df === 0) return acc;
      const idf = Math.log((n - df + 0.5) / (df + 0.5) + 1);
      const tf = d.filter((x) => x === t).length;
      return acc + (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * d.length) / avgdl));
    }, 0),
  );
}

describe('BM25 (okapibm25 adapter)', () => {
  const corpus = [
    'There is nothing here.', // "the" must not match inside "there"
    'The cat sat on the mat.',
    'C++ (and c) are languages; the café is open.', // RegExp syntax and non-ASCII letters
    'Cats, cats and more CATS in 1905.',
    '!!!', // no terms at all
    'the the the the the the the the',
  ];

  test.each([
    ['the cat', undefined],
    ['cats 1905 café', undefined],
    ['c++ languages? the', undefined],
    ['cat cat mat', undefined], // a repeated query term counts twice
    ['the cat', { k1: 1.2, b: 0.5 }],
    ['zebra', undefined], // no query term in the corpus
  ] as const)('query %j matches the reference formula (params %j)', (query, params) => {
    const got = Array.from(bm25Scores(query, corpus, params));
    const want = referenceBm25(query, corpus, params?.k1, params?.b);
    expect(got.length).toBe(corpus.length);
    got.forEach((g, i) => expect(g).toBeCloseTo(want[i]!, 12));
  });

  test('hand-computed value on a two-sentence corpus', () => {
    // N = 2, "a" in 1 sentence: idf = ln(1.5 / 1.5 + 1) = ln 2; |d| = 2 = avgdl, tf = 1:
    // score = ln2 * 1 * 2.5 / (1 + 1.5) = ln 2.
    const s = bm25Scores('a', ['a b', 'c d']);
    expect(s[0]).toBeCloseTo(Math.LN2, 14);
    expect(s[1]).toBe(0);
  });

  test('k1 and b are checked (0 would silently become the package default)', () => {
    expect(() => bm25Scores('a', ['a'], { b: 0 })).toThrow(/params\.b/);
    expect(() => bm25Scores('a', ['a'], { k1: 0 })).toThrow(RangeError);
    expect(() => bm25Scores('a', ['a'], { k1: NaN })).toThrow(RangeError);
    expect(() => bm25Scorer({ kk: 1 } as never)).toThrow(/unknown option "kk"/);
    expect(() => bm25Scores('a', ['a', 3 as never])).toThrow(/sentences\[1\]/);
  });
});

/** A scorer with fixed scores by sentence text. */
const fixed = (scores: Record<string, number>, extra: Partial<SentenceScorer> = {}): SentenceScorer => ({
  name: 'fixed',
  score: (_q, s) => s.map((c) => scores[c.text] ?? 0),
  ...extra,
});

describe('selectSentences rules', () => {
  const docs = ['One. Two. Three.', 'Four. Five.'];
  // joined input: "One. Two. Three.\n\nFour. Five."; "Two." at 5, "Four." at 18.
  const scorer = fixed({ 'One.': 1, 'Two.': 5, 'Three.': 3, 'Four.': 5, 'Five.': 0 });
  const base = { scorer, countTokens: words };

  test('top-k: highest scores, ties to the earlier sentence, document order, EXIT joining', async () => {
    const r = await selectSentences('q', docs, { ...base, topK: 2 });
    expect(r.text).toBe('Two.\n\nFour.');
    expect(r.kept).toEqual([{ start: 5, end: 9 }, { start: 18, end: 23 }]);
    const joined = docs.join('\n\n');
    expect(texts(joined, r.kept)).toEqual(['Two.', 'Four.']);
    expect(r.sentences.map((s) => [s.doc, s.score, s.kept])).toEqual([
      [0, 1, false], [0, 5, true], [0, 3, false], [1, 5, true], [1, 0, false],
    ]);
    expect(r.sentences[3]!.span).toEqual({ start: 0, end: 5 });
    expect(r.originalTokens).toBe(5);
    expect(r.compressedTokens).toBe(2);
    expect(r.rate).toBeCloseTo(0.4, 15);
  });

  test('sentences of one document joined by a space; keepOrder false gives score order', async () => {
    expect((await selectSentences('q', docs, { ...base, topK: 3 })).text).toBe('Two. Three.\n\nFour.');
    expect((await selectSentences('q', docs, { ...base, topK: 3, keepOrder: false })).text).toBe('Two. Four. Three.');
  });

  test('threshold is inclusive, minScore strict; both combine with topK', async () => {
    expect((await selectSentences('q', docs, { ...base, threshold: 3 })).text).toBe('Two. Three.\n\nFour.');
    expect((await selectSentences('q', docs, { ...base, threshold: 3, topK: 1 })).text).toBe('Two.');
    expect((await selectSentences('q', docs, { ...base, topK: 5, minScore: 0 })).text).toBe('One. Two. Three.\n\nFour.');
    expect((await selectSentences('q', docs, { ...base, topK: 5, minScore: 1 })).text).toBe('Two. Three.\n\nFour.');
  });

  test('an empty selection is a valid result', async () => {
    const r = await selectSentences('q', docs, { ...base, threshold: 6 });
    expect(r).toMatchObject({ text: '', kept: [], compressedTokens: 0, originalTokens: 5, rate: 0 });
    expect(r.sentences.every((s) => !s.kept)).toBe(true);
    const none = await selectSentences('q', [], { ...base, topK: 1 });
    expect(none).toMatchObject({ text: '', kept: [], originalTokens: 0, compressedTokens: 0, rate: 1, sentences: [] });
  });

  test('budgetTokens: best first, a sentence that does not fit is skipped, the rendered text is checked', async () => {
    const long = ['Alpha beta gamma delta. Two words. Zeta.'];
    const s = fixed({ 'Alpha beta gamma delta.': 9, 'Two words.': 5, 'Zeta.': 1 });
    const r = await selectSentences('q', long, { scorer: s, countTokens: words, budgetTokens: 3 });
    expect(r.text).toBe('Two words. Zeta.'); // the best (4 words) does not fit; the next two do
    expect((await selectSentences('q', long, { scorer: s, countTokens: words, budgetTokens: 0 })).text).toBe('');
    // Counting characters: "Two." (4) + "Four." (5) = 9 fit 10, but "Two.\n\nFour." is 11: the lower ranked goes.
    const chars = await selectSentences('q', docs, { scorer, countTokens: (t) => t.length, budgetTokens: 10 });
    expect(chars.text).toBe('Two.');
    expect(chars.compressedTokens).toBeLessThanOrEqual(10);
  });

  test("a string is one document: kept offsets are into it; the scorer's default threshold applies", async () => {
    const text = ' One. Two. Three.';
    const r = await selectSentences('q', text, { scorer: fixed({ 'Two.': 0.7, 'Three.': 0.5 }, { defaultThreshold: 0.5 }), countTokens: words });
    expect(r.text).toBe('Two. Three.');
    expect(texts(text, r.kept)).toEqual(['Two.', 'Three.']);
  });

  test('BM25 by default, counted in cl100k tokens by default', async () => {
    const d = ['Paris is the capital of France. The Seine flows through it.', 'Berlin is the capital of Germany. It rains.'];
    const r = await selectSentences('What is the capital of France?', d, { topK: 1 });
    expect(r.text).toBe('Paris is the capital of France.');
    const sents = r.sentences.map((s) => d[s.doc]!.slice(s.span.start, s.span.end));
    const want = referenceBm25('What is the capital of France?', sents);
    r.sentences.forEach((s, i) => expect(s.score).toBeCloseTo(want[i]!, 12));
    expect(r.originalTokens).toBe(cl100kCount(d.join('\n\n')));
    expect(r.compressedTokens).toBe(cl100kCount(r.text));
  });

  test('hostile arguments give clear errors', async () => {
    const ok = { ...base, topK: 1 };
    await expect(selectSentences('', docs, ok)).rejects.toThrow(/query: expected a non-empty query/);
    await expect(selectSentences('  \n', docs, ok)).rejects.toThrow(RangeError);
    await expect(selectSentences(5 as never, docs, ok)).rejects.toThrow(TypeError);
    await expect(selectSentences('q', [docs[0]!, 3] as never, ok)).rejects.toThrow(/documents\[1\]/);
    await expect(selectSentences('q', { a: 1 } as never, ok)).rejects.toThrow(TypeError);
    await expect(selectSentences('q', docs, { ...base, topK: 0 })).rejects.toThrow(/options\.topK: expected an integer >= 1, received 0/);
    await expect(selectSentences('q', docs, { ...base, topK: 1.5 })).rejects.toThrow(RangeError);
    await expect(selectSentences('q', docs, { ...base, topK: '2' as never })).rejects.toThrow(TypeError);
    await expect(selectSentences('q', docs, { ...base, threshold: NaN })).rejects.toThrow(/options\.threshold/);
    await expect(selectSentences('q', docs, { ...base, topK: 1, keepOrder: 'yes' as never })).rejects.toThrow(/keepOrder/);
    await expect(selectSentences('q', docs, { ...base, topk: 1 } as never)).rejects.toThrow(/did you mean "topK"/);
    await expect(selectSentences('q', docs, { countTokens: words })).rejects.toThrow(/topK, threshold or budgetTokens/);
    await expect(selectSentences('q', docs, { ...base, budgetTokens: -1 })).rejects.toThrow(/budgetTokens/);
    await expect(selectSentences('q', docs, { ...ok, scorer: 'bm26' as never })).rejects.toThrow(/options\.scorer/);
    await expect(selectSentences('q', docs, { ...ok, locale: '??' })).rejects.toThrow(/options\.locale/);
    await expect(selectSentences('q', docs, { ...ok, countTokens: () => -1 })).rejects.toThrow(/countTokens\(\) result/);
    await expect(selectSentences('q', docs, { ...ok, countTokens: () => 1.5 })).rejects.toThrow(RangeError);
    const short: SentenceScorer = { name: 'short', score: () => [1, 2] };
    await expect(selectSentences('q', docs, { ...ok, scorer: short })).rejects.toThrow(/scorer "short" result: expected 5 scores/);
    const nan: SentenceScorer = { name: 'nan', score: (_q, s) => s.map(() => NaN) };
    await expect(selectSentences('q', docs, { ...ok, scorer: nan })).rejects.toThrow(/result\[0\]/);
    const notArray: SentenceScorer = { name: 'obj', score: () => ({ length: 5 }) as never };
    await expect(selectSentences('q', docs, { ...ok, scorer: notArray })).rejects.toThrow(TypeError);
  });
});

/** Bag of letters: counts of a..z (a deterministic toy embedding). */
const bag = (t: string): number[] => {
  const v = new Array<number>(26).fill(0);
  for (const ch of t.toLowerCase()) {
    const i = ch.charCodeAt(0) - 97;
    if (i >= 0 && i < 26) v[i]!++;
  }
  return v;
};

describe('embeddingScorer', () => {
  const doc = 'Cab cab. Xyz a. Bb.';
  const calls: string[][] = [];
  const embed = async (ts: string[]) => {
    calls.push(ts);
    return ts.map((t) => Float32Array.from(bag(t)));
  };

  test('dot product (RECOMP) and cosine against hand-computed values; query first, batched', async () => {
    calls.length = 0;
    // query "abc" = a1 b1 c1; "Cab cab." = a2 b2 c2 -> 6; "Xyz a." = a1 x y z -> 1; "Bb." = b2 -> 2.
    const dot = await selectSentences('abc', doc, { scorer: embeddingScorer(embed, { batchSize: 2 }), topK: 3, countTokens: words });
    expect(dot.sentences.map((s) => s.score)).toEqual([6, 1, 2]);
    expect(calls).toEqual([['abc', 'Cab cab.'], ['Xyz a.', 'Bb.']]);
    // cosines: 6 / (sqrt3 * sqrt12) = 1; 1 / (sqrt3 * 2); 2 / (sqrt3 * 2).
    const cos = await selectSentences('abc', doc, { scorer: embeddingScorer(async (ts) => ts.map(bag), { similarity: 'cosine' }), topK: 2, countTokens: words });
    const want = [1, 1 / (2 * Math.sqrt(3)), 1 / Math.sqrt(3)];
    cos.sentences.forEach((s, i) => expect(s.score).toBeCloseTo(want[i]!, 12));
    expect(cos.text).toBe('Cab cab. Bb.');
    // an all-zero vector has cosine 0
    const zero = await embeddingScorer(async (ts) => ts.map(() => [0, 0]), { similarity: 'cosine' }).score('q', [{ text: 's', doc: 0, context: 's' }]);
    expect(Array.from(zero)).toEqual([0]);
  });

  test('hostile callbacks and options give clear errors', async () => {
    const run = (fn: (ts: string[]) => unknown) =>
      selectSentences('abc', doc, { scorer: embeddingScorer(fn as never), topK: 1, countTokens: words });
    await expect(run(async (ts) => ts.map(() => [NaN, 1]))).rejects.toThrow(/embed\(\) result\[0\]\[0\]: expected a finite number, received NaN/);
    await expect(run(async (ts) => ts.slice(1).map(bag))).rejects.toThrow(/expected an array of 4 vectors/);
    await expect(run(async (ts) => ts.map((_, i) => new Array(i === 2 ? 3 : 2).fill(1)))).rejects.toThrow(/embed\(\) result\[2\]: expected a vector of length 2/);
    await expect(run(async () => 'nope')).rejects.toThrow(TypeError);
    await expect(run(async (ts) => ts.map(() => [])) ).rejects.toThrow(/length >= 1/);
    await expect(run(async (ts) => ts.map(() => ({ length: 1, 0: 1 })))).rejects.toThrow(/Float32Array, Float64Array or number\[\]/);
    expect(() => embeddingScorer('x' as never)).toThrow(/embed: expected a function/);
    expect(() => embeddingScorer(embed, { similarity: 'l2' as never })).toThrow(/options\.similarity/);
    expect(() => embeddingScorer(embed, { batchSize: 1 })).toThrow(/options\.batchSize/);
  });
});

describe('yesNoScorer (EXIT)', () => {
  test('P(yes) is the softmax of the two logits, finite at the extremes', () => {
    expect(yesProbability(2, 0)).toBeCloseTo(0.8807970779778823, 15);
    expect(yesProbability(0, 3)).toBeCloseTo(0.04742587317756678, 15);
    expect(yesProbability(1, 1)).toBe(0.5);
    expect(yesProbability(1000, -1000)).toBe(1);
    expect(yesProbability(-1000, 1000)).toBe(0);
  });

  test("EXIT's prompt: query, the sentence's own document as context, the sentence; threshold 0.5 by default", async () => {
    const prompts: string[] = [];
    const logits = async (p: string) => {
      prompts.push(p);
      return p.includes('Sentence:\nParis') ? { yes: 2, no: 0 } : { yes: 0, no: 3 };
    };
    const d = ['  Paris is big. It is old.', 'Rome {sentence} too.'];
    const r = await selectSentences('Where? {context}', d, { scorer: yesNoScorer(logits, { concurrency: 1 }), countTokens: words });
    const want = [0.8807970779778823, 0.04742587317756678, 0.04742587317756678];
    r.sentences.forEach((s, i) => expect(s.score).toBeCloseTo(want[i]!, 15));
    expect(r.text).toBe('Paris is big.');
    expect(prompts[0]).toBe(
      '<start_of_turn>user\nQuery:\nWhere? {context}\nFull context:\nParis is big. It is old.\nSentence:\nParis is big.\n' +
        'Is this sentence useful in answering the query? Answer only "Yes" or "No".<end_of_turn>\n<start_of_turn>model\n',
    );
    expect(prompts[2]).toContain('Full context:\nRome {sentence} too.\nSentence:\nRome {sentence} too.\n'); // inserted text is not re-expanded
    expect(EXIT_TEMPLATE).toContain('{query}');
  });

  test('at most `concurrency` calls in flight; scores in sentence order; a failure starts no new call', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const logits = async (p: string) => {
      calls++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const n = Number(/Sentence:\nS(\d+)/.exec(p)![1]);
      await new Promise((res) => setTimeout(res, (7 - n) % 3));
      inFlight--;
      if (p.includes('S99')) throw new Error('model down');
      return { yes: n, no: 0 };
    };
    const doc = Array.from({ length: 7 }, (_, i) => `S${i}.`).join(' ');
    const scorer = yesNoScorer(logits, { concurrency: 2, template: 'Sentence:\n{sentence}' });
    const r = await selectSentences('q', doc, { scorer, topK: 7, countTokens: words });
    expect(maxInFlight).toBe(2);
    r.sentences.forEach((s, i) => expect(s.score).toBeCloseTo(yesProbability(i, 0), 15));
    calls = 0;
    const bad = 'S1. S99. ' + Array.from({ length: 20 }, (_, i) => `S${i + 2}.`).join(' ');
    await expect(selectSentences('q', bad, { scorer, topK: 1, countTokens: words })).rejects.toThrow('model down');
    await new Promise((res) => setTimeout(res, 20));
    expect(calls).toBeLessThanOrEqual(4);
  });

  test('hostile callbacks and options give clear errors', async () => {
    const run = (fn: (p: string) => unknown) => selectSentences('q', 'A. B.', { scorer: yesNoScorer(fn as never), countTokens: words });
    await expect(run(async () => ({ yes: NaN, no: 0 }))).rejects.toThrow(/logits\(\) result for sentence 0\.yes: expected a finite number/);
    await expect(run(async () => ({ yes: 1 }))).rejects.toThrow(/\.no: expected a number/);
    await expect(run(async () => 5)).rejects.toThrow(TypeError);
    expect(() => yesNoScorer(null as never)).toThrow(/logits: expected a function/);
    expect(() => yesNoScorer(async () => ({ yes: 0, no: 0 }), { template: 'Query: {query}' })).toThrow(/\{sentence\}/);
    expect(() => yesNoScorer(async () => ({ yes: 0, no: 0 }), { concurrency: 0 })).toThrow(/options\.concurrency/);
  });
});
