// The .tpz container (lib/coding/container.ts): round trips in every mode,
// and every kind of damaged file must give a clear ERR_BAD_FILE error (never
// a crash, a wrong result or a huge allocation).
import { crc32 } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { TokenpressError } from '../../lib/errors.js';
import {
  CONTAINER_HEADER_BYTES,
  containerChecksum,
  readContainer,
  verifyChecksum,
  writeContainer,
  type ContainerHeader,
} from '../../lib/coding/container.js';
import { mulberry32 } from '../reference/random.js';

const original = new TextEncoder().encode('The quick brown fox jumps over the lazy dog.\n'.repeat(7));
const payload = Uint8Array.from({ length: 37 }, (_, i) => (i * 151 + 7) & 255);

const headers: Record<string, ContainerHeader> = {
  static: { mode: 'static', modelIdentity: '0123456789abcdef', originalLength: original.length, checksum: crc32(original) },
  adaptive: { mode: 'adaptive', modelIdentity: null, originalLength: original.length, checksum: crc32(original) },
  'equal-info': {
    mode: 'equal-info',
    modelIdentity: 'fedcba9876543210',
    windowBits: 16,
    tokenBits: 16,
    originalLength: original.length,
    checksum: crc32(original),
  },
};

function expectBadFile(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TokenpressError);
  expect((caught as TokenpressError).code).toBe('ERR_BAD_FILE');
  expect((caught as Error).message).toMatch(message);
}

