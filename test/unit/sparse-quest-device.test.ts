// The device Quest's shared code (native/sparse/quest_hd.h, TP_HD: compiled
// into the CUDA kernels and, here, into the CPU addon) run on the host through
// the test-only binding `questDeviceModel`, against:
// - the CPU Quest: summaries equal to questPageSummaries', page scores equal
//   bit for bit to the CPU scoring (bound_weights + score_rows, whatever SIMD
//   path this machine takes: the canonical 16-lane FMA order), and the radix
//   top-k of the device equal to the CPU select_pages and to questSelect;
// - a float64 reference: min / max exactly, the bound within f32 rounding,
//   and on integer data (exact bounds, many ties) the selection of a plain
//   JS implementation of the rule (higher bound first, lower page on ties,
//   forced sinks / recent / current pages).
// int8 / int4 caches: the device's U8 summaries (quest_u8_hd.h, through
// `questU8Model`) of the cache's dequantized keys equal the CPU cache's
// questSummaries after appends that requantize tail rows.
// Awkward sizes: headDim 8, 24, 40, 100 (not a multiple of 8: the CPU's
// scalar path), 64, 128; lengths 1, 17, a page multiple and not; nQ 1 and 3;
// GQA groups 1 and 4; 'sum' and 'max'; overflowing bounds (inf, NaN).
import { describe, expect, test } from 'vitest';
import { KvCache, questPageSummaries, questSelect, type FloatDType, type Tensor } from '../../lib/index.js';
import { DTYPE_CODE, native } from '../../lib/native.js';
import { bf16BitsToF32, f16BitsToF32 } from '../../lib/tensor.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';

interface Case {
  dtype: FloatDType;
  H: number;
  group: number;
  nQ: number;
  n: number;
  d: number;
  P: number;
  budget: number;
  sinks: number;
  recent: number;
  gqa: 'sum' | 'max';
}

interface ModelOut {
  nSel: number;
  kmin: Float32Array | Uint16Array;
  kmax: Float32Array | Uint16Array;
  scores: Float32Array;
  cpuScores: Float32Array;
  indices: Int32Array;
  cpuIndices: Int32Array;
}

function runModel(c: Case, k: Tensor<FloatDType>, q: Tensor<'f32'>): ModelOut {
  const pages = Math.ceil(c.n / c.P);
  const alloc = (m: number) => (c.dtype === 'f32' ? new Float32Array(m) : new Uint16Array(m));
  const kmin = alloc(c.H * pages * c.d), kmax = alloc(c.H * pages * c.d);
  const scores = new Float32Array(c.H * pages), cpuScores = new Float32Array(c.H * pages);
  const count = selectedCount(c);
  const indices = new Int32Array(c.H * count), cpuIndices = new Int32Array(c.H * count);
  const header = Float64Array.of(c.H * c.group, c.H, c.nQ, c.d, c.n, DTYPE_CODE[c.dtype], c.budget, c.P, c.sinks, c.recent, c.gqa === 'sum' ? 1 : 0);
  const nSel = native().questDeviceModel(header, k.data as Float32Array | Uint16Array, q.data, kmin, kmax, scores, cpuScores, indices, cpuIndices);
  return { nSel, kmin, kmax, scores, cpuScores, indices, cpuIndices };
}

/** The selection plan of quest.cpp (forced ranges, page budget), in JS. */
function plan(c: Case): { pages: number; all: boolean; sinkEnd: number; recentBegin: number; k: number } {
  const pages = Math.ceil(c.n / c.P), budgetPages = Math.max(1, Math.floor(c.budget / c.P));
  if (pages <= budgetPages) return { pages, all: true, sinkEnd: pages, recentBegin: pages, k: 0 };
  const sinkEnd = Math.min(pages, Math.ceil(Math.min(c.sinks, c.n) / c.P));
  const r = Math.min(c.n, Math.max(c.recent, c.nQ, 1));
  const recentBegin = Math.floor((c.n - r) / c.P);
  const mid = Math.min(sinkEnd, recentBegin);
  const forced = mid + (pages - recentBegin);
  return { pages, all: false, sinkEnd, recentBegin, k: Math.max(0, Math.min(budgetPages - forced, recentBegin - mid)) };
}

function selectedCount(c: Case): number {
  const p = plan(c);
  if (p.all) return c.n;
  const chosen = Math.min(p.sinkEnd, p.recentBegin) + (p.pages - p.recentBegin) + p.k;
  return chosen * c.P - (p.pages * c.P - c.n);
}

