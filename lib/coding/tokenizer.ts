/** The interface every tokenizer here shares (EqualInfoTokenizer, ByteTokenizer). */

export interface TokenizerStats {
  /** Input bytes encoded so far (UTF-8 bytes for strings). */
  bytes: number;
  /** Tokens produced so far. */
  tokens: number;
  /** bytes / tokens (0 before any token). */
  bytesPerToken: number;
}

export interface Tokenizer {
  /** Token ids are in [0, vocabSize). */
  readonly vocabSize: number;
  encode(text: string | Uint8Array): Uint16Array | Uint32Array;
  /** The text back; invalid UTF-8 becomes U+FFFD (use decodeBytes for exact bytes). */
  decode(ids: Uint16Array | Uint32Array | readonly number[]): string;
  decodeBytes(ids: Uint16Array | Uint32Array | readonly number[]): Uint8Array;
  readonly stats: TokenizerStats;
}

import { typeError, rangeError } from '../errors.js';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8');

export function toBytes(arg: string, value: unknown): Uint8Array {
  if (typeof value === 'string') return utf8.encode(value);
  if (value instanceof Uint8Array) return value;
  throw typeError(arg, 'a string or a Uint8Array', value);
}

/** Token ids as a typed array the native side reads, each checked to be < 2^tokenBits. */
export function toTokenArray(arg: string, ids: unknown, tokenBits: number): Uint16Array | Uint32Array {
  const limit = 2 ** tokenBits;
  if (ids instanceof Uint16Array || ids instanceof Uint32Array) {
    if (tokenBits < 32 && !(ids instanceof Uint16Array && tokenBits >= 16)) {
      for (let i = 0; i < ids.length; i++) {
        if (ids[i]! >= limit) throw rangeError(`${arg}[${i}]`, `a token id below 2^${tokenBits}`, ids[i]);
      }
    }
    return ids;
  }
  if (!Array.isArray(ids)) throw typeError(arg, 'a Uint16Array, a Uint32Array or an array of token ids', ids);
  const out = tokenBits <= 16 ? new Uint16Array(ids.length) : new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const v: unknown = ids[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= limit) {
      throw rangeError(`${arg}[${i}]`, `an integer token id in [0, 2^${tokenBits})`, v);
    }
    out[i] = v;
  }
  return out;
}

export function bytesToText(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Counts bytes and tokens across calls. */
export class StatsCounter {
  private bytes = 0;
  private tokens = 0;
  add(bytes: number, tokens: number): void {
    this.bytes += bytes;
    this.tokens += tokens;
  }
  snapshot(): TokenizerStats {
    return { bytes: this.bytes, tokens: this.tokens, bytesPerToken: this.tokens === 0 ? 0 : this.bytes / this.tokens };
  }
}
