// KvCache against float64 references: storage round trips, attention over
// each head's tokens, every compression path (uniform policies, PyramidKV,
// AdaKV, RazorAttention, merging), KIVI int8/int4 error bounds, decoding-time
// compression, bad input that leaves the cache untouched, and async order.
// Expected selections come from the float64 policy references
// (test/reference/kv.ts), never from the native scorer (scoreKv), with the
// rounding bounds of kv-helpers.ts / tolerance.ts.
import { describe, expect, test } from 'vitest';
import {
  KvCache, backendInfo, castTo, setIsa, toF32,
  type KvCacheDtype, type KvCompressionPolicy, type KvPolicy, type Tensor,
} from '../../lib/index.js';
import { decode3, referenceAttention } from '../reference/attention.js';
import { refAdaKvCounts, refMerge, refNearest, refPyramidKeep, refRazor, refTopRows, type RefHead } from '../reference/kv-cache.js';
import { referenceScores, type RefPolicy } from '../reference/kv.js';
import { mulberry32, randomF32 } from '../reference/random.js';
import { maxAbsDiff, randomTensor3 } from './helpers.js';
import { expectDecisive, expectTopChoice, f32, headTensor, heads, makeCache, rows3, scoreTolerance } from './kv-helpers.js';
import { quantBound, U16 } from './tolerance.js';

describe('KvCache storage', () => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    test(`append in chunks + export round trip (${dtype}, strided f16 input, explicit positions)`, () => {
      const rng = mulberry32(11);
      const H = 3, d = 5;
      const cache = new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, capacity: 64, dtype });
      const chunks = [1, 17, 4];
      const allK: number[][][] = [[], [], []], allV: number[][][] = [[], [], []];
      let pos = 0;
      for (const n of chunks) {
        const k = randomTensor3(rng, 'f16', [H, n, d], 2, { rowPad: 3 });
        const v = randomTensor3(rng, 'f32', [H, n, d], 2);
        cache.append(1, k, v, n === 4 ? { positions: Int32Array.from([100, 101, 102, 103]) } : undefined);
        rows3(k).forEach((h, i) => allK[i]!.push(...h));
        rows3(v).forEach((h, i) => allV[i]!.push(...h));
        pos += n;
      }
      expect(Array.from(cache.lengths().data)).toEqual([0, 0, 0, pos, pos, pos]);
      const e = cache.export(1);
      expect(e.k.dtype).toBe(dtype);
      const got = heads(cache, 1);
      const round = (x: number) => decode3(castTo(f32([1, 1, 1], Float32Array.of(x)), dtype))[0]!;
      for (let h = 0; h < H; h++) {
        expect(got[h]!.k).toEqual(allK[h]!.map((r) => r.map(round)));
        expect(got[h]!.v).toEqual(allV[h]!.map((r) => r.map(round)));
        expect(got[h]!.pos).toEqual([...Array.from({ length: 18 }, (_, i) => i), 100, 101, 102, 103]);
      }
      expect(cache.export(0).k.shape).toEqual([H, 0, d]);
      cache.clear();
      expect(Array.from(cache.lengths().data)).toEqual([0, 0, 0, 0, 0, 0]);
      expect(cache.memoryBytes).toBe(0);
    });
  }
});

describe('KvCache defaults', () => {
  test('capacity defaults to 2^31 - 1 (memory grows with the tokens, not the capacity); an explicit capacity still binds', () => {
    const rng = mulberry32(5);
    const cache = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 4 });
    expect(cache.capacity).toBe(2 ** 31 - 1);
    const k = randomTensor3(rng, 'f32', [2, 300, 4], 1);
    cache.append(0, k, k);
    expect(Array.from(cache.lengths().data)).toEqual([300, 300]);
    expect(cache.memoryBytes).toBeLessThan(64 * 1024);
    const small = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 4, capacity: 299 });
    expect(() => small.append(0, k, k)).toThrow(/capacity/);
    expect(Array.from(small.lengths().data)).toEqual([0, 0]);
  });
});

describe('KvCache.attend', () => {
  const cases = [
    { H: 1, group: 1, d: 3, n: 1, nQ: 1, dtype: 'f32' as const },
    { H: 2, group: 4, d: 5, n: 17, nQ: 3, dtype: 'f16' as const },
    { H: 3, group: 2, d: 16, n: 300, nQ: 1, dtype: 'bf16' as const },
    { H: 2, group: 1, d: 8, n: 40, nQ: 40, dtype: 'f32' as const },
  ];
  for (const c of cases) {
    test(`matches float64 attention over the stored rows: ${JSON.stringify(c)}`, () => {
      const rng = mulberry32(c.n * 7 + c.d);
      const { cache } = makeCache(rng, { H: c.H, d: c.d, n: c.n, dtype: c.dtype });
      const nH = c.H * c.group;
      const q = randomTensor3(rng, 'f32', [nH, c.nQ, c.d], 1, { rowPad: 1 });
      const r = cache.attend(0, q, { returnLse: true, softcap: c.n === 17 ? 3 : 0 });
      const e = cache.export(0);
      const ref = referenceAttention(q, e.k, e.v, { causal: true, returnLse: true, softcap: c.n === 17 ? 3 : 0 });
      expect(maxAbsDiff(r.output.data, ref.output)).toBeLessThan(2e-5);
      expect(maxAbsDiff(r.lse!.data, ref.lse)).toBeLessThan(3e-5);
    });
  }

  test('heads of different lengths attend over their own tokens only', () => {
    const rng = mulberry32(5);
    const { cache } = makeCache(rng, { H: 2, d: 4, n: 50 });
    cache.attend(0, f32([2, 1, 4], randomF32(rng, 8)));
    cache.compress({ name: 'adakv', scorer: 'knorm', alpha: 0 }, { keep: 20 });
    const lens = Array.from(cache.lengths().data);
    const q = f32([4, 1, 4], randomF32(rng, 16));
    const got = cache.attend(0, q).output.data;
    const hs = heads(cache, 0);
    for (let h = 0; h < 2; h++) {
      const qh = f32([2, 1, 4], q.data.slice(h * 8, h * 8 + 8));
      const ref = referenceAttention(qh, headTensor(hs[h]!.k, 4), headTensor(hs[h]!.v, 4), { causal: true });
      expect(maxAbsDiff(got.subarray(h * 8, h * 8 + 8), ref.output)).toBeLessThan(2e-5);
      expect(hs[h]!.k.length).toBe(lens[h]);
    }
  });
});

