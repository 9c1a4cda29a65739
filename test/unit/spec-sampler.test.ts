// The seeded per-position sampler (lib/spec/sampler.ts): the SplitMix64
// stream, the distribution (temperature, top-k, top-p, ties, masks), the
// inverse CDF in token-id order, and that draws follow the distribution.
import { describe, expect, test } from 'vitest';
import { sampleAt, seededUniform, targetDistribution } from '../../lib/index.js';
import { chiSquare, chiSquareBound, logitsOfProbs } from './spec-toy.js';

describe('seededUniform', () => {
  test('is SplitMix64 from state seed: position p is its (p + 1)-th output, top 53 bits', () => {
    // The first outputs of SplitMix64 from state 0 (Vigna's splitmix64.c).
    const words = [0xe220a8397b1dcdafn, 0x6e789e6aa1b965f4n, 0x06c45d188009454fn];
    words.forEach((w, p) => expect(seededUniform(0, p)).toBe(Number(w >> 11n) / 2 ** 53));
  });

  test('is a pure function of (seed, position), in [0, 1), about uniform', () => {
    expect(seededUniform(42, 1000)).toBe(seededUniform(42, 1000));
    expect(seededUniform(42, 1000)).not.toBe(seededUniform(43, 1000));
    expect(seededUniform(42, 1000)).not.toBe(seededUniform(42, 1001));
    const bins = new Array<number>(16).fill(0);
    for (let p = 0; p < 32_000; p++) {
      const u = seededUniform(7, p);
      expect(u >= 0 && u < 1).toBe(true);
      bins[Math.floor(u * 16)]!++;
    }
    const { stat, df } = chiSquare(bins, new Array<number>(16).fill(1 / 16));
    expect(stat).toBeLessThan(chiSquareBound(df));
    expect(seededUniform(2 ** 53 - 1, 2 ** 53 - 2)).toBeLessThan(1);
  });

  test('rejects bad seeds and positions', () => {
    expect(() => seededUniform(-1, 0)).toThrow(/^seed: expected an integer >= 0/);
    expect(() => seededUniform(0, 0.5)).toThrow(/^position: expected an integer/);
    expect(() => seededUniform(2 ** 53, 0)).toThrow(RangeError);
  });
});

describe('targetDistribution', () => {
  const p = [0.5, 0.3, 0.15, 0.05];

  test('softmax(logits / temperature), in f64', () => {
    const d = targetDistribution(logitsOfProbs(p, 0.7), { temperature: 0.7 });
    p.forEach((x, i) => expect(d[i]).toBeCloseTo(x, 6));
    const raw = Float32Array.from([1, 2, 3]);
    const hot = targetDistribution(raw, { temperature: 0.5 });
    const z = Math.exp(2) + Math.exp(4) + Math.exp(6);
    [2, 4, 6].forEach((e, i) => expect(hot[i]).toBeCloseTo(Math.exp(e) / z, 12));
  });

  test('temperature 0: one-hot at the argmax, lowest id on ties', () => {
    expect(Array.from(targetDistribution(Float32Array.from([1, 5, 5, 2]), { temperature: 0 }))).toEqual([0, 1, 0, 0]);
  });

  test('top-k keeps the k largest logits, ties by lower id', () => {
    const d = targetDistribution(Float32Array.from([1, 3, 3, 3, 0]), { topK: 2 });
    expect(Array.from(d)).toEqual([0, 0.5, 0.5, 0, 0]);
    expect(Array.from(targetDistribution(Float32Array.from([1, 2]), { topK: 9 }))).toEqual(Array.from(targetDistribution(Float32Array.from([1, 2]))));
  });

  test('top-p keeps the smallest prefix (descending) reaching topP, then renormalises', () => {
    const l = logitsOfProbs([0.05, 0.3, 0.5, 0.15]); // shuffled ids: order 2, 1, 3, 0
    const d = targetDistribution(l, { topP: 0.75 });
    expect(d[0]).toBe(0);
    expect(d[3]).toBe(0);
    expect(d[2]).toBeCloseTo(0.625, 6);
    expect(d[1]).toBeCloseTo(0.375, 6);
    expect(Array.from(targetDistribution(l, { topP: 0.45 }))).toEqual([0, 0, 1, 0]);
    // top-k first, then top-p over the renormalised top-k mass: {2, 1} = 0.8 of the mass; 0.5 / 0.8 = 0.625 >= 0.6.
    expect(Array.from(targetDistribution(l, { topK: 2, topP: 0.6 }))).toEqual([0, 0, 1, 0]);
  });

  test('-Infinity tokens get 0', () => {
    const d = targetDistribution(Float32Array.from([-Infinity, 0, -Infinity, 0]));
    expect(Array.from(d)).toEqual([0, 0.5, 0, 0.5]);
  });

  test('rejects bad rows and options', () => {
    expect(() => targetDistribution([1, 2] as never)).toThrow(/^logits: expected a Float32Array/);
    expect(() => targetDistribution(new Float32Array(0))).toThrow(/^logits\.length: expected at least 1/);
    expect(() => targetDistribution(Float32Array.from([0, NaN]))).toThrow(/^logits\[1\]: expected a finite logit or -Infinity, received NaN/);
    expect(() => targetDistribution(Float32Array.from([-Infinity]))).toThrow(/^logits: expected at least one finite logit/);
    expect(() => targetDistribution(Float32Array.from([0]), { seed: 1 } as never)).toThrow(/unknown option "seed"/);
  });
});

describe('sampleAt', () => {
  test('is the inverse CDF of u(seed, position) in token-id order', () => {
    const flat = new Float32Array(4);
    for (let pos = 0; pos < 500; pos++) expect(sampleAt(flat, pos, { seed: 9 })).toBe(Math.floor(4 * seededUniform(9, pos)));
    // Masked ids are skipped: [0, 0.5, 0, 0.5] maps u < 0.5 to 1, else 3.
    const masked = Float32Array.from([-Infinity, 0, -Infinity, 0]);
    for (let pos = 0; pos < 200; pos++) expect(sampleAt(masked, pos, { seed: 3 })).toBe(seededUniform(3, pos) < 0.5 ? 1 : 3);
  });

  test('draws over many positions follow targetDistribution (temperature, top-k, top-p)', () => {
    const l = Float32Array.from([0.3, -1, 1.2, 0.8, 0.8, -0.2, 2, -Infinity]);
    for (const opts of [{ temperature: 1 }, { temperature: 0.6, topK: 4 }, { temperature: 1.4, topP: 0.9 }]) {
      const counts = new Array<number>(l.length).fill(0);
      for (let pos = 0; pos < 20_000; pos++) counts[sampleAt(l, pos, { ...opts, seed: 5 })]!++;
      const { stat, df } = chiSquare(counts, targetDistribution(l, opts));
      expect(stat, JSON.stringify(opts)).toBeLessThan(chiSquareBound(df));
    }
  });

  test('temperature 0 is the argmax, whatever the seed; a seed is required otherwise', () => {
    const l = Float32Array.from([0, 4, 4, 1]);
    expect(sampleAt(l, 3, { temperature: 0 })).toBe(1);
    expect(() => sampleAt(l, 3)).toThrow(/^options\.seed: expected an integer in \[0, 2\^53\)/);
    expect(() => sampleAt(l, -1, { seed: 1 })).toThrow(/^position: expected an integer >= 0/);
  });
});