/** Rewrites the header CRC after an edit, so a test reaches the check behind it. */
function resealed(file: Uint8Array, edit: (dv: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = file.slice();
  const dv = new DataView(copy.buffer);
  edit(dv, copy);
  dv.setUint32(40, crc32(copy.subarray(0, 40)), true);
  return copy;
}

describe('round trip', () => {
  test.each(Object.keys(headers))('mode %s', (mode) => {
    const header = headers[mode]!;
    const file = writeContainer(header, payload);
    expect(file.length).toBe(CONTAINER_HEADER_BYTES + payload.length);
    const back = readContainer(file);
    expect(back.header).toEqual(header);
    expect(Array.from(back.payload)).toEqual(Array.from(payload));
    // The payload is a view of the input, not a copy.
    expect(back.payload.buffer).toBe(file.buffer);
    expect(back.payload.byteOffset).toBe(file.byteOffset + CONTAINER_HEADER_BYTES);
    expect(() => verifyChecksum(back.header, original)).not.toThrow();
  });

  test('empty payload, zero-length original, largest window, 8-bit tokens, upper-case identity, offset input', () => {
    const header: ContainerHeader = {
      mode: 'equal-info',
      modelIdentity: 'ABCDEF0123456789',
      windowBits: 2048,
      tokenBits: 8,
      originalLength: 0,
      checksum: crc32(new Uint8Array(0)),
    };
    const file = writeContainer(header, new Uint8Array(0));
    const padded = new Uint8Array(file.length + 5);
    padded.set(file, 3);
    const back = readContainer(padded.subarray(3, 3 + file.length));
    expect(back.header).toEqual({ ...header, modelIdentity: 'abcdef0123456789' });
    expect(back.payload.length).toBe(0);
    verifyChecksum(back.header, new Uint8Array(0));
  });

  test('field layout is little-endian at the documented offsets', () => {
    const file = writeContainer({ ...headers['equal-info']!, windowBits: 0x123, originalLength: 2 ** 40 + 5 }, payload);
    const dv = new DataView(file.buffer);
    expect(Array.from(file.subarray(0, 4))).toEqual([0x89, 0x54, 0x50, 0x5a]);
    expect(dv.getUint16(4, true)).toBe(1);
    expect(dv.getUint8(6)).toBe(2);
    expect(Array.from(file.subarray(8, 16))).toEqual([0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10]);
    expect(dv.getUint16(16, true)).toBe(0x123);
    expect(dv.getUint8(18)).toBe(16);
    expect(dv.getBigUint64(20, true)).toBe(2n ** 40n + 5n);
    expect(dv.getUint32(28, true)).toBe(crc32(original));
    expect(dv.getBigUint64(32, true)).toBe(BigInt(payload.length));
    expect(dv.getUint32(40, true)).toBe(crc32(file.subarray(0, 40)));
    // 2^40 exceeds the default limit; a raised limit accepts it.
    expect(readContainer(file, { maxOriginalBytes: 2 ** 41 }).header.originalLength).toBe(2 ** 40 + 5);
  });
});

describe('damaged files', () => {
  const file = writeContainer(headers['equal-info']!, payload);

  test('every truncation throws ERR_BAD_FILE and says what is missing', () => {
    for (let len = 0; len < file.length; len++) {
      const cut = file.slice(0, len);
      if (len < CONTAINER_HEADER_BYTES && len >= 6) {
        expectBadFile(() => readContainer(cut), new RegExp(`truncated header: ${len} of 44 bytes \\(${44 - len} missing\\)`));
      } else if (len >= CONTAINER_HEADER_BYTES) {
        const missing = file.length - len;
        expectBadFile(() => readContainer(cut), new RegExp(`truncated payload: .* \\(${missing} missing\\)`));
      } else if (len === 0) {
        expectBadFile(() => readContainer(cut), /not a tokenpress file: .*found an empty file/);
      } else {
        expectBadFile(() => readContainer(cut), /truncated header/);
      }
    }
  });

  test('trailing bytes are rejected', () => {
    const longer = new Uint8Array(file.length + 3);
    longer.set(file);
    expectBadFile(() => readContainer(longer), /3 unexpected bytes after the 37-byte payload/);
  });

  test('random single-byte header mutations are caught by the header CRC (or the magic/version checks)', () => {
    const rand = mulberry32(1234);
    for (let trial = 0; trial < 2000; trial++) {
      const at = Math.floor(rand() * CONTAINER_HEADER_BYTES);
      const delta = 1 + Math.floor(rand() * 255);
      const mutated = file.slice();
      mutated[at] = (mutated[at]! + delta) & 255;
      const expected = at < 4 ? /not a tokenpress file/ : at < 6 ? /format version \d+ is not supported/ : /header checksum mismatch/;
      expectBadFile(() => readContainer(mutated), expected);
    }
  });

  test('payload corruption passes the container but fails verifyChecksum', () => {
    const header = headers.static!;
    const corrupt = original.slice();
    corrupt[17] = corrupt[17]! ^ 0x20;
    expectBadFile(() => verifyChecksum(header, corrupt), /checksum mismatch: expected CRC-32 0x[0-9a-f]{8}, the decoded bytes give 0x[0-9a-f]{8}/);
    expectBadFile(() => verifyChecksum(header, original.subarray(1)), /checksum mismatch: the header declares 315 original bytes, decoding gave 314/);
    expect(containerChecksum(original)).toBe(header.checksum);
  });

  test('wrong magic names the expected bytes', () => {
    const png = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
    expectBadFile(() => readContainer(png), /not a tokenpress file: expected magic bytes 89 54 50 5a .*found 89 50 4e 47/);
    expectBadFile(() => readContainer(new TextEncoder().encode('hello world')), /not a tokenpress file/);
  });

  test('unsupported version names the supported ones', () => {
    const v2 = file.slice();
    new DataView(v2.buffer).setUint16(4, 2, true);
    expectBadFile(() => readContainer(v2), /format version 2 is not supported \(this tokenpress reads version 1\)/);
    // Checked before the header CRC: a future header may have another layout.
    expectBadFile(() => readContainer(resealed(file, (dv) => dv.setUint16(4, 0, true))), /format version 0 is not supported/);
  });

  test('huge declared sizes are rejected before anything is allocated', () => {
    const huge = resealed(file, (dv) => dv.setBigUint64(20, 0xffffffffffffffffn, true));
    expectBadFile(() => readContainer(huge), /original length 18446744073709551615 bytes exceeds the limit of 4294967296 bytes/);
    expectBadFile(() => readContainer(huge, { maxOriginalBytes: Number.MAX_SAFE_INTEGER }), /exceeds the limit of 9007199254740991/);
    const justOver = resealed(file, (dv) => dv.setBigUint64(20, 2n ** 32n + 1n, true));
    expectBadFile(() => readContainer(justOver), /original length 4294967297 bytes exceeds/);
    const small = resealed(file, (dv) => dv.setBigUint64(20, 1000n, true));
    expectBadFile(() => readContainer(small, { maxOriginalBytes: 999 }), /original length 1000 bytes exceeds the limit of 999/);
    expect(readContainer(small, { maxOriginalBytes: 1000 }).header.originalLength).toBe(1000);
    const hugePayload = resealed(file, (dv) => dv.setBigUint64(32, 2n ** 63n, true));
    expectBadFile(() => readContainer(hugePayload), /truncated payload: the header declares 9223372036854775808 bytes, 37 are present/);
  });

  test('field ranges are checked (with a valid header CRC)', () => {
    const cases: [string, (dv: DataView, b: Uint8Array) => void, RegExp][] = [
      ['mode 3', (dv) => dv.setUint8(6, 3), /mode 3 is unknown/],
      ['mode 255', (dv) => dv.setUint8(6, 255), /mode 255 is unknown/],
      ['flags', (dv) => dv.setUint8(7, 1), /flags 0x1 are unknown/],
      ['reserved', (dv) => dv.setUint8(19, 9), /reserved byte 19 is 9/],
      ['windowBits 15', (dv) => dv.setUint16(16, 15, true), /windowBits 15 is out of range \(expected an integer in \[16, 2048\]\)/],
      ['windowBits 2049', (dv) => dv.setUint16(16, 2049, true), /windowBits 2049 is out of range/],
      ['windowBits 0', (dv) => dv.setUint16(16, 0, true), /windowBits 0 is out of range/],
      ['tokenBits 12', (dv) => dv.setUint8(18, 12), /tokenBits 12 is invalid \(expected 8 or 16\)/],
      ['tokenBits 0', (dv) => dv.setUint8(18, 0), /tokenBits 0 is invalid/],
      // equal-info -> adaptive keeps the identity and window fields, which adaptive must not have.
      ['adaptive with identity', (dv) => dv.setUint8(6, 1), /mode adaptive has no model, but the model identity is fe dc/],
      ['static with windows', (dv) => dv.setUint8(6, 0), /mode static has no windows, but windowBits is 16 and tokenBits 16/],
    ];
    for (const [, edit, message] of cases) expectBadFile(() => readContainer(resealed(file, edit)), message);
  });

  test('random garbage never crashes and never passes', () => {
    const rand = mulberry32(99);
    for (let trial = 0; trial < 500; trial++) {
      const len = Math.floor(rand() * 120);
      const junk = Uint8Array.from({ length: len }, () => Math.floor(rand() * 256));
      if (trial % 2 === 0 && len >= 4) junk.set([0x89, 0x54, 0x50, 0x5a]);
      expectBadFile(() => readContainer(junk), /not a tokenpress file|not a valid tokenpress/);
    }
  });
});

describe('bad arguments', () => {
  test('writeContainer rejects bad headers with argument errors', () => {
    const s = headers.static!;
    expect(() => writeContainer({ ...s, mode: 'zip' as never }, payload)).toThrow(/header.mode: expected one of 'static', 'adaptive', 'equal-info', received "zip"/);
    expect(() => writeContainer({ ...s, modelIdentity: 'xyz' }, payload)).toThrow(/header.modelIdentity: expected a string of 16 hex digits for mode 'static'/);
    expect(() => writeContainer({ ...s, modelIdentity: null }, payload)).toThrow(TypeError);
    expect(() => writeContainer({ ...headers.adaptive!, modelIdentity: '0123456789abcdef' }, payload)).toThrow(/null for mode 'adaptive'/);
    expect(() => writeContainer({ ...s, windowBits: 64 }, payload)).toThrow(/header.windowBits: expected undefined/);
    expect(() => writeContainer({ ...headers['equal-info']!, windowBits: 15 }, payload)).toThrow(RangeError);
    expect(() => writeContainer({ ...headers['equal-info']!, windowBits: 16.5 }, payload)).toThrow(RangeError);
    expect(() => writeContainer({ ...headers['equal-info']!, tokenBits: 32 as never }, payload)).toThrow(/header.tokenBits: expected 8 or 16, received 32/);
    expect(() => writeContainer({ ...s, originalLength: -1 }, payload)).toThrow(RangeError);
    expect(() => writeContainer({ ...s, originalLength: 2 ** 53 }, payload)).toThrow(RangeError);
    expect(() => writeContainer({ ...s, checksum: 2 ** 32 }, payload)).toThrow(RangeError);
    expect(() => writeContainer({ ...s, chekcsum: 1 } as never, payload)).toThrow(/unknown option "chekcsum" \(did you mean "checksum"\?\)/);
    expect(() => writeContainer(undefined as never, payload)).toThrow(TypeError);
    expect(() => writeContainer(s, [1, 2] as never)).toThrow(/payload: expected a Uint8Array, received an array of length 2/);
  });

  test('readContainer rejects bad arguments', () => {
    const file = writeContainer(headers.static!, payload);
    expect(() => readContainer('x' as never)).toThrow(TypeError);
    expect(() => readContainer(file, { maxOrginalBytes: 5 } as never)).toThrow(/did you mean "maxOriginalBytes"/);
    expect(() => readContainer(file, { maxOriginalBytes: -1 })).toThrow(RangeError);
  });
});
