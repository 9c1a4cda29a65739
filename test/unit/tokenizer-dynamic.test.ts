/**
 * Dynamic tokenization (lib/tokenizer/dynamic.ts, native/text/dynamic_bpe.cpp)
 * against the official loop written out slowly (test/reference/dynamic-bpe.ts)
 * on a toy byte vocabulary: random batches full of ties and overlaps, the
 * awkward batches (empty, length 1, "aaaa"), the pair rules one by one, the
 * maps back to base tokens, the stop options and the argument checks.
 */
import { describe, expect, it } from 'vitest';
import { DYNAMIC_BOUNDARIES, DYNAMIC_DEFAULTS, dynamicTokenize, loadVocab, meanOfPiecesEmbeddings, type DynamicBoundary, type DynamicVocab } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { referenceDynamicBpe, referenceIsValidPair } from '../reference/dynamic-bpe.js';
import { mulberry32, randomInt } from '../reference/random.js';
import { ids, TOY_SPECIAL, toyPretokenCount, toyVocab } from './tokenizer-dynamic-toy.js';

const WS = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
/** Whitespace-split piece count, char by char (independent of the library's regex split). */
function wordCount(text: string): number {
  let n = 0;
  let inWord = false;
  for (const c of text) {
    const ws = WS.test(c);
    if (!ws && !inWord) n++;
    inWord = !ws;
  }
  return n;
}

/** The official is_valid_pair, memoized as the official code does (lru_cache). */
function referenceRule(vocab: DynamicVocab, boundary: DynamicBoundary, bytesOf: (id: number) => Uint8Array,
  pretokens: (text: string, bytes: Uint8Array) => number = (text) => toyPretokenCount(text)) {
  const memo = new Map<string, boolean>();
  return (a: number, b: number) => {
    const k = `${a},${b}`;
    let v = memo.get(k);
    if (v === undefined) memo.set(k, (v = rule(a, b)));
    return v;
  };
  function rule(a: number, b: number): boolean {
    return referenceIsValidPair(bytesOf(a), bytesOf(b), a < vocab.size && vocab.isSpecial(a), b < vocab.size && vocab.isSpecial(b), boundary,
      (text, bytes) => (boundary === 'pretoken' ? pretokens(text, bytes) : wordCount(text)));
  }
}

/** The reference on the same batch; bytes of new ids follow the reference's own merges. */
function reference(batch: number[][], vocab: DynamicVocab, boundary: DynamicBoundary, maxMerges: number,
  opts: { targetTotal?: number; minCount?: number } = {}, pretokens?: (text: string, bytes: Uint8Array) => number) {
  const extra: Uint8Array[] = [];
  const bytesOf = (id: number) => (id < vocab.size ? vocab.tokenBytes(id) : extra[id - vocab.size]!);
  const rule = referenceRule(vocab, boundary, bytesOf, pretokens);
  return referenceDynamicBpe(batch, rule, vocab.size, maxMerges, {
    ...opts,
    onMerge: (a, b) => extra.push(new Uint8Array([...bytesOf(a), ...bytesOf(b)])),
  });
}

const ALPHABET = [...ids('ab .\n\t'), 0xc3, 0xa9, 256, 257, 258, 259, 260, 261, TOY_SPECIAL];

function randomBatch(seed: number): number[][] {
  const rng = mulberry32(seed);
  const nSeq = randomInt(rng, 0, 5);
  return Array.from({ length: nSeq }, () => Array.from({ length: randomInt(rng, 0, 24) }, () => ALPHABET[randomInt(rng, 0, ALPHABET.length - 1)]!));
}

function asPlain(r: ReturnType<typeof dynamicTokenize>) {
  return {
    sequences: r.sequences.map((s) => [...s]),
    starts: r.starts.map((s) => [...s]),
    merges: r.merges.map((m) => ({ ...m })),
  };
}

