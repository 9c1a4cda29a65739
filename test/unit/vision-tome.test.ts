// ToMe (lib/vision/tome.ts, native/reduce/tome.cpp) against the float64 JS
// reference (lib/vision/reference/tome.ts) on awkward sizes: n odd, n = 1,
// n < 2r, duplicates, zero vectors, [t, n, dim] frames, class token, a
// separate metric, carried sizes; schedules (parse_r), composed assignments,
// the multi-layer driver, the async forms and argument errors.
import { describe, expect, test } from 'vitest';
import {
  composeAssignments, tomeEffectiveR, tomeLayers, tomeLayersAsync, tomeMerge, tomeMergeAsync, tomeSchedule,
} from '../../lib/index.js';
import { refSketch, refTomeFrame } from '../../lib/vision/reference/tome.js';
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

describe('tomeMerge vs the float64 reference', () => {
  const cases: [number, number, number, boolean][] = [
    [1, 5, 1, false], [2, 3, 1, false], [7, 9, 3, false], [7, 9, 3, true], [16, 17, 8, false], [33, 24, 100, false],
    [33, 24, 100, true], [50, 7, 0, false], [3, 1, 1, true], [0, 4, 2, false],
  ];
  for (const [n, d, r, cls] of cases) {
    test(`n=${n} d=${d} r=${r} classToken=${cls}`, () => {
      const x = rand(n * 31 + d, n * d);
      const res = tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r, classToken: cls });
      const ref = refTomeFrame(x, n, d, r, cls);
      expect(res.tokens.shape).toEqual([ref.m, d]);
      expect(Array.from(res.assignment.data)).toEqual(Array.from(ref.assignment));
      expectClose(res.sizes.data, ref.sizes);
      expectClose(res.tokens.data, ref.tokens);
      expect(res.sizes.data.reduce((a, b) => a + b, 0)).toBe(n);
      if (cls && n > 0) expect(res.assignment.data[0]).toBe(0);
    });
  }

  test('r is clipped to floor((n - protected) / 2)', () => {
    expect(tomeEffectiveR(9, 100)).toBe(4);
    expect(tomeEffectiveR(9, 100, true)).toBe(4);
    expect(tomeEffectiveR(10, 100, true)).toBe(4);
    expect(tomeEffectiveR(1, 3)).toBe(0);
    expect(tomeMerge({ dtype: 'f32', shape: [10, 2], data: rand(1, 20) }, { r: 100, classToken: true }).tokens.shape).toEqual([6, 2]);
  });

  test('duplicates and zero vectors: exact ties take the lowest partner and rank', () => {
    const n = 9, d = 4;
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) x[i * d + k] = i < 6 ? 1 + k : 0; // 6 duplicates, 3 zero rows
    const res = tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r: 2 });
    const ref = refTomeFrame(x, n, d, 2);
    expect(Array.from(res.assignment.data)).toEqual(Array.from(ref.assignment));
    expectClose(res.tokens.data, ref.tokens);
    // A0 and A1 (tokens 0 and 2) both pick B0 (token 1): their weighted mean is the duplicate itself, size 3.
    expect(res.assignment.data[0]).toBe(res.assignment.data[1]);
    expect(res.assignment.data[2]).toBe(res.assignment.data[1]);
  });

  test('frames [t, n, dim], a separate metric and carried sizes', () => {
    const t = 3, n = 11, d = 6, dm = 5;
    const x = rand(7, t * n * d), metric = rand(8, t * n * dm);
    const sizes = new Float32Array(t * n).map((_, i) => 1 + (i % 4));
    const res = tomeMerge({ dtype: 'f32', shape: [t, n, d], data: x }, { r: 4, metric: { dtype: 'f32', shape: [t, n, dm], data: metric }, sizes });
    expect(res.tokens.shape).toEqual([t, n - 4, d]);
    for (let f = 0; f < t; f++) {
      const ref = refTomeFrame(x.subarray(f * n * d, (f + 1) * n * d), n, d, 4, false, metric.subarray(f * n * dm, (f + 1) * n * dm), dm, sizes.subarray(f * n, (f + 1) * n));
      expect(Array.from(res.assignment.data.subarray(f * n, (f + 1) * n))).toEqual(Array.from(ref.assignment));
      expectClose(res.tokens.data.subarray(f * ref.m * d, (f + 1) * ref.m * d), ref.tokens);
      expectClose(res.sizes.data.subarray(f * ref.m, (f + 1) * ref.m), ref.sizes);
    }
  });

  test('sketchDim matches on a CountSketch of the metric; the merge stays exact', () => {
    const n = 29, d = 40, s = 7;
    const x = rand(21, n * d);
    const res = tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r: 9, sketchDim: s });
    const ref = refTomeFrame(x, n, d, 9, false, refSketch(x, n, d, s), s);
    expect(Array.from(res.assignment.data)).toEqual(Array.from(ref.assignment));
    expectClose(res.tokens.data, ref.tokens);
    // A width >= the metric's is the exact rule.
    expect(Array.from(tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r: 9, sketchDim: d }).assignment.data))
      .toEqual(Array.from(refTomeFrame(x, n, d, 9).assignment));
    expect(() => tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r: 9, sketchDim: 0 })).toThrow(/options\.sketchDim/);
  });

  test('the async form equals the sync form and copies its input', async () => {
    const x = rand(3, 40 * 8);
    const sync = tomeMerge({ dtype: 'f32', shape: [40, 8], data: x }, { r: 13 });
    const copy = x.slice();
    const p = tomeMergeAsync({ dtype: 'f32', shape: [40, 8], data: x }, { r: 13 });
    x.fill(0);
    const res = await p;
    expect(Array.from(res.tokens.data)).toEqual(Array.from(sync.tokens.data));
    expect(Array.from(res.assignment.data)).toEqual(Array.from(sync.assignment.data));
    expect(copy.length).toBe(320);
  });
});

