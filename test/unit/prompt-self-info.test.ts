// Self-information scorers (lib/prompt/self-info.ts) and LLMLingua-1's
// iterative compression (lib/prompt/iterative.ts) with the built-in draft
// byte model: per-byte bits against the model's own log-probabilities
// computed here, unit rules by hand, Selective Context's percentile rule, the
// iterative loop against a replay that conditions on the compressed prefix.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ByteLm } from '../../lib/model/byte-lm.js';
import {
  nanPercentile, phraseSpans, selectiveContext, selfInfoScorer, sentenceSpans, unitSpans, joinKept,
} from '../../lib/prompt/self-info.js';
import { compressIterative, keepByScore } from '../../lib/prompt/iterative.js';

let lm: ByteLm;
beforeAll(async () => { lm = await ByteLm.load('draft', { plain: false }); });
afterAll(async () => { await lm.release(); });

const enc = (s: string) => new TextEncoder().encode(s);
const TEXT = 'ABANDON, v. t. To give up wholly; to forsake. The key is 8351. Ask me again.';

/** -log2 p(byte | everything before it) for `bytes`, after `context`, from one forward of the model. */
async function refBits(context: Uint8Array, bytes: Uint8Array): Promise<number[]> {
  const all = new Uint8Array(context.length + bytes.length);
  all.set(context);
  all.set(bytes, context.length);
  const logits = await lm.session().forward(all);
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const row = Array.from(logits.subarray((context.length + i - 1) * 256, (context.length + i) * 256));
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0));
    out.push((lse - row[bytes[i]!]!) / Math.LN2);
  }
  return out;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('self-information against the model', () => {
  test('word units, document conditioning: the mean bits of each word', async () => {
    const bits = await refBits(enc('\n'), enc(TEXT)); // ASCII: byte i = character i
    const scorer = selfInfoScorer({ model: lm, unit: 'word', conditioning: 'document' });
    const words = await scorer.tokenize(TEXT);
    const got = await scorer.score(TEXT, words);
    expect(words.map((w) => TEXT.slice(w.start, w.end))).toEqual(TEXT.split(' '));
    words.forEach((w, i) => expect(got[i]).toBeCloseTo(mean(bits.slice(w.start, w.end)), 4));
  });

  test('sentence conditioning: each sentence scored from a fresh start', async () => {
    const scorer = selfInfoScorer({ model: lm, unit: 'sentence' });
    const sents = await scorer.tokenize(TEXT);
    expect(sents.map((s) => TEXT.slice(s.start, s.end))).toEqual(['ABANDON, v. t.', 'To give up wholly; to forsake.', 'The key is 8351.', 'Ask me again.']);
    const got = await scorer.score(TEXT, sents);
    for (let i = 0; i < sents.length; i++) {
      const s = TEXT.slice(sents[i]!.start, sents[i]!.end);
      const bits = await refBits(enc('\n'), enc(s));
      const nonSpace = bits.filter((_, j) => s[j] !== ' ');
      expect(got[i]).toBeCloseTo(mean(nonSpace), 4);
    }
  });

  test("'token' units are characters; a multi-byte character scores the sum of its bytes", async () => {
    const text = 'é a€';
    const scorer = selfInfoScorer({ model: lm, unit: 'token', conditioning: 'document', startByte: 32 });
    const toks = await scorer.tokenize(text);
    expect(toks).toEqual([{ start: 0, end: 1 }, { start: 2, end: 3 }, { start: 3, end: 4 }]);
    const bits = await refBits(enc(' '), enc(text));
    const got = await scorer.score(text, toks);
    expect(got[0]).toBeCloseTo(bits[0]! + bits[1]!, 4);
    expect(got[1]).toBeCloseTo(bits[3]!, 4);
    expect(got[2]).toBeCloseTo(bits[4]! + bits[5]! + bits[6]!, 4);
  });

  test('past the context limit the model restarts from the last contextOverlap bytes', async () => {
    const text = TEXT; // 77 bytes; limit 32: the start byte + 31 bytes, then restarts
    const full = await refBits(enc('\n'), enc(text));
    const scorer = selfInfoScorer({ model: lm, unit: 'token', conditioning: 'document', contextLimit: 32, contextOverlap: 8, chunk: 7 });
    const got = await scorer.score(text, await scorer.tokenize(text));
    const nonSpace = [...text].map((c, i) => [c, i] as const).filter(([c]) => c !== ' ').map(([, i]) => i);
    for (let t = 0; t < nonSpace.length; t++) {
      const i = nonSpace[t]!;
      if (i < 31) expect(got[t], `byte ${i}`).toBeCloseTo(full[i]!, 4);
    }
    // Byte 31 is predicted after bytes 23..30 only.
    const t31 = nonSpace.indexOf(31);
    const restart = await refBits(enc(text.slice(23, 31)), enc(text[31]!));
    expect(got[t31]).toBeCloseTo(restart[0]!, 4);
  });
});

