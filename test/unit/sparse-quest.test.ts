// Quest sparse decoding (lib/sparse/quest.ts, native/sparse/quest.cpp,
// native/kv/kv_cache_sparse.cpp) against slow float64 references written
// here: page summaries (element-wise min / max), page bounds
// sum_d max(q_d * kmax_d, q_d * kmin_d), exact top-k page selection (lower
// page index on ties, forced sink / recent / current pages), and attention
// over exactly the selected tokens, statelessly and in the KvCache (float
// and int8 / int4 caches, summaries kept through append and compress).
//
// Tolerances:
// - summaries of float keys are exact (min and max of stored values are
//   stored values); int8 / int4 caches store u8 codes rounded outwards per
//   page: each decoded bound lies outside the true one by at most one step
//   (page range / 255) plus f32 rounding of base + code * step.
// - selection: with integer-valued q and keys every product and sum is
//   exact in f32 (magnitudes < 2^24), so the selected set must equal the
//   reference's exactly, ties included. With random floats a chosen page's
//   float64 bound may trail an unchosen one's by no more than the f32
//   accumulation error, f32SumBound(rows * (headDim + 1), sum of |terms|).
// - attention over the selected tokens: OUT_TOL * max|v| (helpers.ts).
import { describe, expect, test } from 'vitest';
import {
  attention, KvCache, questPageSummaries, questSelect, type FloatDType, type KvCacheDtype, type Tensor,
} from '../../lib/index.js';
import { decode3, referenceAttention } from '../reference/attention.js';
import { mulberry32, randomInt, type Rng } from '../reference/random.js';
import { maxAbsDiff, OUT_TOL, randomTensor3 } from './helpers.js';
import { withIsa } from './isa.js';
import { f32SumBound } from './tolerance.js';

// ---------------------------------------------------------------- references

/** Element-wise min / max per page of rows k[h] (float64). */
function refSummaries(K: Float64Array, H: number, n: number, d: number, P: number): { lo: Float64Array; hi: Float64Array; pages: number } {
  const pages = Math.ceil(n / P);
  const lo = new Float64Array(H * pages * d).fill(Infinity);
  const hi = new Float64Array(H * pages * d).fill(-Infinity);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < n; t++) {
      const p = Math.floor(t / P);
      for (let c = 0; c < d; c++) {
        const x = K[(h * n + t) * d + c]!;
        const at = (h * pages + p) * d + c;
        lo[at] = Math.min(lo[at]!, x);
        hi[at] = Math.max(hi[at]!, x);
      }
    }
  }
  return { lo, hi, pages };
}

/** Combined bound of every page of KV head h, and the sum of |terms| (for the rounding bound). */
function refScores(
  Q: Float64Array, nHeads: number, nQ: number, d: number, H: number, h: number,
  lo: ArrayLike<number>, hi: ArrayLike<number>, pages: number, gqa: 'max' | 'sum',
): { scores: number[]; mag: number[] } {
  const group = nHeads / H;
  const scores: number[] = [], mag: number[] = [];
  for (let p = 0; p < pages; p++) {
    let comb = gqa === 'max' ? -Infinity : 0, m = 0;
    for (let j = 0; j < group; j++) {
      for (let i = 0; i < nQ; i++) {
        const qo = ((h * group + j) * nQ + i) * d;
        let b = 0;
        for (let c = 0; c < d; c++) {
          const q = Q[qo + c]!, a = q * hi[(h * pages + p) * d + c]!, z = q * lo[(h * pages + p) * d + c]!;
          b += Math.max(a, z);
          m += Math.max(Math.abs(a), Math.abs(z));
        }
        comb = gqa === 'max' ? Math.max(comb, b) : comb + b;
      }
    }
    scores.push(comb);
    mag.push(m);
  }
  return { scores, mag };
}

interface SelOpts { budget: number; P: number; sinks: number; recent: number; nQ: number }

