// CoreMatching (lib/vision/corematching.ts) against its JS reference
// (lib/vision/reference/corematching.ts): co-activation scores, elbow, kept
// tokens; gate/up form; batches; argument errors.
import { describe, expect, test } from 'vitest';
import { tensor } from '../../lib/tensor.js';
import { coreMatching, coreMatchingAsync, coreMatchingFrames } from '../../lib/vision/corematching.js';
import { coreMatchingReference } from '../../lib/vision/reference/corematching.js';
import { mulberry32, randomF32 } from '../reference/random.js';

function check(n: number, rows: number, inter: number, start: number, seed: number, withUp = false, queryRow?: number) {
  const rng = mulberry32(seed);
  const x = randomF32(rng, n * 3);
  const act = randomF32(rng, rows * inter);
  const up = withUp ? randomF32(rng, rows * inter) : undefined;
  const got = coreMatching(tensor('f32', [n, 3], x), { activations: act, up, rows, inter, imageStart: start, queryRow });
  const q = queryRow === undefined ? rows - 5 : queryRow < 0 ? rows + queryRow : queryRow;
  const ref = coreMatchingReference(act, up, rows, inter, q, start, n);
  expect(Array.from(got.scores!.data)).toEqual(Array.from(ref.scores));
  expect(got.threshold).toBe(ref.threshold);
  expect(Array.from(got.indices.data)).toEqual(ref.kept);
  ref.kept.forEach((j, r) => expect(Array.from(got.tokens.data.subarray(r * 3, r * 3 + 3))).toEqual(Array.from(x.subarray(j * 3, j * 3 + 3))));
  return got;
}

describe('coreMatching', () => {
  test('scores = co-activation counts with the query row (-5), kept = above the elbow', () => {
    const r = check(31, 45, 133, 5, 1);
    expect(r.indices.data.length).toBeGreaterThan(0);
    check(17, 20, 64, 0, 2, false, 19);
    check(9, 14, 65, 2, 3, false, 0);
  });
  test('gate and up: silu(gate) * up > 0', () => check(23, 30, 77, 1, 4, true));
  test('one image token, no image token, all scores equal: nothing above the elbow', () => {
    expect(check(1, 8, 10, 0, 5).indices.data.length).toBe(0);
    expect(check(0, 8, 10, 3, 6).indices.data.length).toBe(0);
    const act = new Float32Array(6 * 4).fill(1);
    const r = coreMatching(tensor('f32', [3, 2], new Float32Array(6)), { activations: act, rows: 6, inter: 4, queryRow: -1 });
    expect(r.indices.data.length).toBe(0);
    expect(r.threshold).toBe(4);
  });
  test('batches: each sequence as alone; async equals sync', async () => {
    const rng = mulberry32(7);
    const x = randomF32(rng, 3 * 11 * 2);
    const act = randomF32(rng, 3 * 20 * 40);
    const all = coreMatchingFrames(tensor('f32', [3, 11, 2], x), { activations: act, rows: 20, inter: 40, imageStart: 4 });
    for (let f = 0; f < 3; f++) {
      expect(all[f]).toEqual(coreMatching(tensor('f32', [11, 2], x.slice(f * 22, f * 22 + 22)), { activations: act.slice(f * 800, f * 800 + 800), rows: 20, inter: 40, imageStart: 4 }));
    }
    expect(await coreMatchingAsync(tensor('f32', [3, 11, 2], x), { activations: act, rows: 20, inter: 40, imageStart: 4 })).toEqual(all);
  });
  test('argument errors name the argument; inputs untouched', () => {
    const act = randomF32(mulberry32(8), 10 * 6);
    const copy = act.slice();
    const t = tensor('f32', [4, 2], new Float32Array(8));
    expect(() => coreMatching(t, { activations: act, rows: 10, inter: 6, imageStart: 7 })).toThrow(/options\.imageStart/);
    expect(() => coreMatching(t, { activations: act, rows: 10, inter: 6, queryRow: 10 })).toThrow(/options\.queryRow/);
    expect(() => coreMatching(t, { activations: act, rows: 10, inter: 6, queryRow: 1.5 })).toThrow(TypeError);
    expect(() => coreMatching(t, { activations: act, rows: 10, inter: 7 })).toThrow(/options\.activations\.length/);
    expect(() => coreMatching(t, { activations: act, up: act.subarray(1), rows: 10, inter: 6 })).toThrow(/options\.up/);
    expect(() => coreMatching(t, { activations: [1, 2] as never, rows: 1, inter: 2 })).toThrow(TypeError);
    expect(act).toEqual(copy);
  });
});
