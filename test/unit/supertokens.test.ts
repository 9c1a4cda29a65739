// Supertokens (lib/tokenizer/supertokens.ts, native/text/bpe_merges.h):
// native pair counting, merge training and rank-ordered BPE against slow JS
// references (test/reference/supertokens.ts) on small inline texts, the
// stage-2 split, the written tokenizer.json read back by
// @huggingface/tokenizers, and argument errors.
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, test } from 'vitest';
import { Command } from 'commander';
import { registerTokenizer, tokenizerGroup } from '../../lib/cli/tokenizer.js';
import { native } from '../../lib/native.js';
import { loadVocab } from '../../lib/tokenizer/vocab.js';
import { mergesFromRanks, type RankedVocab } from '../../lib/tokenizer/merges-from-ranks.js';
import { splitStage2, trainSupertokens, trainSupertokensAsync } from '../../lib/tokenizer/supertokens.js';
import { mulberry32, type Rng } from '../reference/random.js';
import { pairKey, referenceBpe, referenceCountPairs, referenceRankEncode, referenceTrain } from '../reference/supertokens.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A tiny byte-level rank vocabulary: 256 bytes, then a few English merges (id = rank). */
function tinyVocab(extra = ['th', 'the', ' t', ' the', 'he', 'in', ' a', 'an', 'and', ' an', ' and', 'at', ' c', ' cat']): RankedVocab & { toks: Uint8Array[] } {
  const toks: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) toks.push(new Uint8Array([b]));
  for (const e of extra) toks.push(enc.encode(e));
  return { name: 'tiny', size: toks.length, toks, tokenBytes: (i) => toks[i]!, isUsed: () => true, isSpecial: () => false };
}

function flatten(chunks: number[][]): { tokens: Int32Array; offsets: Int32Array } {
  const offsets = new Int32Array(chunks.length + 1);
  chunks.forEach((c, i) => (offsets[i + 1] = offsets[i]! + c.length));
  return { tokens: Int32Array.from(chunks.flat()), offsets };
}

/** Random chunks of byte ids from a small alphabet (words and spaces), awkward lengths: empty, 1, duplicates. */
function randomChunks(rng: Rng, n: number, alphabet = 'ab c'): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const len = i % 7 === 0 ? 0 : i % 5 === 0 ? 1 : 1 + Math.floor(rng() * 17);
    const c: number[] = [];
    for (let t = 0; t < len; t++) c.push(alphabet.charCodeAt(Math.floor(rng() * alphabet.length)));
    out.push(c);
    if (rng() < 0.2) out.push([...c]);
  }
  return out;
}

describe('splitStage2 (the official stage-2 regex, isolated)', () => {
  test('splits digits in threes, punctuation runs and space runs; single spaces and newlines stay inside', () => {
    expect(splitStage2('a  b 12345 c... d\n e')).toEqual(['a', ' ', ' b ', '123', '45', ' c', '...', ' d\n e']);
    expect(splitStage2('Hello, world.\nBye!')).toEqual(['Hello, world.\nBye!']);
    expect(splitStage2('x ?!\n\ny')).toEqual(['x', ' ?!\n\n', 'y']);
    expect(splitStage2('')).toEqual([]);
    expect(splitStage2('   ')).toEqual(['   ']);
  });
  test('pieces concatenate to the text', () => {
    const rng = mulberry32(7);
    const alphabet = ['a', 'b', ' ', '\n', '.', ',', '1', '2', 'é', '中', '😀', '  ', '/'];
    for (let k = 0; k < 50; k++) {
      let s = '';
      for (let i = 0; i < Math.floor(rng() * 40); i++) s += alphabet[Math.floor(rng() * alphabet.length)];
      const pieces = splitStage2(s);
      expect(pieces.join('')).toBe(s);
      expect(pieces.every((p) => p.length > 0)).toBe(true);
    }
  });
});

