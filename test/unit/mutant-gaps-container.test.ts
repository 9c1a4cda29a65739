// The .tpz container (lib/coding/container.ts) against its documented
// 44-byte layout, written out here byte by byte, with zlib's CRC-32
// (node:zlib) as the checksum reference; every refusal at its boundary and
// by its message. Stryker showed field checks and messages that could
// change with no test failing.
import { crc32 } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import {
  CONTAINER_HEADER_BYTES, containerChecksum, readContainer, verifyChecksum, writeContainer, type ContainerHeader,
} from '../../lib/coding/container.js';
import { badFileMessage } from './bad-file.js';

const EQ: ContainerHeader = { mode: 'equal-info', modelIdentity: '0123456789abcdef', windowBits: 300, tokenBits: 16, originalLength: 3_000_000_005, checksum: 0xdeadbeef };

/** The layout of the module's header comment, built by hand. */
function expectedImage(h: ContainerHeader, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(44 + payload.length);
  const dv = new DataView(out.buffer);
  out.set([0x89, 0x54, 0x50, 0x5a], 0);
  dv.setUint16(4, 1, true);
  out[6] = { static: 0, adaptive: 1, 'equal-info': 2 }[h.mode];
  if (h.modelIdentity) for (let i = 0; i < 8; i++) out[8 + i] = Number.parseInt(h.modelIdentity.substr(2 * i, 2), 16);
  dv.setUint16(16, h.windowBits ?? 0, true);
  out[18] = h.tokenBits ?? 0;
  dv.setBigUint64(20, BigInt(h.originalLength), true);
  dv.setUint32(28, h.checksum, true);
  dv.setBigUint64(32, BigInt(payload.length), true);
  dv.setUint32(40, crc32(out.subarray(0, 40)), true);
  out.set(payload, 44);
  return out;
}

/** A valid image with `edit` applied to it, the header CRC recomputed. */
function patched(h: ContainerHeader, payload: Uint8Array, edit: (b: Uint8Array, dv: DataView) => void): Uint8Array {
  const b = expectedImage(h, payload);
  const dv = new DataView(b.buffer);
  edit(b, dv);
  dv.setUint32(40, crc32(b.subarray(0, 40)), true);
  return b;
}

const refusal = badFileMessage;

const P = Uint8Array.of(7, 8, 9);
const BAD = 'not a valid tokenpress (.tpz) file: ';

describe('writeContainer: the documented layout', () => {
  test('equal-info, static and adaptive headers, byte for byte', () => {
    expect(CONTAINER_HEADER_BYTES).toBe(44);
    expect(writeContainer(EQ, P)).toEqual(expectedImage(EQ, P));
    const big = { ...EQ, originalLength: 2 ** 40 + 5 }; // above 2^32: all 8 bytes of the u64
    expect(writeContainer(big, P)).toEqual(expectedImage(big, P));
    expect(readContainer(writeContainer(big, P), { maxOriginalBytes: 2 ** 41 }).header.originalLength).toBe(2 ** 40 + 5);
    const st: ContainerHeader = { mode: 'static', modelIdentity: 'FFEEDDCCBBAA9988', originalLength: 0, checksum: 0 };
    expect(writeContainer(st, new Uint8Array(0))).toEqual(expectedImage(st, new Uint8Array(0)));
    const ad: ContainerHeader = { mode: 'adaptive', modelIdentity: null, originalLength: 3, checksum: 0xffffffff };
    expect(writeContainer(ad, P)).toEqual(expectedImage(ad, P));
  });
  test('readContainer gives back exactly the header and a view of the payload', () => {
    const img = writeContainer(EQ, P);
    const r = readContainer(img);
    expect(r.header).toEqual(EQ);
    expect(Array.from(r.payload)).toEqual([7, 8, 9]);
    expect(r.payload.buffer).toBe(img.buffer);
    const ad = readContainer(writeContainer({ mode: 'adaptive', modelIdentity: null, originalLength: 3, checksum: 1 }, P)).header;
    expect(ad).toEqual({ mode: 'adaptive', modelIdentity: null, originalLength: 3, checksum: 1 });
    expect(readContainer(writeContainer({ mode: 'static', modelIdentity: 'FFEEDDCCBBAA9988', originalLength: 0, checksum: 0 }, P)).header)
      .toEqual({ mode: 'static', modelIdentity: 'ffeeddccbbaa9988', originalLength: 0, checksum: 0 });
  });
  test('containerChecksum is zlib\'s CRC-32', () => {
    const data = new TextEncoder().encode('The quick brown fox');
    expect(containerChecksum(data)).toBe(crc32(data));
    expect(containerChecksum(new Uint8Array(0))).toBe(0);
  });
});