/**
 * Float64 reference scores of one policy on the exported layer with the
 * remembered queries, per head, and their rounding bounds.
 */
function refScores(cache: KvCache, policy: RefPolicy, queries: Tensor<'f32'> | undefined, layer = 0, qAmp = 1, drafts?: Tensor<'f32'>) {
  const e = cache.export(layer, { dtype: 'f32' });
  const [H, n, d] = e.k.shape as [number, number, number];
  const s = referenceScores(policy, { k: e.k, v: e.v, ...(queries ? { queries } : {}), ...(drafts ? { draftQueries: drafts } : {}) });
  const group = queries ? queries.shape[0]! / H : 1;
  const rows = (queries?.shape[1] ?? 0) + (drafts?.shape[1] ?? 0);
  const tol = scoreTolerance(policy, s, { headDim: d, nKv: n, rows, group, qAmp });
  const perHead = (x: Float64Array) => Array.from({ length: H }, (_, h) => Array.from(x.subarray(h * n, (h + 1) * n)));
  return { scores: perHead(s), tol: perHead(tol) };
}

const asRef = (p: KvPolicy): RefPolicy => (typeof p === 'string' ? { name: p } : p) as RefPolicy;

describe('KvCache.compress', () => {
  const POLICIES: { policy: KvPolicy; queries: boolean }[] = [
    { policy: 'streamingllm', queries: false },
    { policy: 'knorm', queries: false },
    { policy: { name: 'random', seed: 3 }, queries: false },
    { policy: 'tova', queries: true },
    { policy: { name: 'h2o', recent: 3 }, queries: true },
    { policy: 'snapkv', queries: true },
    { policy: { name: 'snapkv', window: 4, kernel: 3, pooling: 'max' }, queries: true },
  ];
  for (const { policy, queries } of POLICIES) {
    for (const dtype of ['f32', 'f16'] as const) {
      test(`${JSON.stringify(policy)} (${dtype}): keeps the top rows, bit for bit, with their positions`, () => {
        const rng = mulberry32(21);
        const H = 2, d = 6, n = 97, group = 2;
        const { cache } = makeCache(rng, { H, d, n, dtype });
        const q = randomTensor3(rng, 'f32', [H * group, 8, d], 1);
        if (queries) cache.attend(0, q);
        const before = heads(cache, 0);
        const { scores, tol } = refScores(cache, asRef(policy), queries ? q : undefined);
        const rep = cache.compress(policy, { keep: 30 });
        expect(rep.tokensBefore).toBe(H * n);
        expect(rep.tokensAfter).toBe(H * 30);
        expect(rep.bytesAfter).toBeLessThan(rep.bytesBefore);
        const after = heads(cache, 0);
        for (let h = 0; h < H; h++) {
          const kept = after[h]!.pos;
          expectTopChoice(kept, scores[h]!, tol[h]!, 30, `${JSON.stringify(policy)} ${dtype} head ${h}`);
          expect(after[h]!.k).toEqual(kept.map((r) => before[h]!.k[r]));
          expect(after[h]!.v).toEqual(kept.map((r) => before[h]!.v[r]));
        }
      });
    }
  }

  test('speckv with per-layer draft queries keeps the stateless top rows', () => {
    const rng = mulberry32(23);
    const H = 2, d = 6, n = 80;
    const { cache } = makeCache(rng, { nLayers: 2, H, d, n });
    const q = randomTensor3(rng, 'f32', [H * 2, 8, d], 1);
    const draft = randomTensor3(rng, 'f32', [H * 2, 5, d], 1, { rowPad: 2 });
    cache.attend(1, q);
    const { scores, tol } = refScores(cache, { name: 'speckv' }, q, 1, 1, draft);
    const before = heads(cache, 1);
    expect(() => cache.compress('speckv', { keep: 20 }, { layers: [1] })).toThrow(/draft queries/);
    cache.compress('speckv', { keep: 20 }, { layers: [1], draftQueries: [undefined, draft] });
    const after = heads(cache, 1);
    for (let h = 0; h < H; h++) {
      const kept = after[h]!.pos;
      expect(kept.length).toBe(20);
      expect(n).toBe(80);
      expectTopChoice(kept, scores[h]!, tol[h]!, 20, `speckv head ${h}`);
      expect(after[h]!.k).toEqual(kept.map((r) => before[h]!.k[r]));
    }
    expect(() => cache.compress('speckv', { keep: 5 }, { draftQueries: [draft] })).toThrow(/nLayers = 2/);
  });

  test('compressionRatio budget: nKeep = n - floor(n * r) per head', () => {
    const { cache } = makeCache(mulberry32(2), { H: 2, d: 4, n: 33 });
    cache.compress('knorm', { compressionRatio: 0.5 });
    expect(Array.from(cache.lengths().data)).toEqual([17, 17]);
  });

  test('h2o over accumulated attention mass from attend(accumulateMass)', () => {
    const rng = mulberry32(8);
    const H = 2, d = 4, n = 60;
    const { cache } = makeCache(rng, { H, d, n });
    const mass = new Float64Array(H * n);
    for (let step = 0; step < 3; step++) {
      const q = f32([H, 1, d], randomF32(rng, H * d, 2));
      const e = cache.export(0);
      const ref = referenceAttention(q, e.k, e.v, { causal: true, returnKeyMass: true });
      ref.keyMass.forEach((m, i) => { mass[i]! += m; });
      cache.attend(0, q, { accumulateMass: true, remember: false });
    }
    const before = heads(cache, 0);
    cache.compress({ name: 'h2o', recent: 5 }, { keep: 15 });
    const after = heads(cache, 0);
    for (let h = 0; h < H; h++) {
      const s = Array.from({ length: n }, (_, p) => (p >= n - 5 ? Infinity : mass[h * n + p]!));
      const kept = refTopRows(s, 15);
      expect(after[h]!.pos).toEqual(kept);
      expect(after[h]!.k).toEqual(kept.map((r) => before[h]!.k[r]));
    }
  });

  test('pyramidkv: per-layer budgets of the kvpress formula over SnapKV scores', () => {
    const rng = mulberry32(4);
    const nLayers = 3, H = 2, d = 4, n = 400, target = 100;
    const { cache } = makeCache(rng, { nLayers, H, d, n });
    const qs: Tensor<'f32'>[] = [];
    for (let l = 0; l < nLayers; l++) {
      qs.push(randomTensor3(rng, 'f32', [H, 8, d], 1));
      cache.attend(l, qs[l]!);
    }
    const policy: KvCompressionPolicy = { name: 'pyramidkv', window: 8, beta: 2 };
    const scores = Array.from({ length: nLayers }, (_, l) => refScores(cache, { name: 'snapkv', window: 8 }, qs[l]!, l));
    const before = Array.from({ length: nLayers }, (_, l) => heads(cache, l));
    cache.compress(policy, { keep: target });
    const lens = Array.from(cache.lengths().data);
    const budgets = [0, 1, 2].map((l) => refPyramidKeep(n, target, 8, 2, l, nLayers));
    expect(budgets[0]).toBeGreaterThan(budgets[2]!); // a real pyramid, not the fallback
    for (let l = 0; l < nLayers; l++) {
      const after = heads(cache, l);
      for (let h = 0; h < H; h++) {
        expect(lens[l * H + h]).toBe(budgets[l]);
        const kept = after[h]!.pos;
        expectTopChoice(kept, scores[l]!.scores[h]!, scores[l]!.tol[h]!, budgets[l]!, `pyramidkv layer ${l} head ${h}`);
        expect(after[h]!.k).toEqual(kept.map((r) => before[l]![h]!.k[r]));
      }
    }
    // Defaults (window 64, beta 20) fall back to the uniform budget at this size.
    const { cache: c2 } = makeCache(mulberry32(4), { nLayers, H, d, n });
    for (let l = 0; l < nLayers; l++) c2.attend(l, qs[l]!);
    c2.compress('pyramidkv' as KvCompressionPolicy, { keep: target });
    expect(Array.from(c2.lengths().data)).toEqual(new Array(nLayers * H).fill(target));
  });

  test('adakv: protected top alpha*budget per head, then the layer-wide top scores', () => {
    const rng = mulberry32(6);
    const H = 3, d = 5, n = 120, keep = 20;
    const { cache } = makeCache(rng, { H, d, n });
    const q = randomTensor3(rng, 'f32', [H * 2, 6, d], 1.5);
    cache.attend(0, q);
    const { scores, tol } = refScores(cache, { name: 'snapkv' }, q, 0, 1.5);
    const before = heads(cache, 0);
    cache.compress({ name: 'adakv', alpha: 0.2 }, { keep });
    const counts = refAdaKvCounts(scores, [keep, keep, keep], 0.2);
    // Exact counts need a layer-wide choice that rounding cannot flip.
    expectDecisive(scores.flat(), tol.flat(), H * keep, 'adakv layer-wide top');
    for (let h = 0; h < H; h++) expectDecisive(scores[h]!, tol[h]!, counts[h]!, `adakv head ${h}`);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(H * keep);
    const after = heads(cache, 0);
    for (let h = 0; h < H; h++) {
      expect(after[h]!.pos.length).toBe(counts[h]);
      const kept = refTopRows(scores[h]!, counts[h]!);
      expect(after[h]!.pos).toEqual(kept);
      expect(after[h]!.v).toEqual(kept.map((r) => before[h]!.v[r]));
    }
  });

  test('razor: retrieval heads keep all, others sinks + compensation token + recent', () => {
    const rng = mulberry32(9);
    const nLayers = 2, H = 2, d = 4, n = 50;
    const { cache } = makeCache(rng, { nLayers, H, d, n });
    const before = [0, 1].map((l) => heads(cache, l));
    cache.compress({ name: 'razor', retrievalHeads: [[true, false], [false, false]], sinks: 2 }, { keep: 10 });
    expect(Array.from(cache.lengths().data)).toEqual([50, 10, 10, 10]);
    for (let l = 0; l < nLayers; l++) {
      const after = heads(cache, l);
      for (let h = 0; h < H; h++) {
        if (l === 0 && h === 0) { expect(after[h]!.k).toEqual(before[l]![h]!.k); continue; }
        const { kept, evicted, slot } = refRazor(n, 10, 2, 0);
        const want = refMerge(before[l]![h]!, kept, evicted, evicted.map(() => kept.indexOf(slot)));
        expect(after[h]!.pos).toEqual(want.pos);
        expect(maxAbsDiff(after[h]!.k.flat(), want.k.flat())).toBeLessThan(1e-5);
        expect(maxAbsDiff(after[h]!.v.flat(), want.v.flat())).toBeLessThan(1e-5);
        // The compensation row is the mean of every evicted row and itself.
        const mean = before[l]![h]!.k.slice(2, 43).reduce((a, r) => a.map((x, c) => x + r[c]! / 41), new Array(d).fill(0));
        expect(maxAbsDiff(after[h]!.k[2]!, mean)).toBeLessThan(1e-5);
      }
    }
    // Attention weighs the compensation row by the 41 tokens it stands for: logit + log(41).
    const q = randomTensor3(mulberry32(1), 'f32', [4, 2, d], 1);
    const e = cache.export(1);
    const bias = new Float32Array(2 * 10);
    bias[2] = Math.log(41);
    bias[12] = Math.log(41);
    const ref = referenceAttention(q, e.k, e.v, { causal: true, mask: { dtype: 'f32', shape: [2, 10], data: bias } });
    expect(maxAbsDiff(cache.attend(1, q).output.data, ref.output)).toBeLessThan(2e-5);
  });

  test('merge: evicted rows fold into the most similar kept key (count-weighted), twice', () => {
    const rng = mulberry32(12);
    const H = 2, d = 6, n = 40;
    const { cache } = makeCache(rng, { H, d, n });
    let state = heads(cache, 0);
    for (const keep of [20, 7]) {
      const { scores, tol } = refScores(cache, { name: 'knorm' }, undefined);
      for (let h = 0; h < H; h++) expectDecisive(scores[h]!, tol[h]!, keep, `merge keep ${keep} head ${h}`);
      cache.compress({ name: 'knorm', merge: true }, { keep });
      const after = heads(cache, 0);
      state = state.map((hd, h) => {
        const kept = refTopRows(scores[h]!, keep);
        const evicted = hd.k.map((_, r) => r).filter((r) => !kept.includes(r));
        return refMerge(hd, kept, evicted, refNearest(hd.k, kept, evicted));
      });
      for (let h = 0; h < H; h++) {
        expect(after[h]!.pos).toEqual(state[h]!.pos);
        expect(maxAbsDiff(after[h]!.k.flat(), state[h]!.k.flat())).toBeLessThan(2e-5);
        expect(maxAbsDiff(after[h]!.v.flat(), state[h]!.v.flat())).toBeLessThan(2e-5);
      }
    }
  });
});

