// Block retrieval and TidalDecode in `tokenpress eval kv` (lib/kv/eval/sparse.ts):
// the per-query block selection against a float64 reference of the block
// score, TidalDecode's step (full layers dense, the selection's top positions
// by the float64 key mass, later layers exactly over them), the spec parser,
// the schedule, and the report rows of all three methods. Tiny sizes; no timing.
import { describe, expect, test } from 'vitest';
import { makeNeedleWorkload, type NeedleWorkloadOptions } from '../../lib/kv/eval/workload.js';
import { syntheticSource } from '../../lib/kv/eval/source.js';
import {
  BLOCKS_EVAL, findSparseEvalMethod, parseSparseSpec, resolveTidalSchedule, runSparseQueries, sparseCacheOptions,
  sparseEvalMethodNames, tidalEvalSchedule, TIDAL_EVAL,
} from '../../lib/kv/eval/sparse.js';
import { runKvEval } from '../../lib/kv/eval/run.js';
import { decode3 } from '../reference/attention.js';
import type { EvalSource } from '../../lib/kv/eval/source.js';
import { evalKvCli } from './eval-kv-cli-helper.js';

const SMALL: NeedleWorkloadOptions = { seed: 7, nKv: 1200, nHeads: 4, nKvHeads: 2, headDim: 32, nNeedles: 4, window: 8, nProbes: 4, nLayers: 2, questionsAfter: 3 };

function memo(): <T>(key: string, make: () => T) => T {
  const m = new Map<string, unknown>();
  return <T>(key: string, make: () => T): T => {
    if (!m.has(key)) m.set(key, make());
    return m.get(key) as T;
  };
}

/** Float64 per query head h: logits q.k / sqrt(d) over the first n rows of KV head g. */
function logits(q: Float64Array, h: number, K: Float64Array, g: number, nKv: number, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    let x = 0;
    for (let c = 0; c < d; c++) x += q[h * d + c]! * K[(g * nKv + t) * d + c]!;
    out[t] = x / Math.sqrt(d);
  }
  return out;
}

function softmax(x: Float64Array): Float64Array {
  let mx = -Infinity;
  for (const v of x) mx = Math.max(mx, v);
  let z = 0;
  const out = x.map((v) => { const e = Math.exp(v - mx); z += e; return e; });
  return out.map((v) => v / z);
}

/** Float64 attention of query head h over the given rows of KV head g: [d]. */
function attendRows(q: Float64Array, h: number, K: Float64Array, V: Float64Array, g: number, nKv: number, rows: ArrayLike<number>, d: number): Float64Array {
  const l = new Float64Array(rows.length);
  for (let j = 0; j < rows.length; j++) {
    let x = 0;
    for (let c = 0; c < d; c++) x += q[h * d + c]! * K[(g * nKv + rows[j]!) * d + c]!;
    l[j] = x / Math.sqrt(d);
  }
  const p = softmax(l);
  const o = new Float64Array(d);
  for (let j = 0; j < rows.length; j++) for (let c = 0; c < d; c++) o[c] = o[c]! + p[j]! * V[(g * nKv + rows[j]!) * d + c]!;
  return o;
}

/** Query row i of a query set, [nHeads * d] float64. */
function queryRow(Q: Float64Array, nHeads: number, nQ: number, i: number, d: number): Float64Array {
  const out = new Float64Array(nHeads * d);
  for (let h = 0; h < nHeads; h++) out.set(Q.subarray((h * nQ + i) * d, (h * nQ + i + 1) * d), h * d);
  return out;
}

function expectOutput(src: EvalSource, got: Float32Array, nQ: number, i: number, h: number, want: Float64Array): void {
  const d = src.headDim;
  for (let c = 0; c < d; c++) expect(Math.abs(got[(h * nQ + i) * d + c]! - want[c]!)).toBeLessThan(2e-4 * (1 + Math.abs(want[c]!)));
}

