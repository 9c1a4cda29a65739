// KV cases no other test reached, each for a native mutant of
// scripts/mutants/native.json that survived the suite:
//   kv-select-negative-zero-order  top-k must treat -0 and +0 as equal scores
//                                  (ties go to the earlier position);
//   kv-merge-mass-not-summed       a merged row carries the H2O mass of the
//                                  rows folded into it;
//   kv-quant-scale-no-ulp-fix      a KIVI group's f16 scale is the rounded
//                                  range / levels, bumped one f16 ulp when
//                                  min + scale * levels no longer reaches the
//                                  max (native/kv/kv_quant.h: x = min + scale * code).
// References: float64 softmax, and the KIVI rule evaluated with exact IEEE
// f32 operations (Math.fround) and binary16 rounding written here.
import { describe, expect, test } from 'vitest';
import { KvCache, selectKv } from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';
import { f32 } from './kv-helpers.js';

describe('selectKv: -0 and +0 are equal scores', () => {
  const cases: [number[], number, number[]][] = [
    [[-0, 0], 1, [0]],
    [[0, -0], 1, [0]],
    [[-0, 0, 0, -0], 2, [0, 1]],
    [[-1, -0, 0, -0, 0], 3, [1, 2, 3]],
    [[0, -0, 0, -0, 0, -0], 3, [0, 1, 2]],
  ];
  for (const [scores, keep, want] of cases) {
    test(`[${scores.map((s) => (Object.is(s, -0) ? '-0' : String(s))).join(', ')}] keep ${keep}: the earliest positions`, () => {
      const got = selectKv(f32([1, scores.length], Float32Array.from(scores)), { keep });
      expect(Array.from(got.data)).toEqual(want);
    });
  }
});

describe('merging adds the evicted row\'s H2O mass to its target', () => {
  // 1 head, headDim 4, scale 1/2. Keys: r0 = e0, r1 = e1, r2 = 0.9 e1 (cosine
  // 1 with r1, 0 with r0). One query q = (2, 1.4, 0, 0) gives logits 1, 0.7,
  // 0.63: masses p0 = 0.41 > p1 = 0.31 > p2 = 0.28. h2o keeps r0 and r1 and
  // folds r2 into r1, whose mass becomes p1 + p2 = 0.59 > p0. A second h2o
  // keeping one row must then keep r1; without the summed mass it keeps r0.
  test('h2o + merge, then h2o keep 1 ranks the merged row by the summed mass', () => {
    const D = 4;
    const k = Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0.9, 0, 0);
    const v = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
    const q = Float32Array.of(2, 1.4, 0, 0);
    const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: D, capacity: 8, dtype: 'f32' });
    cache.append(0, f32([1, 3, D], k), f32([1, 3, D], v));
    cache.attend(0, f32([1, 1, D], q), { accumulateMass: true, remember: false });

    // float64 masses.
    const logits = [0, 1, 2].map((r) => 0.5 * (q[0]! * k[r * D]! + q[1]! * k[r * D + 1]!));
    const ex = logits.map((x) => Math.exp(x));
    const sum = ex.reduce((a, b) => a + b, 0);
    const [p0, p1, p2] = ex.map((x) => x / sum) as [number, number, number];
    expect(p0).toBeGreaterThan(p1 + 0.05); // the first compress keeps r0 and r1, decisively
    expect(p1).toBeGreaterThan(p2 + 0.01);
    expect(p1 + p2).toBeGreaterThan(p0 + 0.05); // the merged mass outranks r0, decisively
    expect(p1).toBeLessThan(p0 - 0.05); // the unmerged mass does not

    cache.compress({ name: 'h2o', recent: 0, merge: true }, { keep: 2 });
    let e = cache.export(0, { dtype: 'f32' });
    expect(Array.from(e.positions.data.subarray(0, 2))).toEqual([0, 1]);
    expect(Array.from(e.counts.data.subarray(0, 2))).toEqual([1, 2]); // r2 folded into r1

    cache.compress({ name: 'h2o', recent: 0 }, { keep: 1 });
    e = cache.export(0, { dtype: 'f32' });
    expect(Array.from(e.lengths)).toEqual([1]);
    expect(e.positions.data[0], 'the row holding p1 + p2 is kept').toBe(1);
  });
});