describe('units', () => {
  test('phrases approximate merged noun chunks', () => {
    const s = 'The quick brown fox jumps over the lazy dog, and my old cat sleeps.';
    expect(phraseSpans(s).map((p) => s.slice(p.start, p.end))).toEqual(
      ['The quick brown fox jumps', 'over', 'the lazy dog', ',', 'and', 'my old cat sleeps', '.'],
    );
  });

  test('sentences are trimmed Intl.Segmenter segments; blank ones dropped', () => {
    const s = '  One two.  Three?\n\n\nFour  ';
    expect(sentenceSpans(s).map((p) => s.slice(p.start, p.end))).toEqual(['One two.', 'Three?', 'Four']);
  });

  test('token units skip whitespace and keep surrogate pairs whole', () => {
    expect(unitSpans('a 😀b', 'token')).toEqual([{ start: 0, end: 1 }, { start: 2, end: 4 }, { start: 4, end: 5 }]);
    expect(unitSpans('', 'word')).toEqual([]);
  });

  test('numpy nanpercentile (linear)', () => {
    expect(nanPercentile([4, 1, 3, 2], 35)).toBeCloseTo(2.05, 12);
    expect(nanPercentile([NaN, 5, 1], 50)).toBe(3);
    expect(nanPercentile([], 50)).toBeNaN();
  });

  test('joinKept: no gap, a space, or a newline', () => {
    const t = 'ab cd\n\nef gh';
    expect(joinKept(t, [{ start: 0, end: 1 }, { start: 1, end: 2 }, { start: 3, end: 5 }, { start: 7, end: 9 }, { start: 11, end: 12 }])).toBe('ab cd\nef h');
  });
});

describe('selectiveContext', () => {
  test('drops the units below the reduceRatio percentile of their scores', async () => {
    const scorer = selfInfoScorer({ model: lm, unit: 'phrase' });
    const units = await scorer.tokenize(TEXT);
    const scores = Array.from(await scorer.score(TEXT, units));
    const sorted = [...scores].sort((a, b) => a - b);
    const pos = 0.35 * (sorted.length - 1);
    const thr = sorted[Math.floor(pos)]! + (sorted[Math.ceil(pos)]! - sorted[Math.floor(pos)]!) * (pos - Math.floor(pos));
    const keptUnits = units.filter((_, i) => scores[i]! >= thr);
    const r = await selectiveContext(TEXT, { model: lm });
    expect(r.text).toBe(joinKept(TEXT, keptUnits));
    const dropped = units.length - keptUnits.length;
    expect(dropped).toBeGreaterThanOrEqual(Math.floor(0.35 * (units.length - 1)));
    expect(dropped).toBeLessThanOrEqual(Math.ceil(0.35 * (units.length - 1)));
    expect(r.compressedTokens).toBeLessThan(r.originalTokens);
    expect(r.rate).toBeCloseTo(r.compressedTokens / r.originalTokens, 12);
    const all = await selectiveContext(TEXT, { model: lm, reduceRatio: 0, unit: 'word', countTokens: (s) => s.length });
    expect(all.text).toBe(TEXT);
    expect(all.kept.length).toBe(TEXT.split(' ').length);
    expect(all.originalTokens).toBe(TEXT.length);
  });

  test('hostile inputs', async () => {
    await expect(selectiveContext(5 as never)).rejects.toThrow(/text: expected a string/);
    await expect(selectiveContext('a', { reduceRatio: 2 })).rejects.toThrow(/options.reduceRatio/);
    await expect(selectiveContext('a', { unit: 'para' as never })).rejects.toThrow(/options.unit/);
    await expect(selectiveContext('a', { countTokens: 3 as never })).rejects.toThrow(/options.countTokens/);
    await expect(selectiveContext('a b', { model: lm, countTokens: () => -1 })).rejects.toThrow(/countTokens/);
    expect(() => selfInfoScorer({ conditioning: 'paragraph' as never })).toThrow(/options.conditioning/);
    expect(() => selfInfoScorer({ mdoel: 'main' } as never)).toThrow(/did you mean "model"/);
    expect(() => selfInfoScorer({ model: 'big' as never })).toThrow(/options.model/);
    const scorer = selfInfoScorer({ model: lm });
    await expect(scorer.score('abc', [{ start: 2, end: 1 }])).rejects.toThrow(/tokens\[0\]/);
    await expect(scorer.score('abc', [{ start: 0, end: 9 }])).rejects.toThrow(RangeError);
  });
});

