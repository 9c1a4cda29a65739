// `tokenpress eval kv` metrics (lib/kv/eval/metrics.ts, run.ts, compress.ts)
// against an independent float64 computation with plain loops, on small
// awkward sizes; plus the invariants: keep-everything is exact, random keeps
// fewer needles at 1% than at 50%, reports are deterministic, and a policy
// whose inputs are missing is skipped with its reason.
import { describe, expect, test } from 'vitest';
import { KV_CACHE_POLICY_NAMES, KV_POLICY_NAMES, castTo, type Tensor } from '../../lib/index.js';
import { compressLayerForEval } from '../../lib/kv/eval/compress.js';
import { keepFor, runKvEval, formatKvEvalTable, type KvEvalMetrics } from '../../lib/kv/eval/run.js';
import { sparseEvalMethodNames } from '../../lib/kv/eval/sparse.js';
import { syntheticSource, type EvalSource } from '../../lib/kv/eval/source.js';
import { makeNeedleWorkload, type EvalQueries } from '../../lib/kv/eval/workload.js';
import { decode3 } from '../reference/attention.js';
import { referenceScores, referenceSelect } from '../reference/kv.js';

/** Float64 metrics of one layer for a kept-position set per KV head, with plain loops. */
function referenceLayer(source: EvalSource, l: number, kept: number[][]): KvEvalMetrics {
  const layer = source.layers[l]!;
  const K = decode3(layer.k);
  const V = decode3(layer.v);
  const { nHeads, nKvHeads, nKv, headDim } = source;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);

  const evalSet = (qs: EvalQueries) => {
    const Q = decode3(qs.q);
    const nQ = qs.positions.length;
    const errs: number[] = [];
    const masses: number[] = [];
    const outs: Float64Array[] = []; // compressed outputs per (h, i)
    for (let h = 0; h < nHeads; h++) {
      const g = Math.floor(h / group);
      const keptSet = new Set(kept[g]);
      for (let i = 0; i < nQ; i++) {
        const logits: number[] = [];
        for (let p = 0; p <= Math.min(qs.positions[i]!, nKv - 1); p++) {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += Q[(h * nQ + i) * headDim + d]! * K[(g * nKv + p) * headDim + d]!;
          logits.push(s * scale);
        }
        const max = Math.max(...logits);
        const w = logits.map((s) => Math.exp(s - max));
        const z = w.reduce((a, b) => a + b, 0);
        let zc = 0;
        let mass = 0;
        w.forEach((x, p) => { if (keptSet.has(p)) { zc += x; mass += x / z; } });
        const of = new Float64Array(headDim);
        const oc = new Float64Array(headDim);
        w.forEach((x, p) => {
          for (let d = 0; d < headDim; d++) {
            of[d] = of[d]! + (x / z) * V[(g * nKv + p) * headDim + d]!;
            if (keptSet.has(p)) oc[d] = oc[d]! + (x / zc) * V[(g * nKv + p) * headDim + d]!;
          }
        });
        let num = 0, den = 0;
        for (let d = 0; d < headDim; d++) { num += (oc[d]! - of[d]!) ** 2; den += of[d]! ** 2; }
        errs.push(Math.sqrt(num / den));
        masses.push(mass);
        outs.push(oc);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return { err: mean(errs), mass: mean(masses), outs, nQ };
  };

  const q = evalSet(source.question[l]!);
  const p = evalSet(source.probes[l]!);
  let hits = 0, cases = 0;
  const nd = source.needles;
  if (nd?.kind === 'retrieval') {
    for (const h of nd.retrievalHeads[l]!) {
      nd.values[l]![Math.floor(h / group)]!.forEach((value, j) => {
        const o = q.outs[h * q.nQ + j]!;
        let ab = 0, aa = 0, bb = 0;
        for (let d = 0; d < headDim; d++) { ab += o[d]! * value[d]!; aa += o[d]! ** 2; bb += value[d]! ** 2; }
        cases++;
        if (ab / Math.sqrt(aa * bb) >= 0.9) hits++;
      });
    }
  }
  return { needleRate: cases ? hits / cases : null, errQuestion: q.err, errProbes: p.err, massQuestion: q.mass, massProbes: p.mass };
}

function expectMetricsClose(got: KvEvalMetrics, want: KvEvalMetrics, label: string): void {
  expect(got.needleRate, label).toBe(want.needleRate);
  for (const key of ['errQuestion', 'errProbes', 'massQuestion', 'massProbes'] as const) {
    // f32 kernels vs float64: relative errors of ~1e-6 in outputs and probabilities.
    expect(Math.abs(got[key] - want[key]), `${label} ${key}: ${got[key]} vs ${want[key]}`).toBeLessThanOrEqual(2e-4 * Math.max(1, want[key]));
  }
}

const SMALL = [
  { label: 'f16, 6/2 heads, headDim 18, nKv 301', opts: { nKv: 301, headDim: 18, nHeads: 6, nKvHeads: 2, nNeedles: 3, window: 8, nProbes: 5, dtype: 'f16' as const, seed: 11 } },
  { label: 'f32, MHA 3/3, headDim 8, nKv 97, 3 layers', opts: { nKv: 97, headDim: 8, nHeads: 3, nKvHeads: 3, nNeedles: 2, window: 5, nProbes: 3, nLayers: 3, seed: 12 } },
];

describe('eval kv metrics vs a float64 reference', () => {
  test.each(SMALL)('every policy, several budgets: $label', async ({ opts }) => {
    const source = syntheticSource(makeNeedleWorkload(opts));
    const budgets = [0.01, 0.1, 0.37, 1];
    const report = await runKvEval(source, { budgets });
    // speckv needs draft queries, which the needle workload does not have.
    // Budgets below a policy's forced window / sinks are skipped one by one, with the reason.
    const budgetSkips = report.skipped.filter((x) => x.policy !== 'speckv');
    expect(report.skipped.map((x) => x.policy)).toContain('speckv');
    for (const x of budgetSkips) expect(x.reason).toMatch(/^budget: expected at least \d+ tokens per head/);
    expect(report.rows.length + budgetSkips.length).toBe((KV_POLICY_NAMES.length + KV_CACHE_POLICY_NAMES.length - 1 + sparseEvalMethodNames().length) * budgets.length);
    for (const row of report.rows) {
      if (row.kind === 'sparse') {
        // Sparse methods select per query (test/unit/kv-eval-sparse.test.ts checks them against float64).
        expect(row.massProbes).toBeGreaterThan(0);
        expect(row.massProbes).toBeLessThanOrEqual(1 + 1e-6);
        expect(Number.isFinite(row.errProbes)).toBe(true);
        continue;
      }
      const caches = compressLayerForEval(row.policy as never, source.layers, { keep: row.keep });
      expect(row.keep).toBe(Math.min(source.nKv, Math.max(1, Math.round(row.fraction * source.nKv))));
      // Cache policies keep per-head / per-layer counts and may merge rows: check shapes and ranges only.
      const exact = (KV_POLICY_NAMES as readonly string[]).includes(row.policy) && row.policy !== 'ems';
      if (!exact) {
        for (const c of caches) for (const p of c.positions) expect(p.length).toBeLessThanOrEqual(source.nKv);
        expect(row.massProbes).toBeGreaterThan(0);
        expect(row.massProbes).toBeLessThanOrEqual(1 + 1e-6);
        expect(Number.isFinite(row.errProbes)).toBe(true);
        continue;
      }
      const per: KvEvalMetrics[] = [];
      caches.forEach((c, l) => {
        const kept = c.positions.map((p) => Array.from(p));
        for (const k of kept) expect(k).toHaveLength(row.keep);
        const want = referenceLayer(source, l, kept);
        expectMetricsClose(row.layers[l]!, want, `${row.policy} ${row.fraction} layer ${l}`);
        per.push(want);
      });
      const mean = (f: (m: KvEvalMetrics) => number) => per.reduce((a, m) => a + f(m), 0) / per.length;
      expect(row.errProbes).toBeCloseTo(mean((m) => m.errProbes), 4);
      expect(row.massQuestion).toBeCloseTo(mean((m) => m.massQuestion), 4);
    }
  });

  test('compressLayerForEval keeps the reference selection and the original rows', () => {
    const w = makeNeedleWorkload({ nKv: 211, headDim: 10, nHeads: 4, nKvHeads: 2, nNeedles: 2, window: 6, nProbes: 2, dtype: 'f16', seed: 3 });
    const source = syntheticSource(w);
    for (const policy of ['streamingllm', 'random'] as const) {
      const caches = compressLayerForEval(policy, source.layers, { keep: 23 });
      caches.forEach((c, l) => {
        const inputs = source.layers[l]!;
        const want = referenceSelect(referenceScores({ name: policy }, { k: inputs.k, v: inputs.v, seed: inputs.seed! }), 2, 211, 23);
        const K = decode3(inputs.k);
        for (let g = 0; g < 2; g++) {
          expect(Array.from(c.positions[g]!), `${policy} layer ${l} head ${g}`).toEqual(want[g]);
          const rows = decode3(c.k[g]!);
          want[g]!.forEach((p, j) => {
            for (let d = 0; d < 10; d++) expect(rows[j * 10 + d]).toBe(K[(g * 211 + p) * 10 + d]);
          });
        }
      });
    }
  });
});

describe('eval kv invariants', () => {
  test('keep everything (fraction 1): every needle, zero error, all the mass', async () => {
    const source = syntheticSource(makeNeedleWorkload({ nKv: 2048, seed: 7 }));
    const report = await runKvEval(source, { budgets: [1] });
    expect(report.fullNeedleRate).toBe(1);
    for (const row of report.rows) {
      expect(row.keep).toBe(2048);
      expect(row.needleRate, row.policy).toBe(1);
      expect(row.errQuestion).toBeLessThan(1e-6);
      expect(row.errProbes).toBeLessThan(1e-6);
      expect(row.massQuestion).toBeCloseTo(1, 5);
      expect(row.massProbes).toBeCloseTo(1, 5);
    }
  });

  test('random keeps fewer needles at 1% than at 50%', async () => {
    const source = syntheticSource(makeNeedleWorkload({ nKv: 4096, seed: 0 }));
    const report = await runKvEval(source, { budgets: [0.01, 0.5], policies: ['random'] });
    const [at1, at50] = report.rows;
    expect(at1!.needleRate!).toBeLessThan(at50!.needleRate!);
    expect(at1!.massProbes).toBeLessThan(at50!.massProbes);
  });

  test('deterministic: the same report twice; progress counts every step', async () => {
    const opts = { nKv: 700, headDim: 32, seed: 21 };
    const ticks: number[] = [];
    const a = await runKvEval(syntheticSource(makeNeedleWorkload(opts)), { budgets: [0.05, 0.2], onProgress: (d, t) => ticks.push(d, t) });
    const b = await runKvEval(syntheticSource(makeNeedleWorkload(opts)), { budgets: [0.05, 0.2] });
    expect(b).toEqual(a);
    const total = 1 + (KV_POLICY_NAMES.length + KV_CACHE_POLICY_NAMES.length + sparseEvalMethodNames().length) * 2;
    expect(ticks.slice(-2)).toEqual([total, total]);
  });

  test('a policy without its inputs is skipped with the reason; the table says so', async () => {
    const source = syntheticSource(makeNeedleWorkload({ nKv: 300, headDim: 16, seed: 2 }));
    for (const layer of source.layers) delete layer.queries;
    const report = await runKvEval(source, { budgets: [0.1, 0.5], policies: ['streamingllm', 'snapkv', 'tova'] });
    expect(report.rows.map((r) => r.policy)).toEqual(['streamingllm', 'streamingllm']);
    expect(report.skipped.map((s) => s.policy)).toEqual(['snapkv', 'tova']);
    for (const s of report.skipped) expect(s.reason).toMatch(/needs queries/);
    const table = formatKvEvalTable(report);
    expect(table).toMatch(/skipped snapkv: .*needs queries/);
    expect(table).toMatch(/streamingllm\s+10%\s+30\s/);
  });

  test('keepFor and bad options', async () => {
    expect(keepFor(0.01, 8192)).toBe(82);
    expect(keepFor(0.001, 100)).toBe(1);
    expect(keepFor(1, 97)).toBe(97);
    const source = syntheticSource(makeNeedleWorkload({ nKv: 200, headDim: 8, seed: 1 }));
    await expect(runKvEval(source, { budgets: [0] })).rejects.toThrow(RangeError);
    await expect(runKvEval(source, { budgets: [1.5] })).rejects.toThrow(/options.budgets\[0\]/);
    await expect(runKvEval(source, { policies: ['snapvk' as never] })).rejects.toThrow(/did you mean "snapkv"/);
    await expect(runKvEval(source, { budget: [0.1] } as never)).rejects.toThrow(/did you mean "budgets"/);
  });

  test('f16 and f32 caches of the same workload give close metrics', async () => {
    const a = await runKvEval(syntheticSource(makeNeedleWorkload({ nKv: 1024, seed: 4 })), { budgets: [0.1], policies: ['snapkv'] });
    const w = makeNeedleWorkload({ nKv: 1024, seed: 4 });
    for (const l of w.layers) { l.k = castTo(l.k as Tensor<'f32'>, 'f16'); l.v = castTo(l.v as Tensor<'f32'>, 'f16'); }
    const b = await runKvEval(syntheticSource(w), { budgets: [0.1], policies: ['snapkv'] });
    expect(b.rows[0]!.needleRate).toBe(a.rows[0]!.needleRate);
    expect(Math.abs(b.rows[0]!.errProbes - a.rows[0]!.errProbes)).toBeLessThan(0.01);
  });
});
