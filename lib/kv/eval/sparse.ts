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
 * SPARSE_EVAL_METHODS is the one list (Quest, block retrieval, TidalDecode);
 * findSparseEvalMethod also reads specs with options (`quest:pageSize=8`).
 */
import { attention } from '../../attention.js';
import { blockSelect, blockSummaries, type BlockSummaries } from '../../sparse/blocks.js';
import { questPageSummaries, questSelect, type QuestSummaries, type SparseOptions } from '../../sparse/quest.js';
import { tidalSelect } from '../../sparse/tidal.js';
import { rangeError } from '../../errors.js';
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

/** Quest's options an eval spec may set (the page summaries' pageSize and questSelect's). */
export interface QuestEvalOptions { pageSize?: number; sinks?: number; recent?: number; gqa?: 'max' | 'sum' }
/** Block retrieval's options (blockSummaries' blockSize and blockSelect's). */
export interface BlocksEvalOptions { blockSize?: number; sinks?: number; recent?: number; gqa?: 'max' | 'sum'; mix?: number }
/** TidalDecode's options: the schedule (default tidalEvalSchedule(nLayers)) and tidalSelect's forced tokens. */
export interface TidalEvalOptions { selectLayer?: number; reselectLayers?: number[]; sinks?: number; recent?: number }

/** Quest (pageSize 16, current page in, gqa 'sum' unless set), stateless form. */
export function questEval(opts: QuestEvalOptions = {}, name = 'quest'): SparseEvalMethod {
  const { pageSize = 16, ...select } = opts;
  return {
    name,
    select({ layer, q, k, budget, memo }) {
      const n = k.shape[1]!;
      const summaries = memo(`${layer}/${n}`, (): QuestSummaries => questPageSummaries(k, { pageSize }));
      return questSelect(q, summaries, { budget, ...select });
    },
  };
}

/** Block retrieval (blocks of 64, sink block and local window in, gqa 'sum', mix 0.5 unless set), stateless form. */
export function blocksEval(opts: BlocksEvalOptions = {}, name = 'blocks'): SparseEvalMethod {
  const { blockSize = 64, ...select } = opts;
  return {
    name,
    select({ layer, q, k, budget, memo }) {
      const n = k.shape[1]!;
      const summaries = memo(`${layer}/${n}`, (): BlockSummaries => blockSummaries(k, { blockSize }));
      return blockSelect(q, summaries, { budget, ...select });
    },
  };
}

/** The official code's schedule: 32 layers, full 0-1, selection at 2, re-selection at 13 (docs/sparse.md#tidaldecode). */
const PAPER_LAYERS = 32;
const PAPER_SELECT = 2;
const PAPER_RESELECT = 13;

/**
 * TidalDecode's schedule scaled from the paper's 32 layers to nLayers:
 * selectLayer = round(2 nLayers / 32), at most nLayers - 2 (so at least one
 * layer reuses the selection; 0 on a 1-layer stack); the re-selection at
 * round(13 nLayers / 32), kept only when a layer reuses positions on both
 * sides of it (selectLayer + 1 < r < nLayers - 1). 32 layers: 2 and [13];
 * 4 layers (models/lm main): 0 and [2]; 2 layers (the synthetic default):
 * 0 and []. Layers before selectLayer attend fully.
 */
export function tidalEvalSchedule(nLayers: number): { selectLayer: number; reselectLayers: number[] } {
  const selectLayer = Math.max(0, Math.min(Math.round((PAPER_SELECT * nLayers) / PAPER_LAYERS), nLayers - 2));
  const r = Math.round((PAPER_RESELECT * nLayers) / PAPER_LAYERS);
  return { selectLayer, reselectLayers: r > selectLayer + 1 && r < nLayers - 1 ? [r] : [] };
}

/**
 * The schedule a TidalDecode spec runs on nLayers: the spec's selectLayer and
 * reselectLayers where set, else tidalEvalSchedule's; a default re-selection
 * that the spec's selectLayer leaves without a gathered layer on both sides
 * (r <= selectLayer + 1 or r >= nLayers - 1) is dropped. RangeError when the
 * spec's selectLayer is not a layer of the stack.
 */
export function resolveTidalSchedule(opts: TidalEvalOptions, nLayers: number): { selectLayer: number; reselectLayers: number[] } {
  const sch = tidalEvalSchedule(nLayers);
  const selectLayer = opts.selectLayer ?? sch.selectLayer;
  if (selectLayer >= nLayers) throw rangeError('tidal selectLayer', `a layer index in [0, ${nLayers - 1}]`, selectLayer);
  const reselectLayers = opts.reselectLayers ?? sch.reselectLayers.filter((r) => r > selectLayer + 1 && r < nLayers - 1);
  return { selectLayer, reselectLayers };
}

/**
 * TidalDecode, stateless form, one decode step over the layers (the step's
 * `state` carries the kept positions): layers before selectLayer attend
 * every visible position; the selection and re-selection layers attend every
 * position too and keep the top-`budget` positions per KV head by the key
 * mass of that same full pass (attention(..., { returnKeyMass }) then
 * tidalSelect, as the cache does); every other layer attends the kept
 * positions. A selection layer's output is the dense one (it reads every
 * row), so its `selected` (and mass) is every visible position.
 */
