/**
 * UTF-8 helpers of the tokenizer tools: where the valid prefix of a byte
 * string ends (Rust's `Utf8Error::valid_up_to`, which tiktoken's
 * encode_bytes splits on) and byte strings as Map keys.
 */

/**
 * Length of the longest prefix of `bytes` that is valid UTF-8 (RFC 3629:
 * no overlong forms, no surrogates D800..DFFF, nothing above U+10FFFF), as
 * Rust's `std::str::from_utf8(bytes).err().valid_up_to()`; bytes.length when
 * all of it is valid.
 */
export function validUtf8Prefix(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) { i++; continue; }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      else if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      else if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    if (i + need >= n) {
      // truncated character: the prefix ends here (whatever the bytes present are)
      return i;
    }
    const b1 = bytes[i + 1]!;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k <= need; k++) {
      const c = bytes[i + k]!;
      if (c < 0x80 || c > 0xbf) return i;
    }
    i += need + 1;
  }
  return n;
}

/** The bytes as a latin1 string (one char per byte): a cheap, exact Map key for a byte string. */
export function bytesKey(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
}

/** Inverse of bytesKey. */
export function keyBytes(key: string): Uint8Array {
  return new Uint8Array(Buffer.from(key, 'latin1'));
}

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 of a string (lone surrogates become U+FFFD, as TextEncoder does). */
export function utf8Encode(text: string): Uint8Array {
  return ENCODER.encode(text);
}

/** UTF-8 bytes as text, invalid sequences replaced by U+FFFD, a leading BOM kept. */
export function utf8Decode(bytes: Uint8Array): string {
  return DECODER.decode(bytes);
}
