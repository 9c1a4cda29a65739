// The KvCache observation window: attend() remembers the newest `window`
// query rows of each layer (option `window`, default 32), and query-based
// policies score with them. A decode loop longer than the window must leave
// exactly the newest rows: scores are checked against the float64 policy
// references (test/reference/kv.ts) fed with the newest rows, never against
// the native scorer.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvPolicy, type Tensor } from '../../lib/index.js';
import { referenceScores, type RefPolicy } from '../reference/kv.js';
import { mulberry32, randomF32, type Rng } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { expectTopChoice, f32 } from './kv-helpers.js';
import { logitBound, probabilityRelBound, U32 } from './tolerance.js';

const H = 2, GROUP = 2, D = 8, Q_AMP = 2;

/** Stacks per-step queries [nHeads, 1, D] (and prefill blocks) into [nHeads, rows, D], keeping the newest `rows`. */
function newestRows(steps: Tensor<'f32'>[], rows: number): Tensor<'f32'> {
  const nHeads = H * GROUP;
  const all: Float32Array[][] = Array.from({ length: nHeads }, () => []);
  for (const q of steps) {
    const n = q.shape[1]!;
    for (let h = 0; h < nHeads; h++) for (let r = 0; r < n; r++) all[h]!.push(q.data.subarray((h * n + r) * D, (h * n + r + 1) * D));
  }
  const out = new Float32Array(nHeads * rows * D);
  for (let h = 0; h < nHeads; h++) {
    const mine = all[h]!.slice(-rows);
    expect(mine.length).toBe(rows);
    mine.forEach((row, r) => out.set(row, (h * rows + r) * D));
  }
  return f32([nHeads, rows, D], out);
}

/** A cache of n0 tokens, then `steps` decode steps (append one token, attend one query). Returns every query given. */
function decodeLoop(cache: KvCache, rng: Rng, n0: number, steps: number, prefillQ = 0): Tensor<'f32'>[] {
  cache.append(0, randomTensor3(rng, 'f32', [H, n0, D], 1), randomTensor3(rng, 'f32', [H, n0, D], 1));
  const queries: Tensor<'f32'>[] = [];
  if (prefillQ > 0) {
    const q = randomTensor3(rng, 'f32', [H * GROUP, prefillQ, D], Q_AMP);
    cache.attend(0, q);
    queries.push(q);
  }
  for (let s = 0; s < steps; s++) {
    cache.append(0, f32([H, 1, D], randomF32(rng, H * D)), f32([H, 1, D], randomF32(rng, H * D)));
    const q = f32([H * GROUP, 1, D], randomF32(rng, H * GROUP * D, Q_AMP));
    cache.attend(0, q);
    queries.push(q);
  }
  return queries;
}

/** Relative rounding bound of a score that sums `terms` softmax probabilities over nKeys keys (|q| <= Q_AMP, |k| <= 1). */
function scoreRel(nKeys: number, terms: number): number {
  return probabilityRelBound(logitBound(D, (D * Q_AMP) / Math.sqrt(D)), nKeys) + terms * U32;
}

const POLICIES: { label: string; policy: KvPolicy; ref: RefPolicy; normalised?: boolean }[] = [
  { label: 'snapkv', policy: 'snapkv', ref: { name: 'snapkv' } },
  { label: 'snapkv window 8, max pooling', policy: { name: 'snapkv', window: 8, pooling: 'max' }, ref: { name: 'snapkv', window: 8, pooling: 'max' } },
  { label: 'h2o over the window queries', policy: { name: 'h2o', recent: 3 }, ref: { name: 'h2o', recent: 3 } },
  { label: 'tova', policy: 'tova', ref: { name: 'tova' } },
  { label: 'ems', policy: { name: 'ems', window: 6 }, ref: { name: 'ems', window: 6 }, normalised: true },
];

function expectScoredWith(cache: KvCache, queries: Tensor<'f32'>, p: (typeof POLICIES)[number], keep: number, label: string): void {
  const e = cache.export(0, { dtype: 'f32' });
  const n = e.k.shape[1]!;
  const ref = referenceScores(p.ref, { k: e.k, v: e.v, queries });
  let rel = scoreRel(n, queries.shape[1]! * GROUP * 5);
  if (p.normalised) rel = 2 * rel + n * U32;
  cache.compress(p.policy, { keep });
  const after = cache.export(0, { dtype: 'f32' });
  for (let h = 0; h < H; h++) {
    const s = ref.subarray(h * n, (h + 1) * n);
    const tol = Array.from(s, (x) => (Number.isFinite(x) ? rel * Math.abs(x) + 1e-30 : 0));
    const kept = Array.from(after.positions.data.subarray(h * after.k.shape[1]!, h * after.k.shape[1]! + after.lengths[h]!));
    expectTopChoice(kept, s, tol, keep, `${label} ${p.label} head ${h}`);
  }
}

describe('observation window: the newest rows, scored by float64 references', () => {
  for (const p of POLICIES) {
    test(`default window 32, 45 decode steps: ${p.label}`, () => {
      const rng = mulberry32(45 + p.label.length);
      const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: D, dtype: 'f32' });
      const queries = decodeLoop(cache, rng, 60, 45);
      expectScoredWith(cache, newestRows(queries, 32), p, 44, 'window 32');
    });

    test(`window 8, 20 decode steps after a 12-row prefill attend: ${p.label}`, () => {
      const rng = mulberry32(8 + p.label.length);
      const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: D, dtype: 'f32', window: 8 });
      const queries = decodeLoop(cache, rng, 50, 20, 12);
      expectScoredWith(cache, newestRows(queries, 8), p, 30, 'window 8');
    });

    test(`window 8, one 12-row attend keeps its newest 8 rows: ${p.label}`, () => {
      const rng = mulberry32(12 + p.label.length);
      const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: D, dtype: 'f32', window: 8 });
      const queries = decodeLoop(cache, rng, 70, 0, 12);
      expectScoredWith(cache, newestRows(queries, 8), p, 30, 'window 8 prefill');
    });
  }

  test('window is checked: 1..4096', () => {
    expect(() => new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, window: 0 })).toThrow(/window/);
    expect(() => new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, window: 4097 })).toThrow(/window/);
    expect(() => new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, window: 1.5 })).toThrow(/window/);
  });
});
