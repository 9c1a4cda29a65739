// Exact byte-level probabilities (lib/tokenizer/byte-probs.ts) against brute
// force on a tiny byte-level BPE (test/reference/tiny-bpe.ts): every token
// sequence enumerated, non-canonical prefixes masked, summed; equal to 1e-9
// at every prefix of awkward strings (double spaces, the lookahead
// pre-token, a split UTF-8 character, a new pre-token after punctuation).
import { describe, expect, test } from 'vitest';
import { TokenByteProbs } from '../../lib/tokenizer/byte-probs.js';
import { ByteBpeVocab } from '../../lib/tokenizer/byte-bpe-vocab.js';
import type { TokenVocab } from '../../lib/tokenizer/types.js';
import { PRETOKEN, bruteNextByte, hashLm, refCanonicalPrefix, tinyBpe } from '../reference/tiny-bpe.js';

const MERGES = ['a|b', 'b|c', 'ab|c', ' |a', ' a|b', 'a|a', 'c|a', 'b|a', ' |b', 'aa|b', 'c|c', '.|.', '\xc3|\xa9', ' |\xc3', ' | ', 'ca|b', '  | '];
const vocab = tinyBpe(MERGES);
/** The same BPE as a ByteBpeVocab (native merges, UTF-8 regex): the rows take the fast path there. */
function tinyNative(): ByteBpeVocab {
  const tokens: Uint8Array[] = [];
  for (let id = 0; id < vocab.size - 1; id++) tokens.push(vocab.tokenBytes(id));
  const pairs: number[] = [];
  for (const m of MERGES) {
    const [l, r] = m.split('|') as [string, string];
    pairs.push(vocab.idOf(Buffer.from(l, 'latin1')), vocab.idOf(Buffer.from(r, 'latin1')));
  }
  return new ByteBpeVocab({ name: 'tiny-native', tokens, specials: [['<|end|>', vocab.size - 1]], patterns: [PRETOKEN.source], merges: Int32Array.from(pairs) });
}
const native = tinyNative();
const memos = new Map<TokenVocab, Map<string, boolean>>([[vocab, new Map()], [native, new Map()]]);
const enc = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