export function tidalEval(opts: TidalEvalOptions = {}, name = 'tidal'): SparseEvalMethod {
  const { selectLayer: sl, reselectLayers: rl, ...select } = opts;
  return {
    name,
    select({ layer, nLayers, q, k, v, budget, state }) {
      const { selectLayer, reselectLayers: reselect } = resolveTidalSchedule({ selectLayer: sl, reselectLayers: rl }, nLayers);
      const [nKvHeads, n] = k.shape as [number, number, number];
      const every = (): Tensor<'i32'> => {
        const data = new Int32Array(nKvHeads * n);
        for (let g = 0; g < nKvHeads; g++) for (let p = 0; p < n; p++) data[g * n + p] = p;
        return { dtype: 'i32', shape: [nKvHeads, n], data };
      };
      if (layer < selectLayer) return every();
      if (layer === selectLayer || reselect.includes(layer)) {
        const { keyMass } = attention(q, k, v, { returnKeyMass: true });
        state.set('tidal', { n, indices: tidalSelect(keyMass!, { budget, nQ: 1, ...select }) });
        return every();
      }
      const kept = state.get('tidal') as { n: number; indices: Tensor<'i32'> } | undefined;
      if (!kept) throw rangeError('tidal step', `the selection layer ${selectLayer} visited before layer ${layer}`, 'no positions kept');
      if (kept.n !== n) throw rangeError('tidal step', `the same visible prefix in every layer of a step (${kept.n} at the selection)`, n);
      return kept.indices;
    },
  };
}

export const QUEST_EVAL: SparseEvalMethod = questEval();
export const BLOCKS_EVAL: SparseEvalMethod = blocksEval();
export const TIDAL_EVAL: SparseEvalMethod = tidalEval();

/** The sparse methods `eval kv` knows, with the library's defaults (TidalDecode: tidalEvalSchedule). */
export const SPARSE_EVAL_METHODS: SparseEvalMethod[] = [QUEST_EVAL, BLOCKS_EVAL, TIDAL_EVAL];

export function sparseEvalMethodNames(): string[] {
  return SPARSE_EVAL_METHODS.map((m) => m.name);
}

/** Options a spec may set per method, and how to read each value. */
const SPEC_OPTIONS: Record<string, Record<string, 'int' | 'gqa' | 'mix' | 'layers'>> = {
  quest: { pageSize: 'int', sinks: 'int', recent: 'int', gqa: 'gqa' },
  blocks: { blockSize: 'int', sinks: 'int', recent: 'int', gqa: 'gqa', mix: 'mix' },
  tidal: { selectLayer: 'int', reselectLayers: 'layers', sinks: 'int', recent: 'int' },
};

/** A parsed spec: the method's name and the options it sets. */
export interface SparseSpec {
  name: 'quest' | 'blocks' | 'tidal';
  options: QuestEvalOptions | BlocksEvalOptions | TidalEvalOptions;
}

/**
 * Reads a sparse method spec: a name of SPARSE_EVAL_METHODS, optionally with
 * options as `name:key=value:key=value`, e.g. `quest:pageSize=8:gqa=max`,
 * `blocks:mix=1`, `tidal:selectLayer=1:reselectLayers=none` (layer lists:
 * `3/7` or `none`). undefined when the name is not a sparse method; a
 * TypeError / RangeError naming the spec and the option for a bad option.
 */
export function parseSparseSpec(spec: unknown): SparseSpec | undefined {
  if (typeof spec !== 'string') return undefined;
  const [name, ...parts] = spec.split(':');
  if (!SPARSE_EVAL_METHODS.some((m) => m.name === name)) return undefined;
  const known = SPEC_OPTIONS[name!]!;
  const opts: Record<string, unknown> = {};
  for (const part of parts) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const raw = eq < 0 ? '' : part.slice(eq + 1);
    const kind = known[key];
    if (kind === undefined) throw new TypeError(`${spec}: unknown ${name} option "${key}"; known: ${Object.keys(known).join(', ')} (as ${name}:key=value)`);
    if (key in opts) throw new TypeError(`${spec}: option "${key}" given twice`);
    const bad = (what: string) => new RangeError(`${spec}: ${key}: expected ${what}, received "${raw}"`);
    if (kind === 'int') {
      if (!/^\d+$/.test(raw)) throw bad('a non-negative integer');
      opts[key] = Number(raw);
    } else if (kind === 'gqa') {
      if (raw !== 'max' && raw !== 'sum') throw bad('max or sum');
      opts[key] = raw;
    } else if (kind === 'mix') {
      const x = Number(raw);
      if (raw === '' || !(x >= 0 && x <= 1)) throw bad('a number in [0, 1]');
      opts[key] = x;
    } else {
      if (raw === 'none') opts[key] = [];
      else if (/^\d+(\/\d+)*$/.test(raw)) opts[key] = raw.split('/').map(Number);
      else throw bad('layer indices separated by / (e.g. 13 or 5/13), or none');
    }
  }
  return { name: name as SparseSpec['name'], options: opts };
}

/** The method a spec names (parseSparseSpec), with its options; undefined when it names no sparse method. */
export function findSparseEvalMethod(spec: unknown): SparseEvalMethod | undefined {
  const parsed = parseSparseSpec(spec);
  if (!parsed) return undefined;
  if (!(spec as string).includes(':')) return SPARSE_EVAL_METHODS.find((m) => m.name === parsed.name);
  const label = spec as string;
  if (parsed.name === 'quest') return questEval(parsed.options as QuestEvalOptions, label);
  if (parsed.name === 'blocks') return blocksEval(parsed.options as BlocksEvalOptions, label);
  return tidalEval(parsed.options as TidalEvalOptions, label);
}

/**
 * The KvCache `sparse` option of a spec at a budget, for a cache of nLayers
 * (TidalDecode: tidalEvalSchedule(nLayers) unless the spec sets the layers).
 */
export function sparseCacheOptions(spec: SparseSpec, budget: number, nLayers: number): SparseOptions {
  if (spec.name === 'tidal') {
    const o = spec.options as TidalEvalOptions;
    return { method: 'tidal', budget, ...o, ...resolveTidalSchedule(o, nLayers) } as SparseOptions;
  }
  return { method: spec.name, budget, ...spec.options } as SparseOptions;
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