describe('KvCache EMS evict-then-merge', () => {
  test('ems: top global-local scores kept; evicted keys with cosine >= similarity merge, the rest drop', () => {
    const rng = mulberry32(17);
    const H = 2, d = 4, n = 60, keep = 20;
    const { cache } = makeCache(rng, { H, d, n });
    const q = randomTensor3(rng, 'f32', [H, 8, d], 1);
    cache.attend(0, q);
    const { scores, tol } = refScores(cache, { name: 'ems' }, q);
    for (let h = 0; h < H; h++) expectDecisive(scores[h]!, tol[h]!, keep, `ems head ${h}`);
    const before = heads(cache, 0);
    cache.compress({ name: 'ems', similarity: 0.6 }, { keep });
    const after = heads(cache, 0);
    let merged = 0, dropped = 0;
    for (let h = 0; h < H; h++) {
      const kept = refTopRows(scores[h]!, keep);
      const evicted = before[h]!.k.map((_, r) => r).filter((r) => !kept.includes(r));
      const norm = (r: number[]) => Math.sqrt(r.reduce((a, x) => a + x * x, 0));
      const targets = refNearest(before[h]!.k, kept, evicted).map((t, i) => {
        const a = before[h]!.k[kept[t]!]!, x = before[h]!.k[evicted[i]!]!;
        const cos = a.reduce((s2, v, c) => s2 + v * x[c]!, 0) / (norm(a) * norm(x));
        if (cos >= 0.6) merged++; else dropped++;
        return cos >= 0.6 ? t : -1;
      });
      const want = refMerge(before[h]!, kept, evicted, targets);
      expect(after[h]!.pos).toEqual(want.pos);
      expect(maxAbsDiff(after[h]!.k.flat(), want.k.flat())).toBeLessThan(2e-5);
      expect(maxAbsDiff(after[h]!.v.flat(), want.v.flat())).toBeLessThan(2e-5);
    }
    expect(merged).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThan(0);
  });
});