describe('writeContainer: bad headers, by message', () => {
  const cases: [unknown, unknown, ErrorConstructor, string][] = [
    [undefined, P, TypeError, 'header: expected a ContainerHeader object, received undefined'],
    [{ ...EQ, mode: 'zip' }, P, TypeError, "header.mode: expected one of 'static', 'adaptive', 'equal-info', received \"zip\""],
    [{ ...EQ, mode: 3 }, P, TypeError, "header.mode: expected one of 'static', 'adaptive', 'equal-info', received 3"],
    [{ mode: 'adaptive', modelIdentity: '0123456789abcdef', originalLength: 0, checksum: 0 }, P, TypeError, "header.modelIdentity: expected null for mode 'adaptive' (it has no model), received \"0123456789abcdef\""],
    [{ ...EQ, modelIdentity: '0123456789abcde' }, P, TypeError, "header.modelIdentity: expected a string of 16 hex digits for mode 'equal-info', received \"0123456789abcde\""],
    [{ ...EQ, modelIdentity: '0123456789abcdeg' }, P, TypeError, 'a string of 16 hex digits'],
    [{ ...EQ, modelIdentity: 'x0123456789abcdef' }, P, TypeError, 'a string of 16 hex digits'],
    [{ ...EQ, modelIdentity: null }, P, TypeError, "header.modelIdentity: expected a string of 16 hex digits for mode 'equal-info', received null"],
    [{ ...EQ, windowBits: 15 }, P, RangeError, 'header.windowBits: expected an integer in [16, 2048], received 15'],
    [{ ...EQ, windowBits: 2049 }, P, RangeError, 'header.windowBits: expected an integer in [16, 2048], received 2049'],
    [{ ...EQ, tokenBits: 12 }, P, RangeError, 'header.tokenBits: expected 8 or 16, received 12'],
    [{ mode: 'static', modelIdentity: '0123456789abcdef', windowBits: 16, originalLength: 0, checksum: 0 }, P, TypeError, "header.windowBits: expected undefined (only mode 'equal-info' has windows), received 16"],
    [{ mode: 'static', modelIdentity: '0123456789abcdef', tokenBits: 8, originalLength: 0, checksum: 0 }, P, TypeError, "header.tokenBits: expected undefined (only mode 'equal-info' has token bits), received 8"],
    [{ ...EQ, originalLength: -1 }, P, RangeError, 'header.originalLength: expected an integer >= 0, received -1'],
    [{ ...EQ, checksum: 2 ** 32 }, P, RangeError, 'header.checksum: expected an integer in [0, 4294967295], received 4294967296'],
    [{ ...EQ, extra: 1 }, P, TypeError, 'header: unknown option "extra"'],
    [EQ, [1, 2], TypeError, 'payload: expected a Uint8Array, received an array of length 2'],
  ];
  for (const [h, payload, kind, message] of cases) {
    test(message, () => {
      expect(() => writeContainer(h as ContainerHeader, payload as Uint8Array)).toThrow(kind);
      expect(() => writeContainer(h as ContainerHeader, payload as Uint8Array)).toThrow(message);
    });
  }
  test('the window bounds themselves and 8-bit tokens are accepted', () => {
    for (const windowBits of [16, 2048]) expect(readContainer(writeContainer({ ...EQ, windowBits, tokenBits: 8 }, P)).header).toMatchObject({ windowBits, tokenBits: 8 });
  });
});

