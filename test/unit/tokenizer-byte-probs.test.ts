// Exact byte-level probabilities (lib/tokenizer/byte-probs.ts) against brute
// force on a tiny byte-level BPE (test/reference/tiny-bpe.ts): every token
// sequence enumerated, non-canonical prefixes masked, summed; equal to 1e-9
// at every prefix of awkward strings (double spaces, the lookahead
// pre-token, a split UTF-8 character, a new pre-token after punctuation).
import { describe, expect, test } from 'vitest';
import { TokenByteProbs } from '../../lib/tokenizer/byte-probs.js';
import { bruteNextByte, hashLm, tinyBpe } from '../reference/tiny-bpe.js';

const MERGES = ['a|b', 'b|c', 'ab|c', ' |a', ' a|b', 'a|a', 'c|a', 'b|a', ' |b', 'aa|b', 'c|c', '.|.', '\xc3|\xa9', ' |\xc3', ' | ', 'ca|b'];
const vocab = tinyBpe(MERGES);
const enc = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

function maxDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const CASES = ['', 'a', 'abc', 'ab ab', 'a  b', 'caab.', 'ba\n c', ' \xc3\xa9a', 'a\xc3', 'cab..', 'b  ', '1a 2'];

describe('TokenByteProbs: exact against brute force', () => {
  test.each(CASES.map((c) => [JSON.stringify(c), c]))('every prefix of %s', (_n, text) => {
    const lm = hashLm(vocab.size, 7);
    const probs = new TokenByteProbs(vocab, lm);
    const bytes = enc(text as string);
    const s = probs.start();
    for (let i = 0; i <= bytes.length; i++) {
      const mine = s.probs();
      const ref = bruteNextByte(vocab, lm, bytes.subarray(0, i));
      expect(maxDiff(mine, ref), `after ${i} bytes`).toBeLessThan(1e-9);
      let sum = 0;
      for (const v of mine) sum += v;
      expect(sum).toBeCloseTo(1, 12);
      if (i < bytes.length) {
        s.push(bytes[i]!);
        expect(s.tokens).toEqual(vocab.encodeBytes(bytes.subarray(0, i + 1)));
      }
    }
  });

  test('a BOS prefix and an LM that reads 2 tokens', () => {
    const lm = hashLm(vocab.size, 3, 2);
    const bos = vocab.size - 1;
    const probs = new TokenByteProbs(vocab, lm, { prefix: [bos] });
    for (const text of ['ab ab', 'aab c']) {
      const bytes = enc(text);
      const s = probs.start();
      for (let i = 0; i <= bytes.length; i++) {
        expect(maxDiff(s.probs(), bruteNextByte(vocab, lm, bytes.subarray(0, i), { prefix: [bos] }))).toBeLessThan(1e-9);
        if (i < bytes.length) s.push(bytes[i]!);
      }
    }
  });

  test('nextByteProbs and clones give the stepper numbers; the memo does not change them', () => {
    const lm = hashLm(vocab.size, 11);
    const a = new TokenByteProbs(vocab, lm);
    const b = new TokenByteProbs(vocab, lm, { maskMemo: 0 });
    const bytes = enc('ab abc');
    const s = a.start();
    s.push(bytes[0]!);
    s.push(bytes[1]!);
    const c = s.clone();
    for (let i = 2; i < bytes.length; i++) {
      s.push(bytes[i]!);
      c.push(bytes[i]!);
      expect(c.probs()).toEqual(s.probs());
      expect(b.nextByteProbs(bytes.subarray(0, i + 1))).toEqual(s.probs());
    }
    expect(a.stats.maskHits).toBeGreaterThan(0);
  });

  test("mask 'none' is a distribution and differs from the exact one", () => {
    const lm = hashLm(vocab.size, 5);
    const fast = new TokenByteProbs(vocab, lm, { mask: 'none' }).nextByteProbs(enc('ab a'));
    const exact = new TokenByteProbs(vocab, lm).nextByteProbs(enc('ab a'));
    let sum = 0;
    for (const v of fast) sum += v;
    expect(sum).toBeCloseTo(1, 12);
    expect(maxDiff(fast, exact)).toBeGreaterThan(1e-6);
  });

  test('an LM that gives 0 to everything yields the uniform row', () => {
    const zero = { vocabSize: vocab.size, nextTokenProbs: () => new Float64Array(vocab.size) };
    const p = new TokenByteProbs(vocab, zero).nextByteProbs(enc('ab'));
    expect(Array.from(p).every((v) => v === 1 / 256)).toBe(true);
  });
});

describe('TokenByteProbs: arguments', () => {
  const lm = hashLm(vocab.size);
  test('bad constructor arguments name themselves', () => {
    expect(() => new TokenByteProbs({} as never, lm)).toThrow(/vocab: expected a TokenVocab/);
    expect(() => new TokenByteProbs(vocab, {} as never)).toThrow(/lm: expected a TokenLm/);
    expect(() => new TokenByteProbs(vocab, hashLm(7))).toThrow(/lm.vocabSize: expected the vocabulary's size/);
    expect(() => new TokenByteProbs(vocab, lm, { mask: 'fast' as never })).toThrow(RangeError);
    expect(() => new TokenByteProbs(vocab, lm, { prefix: [vocab.size] })).toThrow(/options.prefix\[0\]/);
    expect(() => new TokenByteProbs(vocab, lm, { maskMemo: -1 })).toThrow(/options.maskMemo/);
    expect(() => new TokenByteProbs(vocab, lm, { mask_: 'none' } as never)).toThrow(TypeError);
  });
  test('bad bytes and bad LM rows are refused; a failed push leaves the stepper as it was', () => {
    const p = new TokenByteProbs(vocab, lm);
    expect(() => p.nextByteProbs('ab' as never)).toThrow(/bytes: expected a Uint8Array/);
    const s = p.start();
    s.push(97);
    const before = s.probs();
    expect(() => s.push(256)).toThrow(/byte/);
    expect(() => s.push(1.5)).toThrow(/byte/);
    expect(s.length).toBe(1);
    expect(s.probs()).toEqual(before);
    const nan = { vocabSize: vocab.size, nextTokenProbs: () => new Float64Array(vocab.size).fill(NaN) };
    expect(() => new TokenByteProbs(vocab, nan).nextByteProbs(enc('a'))).toThrow(/finite probability/);
    const short = { vocabSize: vocab.size, nextTokenProbs: () => new Float64Array(3) };
    expect(() => new TokenByteProbs(vocab, short).nextByteProbs(enc('a'))).toThrow(/Float64Array of/);
  });
});

describe('TokenByteProbs on cl100k (short strings)', () => {
  test("the stepper's split follows cl100k's pre-tokenizer: its tokens are encodeBytes at every byte; rows are distributions", async () => {
    const { loadVocab } = await import('../../lib/tokenizer/vocab.js');
    const cl = await loadVocab('cl100k');
    const row = hashLm(cl.size, 3).nextTokenProbs([]).slice();
    const lm = { vocabSize: cl.size, maxContext: 0, nextTokenProbs: () => row };
    const probs = new TokenByteProbs(cl, lm, { mask: 'none' });
    const bytes = Uint8Array.from(Buffer.from("It's  12345 the\n\n  end\u00e9!", 'utf8'));
    const s = probs.start();
    for (let i = 0; i < bytes.length; i++) {
      s.push(bytes[i]!);
      expect(s.tokens).toEqual(cl.encodeBytes(bytes.subarray(0, i + 1)));
    }
    let sum = 0;
    for (const v of s.probs()) sum += v;
    expect(sum).toBeCloseTo(1, 12);
  }, 20000);
});