describe('native pair counting', () => {
  test('equals the JS reference (empty and 1-token chunks, duplicates, weights)', () => {
    const rng = mulberry32(11);
    for (const n of [0, 1, 17, 60]) {
      const chunks = randomChunks(rng, n);
      const counts = chunks.map(() => 1 + Math.floor(rng() * 5));
      const got = native().countTokenPairs({ ...flatten(chunks), counts: Int32Array.from(counts), nIds: 256 });
      const ref = referenceCountPairs(chunks, counts);
      const gotMap = new Map<string, number>();
      for (let i = 0; i < got.left.length; i++) gotMap.set(pairKey(got.left[i]!, got.right[i]!), got.count[i]!);
      expect(gotMap).toEqual(ref);
    }
  });
  test('refuses bad offsets, counts and ids with a RangeError', () => {
    const base = { tokens: Int32Array.from([1, 2, 3]), offsets: Int32Array.from([0, 3]), counts: Int32Array.from([1]), nIds: 256 };
    expect(() => native().countTokenPairs({ ...base, offsets: Int32Array.from([0, 2]) })).toThrow(RangeError);
    expect(() => native().countTokenPairs({ ...base, counts: Int32Array.from([0]) })).toThrow(/counts/);
    expect(() => native().countTokenPairs({ ...base, tokens: Int32Array.from([1, 2, 256]) })).toThrow(/tokens/);
    expect(() => native().countTokenPairs({ ...base, counts: Int32Array.from([1, 1]) })).toThrow(RangeError);
  });
});

describe('native merge training', () => {
  const vocabOf = (n: number) => {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = i;
    return { vocabBytes: bytes, vocabOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i) };
  };
  for (const [maxWords, minCount] of [[0, 1], [1, 1], [2, 2], [3, 1]] as const) {
    test(`equals brute-force BPE training (maxWords ${maxWords}, minCount ${minCount})`, () => {
      const rng = mulberry32(100 + maxWords * 10 + minCount);
      const chunks = randomChunks(rng, 40);
      const counts = chunks.map(() => 1 + Math.floor(rng() * 3));
      const got = native().trainSuperMerges({
        ...flatten(chunks), counts: Int32Array.from(counts), ...vocabOf(256), nMerges: 25, maxWords, minCount,
      });
      const ref = referenceTrain(chunks, counts, Array.from({ length: 256 }, (_, i) => [i]), 25, maxWords, minCount);
      const pairs: [number, number][] = [];
      for (let k = 0; k < got.pairs.length; k += 2) pairs.push([got.pairs[k]!, got.pairs[k + 1]!]);
      expect(pairs).toEqual(ref);
      expect(pairs.length).toBeGreaterThan(3);
    });
  }
  test('refuses bad arguments with a clear error, sync and async', async () => {
    const ok = { ...flatten([[97, 98, 97]]), counts: Int32Array.from([1]), ...vocabOf(256), nMerges: 2, maxWords: 0, minCount: 1 };
    expect(native().trainSuperMerges(ok).counts.length).toBe(2); // (a, b) then (ab, a)
    expect(() => native().trainSuperMerges({ ...ok, nMerges: -1 })).toThrow(/nMerges/);
    expect(() => native().trainSuperMerges({ ...ok, maxWords: -1 })).toThrow(/maxWords/);
    expect(() => native().trainSuperMerges({ ...ok, minCount: 0 })).toThrow(/minCount/);
    expect(() => native().trainSuperMerges({ ...ok, vocabOffsets: Int32Array.from([0, 5, 3]) })).toThrow(/vocabOffsets/);
    expect(() => native().trainSuperMerges({ ...ok, tokens: Int32Array.from([97, 98, 300]) })).toThrow(/tokens/);
    expect(() => native().trainSuperMerges({ ...ok, onProgress: 3 as never })).toThrow(TypeError);
    await expect(native().trainSuperMergesAsync({ ...ok, offsets: Int32Array.from([0, 2]) })).rejects.toThrow(RangeError);
    expect(() => native().bpeEncodePieces({ merges: Int32Array.from([97, 98, 999]), nIds: 256, byteIds: Int32Array.from({ length: 256 }, (_, i) => i), bytes: enc.encode('ab'), pieceOffsets: Int32Array.from([0, 2]) })).toThrow(/merges/);
    expect(() => native().bpeEncodePieces({ merges: new Int32Array(0), nIds: 256, byteIds: new Int32Array(255), bytes: enc.encode('ab'), pieceOffsets: Int32Array.from([0, 2]) })).toThrow(/byteIds/);
  });
  test('never makes a token whose bytes already exist; the progress callback can stop it', () => {
    // "ab" is already token 256: the pair (a, b) must be refused even though it is the most frequent.
    const bytes = new Uint8Array([...Array.from({ length: 256 }, (_, i) => i), 97, 98]);
    const vocabOffsets = Int32Array.from({ length: 258 }, (_, i) => (i <= 256 ? i : 258));
    const chunks = [[97, 98, 97, 98, 99]];
    const got = native().trainSuperMerges({ ...flatten(chunks), counts: Int32Array.from([5]), vocabBytes: bytes, vocabOffsets, nMerges: 3, maxWords: 0, minCount: 1 });
    for (let k = 0; k < got.pairs.length; k += 2) expect([got.pairs[k], got.pairs[k + 1]]).not.toEqual([97, 98]);
    const rng = mulberry32(5);
    const many = randomChunks(rng, 300, 'abcdefgh ');
    let calls = 0;
    const stopped = native().trainSuperMerges({
      ...flatten(many), counts: Int32Array.from(many.map(() => 1)), ...vocabOf(256), nMerges: 1000, maxWords: 0, minCount: 1,
      onProgress: (done) => { calls++; expect(done).toBe(64); return false; },
    });
    expect(calls).toBe(1);
    expect(stopped.counts.length).toBe(64);
  });
});

