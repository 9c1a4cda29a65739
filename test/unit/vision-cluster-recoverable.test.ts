// Recoverable Compression (lib/vision/recoverable.ts) against its JS
// reference (lib/vision/reference/recoverable.ts, brute-force LOF in
// reference/lof.ts) on awkward sizes; argument errors.
import { describe, expect, test } from 'vitest';
import { tensor } from '../../lib/tensor.js';
import { recoverableCompress, recoverableCompressAsync, recoverableCompressFrames, type RecoverableResult } from '../../lib/vision/recoverable.js';
import { lofReference } from '../../lib/vision/reference/lof.js';
import { recoverableReference, textScoresReference } from '../../lib/vision/reference/recoverable.js';
import { mulberry32, randomF32 } from '../reference/random.js';

/** Attention with a few peaks (LOF outliers) over a flat floor; a text vector near token `near`. */
function scene(seed: number, n: number, d: number) {
  const rng = mulberry32(seed);
  const x = randomF32(rng, n * d);
  const cls = new Float32Array(n);
  for (let i = 0; i < n; i++) cls[i] = 0.01 + rng() * 0.002 + (rng() < 0.1 ? 0.05 + rng() * 0.05 : 0);
  const text = new Float32Array(d);
  for (let j = 0; j < d; j++) text[j] = x[(n >> 1) * d + j]! + (rng() - 0.5) * 0.1;
  return { x, cls, text };
}

function expectMatches(got: RecoverableResult, x: Float32Array, n: number, d: number, cls: Float32Array, opt: Parameters<typeof recoverableReference>[5] = {}) {
  const ref = recoverableReference(x, n, d, cls, got.textScores, opt);
  expect(Array.from(got.kept)).toEqual(ref.kept);
  expect(Array.from(got.centres)).toEqual(ref.centres);
  expect(Array.from(got.assignment.data)).toEqual(Array.from(ref.assignment));
  expect(Array.from(got.sizes.data)).toEqual(Array.from(ref.sizes));
  expect(got.tokens.shape).toEqual([ref.sizes.length, d]);
  for (let i = 0; i < ref.tokens.length; i++) expect(got.tokens.data[i]).toBeCloseTo(ref.tokens[i]!, 4);
  return ref;
}

describe('lofReference (the LOF rule)', () => {
  test('a lone far value is an outlier, an even grid has none; duplicates give LOF 1', () => {
    const grid = Array.from({ length: 20 }, (_, i) => i);
    expect(lofReference(grid, 10).outliers).toBe(0);
    expect(lofReference([...grid, 1000], 10).lof[20]).toBeGreaterThan(1.5);
    expect(lofReference([...grid, 1000], 10).outliers).toBe(1);
    expect(Array.from(lofReference([3, 3, 3, 3], 10).lof)).toEqual([1, 1, 1, 1]);
    expect(lofReference([7], 10).outliers).toBe(0);
  });
});

