// Batched OMP (lib/tokenizer/omp.ts, native/text/omp.cpp) against the float64
// reference (test/reference/omp.ts) on awkward sizes: dims around the 8-float
// SIMD width, atom counts off the 4-row tile, k > rank, duplicate atoms,
// zero targets; thread-count and ISA independence; the async form; argument
// errors.
import { afterAll, describe, expect, test } from 'vitest';
import { setIsa, setThreads, backendInfo } from '../../lib/index.js';
import { applyOmpCodes, ompBatch, ompBatchAsync, type OmpResult } from '../../lib/tokenizer/omp.js';
import { referenceOmp } from '../reference/omp.js';
import { mulberry32, randomF32, type Rng } from '../reference/random.js';

/** Gaussian-ish atoms (sum of uniforms): no two correlations tie. */
function gaussian(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng() + rng() + rng() - 1.5;
  return out;
}

function expectMatchesReference(res: OmpResult, atoms: Float32Array, targets: Float32Array, dim: number, k: number): void {
  const ref = referenceOmp(atoms, targets, dim, k);
  for (let t = 0; t < res.nTargets; t++) {
    const n = res.counts[t]!;
    expect(Array.from(res.indices.subarray(t * k, t * k + n)), `target ${t}`).toEqual(ref.indices[t]);
    expect(Array.from(res.indices.subarray(t * k + n, (t + 1) * k)).every((v) => v === -1)).toBe(true);
    const scale = Math.max(1e-30, ...ref.coeffs[t]!.map(Math.abs));
    for (let i = 0; i < n; i++) expect(Math.abs(res.coeffs[t * k + i]! - ref.coeffs[t]![i]!) / scale).toBeLessThan(2e-3);
  }
}

describe('ompBatch vs the float64 reference', () => {
  const cases: [number, number, number, number][] = [
    // [nAtoms, dim, nTargets, k]
    [1, 1, 3, 1],
    [5, 3, 4, 2],
    [37, 19, 11, 5],
    [64, 8, 7, 6],
    [43, 33, 13, 9],
    [120, 72, 25, 12],
  ];
  for (const [nA, dim, nT, k] of cases) {
    test(`atoms ${nA} x ${dim}, ${nT} targets, k ${k}`, () => {
      const rng = mulberry32(nA * 1000 + dim * 10 + k);
      const atoms = gaussian(rng, nA * dim);
      const targets = gaussian(rng, nT * dim);
      const res = ompBatch(atoms, targets, dim, { k });
      expectMatchesReference(res, atoms, targets, dim, k);
    });
  }

  test('k > rank: atoms of rank 4 in 9 dims, the fit is the projection onto their span', () => {
    const rng = mulberry32(7);
    const dim = 9, rank = 4, nA = 13, nT = 6, k = 8;
    const basis = gaussian(rng, rank * dim);
    const atoms = new Float32Array(nA * dim);
    for (let a = 0; a < nA; a++) {
      for (let r = 0; r < rank; r++) {
        const w = rng() * 2 - 1;
        for (let d = 0; d < dim; d++) atoms[a * dim + d] = atoms[a * dim + d]! + w * basis[r * dim + d]!;
      }
    }
    const targets = gaussian(rng, nT * dim);
    const res = ompBatch(atoms, targets, dim, { k });
    const ref = referenceOmp(atoms, targets, dim, k);
    const fit = applyOmpCodes(res, atoms, dim);
    for (let t = 0; t < nT; t++) {
      expect(res.counts[t]).toBeLessThanOrEqual(rank);
      // Same fitted vector as the float64 reference (both are the projection).
      const refFit = new Float64Array(dim);
      ref.indices[t]!.forEach((j, i) => { for (let d = 0; d < dim; d++) refFit[d] = refFit[d]! + ref.coeffs[t]![i]! * atoms[j * dim + d]!; });
      for (let d = 0; d < dim; d++) expect(fit[t * dim + d]).toBeCloseTo(refFit[d]!, 3);
    }
  });

  test('duplicate atoms are never both picked; a target equal to an atom takes one atom', () => {
    const rng = mulberry32(11);
    const dim = 17, nA = 30, nT = 9, k = 10;
    const atoms = gaussian(rng, nA * dim);
    for (let a = 20; a < 30; a++) atoms.copyWithin(a * dim, (a - 20) * dim, (a - 19) * dim); // atoms 20..29 copy 0..9
    const targets = gaussian(rng, nT * dim);
    targets.set(atoms.subarray(3 * dim, 4 * dim), 0); // target 0 = atom 3
    const res = ompBatch(atoms, targets, dim, { k });
    expectMatchesReference(res, atoms, targets, dim, k);
    expect(res.counts[0]).toBe(1);
    expect([3, 23]).toContain(res.indices[0]);
    expect(res.coeffs[0]).toBeCloseTo(1, 5);
    for (let t = 0; t < nT; t++) {
      const picked = Array.from(res.indices.subarray(t * k, t * k + res.counts[t]!)).map((j) => j % 20);
      expect(new Set(picked).size).toBe(picked.length);
    }
  });

  test('a zero target picks nothing; no atoms or no targets give empty codes', () => {
    const rng = mulberry32(3);
    const dim = 5;
    const atoms = gaussian(rng, 4 * dim);
    const targets = new Float32Array(2 * dim);
    targets.set(gaussian(rng, dim), dim);
    const res = ompBatch(atoms, targets, dim, { k: 3 });
    expect(res.counts[0]).toBe(0);
    expect(Array.from(res.indices.subarray(0, 3))).toEqual([-1, -1, -1]);
    expect(res.counts[1]).toBeGreaterThan(0);
    const none = ompBatch(new Float32Array(0), targets, dim, { k: 2 });
    expect(Array.from(none.counts)).toEqual([0, 0]);
    expect(ompBatch(atoms, new Float32Array(0), dim).counts.length).toBe(0);
  });
});

