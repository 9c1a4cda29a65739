/**
 * Regex pre-tokenization over BYTES: the byte offsets where pre-tokens start.
 *
 * tiktoken (openai/tiktoken src/lib.rs, `_encode_bytes`) splits the valid
 * UTF-8 prefix with the regex and lets an invalid or incomplete tail join the
 * last pre-token; HF tokenizers' Split pre-tokenizer (behavior "Isolated")
 * keeps the text between matches as pre-tokens of their own. Both rules are
 * here: matches and gaps each start a pre-token (the tiktoken patterns match
 * every character, so they leave no gaps), and bytes from the first invalid
 * UTF-8 position on join the last pre-token (or form one when the valid
 * prefix is empty).
 */
import { utf8Decode, validUtf8Prefix } from './utf8.js';

/**
 * Pre-token starts of `bytes` under `regex` (which must have the g and u
 * flags): ascending byte offsets, [0, ...] for non-empty input, [] for empty.
 * Pre-token k is bytes[starts[k], starts[k + 1] ?? bytes.length).
 */
export function regexPretokenStarts(bytes: Uint8Array, regex: RegExp): number[] {
  const starts: number[] = [];
  if (bytes.length === 0) return starts;
  const valid = validUtf8Prefix(bytes);
  if (valid > 0) {
    const text = utf8Decode(bytes.subarray(0, valid)); // valid UTF-8: decodes exactly (BOM kept)
    let at16 = 0; // UTF-16 index in text
    let atByte = 0; // byte offset of at16
    for (const m of text.matchAll(regex)) {
      const s = m[0];
      if (s.length === 0) continue;
      if (m.index > at16) {
        starts.push(atByte); // a gap between matches is a pre-token too (HF Split "Isolated")
        atByte += Buffer.byteLength(text.slice(at16, m.index), 'utf8');
      }
      starts.push(atByte);
      atByte += Buffer.byteLength(s, 'utf8');
      at16 = m.index + s.length;
    }
    if (at16 < text.length) starts.push(atByte);
  }
  if (starts.length === 0) starts.push(0); // the whole input is an invalid tail
  return starts;
}
