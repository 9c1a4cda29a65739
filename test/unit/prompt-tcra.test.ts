// TCRA-LLM semantic compression (lib/prompt/tcra.ts) on toy embedders whose
// deletion order is known by hand, against a naive reference that re-embeds
// everything every step, and with hostile callbacks.
import { describe, expect, test } from 'vitest';
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import { semanticCompress, splitSentences } from '../../lib/index.js';

const words = (t: string) => (t.match(/\S+/g) ?? []).length;

/**
 * Word-weight embedding: each known word is its own axis with a weight, so a
 * sentence with weights w has |e|^2 = sum w^2, and deleting a word of weight
 * x leaves cos = sqrt((S - x^2) / S): the lightest word goes first.
 */
const WEIGHTS: Record<string, number> = { alpha: 1, bravo: 2, charlie: 3, delta: 4 };
const AXES = Object.keys(WEIGHTS);
const weighted = (t: string): number[] => {
  const v = AXES.map(() => 0);
  for (const w of t.toLowerCase().match(/[a-z]+/g) ?? []) {
    const i = AXES.indexOf(w);
    if (i >= 0) v[i]! += WEIGHTS[w]!;
  }
  return v;
};

function recording(embedder: (t: string) => number[]) {
  const calls: string[][] = [];
  const embed = async (ts: string[]) => {
    calls.push(ts);
    return ts.map(embedder);
  };
  return { calls, embed };
}

