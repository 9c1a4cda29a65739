// The scoring kernels (native/kv/kv_dots*: probabilities-only key mass,
// expected-attention quadratic form, row norms, merge targets) and the radix
// top-k, on every ISA this CPU has, against the float64 references, at sizes
// the small policy table does not reach: head dims that are not a multiple
// of any vector width and up to 128, key counts crossing the 512-key chunks
// and 64-key tiles, more than 128 query rows per KV head (several row
// blocks), and selection inputs full of ties, signed zeros and infinities.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  KvCache, backendInfo, scoreKv, selectKv, setIsa,
  type FloatDType, type Isa, type KvPolicy, type Tensor,
} from '../../lib/index.js';
import { decode3 } from '../reference/attention.js';
import { refNearest, refTopRows } from '../reference/kv-cache.js';
import { referenceScores, referenceSelect, type RefPolicy } from '../reference/kv.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { expectDecisive, scoreTolerance } from './kv-helpers.js';

function isasToTest(): Isa[] {
  const order: Isa[] = ['scalar', 'avx2', 'avx512'];
  return order.slice(0, order.indexOf(backendInfo().detectedIsa) + 1);
}

let initial: Isa;
beforeAll(() => {
  initial = backendInfo().isa;
});
afterAll(() => {
  setIsa(initial);
});

function withIsa(isa: Isa, fn: () => void): void {
  setIsa(isa);
  try {
    expect(backendInfo().isa).toBe(isa);
    fn();
  } finally {
    setIsa(initial);
  }
}

/**
 * got[i] within tol[i] of the float64 reference (tolerances from the
 * arithmetic, kv-helpers.ts scoreTolerance: relative to each score, no
 * absolute floor, so a small score cannot hide a large relative error);
 * non-finite references must match exactly.
 */
function expectClose(got: Float32Array, want: Float64Array, tol: Float64Array, label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (!Number.isFinite(w)) {
      if (g !== w) expect.fail(`${label}: [${i}] got ${g}, want ${w}`);
      continue;
    }
    if (!(Math.abs(g - w) <= tol[i]!)) expect.fail(`${label}: [${i}] got ${g}, want ${w} (|error| ${Math.abs(g - w)} > bound ${tol[i]})`);
  }
}

interface Shape { nKv: number; nKvHeads: number; group: number; headDim: number; nQ: number; dtype: FloatDType; strided: boolean }
const SHAPES: Shape[] = [
  // 3 chunks of 512 keys, the last partial; 2 row blocks for h2o (37 * 4 = 148 rows).
  { nKv: 1100, nKvHeads: 2, group: 4, headDim: 67, nQ: 37, dtype: 'f16', strided: false },
  // headDim 128, a single query head per KV head, strided bf16 rows.
  { nKv: 515, nKvHeads: 1, group: 1, headDim: 128, nQ: 5, dtype: 'bf16', strided: true },
  // Odd group, f32, nQ > headDim (expected attention with more rows than dims).
  { nKv: 70, nKvHeads: 3, group: 3, headDim: 9, nQ: 20, dtype: 'f32', strided: true },
];

const POLICIES: { label: string; policy: KvPolicy; ref: RefPolicy; draft?: boolean }[] = [
  { label: 'tova', policy: 'tova', ref: { name: 'tova' } },
  { label: 'h2o (queries)', policy: { name: 'h2o', recent: 2 }, ref: { name: 'h2o', recent: 2 } },
  { label: 'snapkv', policy: { name: 'snapkv', window: 16 }, ref: { name: 'snapkv', window: 16 } },
  { label: 'expected_attention', policy: { name: 'expected_attention', sinks: 2 }, ref: { name: 'expected_attention', sinks: 2 } },
  { label: 'ems', policy: { name: 'ems', window: 8 }, ref: { name: 'ems', window: 8 } },
  { label: 'speckv max', policy: 'speckv', ref: { name: 'speckv' }, draft: true },
  { label: 'speckv mean', policy: { name: 'speckv', reduction: 'mean', pooling: 'avg' }, ref: { name: 'speckv', reduction: 'mean', pooling: 'avg' }, draft: true },
  { label: 'knorm', policy: 'knorm', ref: { name: 'knorm' } },
];

function makeInputs(s: Shape, seed: number) {
  const rng = mulberry32(seed);
  const layout = s.strided ? { rowPad: 3, capacity: s.nKv + 2, offset: 5 } : {};
  const k = randomTensor3(rng, s.dtype, [s.nKvHeads, s.nKv, s.headDim], 1, layout);
  const v = randomTensor3(rng, s.dtype, [s.nKvHeads, s.nKv, s.headDim], 1, layout);
  // Scale 2 * sqrt(headDim / 8): logits of a few units, so the softmax is far from flat.
  const queries = randomTensor3(rng, 'f32', [s.nKvHeads * s.group, s.nQ, s.headDim], 2 * Math.sqrt(s.headDim / 8));
  const draftQueries = randomTensor3(rng, 'f32', [s.nKvHeads * s.group, 3, s.headDim], 2, { rowPad: 1 });
  return { k, v, queries, draftQueries };
}