describe('block retrieval in eval kv', () => {
  test.each([
    { label: 'questions after the prompt, f32, budget 256', opts: SMALL, budget: 256 },
    { label: 'classic (prefix summaries), f16, budget 300', opts: { ...SMALL, questionsAfter: 0, dtype: 'f16' as const }, budget: 300 },
  ])('per query: sink and local blocks in, the true top blocks by the float64 score, outputs equal float64 attention ($label)', ({ opts, budget }) => {
    const src = syntheticSource(makeNeedleWorkload(opts));
    const { nHeads, nKvHeads, headDim: d, nKv } = src;
    const group = nHeads / nKvHeads;
    const B = 64;
    const res = runSparseQueries(BLOCKS_EVAL, src.layers, src.question, budget, memo());
    let checked = 0;
    for (let l = 0; l < src.nLayers; l++) {
      const qs = src.question[l]!;
      const nQ = qs.q.shape[1]!;
      const K = decode3(src.layers[l]!.k);
      const V = decode3(src.layers[l]!.v);
      const Q = decode3(qs.q);
      for (let i = 0; i < nQ; i++) {
        const n = Math.min(nKv, qs.positions[i]! + 1);
        const q = queryRow(Q, nHeads, nQ, i, d);
        const blocks = Math.ceil(n / B);
        const budgetBlocks = Math.max(1, Math.floor(budget / B));
        // Forced: the sink block (sinks 1) and the blocks of the newest 64 rows (recent = blockSize).
        const forced = new Set([0, Math.floor((n - 64) / B), blocks - 1]);
        for (let g = 0; g < nKvHeads; g++) {
          // score = 0.5 bound + 0.5 q.mean, summed over the group's query heads (gqa 'sum', mix 0.5).
          const score: number[] = [];
          const mag: number[] = [];
          for (let b = 0; b < blocks; b++) {
            const lo = b * B, hi = Math.min(n, (b + 1) * B);
            let s = 0, m = 0;
            for (let c = 0; c < d; c++) {
              let mn = Infinity, mx = -Infinity, sum = 0;
              for (let t = lo; t < hi; t++) {
                const x = K[(g * nKv + t) * d + c]!;
                mn = Math.min(mn, x); mx = Math.max(mx, x); sum += x;
              }
              for (let j = 0; j < group; j++) {
                const qc = q[(g * group + j) * d + c]!;
                s += 0.5 * Math.max(qc * mn, qc * mx) + 0.5 * qc * (sum / (hi - lo));
                m += Math.abs(qc) * Math.max(Math.abs(mn), Math.abs(mx));
              }
            }
            score.push(s);
            mag.push(m);
          }
          const got = res.selected[l]![i]![g]!;
          const chosen = [...new Set(Array.from(got, (t) => Math.floor(t / B)))];
          // Whole blocks, ascending rows.
          expect(got.length).toBe(chosen.reduce((s, b) => s + Math.min(n, (b + 1) * B) - b * B, 0));
          for (let j = 1; j < got.length; j++) expect(got[j]!).toBeGreaterThan(got[j - 1]!);
          for (const f of forced) expect(chosen).toContain(f);
          expect(chosen.length).toBe(Math.min(blocks, Math.max(budgetBlocks, forced.size)));
          const free = chosen.filter((b) => !forced.has(b));
          if (free.length > 0) {
            const worst = Math.min(...free.map((b) => score[b]! + 1e-5 * mag[b]!));
            for (let b = 0; b < blocks; b++) if (!chosen.includes(b)) expect(score[b]!).toBeLessThanOrEqual(worst);
            checked++;
          }
          for (let j = 0; j < group; j++) expectOutput(src, res.out[l]!, nQ, i, g * group + j, attendRows(q, g * group + j, K, V, g, nKv, got, d));
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});

describe('TidalDecode in eval kv', () => {
  test.each([
    { label: '2 layers: selection at 0, layer 1 gathered', opts: SMALL, method: TIDAL_EVAL, selectLayer: 0, budget: 150 },
    { label: '3 layers, tidal:selectLayer=1: layer 0 full, 1 selects, 2 gathered', opts: { ...SMALL, nLayers: 3, dtype: 'f16' as const }, method: findSparseEvalMethod('tidal:selectLayer=1')!, selectLayer: 1, budget: 97 },
  ])('one step per query: dense up to the selection, top positions by the float64 key mass, later layers over them ($label)', ({ opts, method, selectLayer, budget }) => {
    const src = syntheticSource(makeNeedleWorkload(opts));
    const { nHeads, nKvHeads, headDim: d, nKv } = src;
    const group = nHeads / nKvHeads;
    for (const set of [src.question, src.probes]) {
      const res = runSparseQueries(method, src.layers, set, budget, memo());
      const nQ = set[0]!.q.shape[1]!;
      for (let i = 0; i < nQ; i++) {
        const n = Math.min(nKv, set[0]!.positions[i]! + 1);
        let kept: Int32Array[] | undefined;
        for (let l = 0; l < src.nLayers; l++) {
          const K = decode3(src.layers[l]!.k);
          const V = decode3(src.layers[l]!.v);
          const q = queryRow(decode3(set[l]!.q), nHeads, nQ, i, d);
          const sel = res.selected[l]![i]!;
          if (l <= selectLayer) {
            // Full and selection layers read every visible row: the dense output.
            for (let g = 0; g < nKvHeads; g++) expect(Array.from(sel[g]!)).toEqual(Array.from({ length: n }, (_, t) => t));
            for (let h = 0; h < nHeads; h++) {
              const g = Math.floor(h / group);
              expectOutput(src, res.out[l]!, nQ, i, h, attendRows(q, h, K, V, g, nKv, sel[g]!, d));
            }
            if (l < selectLayer) continue;
            // The selection: top-budget positions by the group's summed float64 probabilities, the current token forced.
            kept = [];
            for (let g = 0; g < nKvHeads; g++) {
              const mass = new Float64Array(n);
              for (let j = 0; j < group; j++) softmax(logits(q, g * group + j, K, g, nKv, n, d)).forEach((p, t) => { mass[t] = mass[t]! + p; });
              const next = res.selected[l + 1]![i]![g]!;
              expect(next.length).toBe(Math.min(n, budget));
              expect(Array.from(next)).toContain(n - 1);
              const inSet = new Set(next);
              const worst = Math.min(...Array.from(next).filter((t) => t !== n - 1).map((t) => mass[t]!));
              for (let t = 0; t < n; t++) if (!inSet.has(t)) expect(mass[t]!).toBeLessThanOrEqual(worst + 1e-6);
              kept.push(next);
            }
          } else {
            // Gathered layers: exactly the kept positions, and float64 attention over them.
            for (let g = 0; g < nKvHeads; g++) expect(Array.from(sel[g]!)).toEqual(Array.from(kept![g]!));
            for (let h = 0; h < nHeads; h++) expectOutput(src, res.out[l]!, nQ, i, h, attendRows(q, h, K, V, Math.floor(h / group), nKv, sel[Math.floor(h / group)]!, d));
          }
        }
      }
    }
  });

  test('schedule: the paper\'s 32 layers, scaled down; a spec\'s selectLayer drops a default re-selection it would break', () => {
    expect(tidalEvalSchedule(32)).toEqual({ selectLayer: 2, reselectLayers: [13] });
    expect(tidalEvalSchedule(4)).toEqual({ selectLayer: 0, reselectLayers: [2] });
    expect(tidalEvalSchedule(2)).toEqual({ selectLayer: 0, reselectLayers: [] });
    expect(tidalEvalSchedule(1)).toEqual({ selectLayer: 0, reselectLayers: [] });
    expect(resolveTidalSchedule({ selectLayer: 2 }, 4)).toEqual({ selectLayer: 2, reselectLayers: [] });
    expect(resolveTidalSchedule({ selectLayer: 1, reselectLayers: [3] }, 6)).toEqual({ selectLayer: 1, reselectLayers: [3] });
    expect(() => resolveTidalSchedule({ selectLayer: 4 }, 4)).toThrow(/tidal selectLayer.*\[0, 3\]/);
    // The KvCache option the real-model evaluation passes.
    expect(sparseCacheOptions(parseSparseSpec('tidal')!, 409, 4)).toEqual({ method: 'tidal', budget: 409, selectLayer: 0, reselectLayers: [2] });
    expect(sparseCacheOptions(parseSparseSpec('tidal:selectLayer=2')!, 409, 4)).toEqual({ method: 'tidal', budget: 409, selectLayer: 2, reselectLayers: [] });
    expect(sparseCacheOptions(parseSparseSpec('quest:pageSize=8:gqa=max')!, 64, 4)).toEqual({ method: 'quest', budget: 64, pageSize: 8, gqa: 'max' });
    expect(sparseCacheOptions(parseSparseSpec('blocks:mix=1')!, 64, 4)).toEqual({ method: 'blocks', budget: 64, mix: 1 });
  });
});

describe('sparse specs', () => {
  test('names and options', () => {
    expect(sparseEvalMethodNames()).toEqual(['quest', 'blocks', 'tidal']);
    expect(parseSparseSpec('snapkv')).toBeUndefined();
    expect(parseSparseSpec(3)).toBeUndefined();
    expect(parseSparseSpec('quest')).toEqual({ name: 'quest', options: {} });
    expect(parseSparseSpec('tidal:reselectLayers=5/13:sinks=4')).toEqual({ name: 'tidal', options: { reselectLayers: [5, 13], sinks: 4 } });
    expect(parseSparseSpec('tidal:reselectLayers=none')).toEqual({ name: 'tidal', options: { reselectLayers: [] } });
    expect(findSparseEvalMethod('quest:pageSize=8')!.name).toBe('quest:pageSize=8');
    expect(findSparseEvalMethod('blocks')).toBe(BLOCKS_EVAL);
  });

  test.each([
    ['quest:pagesize=8', TypeError, /unknown quest option "pagesize"; known: pageSize, sinks, recent, gqa/],
    ['quest:pageSize=8:pageSize=4', TypeError, /option "pageSize" given twice/],
    ['quest:pageSize=-1', RangeError, /pageSize: expected a non-negative integer, received "-1"/],
    ['quest:gqa=mean', RangeError, /gqa: expected max or sum/],
    ['blocks:mix=2', RangeError, /mix: expected a number in \[0, 1\]/],
    ['tidal:reselectLayers=a', RangeError, /reselectLayers: expected layer indices/],
    ['tidal:mix=1', TypeError, /unknown tidal option "mix"/],
  ])('%s is refused', (spec, type, msg) => {
    expect(() => parseSparseSpec(spec)).toThrow(type);
    expect(() => parseSparseSpec(spec)).toThrow(msg);
  });
});

describe('runKvEval with every sparse method', () => {
  test('full budget equals the full cache; the later questions are answered where eviction loses them', async () => {
    // 1280 tokens: whole blocks of 64 (a budget of nKv then covers every block).
    const src = syntheticSource(makeNeedleWorkload({ ...SMALL, nKv: 1280 }));
    const policies = ['snapkv', 'quest', 'blocks', 'tidal', 'quest:pageSize=8'];
    const report = await runKvEval(src, { budgets: [0.25, 1], policies });
    expect(report.policies).toEqual(policies);
    expect(report.fullNeedleRate).toBe(1);
    for (const p of policies.slice(1)) {
      const rows = report.rows.filter((r) => r.policy === p);
      expect(rows.map((r) => [r.kind, r.keep])).toEqual([['sparse', 320], ['sparse', 1280]]);
      const full = rows[1]!;
      expect(full.needleRate).toBe(1);
      // f32 rounding only: the gathered kernel over every row against the dense one.
      expect([p, full.errQuestion]).toEqual([p, expect.closeTo(0, 4)]);
      expect([p, full.errProbes]).toEqual([p, expect.closeTo(0, 4)]);
      expect(full.massProbes).toBeGreaterThan(1 - 1e-5);
    }
    // TidalDecode's selection layer (0 of 2) reads every row: exact there, whatever the budget.
    const tidal = report.rows.find((r) => r.policy === 'tidal' && r.fraction === 0.25)!;
    expect(tidal.layers![0]!.errProbes).toBeLessThan(1e-5);
    expect(tidal.layers![0]!.massProbes).toBeGreaterThan(1 - 1e-5);
    expect(tidal.layers![1]!.massProbes).toBeLessThan(1 - 1e-3);
    // SnapKV compressed once with a window that saw 1 of 4 questions; Quest and TidalDecode select per question.
    const snap = report.rows.find((r) => r.policy === 'snapkv' && r.fraction === 0.25)!;
    expect(snap.needleRate!).toBeLessThan(1);
    for (const p of ['quest', 'tidal']) expect(report.rows.find((r) => r.policy === p && r.fraction === 0.25)!.needleRate).toBe(1);
  });

  test('a spec error names the policy before any work', async () => {
    const src = syntheticSource(makeNeedleWorkload(SMALL));
    await expect(runKvEval(src, { budgets: [0.25], policies: ['quest:pageSize=x'] })).rejects.toThrow(/quest:pageSize=x: pageSize/);
  });
});

describe('CLI', () => {
  const base = ['--n-kv', '1280', '--heads', '4', '--kv-heads', '2', '--head-dim', '32', '--needles', '4', '--window', '8', '--probes', '4', '--budgets', '25%'];
  test('sparse specs in --policies; a bad option is refused naming the spec', async () => {
    const { out } = await evalKvCli([...base, '--workload', 'multi', '--policies', 'quest:pageSize=8,blocks:mix=1,tidal', '--json']);
    const r = JSON.parse(out) as { rows: { policy: string; kind?: string }[] };
    expect(r.rows.map((x) => [x.policy, x.kind])).toEqual([['quest:pageSize=8', 'sparse'], ['blocks:mix=1', 'sparse'], ['tidal', 'sparse']]);
    await expect(evalKvCli([...base, '--policies', 'quest:page=8'])).rejects.toThrow(/--policies: quest:page=8: unknown quest option "page"/);
    await expect(evalKvCli([...base, '--policies', 'tidal:selectLayer=2'])).rejects.toThrow(/tidal selectLayer.*\[0, 1\]/);
  });
});
