// TidalDecode and block retrieval (lib/sparse/tidal.ts, lib/sparse/blocks.ts,
// native/sparse/tidal.cpp, blocks.cpp, native/kv/kv_cache_tidal.cpp,
// kv_cache_sparse.cpp) against slow float64 references written here.
//
// Tolerances:
// - block summaries: kmin / kmax exact; kmean = f32 sum in row order / rows:
//   f32SumBound(rows, sum |k|) / rows.
// - block selection on integer data with power-of-two block sizes (and a
//   last block of a power-of-two row count): every sum, mean and product is
//   exact in f32, so the chosen blocks must equal the reference's exactly,
//   ties (lower block index) included.
// - TidalDecode selection ranks by the f32 key mass of the selection layer's
//   own attention pass; against the float64 key mass a chosen token may trail
//   an unchosen one by at most the mass tolerance of both (MASS_RTOL * m +
//   MASS_ATOL, helpers.ts). On exact inputs (tidalSelect's weights) the
//   selection must equal the reference's exactly.
// - attention over the selected rows: OUT_TOL * max|v| (helpers.ts).
import { describe, expect, test } from 'vitest';
import {
  attention, blockSelect, blockSummaries, KvCache, tidalSelect, type FloatDType, type KvCacheDtype, type Tensor,
} from '../../lib/index.js';
import { decode3, referenceAttention } from '../reference/attention.js';
import { mulberry32, randomInt, type Rng } from '../reference/random.js';
import { MASS_ATOL, MASS_RTOL, maxAbsDiff, OUT_TOL, randomTensor3 } from './helpers.js';
import { withIsa } from './isa.js';
import { f32SumBound } from './tolerance.js';

// ---------------------------------------------------------------- references

interface Forced { budget: number; sinks: number; recent: number; nQ: number }

/** Reference token selection: forced sinks / recent, then the highest weights (lower index on ties), ascending. */
function refSelectTokens(w: ArrayLike<number>, n: number, o: Forced): number[] {
  if (n <= o.budget) return Array.from({ length: n }, (_, t) => t);
  const r = Math.min(n, Math.max(o.recent, o.nQ, 1));
  const recentBegin = n - r, sinkEnd = Math.min(o.sinks, n, recentBegin);
  const forced = sinkEnd + (n - recentBegin);
  const cands: number[] = [];
  for (let t = sinkEnd; t < recentBegin; t++) cands.push(t);
  cands.sort((a, b) => (w[b]! - w[a]!) || a - b);
  const take = Math.max(0, o.budget - forced);
  const out = [...cands.slice(0, take)];
  for (let t = 0; t < sinkEnd; t++) out.push(t);
  for (let t = recentBegin; t < n; t++) out.push(t);
  return out.sort((a, b) => a - b);
}

/** Block summaries in float64: lo, hi, mean [H, blocks, d]. */
function refBlockSummaries(K: Float64Array, H: number, n: number, d: number, B: number) {
  const blocks = Math.ceil(n / B);
  const lo = new Float64Array(H * blocks * d).fill(Infinity), hi = new Float64Array(H * blocks * d).fill(-Infinity);
  const mean = new Float64Array(H * blocks * d), mag = new Float64Array(H * blocks * d);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < n; t++) {
      const b = Math.floor(t / B), cnt = Math.min(n, (b + 1) * B) - b * B;
      for (let c = 0; c < d; c++) {
        const x = K[(h * n + t) * d + c]!, at = (h * blocks + b) * d + c;
        lo[at] = Math.min(lo[at]!, x);
        hi[at] = Math.max(hi[at]!, x);
        mean[at] = mean[at]! + x / cnt;
        mag[at] = mag[at]! + Math.abs(x);
      }
    }
  }
  return { lo, hi, mean, mag, blocks };
}

/** Block scores of KV head h: sum (or max) over the group's rows of mix * bound + (1 - mix) * q . mean. */
function refBlockScores(
  Q: Float64Array, nHeads: number, nQ: number, d: number, H: number, h: number,
  s: { lo: ArrayLike<number>; hi: ArrayLike<number>; mean: ArrayLike<number>; blocks: number }, mix: number, gqa: 'max' | 'sum',
): { scores: number[]; mag: number[] } {
  const group = nHeads / H, scores: number[] = [], mag: number[] = [];
  for (let b = 0; b < s.blocks; b++) {
    let comb = gqa === 'max' ? -Infinity : 0, m = 0;
    for (let j = 0; j < group; j++) {
      for (let i = 0; i < nQ; i++) {
        const qo = ((h * group + j) * nQ + i) * d;
        let bound = 0, dot = 0;
        for (let c = 0; c < d; c++) {
          const at = (h * s.blocks + b) * d + c, q = Q[qo + c]!;
          bound += Math.max(q * s.hi[at]!, q * s.lo[at]!);
          dot += q * s.mean[at]!;
          m += Math.max(Math.abs(q * s.hi[at]!), Math.abs(q * s.lo[at]!)) + Math.abs(q * s.mean[at]!);
        }
        const x = mix * bound + (1 - mix) * dot;
        comb = gqa === 'max' ? Math.max(comb, x) : comb + x;
      }
    }
    scores.push(comb);
    mag.push(m);
  }
  return { scores, mag };
}