describe('dynamicTokenize against the official loop', () => {
  for (const boundary of ['pretoken', 'word', 'sentence'] as const) {
    it(`random batches, boundary '${boundary}'`, () => {
      const vocab = toyVocab();
      for (let seed = 1; seed <= 40; seed++) {
        const batch = randomBatch(seed * 7 + boundary.length);
        const maxMerges = seed % 5 === 0 ? 3 : 60;
        const got = asPlain(dynamicTokenize(batch, vocab, { boundary, maxMerges }));
        const want = reference(batch, vocab, boundary, maxMerges);
        expect(got, `seed ${seed}`).toEqual(want);
      }
    });
  }

  it('longer batches over a small alphabet (many merges, ties and stale heap entries)', () => {
    const vocab = toyVocab();
    const rng = mulberry32(77);
    const small = [...ids('ab a'), 0xc3, 0xa9];
    const batch = [300, 1, 0, 257, 120].map((n) => Array.from({ length: n }, () => small[randomInt(rng, 0, small.length - 1)]!));
    for (const boundary of ['sentence', 'pretoken'] as const) {
      expect(asPlain(dynamicTokenize(batch, vocab, { boundary, maxMerges: 150 }))).toEqual(reference(batch, vocab, boundary, 150));
    }
  });

  it('awkward batches: none, empty sequences, length 1', () => {
    const vocab = toyVocab();
    expect(asPlain(dynamicTokenize([], vocab))).toEqual({ sequences: [], starts: [], merges: [] });
    const r = dynamicTokenize([[], [97], []], vocab);
    expect(asPlain(r)).toEqual({ sequences: [[], [97], []], starts: [[], [0], []], merges: [] });
    expect([r.baseLength, r.length]).toEqual([1, 1]);
  });

  it('overlaps merge left to right: "aaa" -> X a, "aaaa" -> X X; count counts overlaps, applied does not', () => {
    const vocab = toyVocab();
    const X = vocab.size;
    const r = dynamicTokenize([ids('aaa'), ids('aaaa')], vocab, { maxMerges: 1 });
    expect(r.sequences.map((s) => [...s])).toEqual([[X, 97], [X, X]]);
    expect(r.merges).toEqual([{ a: 97, b: 97, id: X, count: 5, applied: 3 }]);
    expect(r.starts.map((s) => [...s])).toEqual([[0, 2], [0, 2]]);
    const r2 = dynamicTokenize([ids('aaaa')], vocab, { maxMerges: 2 });
    expect(r2.sequences.map((s) => [...s])).toEqual([[X + 1]]);
    expect(r2.merges[1]).toEqual({ a: X, b: X, id: X + 1, count: 1, applied: 1 });
  });

  it('ties go to the pair that occurs first in the batch', () => {
    const vocab = toyVocab();
    const X = vocab.size;
    expect(dynamicTokenize([ids('cd'), ids('ab')], vocab, { maxMerges: 1 }).merges[0]).toMatchObject({ a: 99, b: 100, id: X });
    expect(dynamicTokenize([ids('ab'), ids('cd')], vocab, { maxMerges: 1 }).merges[0]).toMatchObject({ a: 97, b: 98 });
    // A later pair that is more frequent still wins.
    expect(dynamicTokenize([ids('cd'), ids('ab'), ids('ab')], vocab, { maxMerges: 1 }).merges[0]).toMatchObject({ a: 97, b: 98, count: 2 });
    // After a merge the first occurrences move; the native heap must follow them.
    const got = asPlain(dynamicTokenize([ids('abcyz'), ids('yzab')], vocab, { maxMerges: 4 }));
    expect(got).toEqual(reference([ids('abcyz'), ids('yzab')], vocab, 'pretoken', 4));
  });
});

