// Golden vectors (test/golden/): every coded format pinned byte for byte.
// Round trips cannot see a change made on both sides (a range-coder
// constant, a header field, a token order): files written before would then
// be rejected or misread. Here every vector is re-made from its fixed input
// and must equal the committed bytes, on every ISA path and thread count,
// and the committed bytes must decode to the input. To change a format on
// purpose: docs/testing.md ("Golden vectors").
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import * as lib from '../../lib/index.js';
import { backendInfo, setThreads } from '../../lib/index.js';
import { quantizeForRawCoder } from '../../lib/coding/raw.js';
import { native } from '../../lib/native.js';
import {
  GOLDEN_DIR, MANIFEST, VECTORS, decode, expectedDecode, produce, sha256,
  type GoldenApi, type GoldenVector, type Manifest,
} from '../golden/produce.mjs';
import { isasOnThisCpu, withIsaAsync } from './isa.js';

const api: GoldenApi = { lib, native, quantizeForRawCoder };
const stored = (file: string): Uint8Array => new Uint8Array(readFileSync(join(GOLDEN_DIR, 'vectors', file)));
const manifest = JSON.parse(readFileSync(join(GOLDEN_DIR, MANIFEST), 'utf8')) as Manifest;

/** First differing byte, for a message that says where a format moved. */
function firstDifference(a: Uint8Array, b: Uint8Array): string {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `byte ${i}: stored 0x${a[i]!.toString(16)}, made 0x${b[i]!.toString(16)}`;
  return a.length === b.length ? 'none' : `lengths ${a.length} (stored) vs ${b.length} (made)`;
}

function expectSameBytes(made: Uint8Array, v: GoldenVector, label: string): void {
  const want = stored(v.file);
  const same = made.length === want.length && Buffer.from(made).equals(Buffer.from(want));
  const why = same ? '' : ` (${firstDifference(want, made)}). A format change must be deliberate: see docs/testing.md`;
  expect(same, `${label} ${v.file} differs from the golden vector${why}`).toBe(true);
}

let threads = 1;
beforeAll(() => {
  threads = backendInfo().threads;
});
afterAll(() => {
  setThreads(threads);
});

describe('golden vectors', () => {
  test('the manifest lists every vector with its size and sha256, and the files match it', () => {
    expect(manifest.vectors.map((e) => e.file)).toEqual(VECTORS.map((v) => v.file));
    for (const [i, v] of VECTORS.entries()) {
      const e = manifest.vectors[i]!;
      expect({ kind: e.kind, input: e.input, options: e.options }, v.file).toEqual({ kind: v.kind, input: v.input, options: v.options });
      const bytes = stored(v.file);
      expect(bytes.length, v.file).toBe(e.bytes);
      expect(sha256(bytes), v.file).toBe(e.sha256);
    }
  });

  test('every kind of coded output has a vector', () => {
    const kinds = new Set(VECTORS.map((v) => v.kind));
    expect([...kinds].sort()).toEqual(['adaptive', 'equal-info', 'raw', 'static', 'tpm', 'tpz']);
    const zipModes = new Set(VECTORS.filter((v) => v.kind === 'tpz').map((v) => v.options.mode));
    expect([...zipModes].sort()).toEqual([...lib.ZIP_MODES].sort());
  });

  for (const v of VECTORS) {
    test(`${v.file}: re-made byte for byte on every ISA path, 1 and 2 threads`, async () => {
      for (const isa of isasOnThisCpu()) {
        await withIsaAsync(isa, async () => {
          for (const n of [1, 2]) {
            setThreads(n);
            expectSameBytes(await produce(api, v, stored), v, `isa=${isa} threads=${n}:`);
          }
        });
      }
    });

    test(`${v.file}: the stored bytes decode to the input`, async () => {
      const bytes = stored(v.file);
      const back = await decode(api, v, bytes, stored);
      const want = expectedDecode(v, bytes);
      expect(back.length).toBe(want.length);
      expect(Buffer.from(back).equals(Buffer.from(want))).toBe(true);
    });
  }

  test('the .tpz header fields sit where the container format says (magic, version 1)', () => {
    for (const v of VECTORS.filter((x) => x.kind === 'tpz')) {
      const b = stored(v.file);
      expect([...b.subarray(0, 4)], v.file).toEqual([0x89, 0x54, 0x50, 0x5a]);
      const { header } = lib.readContainer(b);
      expect(header.mode, v.file).toBe(v.options.mode);
    }
  });
});
