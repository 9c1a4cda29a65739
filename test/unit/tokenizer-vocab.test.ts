// Tokenizer core (lib/tokenizer/vocab.ts, byte-bpe-vocab.ts): the tiktoken
// vocabularies from gpt-tokenizer's rank tables against gpt-tokenizer's own
// encoder (an independent implementation of the same tokenizer) on varied
// texts, against ids pinned from tiktoken 0.14.0 where gpt-tokenizer differs
// from tiktoken (U+FEFF, U+0085, U+017F: JS's \s and [sS]), decode round
// trips, the canonical-encoding check, pre-token boundaries against
// gpt-tokenizer's regex run directly on the text and against tiktoken's own
// pre-tokens, tiktoken's encode_bytes for an incomplete UTF-8 tail, hostile
// arguments.
//
// Pinned ids: tiktoken 0.14.0, tiktoken.Encoding(pat_str = the pattern of
// tiktoken_ext/openai_public.py, mergeable_ranks = gpt-tokenizer's rank table,
// special_tokens = {}), encode_ordinary(text) and _encode_bytes(bytes).
// Pinned pre-tokens: the same, with a vocabulary of all 256 bytes and every
// substring of the text (BPE then merges each pre-token into one token).
import { describe, expect, test } from 'vitest';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import * as p50k from 'gpt-tokenizer/encoding/p50k_base';
import * as r50k from 'gpt-tokenizer/encoding/r50k_base';
import { loadVocab, VOCAB_NAMES } from '../../lib/tokenizer/vocab.js';
import { validUtf8Prefix } from '../../lib/tokenizer/utf8.js';
import { CL100K_TOKEN_SPLIT_REGEX } from 'gpt-tokenizer/encodingParams/constants';
import { TokenpressError } from '../../lib/errors.js';

