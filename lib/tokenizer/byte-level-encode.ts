/**
 * GPT-2's byte-to-unicode table, bytes to characters (openai/gpt-2
 * src/encoder.py bytes_to_unicode, the Hugging Face ByteLevel pre-tokenizer;
 * the other direction is byte-level.ts): printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100 onwards, so every byte string is
 * a printable string in a tokenizer.json vocabulary.
 */

let table: string[] | undefined;

/** byteToUnicode()[b]: the character byte b stands for. */
export function byteToUnicode(): readonly string[] {
  if (table) return table;
  const t = new Array<string>(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    t[b] = String.fromCharCode(printable ? b : next++);
  }
  table = t;
  return t;
}

/** The vocabulary string of a byte string. */
export function bytesToByteLevel(bytes: Uint8Array): string {
  const t = byteToUnicode();
  let s = '';
  for (const b of bytes) s += t[b];
  return s;
}
