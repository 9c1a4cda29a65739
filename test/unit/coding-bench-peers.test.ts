// The coding benchmark's peers (bench/range-coder-peer.ts, bench/classical.ts):
// the fixed distribution and its sampler, the thi.ng block driver's round
// trip, the memcpy copy, and the classical runner's rows (a real gzip round
// trip, and a tool that is missing with install off). No timings asserted.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  entropyBits,
  FIXED_DISTRIBUTION_ENTROPY_BITS,
  fixedDistribution,
  fixedDistributionBytes,
  measureMemcpy,
  rankToByte,
  runRangeCoderPeer,
  THING_BLOCK_BYTES,
  thingDecodeBlocks,
  thingEncodeBlocks,
} from '../../bench/range-coder-peer.js';
import { CLASSICAL_COMPRESSORS, formatClassicalTable, runClassical } from '../../bench/classical.js';

/** Byte equality without vitest's slow element-wise diff on megabyte arrays. */
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);

describe('fixed distribution', () => {
  test('is a distribution over all 256 bytes with entropy between 4 and 5 bits', () => {
    const p = fixedDistribution();
    expect(p.length).toBe(256);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(Math.min(...p)).toBeGreaterThan(1 / 65536);
    expect(FIXED_DISTRIBUTION_ENTROPY_BITS).toBeGreaterThan(4);
    expect(FIXED_DISTRIBUTION_ENTROPY_BITS).toBeLessThan(5);
    expect(entropyBits(new Float64Array(256).fill(1 / 256))).toBeCloseTo(8, 12);
    // Ranks map to distinct bytes, and probability falls with rank.
    expect(new Set(Array.from({ length: 256 }, (_, r) => rankToByte(r))).size).toBe(256);
    for (let r = 1; r < 256; r++) expect(p[rankToByte(r)]!).toBeLessThan(p[rankToByte(r - 1)]!);
  });

  test('the sampler is deterministic and follows the distribution', () => {
    const n = 1_000_003;
    const a = fixedDistributionBytes(n, 7);
    expect(same(fixedDistributionBytes(n, 7), a)).toBe(true);
    expect(same(fixedDistributionBytes(1000, 8), a.subarray(0, 1000))).toBe(false);
    expect(fixedDistributionBytes(0, 1).length).toBe(0);
    const p = fixedDistribution();
    const counts = new Float64Array(256);
    for (const b of a) counts[b]!++;
    // Every byte within 5 standard deviations of its expected count.
    for (let b = 0; b < 256; b++) {
      const mean = n * p[b]!;
      expect(Math.abs(counts[b]! - mean)).toBeLessThan(5 * Math.sqrt(mean * (1 - p[b]!)) + 1);
    }
    // The empirical entropy matches.
    expect(entropyBits(counts.map((c) => c / n))).toBeCloseTo(FIXED_DISTRIBUTION_ENTROPY_BITS, 2);
  });
});

describe('thi.ng driver', () => {
  test.each([0, 1, 17, 4099, THING_BLOCK_BYTES + 3])('round trip of %i bytes, in blocks', (n) => {
    const data = fixedDistributionBytes(n, 3);
    const blocks = thingEncodeBlocks(data);
    expect(blocks.length).toBe(Math.ceil(n / THING_BLOCK_BYTES));
    expect(same(thingDecodeBlocks(blocks, n), data)).toBe(true);
    if (n > 0) expect(() => thingDecodeBlocks(blocks, n - 1)).toThrow(/decoded more than/);
    expect(() => thingDecodeBlocks(blocks, n + 1)).toThrow(/decoded \d+ of/);
  });

  test('runRangeCoderPeer round-trips and codes near the entropy', async () => {
    const r = await runRangeCoderPeer(300_001, { budgetMs: 0, iterations: 1 });
    expect(r.roundTripOk).toBe(true);
    // Adaptive order-0: the learning cost is small at this size, and it can never beat the entropy by much.
    expect(r.bitsPerByte).toBeGreaterThan(FIXED_DISTRIBUTION_ENTROPY_BITS - 0.02);
    expect(r.bitsPerByte).toBeLessThan(FIXED_DISTRIBUTION_ENTROPY_BITS + 0.05);
    expect(r.encodeMBs).toBeGreaterThan(0);
    expect(r.decodeMBs).toBeGreaterThan(0);
    expect(r.how).toMatch(/adaptive order-0/);
    await expect(runRangeCoderPeer(0)).rejects.toThrow(RangeError);
  });

  test('measureMemcpy copies and reports a positive rate', async () => {
    const r = await measureMemcpy(1 << 20, { budgetMs: 0, iterations: 2 });
    expect(r.bytes).toBe(1 << 20);
    expect(r.MBs).toBeGreaterThan(0);
    expect(Number.isFinite(r.MBs)).toBe(true);
  });
});

describe('classical runner', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tokenpress-classical-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'text.txt');
  const text = 'It was the best of times, it was the worst of times, it was the age of wisdom.\n'.repeat(300);
  writeFileSync(file, text);

  test('gzip round trip gives a full row', async () => {
    const seen: string[] = [];
    const rows = await runClassical(file, { only: ['gzip -9'], install: false, onProgress: (n) => seen.push(n) });
    expect(seen).toEqual(['gzip -9']);
    expect(rows).toHaveLength(1);
    const r = rows[0]!;
    expect(r.command).toBe('gzip -9 -c input > x.gz');
    expect(r.roundTripOk).toBe(true);
    // Highly repetitive text: far below 8 bits/byte, and the size agrees with bits/byte.
    expect(r.bytes).toBeGreaterThan(18);
    expect(r.bitsPerByte!).toBeLessThan(1);
    expect(r.bitsPerByte!).toBeCloseTo((8 * r.bytes!) / text.length, 12);
    expect(r.compressMBs!).toBeGreaterThan(0);
    expect(formatClassicalTable(rows)).toMatch(/gzip -9 .* yes/);
  });

  test('a missing tool with install off is a row with nulls and a note', async () => {
    const path = process.env.PATH;
    process.env.PATH = join(dir, 'no-tools-here');
    try {
      const rows = await runClassical(file, { only: ['zpaq -m4', 'xz -9e'], install: false });
      expect(rows.map((r) => r.name)).toEqual(['xz -9e', 'zpaq -m4']);
      for (const r of rows) {
        expect(r.bytes).toBeNull();
        expect(r.bitsPerByte).toBeNull();
        expect(r.compressMBs).toBeNull();
        expect(r.roundTripOk).toBeNull();
        expect(r.note).toMatch(/^skipped: (xz|zpaq) not found \(package (xz-utils|zpaq)\); not installing/);
      }
      expect(formatClassicalTable(rows)).toMatch(/zpaq -m4: skipped/);
    } finally {
      process.env.PATH = path;
    }
  });

  test('names every compressor of the issue, and rejects unknown ones', async () => {
    for (const name of ['gzip -9', 'bzip2 -9', 'xz -9e', 'zstd -19', 'brotli -q 11', '7zz PPMd -mx=9', 'zpaq -m5']) {
      expect(CLASSICAL_COMPRESSORS).toContain(name);
    }
    await expect(runClassical(file, { only: ['gzip -6'] })).rejects.toThrow(/unknown compressor "gzip -6"/);
  });
});
