/**
 * Sparse decoding in `tokenpress eval kv` (issue 15): methods that keep every
 * token and choose, per query, which rows to attend. They get the same
 * per-step token budget as the eviction policies ({ keep } tokens per KV
 * head), but spend it per query instead of once after the prefill.
 *
 * Every evaluation query is one decode step: for query row i (position p_i)
 * the layers are visited in order with a fresh per-step `state` (so a method
 * that carries positions from one layer to the next, as TidalDecode does,
 * slots in), each layer's method sees the prefix its query can see,
 *
 *   q       f32           [nHeads, 1, headDim]       the query row
 *   k, v    f32|f16|bf16  [nKvHeads, n, headDim]     n = min(nKv, p_i + 1), strided views
 *   result  i32           [nKvHeads, nSel]           prompt positions to attend (< n)
 *
 * and attention(q, k, v, { indices }) gives the row's output. Metrics are the
 * eviction rows' (run.ts): needle cosine on the outputs, relative error, and
 * the full attention's mass on the positions each query selected.
 *
 * SPARSE_EVAL_METHODS is the one list: TidalDecode and block retrieval append
 * their entries there.
 */
import { attention } from '../../attention.js';
import { blockSelect, blockSummaries, type BlockSummaries } from '../../sparse/blocks.js';
import { questPageSummaries, questSelect, type QuestSummaries } from '../../sparse/quest.js';
import type { FloatDType, Tensor } from '../../tensor.js';
import type { EvalQueries } from './workload.js';

/** What a sparse method gets for one layer of one decode step. */
export interface SparseSelectInput {
  layer: number;
  nLayers: number;
  /** f32 [nHeads, 1, headDim]. */
  q: Tensor<'f32'>;
  /** The visible prefix, [nKvHeads, n, headDim] views of the layer's cache. */
  k: Tensor<FloatDType>;
  v: Tensor<FloatDType>;
  /** Tokens per KV head this step may attend. */
  budget: number;
  /** Per-step state shared by the layers of one step (fresh for every query row). */
  state: Map<string, unknown>;
  /** Memoised per (method, key) over the whole evaluation: metadata that depends on the cache only (page summaries). */
  memo<T>(key: string, make: () => T): T;
}

export interface SparseEvalMethod {
  name: string;
  /** i32 [nKvHeads, nSel]: positions in [0, n) to attend. */
  select(input: SparseSelectInput): Tensor<'i32'>;
}

/** Quest with the library's defaults (pageSize 16, current page in, gqa 'sum'), stateless form. */
export const QUEST_EVAL: SparseEvalMethod = {
  name: 'quest',
  select({ layer, q, k, budget, memo }) {
    const n = k.shape[1]!;
    const summaries = memo(`${layer}/${n}`, (): QuestSummaries => questPageSummaries(k, { pageSize: 16 }));
    return questSelect(q, summaries, { budget });
  },
};

/** The sparse methods `eval kv` knows; TidalDecode and block retrieval append theirs. */
/** Block retrieval with the library's defaults (blocks of 64, sink block and local window in, gqa 'sum', mix 0.5), stateless form. */
export const BLOCKS_EVAL: SparseEvalMethod = {
  name: 'blocks',
  select({ layer, q, k, budget, memo }) {
    const n = k.shape[1]!;
    const summaries = memo(`${layer}/${n}`, (): BlockSummaries => blockSummaries(k, { blockSize: 64 }));
    return blockSelect(q, summaries, { budget });
  },
};

export const SPARSE_EVAL_METHODS: SparseEvalMethod[] = [QUEST_EVAL, BLOCKS_EVAL];

export function sparseEvalMethodNames(): string[] {
  return SPARSE_EVAL_METHODS.map((m) => m.name);
}

export function findSparseEvalMethod(name: unknown): SparseEvalMethod | undefined {
  return typeof name === 'string' ? SPARSE_EVAL_METHODS.find((m) => m.name === name) : undefined;
}

/** [nKvHeads, n, headDim] view of the first n rows of t [nKvHeads, nKv, headDim] (contiguous or strided). */
export function prefixView(t: Tensor<FloatDType>, n: number): Tensor<FloatDType> {
  const [h, rows, d] = t.shape as [number, number, number];
  const strides = t.strides ?? [rows * d, d, 1];
  return { dtype: t.dtype, shape: [h, n, d], strides: [...strides], data: t.data } as Tensor<FloatDType>;
}

/** One query set through a sparse method, every layer: outputs and the positions each row selected. */
export interface SparseQueryResult {
  /** out[l]: f32 [nHeads, nQ, headDim]. */
  out: Float32Array[];
  /** selected[l][i][g]: positions query row i attended in KV head g. */
  selected: Int32Array[][][];
}

export function runSparseQueries(
  method: SparseEvalMethod,
  layers: { k: Tensor<FloatDType>; v: Tensor<FloatDType> }[],
  queries: EvalQueries[],
  budget: number,
  memo: <T>(key: string, make: () => T) => T,
): SparseQueryResult {
  const nLayers = layers.length;
  const [nHeads, nQ, headDim] = queries[0]!.q.shape as [number, number, number];
  const [nKvHeads, nKv] = layers[0]!.k.shape as [number, number, number];
  const out = layers.map(() => new Float32Array(nHeads * nQ * headDim));
  const selected: Int32Array[][][] = layers.map(() => []);
  const qRow = new Float32Array(nHeads * headDim);
  const oRow = new Float32Array(nHeads * headDim);
  for (let i = 0; i < nQ; i++) {
    const state = new Map<string, unknown>();
    for (let l = 0; l < nLayers; l++) {
      const qs = queries[l]!;
      const n = Math.min(nKv, qs.positions[i]! + 1);
      if (n < 1) { selected[l]!.push(Array.from({ length: nKvHeads }, () => new Int32Array(0))); continue; }
      for (let h = 0; h < nHeads; h++) qRow.set(qs.q.data.subarray((h * nQ + i) * headDim, (h * nQ + i + 1) * headDim), h * headDim);
      const q: Tensor<'f32'> = { dtype: 'f32', shape: [nHeads, 1, headDim], data: qRow };
      const k = prefixView(layers[l]!.k, n);
      const v = prefixView(layers[l]!.v, n);
      const indices = method.select({ layer: l, nLayers, q, k, v, budget, state, memo });
      attention(q, k, v, { indices, out: oRow });
      for (let h = 0; h < nHeads; h++) out[l]!.set(oRow.subarray(h * headDim, (h + 1) * headDim), (h * nQ + i) * headDim);
      const nSel = indices.shape[1]!;
      selected[l]!.push(Array.from({ length: nKvHeads }, (_, g) => indices.data.slice(g * nSel, (g + 1) * nSel)));
    }
  }
  return { out, selected };
}

/** Per row (h, i): the full attention's mass on the positions row i selected in h's KV head, Float64Array [nHeads * nQ]. */
export function selectedMass(probs: Float32Array, nHeads: number, nQ: number, nKv: number, selected: Int32Array[][]): Float64Array {
  const nKvHeads = selected[0]?.length ?? 1;
  const group = nHeads / nKvHeads;
  const out = new Float64Array(nHeads * nQ);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let i = 0; i < nQ; i++) {
      const base = (h * nQ + i) * nKv;
      let s = 0;
      for (const p of selected[i]![g]!) s += probs[base + p]!;
      out[h * nQ + i] = s;
    }
  }
  return out;
}