/** The forced pages and the page budget, as docs/sparse.md defines them. */
function forcedPages(n: number, o: SelOpts): { forced: Set<number>; budgetPages: number; pages: number } {
  const pages = Math.ceil(n / o.P);
  const budgetPages = Math.max(1, Math.floor(o.budget / o.P));
  const forced = new Set<number>();
  for (let p = 0; p < Math.min(pages, Math.ceil(Math.min(o.sinks, n) / o.P)); p++) forced.add(p);
  const r = Math.min(n, Math.max(o.recent, o.nQ, 1));
  for (let p = Math.floor((n - r) / o.P); p < pages; p++) forced.add(p);
  return { forced, budgetPages, pages };
}

/** Reference selection: forced pages plus the best others (higher bound, lower index on ties). */
function refSelectPages(scores: number[], n: number, o: SelOpts): number[] {
  const { forced, budgetPages, pages } = forcedPages(n, o);
  if (pages <= budgetPages) return Array.from({ length: pages }, (_, p) => p);
  const cands = [];
  for (let p = 0; p < pages; p++) if (!forced.has(p)) cands.push(p);
  cands.sort((a, b) => (scores[b]! - scores[a]!) || a - b);
  const take = Math.max(0, budgetPages - forced.size);
  return [...forced, ...cands.slice(0, take)].sort((a, b) => a - b);
}

function pagesToTokens(pages: number[], n: number, P: number): number[] {
  const out: number[] = [];
  for (const p of pages) for (let t = p * P; t < Math.min(n, (p + 1) * P); t++) out.push(t);
  return out;
}

/** Checks a selection made with float data: forced pages in, the count right, and no unchosen candidate beats a chosen one by more than rounding. */
function expectNearTopPages(got: number[], scores: number[], mag: number[], rows: number, d: number, n: number, o: SelOpts): void {
  const { forced, budgetPages, pages } = forcedPages(n, o);
  if (pages <= budgetPages) {
    expect(got).toEqual(Array.from({ length: pages }, (_, p) => p));
    return;
  }
  for (const p of forced) expect(got).toContain(p);
  expect(got.length).toBe(Math.max(budgetPages, forced.size));
  const chosen = new Set(got);
  const tol = (p: number) => f32SumBound(rows * (d + 1), mag[p]!);
  for (const a of got) {
    if (forced.has(a)) continue;
    for (let b = 0; b < pages; b++) {
      if (chosen.has(b) || forced.has(b)) continue;
      expect(scores[a]!).toBeGreaterThanOrEqual(scores[b]! - tol(a) - tol(b));
    }
  }
}

/** Integer-valued f32 tensor in [-amp, amp] (exact f32 dot products). */
function intTensor(rng: Rng, shape: [number, number, number], amp: number): Tensor<'f32'> {
  const n = shape[0] * shape[1] * shape[2];
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = randomInt(rng, -amp, amp);
  return { dtype: 'f32', shape, data };
}

const rowsOf = (t: Tensor<'i32'>, h: number): number[] => {
  const w = t.shape[1]!;
  return Array.from(t.data.subarray(h * w, (h + 1) * w)).filter((x) => x >= 0);
};

const pagesOfTokens = (tokens: number[], P: number): number[] => [...new Set(tokens.map((t) => Math.floor(t / P)))];

function vMax(v: Tensor<FloatDType>): number {
  let m = 0;
  for (const x of decode3(v)) m = Math.max(m, Math.abs(x));
  return m;
}

// ---------------------------------------------------------------- stateless