describe('KvCache int8 / int4 (KIVI)', () => {
  for (const dtype of ['int8', 'int4'] as const) {
    test(`${dtype}: quantization error within half a step per group, f16 tail exact, attend over the stored values`, () => {
      const rng = mulberry32(31);
      const H = 2, d = 19, n = 203, G = 16, R = 40;
      const { cache, inputs } = makeCache(rng, { H, d, n, dtype, residual: R, groupSize: G });
      const levels = dtype === 'int8' ? 255 : 15;
      const got = heads(cache, 0);
      const K = rows3(inputs[0]!.k), V = rows3(inputs[0]!.v);
      const nb = Math.floor((n - R) / G); // full groups quantized; the rest stays f16
      const f16 = (x: number) => decode3(castTo(f32([1, 1, 1], Float32Array.of(x)), 'f16'))[0]!;
      for (let h = 0; h < H; h++) {
        for (let r = 0; r < n; r++) {
          for (let c = 0; c < d; c++) {
            if (r >= nb * G) {
              expect(got[h]!.k[r]![c]).toBe(f16(K[h]![r]![c]!));
              continue;
            }
            // Half a step of the group, plus the f16 rounding of its scale and min (tolerance.ts).
            const g0 = Math.floor(r / G) * G;
            const col = K[h]!.slice(g0, g0 + G).map((row) => row[c]!);
            const kx = K[h]![r]![c]!;
            expect(Math.abs(got[h]!.k[r]![c]! - kx)).toBeLessThanOrEqual(quantBound(Math.min(...col), Math.max(...col), levels, kx));
            const c0 = Math.floor(c / G) * G;
            const seg = V[h]![r]!.slice(c0, c0 + G);
            const vx = V[h]![r]![c]!;
            expect(Math.abs(got[h]!.v[r]![c]! - vx)).toBeLessThanOrEqual(quantBound(Math.min(...seg), Math.max(...seg), levels, vx));
          }
        }
      }
      const q = randomTensor3(rng, 'f32', [H * 3, 2, d], 1);
      const e = cache.export(0, { dtype: 'f32' });
      const ref = referenceAttention(q, e.k, e.v, { causal: true });
      expect(maxAbsDiff(cache.attend(0, q).output.data, ref.output)).toBeLessThan(2e-5);
      // Compression re-quantizes the kept rows: still within one step of the originals.
      cache.compress('knorm', { keep: 150 });
      const after = heads(cache, 0);
      const scores = referenceScores({ name: 'knorm' }, { k: e.k, v: e.v });
      const ks = scores.subarray(0, n);
      const ktol = scoreTolerance({ name: 'knorm' }, ks, { headDim: d, nKv: n, rows: 0, group: 1 });
      expectDecisive(ks, ktol, 150, `${dtype} knorm`);
      const kept = refTopRows(ks, 150);
      // Values lie in [-1, 1], so a group's step is <= 2 / levels: half the old
      // step, half the new one, and the f16 rounding of both groups' scale and min.
      const bound = 2 / levels + 4 * U16;
      expect(after[0]!.pos).toEqual(kept);
      expect(maxAbsDiff(after[0]!.v.flat(), kept.map((r) => V[0]![r]!).flat())).toBeLessThanOrEqual(bound);
    });
  }

  for (const isa of ['scalar', 'avx2'] as const) {
    test(`quantized decode kernel (${isa}): odd group and headDim, causal nQ 3, softcap, lse`, () => {
      const prev = backendInfo().isa as 'scalar' | 'avx2' | 'avx512';
      setIsa(isa); // throws (and fails the test) if this CPU lacks it
      try {
        for (const dtype of ['int8', 'int4'] as const) {
          const rng = mulberry32(isa === 'scalar' ? 5 : 6);
          const { cache } = makeCache(rng, { H: 2, d: 13, n: 700, dtype, residual: 20, groupSize: 12 });
          const q = randomTensor3(rng, 'f32', [8, 3, 13], 1.5);
          const e = cache.export(0, { dtype: 'f32' });
          const ref = referenceAttention(q, e.k, e.v, { causal: true, softcap: 4, returnLse: true });
          const got = cache.attend(0, q, { softcap: 4, returnLse: true });
          expect(maxAbsDiff(got.output.data, ref.output)).toBeLessThan(2e-5);
          expect(maxAbsDiff(got.lse!.data, ref.lse)).toBeLessThan(3e-5);
        }
      } finally {
        setIsa(prev);
      }
    });
  }

  for (const isa of ['scalar', 'avx2', 'avx512'] as const) {
    // avx512: the integer kernel's keys through VNNI where the CPU has it (the same integer results as avx2).
    const skip = isa === 'avx512' && backendInfo().isa !== 'avx512';
    test.skipIf(skip)(`int4 decode (${isa}; avx2/avx512: the integer kernel, group 32, headDim 64/96/128): within 3% of exact attention over the stored values`, () => {
      const prev = backendInfo().isa as 'scalar' | 'avx2' | 'avx512';
      setIsa(isa);
      try {
        for (const d of [64, 96, 128]) {
          const rng = mulberry32(d);
          // 1000 tokens: 31 quantized blocks, the rest in the f16 tail.
          const { cache } = makeCache(rng, { H: 2, d, n: 1000, dtype: 'int4' });
          for (const [nQ, softcap] of [[1, 0], [3, 0], [3, 5]] as const) {
            const q = randomTensor3(rng, 'f32', [8, nQ, d], 2);
            const e = cache.export(0, { dtype: 'f32' });
            const opts = softcap > 0 ? { softcap } : {};
            const ref = referenceAttention(q, e.k, e.v, { causal: true, returnLse: true, ...opts });
            const got = cache.attend(0, q, { returnLse: true, ...opts });
            let num = 0, den = 0;
            got.output.data.forEach((x, i) => { num += (x - ref.output[i]!) ** 2; den += ref.output[i]! ** 2; });
            const err = Math.sqrt(num / den);
            // The scalar kernel dequantizes exactly; the integer kernel quantizes q and the token weights.
            expect(err).toBeLessThan(isa === 'scalar' ? 1e-5 : 0.03);
            expect(maxAbsDiff(got.lse!.data, ref.lse)).toBeLessThan(isa === 'scalar' ? 1e-4 : 0.03);
          }
        }
      } finally {
        setIsa(prev);
      }
    });
  }

  // avx512 on a CPU without VNNI runs the AVX2 int4 kernel itself; with VNNI
  // it runs the 512-bit port (kv_quant_attend_avx512.cpp), whose token weights
  // have their own step (pmax / 255: int32 sums) and whose f32 sums run in
  // another order, so the two agree to their rounding only. Each is checked
  // against its rounding model in kv-cache-int4-kernel.test.ts; here, against
  // each other: both are within 3% (relative L2) of exact attention
  // (kv-quant-attend-kernels.test.ts), so within 6% of each other.
  test.skipIf(backendInfo().isa !== 'avx512')('int4 integer kernel: avx512 (the AVX2 kernel without VNNI, its 512-bit port with) agrees with avx2', () => {
    const rng = mulberry32(77);
    const { cache } = makeCache(rng, { H: 2, d: 128, n: 700, dtype: 'int4' });
    const q = randomTensor3(rng, 'f32', [8, 2, 128], 2);
    const prev = backendInfo().isa as 'scalar' | 'avx2' | 'avx512';
    try {
      setIsa('avx2');
      const a = cache.attend(0, q, { returnLse: true });
      setIsa('avx512');
      const b = cache.attend(0, q, { returnLse: true });
      if (!backendInfo().features.avx512vnni) {
        expect(Array.from(b.output.data)).toEqual(Array.from(a.output.data));
        expect(Array.from(b.lse!.data)).toEqual(Array.from(a.lse!.data));
        return;
      }
      let num = 0, den = 0;
      b.output.data.forEach((x, i) => { num += (x - a.output.data[i]!) ** 2; den += a.output.data[i]! ** 2; });
      expect(Math.sqrt(num / den)).toBeLessThan(0.06);
      b.lse!.data.forEach((x, i) => expect(Math.abs(x - a.lse!.data[i]!), `lse[${i}]`).toBeLessThan(0.06));
    } finally {
      setIsa(prev);
    }
  });

  test('int4 / int8 blocks: the stored codes (export) match a float64 re-quantization of the inputs at every channel position', () => {
    // Layout check across the packing (token octets for keys, token pairs for
    // values, 32-channel blocks with a narrower last one): headDim 72 and 13,
    // group 32 and 12 (the portable quantizer); headDim 128, 64 and 96 with
    // groups 32, 16 and 8 (the SIMD quantizer's shapes).
    for (const [dtype, levels] of [['int4', 15], ['int8', 255]] as const) for (const [d, G] of [[72, 32], [13, 12], [128, 32], [64, 16], [96, 8]] as const) {
      const rng = mulberry32(d + G);
      const n = 4 * G + 5;
      const { cache, inputs } = makeCache(rng, { H: 1, d, n, dtype, residual: 5, groupSize: G });
      const got = heads(cache, 0)[0]!;
      const K = rows3(inputs[0]!.k)[0]!, V = rows3(inputs[0]!.v)[0]!;
      for (let r = 0; r < 4 * G; r++) {
        for (let c = 0; c < d; c++) {
          const g0 = Math.floor(r / G) * G;
          const col = K.slice(g0, g0 + G).map((row) => row[c]!);
          expect(Math.abs(got.k[r]![c]! - K[r]![c]!)).toBeLessThanOrEqual(quantBound(Math.min(...col), Math.max(...col), levels, K[r]![c]!));
          const c0 = Math.floor(c / G) * G;
          const seg = V[r]!.slice(c0, c0 + G);
          expect(Math.abs(got.v[r]![c]! - V[r]![c]!)).toBeLessThanOrEqual(quantBound(Math.min(...seg), Math.max(...seg), levels, V[r]![c]!));
        }
      }
    }
  });

  test('memory: int4 < int8 < f16 for the same tokens', () => {
    const mem = (dtype: KvCacheDtype) => makeCache(mulberry32(1), { H: 2, d: 128, n: 2048, dtype }).cache.memoryBytes;
    const [f16, i8, i4] = [mem('f16'), mem('int8'), mem('int4')];
    expect(i8).toBeLessThan(f16 * 0.7);
    expect(i4).toBeLessThan(i8 * 0.7);
  });
});

