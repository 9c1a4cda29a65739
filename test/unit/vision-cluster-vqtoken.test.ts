// VQToken k-means (lib/vision/vqtoken.ts) against its float64 JS reference
// (lib/vision/reference/vqtoken.ts) on awkward sizes: blobs over frames,
// K > tokens, duplicates, zero vectors, adaptive K; argument errors.
import { describe, expect, test } from 'vitest';
import { tensor } from '../../lib/tensor.js';
import { vqToken, vqTokenAsync } from '../../lib/vision/vqtoken.js';
import { vqTokenReference } from '../../lib/vision/reference/vqtoken.js';
import { mulberry32 } from '../reference/random.js';

/** rows tokens around `centres` random directions (noise 0.05), dim d. */
function blobs(seed: number, rows: number, d: number, centres: number): Float32Array {
  const rng = mulberry32(seed);
  const c = Array.from({ length: centres }, () => Array.from({ length: d }, () => rng() * 2 - 1));
  const out = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    const k = Math.floor(rng() * centres);
    for (let j = 0; j < d; j++) out[i * d + j] = c[k]![j]! * (1 + rng()) + (rng() - 0.5) * 0.05;
  }
  return out;
}

function expectMatches(x: Float32Array, shape: number[], opt: Parameters<typeof vqTokenReference>[3] = {}) {
  const d = shape[shape.length - 1]!;
  const rows = x.length / d;
  const got = vqToken(tensor('f32', shape, x), opt);
  const ref = vqTokenReference(x, rows, d, opt);
  expect(got.k).toBe(ref.k);
  expect(Array.from(got.assignment.data)).toEqual(Array.from(ref.codes));
  expect(got.assignment.shape).toEqual(shape.slice(0, -1));
  expect(Array.from(got.sizes.data)).toEqual(Array.from(ref.counts));
  expect(got.tokens.shape).toEqual([ref.k, d]);
  for (let i = 0; i < ref.codebook.length; i++) expect(got.tokens.data[i]).toBeCloseTo(ref.codebook[i]!, 5);
  return got;
}

describe('vqToken', () => {
  test('blobs over 3 frames: code map [t, n], codebook and counts as the reference', () => {
    const x = blobs(1, 3 * 7, 5, 4);
    const r = expectMatches(x, [3, 7, 5], { k: 4, seed: 7 });
    expect(r.sizes.data.reduce((a, b) => a + b, 0)).toBe(21);
  });
  test('default K = 32 on 101 tokens of 40 blobs, and the seed changes the draws deterministically', () => {
    const x = blobs(2, 101, 8, 40);
    const a = expectMatches(x, [101, 8]);
    expect(a.k).toBe(32);
    expectMatches(x, [101, 8], { seed: 99 });
    expect(Array.from(vqToken(tensor('f32', [101, 8], x)).assignment.data)).toEqual(Array.from(a.assignment.data));
  });
  test('K > tokens clamps K; one token; no token', () => {
    expectMatches(blobs(3, 5, 3, 5), [5, 3]);
    const one = expectMatches(new Float32Array([3, 4]), [1, 2]);
    expect(Array.from(one.tokens.data)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    const none = vqToken(tensor('f32', [0, 4], new Float32Array(0)));
    expect(none.k).toBe(0);
    expect(none.assignment.data.length).toBe(0);
  });
  test('duplicates and zero vectors (a zero token stays zero)', () => {
    const x = new Float32Array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 2, 0, 0, 0, 0, 5, 5, 0]);
    expectMatches(x, [7, 3], { k: 3 });
  });
  test('adaptive K by the official elbow rule (K in [12, maxK], max(argmax + 4, 12))', () => {
    const x = blobs(4, 90, 6, 20);
    const r = expectMatches(x, [90, 6], { adaptive: true, maxK: 16 });
    expect(r.k).toBeGreaterThanOrEqual(12);
  });
  test('async equals sync', async () => {
    const x = blobs(5, 40, 4, 6);
    const a = vqToken(tensor('f32', [40, 4], x), { k: 6, seed: 3 });
    const b = await vqTokenAsync(tensor('f32', [40, 4], x), { k: 6, seed: 3 });
    expect(b).toEqual(a);
  });
  test('argument errors name the argument; inputs untouched', async () => {
    const x = blobs(6, 10, 4, 2);
    const copy = x.slice();
    expect(() => vqToken(x)).toThrow(TypeError);
    expect(() => vqToken(tensor('f32', [10, 4], x), { k: 0 })).toThrow(/options\.k/);
    expect(() => vqToken(tensor('f32', [10, 4], x), { adaptive: true, maxK: 13 })).toThrow(/options\.maxK.*>= 14.*13/);
    expect(() => vqToken(tensor('f32', [10, 4], x), { tol: -1 })).toThrow(RangeError);
    expect(() => vqToken(tensor('f32', [10, 4], x), { kk: 3 } as never)).toThrow(/kk/);
    expect(() => vqToken(tensor('f32', [2, 2, 2, 5], x.slice(0, 40)))).toThrow(/\[n, dim\] or \[t, n, dim\]/);
    const bad = x.slice();
    bad[5] = NaN;
    expect(() => vqToken(tensor('f32', [10, 4], bad))).toThrow(/tokens\[5\]/);
    await expect(vqTokenAsync(tensor('f32', [10, 4], x), { k: -1 })).rejects.toThrow(/options\.k/);
    expect(x).toEqual(copy);
  });
});
