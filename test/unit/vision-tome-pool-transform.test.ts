// LLaVolta pooling (lib/vision/pool.ts) and Token Transforming
// (lib/vision/transform.ts) against their float64 JS references on awkward
// sizes, plus the special cases of the transform (pruning and merging are W
// matrices), the LLaVolta stage schedule, async forms and argument errors.
import { describe, expect, test } from 'vitest';
import {
  LLAVOLTA_SCHEDULES, llavoltaPool, llavoltaPoolAsync, llavoltaStageAt, mergeMatrix, pruneMatrix, tokenTransform, tokenTransformAsync,
  tomeMerge, transformApply,
} from '../../lib/index.js';
import { refPoolFrame } from '../../lib/vision/reference/pool.js';
import { refTransformApply, refTransformW } from '../../lib/vision/reference/transform.js';
import { mulberry32 } from '../reference/random.js';

function rand(seed: number, len: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = rng() * 2 - 1;
  return out;
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i]! - b[i]!) > tol * (1 + Math.abs(b[i]!))) expect.fail(`[${i}]: ${a[i]} vs ${b[i]}`);
  }
}

describe('llavoltaPool', () => {
  for (const [t, n, d, s] of [[1, 576, 3, 8], [1, 13, 5, 4], [2, 7, 2, 8], [3, 9, 1, 1], [1, 1, 4, 2], [1, 200, 6, 3]] as const) {
    test(`t=${t} n=${n} d=${d} stride=${s}`, () => {
      const x = rand(n + s, t * n * d);
      const positions = new Int32Array(t * n).map((_, i) => 5 + (i % n) * 3);
      const res = llavoltaPool({ dtype: 'f32', shape: t > 1 ? [t, n, d] : [n, d], data: x }, { stride: s, positions });
      const m = Math.floor(n / s);
      for (let f = 0; f < t; f++) {
        const ref = refPoolFrame(x.subarray(f * n * d, (f + 1) * n * d), n, d, s, positions.subarray(f * n, (f + 1) * n));
        expectClose(res.tokens.data.subarray(f * m * d, (f + 1) * m * d), ref.tokens);
        expect(Array.from(res.assignment.data.subarray(f * n, (f + 1) * n))).toEqual(Array.from(ref.assignment));
        expect(Array.from(res.positions!.data.subarray(f * m, (f + 1) * m))).toEqual(Array.from(ref.positions!));
        expectClose(res.sizes.data.subarray(f * m, (f + 1) * m), ref.sizes);
      }
    });
  }
  test('positions truncate like .to(long): ids 5..12 pool to 8', () => {
    const res = llavoltaPool({ dtype: 'f32', shape: [8, 1], data: new Float32Array(8) }, { stride: 8, positions: new Int32Array([5, 6, 7, 8, 9, 10, 11, 12]) });
    expect(Array.from(res.positions!.data)).toEqual([8]);
  });
  test('async and errors', async () => {
    const x = rand(1, 30);
    const a = await llavoltaPoolAsync({ dtype: 'f32', shape: [10, 3], data: x }, { stride: 3 });
    expect(Array.from(a.tokens.data)).toEqual(Array.from(llavoltaPool({ dtype: 'f32', shape: [10, 3], data: x }, { stride: 3 }).tokens.data));
    expect(() => llavoltaPool({ dtype: 'f32', shape: [10, 3], data: x }, { stride: 0 })).toThrow(/options\.stride/);
    expect(() => llavoltaPool({ dtype: 'f32', shape: [10, 3], data: x }, { stride: 2, positions: new Int32Array(3) })).toThrow(/options\.positions/);
  });
  test('the stage schedule replays step_stride_and_layer', () => {
    const s = LLAVOLTA_SCHEDULES.fourStage;
    expect(llavoltaStageAt(s, 0)).toEqual({ stride: 8, layer: 2 });
    expect(llavoltaStageAt(s, 1299)).toEqual({ stride: 8, layer: 2 });
    expect(llavoltaStageAt(s, 1300)).toEqual({ stride: 2, layer: 2 });
    expect(llavoltaStageAt(s, 2600)).toEqual({ stride: 2, layer: 16 });
    expect(llavoltaStageAt(s, 3900)).toEqual({ stride: 1, layer: 0 });
    expect(llavoltaStageAt(s, 9000)).toEqual({ stride: 1, layer: 0 });
    expect(llavoltaStageAt(LLAVOLTA_SCHEDULES.light, 5000)).toEqual({ stride: 8, layer: 16 });
    expect(() => llavoltaStageAt(s, -1)).toThrow(/step/);
  });
});