describe('decoding-time compression (autoCompress)', () => {
  test('streamingllm keeps sinks + the newest tokens, never above budget + interval', () => {
    const rng = mulberry32(3);
    const H = 2, d = 4, keep = 16, interval = 4;
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 64, dtype: 'f32', autoCompress: { policy: { name: 'streamingllm', sinks: 4 }, budget: { keep }, interval } });
    let sim: number[] = [];
    for (let t = 0; t < 101; t++) {
      cache.append(0, f32([H, 1, d], randomF32(rng, H * d)), f32([H, 1, d], randomF32(rng, H * d)));
      sim.push(t);
      if (sim.length >= keep + interval) sim = [...sim.slice(0, 4), ...sim.slice(sim.length - (keep - 4))];
      expect(Math.max(...cache.lengths().data)).toBeLessThan(keep + interval);
    }
    expect(heads(cache, 0)[1]!.pos).toEqual(sim);
  });

  test('a query-based policy waits for attend() before compressing; then keeps the budget', () => {
    const rng = mulberry32(2);
    const cache = new KvCache({ nLayers: 1, nKvHeads: 2, headDim: 8, capacity: 200, dtype: 'f32', autoCompress: { policy: 'snapkv', budget: { keep: 40 }, interval: 8 } });
    cache.append(0, f32([2, 100, 8], randomF32(rng, 1600)), f32([2, 100, 8], randomF32(rng, 1600)));
    expect(Array.from(cache.lengths().data)).toEqual([100, 100]);
    cache.attend(0, f32([4, 4, 8], randomF32(rng, 128)));
    cache.append(0, f32([2, 1, 8], randomF32(rng, 16)), f32([2, 1, 8], randomF32(rng, 16)));
    expect(Array.from(cache.lengths().data)).toEqual([40, 40]);
    // SnapKV keeps its window (the newest min(32, 4 remembered queries) rows).
    expect(heads(cache, 0)[0]!.pos.slice(-4)).toEqual([97, 98, 99, 100]);
  });

  test('a prefill larger than the capacity compresses first, when the budget leaves room', () => {
    const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 2, capacity: 40, dtype: 'f32', autoCompress: { policy: 'streamingllm', budget: { keep: 8 }, interval: 8 } });
    const rng = mulberry32(1);
    cache.append(0, f32([1, 30, 2], randomF32(rng, 60)), f32([1, 30, 2], randomF32(rng, 60)));
    cache.append(0, f32([1, 30, 2], randomF32(rng, 60)), f32([1, 30, 2], randomF32(rng, 60)));
    expect(cache.lengths().data[0]).toBeLessThanOrEqual(16);
  });
});