describe('readContainer: every refusal at its boundary', () => {
  test('magic', () => {
    expect(refusal(() => readContainer(new Uint8Array(0)))).toBe('not a tokenpress file: expected magic bytes 89 54 50 5a ("\\x89TPZ"), found an empty file');
    expect(refusal(() => readContainer(Uint8Array.of(0x89, 0x54, 0x50, 0x5b, 1, 0)))).toBe('not a tokenpress file: expected magic bytes 89 54 50 5a ("\\x89TPZ"), found 89 54 50 5b');
    expect(refusal(() => readContainer(Uint8Array.of(0x89, 0x54)))).toBe(`${BAD}truncated header: 2 of 44 bytes (42 missing)`);
    expect(refusal(() => readContainer(Uint8Array.of(0x88)))).toMatch(/found 88$/);
  });
  test('version, then the header length', () => {
    const img = writeContainer(EQ, P);
    expect(refusal(() => readContainer(img.subarray(0, 5)))).toBe(`${BAD}truncated header: 5 of 44 bytes (39 missing)`);
    expect(refusal(() => readContainer(patched(EQ, P, (_, dv) => dv.setUint16(4, 2, true))))).toBe(`${BAD}format version 2 is not supported (this tokenpress reads version 1)`);
    expect(refusal(() => readContainer(patched(EQ, P, (_, dv) => dv.setUint16(4, 0, true))))).toMatch(/format version 0 is not supported/);
    expect(refusal(() => readContainer(img.subarray(0, 43)))).toBe(`${BAD}truncated header: 43 of 44 bytes (1 missing)`);
    expect(refusal(() => readContainer(img.subarray(0, 6)))).toBe(`${BAD}truncated header: 6 of 44 bytes (38 missing)`);
  });
  test('header CRC', () => {
    const img = writeContainer(EQ, P);
    img[30] = img[30]! ^ 1;
    const stored = new DataView(img.buffer).getUint32(40, true);
    expect(refusal(() => readContainer(img))).toBe(`${BAD}header checksum mismatch (stored CRC-32 0x${stored.toString(16).padStart(8, '0')}, computed 0x${crc32(img.subarray(0, 40)).toString(16).padStart(8, '0')}): the header is corrupt`);
    const low = patched(EQ, P, () => {});
    new DataView(low.buffer).setUint32(40, 0x00000abc, true);
    expect(refusal(() => readContainer(low))).toMatch(/\(stored CRC-32 0x00000abc, computed 0x[0-9a-f]{8}\)/);
  });
  test('mode, flags, reserved byte, model identity', () => {
    expect(refusal(() => readContainer(patched(EQ, P, (b) => { b[6] = 3; })))).toBe(`${BAD}mode 3 is unknown (expected 0 static, 1 adaptive or 2 equal-info)`);
    expect(refusal(() => readContainer(patched(EQ, P, (b) => { b[7] = 0x10; })))).toBe(`${BAD}flags 0x10 are unknown (expected 0)`);
    expect(refusal(() => readContainer(patched(EQ, P, (b) => { b[19] = 4; })))).toBe(`${BAD}reserved byte 19 is 4 (expected 0)`);
    const ad: ContainerHeader = { mode: 'adaptive', modelIdentity: null, originalLength: 3, checksum: 0 };
    expect(refusal(() => readContainer(patched(ad, P, (b) => { b[15] = 0xab; })))).toBe(`${BAD}mode adaptive has no model, but the model identity is 00 00 00 00 00 00 00 ab (expected zeros)`);
  });
  test('windowBits and tokenBits', () => {
    for (const w of [15, 2049, 0]) {
      expect(refusal(() => readContainer(patched(EQ, P, (_, dv) => dv.setUint16(16, w, true))))).toBe(`${BAD}windowBits ${w} is out of range (expected an integer in [16, 2048])`);
    }
    for (const w of [16, 2048]) expect(readContainer(patched(EQ, P, (_, dv) => dv.setUint16(16, w, true))).header.windowBits).toBe(w);
    for (const t of [0, 9, 32]) expect(refusal(() => readContainer(patched(EQ, P, (b) => { b[18] = t; })))).toBe(`${BAD}tokenBits ${t} is invalid (expected 8 or 16)`);
    expect(readContainer(patched(EQ, P, (b) => { b[18] = 8; })).header.tokenBits).toBe(8);
    const st: ContainerHeader = { mode: 'static', modelIdentity: '0123456789abcdef', originalLength: 0, checksum: 0 };
    expect(refusal(() => readContainer(patched(st, P, (_, dv) => dv.setUint16(16, 16, true))))).toBe(`${BAD}mode static has no windows, but windowBits is 16 and tokenBits 0 (expected 0 and 0)`);
    expect(refusal(() => readContainer(patched(st, P, (b) => { b[18] = 8; })))).toBe(`${BAD}mode static has no windows, but windowBits is 0 and tokenBits 8 (expected 0 and 0)`);
  });
  test('original length against maxOriginalBytes (default 2^32)', () => {
    const at = (len: number | bigint) => patched(EQ, P, (_, dv) => dv.setBigUint64(20, BigInt(len), true));
    expect(readContainer(at(2 ** 32)).header.originalLength).toBe(2 ** 32);
    expect(refusal(() => readContainer(at(2 ** 32 + 1)))).toBe(`${BAD}original length 4294967297 bytes exceeds the limit of 4294967296 bytes (raise maxOriginalBytes to accept it)`);
    expect(readContainer(at(10), { maxOriginalBytes: 10 }).header.originalLength).toBe(10);
    expect(refusal(() => readContainer(at(11), { maxOriginalBytes: 10 }))).toMatch(/original length 11 bytes exceeds the limit of 10 bytes/);
    expect(() => readContainer(at(0), { maxOriginalBytes: -1 })).toThrow(new RangeError('opts.maxOriginalBytes: expected an integer >= 0, received -1'));
    expect(() => readContainer(at(0), { maxOriginal: 1 } as never)).toThrow(TypeError);
  });
  test('payload length against the bytes present', () => {
    const img = writeContainer(EQ, P);
    expect(refusal(() => readContainer(img.subarray(0, 45)))).toBe(`${BAD}truncated payload: the header declares 3 bytes, 1 are present (2 missing)`);
    const more = new Uint8Array(img.length + 2);
    more.set(img);
    expect(refusal(() => readContainer(more))).toBe(`${BAD}2 unexpected bytes after the 3-byte payload`);
  });
  test('not a Uint8Array', () => {
    expect(() => readContainer([1, 2] as never)).toThrow(new TypeError('bytes: expected a Uint8Array, received an array of length 2'));
  });
});

describe('verifyChecksum', () => {
  const data = new TextEncoder().encode('abc');
  const h: ContainerHeader = { mode: 'adaptive', modelIdentity: null, originalLength: 3, checksum: crc32(data) };
  test('the right bytes pass; a wrong length or CRC is refused by message', () => {
    expect(() => verifyChecksum(h, data)).not.toThrow();
    expect(refusal(() => verifyChecksum(h, data.subarray(0, 2)))).toBe('checksum mismatch: the header declares 3 original bytes, decoding gave 2');
    expect(refusal(() => verifyChecksum({ ...h, checksum: 0x1f }, data))).toBe(`checksum mismatch: expected CRC-32 0x0000001f, the decoded bytes give 0x${crc32(data).toString(16).padStart(8, '0')}`);
    expect(() => verifyChecksum(h, 'abc' as never)).toThrow(new TypeError('original: expected a Uint8Array, received "abc"'));
  });
});
