// scoreRetrievalHeads / pickRetrievalHeads (RazorAttention head detection):
// scores against the float64 reference on awkward sizes (odd headDim, GQA,
// f16/bf16 keys, strided views, n not a multiple of period), detection of
// planted induction and echo heads, the paper's default fractions, joint
// ranking over layers, and bad input.
import { describe, expect, test } from 'vitest';
import {
  castTo, pickRetrievalHeads, RETRIEVAL_HEAD_DEFAULTS, scoreRetrievalHeads,
  type FloatDType, type Tensor,
} from '../../lib/index.js';
import { referenceRetrievalHeads } from '../reference/retrieval-heads.js';
import { mulberry32, randomF32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';

interface Case { name: string; nHeads: number; nKvHeads: number; n: number; headDim: number; period: number; dtype: FloatDType; strided: boolean }
const CASES: Case[] = [
  { name: 'tiny', nHeads: 1, nKvHeads: 1, n: 2, headDim: 1, period: 1, dtype: 'f32', strided: false },
  { name: 'gqa f16 strided', nHeads: 6, nKvHeads: 2, n: 41, headDim: 5, period: 13, dtype: 'f16', strided: true },
  { name: 'mha bf16', nHeads: 3, nKvHeads: 3, n: 50, headDim: 8, period: 17, dtype: 'bf16', strided: false },
  { name: 'mqa f32 strided', nHeads: 4, nKvHeads: 1, n: 97, headDim: 7, period: 24, dtype: 'f32', strided: true },
];

describe('scoreRetrievalHeads vs the float64 reference', () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', (_n, c) => {
    const rng = mulberry32(c.n * 31 + c.headDim);
    const layout = c.strided ? { rowPad: 2, offset: 3, capacity: c.n + 1 } : {};
    const queries = randomTensor3(rng, 'f32', [c.nHeads, c.n, c.headDim], 3, layout);
    const keys = randomTensor3(rng, c.dtype, [c.nKvHeads, c.n, c.headDim], 1, layout);
    const got = scoreRetrievalHeads({ queries, keys, period: c.period });
    const want = referenceRetrievalHeads(queries, keys, c.period);
    expect(got.nHeads).toBe(c.nHeads);
    expect(got.nKvHeads).toBe(c.nKvHeads);
    for (let h = 0; h < c.nHeads; h++) {
      expect(Math.abs(got.echo[h]! - want.echo[h]!), `echo[${h}]`).toBeLessThan(2e-6 + 1e-5 * want.echo[h]!);
      expect(Math.abs(got.induction[h]! - want.induction[h]!), `induction[${h}]`).toBeLessThan(2e-6 + 1e-5 * want.induction[h]!);
    }
    const group = c.nHeads / c.nKvHeads;
    for (let kv = 0; kv < c.nKvHeads; kv++) {
      expect(got.kvEcho[kv]).toBe(Math.max(...got.echo.slice(kv * group, (kv + 1) * group)));
      expect(got.kvInduction[kv]).toBe(Math.max(...got.induction.slice(kv * group, (kv + 1) * group)));
    }
  });
  test('a custom scale matches the reference with that scale', () => {
    const rng = mulberry32(5);
    const queries = randomTensor3(rng, 'f32', [2, 30, 3], 2);
    const keys = randomTensor3(rng, 'f32', [2, 30, 3], 1);
    const got = scoreRetrievalHeads({ queries, keys, period: 10 }, { scale: 1.7 });
    const want = referenceRetrievalHeads(queries, keys, 10, 1.7);
    for (let h = 0; h < 2; h++) expect(got.induction[h]).toBeCloseTo(want.induction[h]!, 6);
  });
});

/**
 * One layer reading a random block of `period` tokens repeated: every key row
 * is random (a token's keys differ between repetitions, as positions differ),
 * most query heads are random, and some are planted: an induction head's
 * query at i >= period is a large multiple of the key at i - period + 1, an
 * echo head's of the key at i - period.
 */
function plantedLayer(opts: { nHeads: number; nKvHeads: number; headDim: number; period: number; n: number; induction: number[]; echo: number[]; dtype: FloatDType; seed: number }) {
  const { nHeads, nKvHeads, headDim, period, n } = opts;
  const rng = mulberry32(opts.seed);
  const k = randomF32(rng, nKvHeads * n * headDim, 1);
  const q = randomF32(rng, nHeads * n * headDim, 1);
  const group = nHeads / nKvHeads;
  const plant = (h: number, offset: number) => {
    const kv = Math.floor(h / group);
    for (let i = period; i < n; i++) {
      const j = i - period + offset;
      for (let d = 0; d < headDim; d++) q[(h * n + i) * headDim + d] = 12 * k[(kv * n + j) * headDim + d]!;
    }
  };
  for (const h of opts.induction) plant(h, 1);
  for (const h of opts.echo) plant(h, 0);
  const keys = castTo({ dtype: 'f32', shape: [nKvHeads, n, headDim], data: k }, opts.dtype);
  const queries: Tensor<'f32'> = { dtype: 'f32', shape: [nHeads, n, headDim], data: q };
  return { queries, keys };
}