/** Tokens of the rule's page choice from float64 scores of one head (NaN as -inf; ties: lower page). */
function referenceSelect(c: Case, s: Float64Array): number[] {
  const p = plan(c);
  const chosen = new Set<number>();
  if (p.all) for (let i = 0; i < p.pages; i++) chosen.add(i);
  else {
    const mid = Math.min(p.sinkEnd, p.recentBegin);
    for (let i = 0; i < mid; i++) chosen.add(i);
    for (let i = p.recentBegin; i < p.pages; i++) chosen.add(i);
    const key = (i: number) => (Number.isNaN(s[i]!) ? -Infinity : s[i]!);
    const cand = [];
    for (let i = mid; i < p.recentBegin; i++) cand.push(i);
    cand.sort((a, b) => key(b) - key(a) || a - b);
    for (const i of cand.slice(0, p.k)) chosen.add(i);
  }
  const out: number[] = [];
  for (const pg of [...chosen].sort((a, b) => a - b)) for (let t = pg * c.P; t < Math.min(c.n, (pg + 1) * c.P); t++) out.push(t);
  return out;
}

function decode(dtype: FloatDType, a: Float32Array | Uint16Array, i: number): number {
  return dtype === 'f32' ? a[i]! : dtype === 'f16' ? f16BitsToF32(a[i]!) : bf16BitsToF32(a[i]!);
}