describe('tokenTransform', () => {
  for (const [n, d, m, k] of [[17, 5, 6, 4], [9, 3, 9, 1], [1, 4, 1, 4], [30, 8, 3, 10], [12, 6, 0, 2]] as const) {
    test(`n=${n} d=${d} m=${m} topK=${k}`, () => {
      const x = rand(n * 7 + m, n * d);
      const res = tokenTransform({ dtype: 'f32', shape: [n, d], data: x }, { m, topK: k, tau: 0.2 });
      const w = refTransformW(x, n, d, res.targets.data, k, 0.2);
      expectClose(res.w.data, w, 1e-4);
      const ref = refTransformApply(res.w.data, m, x, n, d);
      expectClose(res.tokens.data, ref.tokens, 1e-5);
      expectClose(res.sizes.data, ref.sizes, 1e-5);
      expect(Array.from(res.assignment.data)).toEqual(Array.from(ref.assignment));
      if (m > 0) expect(res.sizes.data.reduce((a, b) => a + b, 0)).toBeCloseTo(n, 4); // mass conserved
    });
  }
  test('pruning is a W: one-hot rows reproduce the gather', () => {
    const n = 11, d = 4, x = rand(2, n * d);
    const kept = new Int32Array([0, 3, 4, 10]);
    const res = transformApply({ dtype: 'f32', shape: [n, d], data: x }, pruneMatrix(kept, n));
    kept.forEach((j, i) => expect(Array.from(res.tokens.data.subarray(i * d, (i + 1) * d))).toEqual(Array.from(x.subarray(j * d, (j + 1) * d))));
    expect(Array.from(res.sizes.data)).toEqual([1, 1, 1, 1]);
    expect(res.assignment.data[1]).toBe(-1);
  });
  test('merging is a W: ToMe\'s assignment reproduces its tokens and sizes', () => {
    const n = 15, d = 6, x = rand(9, n * d);
    const sizes = new Float32Array(n).map((_, i) => 1 + (i % 3));
    const tome = tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r: 5, sizes });
    const m = tome.sizes.data.length;
    const res = transformApply({ dtype: 'f32', shape: [n, d], data: x }, mergeMatrix(tome.assignment.data, m), sizes);
    expectClose(res.tokens.data, tome.tokens.data, 1e-5);
    expectClose(res.sizes.data, tome.sizes.data);
    expect(Array.from(res.assignment.data)).toEqual(Array.from(tome.assignment.data));
  });
  test('score targets, frames, duplicates, zero vectors, async', async () => {
    const t = 2, n = 10, d = 3;
    const x = rand(4, t * n * d);
    x.fill(0, 0, 3 * d); // zero rows in frame 0
    x.copyWithin(n * d + 3 * d, n * d, n * d + 3 * d); // a duplicate in frame 1
    const scores = rand(5, t * n);
    const res = tokenTransform({ dtype: 'f32', shape: [t, n, d], data: x }, { m: 4, targets: 'score', scores, topK: 2 });
    for (let f = 0; f < t; f++) {
      const idx = Array.from({ length: n }, (_, j) => j).sort((a, b) => scores[f * n + b]! - scores[f * n + a]! || a - b).slice(0, 4).sort((a, b) => a - b);
      expect(Array.from(res.targets.data.subarray(f * 4, f * 4 + 4))).toEqual(idx);
      const xf = x.subarray(f * n * d, (f + 1) * n * d);
      expectClose(res.w.data.subarray(f * 4 * n, (f + 1) * 4 * n), refTransformW(xf, n, d, idx, 2, 0.1), 1e-4);
    }
    const asy = await tokenTransformAsync({ dtype: 'f32', shape: [t, n, d], data: x }, { m: 4, targets: 'score', scores, topK: 2 });
    expect(Array.from(asy.tokens.data)).toEqual(Array.from(res.tokens.data));
  });
  test('errors', () => {
    const x = rand(1, 12);
    const before = x.slice();
    const tk = { dtype: 'f32' as const, shape: [4, 3], data: x };
    expect(() => tokenTransform(tk, { m: 5 })).toThrow(/options\.m/);
    expect(() => tokenTransform(tk, { m: 2, tau: 0 })).toThrow(/options\.tau/);
    expect(() => tokenTransform(tk, { m: 2, topK: 0 })).toThrow(/options\.topK/);
    expect(() => tokenTransform(tk, { m: 2, targets: 'score' })).toThrow(/options\.scores/);
    expect(() => tokenTransform(tk, { m: 2, targets: new Int32Array([0, 4]) })).toThrow(/options\.targets\[1\]/);
    expect(() => transformApply(tk, { dtype: 'f32', shape: [2, 4], data: new Float32Array([1, -1, 0, 0, 0, 0, 0, 0]) })).toThrow(/w\.data\[1\]/);
    expect(Array.from(x)).toEqual(Array.from(before));
  });
});

describe('eval adapters (lib/vision/eval/methods-tome.ts)', () => {
  test('each method reduces a scene to at most keep rows with a valid assignment; bench forms run', async () => {
    const { tomeMethods, tomeStepsTo } = await import('../../lib/vision/eval/methods-tome.js');
    expect(tomeStepsTo(100, 10)).toEqual([50, 25, 12, 3]);
    expect(tomeStepsTo(5, 9)).toEqual([0]);
    const gridH = 6, gridW = 7, n = gridH * gridW, dim = 12;
    const tokens = rand(77, n * dim);
    const scene = {
      tokens, n, dim, gridH, gridW, clsAttention: new Float32Array(n).fill(1 / n), layers: 1,
      textEmbedding: new Float32Array(dim), lastTokenAttention: new Float32Array(n), region: new Uint8Array(n),
    };
    for (const method of tomeMethods) {
      for (const keep of [21, 10, 4, 1]) {
        const r = method.run(scene, keep);
        expect(r.m, `${method.name} keep ${keep}`).toBeLessThanOrEqual(keep);
        expect(r.tokens.length).toBe(r.m * dim);
        expect(r.assignment.length).toBe(n);
        for (const a of r.assignment) expect(a >= -1 && a < r.m).toBe(true);
      }
      expect(method.bench!.native(tokens, 2, n / 2, dim, 0.5)).toBeTruthy();
      expect(method.bench!.reference(tokens, 2, n / 2, dim, 0.5)).toBeTruthy();
    }
  });
});
