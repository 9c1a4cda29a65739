/**
 * What any selection of a given granularity could reach on the probe rows of
 * `tokenpress eval kv` (docs/sparse.md, "Why the probe error stays high"). A
 * fidelity measurement, not a timing:
 *
 *   node dist/bench/sparse-oracle.js [--n-kv 32768] [--budget 2048] [--trace t.safetensors]
 *
 * Per probe row and KV head, an oracle that knows the dense attention keeps
 * the units (single tokens, pages of 4 / 8 / 16, blocks of 64) holding the
 * most of the group's summed dense probability, as many as the budget allows
 * (floor(budget / unit) units, the sparse methods' rule), and the row attends
 * them: attention(q, k, v, { indices }). Beside them, Quest and block
 * retrieval as `eval kv` runs them. Reported per layer: the output's relative
 * error ||o - o_dense|| / ||o_dense|| (mean over query heads and probe rows)
 * and the dense mass on the selected rows; the metrics of `eval kv`.
 *
 * Default source: the multi-question synthetic workload (seed 0, 7
 * questions after the prompt); --trace: a real-model trace (its last 32 rows
 * are the probes).
 */
import { attention, type Tensor } from '../lib/index.js';
import { makeNeedleWorkload } from '../lib/kv/eval/workload.js';
import { syntheticSource, type EvalSource } from '../lib/kv/eval/source.js';
import { loadKvTrace, traceSource } from '../lib/kv/eval/traces.js';
import { fullProbabilities, relativeErrors } from '../lib/kv/eval/metrics.js';
import { fullLayerCache } from '../lib/kv/eval/compress.js';
import { BLOCKS_EVAL, QUEST_EVAL, runSparseQueries, selectedMass, type SparseEvalMethod } from '../lib/kv/eval/sparse.js';

/** Every visible row: the dense reference through the same per-row path. */
const DENSE: SparseEvalMethod = {
  name: 'dense',
  select({ k }) {
    const [g, n] = k.shape as [number, number, number];
    const data = new Int32Array(g * n);
    for (let h = 0; h < g; h++) for (let t = 0; t < n; t++) data[h * n + t] = t;
    return { dtype: 'i32', shape: [g, n], data };
  },
};

/** An oracle keeping the units of `unit` rows with the most of the group's dense probability. */
function oracle(unit: number): SparseEvalMethod {
  return {
    name: unit === 1 ? 'oracle tokens' : `oracle units of ${unit}`,
    select({ q, k, v, budget }) {
      const [nKvHeads, n] = k.shape as [number, number, number];
      // The dense key mass per KV head: each query head's softmax over the visible rows, summed over the group.
      const { keyMass } = attention(q, k, v, { returnKeyMass: true });
      const units = Math.ceil(n / unit);
      const take = Math.min(units, Math.max(1, Math.floor(budget / unit)));
      const rows: number[][] = [];
      for (let g = 0; g < nKvHeads; g++) {
        const mass = new Float64Array(units);
        for (let t = 0; t < n; t++) mass[Math.floor(t / unit)]! += keyMass!.data[g * n + t]!;
        const best = Array.from({ length: units }, (_, u) => u).sort((a, b) => mass[b]! - mass[a]! || a - b).slice(0, take).sort((a, b) => a - b);
        const r: number[] = [];
        for (const u of best) for (let t = u * unit; t < Math.min(n, (u + 1) * unit); t++) r.push(t);
        rows.push(r);
      }
      const width = Math.max(...rows.map((r) => r.length));
      if (rows.some((r) => r.length !== width)) throw new Error('oracle: KV heads selected different row counts (the partial last unit); use a token count that is a multiple of the unit');
      return { dtype: 'i32', shape: [nKvHeads, width], data: Int32Array.from(rows.flat()) } as Tensor<'i32'>;
    },
  };
}

export interface OracleRow { method: string; errProbes: number[]; massProbes: number[] }

/** Probe error and mass per layer for each method at one budget (tokens per KV head). */
export function probeBounds(source: EvalSource, budget: number, methods: SparseEvalMethod[]): OracleRow[] {
  const memoFor = () => {
    const m = new Map<string, unknown>();
    return <T>(key: string, make: () => T): T => {
      if (!m.has(key)) m.set(key, make());
      return m.get(key) as T;
    };
  };
  const dense = runSparseQueries(DENSE, source.layers, source.probes, budget, memoFor());
  return methods.map((method) => {
    const r = runSparseQueries(method, source.layers, source.probes, budget, memoFor());
    const errProbes: number[] = [];
    const massProbes: number[] = [];
    for (let l = 0; l < source.nLayers; l++) {
      const [nHeads, nP] = source.probes[l]!.q.shape as [number, number, number];
      const err = relativeErrors(dense.out[l]!, r.out[l]!, source.headDim);
      errProbes.push(err.reduce((s, x) => s + x, 0) / err.length);
      const probs = fullProbabilities(source.probes[l]!, fullLayerCache(source.layers[l]!));
      const mass = selectedMass(probs, nHeads, nP, source.nKv, r.selected[l]!);
      massProbes.push(mass.reduce((s, x) => s + x, 0) / mass.length);
    }
    return { method: method.name, errProbes, massProbes };
  });
}

function arg(name: string, fallback: string | undefined): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

if (process.argv[1] && /sparse-oracle\.js$/.test(process.argv[1])) {
  const trace = arg('--trace', undefined);
  const source = trace
    ? traceSource(loadKvTrace(trace), { nProbes: 32 })
    : syntheticSource(makeNeedleWorkload({ nKv: Number(arg('--n-kv', '32768')), questionsAfter: 7 }));
  const budget = Number(arg('--budget', '2048'));
  const rows = probeBounds(source, budget, [QUEST_EVAL, BLOCKS_EVAL, oracle(1), oracle(4), oracle(8), oracle(16), oracle(64)]);
  console.log(`${source.description}; budget ${budget} tokens per KV head (${((100 * budget) / source.nKv).toFixed(2)}%), probe rows`);
  console.log('method                  err probe per layer (mean)        mass probe per layer (mean)');
  const pct = (xs: number[]) => `${xs.map((x) => (100 * x).toFixed(1)).join(' / ')} (${((100 * xs.reduce((s, x) => s + x, 0)) / xs.length).toFixed(1)})`;
  for (const r of rows) console.log(`${r.method.padEnd(22)}  ${pct(r.errProbes).padEnd(32)}  ${pct(r.massProbes)}`);
}