describe('bad input leaves the cache untouched', () => {
  const snapshot = (c: KvCache) => JSON.stringify([Array.from(c.lengths().data), heads(c, 0), heads(c, 1)]);
  const make = () => {
    const rng = mulberry32(77);
    const { cache } = makeCache(rng, { nLayers: 2, H: 2, d: 4, n: 40, capacity: 50 });
    return cache;
  };
  const good = (n: number) => f32([2, n, 4], new Float32Array(2 * n * 4));
  const cases: [string, (c: KvCache) => unknown, RegExp, ErrorConstructor][] = [
    ['layer out of range', (c) => c.append(2, good(1), good(1)), /layer: expected an integer/, RangeError],
    ['wrong nKvHeads', (c) => c.append(0, f32([3, 1, 4], new Float32Array(12)), f32([3, 1, 4], new Float32Array(12))), /k\.shape\[0\] \(nKvHeads\)/, RangeError],
    ['k/v shape mismatch', (c) => c.append(0, good(2), good(1)), /v\.shape/, RangeError],
    ['wrong dtype', (c) => c.append(0, { dtype: 'i32', shape: [2, 1, 4], data: new Int32Array(8) } as never, good(1)), /k\.dtype/, TypeError],
    ['capacity overflow', (c) => c.append(0, good(11), good(11)), /at most 10 tokens/, RangeError],
    ['unknown policy', (c) => c.compress('snapvk' as never, { keep: 5 }), /did you mean "snapkv"/, TypeError],
    ['misspelled option', (c) => c.compress({ name: 'snapkv', windw: 4 } as never, { keep: 5 }), /did you mean "window"/, TypeError],
    ['bad budget', (c) => c.compress('knorm', { keep: -1 }), /budget\.keep/, RangeError],
    ['ratio 1', (c) => c.compress('knorm', { compressionRatio: 1 }), /compressionRatio/, RangeError],
    ['queries needed', (c) => c.compress('snapkv', { keep: 5 }), /needs queries.*attend/, RangeError],
    ['razor flags', (c) => c.compress({ name: 'razor', retrievalHeads: [[true]] }, { keep: 5 }), /retrievalHeads/, TypeError],
    ['adakv alpha', (c) => c.compress({ name: 'adakv', alpha: 2 }, { keep: 5 }), /alpha/, RangeError],
    ['attend headDim', (c) => c.attend(0, f32([2, 1, 3], new Float32Array(6))), /headDim/, RangeError],
    ['attend nHeads', (c) => c.attend(0, f32([3, 1, 4], new Float32Array(12))), /nHeads/, RangeError],
    ['layers dup', (c) => c.compress('knorm', { keep: 5 }, { layers: [0, 0] }), /distinct/, RangeError],
    ['budget below the sinks', (c) => c.compress('streamingllm', { keep: 3 }), /budget: expected at least 4 tokens per head .*sink/, RangeError],
    ['budget below razor sinks + 1', (c) => c.compress({ name: 'razor', sinks: 4 }, { keep: 4 }), /at least 5 tokens/, RangeError],
  ];
  for (const [label, call, message, kind] of cases) {
    test(label, () => {
      const c = make();
      const before = snapshot(c);
      expect(() => call(c)).toThrow(kind);
      expect(() => call(c)).toThrow(message);
      expect(snapshot(c)).toBe(before);
    });
  }

  test('budget below the observation window: clear error, cache untouched', () => {
    const c = make();
    c.attend(0, f32([2, 8, 4], new Float32Array(64)));
    c.attend(1, f32([2, 8, 4], new Float32Array(64)));
    const before = snapshot(c);
    expect(() => c.compress('snapkv', { keep: 5 })).toThrow(/budget: expected at least 8 tokens per head \(policy "snapkv" always keeps its observation window/);
    expect(snapshot(c)).toBe(before);
  });

  test('NaN keys are refused by append, naming the element; cache untouched', () => {
    const c = make();
    const before = snapshot(c);
    expect(() => c.append(0, f32([2, 1, 4], Float32Array.of(NaN, 0, 0, 0, 1, 1, 1, 1)), f32([2, 1, 4], new Float32Array(8)))).toThrow(/^k: expected finite values, received NaN at \[0, 0, 0\]/);
    expect(snapshot(c)).toBe(before);
  });

  test('constructor options are checked', () => {
    expect(() => new KvCache({ nLayers: 0, nKvHeads: 1, headDim: 4, capacity: 8 })).toThrow(/nLayers/);
    expect(() => new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 8, dtype: 'int3' as never })).toThrow(/dtype/);
    expect(() => new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 8, capcity: 3 } as never)).toThrow(/did you mean "capacity"/);
    expect(() => new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 8, autoCompress: { policy: 'knorm', budget: { keep: 8 } } })).toThrow(/autoCompress/);
  });

  test('native handle re-checks what the TS layer checks (hostile params)', async () => {
    const { native } = await import('../../lib/native.js');
    const h = new (native().KvCacheHandle)({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 8, dtype: 0, groupSize: 32, residual: 128, window: 32 });
    const base = { layer: 0, n: 4, k: new Float32Array(16), kDtype: 0, kStrides: [16, 4] as [number, number], v: new Float32Array(16), vDtype: 0, vStrides: [16, 4] as [number, number] };
    expect(() => h.append({ ...base, n: 5 })).toThrow(/elements/);
    expect(() => h.append({ ...base, kStrides: [0, 1e15] })).toThrow();
    expect(() => h.append({ ...base, layer: 1 })).toThrow(/layer/);
    expect(() => h.append({ ...base, n: 9, k: new Float32Array(36), v: new Float32Array(36) })).toThrow(/capacity/);
    h.append(base);
    expect(() => h.attend({ layer: 0, nHeads: 1, nQ: 2, q: new Float32Array(4), qStrides: [8, 4], scale: 0, softcap: 0, causal: true, accumulateMass: false, remember: true, out: new Float32Array(8) })).toThrow(/q: expected/);
    expect(() => h.exportLayer({ layer: 0, dtype: 0, k: new Float32Array(3), v: new Float32Array(3), positions: new Int32Array(4) })).toThrow(/elements/);
    expect(Array.from(h.lengths())).toEqual([4]);
  });
});