const AS_TEXT = { disallowedSpecial: new Set<string>() };
const PEERS = { cl100k, o200k, p50k, r50k } as const;
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Varied texts: unicode, digits, whitespace runs, newlines, contractions, code, special-token text. */
const TEXTS = [
  '', 'a', ' ', '\n', 'hello world', 'Hello, World!', "I'm sure they'll say it's the DOG'S bone, we'd've",
  "DON'T YOU'LL WE'VE", '12345678901 3.14159 1,000,000', 'x1y22z333w4444', '    four spaces\tand a tab',
  'line one\nline two\r\n\r\nline four\n\n\n   \n', '   trailing   ', '\n\n  \n  ', 'naïve café résumé über',
  'Прогулка по набережной', '東京タワーは高い。日本語のテキスト', '한국어 텍스트', 'العربية نص', 'emoji 🎉🎉 👨‍👩‍👧 ok',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral', 'function f(x) {\n  return x ** 2; // square\n}\n', 'a <|endoftext|> b <|im_start|>',
  '\u00a0nbsp\u2003em space\u200bzw', 'MiXeD CaSe WoRdS aNd ALLCAPS', 'ǅungla ǈ titlecase', 'combining e\u0301 a\u0308',
  'a'.repeat(300), ' '.repeat(257) + 'x', '!!!???...,,,;;;', 'http://example.com/a/b?c=d&e=f',
  'tab\t\tsep\t', 'mixed 123abc abc123 ١٢٣ arabic digits', '\u2028line sep\u2029para',
];

describe.each(['cl100k', 'o200k', 'p50k', 'r50k'] as const)('%s against gpt-tokenizer', (name) => {
  test('encode equals gpt-tokenizer encode; decode round trips; canonical', async () => {
    const v = await loadVocab(name);
    const peer = PEERS[name];
    for (const t of TEXTS) {
      const ids = v.encode(t);
      expect(ids, t).toEqual(peer.encode(t, AS_TEXT));
      expect(v.encodeBytes(enc(t))).toEqual(ids);
      expect(v.decode(ids)).toBe(t);
      expect(v.decodeBytes(ids)).toEqual(enc(t));
      expect(v.isCanonical(ids), t).toBe(true);
    }
  });
  test('tokenBytes, idOf and the special tokens agree with the package', async () => {
    const v = await loadVocab(name);
    const peer = PEERS[name];
    const ids = peer.encode('The quick brown fox, 12 times!', AS_TEXT);
    for (const id of ids) {
      expect(v.idOf(v.tokenBytes(id))).toBe(id);
      expect(new TextDecoder().decode(v.tokenBytes(id))).toBe(peer.decode([id]));
      expect(v.isUsed(id) && !v.isSpecial(id)).toBe(true);
    }
    const eot = peer.encode('<|endoftext|>', { allowedSpecial: new Set(['<|endoftext|>']) });
    expect(eot.length).toBe(1);
    expect(v.isSpecial(eot[0]!)).toBe(true);
    expect(new TextDecoder().decode(v.tokenBytes(eot[0]!))).toBe('<|endoftext|>');
    expect(v.idOf(enc('<|endoftext|>'))).toBe(-1);
    expect(v.isCanonical(eot)).toBe(false);
    expect(v.size).toBeGreaterThan(eot[0]!);
  });
});

describe('cl100k details', () => {
  test('size, holes and byte tokens', async () => {
    const v = await loadVocab('cl100k');
    expect(v.size).toBe(100277);
    expect(v.kind).toBe('byte-bpe');
    expect(v.name).toBe('cl100k');
    // 100256 is a hole between the ranks and <|endoftext|> = 100257; 100261..100263 too
    expect(v.isUsed(100261)).toBe(false);
    expect(v.tokenBytes(100261).length).toBe(0);
    for (let b = 0; b < 256; b++) expect(v.idOf(Uint8Array.of(b))).toBeGreaterThanOrEqual(0);
    expect(v.idOf(new Uint8Array(0))).toBe(-1);
    expect(v.idOf(enc('hello world, no such token'))).toBe(-1);
    expect(await loadVocab('cl100k')).toBe(v); // cached
  });

  test('canonical check: false for non-canonical encodings of the same bytes', async () => {
    const v = await loadVocab('cl100k');
    const id = (s: string): number => { const i = v.idOf(enc(s)); expect(i, s).toBeGreaterThanOrEqual(0); return i; };
    expect(v.isCanonical([id('hello')])).toBe(true);
    expect(v.isCanonical([id('hel'), id('lo')])).toBe(false); // 'hello' is one token
    expect(v.isCanonical([id('h'), id('e'), id('l'), id('l'), id('o')])).toBe(false);
    // crossing a pre-token boundary: " world" is one token but "hello world" is 'hello',' world'
    expect(v.isCanonical([id('hello'), id(' world')])).toBe(true);
    expect(v.isCanonical([id('hello'), id(' '), id('world')])).toBe(false);
    expect(v.isCanonical([])).toBe(true);
    expect(v.isCanonical(Int32Array.from(v.encode('typed arrays too')))).toBe(true);
    // duplicates: "aa" repeated
    const aa = v.encode('aaaa');
    expect(v.isCanonical(aa)).toBe(true);
    expect(v.isCanonical([id('a'), ...aa.slice(0, -1), id('a')].slice(0, aa.length + 1))).toBe(v.encode(v.decode([id('a'), ...aa.slice(0, -1), id('a')])).join() === [id('a'), ...aa.slice(0, -1), id('a')].join());
  });

  test('pretokenStarts agree with the regex run on the text (byte offsets)', async () => {
    const v = await loadVocab('cl100k');
    const re = new RegExp(CL100K_TOKEN_SPLIT_REGEX.source, 'gu');
    for (const t of TEXTS) {
      const expected: number[] = [];
      let at = 0;
      for (const m of t.matchAll(re)) { expected.push(at); at += enc(m[0]).length; }
      expect(at).toBe(enc(t).length);
      expect(v.pretokenStarts(enc(t)), t).toEqual(expected);
      // no token of the canonical encoding crosses a boundary
      const ends = new Set(expected.concat([at]));
      let pos = 0;
      for (const idv of v.encode(t)) {
        const next = pos + v.tokenBytes(idv).length;
        for (const s of expected) expect(s > pos && s < next).toBe(false);
        pos = next;
      }
      expect(ends.has(pos)).toBe(true);
    }
  });

  test('incomplete UTF-8 tail: every cut round-trips, is canonical, no token crosses a segment start', async () => {
    const v = await loadVocab('cl100k');
    for (const text of ['hello 日本', 'hi \n\n  🎉', 'x\t  𝔘 ok']) {
      const full = enc(text);
      for (let cut = 1; cut <= full.length; cut++) {
        const b = full.subarray(0, cut);
        const ids = v.encodeBytes(b);
        expect(v.decodeBytes(ids)).toEqual(b);
        expect(v.isCanonical(ids)).toBe(true);
        const starts = v.pretokenStarts(b);
        expect(starts[0]).toBe(0);
        let pos = 0;
        for (const id of ids) {
          const next = pos + v.tokenBytes(id).length;
          for (const s of starts) expect(s > pos && s < next).toBe(false);
          pos = next;
        }
        if (validUtf8Prefix(b) === cut) expect(ids).toEqual(cl100k.encode(new TextDecoder().decode(b), AS_TEXT));
      }
    }
    // a lone continuation byte and an invalid byte in the middle (everything from it on is the tail)
    for (const bad of [Uint8Array.of(0x80), Uint8Array.of(0x61, 0xff, 0x62, 0x63), Uint8Array.of(0xe6, 0x97)]) {
      const ids = v.encodeBytes(bad);
      expect(v.decodeBytes(ids)).toEqual(bad);
      expect(v.isCanonical(ids)).toBe(true);
    }
    expect(v.pretokenStarts(Uint8Array.of(0x61, 0x20, 0x62, 0xff, 0x20, 0x63))).toEqual([0, 1]);
    expect(v.pretokenStarts(new Uint8Array(0))).toEqual([]);
    expect(v.encodeBytes(new Uint8Array(0))).toEqual([]);
  });
});

describe('pinned from tiktoken 0.14.0', () => {
  const TEXTS_T = ['\ufeffBOM at start', 'x\ufeff y\u0085z  \u0085\u0085 w', "it'\u017f IT'S we'LL", 'a \ufeff\ufeff\u00a0b'];
  const BYTES_T = [[104, 105, 32, 10, 10, 32, 32, 240, 159], [39, 83, 9, 32, 32, 240, 157, 148, 152, 217]];
  const PINNED = {
    cl100k: {
      texts: [[3305, 33, 1937, 520, 1212], [87, 3305, 379, 126, 227, 89, 256, 126, 227, 126, 227, 289], [275, 6, 129, 123, 8871, 13575, 584, 6, 4178], [64, 76880, 3305, 4194, 65]],
      bytes: [[6151, 4815, 256, 9468], [13575, 3762, 82350, 242, 246, 149]],
    },
    o200k: {
      texts: [[5574, 33, 2760, 540, 1604], [87, 5574, 342, 126, 227, 89, 256, 126, 227, 126, 227, 286], [278, 6, 70067, 8734, 31233, 581, 6, 7454], [64, 71280, 5574, 5310, 65]],
      bytes: [[3686, 1202, 256, 4103], [31233, 18242, 43120, 242, 246, 149]],
    },
    r50k: {
      texts: [[171, 119, 123, 33, 2662, 379, 923], [87, 171, 119, 123, 331, 126, 227, 89, 220, 1587, 227, 126, 227, 266], [270, 6, 129, 123, 7283, 6, 50, 356, 6, 3069], [64, 27332, 119, 123, 171, 119, 123, 1849, 65]],
      bytes: [[5303, 220, 628, 220, 12520], [6, 50, 197, 220, 220, 47728, 242, 246, 149]],
    },
  } as const;
  test.each(['cl100k', 'o200k', 'r50k'] as const)('%s: ids of BOM / NEL / long-s texts and of incomplete tails', async (name) => {
    const v = await loadVocab(name);
    TEXTS_T.forEach((t, i) => expect(v.encode(t), t).toEqual(PINNED[name].texts[i]));
    BYTES_T.forEach((b, i) => expect(v.encodeBytes(Uint8Array.from(b))).toEqual(PINNED[name].bytes[i]));
  });
  test('pre-tokens of a BOM / NEL / long-s text (byte lengths of tiktoken pieces)', async () => {
    const text = "x\ufeff y\u0085z  \u0085\u0085 w it'\u017f IT'\u017fX a\ufeff\ufeff b\n";
    const lens = {
      cl100k: [1, 3, 2, 3, 6, 2, 3, 3, 3, 3, 1, 2, 6, 2, 1],
      o200k: [1, 3, 2, 3, 6, 2, 6, 6, 1, 2, 6, 2, 1],
      r50k: [1, 3, 2, 2, 1, 6, 2, 3, 1, 2, 3, 1, 3, 2, 6, 2, 1],
    };
    for (const name of ['cl100k', 'o200k', 'r50k'] as const) {
      const starts: number[] = [];
      let at = 0;
      for (const l of lens[name]) { starts.push(at); at += l; }
      expect(at).toBe(enc(text).length);
      expect((await loadVocab(name)).pretokenStarts(enc(text)), name).toEqual(starts);
    }
  });
});

describe('validUtf8Prefix', () => {
  test('matches a decoder-based reference on every 1-3 byte prefix class', () => {
    const ref = (b: Uint8Array): number => {
      for (let k = b.length; k >= 0; k--) {
        try { new TextDecoder('utf-8', { fatal: true }).decode(b.subarray(0, k)); return k; } catch { /* shorter */ }
      }
      return 0;
    };
    const cases = [[0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0x80], [0xf0, 0x9f, 0x8e],
      [0x61, 0xc3], [0xc3, 0xa9, 0x62], [0xf5], [0x61, 0x80, 0x62], [0xef, 0xbb, 0xbf, 0x61]];
    for (const c of cases) {
      const b = Uint8Array.from(c);
      // the reference finds the longest decodable prefix, which is valid_up_to except for a truncated tail
      const r = ref(b);
      expect(validUtf8Prefix(b), c.join()).toBe(r);
    }
  });
});

describe('hostile arguments', () => {
  test('clear errors', async () => {
    const v = await loadVocab('cl100k');
    await expect(loadVocab('cl100' as never)).rejects.toThrow(/name: expected a vocabulary name .*did you mean "cl100k"/);
    await expect(loadVocab(7 as never)).rejects.toThrow(TypeError);
    await expect(loadVocab('gemma3')).rejects.toThrow(TokenpressError);
    await expect(loadVocab('gemma3')).rejects.toThrow(/not supported yet/);
    expect(() => v.encode(5 as never)).toThrow(/text: expected a string, received 5/);
    expect(() => v.encodeBytes('abc' as never)).toThrow(/bytes: expected a Uint8Array/);
    expect(() => v.pretokenStarts([1, 2] as never)).toThrow(TypeError);
    expect(() => v.idOf(null as never)).toThrow(TypeError);
    expect(() => v.tokenBytes(-1)).toThrow(RangeError);
    expect(() => v.tokenBytes(v.size)).toThrow(/id: expected a token id \(an integer in \[0, 100276\]\), received 100277/);
    expect(() => v.tokenBytes(1.5)).toThrow(RangeError);
    expect(() => v.isSpecial('1' as never)).toThrow(TypeError);
    expect(() => v.decode([1, NaN])).toThrow(/ids\[1\]: expected a token id/);
    expect(() => v.decodeBytes(5 as never)).toThrow(/ids: expected an array of token ids/);
    expect(() => v.isCanonical([0, 1e9])).toThrow(RangeError);
    expect(VOCAB_NAMES).toContain('deepseek-v3');
  });
});
