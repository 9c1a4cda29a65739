// KvCache.attend options against the float64 attention reference over the
// exported rows: `scale`, `causal: false` (every query sees every stored
// token) and `out` (the caller's buffer is the output, every element
// written), sync and async, on the float caches and the int8 cache (scalar
// ISA: exact dequantization, so the same f32 tolerance applies).
import { describe, expect, test } from 'vitest';
import type { KvCacheDtype } from '../../lib/index.js';
import { referenceAttention } from '../reference/attention.js';
import { mulberry32 } from '../reference/random.js';
import { maxAbsDiff, OUT_TOL, randomTensor3 } from './helpers.js';
import { withIsa, withIsaAsync } from './isa.js';
import { makeCache } from './kv-helpers.js';

const H = 2, GROUP = 2, D = 12, N = 70, NQ = 5;

function setup(dtype: KvCacheDtype, seed: number) {
  const rng = mulberry32(seed);
  const { cache } = makeCache(rng, { H, d: D, n: N, dtype, ...(dtype === 'int8' ? { residual: 10, groupSize: 16 } : {}) });
  const q = randomTensor3(rng, 'f32', [H * GROUP, NQ, D], 1.5);
  const e = cache.export(0, { dtype: 'f32' });
  let vMax = 0;
  for (const x of e.v.data as Float32Array) vMax = Math.max(vMax, Math.abs(x));
  return { cache, q, e, tol: OUT_TOL * vMax };
}

const DTYPES: KvCacheDtype[] = ['f32', 'f16', 'bf16', 'int8'];
const onPath = <T>(dtype: KvCacheDtype, fn: () => T): T => (dtype === 'int8' ? withIsa('scalar', fn) : fn());

describe.each(DTYPES)('KvCache.attend options (%s cache)', (dtype) => {
  test('scale: logits use the given scale, not 1/sqrt(headDim)', () => {
    const { cache, q, e, tol } = setup(dtype, 1);
    onPath(dtype, () => {
      for (const scale of [0.05, 0.37, 1.9]) {
        const ref = referenceAttention(q, e.k, e.v, { causal: true, scale, returnLse: true });
        const got = cache.attend(0, q, { scale, returnLse: true, remember: false });
        expect(maxAbsDiff(got.output.data, ref.output), `scale ${scale}`).toBeLessThanOrEqual(tol);
        expect(maxAbsDiff(got.lse!.data, ref.lse), `scale ${scale} lse`).toBeLessThanOrEqual(3e-5 * Math.max(1, ...Array.from(ref.lse, Math.abs)));
      }
      // The default differs from a different scale by far more than rounding.
      const dflt = cache.attend(0, q, { remember: false }).output.data;
      const other = referenceAttention(q, e.k, e.v, { causal: true, scale: 1.9 }).output;
      expect(maxAbsDiff(dflt, other)).toBeGreaterThan(100 * tol);
    });
  });

  test('causal: false lets every query see every stored token', () => {
    const { cache, q, e, tol } = setup(dtype, 2);
    onPath(dtype, () => {
      const ref = referenceAttention(q, e.k, e.v, { causal: false });
      const got = cache.attend(0, q, { causal: false, remember: false }).output.data;
      expect(maxAbsDiff(got, ref.output)).toBeLessThanOrEqual(tol);
      const causal = referenceAttention(q, e.k, e.v, { causal: true }).output;
      // Only the last query row sees everything either way.
      expect(maxAbsDiff(got, causal)).toBeGreaterThan(100 * tol);
    });
  });

  test('out: the result is written into the caller buffer (sync and async); a wrong length is refused', async () => {
    const { cache, q, e, tol } = setup(dtype, 3);
    const ref = referenceAttention(q, e.k, e.v, { causal: true });
    const out = new Float32Array(H * GROUP * NQ * D).fill(NaN);
    onPath(dtype, () => {
      const got = cache.attend(0, q, { out, remember: false });
      expect(got.output.data).toBe(out);
      expect([...got.output.shape]).toEqual([H * GROUP, NQ, D]);
      expect(maxAbsDiff(out, ref.output)).toBeLessThanOrEqual(tol);
    });
    out.fill(NaN);
    const async = () => cache.attendAsync(0, q, { out, remember: false });
    const got2 = await (dtype === 'int8' ? withIsaAsync('scalar', async) : async());
    expect(got2.output.data).toBe(out);
    expect(maxAbsDiff(out, ref.output)).toBeLessThanOrEqual(tol);
    expect(() => cache.attend(0, q, { out: new Float32Array(H * GROUP * NQ * D - 1) })).toThrow(/out/);
  });
});