describe('rank-ordered BPE', () => {
  test('native encoder equals the brute-force reference on random merges', () => {
    const rng = mulberry32(3);
    const byteIds = Int32Array.from({ length: 256 }, (_, i) => i);
    // Random merges over ids of 'abc' and earlier results: (left, right, 256 + r).
    const merges: [number, number, number][] = [];
    const seen = new Set<string>();
    const pool = [97, 98, 99];
    while (merges.length < 30) {
      const a = pool[Math.floor(rng() * pool.length)]!, b = pool[Math.floor(rng() * pool.length)]!;
      if (seen.has(pairKey(a, b))) continue;
      seen.add(pairKey(a, b));
      merges.push([a, b, 256 + merges.length]);
      pool.push(256 + merges.length - 1);
    }
    const pieces = ['', 'a', 'abcabcabc', 'aaaaaaa', 'cbacbacbbbaa', 'ab'.repeat(33)];
    for (let k = 0; k < 20; k++) pieces.push(Array.from({ length: 1 + Math.floor(rng() * 40) }, () => 'abc'[Math.floor(rng() * 3)]).join(''));
    const bytes = pieces.map((p) => enc.encode(p));
    const flat = new Uint8Array(bytes.reduce((s, b) => s + b.length, 0));
    const pieceOffsets = new Int32Array(pieces.length + 1);
    bytes.forEach((b, i) => { flat.set(b, pieceOffsets[i]!); pieceOffsets[i + 1] = pieceOffsets[i]! + b.length; });
    const got = native().bpeEncodePieces({ merges: Int32Array.from(merges.flat()), nIds: 256 + merges.length, byteIds, bytes: flat, pieceOffsets });
    let start = 0;
    bytes.forEach((b, i) => {
      expect(Array.from(got.ids.subarray(start, got.ends[i]))).toEqual(referenceBpe(b, merges, byteIds));
      start = got.ends[i]!;
    });
  });
  test('equal ranks merge leftmost first (aaa -> aa a), as Hugging Face does', () => {
    const byteIds = Int32Array.from({ length: 256 }, (_, i) => i);
    const merges: [number, number, number][] = [[97, 97, 256], [256, 97, 257]];
    for (const p of ['aaa', 'aaaaa', 'aa']) {
      const bytes = enc.encode(p);
      const got = native().bpeEncodePieces({ merges: Int32Array.from(merges.flat()), nIds: 258, byteIds, bytes, pieceOffsets: Int32Array.from([0, bytes.length]) });
      expect(Array.from(got.ids)).toEqual(referenceBpe(bytes, merges, byteIds));
    }
    expect(referenceBpe(enc.encode('aaaaa'), merges, byteIds)).toEqual([256, 257]); // aa aa a, then (aa, a)
  });
  test('merges derived from ranks reproduce the rank encoder (tiktoken semantics)', () => {
    const v = tinyVocab();
    const { merges, byteIds, unreachable } = mergesFromRanks(v);
    expect(unreachable).toEqual([]);
    const triples: [number, number, number][] = [];
    for (let r = 0; r < merges.length; r += 3) triples.push([merges[r]!, merges[r + 1]!, merges[r + 2]!]);
    expect(triples.length).toBe(v.size - 256);
    for (const s of ['the cat and the hat', ' than', 'thethe', 'a', '', ' and and anand', 'in the  thin']) {
      const b = enc.encode(s);
      expect(referenceBpe(b, triples, byteIds)).toEqual(referenceRankEncode(b, v.toks));
    }
  });
});

