// Which adjacent token pairs dynamic tokenization may merge: the rules of
// DariusFeher/dynamic-tokenization, tokenizations/dynamic_bpe.py
// (Dynamic_BPE.is_valid_pair), restated over bytes. The official code works on
// ByteLevel strings, where one character stands for one byte ('Ġ' = 0x20,
// 'Ċ' = 0x0A, 'ĉ' = 0x09), so a character test there is a byte test here.
// For the merged bytes m = bytes(a) + bytes(b), in order:
//   1. whitespace: if a space, tab or newline byte occurs anywhere but at
//      m[0], the pair is refused unless every byte of m is one of them
//      (whitespace runs may grow), and "\n\n" itself is always refused;
//   2. special tokens never merge (the official code refuses them by name in
//      its 'word' modes; in its 'pretokens' mode their text fails the
//      pre-tokenizer test; here the rule is explicit for every boundary);
//   3. 'sentence': nothing more;
//   4. m not valid UTF-8 (a character split between tokens): allowed;
//   5. 'pretoken': m must be exactly one pre-token of the vocabulary's own
//      pre-tokenizer; 'word': m must be exactly one piece when split at
//      Unicode whitespace (HF WhitespaceSplit, Rust char::is_whitespace), so
//      an all-whitespace m (zero pieces) is refused there.
import type { TokenVocab } from './types.js';

/** Where merges may not cross: pre-tokens of the vocabulary (default), whitespace-separated words, or nothing but the whitespace rule. */
export type DynamicBoundary = 'pretoken' | 'word' | 'sentence';
export const DYNAMIC_BOUNDARIES: readonly DynamicBoundary[] = ['pretoken', 'word', 'sentence'];

/** The part of a vocabulary dynamic tokenization reads. */
export type DynamicVocab = Pick<TokenVocab, 'size' | 'tokenBytes' | 'isSpecial' | 'isUsed' | 'pretokenStarts'>;

const TAB = 0x09;
const LF = 0x0a;
const SPACE = 0x20;
const isSpacelike = (c: number): boolean => c === SPACE || c === LF || c === TAB;

// Rust's char::is_whitespace (Unicode White_Space); JS \s differs (it has U+FEFF, lacks U+0085).
const WHITESPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Rule 1 on m: false when whitespace sits inside m (not all whitespace) or m is "\n\n". */
export function passesWhitespaceRule(m: Uint8Array): boolean {
  let inner = false;
  let all = true;
  for (let i = 0; i < m.length; i++) {
    const sp = isSpacelike(m[i]!);
    if (!sp) all = false;
    else if (i > 0) inner = true;
  }
  if (!inner) return true;
  const doubleNewline = m.length === 2 && m[0] === LF && m[1] === LF;
  return all && !doubleNewline;
}

/** Number of non-empty pieces of s split at Unicode whitespace. */
export function wordPieces(s: string): number {
  let n = 0;
  for (const piece of s.split(WHITESPACE)) if (piece.length > 0) n++;
  return n;
}

/**
 * Rules 1, 3, 4, 5 on the merged bytes m (rule 2, special tokens, is the
 * caller's: it needs the ids). `pretokenStarts` is the vocabulary's
 * pre-tokenizer (boundary 'pretoken' only).
 */
export function mergedBytesAllowed(m: Uint8Array, boundary: DynamicBoundary, pretokenStarts: (bytes: Uint8Array) => number[]): boolean {
  if (!passesWhitespaceRule(m)) return false;
  if (boundary === 'sentence') return true;
  let text: string;
  try {
    text = utf8.decode(m);
  } catch {
    return true; // a character split between tokens: the official code cannot test it and allows it
  }
  if (boundary === 'pretoken') return pretokenStarts(m).length === 1;
  return wordPieces(text) === 1;
}

/** bytes(a) + bytes(b). */
export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const m = new Uint8Array(a.length + b.length);
  m.set(a, 0);
  m.set(b, a.length);
  return m;
}

/** The pair test of one run: base ids from the vocabulary, new ids registered in merge order. */
export interface PairRule {
  /** True when (a, b) may merge (rules 1-5). */
  isValid(a: number, b: number): boolean;
  /** Registers the next new id (vocab.size + merges so far) as a + b. */
  addMerge(a: number, b: number): void;
  /** Bytes of a base or registered new id. */
  bytesOf(id: number): Uint8Array;
}

export function pairRule(vocab: DynamicVocab, boundary: DynamicBoundary): PairRule {
  const first = vocab.size;
  const extra: Uint8Array[] = [];
  const bytesOf = (id: number): Uint8Array => (id < first ? vocab.tokenBytes(id) : extra[id - first]!);
  const pretokenStarts = (b: Uint8Array): number[] => vocab.pretokenStarts(b);
  return {
    isValid: (a, b) => !(a < first && vocab.isSpecial(a)) && !(b < first && vocab.isSpecial(b)) &&
      mergedBytesAllowed(concatBytes(bytesOf(a), bytesOf(b)), boundary, pretokenStarts),
    addMerge: (a, b) => void extra.push(concatBytes(bytesOf(a), bytesOf(b))),
    bytesOf,
  };
}
