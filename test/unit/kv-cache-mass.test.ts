// H2O key mass across compactions: attend(accumulateMass) adds each key's
// attention mass to an accumulator that must move with its row when
// compress() compacts the head, so a later compress ranks the surviving rows
// by the mass they really gathered. Reference: float64 attention key mass
// (test/reference/attention.ts) summed per original position.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvPolicy } from '../../lib/index.js';
import { referenceAttention } from '../reference/attention.js';
import { mulberry32, randomF32, type Rng } from '../reference/random.js';
import { expectTopChoice, f32, makeCache } from './kv-helpers.js';
import { logitBound, probabilityRelBound, U32 } from './tolerance.js';

const H = 2, GROUP = 2, D = 8;

/** nSteps decode queries with accumulateMass; adds the float64 key mass per original position into `mass`. */
function attendSteps(cache: KvCache, rng: Rng, nSteps: number, mass: Map<number, number>[]): number {
  let terms = 0;
  for (let step = 0; step < nSteps; step++) {
    const q = f32([H * GROUP, 1, D], randomF32(rng, H * GROUP * D, 2));
    const e = cache.export(0, { dtype: 'f32' });
    const ref = referenceAttention(q, e.k, e.v, { causal: true, returnKeyMass: true });
    const n = e.k.shape[1]!;
    for (let h = 0; h < H; h++) {
      for (let r = 0; r < e.lengths[h]!; r++) {
        const p = e.positions.data[h * n + r]!;
        mass[h]!.set(p, (mass[h]!.get(p) ?? 0) + ref.keyMass[h * n + r]!);
      }
    }
    cache.attend(0, q, { accumulateMass: true, remember: false });
    terms += GROUP;
  }
  return terms;
}

/** h2o scores (mass, the newest `recent` rows +Infinity) and their rounding bounds, by row of the current export. */
function h2oScores(cache: KvCache, mass: Map<number, number>[], recent: number, terms: number, h: number) {
  const e = cache.export(0, { dtype: 'f32' });
  const n = e.k.shape[1]!, len = e.lengths[h]!;
  const pos = Array.from(e.positions.data.subarray(h * n, h * n + len));
  // |q| <= 2, |k| <= 1: each logit sums D products of size <= 2 / sqrt(D).
  const rel = probabilityRelBound(logitBound(D, D * 2 / Math.sqrt(D)), len) + terms * U32;
  const ref = pos.map((p, r) => (r >= len - recent ? Infinity : mass[h]!.get(p)!));
  const tol = ref.map((s) => (Number.isFinite(s) ? rel * s + 1e-30 : 0));
  return { pos, ref, tol };
}

describe('H2O mass follows its rows through compaction', () => {
  const CASES: { name: string; first: KvPolicy; firstKeep: number }[] = [
    { name: 'h2o then h2o', first: { name: 'h2o', recent: 4 }, firstKeep: 50 },
    { name: 'streamingllm then h2o', first: { name: 'streamingllm', sinks: 2 }, firstKeep: 60 },
    { name: 'knorm then h2o', first: 'knorm', firstKeep: 45 },
  ];
  for (const { name, first, firstKeep } of CASES) {
    test(`${name}: the second compress ranks the moved rows by their own mass`, () => {
      const rng = mulberry32(name.length * 31 + firstKeep);
      const { cache } = makeCache(rng, { H, d: D, n: 90 });
      const mass = [new Map<number, number>(), new Map<number, number>()];
      let terms = attendSteps(cache, rng, 4, mass);
      cache.compress(first, { keep: firstKeep });
      expect(Array.from(cache.lengths().data)).toEqual([firstKeep, firstKeep]);
      // More mass after the move, then rank by the total.
      terms += attendSteps(cache, rng, 3, mass);
      const before = [0, 1].map((h) => h2oScores(cache, mass, 5, terms, h));
      cache.compress({ name: 'h2o', recent: 5 }, { keep: 20 });
      const e = cache.export(0, { dtype: 'f32' });
      const n = e.k.shape[1]!;
      for (let h = 0; h < H; h++) {
        const keptPos = Array.from(e.positions.data.subarray(h * n, h * n + e.lengths[h]!));
        const rows = keptPos.map((p) => before[h]!.pos.indexOf(p));
        expect(rows.every((r) => r >= 0), 'kept positions existed before').toBe(true);
        expectTopChoice(rows, before[h]!.ref, before[h]!.tol, 20, `${name} head ${h}`);
      }
    });
  }
});