interface BlockOpts { budget: number; B: number; sinks: number; recent: number; nQ: number }

function refSelectBlocks(scores: number[], n: number, o: BlockOpts): number[] {
  const blocks = Math.ceil(n / o.B), budgetBlocks = Math.max(1, Math.floor(o.budget / o.B));
  if (blocks <= budgetBlocks) return Array.from({ length: blocks }, (_, b) => b);
  const forced = forcedBlocks(n, o);
  const cands = [];
  for (let b = 0; b < blocks; b++) if (!forced.has(b)) cands.push(b);
  cands.sort((a, b) => (scores[b]! - scores[a]!) || a - b);
  return [...forced, ...cands.slice(0, Math.max(0, budgetBlocks - forced.size))].sort((a, b) => a - b);
}

function forcedBlocks(n: number, o: BlockOpts): Set<number> {
  const blocks = Math.ceil(n / o.B), forced = new Set<number>();
  for (let b = 0; b < Math.min(blocks, Math.ceil(Math.min(o.sinks, n) / o.B)); b++) forced.add(b);
  const r = Math.min(n, Math.max(o.recent, o.nQ, 1));
  for (let b = Math.floor((n - r) / o.B); b < blocks; b++) forced.add(b);
  return forced;
}

const blocksToTokens = (blocks: number[], n: number, B: number): number[] => blocks.flatMap((b) => Array.from({ length: Math.min(n, (b + 1) * B) - b * B }, (_, i) => b * B + i));
const blocksOf = (tokens: number[], B: number): number[] => [...new Set(tokens.map((t) => Math.floor(t / B)))];
const rowsOf = (t: Tensor<'i32'>, h: number): number[] => Array.from(t.data.subarray(h * t.shape[1]!, (h + 1) * t.shape[1]!)).filter((x) => x >= 0);

function intTensor(rng: Rng, shape: [number, number, number], amp: number): Tensor<'f32'> {
  const data = new Float32Array(shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < data.length; i++) data[i] = randomInt(rng, -amp, amp);
  return { dtype: 'f32', shape, data };
}

function vMax(v: Tensor<FloatDType>): number {
  let m = 0;
  for (const x of decode3(v)) m = Math.max(m, Math.abs(x));
  return m;
}

/** A chosen set is a true top set up to tolerance: no unchosen candidate beats a chosen one by more than tol(a) + tol(b). */
function expectNearTop(chosen: number[], all: number, forced: Set<number>, count: number, w: ArrayLike<number>, tol: (i: number) => number): void {
  for (const f of forced) expect(chosen).toContain(f);
  expect(chosen.length).toBe(count);
  const set = new Set(chosen);
  for (const a of chosen) {
    if (forced.has(a)) continue;
    for (let b = 0; b < all; b++) {
      if (set.has(b) || forced.has(b)) continue;
      expect(w[a]!).toBeGreaterThanOrEqual(w[b]! - tol(a) - tol(b));
    }
  }
}

// ---------------------------------------------------------------- blocks, stateless

describe('blockSummaries', () => {
  test.each([
    ['f32', 2, 100, 5, 16], ['f16', 1, 64, 7, 64], ['bf16', 3, 33, 4, 8], ['f32', 1, 1, 3, 64], ['f32', 2, 130, 6, 1],
  ] as [FloatDType, number, number, number, number][])('%s [%i, %i, %i], blockSize %i: exact min / max, f32 mean', (dtype, H, n, d, B) => {
    const k = randomTensor3(mulberry32(n * 7 + B), dtype, [H, n, d], 2, { rowPad: 2 });
    const s = blockSummaries(k, { blockSize: B });
    const r = refBlockSummaries(decode3(k), H, n, d, B);
    expect(s.blockSize).toBe(B);
    expect(s.kmin.shape).toEqual([H, r.blocks, d]);
    expect(s.kmean.dtype).toBe('f32');
    expect(Array.from(decode3(s.kmin))).toEqual(Array.from(r.lo));
    expect(Array.from(decode3(s.kmax))).toEqual(Array.from(r.hi));
    for (let i = 0; i < r.mean.length; i++) {
      const b = Math.floor(i / d) % r.blocks, cnt = Math.min(n, (b + 1) * B) - b * B;
      expect(Math.abs(s.kmean.data[i]! - r.mean[i]!)).toBeLessThanOrEqual(f32SumBound(cnt, r.mag[i]!) / cnt + 1e-7 * Math.abs(r.mean[i]!));
    }
  });

  test('the default block size is 64', () => {
    expect(blockSummaries(randomTensor3(mulberry32(1), 'f32', [1, 130, 4], 1)).kmin.shape).toEqual([1, 3, 4]);
  });
});