describe('planted retrieval heads are found', () => {
  test('induction head 2 and echo head 5 (GQA 2): their KV heads and only those', () => {
    const layer = plantedLayer({ nHeads: 8, nKvHeads: 4, headDim: 9, period: 13, n: 57, induction: [2], echo: [5], dtype: 'f16', seed: 11 });
    const s = scoreRetrievalHeads({ ...layer, period: 13 });
    const bestInduction = [...s.induction].indexOf(Math.max(...s.induction));
    const bestEcho = [...s.echo].indexOf(Math.max(...s.echo));
    expect(bestInduction).toBe(2);
    expect(bestEcho).toBe(5);
    expect(s.induction[2]).toBeGreaterThan(0.5);
    expect(s.echo[5]).toBeGreaterThan(0.5);
    for (let h = 0; h < 8; h++) if (h !== 2) expect(s.induction[h]).toBeLessThan(0.3);
    expect(pickRetrievalHeads(s, { induction: 1 / 8, echo: 1 / 8 })).toEqual([false, true, true, false]);
    // The paper's defaults on 8 heads: ceil(0.14 * 8) = 2 induction heads and
    // ceil(0.01 * 8) = 1 echo head; the planted heads' KV heads are among them.
    expect(RETRIEVAL_HEAD_DEFAULTS).toEqual({ induction: 0.14, echo: 0.01 });
    const mask = pickRetrievalHeads(s);
    expect(mask[1]).toBe(true);
    expect(mask[2]).toBe(true);
    expect(mask.filter(Boolean).length).toBeLessThanOrEqual(3);
    expect(pickRetrievalHeads(s, { induction: 0, echo: 0 })).toEqual([false, false, false, false]);
  });
  test('layers are ranked together: the planted layer wins the only slot', () => {
    const plain = plantedLayer({ nHeads: 4, nKvHeads: 4, headDim: 6, period: 10, n: 40, induction: [], echo: [], dtype: 'bf16', seed: 3 });
    const planted = plantedLayer({ nHeads: 4, nKvHeads: 4, headDim: 6, period: 10, n: 40, induction: [3], echo: [], dtype: 'bf16', seed: 4 });
    const scores = [scoreRetrievalHeads({ ...plain, period: 10 }), scoreRetrievalHeads({ ...planted, period: 10 })];
    expect(pickRetrievalHeads(scores, { induction: 1 / 8, echo: 0 })).toEqual([[false, false, false, false], [false, false, false, true]]);
  });
});

describe('bad input', () => {
  const rng = mulberry32(1);
  const queries = randomTensor3(rng, 'f32', [4, 20, 3], 1);
  const keys = randomTensor3(rng, 'f32', [2, 20, 3], 1);
  const s = scoreRetrievalHeads({ queries, keys, period: 5 });
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['inputs not an object', () => scoreRetrievalHeads(3 as never), TypeError, /^inputs: expected/],
    ['misspelled input', () => scoreRetrievalHeads({ queries, keys, perod: 5 } as never), TypeError, /did you mean "period"/],
    ['period missing', () => scoreRetrievalHeads({ queries, keys } as never), TypeError, /inputs\.period/],
    ['period 0', () => scoreRetrievalHeads({ queries, keys, period: 0 }), RangeError, /inputs\.period/],
    ['period = n', () => scoreRetrievalHeads({ queries, keys, period: 20 }), RangeError, /inputs\.period/],
    ['keys n mismatch', () => scoreRetrievalHeads({ queries, keys: randomTensor3(rng, 'f32', [2, 21, 3], 1), period: 5 }), RangeError, /inputs\.keys\.shape\[1\]/],
    ['keys headDim mismatch', () => scoreRetrievalHeads({ queries, keys: randomTensor3(rng, 'f32', [2, 20, 4], 1), period: 5 }), RangeError, /inputs\.keys\.shape\[2\]/],
    ['keys GQA', () => scoreRetrievalHeads({ queries, keys: randomTensor3(rng, 'f32', [3, 20, 3], 1), period: 5 }), RangeError, /inputs\.keys\.shape\[0\]/],
    ['queries dtype', () => scoreRetrievalHeads({ queries: randomTensor3(rng, 'f16', [4, 20, 3], 1) as never, keys, period: 5 }), TypeError, /inputs\.queries\.dtype/],
    ['n < 2', () => scoreRetrievalHeads({ queries: randomTensor3(rng, 'f32', [4, 1, 3], 1), keys: randomTensor3(rng, 'f32', [2, 1, 3], 1), period: 1 }), RangeError, /inputs\.queries\.shape\[1\]/],
    ['misspelled option', () => scoreRetrievalHeads({ queries, keys, period: 5 }, { scal: 1 } as never), TypeError, /did you mean "scale"/],
    ['bad scale', () => scoreRetrievalHeads({ queries, keys, period: 5 }, { scale: -1 }), RangeError, /opts\.scale/],
    ['pick: not scores', () => pickRetrievalHeads({} as never), TypeError, /^scores: expected/],
    ['pick: bad layer', () => pickRetrievalHeads([s, {} as never]), TypeError, /^scores\[1\]/],
    ['pick: fraction > 1', () => pickRetrievalHeads(s, { induction: 1.5 }), RangeError, /opts\.induction/],
    ['pick: misspelled option', () => pickRetrievalHeads(s, { ecko: 0.1 } as never), TypeError, /did you mean "echo"/],
  ];
  test.each(cases)('%s', (_l, fn, type, message) => {
    let err: unknown;
    try { fn(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(message);
  });
});
