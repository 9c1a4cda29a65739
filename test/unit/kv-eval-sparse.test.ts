// Sparse methods in `tokenpress eval kv` (lib/kv/eval/sparse.ts, run.ts) and
// the multi-question layout of the synthetic workload (workload.ts
// questionsAfter): construction, Quest's per-query selection against a
// float64 reference of the bound and top-k, the outputs and masses against
// float64 attention, and the report rows. Tiny sizes; no timing.
import { describe, expect, test } from 'vitest';
import { makeNeedleWorkload, type NeedleWorkloadOptions } from '../../lib/kv/eval/workload.js';
import { syntheticSource } from '../../lib/kv/eval/source.js';
import { QUEST_EVAL, runSparseQueries, selectedMass, SPARSE_EVAL_METHODS, sparseEvalMethodNames } from '../../lib/kv/eval/sparse.js';
import { fullLayerCache } from '../../lib/kv/eval/compress.js';
import { fullProbabilities } from '../../lib/kv/eval/metrics.js';
import { runKvEval } from '../../lib/kv/eval/run.js';
import { decode3, referenceAttention } from '../reference/attention.js';
import { evalKvCli } from './eval-kv-cli-helper.js';

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function cos(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, n: number): number {
  let ab = 0, aa = 0, bb = 0;
  for (let d = 0; d < n; d++) {
    ab += a[ao + d]! * b[d]!;
    aa += a[ao + d]! ** 2;
    bb += b[d]! ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

const SMALL: NeedleWorkloadOptions = { seed: 5, nKv: 1200, nHeads: 4, nKvHeads: 2, headDim: 32, nNeedles: 4, window: 8, nProbes: 4, nLayers: 2 };

describe('multi-question workload (questionsAfter)', () => {
  test('questionsAfter 0 is the classic workload, bit for bit', () => {
    const a = makeNeedleWorkload(SMALL);
    const b = makeNeedleWorkload({ ...SMALL, questionsAfter: 0 });
    expect(b.questionPositions).toEqual(a.questionPositions);
    for (let l = 0; l < a.layers.length; l++) {
      for (const key of ['k', 'v', 'window'] as const) expect(sameBytes(b.layers[l]![key].data, a.layers[l]![key].data)).toBe(true);
      expect(sameBytes(b.layers[l]!.question.q.data, a.layers[l]!.question.q.data)).toBe(true);
      expect(sameBytes(b.layers[l]!.probes.q.data, a.layers[l]!.probes.q.data)).toBe(true);
    }
  });

  test('layout: the first questions close the window, the others follow the prompt, then the probes', () => {
    const after = 3;
    const w = makeNeedleWorkload({ ...SMALL, questionsAfter: after });
    const { nKv, nNeedles, window, nHeads, headDim, nProbes } = w.options;
    const inWindow = nNeedles - after;
    expect(w.questionPositions).toEqual([nKv - 1, nKv, nKv + 1, nKv + 2]);
    expect(Array.from(w.layers[0]!.question.positions)).toEqual(w.questionPositions);
    expect(Array.from(w.layers[0]!.probes.positions)).toEqual([nKv + 3, nKv + 4, nKv + 5, nKv + 6].slice(0, nProbes));
    for (const p of w.needlePositions) expect(p).toBeLessThan(nKv - window);
    for (const layer of w.layers) {
      const Q = layer.question.q.data;
      for (let h = 0; h < nHeads; h++) {
        // In-window question rows are the window's last rows.
        for (let j = 0; j < inWindow; j++) {
          const wRow = layer.window.data.subarray((h * window + window - inWindow + j) * headDim, (h * window + window - inWindow + j + 1) * headDim);
          expect(sameBytes(Q.subarray((h * nNeedles + j) * headDim, (h * nNeedles + j + 1) * headDim), wRow)).toBe(true);
        }
      }
      // A later question's row is in no window row, and matches its needle (full attention, float64).
      for (let h = 0; h < nHeads; h++) {
        for (let j = inWindow; j < nNeedles; j++) {
          const qRow = Q.subarray((h * nNeedles + j) * headDim, (h * nNeedles + j + 1) * headDim);
          for (let i = 0; i < window; i++) expect(sameBytes(qRow, layer.window.data.subarray((h * window + i) * headDim, (h * window + i + 1) * headDim))).toBe(false);
        }
      }
      const ref = referenceAttention(layer.question.q, layer.k, layer.v);
      const group = nHeads / w.options.nKvHeads;
      for (const h of layer.retrievalHeads) {
        const g = Math.floor(h / group);
        for (let j = 0; j < nNeedles; j++) expect(cos(ref.output, (h * nNeedles + j) * headDim, layer.needleValues[g]![j]!, headDim)).toBeGreaterThanOrEqual(0.9);
      }
    }
  });

  test('options are validated', () => {
    expect(() => makeNeedleWorkload({ ...SMALL, questionsAfter: 5 })).toThrow(/questionsAfter.*at most nNeedles = 4/);
    expect(() => makeNeedleWorkload({ ...SMALL, questionsAfter: -1 })).toThrow(RangeError);
    expect(() => makeNeedleWorkload({ ...SMALL, questionsAfter: 1.5 } as NeedleWorkloadOptions)).toThrow(/questionsAfter/);
  });
});

// ------------------------------------------------------------- Quest reference

/** Quest selection in float64 for one query row q [nHeads, headDim] over the prefix k [nKvHeads, n, headDim] (gqa sum, current page forced). */
function refQuest(q: Float64Array, K: Float64Array, nHeads: number, nKvHeads: number, nKvAll: number, n: number, d: number, budget: number, P = 16) {
  const group = nHeads / nKvHeads;
  const pages = Math.ceil(n / P);
  const budgetPages = Math.max(1, Math.floor(budget / P));
  return Array.from({ length: nKvHeads }, (_, g) => {
    const bound: number[] = [];
    const mag: number[] = [];
    for (let p = 0; p < pages; p++) {
      let s = 0, m = 0;
      for (let c = 0; c < d; c++) {
        let lo = Infinity, hi = -Infinity;
        for (let t = p * P; t < Math.min(n, (p + 1) * P); t++) {
          const x = K[(g * nKvAll + t) * d + c]!;
          lo = Math.min(lo, x);
          hi = Math.max(hi, x);
        }
        for (let j = 0; j < group; j++) {
          const qc = q[(g * group + j) * d + c]!;
          s += Math.max(qc * lo, qc * hi);
          m += Math.abs(qc) * Math.max(Math.abs(lo), Math.abs(hi));
        }
      }
      bound.push(s);
      mag.push(m);
    }
    return { bound, mag, pages, budgetPages, current: pages - 1 };
  });
}

describe('sparse methods in eval kv', () => {
  test('the method list holds quest; names come from it', () => {
    expect(sparseEvalMethodNames()).toEqual(SPARSE_EVAL_METHODS.map((m) => m.name));
    expect(sparseEvalMethodNames()).toContain('quest');
    expect(sparseEvalMethodNames()).toContain('blocks');
  });

  test.each([
    { label: 'multi-question, f32, budget 64', opts: { ...SMALL, questionsAfter: 3 }, budget: 64 },
    { label: 'classic (questions inside the prompt: prefix summaries), f16, budget 100', opts: { ...SMALL, dtype: 'f16' as const }, budget: 100 },
  ])('Quest per query: true top pages by the float64 bound, outputs and masses equal float64 attention ($label)', ({ opts, budget }) => {
    const w = makeNeedleWorkload(opts);
    const src = syntheticSource(w);
    const { nHeads, nKvHeads, headDim: d, nKv } = src;
    const memo = new Map<string, unknown>();
    const m = <T>(key: string, make: () => T): T => { if (!memo.has(key)) memo.set(key, make()); return memo.get(key) as T; };
    const res = runSparseQueries(QUEST_EVAL, src.layers, src.question, budget, m);
    for (let l = 0; l < src.nLayers; l++) {
      const qs = src.question[l]!;
      const nQ = qs.q.shape[1]!;
      const K = decode3(src.layers[l]!.k);
      const Q = decode3(qs.q);
      const probs = fullProbabilities(qs, fullLayerCache(src.layers[l]!));
      const mass = selectedMass(probs, nHeads, nQ, nKv, res.selected[l]!);
      for (let i = 0; i < nQ; i++) {
        const n = Math.min(nKv, qs.positions[i]! + 1);
        const qRow = new Float64Array(nHeads * d);
        for (let h = 0; h < nHeads; h++) qRow.set(Q.subarray((h * nQ + i) * d, (h * nQ + i + 1) * d), h * d);
        const ref = refQuest(qRow, K, nHeads, nKvHeads, nKv, n, d, budget);
        const sel = res.selected[l]![i]!;
        for (let g = 0; g < nKvHeads; g++) {
          const r = ref[g]!;
          const got = sel[g]!;
          // Whole pages, ascending, the current page in, budgetPages of them.
          const pages = [...new Set(Array.from(got, (t) => Math.floor(t / 16)))];
          expect(got.length).toBe(pages.reduce((s, p) => s + Math.min(n, (p + 1) * 16) - p * 16, 0));
          expect(pages).toContain(r.current);
          expect(pages.length).toBe(Math.min(r.pages, r.budgetPages));
          const chosen = new Set(pages);
          const worstChosen = Math.min(...pages.filter((p) => p !== r.current).map((p) => r.bound[p]! + 1e-5 * r.mag[p]!));
          for (let p = 0; p < r.pages; p++) if (!chosen.has(p)) expect(r.bound[p]!).toBeLessThanOrEqual(worstChosen);
        }
        // Output of row i: float64 attention over the selected rows of the prefix.
        const idx = new Int32Array(nKvHeads * sel[0]!.length);
        sel.forEach((s, g) => idx.set(s, g * s.length));
        const kPre = { ...src.layers[l]!.k, shape: [nKvHeads, n, d], strides: [nKv * d, d, 1] };
        const vPre = { ...src.layers[l]!.v, shape: [nKvHeads, n, d], strides: [nKv * d, d, 1] };
        const qT = { dtype: 'f32' as const, shape: [nHeads, 1, d], data: Float32Array.from(qRow) };
        const want = referenceAttention(qT, kPre as never, vPre as never, { indices: { dtype: 'i32', shape: [nKvHeads, sel[0]!.length], data: idx } });
        for (let h = 0; h < nHeads; h++) {
          for (let c = 0; c < d; c++) expect(Math.abs(res.out[l]![(h * nQ + i) * d + c]! - want.output[h * d + c]!)).toBeLessThan(1e-4);
          // Mass: the float64 softmax of query head h over the prefix, summed over its KV head's selected rows.
          const g = Math.floor(h / (nHeads / nKvHeads));
          const logits = Array.from({ length: n }, (_, t) => {
            let x = 0;
            for (let c = 0; c < d; c++) x += qRow[h * d + c]! * K[(g * nKv + t) * d + c]!;
            return x / Math.sqrt(d);
          });
          const mx = Math.max(...logits);
          const z = logits.reduce((acc, x) => acc + Math.exp(x - mx), 0);
          let s = 0;
          for (const t of sel[g]!) s += Math.exp(logits[t]! - mx) / z;
          expect(Math.abs(mass[h * nQ + i]! - s)).toBeLessThan(1e-4);
        }
      }
    }
  });

  test('runKvEval: sparse rows beside eviction rows; full budget equals the full cache; eviction loses the later questions', async () => {
    const after = 3;
    const w = makeNeedleWorkload({ ...SMALL, questionsAfter: after });
    const report = await runKvEval(syntheticSource(w), { budgets: [0.05, 1], policies: ['snapkv', 'quest'] });
    expect(report.policies).toEqual(['snapkv', 'quest']);
    expect(report.fullNeedleRate).toBe(1);
    const quest = report.rows.filter((r) => r.policy === 'quest');
    const snap = report.rows.filter((r) => r.policy === 'snapkv');
    expect(quest.map((r) => r.kind)).toEqual(['sparse', 'sparse']);
    expect(snap.map((r) => r.kind)).toEqual([undefined, undefined]);
    expect(quest.map((r) => r.keep)).toEqual(snap.map((r) => r.keep));
    const full = quest.find((r) => r.fraction === 1)!;
    expect(full.needleRate).toBe(1);
    expect(full.errQuestion).toBeLessThan(1e-5);
    expect(full.errProbes).toBeLessThan(1e-5);
    expect(full.massProbes).toBeGreaterThan(1 - 1e-5);
    expect(full.layers).toHaveLength(2);
    // At 5% (60 of 1200 tokens: 3 pages) SnapKV compressed once with a window that saw 1 of 4 questions
    // (and, at this tiny size, haystack rows that attend one more needle); Quest selects per question.
    const q5 = quest.find((r) => r.fraction === 0.05)!;
    const s5 = snap.find((r) => r.fraction === 0.05)!;
    expect(s5.needleRate!).toBeLessThan(1);
    expect(q5.needleRate!).toBeGreaterThan(s5.needleRate!);
  });

  test('CLI: --workload multi, --questions-after, quest in --policies, errors', async () => {
    const base = ['--n-kv', '1200', '--heads', '4', '--kv-heads', '2', '--head-dim', '32', '--needles', '4', '--window', '8', '--probes', '4', '--budgets', '5%'];
    const { out } = await evalKvCli([...base, '--workload', 'multi', '--policies', 'snapkv,quest', '--json']);
    const r = JSON.parse(out) as { source: { description: string }; rows: { policy: string; kind?: string }[] };
    expect(r.source.description).toMatch(/multi-question: 1 question\(s\) in the window, 3 asked after the prompt/);
    expect(r.rows.map((x) => [x.policy, x.kind ?? 'evict'])).toEqual([['snapkv', 'evict'], ['quest', 'sparse']]);
    const two = await evalKvCli([...base, '--workload', 'multi', '--questions-after', '2', '--policies', 'quest', '--json']);
    expect((JSON.parse(two.out) as { source: { description: string } }).source.description).toMatch(/2 question\(s\) in the window, 2 asked after/);
    await expect(evalKvCli([...base, '--questions-after', '2'])).rejects.toThrow(/--questions-after applies only with --workload multi/);
    await expect(evalKvCli([...base, '--workload', 'multi', '--questions-after', '5'])).rejects.toThrow(/at most --needles = 4/);
    await expect(evalKvCli([...base, '--workload', 'many'])).rejects.toThrow(/--workload: expected classic or multi/);
    await expect(evalKvCli([...base, '--policies', 'qwest'])).rejects.toThrow(/unknown policy "qwest".*sparse methods: quest/);
  });
});
