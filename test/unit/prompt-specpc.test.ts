// SpecPC (lib/prompt/pool.ts, lib/prompt/specpc.ts): the pooling and
// selection against the float64 reference of test/reference/specpc.ts on
// awkward sizes, capacities and ties; hand-made cases pinning each rule; the
// model part (draft attention from the byte model) against a float64
// softmax of the same q and k; the compressor's output invariants.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ByteLm } from '../../lib/model/byte-lm.js';
import { neighborOffsets, specpcPool, specpcSelect } from '../../lib/prompt/pool.js';
import { compressSpecPC, specpcScorer, specpcScores } from '../../lib/prompt/specpc.js';
import { mulberry32 } from '../reference/random.js';
import { refAggregate, refPool, refSelect } from '../reference/specpc.js';

function scoresOf(n: number, seed: number, ties: boolean): Float64Array {
  const rng = mulberry32(seed);
  return Float64Array.from({ length: n }, () => (ties ? Math.floor(rng() * 4) / 4 : rng()));
}

describe('specpcSelect against the reference', () => {
  const cases: [number, number, number, 'max' | 'avg', number, boolean][] = [];
  for (const n of [1, 17, 63, 64, 65, 300]) {
    for (const capacity of [1, 5, 63, 64, 65, n - 1, n, n + 5].filter((c) => c >= 1)) {
      cases.push([n, capacity, 32, 'max', 32, n % 2 === 0]);
      cases.push([n, capacity, 4, 'avg', 5, true]);
      cases.push([n, capacity, 1, 'max', 0, true]);
      cases.push([n, capacity, 7, 'max', 1, false]);
    }
  }
  test.each(cases)('n %i capacity %i kernel %i %s neighbours %i ties %s', (n, capacity, kernelSize, poolType, neighborTokens, ties) => {
    for (const windowSize of [0, 16, 64]) {
      const s = scoresOf(n, n * 1000 + capacity, ties);
      const o = { capacity, windowSize, kernelSize, poolType, neighborTokens };
      const got = [...specpcSelect(s, o)];
      expect(got, JSON.stringify(o)).toEqual(refSelect(s, o));
      expect(got.length).toBeLessThanOrEqual(capacity);
      expect(got.length).toBe(Math.min(capacity, n)); // the top tokens are distinct: the list always fills the capacity
    }
  });

  test('float32 scores select what their float64 values select', () => {
    const s = Float32Array.from(scoresOf(300, 7, false));
    const o = { capacity: 90, windowSize: 64, kernelSize: 32, poolType: 'max' as const, neighborTokens: 32 };
    expect([...specpcSelect(s, o)]).toEqual(refSelect(Float64Array.from(s), o));
  });

  test.each([1, 2, 5, 32])('pooling, kernel %i', (k) => {
    for (const type of ['max', 'avg'] as const) {
      const s = scoresOf(65, k, false);
      const got = specpcPool(s, { kernelSize: k, poolType: type });
      const want = refPool(s, k, type);
      for (let i = 0; i < 65; i++) expect(got[i]).toBeCloseTo(want[i]!, 14);
    }
  });
});

