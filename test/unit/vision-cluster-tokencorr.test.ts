// Token-correlation compression (lib/vision/tokencorr.ts) against its JS
// reference (lib/vision/reference/tokencorr.ts): repetitiveness, budget,
// IQR global branch, seeded local draws; awkward sizes; argument errors.
import { describe, expect, test } from 'vitest';
import { tensor } from '../../lib/tensor.js';
import { tokenCorrCompress, tokenCorrCompressAsync, tokenCorrCompressFrames } from '../../lib/vision/tokencorr.js';
import { percentileLinear, tokenCorrReference } from '../../lib/vision/reference/tokencorr.js';
import { mulberry32, randomF32 } from '../reference/random.js';

function crop(seed: number, n: number, d: number, repeats: number) {
  const rng = mulberry32(seed);
  const x = randomF32(rng, n * d);
  for (let r = 0; r < repeats && r + 1 < n; r++) x.copyWithin((r + 1) * d, 0, d); // a repeated pattern
  const deep = new Float32Array(n);
  const shallow = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    deep[i] = rng() * 0.01 + (rng() < 0.1 ? 0.2 : 0);
    shallow[i] = rng();
  }
  return { x, deep, shallow };
}

function expectMatches(n: number, d: number, seed: number, repeats: number, opt: { simThreshold?: number; countLimit?: number; seed?: number } = {}) {
  const { x, deep, shallow } = crop(seed, n, d, repeats);
  const got = tokenCorrCompress(tensor('f32', [n, d], x), { deepAttention: deep, shallowAttention: shallow, ...opt });
  const ref = tokenCorrReference(x, n, d, deep, shallow, opt);
  expect(Array.from(got.indices.data)).toEqual(ref.kept);
  expect(got.repetitive).toBe(ref.repetitive);
  return got;
}

describe('tokenCorrCompress', () => {
  test('repeated patterns shrink the budget; kept set as the reference', () => {
    const r = expectMatches(57, 4, 1, 20);
    expect(r.repetitive).toBeGreaterThanOrEqual(21);
    expect(r.indices.data.length).toBe(Math.round(57 * (1 - r.repetitive / 57)));
    expectMatches(57, 4, 1, 20, { seed: 5, simThreshold: 0.5, countLimit: 3 });
  });
  test('n = 1, n = 2, all duplicates (budget 1), zero vectors', () => {
    expectMatches(1, 3, 2, 0);
    expectMatches(2, 3, 3, 1);
    const dup = expectMatches(9, 3, 4, 8);
    expect(dup.indices.data.length).toBe(1);
    const z = tokenCorrCompress(tensor('f32', [5, 2], new Float32Array(10)), { deepAttention: new Float32Array(5), shallowAttention: new Float32Array(5) });
    expect(Array.from(z.indices.data)).toEqual(tokenCorrReference(new Float32Array(10), 5, 2, new Float32Array(5), new Float32Array(5)).kept);
  });
  test('percentileLinear is numpy linear', () => {
    expect(percentileLinear([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(percentileLinear([5], 0.75)).toBe(5);
  });
  test('crops [t, n, dim] each as alone; async equals sync', async () => {
    const cs = [crop(10, 21, 3, 4), crop(11, 21, 3, 0)];
    const x = new Float32Array(2 * 63);
    const deep = new Float32Array(42);
    const shallow = new Float32Array(42);
    cs.forEach((c, i) => { x.set(c.x, i * 63); deep.set(c.deep, i * 21); shallow.set(c.shallow, i * 21); });
    const all = tokenCorrCompressFrames(tensor('f32', [2, 21, 3], x), { deepAttention: deep, shallowAttention: shallow });
    cs.forEach((c, i) => expect(all[i]).toEqual(tokenCorrCompress(tensor('f32', [21, 3], c.x), { deepAttention: c.deep, shallowAttention: c.shallow })));
    expect(await tokenCorrCompressAsync(tensor('f32', [2, 21, 3], x), { deepAttention: deep, shallowAttention: shallow })).toEqual(all);
  });
  test('argument errors name the argument; inputs untouched', () => {
    const { x, deep, shallow } = crop(20, 7, 2, 0);
    const copy = [x.slice(), deep.slice(), shallow.slice()];
    const t = tensor('f32', [7, 2], x);
    expect(() => tokenCorrCompress(t, { deepAttention: deep.subarray(1), shallowAttention: shallow })).toThrow(/options\.deepAttention\.length/);
    expect(() => tokenCorrCompress(t, { deepAttention: deep } as never)).toThrow(/options\.shallowAttention/);
    expect(() => tokenCorrCompress(t, { deepAttention: deep, shallowAttention: shallow, countLimit: 0 })).toThrow(/options\.countLimit/);
    expect(() => tokenCorrCompress(t, { deepAttention: deep, shallowAttention: shallow, simThreshold: NaN })).toThrow(/options\.simThreshold/);
    expect(() => tokenCorrCompress(t, { deepAttention: deep, shallowAttention: shallow, keys: new Float32Array(3), keyDim: 2 })).toThrow(/options\.keys/);
    expect([x, deep, shallow]).toEqual(copy);
  });
});