describe('ompBatch: threads, ISA, async', () => {
  afterAll(() => {
    setThreads(2);
    setIsa(backendInfo().detectedIsa);
  });
  const rng = mulberry32(21);
  const dim = 41, nA = 97, nT = 31, k = 7;
  const atoms = gaussian(rng, nA * dim);
  const targets = gaussian(rng, nT * dim);

  test('results are bitwise the same for 1 and 3 threads, with or without the Gram cache', () => {
    setThreads(1);
    const a = ompBatch(atoms, targets, dim, { k });
    setThreads(3);
    const b = ompBatch(atoms, targets, dim, { k, gramCacheBytes: 0 });
    expect(b.indices).toEqual(a.indices);
    expect(b.coeffs).toEqual(a.coeffs);
  });

  test('the scalar path matches the reference too', () => {
    setIsa('scalar');
    expectMatchesReference(ompBatch(atoms, targets, dim, { k }), atoms, targets, dim, k);
    setIsa(backendInfo().detectedIsa);
  });

  test('async equals sync and reports progress up to nTargets', async () => {
    const sync = ompBatch(atoms, targets, dim, { k });
    const seen: number[] = [];
    const a2 = atoms.slice();
    const t2 = targets.slice();
    const p = ompBatchAsync(a2, t2, dim, { k, onProgress: (n) => seen.push(n) });
    a2.fill(0); // inputs were copied before the call returned
    t2.fill(0);
    const res = await p;
    expect(res.indices).toEqual(sync.indices);
    expect(res.coeffs).toEqual(sync.coeffs);
    expect(res.counts).toEqual(sync.counts);
    expect(seen.length).toBeGreaterThan(0);
    expect(Math.max(...seen)).toBe(nT);
  });
});

describe('ompBatch: argument errors', () => {
  const atoms = randomF32(mulberry32(1), 12);
  test('names the argument', () => {
    expect(() => ompBatch(atoms, atoms, 5)).toThrow(/atoms: expected a length that is a multiple of dim = 5/);
    expect(() => ompBatch(atoms, atoms, 0)).toThrow(RangeError);
    expect(() => ompBatch(new Float64Array(4) as unknown as Float32Array, atoms, 4)).toThrow(TypeError);
    const bad = atoms.slice();
    bad[5] = NaN;
    expect(() => ompBatch(atoms, bad, 4)).toThrow(/targets\[5\]: expected a finite number/);
    expect(() => ompBatch(atoms, atoms, 4, { k: 0 })).toThrow(/options.k/);
    expect(() => ompBatch(atoms, atoms, 4, { k: 1025 })).toThrow(RangeError);
    expect(() => ompBatch(atoms, atoms, 4, { kk: 3 } as never)).toThrow(/did you mean "k"/);
    expect(() => ompBatch(atoms, atoms, 4, { gramCacheBytes: -1 })).toThrow(/gramCacheBytes/);
  });
});
