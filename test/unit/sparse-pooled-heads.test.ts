// Sparse attends on caches long enough that the KV heads run as pool tasks
// (native/kv/kv_heads.h: longest head x headDim >= 2^16), for every method:
// the output equals float64 attention over the rows each head reports
// (`selected`), and one thread gives the same bits as two (each head's work
// is the same whichever worker runs it).
//
// Tolerance: OUT_TOL * max|v| (helpers.ts).
import { afterAll, describe, expect, test } from 'vitest';
import { backendInfo, KvCache, setThreads, type FloatDType, type SparseOptions, type Tensor } from '../../lib/index.js';
import { decode3, referenceAttention } from '../reference/attention.js';
import { mulberry32 } from '../reference/random.js';
import { maxAbsDiff, OUT_TOL, randomTensor3 } from './helpers.js';

const initialThreads = backendInfo().threads;
afterAll(() => setThreads(initialThreads));

const H = 3, GROUP = 2, d = 64, n = 1100;  // 1100 x 64 = 70400 >= 2^16

function buildCache(): { cache: KvCache; q: Tensor<'f32'>[] } {
  const rng = mulberry32(77);
  const cache = new KvCache({ nLayers: 4, nKvHeads: H, headDim: d, capacity: n + 8, dtype: 'f16' });
  for (let l = 0; l < 4; l++) cache.append(l, randomTensor3(rng, 'f32', [H, n, d], 2), randomTensor3(rng, 'f32', [H, n, d], 1));
  const q = [0, 1, 2, 3].map(() => randomTensor3(rng, 'f32', [H * GROUP, 1, d], 2));
  return { cache, q };
}

function vMax(v: Tensor<FloatDType>): number {
  return decode3(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

/** The outputs and selections of one step over the 4 layers with `sparse`. */
function step(sparse: SparseOptions, threads: number): { out: Float32Array[]; sel: Int32Array[] } {
  setThreads(threads);
  const { cache, q } = buildCache();
  cache.beginStep();
  const out: Float32Array[] = [], sel: Int32Array[] = [];
  for (let l = 0; l < 4; l++) {
    const r = cache.attend(l, q[l]!, { sparse, returnSelected: true, remember: false });
    const e = cache.export(l, { dtype: 'f32' });
    // TidalDecode's selection layer attends every row and reports the rows it keeps.
    const full = sparse.method === 'tidal' && l === sparse.selectLayer;
    const ref = referenceAttention(q[l]!, e.k, e.v, full ? { causal: true } : { indices: r.selected!, causal: true });
    expect(maxAbsDiff(r.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(e.v));
    out.push(Float32Array.from(r.output.data));
    sel.push(Int32Array.from(r.selected!.data));
  }
  return { out, sel };
}

describe('sparse attends with the KV heads on the pool', () => {
  const methods: [string, SparseOptions][] = [
    ['quest', { method: 'quest', budget: 160 }],
    ['blocks', { method: 'blocks', budget: 192 }],
    ['tidal', { method: 'tidal', budget: 100, selectLayer: 1 }],
  ];
  test.each(methods)('%s: float64 over the selected rows, and the same bits on one thread as on two', (_name, sparse) => {
    const two = step(sparse, 2);
    const one = step(sparse, 1);
    expect(one.sel).toEqual(two.sel);
    expect(one.out).toEqual(two.out);
    // The sparse layers attend fewer rows than the cache holds.
    expect(two.sel[3]!.filter((x) => x >= 0).length).toBeLessThan(H * n);
  });
});