describe('compressIterative (LLMLingua-1)', () => {
  const DOC = 'ABANDON, v. t. To give up wholly; to forsake utterly.\n\nThe key is 8351. Remember the key well.\n\nQ: What is the key? A: the key is 8351.';

  test('keepByScore: forced units first, then by score while nearer the target', () => {
    expect(keepByScore([2, 2, 2, 2], [1, 4, 3, 2], [false, false, false, false], 4)).toEqual([false, true, true, false]);
    expect(keepByScore([2, 2, 2, 2], [1, 4, 3, 2], [true, false, false, false], 4)).toEqual([true, true, false, false]);
    expect(keepByScore([1, 1], [5, 5], [false, false], 1)).toEqual([true, false]); // ties: the earlier first
    expect(keepByScore([3], [1], [false], 1.4)).toEqual([false]); // 0 is nearer 1.4 than 3
  });

  test('the loop = a replay conditioned on the compressed prefix', async () => {
    const size = 60;
    const r = await compressIterative(DOC, { model: lm, rate: 0.5, iterativeSize: size, countTokens: (s) => s.length });
    // Replay: units are whitespace + word; segments close at the unit reaching `size` bytes.
    const units = [...DOC.matchAll(/\s*\S+/g)].map((m) => ({ start: m.index!, end: m.index! + m[0].length }));
    const segs: typeof units[] = [[]];
    let bytes = 0;
    for (const u of units) {
      segs[segs.length - 1]!.push(u);
      bytes += u.end - u.start;
      if (bytes >= size) { segs.push([]); bytes = 0; }
    }
    if (segs[segs.length - 1]!.length === 0) segs.pop();
    let prefix = '';
    const kept: typeof units = [];
    for (const seg of segs) {
      const segText = DOC.slice(seg[0]!.start, seg[seg.length - 1]!.end);
      const bits = await refBits(enc(`\n${prefix}`), enc(segText));
      const scores = seg.map((u) => mean(bits.slice(u.start - seg[0]!.start, u.end - seg[0]!.start)));
      const keep = keepByScore(seg.map((u) => u.end - u.start), scores, seg.map(() => false), 0.5 * segText.length);
      seg.forEach((u, i) => { if (keep[i]) { kept.push(u); prefix += DOC.slice(u.start, u.end); } });
    }
    expect(segs.length).toBeGreaterThan(1);
    expect(r.text).toBe(prefix);
    expect(r.rate).toBeGreaterThan(0.4);
    expect(r.rate).toBeLessThan(0.6);
  });

  test('keepSplit keeps every "\\n\\n"; deterministic; rate 1 keeps everything', async () => {
    const a = await compressIterative(DOC, { model: lm, rate: 0.3, iterativeSize: 50, keepSplit: true });
    expect(a.text.split('\n\n').length).toBe(3);
    const b = await compressIterative(DOC, { model: lm, rate: 0.3, iterativeSize: 50, keepSplit: true });
    expect(b).toEqual(a);
    const c = await compressIterative(DOC, { model: lm, rate: 0.3, iterativeSize: 50, unit: 'char', keepSplit: true });
    expect(c.text.split('\n\n').length).toBe(3);
    const kb = new TextEncoder().encode(c.text).length;
    expect(kb / DOC.length).toBeGreaterThan(0.25);
    expect(kb / DOC.length).toBeLessThan(0.4);
    const all = await compressIterative(DOC, { model: lm, rate: 1, iterativeSize: 50 });
    expect(all.text).toBe(DOC);
    expect(all.kept).toEqual([{ start: 0, end: DOC.length }]);
    expect((await compressIterative('', { model: lm })).text).toBe('');
    // A context limit below the compressed prefix: old cache entries go (10 sinks + the newest), the loop goes on.
    const small = await compressIterative(DOC, { model: lm, rate: 0.5, iterativeSize: 20, contextLimit: 64 });
    expect(small.text.length).toBeGreaterThan(0.35 * DOC.length);
    expect(small.text.length).toBeLessThan(0.65 * DOC.length);
  });

  test('progress, abort and hostile inputs', async () => {
    const seen: number[] = [];
    await compressIterative(DOC, { model: lm, iterativeSize: 50, onProgress: (d, t) => { expect(t).toBe(DOC.length); seen.push(d); } });
    expect(seen[seen.length - 1]).toBe(DOC.length);
    expect(seen.length).toBeGreaterThan(1);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(compressIterative(DOC, { model: lm, signal: ac.signal })).rejects.toThrow('stop');
    await expect(compressIterative(DOC, { rate: 0 })).rejects.toThrow(/options.rate/);
    await expect(compressIterative(DOC, { iterativeSize: 4096 })).rejects.toThrow(/options.iterativeSize/);
    await expect(compressIterative(DOC, { unit: 'byte' as never })).rejects.toThrow(/options.unit/);
    await expect(compressIterative(DOC, { signal: {} as never })).rejects.toThrow(/options.signal/);
    await expect(compressIterative(DOC, { onProgress: 1 as never })).rejects.toThrow(TypeError);
  });
});
