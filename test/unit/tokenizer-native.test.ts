// The native tokenizer core (native/text/bpe.cpp, token_trie.cpp through
// native/binding/tokenizer_binding.cpp) against the TypeScript reference
// engine (lib/tokenizer/bpe-merge.ts; the trie queries by a scan of every
// token): BPE by ranks (cl100k) and by merge pairs (an inline tokenizer.json),
// incomplete UTF-8 tails, the trie's subtree and prefix queries, and hostile
// calls straight into the binding.
import { describe, expect, test } from 'vitest';
import { ByteBpeVocab } from '../../lib/tokenizer/byte-bpe-vocab.js';
import { tiktokenSpec } from '../../lib/tokenizer/vocab.js';
import { vocabFromTokenizerJson } from '../../lib/tokenizer/tokenizer-json.js';
import { native } from '../../lib/native.js';
import { mulberry32 } from '../reference/random.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const POOL = ['a', 'b', 'c', 'ab', 'abc', 'hello', ' world', ' ', '  ', '\n', '\t', '12', '3', 'é', '日本', '🎉', "'s", 'x', 'll', '\ufeff', '\u0085'];

function randomTexts(n: number, seed: number): string[] {
  const rng = mulberry32(seed);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    const len = 1 + Math.floor(rng() * 20);
    for (let k = 0; k < len; k++) s += POOL[Math.floor(rng() * POOL.length)];
    out.push(s);
  }
  return out.concat(['', ' '.repeat(70), 'a'.repeat(101), 'abcabcabc'.repeat(7)]);
}

/** Every text and a random cut of its bytes (an incomplete tail more often than not). */
function cases(texts: string[], seed: number): Uint8Array[] {
  const rng = mulberry32(seed);
  const out: Uint8Array[] = [];
  for (const t of texts) {
    const b = enc(t);
    out.push(b, b.subarray(0, Math.floor(rng() * (b.length + 1))));
  }
  return out;
}

function smallJson(): object {
  const chars: string[] = [];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    chars.push(keep ? String.fromCharCode(b) : String.fromCharCode(256 + extra++));
  }
  const vocab: Record<string, number> = {};
  chars.forEach((c, b) => { vocab[c] = b; });
  const merges = [['a', 'b'], ['b', 'c'], ['ab', 'c'], ['h', 'e'], ['l', 'l'], ['he', 'll'], ['hell', 'o'], ['Ġ', 'w'], ['Ġw', 'o'], ['a', 'a'], ['aa', 'aa']];
  merges.forEach(([l, r], i) => { vocab[l! + r!] = 256 + ((i * 7) % merges.length); });
  return {
    added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: String.raw`(?i:'s|'t)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+` }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    ] },
    model: { type: 'BPE', dropout: null, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map(([l, r]) => `${l} ${r}`) },
  };
}