/** float64 bound of every page of head h: sum over rows ('sum') or max ('max') of sum_c max(q hi, q lo). */
function referenceScores(c: Case, q: Float32Array, lo: Float32Array | Uint16Array, hi: Float32Array | Uint16Array, h: number) {
  const pages = Math.ceil(c.n / c.P), R = c.group * c.nQ;
  const s = new Float64Array(pages), mag = new Float64Array(pages);
  for (let pg = 0; pg < pages; pg++) {
    let acc = c.gqa === 'sum' ? 0 : -Infinity, m = 0;
    for (let r = 0; r < R; r++) {
      let b = 0;
      for (let ch = 0; ch < c.d; ch++) {
        const at = (h * pages + pg) * c.d + ch, x = q[(h * R + r) * c.d + ch]!;
        const l = decode(c.dtype, lo, at), u = decode(c.dtype, hi, at);
        b += Math.max(x * u, x * l);
        m += Math.abs(x) * (Math.abs(u) + Math.abs(l));
      }
      acc = c.gqa === 'sum' ? acc + b : Math.max(acc, b);
    }
    s[pg] = acc;
    mag[pg] = m;
  }
  return { s, mag };
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

function checkCase(c: Case, seed: number, integer = false): void {
  const rng = mulberry32(seed);
  let k: Tensor<FloatDType>, q: Tensor<'f32'>;
  if (integer) {
    // Small integers: summaries and bounds exact in f32 and f64, ties everywhere.
    const ki = new Float32Array(c.H * c.n * c.d).map(() => Math.floor(rng() * 5) - 2);
    const qi = new Float32Array(c.H * c.group * c.nQ * c.d).map(() => Math.floor(rng() * 3) - 1);
    k = { dtype: 'f32', shape: [c.H, c.n, c.d], data: ki };
    q = { dtype: 'f32', shape: [c.H * c.group, c.nQ, c.d], data: qi };
  } else {
    k = randomTensor3(rng, c.dtype, [c.H, c.n, c.d], 1.5) as Tensor<FloatDType>;
    q = randomTensor3(rng, 'f32', [c.H * c.group, c.nQ, c.d], 2);
  }
  const m = runModel(c, k, q);
  const label = JSON.stringify(c);
  // Summaries: the CPU's stateless ones, and the float64 min / max.
  const s = questPageSummaries(k, { pageSize: c.P });
  expect(Array.from(m.kmin), label).toEqual(Array.from(s.kmin.data));
  expect(Array.from(m.kmax), label).toEqual(Array.from(s.kmax.data));
  const pages = Math.ceil(c.n / c.P);
  for (let h = 0; h < c.H; h++) {
    for (let pg = 0; pg < pages; pg++) {
      for (let ch = 0; ch < c.d; ch += 7) {
        let lo = Infinity, hi = -Infinity;
        for (let t = pg * c.P; t < Math.min(c.n, (pg + 1) * c.P); t++) {
          const x = decode(c.dtype, k.data as Float32Array | Uint16Array, (h * c.n + t) * c.d + ch);
          lo = Math.min(lo, x);
          hi = Math.max(hi, x);
        }
        expect(decode(c.dtype, m.kmin, (h * pages + pg) * c.d + ch)).toBe(lo);
        expect(decode(c.dtype, m.kmax, (h * pages + pg) * c.d + ch)).toBe(hi);
      }
    }
  }
  // Scores: the CPU's bits; the float64 bound within rounding.
  expect(bits(m.scores), label).toEqual(bits(m.cpuScores));
  for (let h = 0; h < c.H; h++) {
    const ref = referenceScores(c, q.data, m.kmin, m.kmax, h);
    for (let pg = 0; pg < pages; pg++) {
      const got = m.scores[h * pages + pg]!;
      expect(Math.abs(got - ref.s[pg]!), `${label} h${h} p${pg}`).toBeLessThanOrEqual(1e-5 * ref.mag[pg]! + 1e-30);
    }
    if (integer) {
      // Exact integer bounds: the device's top-k is the rule's selection.
      expect(Array.from(m.indices.subarray(h * m.nSel, (h + 1) * m.nSel)), `${label} h${h}`).toEqual(referenceSelect(c, ref.s));
    }
  }
  // Selection: the device's radix top-k, the CPU's select_pages, questSelect.
  expect(m.nSel).toBe(selectedCount(c));
  expect(Array.from(m.indices), label).toEqual(Array.from(m.cpuIndices));
  const sel = questSelect(q, s, { budget: c.budget, sinks: c.sinks, recent: c.recent, gqa: c.gqa });
  expect(sel.shape, label).toEqual([c.H, m.nSel]);
  expect(Array.from(m.indices), label).toEqual(Array.from(sel.data));
}

const BASE: Case = { dtype: 'f16', H: 2, group: 4, nQ: 1, n: 16 * 60 + 5, d: 128, P: 16, budget: 256, sinks: 0, recent: 1, gqa: 'sum' };

describe('device Quest (quest_hd.h) on the host: the CPU Quest bit for bit', () => {
  const cases: Array<[string, Partial<Case>]> = [
    ['f16 d128 sum', {}],
    ['f16 d128 max nQ 3', { gqa: 'max', nQ: 3 }],
    ['bf16 d64 sum sinks recent', { dtype: 'bf16', d: 64, sinks: 20, recent: 40 }],
    ['f32 d128 max group 1', { dtype: 'f32', group: 1, gqa: 'max' }],
    ['f16 d24 P4 sum (16-lane tail)', { d: 24, P: 4, n: 4 * 203 + 3, budget: 64 }],
    ['bf16 d40 P8 max nQ 3', { dtype: 'bf16', d: 40, P: 8, n: 8 * 90, budget: 100, gqa: 'max', nQ: 3 }],
    ['f32 d100 sum (CPU scalar path)', { dtype: 'f32', d: 100, n: 16 * 33 + 1 }],
    ['f16 d8 P1 max', { d: 8, P: 1, n: 300, budget: 37, gqa: 'max' }],
    ['f16 n1', { n: 1 }],
    ['bf16 n17 budget 16 (one page)', { dtype: 'bf16', n: 17, budget: 16 }],
    ['f16 budget >= n (all pages)', { n: 500, budget: 4096 }],
    ['f16 budget below a page', { budget: 5 }],
    ['f16 nQ 40 > recent', { nQ: 40, group: 1, budget: 128 }],
    ['f32 d128 long (CPU pool split) max', { dtype: 'f32', n: 16 * 700 + 9, gqa: 'max', budget: 2048, group: 2 }],
  ];
  test.each(cases)('%s', (_name, over) => checkCase({ ...BASE, ...over }, 11 + JSON.stringify(over).length));

  test.each([
    ['sum', { gqa: 'sum' as const }],
    ['max, sinks and recent', { gqa: 'max' as const, sinks: 33, recent: 50, nQ: 3 }],
    ['d24 P4', { d: 24, P: 4, n: 4 * 111 + 2, budget: 40 }],
  ])('integer data (exact bounds, ties: the lower page wins): %s', (_name, over) => {
    checkCase({ ...BASE, dtype: 'f32', n: 16 * 40 + 3, d: 64, ...over }, 5, true);
  });

  test('overflowing bounds (inf, -inf, NaN) rank the same on both sides', () => {
    const c: Case = { ...BASE, dtype: 'f32', d: 16, n: 16 * 30, budget: 96, group: 1, H: 1 };
    const rng = mulberry32(3);
    const kd = new Float32Array(c.n * c.d).map(() => (rng() < 0.5 ? -3e38 : 3e38) * rng());
    const qd = new Float32Array(c.group * c.nQ * c.d).map(() => (rng() - 0.5) * 20);
    const m = runModel(c, { dtype: 'f32', shape: [1, c.n, c.d], data: kd }, { dtype: 'f32', shape: [1, 1, c.d], data: qd });
    expect(bits(m.scores)).toEqual(bits(m.cpuScores));
    expect(m.scores.some((x) => !Number.isFinite(x))).toBe(true);
    expect(Array.from(m.indices)).toEqual(Array.from(m.cpuIndices));
  });

  test.each([
    ['int8', 16, 20, 16, 64], ['int4', 32, 8, 16, 128], ['int8', 8, 0, 8, 64], ['int4', 16, 40, 5, 64],
  ] as const)('%s cache (group %i, residual %i, pageSize %i, headDim %i): the device U8 summaries are the CPU cache\'s', (dtype, groupSize, residual, P, d) => {
    // The CPU cache keeps U8 summaries of its dequantized keys through appends
    // that move tail rows into blocks; the device recomputes them from the
    // same dequantized keys (quest_u8_hd.h): equal after every step.
    const H = 2, rng = mulberry32(groupSize + residual + P);
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 4096, dtype, groupSize, residual });
    const add = (m: number) => cache.append(0, randomTensor3(rng, 'f32', [H, m, d], 1.5), randomTensor3(rng, 'f32', [H, m, d], 1));
    add(37);
    cache.attend(0, randomTensor3(rng, 'f32', [H * 2, 1, d], 2), { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
    for (const m of [0, 1, 1, 7, 100, 1, 33, 250, 3]) {
      if (m) add(m);
      const want = cache.questSummaries(0);
      const n = cache.lengths().data[0]!;
      const k = cache.export(0, { dtype: 'f32' }).k.data as Float32Array;
      const pages = Math.ceil(n / P);
      const kmin = new Float32Array(H * pages * d), kmax = new Float32Array(H * pages * d);
      native().questU8Model(Float64Array.of(H, n, d, P), k, kmin, kmax);
      expect(want.kmin.shape).toEqual([H, pages, d]);
      expect(Array.from(kmin), `${dtype} n ${n}: kmin`).toEqual(Array.from(want.kmin.data));
      expect(Array.from(kmax), `${dtype} n ${n}: kmax`).toEqual(Array.from(want.kmax.data));
    }
  });

  test('bad arguments are named, and nothing crashes', () => {
    const c = { ...BASE, n: 40, d: 8 };
    const k = randomTensor3(mulberry32(1), 'f16', [c.H, c.n, c.d], 1) as Tensor<FloatDType>;
    const q = randomTensor3(mulberry32(2), 'f32', [c.H * c.group, 1, c.d], 1);
    const good = runModel(c, k, q);
    expect(good.nSel).toBe(selectedCount(c));
    const header = Float64Array.of(c.H * c.group, c.H, 1, c.d, c.n, DTYPE_CODE.f16, c.budget, c.P, 0, 1, 1);
    const call = (at: number, value: number, kmax = good.kmax) =>
      native().questDeviceModel(header.map((x, i) => (i === at ? value : x)), k.data as Uint16Array, q.data, good.kmin, kmax, good.scores,
        good.cpuScores, good.indices, good.cpuIndices);
    expect(call(-1, 0)).toBe(good.nSel);
    expect(() => call(7, 0)).toThrow(/pageSize/);
    expect(() => call(7, 0.5)).toThrow(/header\[7\]: expected an integer/);
    expect(() => call(8, -1)).toThrow(/header\[8\]/);
    expect(() => call(6, 0)).toThrow(/budget/);
    expect(() => call(10, 2)).toThrow(/gqa/);
    expect(() => call(4, 41)).toThrow(/^k: expected/);
    expect(() => call(1, 3)).toThrow(/nHeads a multiple of nKvHeads/);
    expect(() => call(-1, 0, good.kmin)).toThrow(/kmax: expected an output that shares no memory/);
  });
});