describe('schedules and the multi-layer driver', () => {
  test('tomeSchedule follows parse_r', () => {
    expect(tomeSchedule(4, 8)).toEqual([8, 8, 8, 8]);
    // parse_r(12, (16, -1)): min = 32, max = 0, step = -32/11
    const dec = tomeSchedule(12, [16, -1]);
    expect(dec[0]).toBe(32);
    expect(dec[11]).toBe(0);
    expect(dec).toEqual(Array.from({ length: 12 }, (_, i) => Math.trunc(32 + (-32 / 11) * i)));
    expect(tomeSchedule(3, [5, 0.5])).toEqual([2, 5, 8]);
    expect(tomeSchedule(4, { list: [3, 1] })).toEqual([3, 1, 0, 0]);
    expect(tomeSchedule(1, [4, 1])).toEqual([0]);
  });

  test('composeAssignments maps every source to its final row', () => {
    const a = { dtype: 'i32' as const, shape: [5], data: new Int32Array([0, 1, 1, -1, 2]) };
    const b = { dtype: 'i32' as const, shape: [3], data: new Int32Array([1, 0, 0]) };
    expect(Array.from(composeAssignments(a, b).data)).toEqual([1, 0, 0, -1, 0]);
    expect(() => composeAssignments(a, { dtype: 'i32', shape: [2], data: new Int32Array([0, 0]) })).toThrow(RangeError);
  });

  test('tomeLayers equals chained steps; sizes sum to n; the composed assignment reproduces the tokens', async () => {
    const n = 37, d = 5;
    const x = rand(11, n * d);
    const res = tomeLayers({ dtype: 'f32', shape: [n, d], data: x }, { r: [6, -1], numLayers: 4, classToken: true });
    let cur = refTomeFrame(x, n, d, 0);
    let assign = Array.from({ length: n }, (_, i) => i);
    for (const r of tomeSchedule(4, [6, -1])) {
      const next = refTomeFrame(Array.from(cur.tokens), cur.m, d, r, true, undefined, d, cur.sizes);
      assign = assign.map((i) => next.assignment[i]!);
      cur = next;
    }
    expect(res.counts[res.counts.length - 1]).toBe(cur.m);
    expect(Array.from(res.assignment.data)).toEqual(assign);
    expectClose(res.tokens.data, cur.tokens, 1e-4);
    expect(res.sizes.data.reduce((a, b) => a + b, 0)).toBe(n);
    // Each output is the plain mean of the sources assigned to it.
    const m = cur.m;
    const sum = new Float64Array(m * d), cnt = new Float64Array(m);
    for (let i = 0; i < n; i++) { cnt[assign[i]!]!++; for (let k = 0; k < d; k++) sum[assign[i]! * d + k]! += x[i * d + k]!; }
    for (let j = 0; j < m; j++) for (let k = 0; k < d; k++) sum[j * d + k]! /= cnt[j]!;
    expectClose(res.tokens.data, sum, 1e-4);
    const asy = await tomeLayersAsync({ dtype: 'f32', shape: [n, d], data: x }, { r: [6, -1], numLayers: 4, classToken: true });
    expect(Array.from(asy.tokens.data)).toEqual(Array.from(res.tokens.data));
  });
});

describe('argument errors name the argument; inputs untouched', () => {
  const x = rand(5, 12);
  const before = x.slice();
  test.each([
    [{ r: -1 }, RangeError, /options\.r/],
    [{ r: 1.5 }, RangeError, /options\.r/],
    [{ r: 1, classToken: 1 }, TypeError, /options\.classToken/],
    [{ r: 1, sizes: new Float32Array([1, 1, 0, 1]) }, RangeError, /options\.sizes\[2\]/],
    [{ r: 1, sizes: new Float32Array(3) }, RangeError, /options\.sizes/],
    [{ r: 1, metric: { dtype: 'f32', shape: [3, 2], data: new Float32Array(6) } }, RangeError, /options\.metric/],
    [{ r: 1, rr: 2 }, Error, /rr/],
  ])('%o', (opts, type, msg) => {
    expect(() => tomeMerge({ dtype: 'f32', shape: [4, 3], data: x }, opts as never)).toThrow(type);
    expect(() => tomeMerge({ dtype: 'f32', shape: [4, 3], data: x }, opts as never)).toThrow(msg);
    expect(Array.from(x)).toEqual(Array.from(before));
  });
  test('tokens shape', () => {
    expect(() => tomeMerge({ dtype: 'f32', shape: [12], data: x }, { r: 1 })).toThrow(/tokens\.shape/);
    expect(() => tomeMerge({ dtype: 'f32', shape: [5, 3], data: x }, { r: 1 })).toThrow(/tokens/);
    expect(() => tomeSchedule(0, 1)).toThrow(/numLayers/);
    expect(() => tomeSchedule(3, [1, 2])).toThrow(/r\[1\]/);
  });
  test('the async form rejects', async () => {
    await expect(tomeMergeAsync({ dtype: 'f32', shape: [4, 3], data: x }, { r: -2 })).rejects.toThrow(/options\.r/);
  });
});