describe('scoring kernels vs the float64 reference, every ISA', () => {
  for (const isa of ['scalar', 'avx2', 'avx512'] as Isa[]) {
    for (const [i, s] of SHAPES.entries()) {
      test(`${isa}: nKv=${s.nKv} heads=${s.nKvHeads}x${s.group} d=${s.headDim} nQ=${s.nQ} ${s.dtype}`, (ctx) => {
        if (!isasToTest().includes(isa)) ctx.skip(`CPU lacks ${isa}`);
        const { k, v, queries, draftQueries } = makeInputs(s, 7000 + i);
        withIsa(isa, () => {
          for (const row of POLICIES) {
            const inputs = { k, v, queries, ...(row.draft ? { draftQueries } : {}) };
            const got = scoreKv(row.policy, inputs);
            const want = referenceScores(row.ref, inputs);
            const tol = scoreTolerance(row.ref, want, {
              headDim: s.headDim, nKv: s.nKv, rows: s.nQ + (row.draft ? 3 : 0), group: s.group, qAmp: Math.max(2, 2 * Math.sqrt(s.headDim / 8)),
            });
            expectClose(got.data, want, tol, `${isa} ${row.label}`);
          }
        });
      });
    }
  }
});

describe('radix top-k selection', () => {
  test('ties, signed zeros, infinities and huge values select like the reference (earlier position first)', () => {
    const rng = mulberry32(99);
    const pool = [0, -0, 1, -1, 2.5, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45, -1e-45, 0.1];
    for (const nKv of [1, 2, 17, 513, 4099]) {
      const nKvHeads = 2;
      const data = Float32Array.from({ length: nKvHeads * nKv }, () => (rng() < 0.7 ? pool[Math.floor(rng() * pool.length)]! : rng() * 4 - 2));
      const scores: Tensor<'f32'> = { dtype: 'f32', shape: [nKvHeads, nKv], data };
      for (const keep of [0, 1, Math.floor(nKv / 3), nKv - 1, nKv].filter((x) => x >= 0 && x <= nKv)) {
        const got = selectKv(scores, { keep });
        expect([...got.data], `nKv=${nKv} keep=${keep}`).toEqual(referenceSelect(data, nKvHeads, nKv, keep).flat());
      }
    }
  });

  test('KvCache.compress keeps the reference top rows of ascending scores (streamingllm) and of tied scores', () => {
    const n = 3000, keep = 700;
    const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: n, dtype: 'f32' });
    const rng = mulberry32(5);
    const k = randomTensor3(rng, 'f32', [1, n, 4], 1);
    cache.append(0, k, k);
    cache.compress({ name: 'streamingllm', sinks: 3 }, { keep });
    const scores = Array.from({ length: n }, (_, p) => (p < 3 ? n : p));
    const want = refTopRows(scores, keep);
    expect(Array.from(cache.export(0).positions.data.subarray(0, keep))).toEqual(want);
  });
});

describe('merge targets (nearest kept key) on every ISA', () => {
  for (const isa of ['scalar', 'avx2', 'avx512'] as Isa[]) {
    test(`${isa}: 300 rows, d=37, keep 70: evicted rows merge into the reference nearest kept row`, (ctx) => {
      if (!isasToTest().includes(isa)) ctx.skip(`CPU lacks ${isa}`);
      withIsa(isa, () => {
        const rng = mulberry32(31);
        const n = 300, d = 37, keep = 70;
        const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: d, capacity: n, dtype: 'f32' });
        const k = randomTensor3(rng, 'f32', [1, n, d], 1);
        const v = randomTensor3(rng, 'f32', [1, n, d], 1);
        cache.append(0, k, v);
        const kr = decode3(k);
        const rows = Array.from({ length: n }, (_, r) => Array.from(kr.subarray(r * d, (r + 1) * d)));
        const scores = referenceScores({ name: 'knorm' }, { k, v });
        expectDecisive(scores, scoreTolerance({ name: 'knorm' }, scores, { headDim: d, nKv: n, rows: 0, group: 1 }), keep, 'knorm');
        const kept = refTopRows(scores, keep);
        const evicted = rows.map((_, r) => r).filter((r) => !kept.includes(r));
        const targets = refNearest(rows, kept, evicted);
        cache.compress({ name: 'knorm', merge: true }, { keep });
        // Each kept row's count = 1 + the evicted rows merged into it.
        const want = new Array(keep).fill(1);
        for (const t of targets) want[t] += 1;
        const e = cache.export(0);
        expect(Array.from(e.positions.data.subarray(0, keep))).toEqual(kept);
        expect(Array.from(e.counts.data.subarray(0, keep))).toEqual(want);
      });
    });
  }
});