describe('a real vocabulary (cl100k)', () => {
  it('matches the official loop on English text, with the vocabulary\'s own pre-tokenizer', async () => {
    const vocab = await loadVocab('cl100k');
    const texts = [
      'The cat sat on the mat. The cat sat on the hat!\n\nThe end.',
      '  indented\tline with tabs\tand   spaces\r\n  indented again: naïve café, naïve café',
      'x', '', '1234567 1234567 <|endoftext|> 1234567',
    ];
    const batch = texts.map((t) => vocab.encode(t));
    batch[3] = [100257, 100257]; // specials, side by side
    for (const boundary of ['pretoken', 'word'] as const) {
      const got = asPlain(dynamicTokenize(batch, vocab, { boundary, maxMerges: 40 }));
      const want = reference(batch, vocab, boundary, 40, {}, (_t, bytes) => vocab.pretokenStarts(bytes).length);
      expect(got).toEqual(want);
      expect(got.merges.length).toBeGreaterThan(2);
    }
  });
});

describe('the pair rules', () => {
  const vocab = toyVocab();
  const canMerge = (a: number[] | number, b: number[] | number, boundary: DynamicBoundary = 'pretoken') => {
    const seq = [...(Array.isArray(a) ? a : [a]), ...(Array.isArray(b) ? b : [b])];
    return dynamicTokenize([seq], vocab, { boundary, maxMerges: 1 }).merges.length === 1;
  };
  it('whitespace starts a token but never sits inside one, unless all of it is whitespace', () => {
    expect(canMerge(32, 97)).toBe(true); // " a"
    expect(canMerge(97, 32)).toBe(false); // "a "
    expect(canMerge(97, 10, 'sentence')).toBe(false); // "a\n", even without a boundary
    expect(canMerge(32, 32)).toBe(true); // "  " (one pre-token)
    expect(canMerge(9, 32)).toBe(true); // "\t "
    expect(canMerge(10, 10)).toBe(false); // "\n\n" never
    expect(canMerge(259, 10)).toBe(true); // "\n\n" + "\n" is all whitespace and not "\n\n"
    expect(canMerge(13, 97, 'sentence')).toBe(true); // "\r" is not in the official spacelike set
  });
  it('boundaries: pre-tokens, words, nothing', () => {
    expect(canMerge(97, 46, 'pretoken')).toBe(false); // "a." is two pre-tokens
    expect(canMerge(97, 46, 'word')).toBe(true); // but one word
    expect(canMerge(32, 32, 'word')).toBe(false); // whitespace only: zero words
    expect(canMerge(97, 13, 'word')).toBe(true); // "a\r": one word ("\r" is whitespace, not spacelike)
    expect(canMerge(13, 97, 'word')).toBe(true);
    expect(canMerge(ids('a'), ids('1'), 'pretoken')).toBe(false);
    expect(canMerge(ids('a'), ids('1'), 'sentence')).toBe(true);
  });
  it('special tokens never merge; bytes that are not valid UTF-8 may', () => {
    expect(canMerge(TOY_SPECIAL, 97, 'sentence')).toBe(false);
    expect(canMerge(97, TOY_SPECIAL, 'word')).toBe(false);
    expect(canMerge(46, 0xc3, 'pretoken')).toBe(true); // ".\xc3": not UTF-8, allowed
    expect(canMerge(0xc3, 0xa9, 'pretoken')).toBe(true); // "é"
  });
});

describe('defaults', () => {
  it('the official defaults: pre-token boundary, 1000 merges, every pair count', () => {
    expect(DYNAMIC_DEFAULTS).toEqual({ boundary: 'pretoken', maxMerges: 1000, minCount: 1 });
    expect(DYNAMIC_BOUNDARIES).toEqual(['pretoken', 'word', 'sentence']);
    const vocab = toyVocab();
    expect(dynamicTokenize([ids('a.')], vocab).merges).toEqual([]); // "a." is two pre-tokens
    // 1000 distinct three-letter words allow more than 1000 merges: the default stops at 1000.
    const L = 'abcdefghij';
    const words = Array.from({ length: 1000 }, (_, i) => ' ' + L[Math.floor(i / 100)]! + L[Math.floor(i / 10) % 10]! + L[i % 10]!);
    expect(dynamicTokenize([ids(words.join(''))], vocab).merges.length).toBe(1000);
  });
});

