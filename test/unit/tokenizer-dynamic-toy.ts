/**
 * A small byte-level vocabulary for the dynamic tokenization tests (no
 * corpus, no package): ids 0..255 are the single bytes, then a few
 * multi-byte tokens and one special token. Its pre-tokenizer is GPT-2's
 * regex, reported as byte offsets as TokenVocab.pretokenStarts does.
 */
import type { DynamicVocab } from '../../lib/tokenizer/dynamic.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export const TOY_EXTRA = ['th', 'the', ' the', '\n\n', '  ', 'ab'] as const;
export const TOY_SPECIAL = 256 + TOY_EXTRA.length; // '<|s|>'

const GPT2_PRETOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Number of pre-tokens of a (valid UTF-8) text under the toy pre-tokenizer. */
export function toyPretokenCount(text: string): number {
  return [...text.matchAll(GPT2_PRETOKEN)].length;
}

export function toyVocab(): DynamicVocab & { calls: number } {
  const bytes: Uint8Array[] = [];
  for (let b = 0; b < 256; b++) bytes.push(new Uint8Array([b]));
  for (const t of TOY_EXTRA) bytes.push(enc.encode(t));
  bytes.push(enc.encode('<|s|>'));
  const v = {
    calls: 0,
    size: bytes.length,
    tokenBytes: (id: number) => bytes[id]!,
    isSpecial: (id: number) => id === TOY_SPECIAL,
    isUsed: (id: number) => id >= 0 && id < bytes.length,
    pretokenStarts(b: Uint8Array): number[] {
      v.calls++;
      const text = dec.decode(b);
      return [...text.matchAll(GPT2_PRETOKEN)].map((m) => enc.encode(text.slice(0, m.index)).length);
    },
  };
  return v;
}

/** Byte ids of an ASCII/UTF-8 string. */
export const ids = (s: string): number[] => [...enc.encode(s)];
