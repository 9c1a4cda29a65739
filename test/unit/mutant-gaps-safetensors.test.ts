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
import { badFileMessage } from './bad-file.js';
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

const refusal = badFileMessage;

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

/** A file whose header is `header` (JSON text) and whose data region has `data` bytes. */
function withHeader(header: unknown, data = 0): Uint8Array {
  const json = typeof header === 'string' ? header : JSON.stringify(header);
  return file(new TextEncoder().encode(json).length, json, data);
}
const body = (header: unknown, data = 0) => refusal(() => decodeSafetensors(withHeader(header, data))).replace('<buffer>: not a valid safetensors file: ', '');

describe('the JSON header, by message', () => {
  test('not an object', () => {
    expect(body('[]')).toBe('header is not a JSON object');
    expect(body('null')).toBe('header is not a JSON object');
    expect(body('12')).toBe('header is not a JSON object');
    expect(body('{"a":')).toMatch(/^header is not UTF-8 JSON \(/);
  });
  test('__metadata__', () => {
    expect(body({ __metadata__: [] })).toBe('__metadata__ is not an object');
    expect(body({ __metadata__: null })).toBe('__metadata__ is not an object');
    expect(body({ __metadata__: 'x' })).toBe('__metadata__ is not an object');
    expect(body({ __metadata__: { a: 'b', n: 1 } })).toBe('__metadata__.n is not a string');
    expect(decodeSafetensors(withHeader({ __metadata__: { a: 'b' } })).metadata).toEqual({ a: 'b' });
  });
  test('tensor entries', () => {
    const t = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
    expect(body({ t: [] })).toBe('tensor "t" is not an object');
    expect(body({ t: null })).toBe('tensor "t" is not an object');
    expect(body({ t: 5 })).toBe('tensor "t" is not an object');
    expect(body({ t: { ...t, extra: 1 } }, 8)).toBe('tensor "t" has unknown field "extra"');
    expect(body({ t: { ...t, dtype: 3 } }, 8)).toBe('tensor "t" has no dtype string');
    expect(body({ t: { ...t, dtype: 'I32' } }, 8)).toBe('tensor "t" has unsupported dtype "I32" (supported: F32, F16, BF16)');
    for (const d of ['BOOL', 'U8', 'F64', 'F8_E4M3', 'C64', 'F4']) expect(body({ t: { ...t, dtype: d } }, 8)).toMatch(/has unsupported dtype/);
    expect(body({ t: { ...t, dtype: 'F31' } }, 8)).toBe('tensor "t" has unknown dtype "F31" (supported: F32, F16, BF16)');
    expect(body({ t: { ...t, shape: [-1] } }, 8)).toBe('tensor "t" shape is not an array of non-negative integers');
    expect(body({ t: { ...t, shape: 2 } }, 8)).toBe('tensor "t" shape is not an array of non-negative integers');
    expect(body({ t: { ...t, shape: [1.5] } }, 8)).toBe('tensor "t" shape is not an array of non-negative integers');
    for (const off of [[0], [0, 8, 8], 'x', [0, -8], [0.5, 8], [-1, 8]]) {
      expect(body({ t: { ...t, data_offsets: off } }, 8)).toBe('tensor "t" data_offsets is not [begin, end] with non-negative integers');
    }
    expect(body({ t: { ...t, data_offsets: [8, 0] } }, 8)).toBe('tensor "t" data_offsets [8, 0] out of range (data region is 8 bytes)');
    expect(body({ t: { ...t, data_offsets: [0, 9] } }, 8)).toBe('tensor "t" data_offsets [0, 9] out of range (data region is 8 bytes)');
    expect(body({ t: { ...t, shape: [3] } }, 8)).toBe('tensor "t" shape [3] F32 needs 12 bytes, data_offsets span 8');
    expect(body({ t: { ...t, dtype: 'F16' } }, 8)).toBe('tensor "t" shape [2] F16 needs 4 bytes, data_offsets span 8');
    expect(body({ t: { ...t, shape: [2 ** 30, 2 ** 30, 2 ** 30] } }, 8)).toBe(`tensor "t" shape [${2 ** 30}, ${2 ** 30}, ${2 ** 30}] F32 needs more than 2^53 bytes, data_offsets span 8`);
    expect(body({ t: { ...t, shape: [2 ** 30, 0, 2 ** 30], data_offsets: [0, 0] } }, 8)).toBe('the tensors cover 0 bytes of the 8-byte data region');
  });
  test('the entries tile the data region: sorted by begin, no gap, no overlap, to the end', () => {
    const a = { dtype: 'F32', shape: [1], data_offsets: [4, 8] }, b = { dtype: 'F16', shape: [2], data_offsets: [0, 4] };
    const h = parseSafetensorsHeader(withHeader({ a, b }, 8), withHeader({ a, b }, 8).length);
    expect(h.entries.map((e) => [e.name, e.dtype, e.shape, e.begin, e.end])).toEqual([['b', 'f16', [2], 0, 4], ['a', 'f32', [1], 4, 8]]);
    const z = { dtype: 'F32', shape: [0], data_offsets: [4, 4] };
    expect(parseSafetensorsHeader(withHeader({ a, z, b }, 8), withHeader({ a, z, b }, 8).length).entries.map((e) => e.name)).toEqual(['b', 'z', 'a']);
    expect(body({ a: { ...a, data_offsets: [5, 9] }, b }, 9)).toBe('gap before tensor "a" (bytes 4..5 belong to no tensor)');
    expect(body({ a: { ...a, data_offsets: [3, 7] }, b }, 8)).toBe('tensor "a" overlaps the previous tensor (starts at 3, previous ends at 4)');
    expect(body({ a, b }, 12)).toBe('the tensors cover 8 bytes of the 12-byte data region');
    expect(body({ b: { ...b, data_offsets: [4, 8] } }, 8)).toBe('gap before tensor "b" (bytes 0..4 belong to no tensor)');
  });
});

describe('encodeSafetensors', () => {
  test('header layout: metadata only when given, JSON padded with spaces to a multiple of 8, data in order', () => {
    const x = { dtype: 'f32' as const, shape: [2], data: Float32Array.of(1, -2) };
    const bytes = encodeSafetensors([['x', x]]);
    const json = JSON.stringify({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
    const n = Math.ceil(json.length / 8) * 8;
    expect(Number(new DataView(bytes.buffer).getBigUint64(0, true))).toBe(n);
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + n))).toBe(json + ' '.repeat(n - json.length));
    expect(Array.from(new Float32Array(bytes.slice(8 + n).buffer))).toEqual([1, -2]);
    expect(bytes.length).toBe(8 + n + 8);
    const withMeta = new TextDecoder().decode(encodeSafetensors([['x', x]], { k: 'v' }));
    expect(withMeta).toContain('"__metadata__":{"k":"v"}');
    expect(new TextDecoder().decode(encodeSafetensors([['x', x]], {}))).not.toContain('__metadata__');
    const exact = encodeSafetensors([]); // "{}" padded to 8
    expect(new TextDecoder().decode(exact.subarray(8))).toBe('{}      ');
    const rt = decodeSafetensors(encodeSafetensors([['b', { dtype: 'bf16', shape: [1, 2], data: Uint16Array.of(1, 2) }], ['x', x]], { k: 'v' }));
    expect(rt.metadata).toEqual({ k: 'v' });
    expect(Array.from(rt.tensors.get('b')!.data)).toEqual([1, 2]);
    expect(rt.tensors.get('b')!.shape).toEqual([1, 2]);
    expect(Array.from(rt.tensors.get('x')!.data)).toEqual([1, -2]);
  });
  test('refusals', () => {
    const x = { dtype: 'f32' as const, shape: [2], data: Float32Array.of(1, 2) };
    expect(() => encodeSafetensors([['__metadata__', x]])).toThrow(new TypeError('encodeSafetensors: "__metadata__" is not a tensor name'));
    expect(() => encodeSafetensors([['x', { ...x, strides: [1] }]])).toThrow(new TypeError('encodeSafetensors: tensor "x" must be contiguous'));
    expect(() => encodeSafetensors([['x', { ...x, shape: [3] }]])).toThrow(new RangeError('encodeSafetensors: tensor "x" has 2 elements, its shape [3] needs 3'));
  });
  test('readSafetensors reads every tensor at its offset', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tp-st2-'));
    try {
      const p = join(dir, 'two.safetensors');
      writeFileSync(p, encodeSafetensors([['a', { dtype: 'f16', shape: [3], data: Uint16Array.of(7, 8, 9) }], ['b', { dtype: 'f32', shape: [1], data: Float32Array.of(0.5) }]]));
      const r = readSafetensors(p);
      expect(Array.from(r.tensors.get('a')!.data)).toEqual([7, 8, 9]);
      expect(Array.from(r.tensors.get('b')!.data)).toEqual([0.5]);
      expect(r.tensors.get('a')!.dtype).toBe('f16');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
