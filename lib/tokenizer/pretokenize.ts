/**
 * Regex pre-tokenization over BYTES: the byte offsets where pre-tokens start.
 *
 * tiktoken (openai/tiktoken src/lib.rs) splits text with one regex; HF
 * tokenizers' Split pre-tokenizer (pre_tokenizers/split.rs, behavior
 * "Isolated") keeps the text between matches as pieces of their own, and a
 * Sequence of Splits runs each regex inside the pieces of the previous one
 * (so `$` and look-aheads see the piece, not the text). Both rules are here:
 * matches and gaps each start a pre-token (the tiktoken patterns match every
 * character, so they leave no gaps). Input must be valid UTF-8 (the caller
 * handles an invalid tail).
 */
import { utf8Decode } from './utf8.js';

/**
 * Pre-token starts of valid UTF-8 `bytes` under `regexes` (each with the g
 * and u flags), applied in sequence: ascending byte offsets, [0, ...] for
 * non-empty input, [] for empty. Pre-token k is bytes[starts[k], starts[k + 1] ?? bytes.length).
 */
export function regexPretokenStarts(bytes: Uint8Array, regexes: readonly RegExp[]): number[] {
  if (bytes.length === 0) return [];
  const text = utf8Decode(bytes); // valid UTF-8: decodes exactly (a BOM is kept)
  let pieces: string[] = [text];
  let starts: number[] = [0];
  for (const re of regexes) {
    const nextPieces: string[] = [];
    const nextStarts: number[] = [];
    for (let p = 0; p < pieces.length; p++) splitIsolated(pieces[p]!, starts[p]!, re, nextPieces, nextStarts);
    pieces = nextPieces;
    starts = nextStarts;
  }
  return starts;
}

/** Pieces of `text` (starting at byte `base`): each match and each gap between matches. */
function splitIsolated(text: string, base: number, re: RegExp, pieces: string[], starts: number[]): void {
  let at16 = 0; // UTF-16 index in text
  let atByte = base; // byte offset of at16
  const gap = (end16: number): void => {
    const g = text.slice(at16, end16);
    pieces.push(g);
    starts.push(atByte);
    atByte += Buffer.byteLength(g, 'utf8');
    at16 = end16;
  };
  for (const m of text.matchAll(re)) {
    const s = m[0];
    if (s.length === 0) continue;
    if (m.index > at16) gap(m.index);
    gap(m.index + s.length);
  }
  if (at16 < text.length) gap(text.length);
}