describe('blockSelect: exact selection on integer data', () => {
  // nHeads, nKvHeads, nQ, nKv, headDim, B, budget, sinks, recent, mix
  const cases: [number, number, number, number, number, number, number, number, number, number][] = [
    [4, 2, 1, 100, 8, 16, 48, 1, 16, 0.5],
    [4, 1, 2, 132, 5, 8, 40, 0, 1, 0],
    [6, 2, 1, 260, 6, 64, 128, 1, 64, 1],
    [2, 2, 3, 70, 3, 2, 14, 5, 9, 0.25],
    [2, 1, 1, 40, 4, 64, 64, 1, 64, 0.5],   // budget >= length: every block
    [2, 1, 1, 97, 4, 32, 20, 1, 32, 0.5],   // budget < B: one block
  ];
  for (const gqa of ['sum', 'max'] as const) {
    test.each(cases)(`gqa ${gqa}: [%i heads, %i kv, nQ %i, nKv %i, d %i], B %i, budget %i, sinks %i, recent %i, mix %d`, (nHeads, H, nQ, n, d, B, budget, sinks, recent, mix) => {
      const rng = mulberry32(nHeads * 5 + n + B * 3 + budget);
      const k = intTensor(rng, [H, n, d], 3);
      const q = intTensor(rng, [nHeads, nQ, d], 2);
      const s = blockSummaries(k, { blockSize: B });
      const idx = blockSelect(q, s, { budget, sinks, recent, gqa, mix });
      const r = refBlockSummaries(decode3(k), H, n, d, B);
      for (let h = 0; h < H; h++) {
        const { scores } = refBlockScores(decode3(q), nHeads, nQ, d, H, h, r, mix, gqa);
        expect(rowsOf(idx, h)).toEqual(blocksToTokens(refSelectBlocks(scores, n, { budget, B, sinks, recent, nQ }), n, B));
      }
    });
  }

  test('one sharp key is not averaged away (mix 0.5), but is with the mean alone (mix 0)', () => {
    const H = 1, B = 16, n = 8 * B, d = 4;
    const k = new Float32Array(n * d);
    // Block 3 holds one key aligned with q among keys against it; block 5 is mildly aligned throughout.
    for (let t = 0; t < n; t++) k.set(Math.floor(t / B) === 5 ? [0.3, 0, 0, 0] : Math.floor(t / B) === 3 ? [-0.5, 0, 0, 0] : [0, 0, 0, 0], t * d);
    k.set([8, 0, 0, 0], (3 * B + 7) * d);
    const kt: Tensor<'f32'> = { dtype: 'f32', shape: [H, n, d], data: k };
    const q: Tensor<'f32'> = { dtype: 'f32', shape: [1, 1, d], data: Float32Array.of(1, 0, 0, 0) };
    const s = blockSummaries(kt, { blockSize: B });
    const pick = (mix: number) => blocksOf(rowsOf(blockSelect(q, s, { budget: 2 * B, sinks: 0, recent: 1, mix }), 0), B);
    expect(pick(0.5)).toEqual([3, 7]);   // bound 8 -> 0.5 * 8 + 0.5 * (8 - 7.5) / 16 > block 5's 0.3
    expect(pick(0)).toEqual([5, 7]);
  });
});