// ---- KIVI reference (exact IEEE arithmetic) ----

const fr = Math.fround;

/** binary16 bits -> value. */
function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** finite value (|x| <= 65504 after rounding) -> binary16 bits, nearest even. */
function f16Bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  let e = -14;
  while (a >= 2 ** (e + 1)) e++;
  const ulp = 2 ** (e - 10);
  let m = Math.floor(a / ulp);
  const frac = a / ulp - m;
  if (frac > 0.5 || (frac === 0.5 && m % 2 === 1)) m++;
  const r = m * ulp;
  if (r < 2 ** -14) return sign | Math.round(r / 2 ** -24);
  let E = -14;
  while (r >= 2 ** (E + 1)) E++;
  return sign | ((E + 15) << 10) | Math.round((r / 2 ** E - 1) * 1024);
}

const roundHalfEven = (x: number): number => {
  const f = Math.floor(x), d = x - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
};

/** Dequantized values of one KIVI group (f16-exact inputs), and whether the one-ulp bump applied. */
function kiviGroup(xs: number[], levels: number): { out: number[]; bumped: boolean } {
  const lo = Math.min(...xs), hi = Math.max(...xs);
  const mn = f16Value(f16Bits(lo));
  const scale = Math.min(Math.max(fr(fr(hi - mn) / levels), 0), 65504);
  let sb = f16Bits(scale);
  let sc = f16Value(sb);
  let bumped = false;
  if (sc > 0 && fr(mn + fr(sc * levels)) < hi && sb < 0x7bff) {
    sb += 1;
    sc = f16Value(sb);
    bumped = true;
  }
  const inv = sc > 0 ? fr(1 / sc) : 0;
  const out = xs.map((x) => {
    const c = inv > 0 ? Math.min(Math.max(roundHalfEven(fr(fr(x - mn) * inv)), 0), levels) : 0;
    return fr(mn + fr(sc * c));
  });
  return { out, bumped };
}

describe('KIVI int8 / int4 group parameters, bit for bit', () => {
  for (const [dtype, levels] of [['int8', 255], ['int4', 15]] as const) {
    test(`${dtype}: one group of f16-exact rows dequantizes exactly as min + scale * code`, () => {
      const G = 16, D = 16, rng = mulberry32(levels);
      // Multiples of 2^-8 in (-4, 4): exact in f16, so the f16 tail adds no rounding.
      const rand = () => Math.floor((rng() * 2 - 1) * 1024) / 256;
      const k = Float32Array.from({ length: G * D }, rand);
      const v = Float32Array.from({ length: G * D }, rand);
      const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: D, capacity: G, dtype, groupSize: G, residual: 0 });
      cache.append(0, f32([1, G, D], k), f32([1, G, D], v));
      const e = cache.export(0, { dtype: 'f32' });
      let bumps = 0;
      // Keys: one group per channel, over the G tokens.
      for (let c = 0; c < D; c++) {
        const col = Array.from({ length: G }, (_, t) => k[t * D + c]!);
        const { out, bumped } = kiviGroup(col, levels);
        bumps += Number(bumped);
        for (let t = 0; t < G; t++) expect(e.k.data[t * D + c], `k[${t}][${c}]`).toBe(out[t]);
      }
      // Values: one group per token (D = G channels).
      for (let t = 0; t < G; t++) {
        const { out, bumped } = kiviGroup(Array.from(v.subarray(t * D, t * D + D)), levels);
        bumps += Number(bumped);
        for (let c = 0; c < D; c++) expect(e.v.data[t * D + c], `v[${t}][${c}]`).toBe(out[c]);
      }
      expect(bumps, 'groups whose scale needed the one-ulp bump (the case under test)').toBeGreaterThan(0);
    });
  }
});