function maxDiff(a: Float64Array, b: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const CASES = ['', 'a', 'abc', 'ab ab', 'a  b', 'caab.', 'ba\n c', ' \xc3\xa9a', 'a\xc3', 'cab..', '1a 2', 'a  1', 'b    .1', ' \n  \n1'];
// The ByteBpeVocab merges an invalid UTF-8 tail with the last pre-token AND
// the all-space tokens before it (tiktoken's _increase_last_piece_token_len),
// across the split the stepper assumes: a token such as 0x80 after "a  1"
// (global [a, " "]) is judged on the local bytes only (documented limitation).
// Those cases run on the TS vocab, which has no tail rule.
const NATIVE_CASES = ['ab ab', 'b  ', '1a 2'];

describe('TokenByteProbs: exact against brute force', () => {
  test.each([
    ...CASES.map((c) => ['tiny (TS vocab, full checks)', JSON.stringify(c), vocab, c] as const),
    ...NATIVE_CASES.map((c) => ['tiny-native (ByteBpeVocab, fast rows)', JSON.stringify(c), native, c] as const),
  ])('%s: every prefix of %s', (_v, _n, voc, text) => {
    const lm = hashLm(voc.size, 7);
    const probs = new TokenByteProbs(voc, lm);
    const bytes = enc(text);
    const s = probs.start();
    for (let i = 0; i <= bytes.length; i++) {
      const mine = s.probs();
      const ref = bruteNextByte(voc, lm, bytes.subarray(0, i), { memo: memos.get(voc)! });
      expect(maxDiff(mine, ref), `after ${i} bytes`).toBeLessThan(1e-9);
      let sum = 0;
      for (const v of mine) sum += v;
      expect(sum).toBeCloseTo(1, 12);
      if (i < bytes.length) {
        s.push(bytes[i]!);
        expect(s.tokens).toEqual(voc.encodeBytes(bytes.subarray(0, i + 1)));
      }
    }
  });

  test('the look-ahead case: "a  " then "1" is [a, " ", " ", "1"]; the old "is canonical" mask gives "1" probability 0', () => {
    const lm = hashLm(vocab.size, 7);
    const x = enc('a  ');
    expect(vocab.encodeBytes(enc('a  1')).map((t) => Buffer.from(vocab.tokenBytes(t)).toString('latin1'))).toEqual(['a', ' ', ' ', '1']);
    const old = bruteNextByte(vocab, lm, x, { mask: 'canonical' });
    const ref = bruteNextByte(vocab, lm, x, { memo: memos.get(vocab)! });
    expect(old[0x31]).toBe(0);
    expect(ref[0x31]).toBeGreaterThan(1e-6);
    for (const voc of [vocab, native]) {
      const s = new TokenByteProbs(voc, hashLm(voc.size, 7)).start();
      for (const b of x) s.push(b);
      expect(s.exactStates).toBe(2); // [a, "  "] and [a, " ", " "]
      const want = voc === vocab ? ref : bruteNextByte(voc, hashLm(voc.size, 7), x, { memo: memos.get(voc)! });
      expect(maxDiff(s.probs(), want)).toBeLessThan(1e-9);
      expect(s.probs()[0x31]).toBeGreaterThan(1e-6);
    }
  });

  test('fast mask rows (ByteBpeVocab) equal the definition token by token', async () => {
    const { canonicalPrefixCheck } = await import('../../lib/tokenizer/canonical-prefix.js');
    const probs = new TokenByteProbs(native, hashLm(native.size));
    for (const text of ['', ' ab', '   ', '1']) {
      const b = enc(text);
      const base = native.encodeBytes(b);
      const locals = [base];
      if (text === '   ') locals.push([native.idOf(enc('  ')), native.idOf(enc(' '))]);
      for (const local of locals) {
        const row = probs.maskRow(local);
        for (let t = 0; t < native.size; t++) {
          const want = native.isSpecial(t) ? 0 : canonicalPrefixCheck(native, local, t) ? 1 : 0;
          expect(row[t], `${JSON.stringify(text)} ${local} + ${t}`).toBe(want);
        }
      }
    }
  });

  test('a BOS prefix and an LM that reads 2 tokens', () => {
    const lm = hashLm(vocab.size, 3, 2);
    const bos = vocab.size - 1;
    const probs = new TokenByteProbs(vocab, lm, { prefix: [bos] });
    for (const text of ['ab ab', 'aab c', 'b  1']) {
      const bytes = enc(text);
      const s = probs.start();
      for (let i = 0; i <= bytes.length; i++) {
        expect(maxDiff(s.probs(), bruteNextByte(vocab, lm, bytes.subarray(0, i), { prefix: [bos], memo: memos.get(vocab)! }))).toBeLessThan(1e-9);
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

  test('the unnormalized byte chain telescopes to the token-level code length', () => {
    const lm = hashLm(vocab.size, 17, 2);
    const probs = new TokenByteProbs(vocab, lm);
    for (const text of ['ab abc cab.', 'b  a\n1a2', ' \xc3\xa9ab', 'a   1 b  .']) {
      const bytes = enc(text);
      const s = probs.start();
      let bits = 0;
      for (const b of bytes) {
        const row = s.probs();
        bits -= Math.log2(row[b]! * s.lastMass);
        s.push(b);
      }
      bits -= Math.log2(s.exactShare);
      const tokens = vocab.encodeBytes(bytes);
      let want = 0;
      for (let i = 0; i < tokens.length; i++) want -= Math.log2(lm.nextTokenProbs(tokens.slice(Math.max(0, i - 2), i))[tokens[i]!]!);
      expect(bits).toBeCloseTo(want, 9);
    }
  });

  test('renormalize: rows sum to 1 before normalization, and the byte chain is the renormalized token-level code length', () => {
    const lm = hashLm(vocab.size, 19, 2);
    const probs = new TokenByteProbs(vocab, lm, { renormalize: true });
    const memo = memos.get(vocab)!;
    for (const text of ['ab  1 c', 'b \n a']) {
      const bytes = enc(text);
      const s = probs.start();
      let bits = 0;
      for (const b of bytes) {
        const row = s.probs();
        expect(s.lastMass).toBeCloseTo(1, 12);
        bits -= Math.log2(row[b]!);
        s.push(b);
      }
      bits -= Math.log2(s.exactShare);
      const tokens = vocab.encodeBytes(bytes);
      let want = 0;
      for (let i = 0; i < tokens.length; i++) {
        const row = lm.nextTokenProbs(tokens.slice(Math.max(0, i - 2), i)).slice();
        let valid = 0;
        for (let t = 0; t < vocab.size; t++) if (!vocab.isSpecial(t) && refCanonicalPrefix(vocab, memo, [...tokens.slice(0, i), t])) valid += row[t]!;
        want -= Math.log2(row[tokens[i]!]! / valid);
      }
      expect(bits).toBeCloseTo(want, 9);
    }
  });

  test('validMass is the LM mass on the masked-in next tokens', () => {
    const lm = hashLm(vocab.size, 13);
    const s = new TokenByteProbs(vocab, lm).start();
    for (const b of enc('ab a')) s.push(b);
    const row = lm.nextTokenProbs(s.tokens).slice();
    let want = 0;
    for (let t = 0; t < vocab.size; t++) if (!vocab.isSpecial(t) && refCanonicalPrefix(vocab, memos.get(vocab)!, [...s.tokens, t])) want += row[t]!;
    expect(s.validMass()).toBeCloseTo(want, 12);
    expect(want).toBeLessThan(1);
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
    expect(() => new TokenByteProbs(vocab, lm, { renormalize: 1 as never })).toThrow(/options.renormalize/);
    expect(() => new TokenByteProbs(vocab, lm, { mask_: 'none' } as never)).toThrow(TypeError);
  });
  test('isCanonicalPrefix: the look-ahead prefix is one, a crossing sequence is not; bad arguments name themselves', async () => {
    const { isCanonicalPrefix } = await import('../../lib/tokenizer/canonical-prefix.js');
    const id = (t: string): number => vocab.idOf(enc(t));
    expect(vocab.isCanonical([id('a'), id(' '), id(' ')])).toBe(false);
    expect(isCanonicalPrefix(vocab, [id('a'), id(' '), id(' ')])).toBe(true);
    expect(isCanonicalPrefix(vocab, [id('a'), id('b')])).toBe(false);
    expect(() => isCanonicalPrefix({} as never, [])).toThrow(/vocab: expected a TokenVocab/);
    expect(() => isCanonicalPrefix(vocab, 'ab' as never)).toThrow(/ids: expected an array/);
    expect(() => isCanonicalPrefix(vocab, [0, vocab.size])).toThrow(/ids\[1\]/);
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
  }, 60000);
});