describe('blockSelect + attention({ indices }) ', () => {
  test.each([['f32', 4, 2, 1, 300, 32, 96], ['f16', 2, 1, 2, 150, 64, 128], ['bf16', 2, 2, 1, 90, 64, 4096]] as [FloatDType, number, number, number, number, number, number][])(
    '%s, %i heads / %i kv, nQ %i, nKv %i, B %i, budget %i', (dtype, nHeads, H, nQ, n, B, budget) => {
      const rng = mulberry32(n + budget);
      const d = 10;
      const k = randomTensor3(rng, dtype, [H, n, d], 1), v = randomTensor3(rng, dtype, [H, n, d], 1);
      const q = randomTensor3(rng, 'f32', [nHeads, nQ, d], 2);
      const indices = blockSelect(q, blockSummaries(k, { blockSize: B }), { budget });
      const got = attention(q, k, v, { indices, causal: true });
      const ref = referenceAttention(q, k, v, { indices, causal: true });
      expect(maxAbsDiff(got.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(v));
      if (budget >= n) expect(maxAbsDiff(got.output.data, referenceAttention(q, k, v, { causal: true }).output)).toBeLessThanOrEqual(OUT_TOL * vMax(v));
    });
});

// ---------------------------------------------------------------- tidal, stateless

describe('tidalSelect', () => {
  test('2-D key mass: the exact top tokens, forced sinks and recent, lower index on ties', () => {
    const rng = mulberry32(3);
    for (const [H, n, budget, sinks, recent, nQ] of [[2, 50, 10, 0, 1, 1], [3, 37, 12, 4, 5, 1], [1, 20, 25, 0, 1, 1], [2, 64, 8, 2, 1, 3], [1, 9, 2, 3, 4, 1]] as const) {
      // Few distinct values: many ties.
      const w = new Float32Array(H * n).map(() => randomInt(rng, 0, 5) / 4);
      const idx = tidalSelect({ dtype: 'f32', shape: [H, n], data: w }, { budget, sinks, recent, nQ });
      for (let h = 0; h < H; h++) expect(rowsOf(idx, h)).toEqual(refSelectTokens(w.subarray(h * n, (h + 1) * n), n, { budget, sinks, recent, nQ }));
    }
  });

  test('3-D weights: rows grouped per KV head, combined by sum or max; scores with -Infinity', () => {
    const rng = mulberry32(4);
    const nHeads = 4, nQ = 2, n = 30, H = 2;
    const w = new Float32Array(nHeads * nQ * n).map(() => randomInt(rng, -8, 8));
    w[5] = -Infinity;
    for (const gqa of ['sum', 'max'] as const) {
      const idx = tidalSelect({ dtype: 'f32', shape: [nHeads, nQ, n], data: w }, { budget: 7, nKvHeads: H, gqa });
      for (let h = 0; h < H; h++) {
        const comb = Array.from({ length: n }, (_, t) => {
          let acc = gqa === 'sum' ? 0 : -Infinity;
          for (let r = 0; r < (nHeads / H) * nQ; r++) {
            const x = w[(h * (nHeads / H) * nQ + r) * n + t]!;
            acc = gqa === 'sum' ? acc + x : Math.max(acc, x);
          }
          return acc;
        });
        expect(rowsOf(idx, h)).toEqual(refSelectTokens(comb, n, { budget: 7, sinks: 0, recent: 1, nQ }));
      }
    }
    // One set per query head (the official code's selection) by default.
    expect(tidalSelect({ dtype: 'f32', shape: [nHeads, nQ, n], data: w }, { budget: 7 }).shape).toEqual([nHeads, 7]);
  });

  test('from a full pass: attention keyMass -> tidalSelect -> attention({ indices }) in a later layer', () => {
    const rng = mulberry32(5);
    const H = 2, nHeads = 4, n = 120, d = 8;
    const k2 = randomTensor3(rng, 'f32', [H, n, d], 1.5), v2 = randomTensor3(rng, 'f32', [H, n, d], 1);
    const q2 = randomTensor3(rng, 'f32', [nHeads, 1, d], 2);
    const full = attention(q2, k2, v2, { causal: true, returnKeyMass: true });
    const indices = tidalSelect(full.keyMass!, { budget: 24 });
    const ref = referenceAttention(q2, k2, v2, { causal: true });
    for (let h = 0; h < H; h++) {
      const m = ref.keyMass.subarray(h * n, (h + 1) * n);
      expectNearTop(rowsOf(indices, h), n, new Set([n - 1]), 24, m, (i) => MASS_RTOL * m[i]! + MASS_ATOL);
    }
    const k3 = randomTensor3(rng, 'f32', [H, n, d], 1), v3 = randomTensor3(rng, 'f32', [H, n, d], 1);
    const q3 = randomTensor3(rng, 'f32', [nHeads, 1, d], 2);
    expect(maxAbsDiff(attention(q3, k3, v3, { indices, causal: true }).output.data, referenceAttention(q3, k3, v3, { indices, causal: true }).output)).toBeLessThanOrEqual(OUT_TOL * vMax(v3));
  });
});

// ---------------------------------------------------------------- KvCache

const CACHE_DTYPES: KvCacheDtype[] = ['f32', 'f16', 'bf16', 'int8', 'int4'];
const quant = (t: KvCacheDtype) => t === 'int8' || t === 'int4';
const onPath = <T>(dtype: KvCacheDtype, fn: () => T): T => (quant(dtype) ? withIsa('scalar', fn) : fn());

function newCache(dtype: KvCacheDtype, nLayers: number, H: number, d: number): KvCache {
  return new KvCache({ nLayers, nKvHeads: H, headDim: d, capacity: 4096, dtype, ...(quant(dtype) ? { groupSize: 16, residual: 20 } : {}) });
}

/** One chunk of m random tokens appended to every layer (each layer its own keys). */
function appendAll(cache: KvCache, rng: Rng, m: number, amp = 1.5): void {
  for (let l = 0; l < cache.nLayers; l++) {
    cache.append(l, randomTensor3(rng, 'f32', [cache.nKvHeads, m, cache.headDim], amp), randomTensor3(rng, 'f32', [cache.nKvHeads, m, cache.headDim], 1));
  }
}

function snapshot(cache: KvCache) {
  return Array.from({ length: cache.nLayers }, (_, l) => {
    const e = cache.export(l, { dtype: 'f32' });
    return [Array.from(e.k.data), Array.from(e.lengths), Array.from(e.positions.data)];
  });
}

describe.each(CACHE_DTYPES)('KvCache.attend({ sparse: blocks }) (%s cache)', (dtype) => {
  const H = 2, GROUP = 2, d = 8;

  test('output = float64 attention over the returned rows; whole blocks, near-top by the cached summaries; dense at budget >= length', () => onPath(dtype, () => {
    const rng = mulberry32(71);
    const cache = newCache(dtype, 1, H, d);
    appendAll(cache, rng, 200);
    appendAll(cache, rng, 3);
    for (const [nQ, B, budget, gqa, mix, sinks, recent] of [[1, 16, 64, 'sum', 0.5, 1, 16], [2, 32, 96, 'max', 1, 0, 1], [1, 8, 40, 'sum', 0, 5, 20], [1, 64, 4096, 'sum', 0.5, 1, 64]] as const) {
      const q = randomTensor3(rng, 'f32', [H * GROUP, nQ, d], 2);
      const r = cache.attend(0, q, { sparse: { method: 'blocks', budget, blockSize: B, gqa, mix, sinks, recent }, returnSelected: true, remember: false });
      const e = cache.export(0, { dtype: 'f32' });
      const n = e.lengths[0]!;
      const ref = referenceAttention(q, e.k, e.v, { indices: r.selected!, causal: true });
      expect(maxAbsDiff(r.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
      const s = cache.questSummaries(0);
      expect(s.pageSize).toBe(B);
      expect(s.kmean).toBeDefined();
      for (let h = 0; h < H; h++) {
        const got = rowsOf(r.selected!, h);
        const blocks = blocksOf(got, B);
        expect(got).toEqual(blocksToTokens(blocks, n, B));
        const sums = { lo: s.kmin.data, hi: s.kmax.data, mean: s.kmean!.data, blocks: s.kmin.shape[1]! };
        const { scores, mag } = refBlockScores(decode3(q), H * GROUP, nQ, d, H, h, sums, mix, gqa);
        const o = { budget, B, sinks, recent, nQ };
        const total = Math.ceil(n / B), budgetBlocks = Math.max(1, Math.floor(budget / B));
        const forced = total <= budgetBlocks ? new Set(Array.from({ length: total }, (_, i) => i)) : forcedBlocks(n, o);
        expectNearTop(blocks, total, forced, Math.min(total, Math.max(budgetBlocks, forced.size)), scores, (i) => f32SumBound(GROUP * nQ * (2 * d + 2), mag[i]!));
      }
      if (budget >= n) expect(maxAbsDiff(r.output.data, referenceAttention(q, e.k, e.v, { causal: true }).output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
    }
  }));

  test('block means kept through appends equal a rebuild from scratch; compress rebuilds; a Quest attend with another size drops them', () => onPath(dtype, () => {
    const B = 16, sparse = { method: 'blocks', budget: 48, blockSize: B } as const;
    const q = randomTensor3(mulberry32(2), 'f32', [H * GROUP, 1, d], 1);
    const a = newCache(dtype, 1, H, d), b = newCache(dtype, 1, H, d);
    const ra = mulberry32(9), rb = mulberry32(9);
    let first = true;
    for (const m of [5, 1, 17, 3, 40, 1, 16, 30]) {
      appendAll(a, ra, m);
      appendAll(b, rb, m);
      if (first) a.attend(0, q, { sparse, remember: false });
      first = false;
    }
    b.attend(0, q, { sparse, remember: false });
    const sa = a.questSummaries(0), sb = b.questSummaries(0);
    expect(Array.from(sa.kmean!.data)).toEqual(Array.from(sb.kmean!.data));
    expect(Array.from(sa.kmin.data)).toEqual(Array.from(sb.kmin.data));
    expectMeans(a, B);
    a.compress('knorm', { keep: 60 });
    expect(Array.from(a.questSummaries(0).headPages)).toEqual([4, 4]);
    expectMeans(a, B);
    a.attend(0, q, { sparse: { method: 'quest', budget: 32, pageSize: 8 }, remember: false });
    expect(a.questSummaries(0).kmean).toBeUndefined();
  }));
});

/** The cache's block means against the mean of its exported keys (float64). */
function expectMeans(cache: KvCache, B: number): void {
  const s = cache.questSummaries(0);
  const e = cache.export(0, { dtype: 'f32' });
  const [H, maxLen, d] = e.k.shape as [number, number, number];
  const K = decode3(e.k);
  for (let h = 0; h < H; h++) {
    const n = e.lengths[h]!;
    const r = refBlockSummaries(K.subarray(h * maxLen * d, (h * maxLen + n) * d), 1, n, d, B);
    for (let i = 0; i < r.mean.length; i++) {
      const got = s.kmean!.data[h * s.kmean!.shape[1]! * d + i]!;
      expect(Math.abs(got - r.mean[i]!)).toBeLessThanOrEqual(f32SumBound(B, r.mag[i]!) + 1e-6 * Math.abs(r.mean[i]!));
    }
  }
}

describe.each(CACHE_DTYPES)('KvCache TidalDecode across the layers of a step (%s cache)', (dtype) => {
  const H = 2, GROUP = 2, d = 8, nLayers = 6, budget = 20;
  const sparse = { method: 'tidal', budget, reselectLayers: [4] } as const;  // full 0-1, select 2, reselect 4

  test('full layers exact, selection = top key mass of its own pass, later layers exactly over the kept positions, reselection refreshes', () => onPath(dtype, () => {
    const rng = mulberry32(81);
    const cache = newCache(dtype, nLayers, H, d);
    appendAll(cache, rng, 90);
    for (let step = 0; step < 2; step++) {
      appendAll(cache, rng, 1);
      let kept: Tensor<'i32'> | undefined;
      for (let l = 0; l < nLayers; l++) {
        const q = randomTensor3(rng, 'f32', [H * GROUP, 1, d], 2);
        const r = cache.attend(l, q, { sparse, returnSelected: true, remember: false });
        const e = cache.export(l, { dtype: 'f32' });
        const n = e.lengths[0]!;
        const full = referenceAttention(q, e.k, e.v, { causal: true });
        if (l < 2) {
          expect(maxAbsDiff(r.output.data, cache.attend(l, q, { remember: false }).output.data)).toBe(0);
          expect(r.selected!.shape).toEqual([H, n]);
          expect(maxAbsDiff(r.output.data, full.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
        } else if (l === 2 || l === 4) {
          expect(maxAbsDiff(r.output.data, full.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
          for (let h = 0; h < H; h++) {
            const m = full.keyMass.subarray(h * n, (h + 1) * n);
            expectNearTop(rowsOf(r.selected!, h), n, new Set([n - 1]), budget, m, (i) => MASS_RTOL * m[i]! + MASS_ATOL);
          }
          if (l === 4) expect(r.selected).not.toEqual(kept);  // refreshed
          kept = r.selected;
        } else {
          expect(r.selected).toEqual(kept);
          const ref = referenceAttention(q, e.k, e.v, { indices: kept!, causal: true });
          expect(maxAbsDiff(r.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
        }
      }
    }
  }));

  test('out-of-step use fails clearly and changes nothing; budget >= length is dense', () => onPath(dtype, () => {
    const rng = mulberry32(91);
    const cache = newCache(dtype, nLayers, H, d);
    appendAll(cache, rng, 30);
    const q = randomTensor3(rng, 'f32', [H * GROUP, 1, d], 1);
    // No selection yet.
    expect(() => cache.attend(3, q, { sparse })).toThrow(/sparse: layer 3 attends over the positions selected earlier in this decode step, but none are selected/);
    cache.attend(2, q, { sparse });
    cache.attend(3, q, { sparse });
    // Next step: layer 3 appended, layer 2 not yet attended (nor appended): lengths differ.
    cache.append(3, randomTensor3(rng, 'f32', [H, 1, d], 1), randomTensor3(rng, 'f32', [H, 1, d], 1));
    const before = snapshot(cache);
    expect(() => cache.attend(3, q, { sparse })).toThrow(/layer 3 KV head 0 holds 31 tokens, but the positions were selected at layer 2 over 30/);
    // beginStep drops the selection; an append to the selecting layer does too.
    cache.beginStep();
    expect(() => cache.attend(5, q, { sparse })).toThrow(/none are selected/);
    expect(snapshot(cache)).toEqual(before);
    cache.attend(2, q, { sparse });
    cache.append(2, randomTensor3(rng, 'f32', [H, 1, d], 1), randomTensor3(rng, 'f32', [H, 1, d], 1));
    expect(() => cache.attend(3, q, { sparse })).toThrow(/none are selected/);
    // budget >= length: the kept positions are every row, the output dense.
    cache.attend(2, q, { sparse: { ...sparse, budget: 4096 } });
    const r = cache.attend(3, q, { sparse: { ...sparse, budget: 4096 }, returnSelected: true, remember: false });
    const e = cache.export(3, { dtype: 'f32' });
    expect(r.selected!.shape).toEqual([H, 31]);
    expect(maxAbsDiff(r.output.data, referenceAttention(q, e.k, e.v, { causal: true }).output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
  }));
});

describe('TidalDecode schedule options', () => {
  const q = randomTensor3(mulberry32(1), 'f32', [2, 1, 4], 1);
  function cacheOf(nLayers: number): KvCache {
    const c = new KvCache({ nLayers, nKvHeads: 1, headDim: 4, dtype: 'f32' });
    appendAll(c, mulberry32(2), 40);
    return c;
  }

  test('a 4-layer model: defaults full 0-1, select 2, no reselection (the paper has 32 layers)', () => {
    const c = cacheOf(4);
    const sel = (l: number) => c.attend(l, q, { sparse: { method: 'tidal', budget: 8 }, returnSelected: true }).selected!;
    expect(sel(0).shape).toEqual([1, 40]);
    expect(sel(1).shape).toEqual([1, 40]);
    const kept = sel(2);
    expect(kept.shape).toEqual([1, 8]);
    expect(sel(3)).toEqual(kept);
  });

  test('fullLayers as a count sets the selection layer; a list may add later full layers', () => {
    const c = cacheOf(4);
    const o = (extra: object) => ({ sparse: { method: 'tidal' as const, budget: 8, ...extra }, returnSelected: true });
    expect(c.attend(1, q, o({ fullLayers: 1 })).selected!.shape).toEqual([1, 8]);
    expect(c.attend(2, q, o({ fullLayers: 1 })).selected!.shape).toEqual([1, 8]);
    expect(c.attend(3, q, o({ fullLayers: [0, 3], selectLayer: 1 })).selected!.shape).toEqual([1, 40]);
    expect(c.attend(0, q, o({ selectLayer: 0 })).selected!.shape).toEqual([1, 8]);
  });

  test.each([
    [2, {}, /opts\.sparse\.selectLayer: expected a layer index in \[0, 1\] \(the default 2 needs at least 3 layers: set selectLayer for this 2-layer cache\), received 2/, RangeError],
    [4, { selectLayer: 4 }, /opts\.sparse\.selectLayer: expected an integer in \[0, 3\], received 4/, RangeError],
    [4, { reselectLayers: [2] }, /opts\.sparse\.reselectLayers: expected layers after selectLayer = 2, received 2/, RangeError],
    [4, { reselectLayers: [3, 3] }, /opts\.sparse\.reselectLayers\[1\]: expected distinct layer indices, received 3/, RangeError],
    [4, { fullLayers: [0] }, /opts\.sparse\.fullLayers: expected every layer before selectLayer = 2 \(layer 1 would need positions not yet selected in the step\)/, RangeError],
    [4, { fullLayers: 3, selectLayer: 2 }, /opts\.sparse\.fullLayers: expected selectLayer = 2/, RangeError],
    [4, { fullLayers: [0, 1, 2] }, /opts\.sparse\.fullLayers: expected no selection layer/, RangeError],
    [4, { fullLayers: 'all' }, /opts\.sparse\.fullLayers: expected an array of layer indices, received "all"/, TypeError],
    [4, { budget: 0 }, /opts\.sparse\.budget: expected an integer >= 1, received 0/, RangeError],
    [4, { budget: undefined }, /opts\.sparse\.budget: expected an integer >= 1/, TypeError],
    [4, { reselect: [3] }, /opts\.sparse: unknown option "reselect"/, TypeError],
  ] as [number, object, RegExp, ErrorConstructor][])('%i layers, %j', (nLayers, extra, message, type) => {
    const c = cacheOf(nLayers);
    const before = snapshot(c);
    const sparse = { method: 'tidal', budget: 8, ...extra } as never;
    expect(() => c.attend(nLayers - 1, q, { sparse })).toThrow(type);
    expect(() => c.attend(nLayers - 1, q, { sparse })).toThrow(message);
    expect(snapshot(c)).toEqual(before);
  });
});

describe('block and tidal errors name the argument, the expectation and the value', () => {
  const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, dtype: 'f32' });
  cache.append(0, randomTensor3(mulberry32(1), 'f32', [1, 20, 4], 1), randomTensor3(mulberry32(2), 'f32', [1, 20, 4], 1));
  const q = randomTensor3(mulberry32(3), 'f32', [2, 1, 4], 1);
  test.each([
    [{ method: 'landmark', budget: 4 }, /opts\.sparse\.method: expected 'quest', 'tidal' or 'blocks', received "landmark"/, TypeError],
    [{ method: 'blocks', budget: 8, blockSize: 0 }, /opts\.sparse\.blockSize: expected an integer in \[1, 65536\], received 0/, RangeError],
    [{ method: 'blocks', budget: 8, mix: 1.5 }, /opts\.sparse\.mix: expected a number in \[0, 1\], received 1\.5/, RangeError],
    [{ method: 'blocks', budget: 8, mix: 'half' }, /opts\.sparse\.mix: expected a number, received "half"/, TypeError],
    [{ method: 'blocks', budget: 8, gqa: 'mean' }, /opts\.sparse\.gqa: expected 'max' or 'sum', received "mean"/, TypeError],
    [{ method: 'blocks', budget: 8, pageSize: 8 }, /unknown option "pageSize"/, TypeError],
  ] as [unknown, RegExp, ErrorConstructor][])('%j', (sparse, message, type) => {
    const before = cache.memoryBytes;
    expect(() => cache.attend(0, q, { sparse: sparse as never })).toThrow(type);
    expect(() => cache.attend(0, q, { sparse: sparse as never })).toThrow(message);
    expect(cache.memoryBytes).toBe(before);
    expect(cache.questSummaries(0).pageSize).toBe(0);
  });

  test('stateless forms', () => {
    const k = randomTensor3(mulberry32(4), 'f32', [1, 20, 4], 1);
    expect(() => blockSummaries(k, { blockSize: 0 })).toThrow(/options\.blockSize: expected an integer in \[1, 65536\], received 0/);
    const s = blockSummaries(k, { blockSize: 8 });
    expect(() => blockSelect(q, s, { budget: 0 })).toThrow(/options\.budget: expected an integer >= 1, received 0/);
    expect(() => blockSelect(q, { ...s, nKv: 40 }, { budget: 8 })).toThrow(/summaries\.kmin\.shape\[1\] \(blocks\): expected ceil\(nKv \/ blockSize\) = 5, received 3/);
    expect(() => blockSelect(q, { ...s, kmean: undefined } as never, { budget: 8 })).toThrow(/summaries\.kmean/);
    const nanMean = { ...s, kmean: { ...s.kmean, data: s.kmean.data.slice().fill(NaN) } };
    expect(() => blockSelect(q, nanMean, { budget: 8 })).toThrow(/summaries: expected finite kmin <= kmax and a finite kmean/);
    const w: Tensor<'f32'> = { dtype: 'f32', shape: [1, 20], data: new Float32Array(20) };
    expect(() => tidalSelect(w, { budget: 0 })).toThrow(/options\.budget: expected an integer >= 1, received 0/);
    expect(() => tidalSelect(w, { budget: 4, gqa: 'avg' as never })).toThrow(/options\.gqa: expected 'max' or 'sum', received "avg"/);
    expect(() => tidalSelect({ dtype: 'f32', shape: [3, 1, 20], data: new Float32Array(60) }, { budget: 4, nKvHeads: 2 })).toThrow(/weights\.shape\[0\] \(nHeads\): expected a multiple of options\.nKvHeads = 2, received 3/);
    const bad = new Float32Array(20);
    bad[7] = NaN;
    expect(() => tidalSelect({ dtype: 'f32', shape: [1, 20], data: bad }, { budget: 4 })).toThrow(/weights\[0\]\[7\]: expected a finite number or -Infinity, received NaN/);
    expect(() => tidalSelect(w, null as never)).toThrow(/options: expected an options object/);
  });
});
