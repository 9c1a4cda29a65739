// Quest page scoring on the SIMD path (native/sparse/quest.cpp: eight pages
// per AVX2 lane group, F16C for f16 summaries, pages split over the pool)
// against the scalar path: every lane sums its page's bound over headDim in
// the scalar order and combines the GQA rows in the scalar order, so the
// scores are bit-identical and the selection (higher bound first, lower
// page on ties) must be equal, on random floats, statelessly and in the
// KvCache. Sizes: headDim a multiple of 8 (the SIMD path), page counts not
// a multiple of 8 (scalar tail), heads long enough to be split over threads.
import { describe, expect, test } from 'vitest';
import { KvCache, questPageSummaries, questSelect, type FloatDType } from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { isasOnThisCpu, withIsa } from './isa.js';

const SIMD = isasOnThisCpu().filter((i) => i !== 'scalar');

describe.skipIf(SIMD.length === 0)('questSelect: SIMD scoring selects exactly what the scalar path selects', () => {
  test.each([
    ['f32', 128, 16 * 301 + 5, 1, 'sum'], ['f16', 128, 16 * 300, 1, 'max'], ['bf16', 64, 16 * 97 + 15, 2, 'sum'],
    ['f16', 8, 8 * 33 + 1, 3, 'max'], ['f16', 24, 4 * 1030 + 3, 1, 'sum'],
  ] as const)('%s summaries, headDim %i, nKv %i, nQ %i, gqa %s', (dtype, d, n, nQ, gqa) => {
    const rng = mulberry32(d + n);
    const H = 2, group = 4, P = d === 24 ? 4 : d === 8 ? 8 : 16;
    const k = randomTensor3(rng, dtype as FloatDType, [H, n, d], 1.5);
    const s = questPageSummaries(k, { pageSize: P });
    for (const budget of [P * 7, P * 40, n / 3]) {
      const q = randomTensor3(rng, 'f32', [H * group, nQ, d], 2);
      const opts = { budget: Math.floor(budget), gqa, sinks: 3, recent: 2 * P } as const;
      const want = withIsa('scalar', () => questSelect(q, s, opts));
      for (const isa of SIMD) {
        const got = withIsa(isa, () => questSelect(q, s, opts));
        expect(got.shape).toEqual(want.shape);
        expect(Array.from(got.data)).toEqual(Array.from(want.data));
      }
    }
  });
});

describe.skipIf(SIMD.length === 0)('KvCache.attend({ sparse: quest }): SIMD scoring selects exactly what the scalar path selects', () => {
  test.each(['f32', 'f16', 'bf16'] as const)('%s cache', (dtype) => {
    const rng = mulberry32(7);
    const H = 2, group = 4, d = 128, P = 16;
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 8192, dtype });
    for (const m of [2000, 1, 17, 2100, 3]) {
      cache.append(0, randomTensor3(rng, 'f32', [H, m, d], 1.5), randomTensor3(rng, 'f32', [H, m, d], 1));
      for (const gqa of ['sum', 'max'] as const) {
        const q = randomTensor3(rng, 'f32', [H * group, 1, d], 2);
        const sparse = { method: 'quest', budget: 512, pageSize: P, gqa, sinks: 4 } as const;
        const want = withIsa('scalar', () => cache.attend(0, q, { sparse, returnSelected: true, remember: false }).selected!);
        for (const isa of SIMD) {
          const got = withIsa(isa, () => cache.attend(0, q, { sparse, returnSelected: true, remember: false }).selected!);
          expect(Array.from(got.data)).toEqual(Array.from(want.data));
        }
      }
    }
  });
});

describe.skipIf(SIMD.length === 0)('KvCache summary upkeep on append: the SIMD fold (heads over the pool) keeps the scalar summaries', () => {
  test.each(['f32', 'f16', 'bf16', 'int8'] as const)('%s cache', (dtype) => {
    const H = 3, group = 2, d = 64, P = 16;
    const build = (isa: 'scalar' | undefined) => {
      const rng = mulberry32(5);
      const run = () => {
        const c = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 4096, dtype, ...(dtype === 'int8' ? { groupSize: 16, residual: 20 } : {}) });
        const add = (m: number) => c.append(0, randomTensor3(rng, 'f32', [H, m, d], 1.5), randomTensor3(rng, 'f32', [H, m, d], 1));
        add(40);
        c.attend(0, randomTensor3(rng, 'f32', [H * group, 1, d], 2), { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
        for (const m of [1, 1, 7, 600, 1, 33, 1200, 5]) add(m);
        const s = c.questSummaries(0);
        return { lo: Array.from(s.kmin.data), hi: Array.from(s.kmax.data), pages: Array.from(s.headPages) };
      };
      return isa ? withIsa(isa, run) : run();
    };
    const want = build('scalar');
    expect(build(undefined)).toEqual(want);
  });
});