describe('specpcSelect rules by hand', () => {
  test('centred pooling: the left pad is floor((k-1)/2)', () => {
    // kernel 4: window [i-1, i+2]; a spike at 5 reaches 3, 4, 5, 6.
    const s = new Float64Array(10);
    s[5] = 1;
    expect([...specpcPool(s, { kernelSize: 4 })]).toEqual([0, 0, 0, 1, 1, 1, 1, 0, 0, 0]);
    expect([...specpcPool(s, { kernelSize: 4, poolType: 'avg' })]).toEqual([0, 0, 0, 0.25, 0.25, 0.25, 0.25, 0, 0, 0]);
  });

  test('neighbour offsets: nearest first, left before right', () => {
    expect(neighborOffsets(1)).toEqual([0]);
    expect(neighborOffsets(4)).toEqual([0, -1, 1, 2]);
    expect(neighborOffsets(5)).toEqual([0, -1, 1, -2, 2]);
  });

  test('window first, then top tokens with neighbours, cut to capacity, sorted', () => {
    const s = new Float64Array(20);
    s[3] = 0.9;
    s[10] = 0.5;
    // no pooling; window 2 -> 18, 19; top: 3 (then its neighbours 2, 4), 10 (9, 11) ...
    expect([...specpcSelect(s, { capacity: 5, windowSize: 2, kernelSize: 1, neighborTokens: 3 })]).toEqual([2, 3, 4, 18, 19]);
    expect([...specpcSelect(s, { capacity: 6, windowSize: 2, kernelSize: 1, neighborTokens: 3 })]).toEqual([2, 3, 4, 10, 18, 19]);
    // capacity below the window: the window's first tokens only (the official cut).
    expect([...specpcSelect(s, { capacity: 1, windowSize: 2, kernelSize: 1, neighborTokens: 3 })]).toEqual([18]);
    // neighbours clamp at the ends.
    s[0] = 2;
    expect([...specpcSelect(s, { capacity: 4, windowSize: 1, kernelSize: 1, neighborTokens: 3 })]).toEqual([0, 1, 3, 19]);
  });

  test('hostile inputs are refused with the argument named', () => {
    const s = new Float64Array(4);
    expect(() => specpcSelect([1, 2] as never, { capacity: 1 })).toThrow(/scores: expected a Float32Array or Float64Array/);
    expect(() => specpcSelect(Float64Array.of(1, NaN), { capacity: 1 })).toThrow(RangeError);
    expect(() => specpcSelect(s, { capacity: 0 })).toThrow(/options.capacity/);
    expect(() => specpcSelect(s, { capacity: 1.5 })).toThrow(/options.capacity/);
    expect(() => specpcSelect(s, { capacity: 1, poolType: 'min' as never })).toThrow(/options.poolType/);
    expect(() => specpcSelect(s, { capacity: 1, kernelSize: 0 })).toThrow(/options.kernelSize/);
    expect(() => specpcSelect(s, { capacity: 1, windwSize: 3 } as never)).toThrow(/did you mean "windowSize"/);
    expect(() => specpcSelect(s, undefined as never)).toThrow(TypeError);
    expect([...specpcSelect(new Float64Array(0), { capacity: 3 })]).toEqual([]);
  });
});