describe('questPageSummaries', () => {
  const cases: [FloatDType, number, number, number, number][] = [
    // dtype, nKvHeads, nKv, headDim, pageSize
    ['f32', 2, 17, 5, 16], ['f32', 1, 1, 3, 16], ['f32', 3, 33, 7, 1], ['f16', 2, 70, 9, 16], ['bf16', 2, 41, 6, 5], ['f32', 1, 64, 4, 16],
  ];
  test.each(cases)('%s [%i, %i, %i], pageSize %i: exact element-wise min / max per page', (dtype, H, n, d, P) => {
    const rng = mulberry32(H * 1000 + n * 10 + P);
    const k = randomTensor3(rng, dtype, [H, n, d], 2, { rowPad: 3 });
    const s = questPageSummaries(k, { pageSize: P });
    const ref = refSummaries(decode3(k), H, n, d, P);
    expect(s.pageSize).toBe(P);
    expect(s.nKv).toBe(n);
    expect(s.kmin.shape).toEqual([H, ref.pages, d]);
    expect(s.kmin.dtype).toBe(dtype);
    expect(Array.from(decode3(s.kmin))).toEqual(Array.from(ref.lo));
    expect(Array.from(decode3(s.kmax))).toEqual(Array.from(ref.hi));
  });

  test('the default page size is 16', () => {
    const k = randomTensor3(mulberry32(3), 'f32', [1, 40, 4], 1);
    expect(questPageSummaries(k).kmin.shape).toEqual([1, 3, 4]);
  });
});

describe('questSelect: exact selection on integer data', () => {
  // nHeads, nKvHeads, nQ, nKv, headDim, P, budget, sinks, recent
  const cases: [number, number, number, number, number, number, number, number, number][] = [
    [4, 2, 1, 100, 8, 16, 48, 0, 1],
    [4, 1, 1, 37, 5, 4, 12, 0, 1],
    [6, 2, 3, 90, 6, 8, 40, 5, 20],
    [2, 2, 1, 50, 3, 1, 7, 2, 3],
    [8, 2, 2, 300, 4, 16, 64, 16, 1],
    [2, 1, 1, 20, 4, 16, 64, 0, 1],  // budget >= length: every page
    [2, 1, 1, 33, 4, 16, 5, 0, 1],   // budget < P: one page, the current one
  ];
  for (const gqa of ['max', 'sum'] as const) {
    test.each(cases)(`gqa ${gqa}: [%i heads, %i kv, nQ %i, nKv %i, d %i], P %i, budget %i, sinks %i, recent %i`, (nHeads, H, nQ, n, d, P, budget, sinks, recent) => {
      const rng = mulberry32(nHeads * 7 + n + P * 31 + budget);
      // Small integer ranges make many ties: the lower page index must win.
      const k = intTensor(rng, [H, n, d], 3);
      const q = intTensor(rng, [nHeads, nQ, d], 2);
      const s = questPageSummaries(k, { pageSize: P });
      const idx = questSelect(q, s, { budget, sinks, recent, gqa });
      const Q = decode3(q);
      const ref = refSummaries(decode3(k), H, n, d, P);
      const o = { budget, P, sinks, recent, nQ };
      for (let h = 0; h < H; h++) {
        const { scores } = refScores(Q, nHeads, nQ, d, H, h, ref.lo, ref.hi, ref.pages, gqa);
        expect(rowsOf(idx, h)).toEqual(pagesToTokens(refSelectPages(scores, n, o), n, P));
      }
    });
  }

  test('ties: the lower page index wins', () => {
    // Every page has the same keys: every bound ties.
    const H = 1, n = 64, d = 2, P = 8;
    const k: Tensor<'f32'> = { dtype: 'f32', shape: [H, n, d], data: new Float32Array(n * d).fill(1) };
    const q: Tensor<'f32'> = { dtype: 'f32', shape: [1, 1, d], data: Float32Array.of(1, -1) };
    const idx = questSelect(q, questPageSummaries(k, { pageSize: P }), { budget: 3 * P });
    expect(pagesOfTokens(rowsOf(idx, 0), P)).toEqual([0, 1, 7]);
  });
});

