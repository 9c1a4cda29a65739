/**
 * GPT-2's byte-to-unicode map (HF tokenizers' ByteLevel pre-tokenizer,
 * tokenizers/src/pre_tokenizers/byte_level.rs `bytes_char`; openai/gpt-2
 * encoder.py `bytes_to_unicode`): the printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ
 * stand for themselves, the other 68 bytes for U+0100, U+0101, ... in byte
 * order. tokenizer.json vocabularies and merges spell byte strings this way.
 */

function buildCharToByte(): Map<number, number> {
  const map = new Map<number, number>();
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 0x100;
  for (let b = 0; b < 256; b++) map.set(printable(b) ? b : next++, b);
  return map;
}

const CHAR_TO_BYTE = buildCharToByte();

/** The bytes a ByteLevel token string stands for, or undefined when a character is outside the map. */
export function byteLevelDecode(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (b === undefined) return undefined;
    out[n++] = b;
  }
  return out.subarray(0, n);
}