const TRAIN_TEXT = 'the cat and the dog and the bird. In the house and the garden, the cat sat on the mat; 1234 ... the end\nthe cat and the dog\n';
const PROBES = [
  'the cat and the dog, said the bird 12345   in the house\nthe end...',
  'Théâtre: 中文 and 😀 the cat!!\r\n  indented  \tline / path//x',
  '', ' ', '\n\n', 'the', '1', 'a  b 12345 c... d\n e',
];

describe('trainSupertokens', () => {
  const v = tinyVocab();
  const { tokenizer, stats } = trainSupertokens(v, TRAIN_TEXT.repeat(12), { tokens: 40 });

  test('learns multi-word tokens, at most maxWords words each, and shortens the training text', () => {
    expect(stats.learned).toBe(40);
    const news = Array.from({ length: stats.learned }, (_, k) => dec.decode(tokenizer.tokenBytes(v.size + k)));
    expect(news.some((t) => /\S\s+\S/.test(t))).toBe(true);
    for (const t of news) expect(t.split(/\s+/).filter((w) => w.length > 0).length).toBeLessThanOrEqual(4);
    expect(tokenizer.encode(TRAIN_TEXT.repeat(12)).length).toBeLessThan(stats.baseTokens * 0.7);
    const one = trainSupertokens(v, TRAIN_TEXT.repeat(12), { tokens: 40, maxWords: 1 }).tokenizer;
    for (let id = v.size; id < one.size; id++) expect(dec.decode(one.tokenBytes(id)).trim()).not.toMatch(/\s/);
  });

  test('withTokens(n) is the tokenizer a run for n tokens learns', () => {
    const seven = trainSupertokens(v, TRAIN_TEXT.repeat(12), { tokens: 7 }).tokenizer;
    const cut = tokenizer.withTokens(7);
    expect(cut.size).toBe(seven.size);
    expect(Array.from(cut.merges)).toEqual(Array.from(seven.merges));
    expect(cut.encode(PROBES[0]!)).toEqual(seven.encode(PROBES[0]!));
    expect(() => tokenizer.withTokens(41)).toThrow(RangeError);
  });

  test('no token crosses a stage-2 piece boundary; decode inverts encode', () => {
    for (const text of PROBES) {
      const ids = tokenizer.encode(text);
      expect(tokenizer.decode(ids)).toBe(text);
      const tokenEnds = new Set<number>([0]);
      let o = 0;
      for (const id of ids) tokenEnds.add((o += tokenizer.tokenBytes(id).length));
      let p = 0;
      for (const piece of splitStage2(text)) expect(tokenEnds.has((p += enc.encode(piece).length))).toBe(true);
    }
  });

  test('the tokenizer.json loads in @huggingface/tokenizers and encodes exactly as we do', () => {
    const json = JSON.parse(JSON.stringify(tokenizer.toTokenizerJson())) as Record<string, unknown>;
    const hf = new Tokenizer(json, {});
    for (const text of [...PROBES, TRAIN_TEXT]) {
      const theirs = hf.encode(text).ids;
      expect(theirs).toEqual(tokenizer.encode(text));
      if (text.length > 0) expect(hf.decode(theirs, { clean_up_tokenization_spaces: false })).toBe(text);
    }
  });

  test('the async form learns the same merges off the main thread, with progress', async () => {
    const rng = mulberry32(21);
    const words = ['the', 'cat', 'and', 'dog', 'of', 'a', 'house', 'in', 'garden', 'sat', 'on', 'mat', 'bird', 'said', 'to'];
    const text = Array.from({ length: 3000 }, (_, i) => words[Math.floor(rng() * words.length)] + (i % 13 === 12 ? '.\n' : ' ')).join('');
    const done: number[] = [];
    const a = await trainSupertokensAsync(v, text, { tokens: 150, minCount: 1, onProgress: (d, total) => { done.push(d); expect(total).toBe(150); } });
    const s = trainSupertokens(v, text, { tokens: 150, minCount: 1 });
    expect(Array.from(a.tokenizer.merges)).toEqual(Array.from(s.tokenizer.merges));
    expect(a.stats.learned).toBe(150);
    // Progress reports every 64 merges; on a loaded machine the main thread may
    // see only the later ones (coalesced), so: at least one, ascending, each a
    // multiple of 64 below the total.
    expect(done.length).toBeGreaterThan(0);
    for (let i = 0; i < done.length; i++) {
      expect(done[i]! % 64).toBe(0);
      expect(done[i]!).toBeLessThan(150);
      if (i > 0) expect(done[i]!).toBeGreaterThan(done[i - 1]!);
    }
    await expect(trainSupertokensAsync(v, 'x', { tokens: -1 })).rejects.toThrow(RangeError);
    await expect(trainSupertokensAsync(v, text, { tokens: 100, minCount: 1, onProgress: () => { throw new Error('boom'); } })).rejects.toThrow('boom');
  });

  test('validates its arguments', () => {
    expect(() => trainSupertokens(v, 'x', { tokens: -1 })).toThrow(RangeError);
    expect(() => trainSupertokens(v, 'x', { tokens: 1.5 })).toThrow(/options.tokens/);
    expect(() => trainSupertokens(v, 'x', { tokens: 1, maxWord: 2 } as never)).toThrow(/did you mean "maxWords"/);
    expect(() => trainSupertokens(v, 'x', { tokens: 1, minCount: 0 })).toThrow(RangeError);
    expect(() => trainSupertokens({} as never, 'x', { tokens: 1 })).toThrow(TypeError);
    expect(() => trainSupertokens(v, 3 as never, { tokens: 1 })).toThrow(TypeError);
    expect(() => tokenizer.decode([tokenizer.size])).toThrow(RangeError);
    expect(() => tokenizer.encode(undefined as never)).toThrow(TypeError);
  });
});

describe('real vocabulary (cl100k)', () => {
  test('merges derived from the ranks, applied per base pre-token, give the package encoder\'s ids', async () => {
    const v = await loadVocab('cl100k');
    const { merges, byteIds, unreachable } = mergesFromRanks(v);
    expect(unreachable).toEqual([]);
    const text = 'The Collaborative International Dictionary of English, 1913: "hello"  world\n\n  Don\'t stop -- naïve café 中文 😀 12345.';
    const bytes = enc.encode(text);
    const starts = [...v.pretokenStarts(bytes), bytes.length];
    const got = native().bpeEncodePieces({ merges, nIds: v.size, byteIds, bytes, pieceOffsets: Int32Array.from(starts) });
    expect(Array.from(got.ids)).toEqual(v.encode(text));
  });
});

describe('tokenpress tokenizer (CLI group)', () => {
  test('registers train-supertokens in one extensible group', () => {
    const program = new Command();
    const group = registerTokenizer(program);
    expect(tokenizerGroup(program)).toBe(group);
    expect(group.commands.map((c) => c.name())).toContain('train-supertokens');
  });
});