describe('questSelect + attention({ indices }): attention over exactly the selected tokens', () => {
  test.each([
    ['f32', 4, 2, 1, 150, 16, 48], ['f16', 4, 1, 2, 77, 8, 24], ['bf16', 2, 2, 1, 33, 1, 9], ['f32', 2, 1, 1, 40, 16, 4096],
  ] as [FloatDType, number, number, number, number, number, number][])('%s, %i heads / %i kv, nQ %i, nKv %i, P %i, budget %i', (dtype, nHeads, H, nQ, n, P, budget) => {
    const rng = mulberry32(n * 3 + budget);
    const d = 12;
    const k = randomTensor3(rng, dtype, [H, n, d], 1);
    const v = randomTensor3(rng, dtype, [H, n, d], 1);
    const q = randomTensor3(rng, 'f32', [nHeads, nQ, d], 2);
    const s = questPageSummaries(k, { pageSize: P });
    const indices = questSelect(q, s, { budget, gqa: 'sum' });
    const got = attention(q, k, v, { indices, causal: true });
    const ref = referenceAttention(q, k, v, { indices, causal: true });
    expect(maxAbsDiff(got.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(v));
    // Selection near-exact against the float64 bounds.
    const Q = decode3(q);
    const r = refSummaries(decode3(k), H, n, d, P);
    for (let h = 0; h < H; h++) {
      const { scores, mag } = refScores(Q, nHeads, nQ, d, H, h, r.lo, r.hi, r.pages, 'sum');
      expectNearTopPages(pagesOfTokens(rowsOf(indices, h), P), scores, mag, (nHeads / H) * nQ, d, n, { budget, P, sinks: 0, recent: 1, nQ });
    }
    if (budget >= n) {
      const dense = referenceAttention(q, k, v, { causal: true });
      expect(maxAbsDiff(got.output.data, dense.output)).toBeLessThanOrEqual(OUT_TOL * vMax(v));
    }
  });
});

// ---------------------------------------------------------------- KvCache

const CACHE_DTYPES: KvCacheDtype[] = ['f32', 'f16', 'bf16', 'int8', 'int4'];
const quant = (t: KvCacheDtype) => t === 'int8' || t === 'int4';
/** int caches: scalar ISA, so export and attend dequantize identically (kv-cache-attend-options.test.ts). */
const onPath = <T>(dtype: KvCacheDtype, fn: () => T): T => (quant(dtype) ? withIsa('scalar', fn) : fn());

function newCache(dtype: KvCacheDtype, H: number, d: number, capacity = 4096): KvCache {
  return new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, capacity, dtype, ...(quant(dtype) ? { groupSize: 16, residual: 20 } : {}) });
}

/** Appends `sizes` chunks of random tokens to layer 0 (and layer 1), returning nothing. */
function appendChunks(cache: KvCache, rng: Rng, H: number, d: number, sizes: number[], after?: () => void): void {
  for (const m of sizes) {
    const k = randomTensor3(rng, 'f32', [H, m, d], 1.5);
    const v = randomTensor3(rng, 'f32', [H, m, d], 1);
    cache.append(0, k, v);
    cache.append(1, k, v);
    after?.();
  }
}

function summariesOf(cache: KvCache, layer: number): { lo: number[]; hi: number[]; pages: number[] } {
  const s = cache.questSummaries(layer);
  return { lo: Array.from(s.kmin.data), hi: Array.from(s.kmax.data), pages: Array.from(s.headPages) };
}

