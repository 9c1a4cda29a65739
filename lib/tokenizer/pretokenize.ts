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
  if (regexes.length === 1) {
    const starts: number[] = [];
    splitIsolated(text, 0, regexes[0]!, starts, undefined);
    return starts;
  }
  let pieces: string[] = [text];
  let starts: number[] = [0];
  for (let r = 0; r < regexes.length; r++) {
    const last = r === regexes.length - 1;
    const nextPieces: string[] | undefined = last ? undefined : [];
    const nextStarts: number[] = [];
    for (let p = 0; p < pieces.length; p++) splitIsolated(pieces[p]!, starts[p]!, regexes[r]!, nextStarts, nextPieces);
    if (nextPieces !== undefined) pieces = nextPieces;
    starts = nextStarts;
  }
  return starts;
}

/** UTF-8 length of text[from, to) (text from valid UTF-8: surrogates come in pairs). */
function utf8Length(text: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) { n += 4; i++; } else n += 3;
  }
  return n;
}

/**
 * Starts (byte offsets from `base`) of the pieces of `text`: each match and
 * each gap between matches; the piece strings too when `pieces` is given.
 */
function splitIsolated(text: string, base: number, re: RegExp, starts: number[], pieces: string[] | undefined): void {
  let at16 = 0; // UTF-16 index in text
  let atByte = base; // byte offset of at16
  const piece = (end16: number): void => {
    starts.push(atByte);
    if (pieces !== undefined) pieces.push(text.slice(at16, end16));
    atByte += utf8Length(text, at16, end16);
    at16 = end16;
  };
  re.lastIndex = 0;
  for (;;) {
    const m = re.exec(text);
    if (m === null) break;
    const len = m[0].length;
    if (len === 0) {
      // an empty match: step over one code point (what matchAll does with the u flag)
      const c = text.charCodeAt(m.index);
      re.lastIndex = m.index + (c >= 0xd800 && c <= 0xdbff ? 2 : 1);
      continue;
    }
    if (m.index > at16) piece(m.index); // the gap before the match (HF Split "Isolated")
    piece(m.index + len);
  }
  if (at16 < text.length) piece(text.length);
}