describe('async', () => {
  test('queued async calls run in order and match the sync sequence; sync calls while pending throw ERR_CACHE_BUSY', async () => {
    const rng = mulberry32(44);
    const H = 2, d = 8;
    const chunks = [30, 1, 1].map((n) => ({ k: randomTensor3(rng, 'f32', [H, n, d], 1), v: randomTensor3(rng, 'f32', [H, n, d], 1) }));
    const q = randomTensor3(rng, 'f32', [H * 2, 1, d], 1);
    const opts = { nLayers: 1, nKvHeads: H, headDim: d, capacity: 64, dtype: 'f16' as const };
    const a = new KvCache(opts), b = new KvCache(opts);
    const pending = [
      a.appendAsync(0, chunks[0]!.k, chunks[0]!.v),
      a.attendAsync(0, q),
      a.compressAsync('snapkv', { keep: 12 }),
      a.appendAsync(0, chunks[1]!.k, chunks[1]!.v),
      a.attendAsync(0, q),
    ];
    expect(() => a.lengths()).toThrow(expect.objectContaining({ code: 'ERR_CACHE_BUSY' }));
    const results = await Promise.all(pending);
    b.append(0, chunks[0]!.k, chunks[0]!.v);
    const o1 = b.attend(0, q);
    b.compress('snapkv', { keep: 12 });
    b.append(0, chunks[1]!.k, chunks[1]!.v);
    const o2 = b.attend(0, q);
    expect(JSON.stringify(await a.exportAsync(0))).toBe(JSON.stringify(b.export(0)));
    expect((results[1] as { output: Tensor<'f32'> }).output.data).toEqual(o1.output.data);
    expect((results[4] as { output: Tensor<'f32'> }).output.data).toEqual(o2.output.data);
    expect(Array.from(a.lengths().data)).toEqual([13, 13]);
    expect(JSON.stringify(heads(a, 0))).toBe(JSON.stringify(heads(b, 0)));
  });

  test('a failing async call rejects and the queue goes on', async () => {
    const { cache } = makeCache(mulberry32(1), { H: 1, d: 4, n: 10 });
    await expect(cache.compressAsync('snapkv', { keep: 3 })).rejects.toThrow(/needs queries/);
    const r = await cache.compressAsync('knorm', { keep: 3 });
    expect(r.tokensAfter).toBe(3);
    expect(toF32(cache.export(0).k).shape).toEqual([1, 3, 4]);
  });
});