describe('semanticCompress (TCRA-LLM)', () => {
  test('one sentence: lightest words go first until the floor; one embed call per step', async () => {
    const { calls, embed } = recording(weighted);
    const text = 'delta alpha charlie bravo.';
    // S = 30: -alpha -> sqrt(29/30) = 0.983; -bravo -> sqrt(25/30) = 0.913; -charlie next -> sqrt(16/30) = 0.730 < 0.9.
    const r = await semanticCompress(text, { embed, similarityFloor: 0.9, countTokens: words });
    expect(r.text).toBe('delta charlie');
    expect(r.kept).toEqual([{ start: 0, end: 5 }, { start: 12, end: 19 }]);
    expect(r.similarity).toBeCloseTo(Math.sqrt(25 / 30), 12);
    expect(r.sentences).toEqual([{ span: { start: 0, end: 26 }, similarity: r.similarity }]);
    expect(r.stop).toBe('floor');
    expect(r).toMatchObject({ originalTokens: 4, compressedTokens: 2, rate: 0.5, embedCalls: 4 });
    expect(calls.map((c) => c.length)).toEqual([1, 4, 3, 2]); // originals, then one batch of candidates per step
    expect(calls[0]).toEqual([text]);
    expect(calls[1]).toEqual(['alpha charlie bravo.', 'delta charlie bravo.', 'delta alpha bravo.', 'delta alpha charlie']);
    expect(calls[3]).toEqual(['charlie', 'delta']);
  });

  test('a floor just above a step stops before it; a word off every axis goes at no cost', async () => {
    const { embed } = recording(weighted);
    const r = await semanticCompress('delta alpha charlie bravo.', { embed, similarityFloor: Math.sqrt(25 / 30) + 1e-9, countTokens: words });
    expect(r.text).toBe('delta charlie bravo.');
    // "zulu" has no axis: deleting it keeps the embedding (cos 1, up to rounding); then -alpha gives 0.894.
    const z = await semanticCompress('alpha zulu bravo', { embed, similarityFloor: 0.999999, countTokens: words });
    expect(z.text).toBe('alpha bravo');
    expect(z.stop).toBe('floor');
  });

  test('several sentences with a token target: the least harmful deletion over all sentences goes first', async () => {
    const { calls, embed } = recording(weighted);
    const text = 'Alpha delta. Bravo charlie.';
    // s1: -alpha -> 4/sqrt17 = 0.970; s2: -bravo -> 3/sqrt13 = 0.832. Target 3 words: one deletion, from s1.
    const r3 = await semanticCompress(text, { embed, targetTokens: 3, countTokens: words });
    expect(splitSentences(text)).toHaveLength(2);
    expect(r3.text).toBe('delta. Bravo charlie.');
    expect(r3.kept).toEqual([{ start: 6, end: 27 }]); // one run across the sentence boundary
    expect(r3.stop).toBe('target');
    expect(r3.sentences.map((s) => s.similarity)).toEqual([expect.closeTo(4 / Math.sqrt(17), 12), 1]);
    expect(calls.map((c) => c.length)).toEqual([2, 4]);
    // Target 2: s1 is down to one word, so s2 gives up "Bravo"; similarity is the lowest sentence's.
    const r2 = await semanticCompress(text, { embed, targetRate: 0.5, countTokens: words });
    expect(r2.text).toBe('delta. charlie.');
    expect(r2.similarity).toBeCloseTo(3 / Math.sqrt(13), 12);
    // Target 1 cannot be met: a sentence keeps its last word.
    const r1 = await semanticCompress(text, { embed, targetTokens: 1, countTokens: words });
    expect(r1.text).toBe('delta. charlie.');
    expect(r1.stop).toBe('exhausted');
    // Already short enough: nothing embedded.
    const r0 = await semanticCompress(text, { embed: async () => { throw new Error('not called'); }, targetTokens: 4, countTokens: words });
    expect(r0).toMatchObject({ text, stop: 'target', embedCalls: 0, similarity: 1 });
  });

  test('matches a naive reference (re-embed everything each step, sentence by sentence) on a bag-of-letters embedder', async () => {
    const bag = (t: string) => {
      const v = new Array<number>(26).fill(0);
      for (const ch of t.toLowerCase()) {
        const i = ch.charCodeAt(0) - 97;
        if (i >= 0 && i < 26) v[i]!++;
      }
      return v;
    };
    const cos = (a: number[], b: number[]) => {
      const d = a.reduce((s, x, i) => s + x * b[i]!, 0);
      const n = Math.sqrt(a.reduce((s, x) => s + x * x, 0) * b.reduce((s, x) => s + x * x, 0));
      return n === 0 ? 0 : d / n;
    };
    const text = 'The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs!\nSphinx of black quartz, judge my vow.';
    const floor = 0.93;
    // Reference: per sentence, delete the best word while it stays >= floor (floor only: sentences are independent).
    const ref = splitSentences(text).map((s) => {
      const original = text.slice(s.start, s.end);
      let ws = original.split(/\s+/);
      for (;;) {
        if (ws.length < 2) break;
        const sims = ws.map((_, i) => cos(bag(ws.filter((_, j) => j !== i).join(' ')), bag(original)));
        const best = sims.indexOf(Math.max(...sims));
        if (sims[best]! < floor) break;
        ws = ws.filter((_, j) => j !== best);
      }
      return ws.join(' ');
    });
    const r = await semanticCompress(text, { embed: async (ts) => ts.map(bag), similarityFloor: floor, countTokens: words });
    expect(r.text.split(/\s+/)).toEqual(ref.join(' ').split(/\s+/));
    expect(r.compressedTokens).toBeLessThan(r.originalTokens);
    expect(r.similarity).toBeGreaterThanOrEqual(floor);
    for (const k of r.kept) expect(text.slice(k.start, k.end)).toMatch(/^\S(.*\S)?$/s);
  });

  test('default counter is cl100k; empty text and one-word sentences make no embed call', async () => {
    const { embed, calls } = recording(weighted);
    const text = 'alpha bravo charlie delta alpha bravo charlie delta.';
    const r = await semanticCompress(text, { embed, targetRate: 0.5 });
    expect(r.originalTokens).toBe(cl100kCount(text));
    expect(r.compressedTokens).toBe(cl100kCount(r.text));
    expect(r.compressedTokens).toBeLessThanOrEqual(0.5 * r.originalTokens);
    calls.length = 0;
    expect(await semanticCompress('', { embed, similarityFloor: 0.5 })).toMatchObject({ text: '', kept: [], rate: 1, stop: 'exhausted', embedCalls: 0 });
    expect(await semanticCompress(' Alpha. Bravo! ', { embed, similarityFloor: 0.5, countTokens: words })).toMatchObject({ text: 'Alpha. Bravo!', kept: [{ start: 1, end: 14 }] });
    expect(calls).toEqual([]);
  });

  test('hostile arguments and callbacks give clear errors', async () => {
    const ok = { embed: async (ts: string[]) => ts.map(weighted), countTokens: words };
    const text = 'alpha bravo charlie.';
    await expect(semanticCompress(text, { ...ok })).rejects.toThrow(/at least one of similarityFloor, targetTokens, targetRate/);
    await expect(semanticCompress(text, undefined as never)).rejects.toThrow(TypeError);
    await expect(semanticCompress(5 as never, { ...ok, similarityFloor: 0.5 })).rejects.toThrow(/text: expected a string/);
    await expect(semanticCompress(text, { ...ok, similarityFloor: 1.5 })).rejects.toThrow(/options\.similarityFloor: expected a number in \[-1, 1\]/);
    await expect(semanticCompress(text, { ...ok, similarityFloor: NaN })).rejects.toThrow(RangeError);
    await expect(semanticCompress(text, { ...ok, targetRate: 0 })).rejects.toThrow(/options\.targetRate/);
    await expect(semanticCompress(text, { ...ok, targetTokens: 2.5 })).rejects.toThrow(/options\.targetTokens/);
    await expect(semanticCompress(text, { ...ok, targetTokens: 2, targetRate: 0.5 })).rejects.toThrow(/not both/);
    await expect(semanticCompress(text, { ...ok, similarityFlor: 0.5 } as never)).rejects.toThrow(/did you mean "similarityFloor"/);
    await expect(semanticCompress(text, { embed: 'x' as never, similarityFloor: 0.5 })).rejects.toThrow(/options\.embed: expected a function/);
    const run = (fn: (ts: string[]) => unknown) => semanticCompress(text, { embed: fn as never, similarityFloor: 0.5, countTokens: words });
    await expect(run(async (ts) => ts.map(() => [NaN]))).rejects.toThrow(/options\.embed\(\) result\[0\]\[0\]: expected a finite number/);
    await expect(run(async () => [])).rejects.toThrow(/expected an array of 1 vectors/);
    let n = 0;
    await expect(run(async (ts) => ts.map(() => new Array(n++ === 0 ? 4 : 3).fill(1)))).rejects.toThrow(/expected a vector of length 4/);
    await expect(semanticCompress(text, { ...ok, targetTokens: 1, countTokens: () => NaN })).rejects.toThrow(/countTokens\(\) result/);
  });
});
