// Target-token counters (lib/prompt/tokenizers.ts): cl100k / o200k from
// gpt-tokenizer against token ids pinned from tiktoken, special-token text
// counted as text, any encode function as a counter, and the memoizing
// checker compressPrompt uses for words.
import { describe, expect, test } from 'vitest';
import { encode as cl100kEncode } from 'gpt-tokenizer/encoding/cl100k_base';
import {
  TOKEN_COUNTERS, cachedCounter, checkCount, cl100kCounter, counterFromEncode, o200kCounter,
  SpanCounter,
} from '../../lib/prompt/tokenizers.js';

describe('built-in counters', () => {
  test('cl100k: "hello world" is [15339, 1917] in tiktoken, 2 tokens; o200k too', () => {
    expect(cl100kEncode('hello world')).toEqual([15339, 1917]);
    expect(cl100kCounter('hello world')).toBe(2);
    expect(o200kCounter('hello world')).toBe(2);
    expect(cl100kCounter('')).toBe(0);
    expect(TOKEN_COUNTERS.cl100k).toBe(cl100kCounter);
    expect(TOKEN_COUNTERS.o200k).toBe(o200kCounter);
  });
  test('the two vocabularies differ on some text (o200k is larger)', () => {
    const t = 'Прогулка по набережной 東京タワー';
    expect(o200kCounter(t)).toBeLessThan(cl100kCounter(t));
  });
  test('special-token text is counted as ordinary text, not refused', () => {
    expect(cl100kCounter('a <|endoftext|> b')).toBe(cl100kEncode('a <|endoftext|> b', { disallowedSpecial: new Set() }).length);
    expect(cl100kCounter('<|endoftext|>')).toBeGreaterThan(1);
    expect(() => cl100kCounter(5 as never)).toThrow(/text: expected a string/);
  });
});

describe('counterFromEncode', () => {
  test('counts the ids an encode function returns', () => {
    const chars = counterFromEncode((t) => Array.from(t, (c) => c.codePointAt(0)!));
    expect(chars('héllo ✓')).toBe(7);
    expect(() => counterFromEncode(null as never)).toThrow(/encode: expected a function/);
    expect(() => counterFromEncode(() => 3 as never)('x')).toThrow(/encode\(\) result/);
  });
});

describe('cachedCounter / checkCount', () => {
  test('counts each distinct string once, and checks every count', () => {
    let calls = 0;
    const c = cachedCounter((s) => {
      calls++;
      return s.length;
    }, 2);
    expect([c('ab'), c('ab'), c('abc'), c('ab')]).toEqual([2, 2, 3, 2]);
    expect(calls).toBe(2);
    c('x'); // cache full: cleared, then 'x' stored
    c('ab');
    expect(calls).toBe(4);
    expect(() => cachedCounter(() => -1)('a')).toThrow(RangeError);
    expect(() => cachedCounter(() => 1.5)('a')).toThrow(/countTokens\(\) result/);
    expect(() => cachedCounter(() => '1' as never)('a')).toThrow(TypeError);
    expect(checkCount('n', 0)).toBe(0);
  });
});

describe('SpanCounter (the engine\'s word counts)', () => {
  test('counts each distinct span string once, equal to the counter on the slice, across table growth', () => {
    // 3000 distinct words (the table starts at 1024 slots and grows), each repeated, plus
    // strings that collide in length, an empty span and a lone surrogate.
    const words = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}`);
    const text = [...words, ...words, 'ab', 'ba', 'ab', '\ud800x', '\ud800x'].join(' ');
    const calls: string[] = [];
    const counter = (s: string): number => (calls.push(s), s.length * 3 + 1);
    const sc = new SpanCounter(text, counter);
    const spans = [...text.matchAll(/\S+/g)].map((m) => [m.index!, m.index! + m[0].length] as const);
    for (const [s, e] of spans) expect(sc.count(s, e)).toBe(text.slice(s, e).length * 3 + 1);
    expect(calls.length).toBe(new Set(spans.map(([s, e]) => text.slice(s, e))).size);
    expect(new Set(calls).size).toBe(calls.length);
    expect(sc.count(5, 5)).toBe(1); // the empty span is counted (not stored)
    expect(() => new SpanCounter('abc', () => -1).count(0, 1)).toThrow(/countTokens\(\) result/);
  });
});