describe('recoverableCompress', () => {
  test('n = 61: kept = union of the LOF top sets, centres, summary tokens, sizes and assignment as the reference', () => {
    const { x, cls, text } = scene(1, 61, 6);
    const got = recoverableCompress(tensor('f32', [61, 6], x), { clsAttention: cls, textEmbedding: text });
    const ref = expectMatches(got, x, 61, 6, cls);
    expect(ref.kept.length).toBeGreaterThan(0);
    expect(got.centres.length).toBeGreaterThan(0);
    expect(got.sizes.data.reduce((a, b) => a + b, 0)).toBe(61);
    const ts = textScoresReference(x, 61, 6, text);
    for (let i = 0; i < 61; i++) expect(got.textScores[i]).toBeCloseTo(ts[i]!, 5);
  });
  test('textScores given, keys given, a small cluster size', () => {
    const { x, cls } = scene(2, 47, 5);
    const rng = mulberry32(9);
    const ts = randomF32(rng, 47, 0.1);
    const keys = randomF32(rng, 47 * 3);
    const opt = { keys, keyDim: 3, clusterSize: 4 };
    const got = recoverableCompress(tensor('f32', [47, 5], x), { clsAttention: cls, textScores: ts, ...opt });
    expectMatches(got, x, 47, 5, cls, opt);
  });
  test('n = 1, n = 2, duplicates, zero vectors', () => {
    for (const n of [1, 2, 13]) {
      const { x, cls, text } = scene(3 + n, n, 3);
      const got = recoverableCompress(tensor('f32', [n, 3], x), { clsAttention: cls, textEmbedding: text });
      expectMatches(got, x, n, 3, cls);
    }
    const dup = new Float32Array(30).fill(0.5);
    const cls = new Float32Array(10).fill(0.1);
    expectMatches(recoverableCompress(tensor('f32', [10, 3], dup), { clsAttention: cls, textEmbedding: new Float32Array(3) }), dup, 10, 3, cls);
    const zeros = new Float32Array(33);
    const c2 = scene(5, 11, 3).cls;
    expectMatches(recoverableCompress(tensor('f32', [11, 3], zeros), { clsAttention: c2, textEmbedding: new Float32Array([1, 0, 0]) }), zeros, 11, 3, c2);
  });
  test('[t, n, dim]: each frame as alone (threads over frames); async equals sync', async () => {
    const frames = [scene(10, 25, 4), scene(11, 25, 4), scene(12, 25, 4)];
    const x = new Float32Array(3 * 25 * 4);
    const cls = new Float32Array(75);
    const text = new Float32Array(12);
    frames.forEach((f, i) => { x.set(f.x, i * 100); cls.set(f.cls, i * 25); text.set(f.text, i * 4); });
    const all = recoverableCompressFrames(tensor('f32', [3, 25, 4], x), { clsAttention: cls, textEmbedding: text });
    frames.forEach((f, i) => expect(all[i]).toEqual(recoverableCompress(tensor('f32', [25, 4], f.x), { clsAttention: f.cls, textEmbedding: f.text })));
    expect(await recoverableCompressAsync(tensor('f32', [3, 25, 4], x), { clsAttention: cls, textEmbedding: text })).toEqual(all);
    const emb = recoverableCompressFrames(tensor('f32', [3, 25, 4], x), { clsAttention: cls, textEmbedder: (t) => text.subarray(0, 4 * t).slice() });
    expect(emb).toEqual(all);
  });
  test('argument errors name the argument; inputs untouched', () => {
    const { x, cls, text } = scene(20, 9, 3);
    const copy = [x.slice(), cls.slice(), text.slice()];
    const t = tensor('f32', [9, 3], x);
    expect(() => recoverableCompress(t, { clsAttention: cls.subarray(1), textEmbedding: text })).toThrow(/options\.clsAttention\.length.*frames \* n = 9.*8/);
    expect(() => recoverableCompress(t, { clsAttention: cls } as never)).toThrow(/exactly one of textEmbedding, textEmbedder, textScores/);
    expect(() => recoverableCompress(t, { clsAttention: cls, textEmbedding: text, textScores: cls })).toThrow(TypeError);
    expect(() => recoverableCompress(t, { clsAttention: cls, textEmbedding: new Float32Array(2) })).toThrow(/options\.textEmbedding/);
    expect(() => recoverableCompress(t, { clsAttention: cls, textEmbedding: text, lofNeighbors: 0 })).toThrow(/options\.lofNeighbors/);
    expect(() => recoverableCompress(t, { clsAttention: cls, textEmbedding: text, keys: new Float32Array(5), keyDim: 2 })).toThrow(/options\.keys/);
    expect(() => recoverableCompress(tensor('f32', [1, 9, 3], x), { clsAttention: cls, textEmbedding: text })).toThrow(/recoverableCompressFrames/);
    const badCls = cls.slice();
    badCls[2] = Infinity;
    expect(() => recoverableCompress(t, { clsAttention: badCls, textEmbedding: text })).toThrow(/clsAttention\[2\]/);
    expect([x, cls, text]).toEqual(copy);
  });
});