describe('maps back to base tokens', () => {
  it('pieces, tokenBytes and starts describe the base batch', () => {
    const vocab = toyVocab();
    for (let seed = 100; seed < 110; seed++) {
      const batch = randomBatch(seed);
      const r = dynamicTokenize(batch, vocab, { boundary: 'sentence', maxMerges: 50 });
      r.sequences.forEach((seq, s) => {
        const base = batch[s]!;
        const expanded = [...seq].flatMap((id) => (id < r.firstNewId ? [id] : [...r.pieces.get(id)!]));
        expect(expanded).toEqual(base);
        const bytes = [...seq].flatMap((id) => [...r.tokenBytes(id)]);
        expect(bytes).toEqual(base.flatMap((id) => [...vocab.tokenBytes(id)]));
        let pos = 0;
        [...seq].forEach((id, j) => {
          expect(r.starts[s]![j]).toBe(pos);
          pos += id < r.firstNewId ? 1 : r.pieces.get(id)!.length;
        });
      });
      expect(r.length).toBe(r.sequences.reduce((n, s) => n + s.length, 0));
      expect(r.baseLength - r.length).toBe(r.merges.reduce((n, m) => n + m.applied, 0));
    }
  });
});

describe('stop options', () => {
  const vocab = toyVocab();
  const batch = [ids('the cat sat on the mat and the bat'), ids('that hat is the hat'), ids('aaaa bbbb')];
  it('targetLength and targetReduction stop at the first merge that reaches them', () => {
    const full = dynamicTokenize(batch, vocab, { maxMerges: 100 });
    const base = full.baseLength;
    for (const targetLength of [25, 18.5, 12, 1]) {
      const r = dynamicTokenize(batch, vocab, { maxMerges: 100, targetLength });
      const want = reference(batch, vocab, 'pretoken', 100, { targetTotal: Math.floor(targetLength * batch.length) });
      expect(asPlain(r)).toEqual(want);
    }
    const r = dynamicTokenize(batch, vocab, { maxMerges: 100, targetReduction: 0.25 });
    expect(r.length).toBeLessThanOrEqual(0.75 * base);
    const before = dynamicTokenize(batch, vocab, { maxMerges: r.merges.length - 1 });
    expect(before.length).toBeGreaterThan(0.75 * base);
  });
  it('minCount stops at the first rare pair', () => {
    const r = dynamicTokenize(batch, vocab, { maxMerges: 100, minCount: 3 });
    expect(r.merges.length).toBeGreaterThan(0);
    expect(r.merges.every((m) => m.count >= 3)).toBe(true);
    expect(asPlain(r)).toEqual(reference(batch, vocab, 'pretoken', 100, { minCount: 3 }));
  });
});