describe('native engine equals the TypeScript engine', () => {
  test('ranks (cl100k): encodeBytes, pretokenStarts, idOf', async () => {
    const spec = await tiktokenSpec('cl100k');
    const nat = new ByteBpeVocab(spec);
    const ref = new ByteBpeVocab({ ...spec, engine: 'ts' });
    expect(nat.engine).toBe('native');
    for (const b of cases(randomTexts(300, 7), 8)) {
      expect(nat.encodeBytes(b)).toEqual(ref.encodeBytes(b));
      expect(nat.pretokenStarts(b)).toEqual(ref.pretokenStarts(b));
    }
    for (const s of ['hello', ' world', 'zzzzzzzzqq', '\u00e9', ' the']) expect(nat.idOf(enc(s))).toBe(ref.idOf(enc(s)));
    expect(nat.idOf(Uint8Array.of(0xff))).toBe(ref.idOf(Uint8Array.of(0xff)));
    // the trie on a real vocabulary, against a scan of every token
    for (const p of ['hel', ' th', 'Z', '\u00e9', '']) {
      if (p === '') { expect(nat.tokensWithPrefix(enc(p)).length).toBe(100256); continue; }
      expect(Array.from(nat.tokensWithPrefix(enc(p)))).toEqual(Array.from(ref.tokensWithPrefix(enc(p))));
    }
    for (const p of ['hello world', ' the quick', 'Zebra', '\u00e9t\u00e9']) {
      expect(Array.from(nat.tokensPrefixOf(enc(p)))).toEqual(Array.from(ref.tokensPrefixOf(enc(p))));
    }
  });

  test('merge pairs (inline tokenizer.json): encodeBytes, the trie on every prefix', () => {
    const json = smallJson();
    const nat = vocabFromTokenizerJson(json, 'small');
    const ref = vocabFromTokenizerJson(json, 'small', { engine: 'ts' });
    for (const b of cases(randomTexts(300, 11), 12)) expect(nat.encodeBytes(b)).toEqual(ref.encodeBytes(b));
    expect(nat.encode('aaaaaaa')).toEqual(ref.encode('aaaaaaa'));
    for (const p of ['', 'a', 'ab', 'abc', 'abcd', 'h', 'hel', 'hello', 'x', ' w', 'aa', 'aaa']) {
      expect(Array.from(nat.tokensWithPrefix(enc(p))), p).toEqual(Array.from(ref.tokensWithPrefix(enc(p))));
      expect(Array.from(nat.tokensPrefixOf(enc(p))), p).toEqual(Array.from(ref.tokensPrefixOf(enc(p))));
    }
    const id = (s: string): number => nat.idOf(enc(s));
    expect(Array.from(nat.tokensPrefixOf(enc('abcz')))).toEqual([id('a'), id('ab'), id('abc')]);
    expect(Array.from(nat.tokensWithPrefix(enc('ab')))).toEqual([id('ab'), id('abc')]);
    expect(nat.tokensWithPrefix(enc('abq')).length).toBe(0);
    expect(nat.tokensPrefixOf(new Uint8Array(0)).length).toBe(0);
  });
});

describe('long pre-tokens (the native heap path, above 32 bytes)', () => {
  test('equal the TS engine on long single pre-tokens, ranks and pairs', async () => {
    const rng = mulberry32(99);
    const word = (n: number, alphabet: string): string => Array.from({ length: n }, () => alphabet[Math.floor(rng() * alphabet.length)]).join('');
    const texts = [word(33, 'ab'), word(300, 'ab'), word(257, 'abc'), word(120, 'helo'), ' '.repeat(40) + 'x', word(500, 'aaab'), '1'.repeat(99), '!?'.repeat(80)];
    const spec = await tiktokenSpec('cl100k');
    const nat = new ByteBpeVocab(spec);
    const ref = new ByteBpeVocab({ ...spec, engine: 'ts' });
    const natP = vocabFromTokenizerJson(smallJson(), 'small');
    const refP = vocabFromTokenizerJson(smallJson(), 'small', { engine: 'ts' });
    for (const t of texts) {
      expect(nat.encode(t), t).toEqual(ref.encode(t));
      expect(natP.encode(t), t).toEqual(refP.encode(t));
    }
    // a 200 kB single pre-token finishes (the TS engine's scans would take minutes)
    const big = word(200_000, 'abcdefgh');
    const ids = nat.encode(big);
    expect(nat.decode(ids)).toBe(big);
  });
});