describe('the model part (draft)', () => {
  let lm: ByteLm;
  beforeAll(async () => { lm = await ByteLm.load('draft', { plain: false }); });
  afterAll(async () => { await lm.release(); });
  const TEXT = 'ABANDON, v. t. To give up wholly; to forsake. The key is 8351. Q: What is the key?\nA: The key is';

  test('scores = float64 softmax of the same q and k, max over heads, rows and layers', async () => {
    const bytes = new TextEncoder().encode(TEXT);
    const n = bytes.length;
    const { nLayers, nHeads, nKvHeads, headDim } = lm.config;
    const layers: { q: Float32Array; k: Float32Array }[] = [];
    await lm.session().forward(bytes, { onLayer: ({ layer, q, k }) => { layers[layer] = { q: q.slice(), k: k.slice() }; } });
    for (const [weightedQuery, reduction, startingLayer, windowSize] of [[true, 'max', undefined, 64], [false, 'mean', 0, 16], [true, 'max', 0, 200]] as const) {
      const { scores, lookahead } = await specpcScores(TEXT, { model: lm, weightedQuery, reduction, startingLayer, windowSize, chunk: 40 });
      const start = startingLayer ?? Math.floor(nLayers / 2);
      const want = refAggregate(layers, n, nHeads, nKvHeads, headDim, Math.min(windowSize, n), start, weightedQuery, reduction === 'mean');
      expect(lookahead.length).toBe(1);
      for (let j = 0; j < n; j++) expect(Math.abs(scores[j]! - want[j]!), `${reduction} ${j}`).toBeLessThan(2e-5 * Math.max(1, want[j]!));
    }
  });

  test('lookahead rows only add attention (max reduction)', async () => {
    const a = await specpcScores(TEXT, { model: lm });
    const b = await specpcScores(TEXT, { model: lm, lookaheadTokens: 3 });
    expect(b.lookahead.length).toBe(3);
    expect(b.lookahead[0]).toBe(a.lookahead[0]);
    for (let j = 0; j < a.scores.length; j++) expect(b.scores[j]).toBeGreaterThanOrEqual(a.scores[j]!);
    expect(b.scores.some((v, j) => v > a.scores[j]!)).toBe(true);
  });

  test('compressSpecPC: sorted spans, capacity respected, the last window kept, deterministic', async () => {
    const text = `${TEXT} — café ünïcode ✓ end.`;
    const r = await compressSpecPC(text, { model: lm, capacity: 60, windowSize: 16, kernelSize: 8, neighborTokens: 4 });
    let prev = -1;
    for (const s of r.kept) {
      expect(s.start).toBeGreaterThan(prev);
      expect(s.end).toBeGreaterThan(s.start);
      prev = s.end;
    }
    expect(r.text).toBe(r.kept.map((s) => text.slice(s.start, s.end)).join(''));
    const keptBytes = new TextEncoder().encode(r.text).length;
    expect(keptBytes).toBeLessThanOrEqual(60 + 3 * 2); // whole characters: a cut multi-byte character adds its other bytes
    expect(keptBytes).toBeGreaterThanOrEqual(55);
    expect(text.endsWith(r.text.slice(-10))).toBe(true);
    const last = r.kept[r.kept.length - 1]!;
    expect(last.end).toBe(text.length);
    expect(new TextEncoder().encode(text.slice(last.start)).length).toBeGreaterThanOrEqual(16);
    const again = await compressSpecPC(text, { model: lm, capacity: 60, windowSize: 16, kernelSize: 8, neighborTokens: 4 });
    expect(again).toEqual(r);
    expect(r.compressedTokens).toBeLessThan(r.originalTokens);
  });

  test('the scorer: one score per non-whitespace character, the max of its bytes pooled', async () => {
    const scorer = specpcScorer({ model: lm, kernelSize: 1 });
    const text = 'ab cé d';
    const tokens = await scorer.tokenize(text);
    expect(tokens.map((t) => text.slice(t.start, t.end))).toEqual(['a', 'b', 'c', 'é', 'd']);
    const got = await scorer.score(text, tokens);
    const { scores } = await specpcScores(text, { model: lm });
    expect([...got]).toEqual([scores[0], scores[1], scores[3], Math.max(scores[4]!, scores[5]!), scores[7]]);
    await scorer.release();
  });

  test('hostile inputs', async () => {
    await expect(specpcScores('', { model: lm })).rejects.toThrow(/text: expected a non-empty prompt/);
    await expect(specpcScores(42 as never)).rejects.toThrow(TypeError);
    await expect(specpcScores('abc', { model: lm, startingLayer: 9 })).rejects.toThrow(/options.startingLayer/);
    await expect(specpcScores('abc', { model: 'big' as never })).rejects.toThrow(/options.model/);
    await expect(compressSpecPC('abc', { model: lm })).rejects.toThrow(/options.capacity/);
    await expect(compressSpecPC('abc', { model: lm, capacity: 2, rate: 0.5 })).rejects.toThrow(/capacity or rate/);
    await expect(compressSpecPC('abc', { model: lm, rate: 0 })).rejects.toThrow(/options.rate/);
    await expect(compressSpecPC('abc', { model: lm, capacity: 2, poolType: 'x' as never })).rejects.toThrow(/options.poolType/);
    expect(() => specpcScorer({ reduction: 'min' as never })).toThrow(/options.reduction/);
  });
});