describe('arguments', () => {
  const vocab = toyVocab();
  it('refuses bad batches, ids, vocabularies and options, naming the argument', () => {
    expect(() => dynamicTokenize('abc' as never, vocab)).toThrow(/batch: expected an array/);
    expect(() => dynamicTokenize([[1], 'x' as never], vocab)).toThrow(/batch\[1\]: expected an array/);
    expect(() => dynamicTokenize([[1, vocab.size]], vocab)).toThrow(RangeError);
    expect(() => dynamicTokenize([[1, 2.5]], vocab)).toThrow(/batch\[0\]\[1\]/);
    expect(() => dynamicTokenize([[1]], {} as never)).toThrow(/vocab: expected a TokenVocab/);
    expect(() => dynamicTokenize([[1]], vocab, { maxMerge: 3 } as never)).toThrow(/did you mean "maxMerges"/);
    expect(() => dynamicTokenize([[1]], vocab, { boundary: 'words' as never })).toThrow(/options.boundary/);
    expect(() => dynamicTokenize([[1]], vocab, { targetLength: 3, targetReduction: 0.1 })).toThrow(/at most one/);
    expect(() => dynamicTokenize([[1]], vocab, { targetReduction: 1 })).toThrow(RangeError);
    expect(() => dynamicTokenize([[1]], vocab, { maxMerges: -1 })).toThrow(RangeError);
    expect(() => dynamicTokenize([[1]], vocab, { minCount: 0 })).toThrow(RangeError);
  });
  it('a failing pre-tokenizer stops the run with its own error and leaves the batch as it was', () => {
    const bad: DynamicVocab = { ...toyVocab(), pretokenStarts: () => { throw new Error('pretokenizer broke'); } };
    const batch = [ids('hello world')];
    const copy = batch.map((s) => [...s]);
    expect(() => dynamicTokenize(batch, bad)).toThrow('pretokenizer broke');
    expect(batch).toEqual(copy);
  });
  it('the binding checks what memory safety depends on', () => {
    const ok = { tokens: new Int32Array([1, 2]), offsets: new Float64Array([0, 2]), firstNewId: 3, maxMerges: 1, targetTotal: 0, minCount: 1, isValidPairs: (a: Int32Array) => new Uint8Array(a.length).fill(1), onMerge: () => {} };
    expect(native().dynamicBpe(ok).tokens).toEqual(new Int32Array([3]));
    expect(() => native().dynamicBpe({ ...ok, offsets: new Float64Array([0, 3]) })).toThrow(RangeError);
    expect(() => native().dynamicBpe({ ...ok, offsets: new Float64Array([0, 2, 1, 2]) })).toThrow(/non-decreasing/);
    expect(() => native().dynamicBpe({ ...ok, tokens: new Int32Array([1, 3]) })).toThrow(/tokens\[1\]/);
    expect(() => native().dynamicBpe({ ...ok, isValidPairs: (() => [1]) as never })).toThrow(/Uint8Array/);
    expect(() => native().dynamicBpe({ ...ok, isValidPairs: () => new Uint8Array(5) })).toThrow(/1 entries, received 5/);
    expect(() => native().dynamicBpe({ ...ok, isValidPairs: 5 as never })).toThrow(TypeError);
    // A callback that detaches the input changes nothing: the binding copied it first.
    const tokens = new Int32Array([1, 2, 1, 2]);
    const r = native().dynamicBpe({ ...ok, tokens, offsets: new Float64Array([0, 4]), isValidPairs: (a: Int32Array) => {
      if (tokens.byteLength > 0) structuredClone(tokens.buffer, { transfer: [tokens.buffer] });
      return new Uint8Array(a.length).fill(1);
    } });
    expect([...r.tokens]).toEqual([3, 3]);
  });
});

describe('meanOfPiecesEmbeddings', () => {
  it('averages the base rows of each new token (float64 reference)', () => {
    const vocab = toyVocab();
    const dim = 3;
    const rows = vocab.size + 2; // padded, as model embeddings often are
    const rng = mulberry32(5);
    const emb = Float32Array.from({ length: rows * dim }, () => rng() * 2 - 1);
    const r = dynamicTokenize([ids('abab abab'), ids('aaaa')], vocab, { maxMerges: 4 });
    const out = meanOfPiecesEmbeddings(r, emb, dim);
    expect(out.length).toBe(r.merges.length * dim);
    r.merges.forEach((m, k) => {
      const p = r.pieces.get(m.id)!;
      for (let j = 0; j < dim; j++) {
        const want = p.reduce((s, id) => s + emb[id * dim + j]!, 0) / p.length;
        expect(out[k * dim + j]).toBeCloseTo(want, 6);
      }
    });
    expect(() => meanOfPiecesEmbeddings(r, emb.subarray(0, 10 * dim), dim)).toThrow(/rows >= /);
    expect(() => meanOfPiecesEmbeddings(r, emb, 0)).toThrow(RangeError);
  });
});