describe('the TS layer refuses hostile arguments', () => {
  test('trie queries and encode name the argument; shared memory is refused by the binding', async () => {
    const v = new ByteBpeVocab(await tiktokenSpec('r50k'));
    expect(() => v.tokensWithPrefix('ab' as never)).toThrow(/bytes: expected a Uint8Array/);
    expect(() => v.tokensPrefixOf(null as never)).toThrow(TypeError);
    const shared = new Uint8Array(new SharedArrayBuffer(2));
    shared.set([0x61, 0x62]);
    expect(() => v.encodeBytes(shared)).toThrow(/bytes: expected .*over an ArrayBuffer/);
    expect(() => new ByteBpeVocab({ name: 'bad', tokens: [Uint8Array.of(1)], specials: [], patterns: ['.'] })).toThrow(/bad: bpe: a byte-level vocabulary has at least 256 tokens/);
    const noZero = Array.from({ length: 256 }, (_, b) => (b === 0 ? Uint8Array.of(1, 1) : Uint8Array.of(b)));
    expect(() => new ByteBpeVocab({ name: 'bad', tokens: noZero, specials: [], patterns: ['.'] })).toThrow(/bad: bpe: byte 0 is not a token/);
    expect(() => new ByteBpeVocab({ name: 'bad', tokens: noZero, specials: [], patterns: ['.'], engine: 'ts' })).toThrow(/bad: bpe: byte 0 is not a token/);
    expect(() => new ByteBpeVocab({ name: 'bad', tokens: [], specials: [], patterns: [] })).toThrow(/no pre-tokenizer pattern/);
  });
});

describe('the binding refuses hostile calls', () => {
  test('bad handles, views and lengths are errors, not crashes', async () => {
    const addon = native();
    const blob = new Uint8Array(256).map((_, i) => i);
    const offsets = Int32Array.from({ length: 257 }, (_, i) => i);
    const ordinary = new Uint8Array(256).fill(1);
    const core = addon.tokCoreNew(blob, offsets, ordinary, undefined, true);
    expect(Array.from(addon.tokCoreEncode(core, Uint8Array.of(1, 2, 3), Int32Array.of(0, 2)))).toEqual([1, 2, 3]);
    expect(() => addon.tokCoreEncode({} as never, Uint8Array.of(1), Int32Array.of(0))).toThrow(/core: expected a tokenizer core handle/);
    expect(() => addon.tokCoreEncode(core, [1] as never, Int32Array.of(0))).toThrow(/bytes: expected a Uint8Array/);
    expect(() => addon.tokCoreEncode(core, Uint8Array.of(1, 2), Int32Array.of(0, 5))).toThrow(/starts/);
    expect(() => addon.tokCoreEncode(core, Uint8Array.of(1, 2), Int32Array.of(1))).toThrow(/starts/);
    expect(() => addon.tokCoreEncode(core, Uint8Array.of(1, 2), Int32Array.of(0, 1, 1))).toThrow(/starts/);
    expect(() => addon.tokCoreNew(blob, offsets.subarray(0, 100), ordinary, undefined, true)).toThrow(/offsets: expected ordinary.length \+ 1/);
    expect(() => addon.tokCoreNew(blob, Int32Array.from(offsets).fill(9999, 200), ordinary, undefined, true)).toThrow(/offsets/);
    expect(() => addon.tokCoreNew(blob, offsets, ordinary, Int32Array.of(1, 2, 3), true)).toThrow(/merges: expected an even length/);
    expect(() => addon.tokCoreNew(blob, offsets, ordinary, Int32Array.of(1, 999), true)).toThrow(/merges\[1\]/);
    expect(() => addon.tokCoreNew(blob, offsets, ordinary, Int32Array.of(1, 2), true)).toThrow(/merge 0 gives a byte string that is not a token/);
    expect(() => addon.tokCoreNew(blob, offsets, new Uint8Array(256), undefined, true)).toThrow(/byte 0 is not a token/);
    expect(() => addon.tokCoreNew(blob, offsets, ordinary, undefined, 1 as never)).toThrow(/ignoreMerges: expected a boolean/);
    expect(addon.tokCoreIdOf(core, new Uint8Array(0))).toBe(-1);
    expect(Array.from(addon.tokCorePrefixOf(core, Uint8Array.of(7, 8)))).toEqual([7]);
    expect(addon.tokCoreWithPrefix(core, new Uint8Array(0)).length).toBe(256);
  });
});
