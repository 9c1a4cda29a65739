// The safetensors header refusals (lib/kv/eval/safetensors.ts), each at its
// boundary and by its own message: Stryker showed that the 8-byte length
// check, the "header within the file" check, MAX_HEADER_BYTES and the
// minimum length could each be removed or moved by one without a test
// failing, because a later check refused the file with another message.
// Format: 8-byte little-endian header length N, N bytes of JSON, data.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { TokenpressError } from '../../lib/errors.js';
import {
  MAX_HEADER_BYTES, decodeSafetensors, encodeSafetensors, parseSafetensorsHeader, readSafetensors,
} from '../../lib/kv/eval/safetensors.js';

/** 8-byte little-endian length n, then `json` (bytes), then `data` zero bytes. */
function file(n: number | bigint, json = '', data = 0): Uint8Array {
  const body = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + body.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(body, 8);
  return out;
}

/** The ERR_BAD_FILE message a call throws ("<file>: not a valid safetensors file: <what>"). */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenpressError);
    expect((e as TokenpressError).code).toBe('ERR_BAD_FILE');
    return (e as Error).message;
  }
  throw new Error('expected the file to be refused');
}

describe('the 8-byte header length', () => {
  test('a file of 0..7 bytes is refused as too short, whatever the caller passes as head', () => {
    for (let size = 0; size < 8; size++) {
      expect(refusal(() => decodeSafetensors(new Uint8Array(size), 'x.st'))).toBe(`x.st: not a valid safetensors file: ${size} bytes is shorter than the 8-byte header length`);
      // head has 8 bytes (a valid length 2) but the file is said to be shorter.
      expect(refusal(() => parseSafetensorsHeader(file(2, '{}'), size))).toMatch(new RegExp(`: ${size} bytes is shorter than the 8-byte header length$`));
    }
  });
  test('a head of fewer than 8 bytes is refused even when the file is larger', () => {
    expect(refusal(() => parseSafetensorsHeader(new Uint8Array(7), 100))).toMatch(/: 100 bytes is shorter than the 8-byte header length$/);
  });
  test('exactly 8 + 2 bytes holding {} is a valid empty file', () => {
    const h = parseSafetensorsHeader(file(2, '{}'), 10);
    expect(h.entries).toEqual([]);
    expect(decodeSafetensors(file(2, '{}')).tensors.size).toBe(0);
  });
});

describe('the header length must lie within the file', () => {
  test('N = fileSize - 8 + 1 is beyond the end; N = fileSize - 8 is not', () => {
    const f = file(3, '{} ');
    expect(refusal(() => parseSafetensorsHeader(f, 10))).toMatch(/: header length 3 is beyond the end of the file \(2 bytes follow it\)$/);
    expect(parseSafetensorsHeader(f, 11).entries).toEqual([]);
  });
  test('a huge N (2^64 - 1) is refused as beyond the end, not allocated', () => {
    expect(refusal(() => decodeSafetensors(file(2n ** 64n - 1n, '{}')))).toMatch(/: header length 18446744073709551615 is beyond the end of the file \(2 bytes follow it\)$/);
  });
});

describe('MAX_HEADER_BYTES', () => {
  test('is the reference implementation\'s 100 MiB', () => {
    expect(MAX_HEADER_BYTES).toBe(100 * 1024 * 1024);
  });
  test('N = MAX_HEADER_BYTES + 1 is refused by its own message; N = MAX_HEADER_BYTES passes that check', () => {
    const big = MAX_HEADER_BYTES + 1;
    // Only the 8-byte length is given: the limit must be checked before the header is needed.
    expect(refusal(() => parseSafetensorsHeader(file(big), big + 8))).toMatch(new RegExp(`: header length ${big} exceeds the ${MAX_HEADER_BYTES}-byte limit$`));
    expect(refusal(() => parseSafetensorsHeader(file(MAX_HEADER_BYTES), MAX_HEADER_BYTES + 8))).toMatch(new RegExp(`: truncated header \\(0 of ${MAX_HEADER_BYTES} bytes\\)$`));
  });
});

describe('the minimum header length and a truncated header', () => {
  test('N = 0 and N = 1 are too small for a JSON object', () => {
    expect(refusal(() => decodeSafetensors(file(0)))).toMatch(/: header length 0 is too small for a JSON object$/);
    expect(refusal(() => decodeSafetensors(file(1, '{')))).toMatch(/: header length 1 is too small for a JSON object$/);
  });
  test('a head shorter than 8 + N is truncated', () => {
    expect(refusal(() => parseSafetensorsHeader(file(4, '{}'), 100))).toMatch(/: truncated header \(2 of 4 bytes\)$/);
  });
});

describe('readSafetensors reads the header only when its length fits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tp-st-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test('a file whose header ends exactly at the end of the file (no tensors) is read', () => {
    const bytes = encodeSafetensors([]);
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    expect(n).toBe(bytes.length - 8); // the boundary case: N = size - 8
    const p = join(dir, 'empty.safetensors');
    writeFileSync(p, bytes);
    expect(readSafetensors(p).tensors.size).toBe(0);
  });
  test('a file whose length field points past its end is refused with the header-length message', () => {
    const p = join(dir, 'long.safetensors');
    writeFileSync(p, file(9, '{}      '));
    expect(refusal(() => readSafetensors(p))).toBe(`${p}: not a valid safetensors file: header length 9 is beyond the end of the file (8 bytes follow it)`);
  });
  test('a 5-byte file is refused as too short', () => {
    const p = join(dir, 'short.safetensors');
    writeFileSync(p, new Uint8Array(5));
    expect(refusal(() => readSafetensors(p))).toBe(`${p}: not a valid safetensors file: 5 bytes is shorter than the 8-byte header length`);
  });
});