describe.each(CACHE_DTYPES)('KvCache.attend({ sparse: quest }) (%s cache)', (dtype) => {
  const H = 2, GROUP = 3, d = 10;

  test('output = float64 attention over the returned rows; the rows are the top pages by the cached summaries', () => onPath(dtype, () => {
    const rng = mulberry32(11);
    const cache = newCache(dtype, H, d);
    appendChunks(cache, rng, H, d, [150, 1, 1, 29]);
    for (const [nQ, P, budget, gqa, sinks, recent] of [[1, 16, 64, 'max', 0, 1], [3, 8, 40, 'sum', 4, 12], [1, 1, 9, 'max', 0, 1], [2, 16, 4096, 'sum', 0, 1]] as const) {
      const q = randomTensor3(rng, 'f32', [H * GROUP, nQ, d], 2);
      const r = cache.attend(0, q, { sparse: { method: 'quest', budget, pageSize: P, gqa, sinks, recent }, returnSelected: true, remember: false });
      const e = cache.export(0, { dtype: 'f32' });
      const n = e.lengths[0]!;
      const sel = r.selected!;
      const ref = referenceAttention(q, e.k, e.v, { indices: sel, causal: true });
      expect(maxAbsDiff(r.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
      // Selection against the float64 bounds of the cache's own summaries.
      const s = cache.questSummaries(0);
      expect(s.pageSize).toBe(P);
      const Q = decode3(q);
      for (let h = 0; h < H; h++) {
        const { scores, mag } = refScores(Q, H * GROUP, nQ, d, H, h, s.kmin.data, s.kmax.data, s.kmin.shape[1]!, gqa);
        const got = rowsOf(sel, h);
        expect(got).toEqual(pagesToTokens(pagesOfTokens(got, P), n, P));  // whole pages
        expectNearTopPages(pagesOfTokens(got, P), scores, mag, GROUP * nQ, d, n, { budget, P, sinks, recent, nQ });
      }
      if (budget >= n) {
        const dense = cache.attend(0, q, { remember: false });
        const full = referenceAttention(q, e.k, e.v, { causal: true });
        expect(maxAbsDiff(r.output.data, full.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
        expect(maxAbsDiff(r.output.data, dense.output.data)).toBeLessThanOrEqual(2 * OUT_TOL * vMax(e.v));
      }
    }
  }));

  test('summaries: exact (float) or outward-rounded (int) bounds of the stored keys, kept through appends equal to a rebuild from scratch', () => onPath(dtype, () => {
    const rng = mulberry32(21);
    const P = 16;
    const a = newCache(dtype, H, d);
    const q = randomTensor3(rng, 'f32', [H * GROUP, 1, d], 1);
    const sparse = { method: 'quest', budget: 32, pageSize: P } as const;
    const sizes = [5, 1, 1, 17, 3, 40, 1, 16, 2, 30];
    // a: summaries from the first attend on, folded in append by append.
    let first = true;
    appendChunks(a, mulberry32(5), H, d, sizes, () => {
      if (first) a.attend(0, q, { sparse, remember: false });
      first = false;
    });
    // b: the same tokens, summaries built once at the end.
    const b = newCache(dtype, H, d);
    appendChunks(b, mulberry32(5), H, d, sizes);
    b.attend(0, q, { sparse, remember: false });
    expect(summariesOf(a, 0)).toEqual(summariesOf(b, 0));
    // A different page size rebuilds from scratch; coming back rebuilds again.
    const before = summariesOf(a, 0);
    a.attend(0, q, { sparse: { ...sparse, pageSize: 8 }, remember: false });
    expect(a.questSummaries(0).pageSize).toBe(8);
    a.attend(0, q, { sparse, remember: false });
    expect(summariesOf(a, 0)).toEqual(before);
    expectBounds(a, 0, P, dtype);
    // Layer 1 never attended sparsely: no summaries.
    expect(a.questSummaries(1).pageSize).toBe(0);
    expect(a.questSummaries(1).bytes).toBe(0);
  }));

  test('compress rebuilds the summaries; clear drops them', () => onPath(dtype, () => {
    const rng = mulberry32(31);
    const P = 8;
    const cache = newCache(dtype, H, d);
    appendChunks(cache, rng, H, d, [120]);
    const q = randomTensor3(rng, 'f32', [H * GROUP, 1, d], 1);
    const sparse = { method: 'quest', budget: 24, pageSize: P } as const;
    cache.attend(0, q, { sparse });
    cache.compress('snapkv', { keep: 53 }, { layers: [0] });
    const after = summariesOf(cache, 0);
    expect(after.pages).toEqual([7, 7]);
    expectBounds(cache, 0, P, dtype);
    // Equal to a rebuild from scratch (switching the page size rebuilds).
    cache.attend(0, q, { sparse: { ...sparse, pageSize: 4 }, remember: false });
    cache.attend(0, q, { sparse, remember: false });
    expect(summariesOf(cache, 0)).toEqual(after);
    // Appends after compression keep them current.
    appendChunks(cache, rng, H, d, [3, 9]);
    expectBounds(cache, 0, P, dtype);
    cache.clear(0);
    expect(cache.questSummaries(0).headPages).toEqual(Int32Array.of(0, 0));
    appendChunks(cache, rng, H, d, [19]);
    expectBounds(cache, 0, P, dtype);
  }));

  test('a failed sparse attend leaves the cache unchanged', () => onPath(dtype, () => {
    const rng = mulberry32(41);
    const cache = newCache(dtype, H, d);
    appendChunks(cache, rng, H, d, [50]);
    const q = randomTensor3(rng, 'f32', [H * GROUP, 1, d], 1);
    cache.attend(0, q, { sparse: { method: 'quest', budget: 16 } });
    const e0 = cache.export(0, { dtype: 'f32' });
    const s0 = summariesOf(cache, 0);
    const bad = randomTensor3(rng, 'f32', [H * GROUP, 1, d], 1);
    (bad.data as Float32Array)[3] = NaN;
    expect(() => cache.attend(0, bad, { sparse: { method: 'quest', budget: 16 } })).toThrow(/q.*finite/);
    const e1 = cache.export(0, { dtype: 'f32' });
    expect(Array.from(e1.k.data)).toEqual(Array.from(e0.k.data));
    expect(Array.from(e1.lengths)).toEqual(Array.from(e0.lengths));
    expect(summariesOf(cache, 0)).toEqual(s0);
  }));
});

/** Every stored key lies inside its page's [kmin, kmax]; float caches: exactly the min / max; int caches: within a step. */
function expectBounds(cache: KvCache, layer: number, P: number, dtype: KvCacheDtype): void {
  const e = cache.export(layer, { dtype: 'f32' });
  const s = cache.questSummaries(layer);
  const [H, maxLen, d] = e.k.shape as [number, number, number];
  const K = decode3(e.k);
  const pages = s.kmin.shape[1]!;
  for (let h = 0; h < H; h++) {
    const n = e.lengths[h]!;
    expect(s.headPages[h]).toBe(Math.ceil(n / P));
    const ref = refSummaries(K.subarray(h * maxLen * d, (h * maxLen + n) * d), 1, n, d, P);
    for (let p = 0; p < ref.pages; p++) {
      let lo = Infinity, hi = -Infinity;
      for (let c = 0; c < d; c++) {
        lo = Math.min(lo, ref.lo[p * d + c]!);
        hi = Math.max(hi, ref.hi[p * d + c]!);
      }
      // The u8 step of the page, and the f32 rounding of base + code * step.
      const slack = quant(dtype) && (p + 1) * P <= n ? (hi - lo) / 255 * (1 + 1e-6) + 4 * 2 ** -24 * (Math.abs(lo) + Math.abs(hi)) : 0;
      for (let c = 0; c < d; c++) {
        const gotLo = s.kmin.data[(h * pages + p) * d + c]!, gotHi = s.kmax.data[(h * pages + p) * d + c]!;
        expect(gotLo).toBeLessThanOrEqual(ref.lo[p * d + c]!);
        expect(gotHi).toBeGreaterThanOrEqual(ref.hi[p * d + c]!);
        expect(ref.lo[p * d + c]! - gotLo).toBeLessThanOrEqual(slack);
        expect(gotHi - ref.hi[p * d + c]!).toBeLessThanOrEqual(slack);
      }
    }
  }
}

describe('KvCache sparse attend: async, GQA groups, memory', () => {
  test('attendAsync gives the sync result and selection', async () => {
    const rng = mulberry32(51);
    const cache = newCache('f16', 2, 8);
    appendChunks(cache, rng, 2, 8, [90]);
    const q = randomTensor3(rng, 'f32', [4, 1, 8], 1);
    const opts = { sparse: { method: 'quest', budget: 32, pageSize: 8 } as const, returnSelected: true, remember: false };
    const sync = cache.attend(0, q, opts);
    const pending = cache.attendAsync(0, q, opts);
    const got = await pending;
    expect(Array.from(got.output.data)).toEqual(Array.from(sync.output.data));
    expect(got.selected).toEqual(sync.selected);
  });

  test('heads of different lengths: each head its own pages, -1 padded rows, attention per head over its rows', () => {
    const rng = mulberry32(61);
    const d = 6, P = 4, budget = 16;
    const cache = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: d, dtype: 'f32' });
    appendChunks2(cache, rng, 2, d, 100);
    cache.compress({ name: 'adakv', scorer: 'knorm', alpha: 0 }, { keep: 40 });
    appendChunks2(cache, rng, 2, d, 3);
    const q = randomTensor3(rng, 'f32', [4, 1, d], 1);
    const r = cache.attend(0, q, { sparse: { method: 'quest', budget, pageSize: P }, returnSelected: true });
    const sel = r.selected!;
    const e = cache.export(0, { dtype: 'f32' });
    const maxLen = e.k.shape[1]!;
    let widest = 0;
    for (let h = 0; h < 2; h++) {
      const n = e.lengths[h]!;
      const rows = rowsOf(sel, h);
      const pages = Math.ceil(n / P);
      expect(rows.length).toBe(pages <= budget / P ? n : (budget / P - 1) * P + (n - (pages - 1) * P));
      widest = Math.max(widest, rows.length);
      // Attention of this head's query group over its own rows only.
      const kh = { dtype: 'f32' as const, shape: [1, n, d], data: (e.k.data as Float32Array).slice(h * maxLen * d, (h * maxLen + n) * d) };
      const vh = { dtype: 'f32' as const, shape: [1, n, d], data: (e.v.data as Float32Array).slice(h * maxLen * d, (h * maxLen + n) * d) };
      const qh = { dtype: 'f32' as const, shape: [2, 1, d], data: (q.data as Float32Array).slice(h * 2 * d, (h + 1) * 2 * d) };
      const ref = referenceAttention(qh, kh, vh, { indices: { dtype: 'i32', shape: [1, rows.length], data: Int32Array.from(rows) }, causal: true });
      expect(maxAbsDiff(r.output.data.subarray(h * 2 * d, (h + 1) * 2 * d), ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(vh));
    }
    expect(sel.shape).toEqual([2, widest]);
  });

  test('summary memory: 2 rows of the cache dtype per page (2 / P of the key memory)', () => {
    for (const [dtype, es] of [['f32', 4], ['f16', 2]] as const) {
      const H = 2, d = 32, n = 256, P = 16;
      const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype, capacity: n });
      appendChunks2(cache, mulberry32(7), H, d, n);
      cache.attend(0, randomTensor3(mulberry32(8), 'f32', [H, 1, d], 1), { sparse: { method: 'quest', budget: 64, pageSize: P } });
      const keyBytes = H * n * d * es;
      // Plus the open (partial) page kept exactly in f32: 2 rows per head.
      expect(cache.questSummaries(0).bytes).toBeLessThanOrEqual((2 / P) * keyBytes + H * 2 * d * 4);
    }
  });
});

function appendChunks2(cache: KvCache, rng: Rng, H: number, d: number, m: number): void {
  cache.append(0, randomTensor3(rng, 'f32', [H, m, d], 1), randomTensor3(rng, 'f32', [H, m, d], 1));
}

// ---------------------------------------------------------------- errors

describe('sparse errors name the argument, the expectation and the value', () => {
  const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, dtype: 'f32' });
  cache.append(0, randomTensor3(mulberry32(1), 'f32', [1, 20, 4], 1), randomTensor3(mulberry32(2), 'f32', [1, 20, 4], 1));
  const q = randomTensor3(mulberry32(3), 'f32', [2, 1, 4], 1);
  const bad: [unknown, RegExp, ErrorConstructor][] = [
    [{ method: 'landmark', budget: 4 }, /opts\.sparse\.method: expected 'quest', 'tidal' or 'blocks'/, TypeError],
    [{ budget: 4 }, /opts\.sparse\.method: expected 'quest', 'tidal' or 'blocks', received undefined/, TypeError],
    [{ method: 'quest' }, /opts\.sparse\.budget: expected an integer >= 1/, TypeError],
    [{ method: 'quest', budget: 0 }, /opts\.sparse\.budget: expected an integer >= 1, received 0/, RangeError],
    [{ method: 'quest', budget: 2.5 }, /opts\.sparse\.budget: expected an integer, received 2\.5/, RangeError],
    [{ method: 'quest', budget: 8, pageSize: 0 }, /opts\.sparse\.pageSize: expected an integer in \[1, 65536\], received 0/, RangeError],
    [{ method: 'quest', budget: 8, sinks: -1 }, /opts\.sparse\.sinks: expected an integer >= 0, received -1/, RangeError],
    [{ method: 'quest', budget: 8, recent: '2' }, /opts\.sparse\.recent: expected an integer/, TypeError],
    [{ method: 'quest', budget: 8, gqa: 'mean' }, /opts\.sparse\.gqa: expected 'max' or 'sum', received "mean"/, TypeError],
    [{ method: 'quest', budget: 8, pagesize: 8 }, /unknown option "pagesize" \(did you mean "pageSize"\?\)/, TypeError],
    ['quest', /opts\.sparse: expected an options object/, TypeError],
  ];
  test.each(bad)('%j', (sparse, message, type) => {
    const before = cache.memoryBytes;
    expect(() => cache.attend(0, q, { sparse: sparse as never })).toThrow(type);
    expect(() => cache.attend(0, q, { sparse: sparse as never })).toThrow(message);
    expect(cache.memoryBytes).toBe(before);
    expect(cache.questSummaries(0).pageSize).toBe(0);
  });

  test('returnSelected without sparse', () => {
    expect(() => cache.attend(0, q, { returnSelected: true })).toThrow(/opts\.returnSelected: expected true only with opts\.sparse/);
  });

  test('stateless forms', () => {
    const k = randomTensor3(mulberry32(4), 'f32', [1, 20, 4], 1);
    expect(() => questPageSummaries(k, { pageSize: 0 })).toThrow(/options\.pageSize: expected an integer in \[1, 65536\], received 0/);
    expect(() => questPageSummaries(k, { page: 4 } as never)).toThrow(/unknown option "page"/);
    expect(() => questPageSummaries({ dtype: 'f32', shape: [1, 0, 4], data: new Float32Array(0) })).toThrow(/k\.shape\[1\] \(nKv\): expected at least 1 token, received 0/);
    const s = questPageSummaries(k);
    expect(() => questSelect(q, s, { budget: 0 })).toThrow(/options\.budget: expected an integer >= 1, received 0/);
    expect(() => questSelect(q, s, { budget: 8, gqa: 'avg' as never })).toThrow(/options\.gqa: expected 'max' or 'sum'/);
    expect(() => questSelect(q, { ...s, nKv: 40 }, { budget: 8 })).toThrow(/summaries\.kmin\.shape\[1\] \(pages\): expected ceil\(nKv \/ pageSize\) = 3, received 2/);
    const q3 = randomTensor3(mulberry32(5), 'f32', [2, 1, 3], 1);
    expect(() => questSelect(q3, s, { budget: 8 })).toThrow(/summaries\.kmin\.shape\[2\] \(headDim\): expected q's headDim = 3, received 4/);
    const flipped = { ...s, kmin: s.kmax, kmax: s.kmin };
    expect(() => questSelect(q, flipped, { budget: 8 })).toThrow(/summaries: expected finite kmin <= kmax/);
    expect(() => questSelect(q, s, null as never)).toThrow(/options: expected an options object/);
  });
});
