/**
 * The one place `tokenpress eval kv` compresses a cache. Every policy and
 * budget goes through compressLayerForEval, so layer- or head-adaptive
 * policies (a KvCache with per-layer / per-head budgets, token merging) can
 * be routed here later without touching the metrics.
 *
 *   layers[l].k, .v  f32|f16|bf16 [nKvHeads, nKv, headDim]  (strides allowed)
 *   layers[l].queries f32         [nHeads, nQ, headDim]     the observation window
 *   result[l].k[g], .v[g]         [1, nKeep_g, headDim]      KV head g's kept rows
 *   result[l].positions[g]        Int32Array(nKeep_g)         their prompt positions
 * nKeep_g may differ per head and per layer (not with compressKv, which keeps
 * the same count everywhere, but the metrics do not assume it).
 */
import { compressKv, type KvBudget, type KvInputs } from '../stateless.js';
import type { KvPolicy } from '../policies.js';
import type { FloatDType, Tensor } from '../../tensor.js';

/** One layer's inputs to a policy: the cache plus what the policy may read (queries, keyMass, seed). */
export type LayerInputs = KvInputs;

/** A compressed (or full) layer, per KV head: rows and their prompt positions. */
export interface EvalLayerCache {
  k: Tensor<FloatDType>[];
  v: Tensor<FloatDType>[];
  positions: Int32Array[];
}

function headView(t: Tensor<FloatDType>, g: number, n: number): Tensor<FloatDType> {
  const [, rows, headDim] = t.shape as [number, number, number];
  const [s0, s1] = (t.strides ?? [rows * headDim, headDim, 1]) as [number, number, number];
  const start = g * s0;
  const end = n === 0 ? start : start + (n - 1) * s1 + headDim;
  return {
    dtype: t.dtype,
    shape: [1, n, headDim],
    strides: [n * s1, s1, 1],
    data: t.data.subarray(start, end),
  } as Tensor<FloatDType>;
}

/** The uncompressed cache of a layer in EvalLayerCache form (views, no copies). */
export function fullLayerCache(layer: LayerInputs): EvalLayerCache {
  const [nKvHeads, nKv] = layer.k.shape as [number, number, number];
  const all = Int32Array.from({ length: nKv }, (_, p) => p);
  const out: EvalLayerCache = { k: [], v: [], positions: [] };
  for (let g = 0; g < nKvHeads; g++) {
    out.k.push(headView(layer.k, g, nKv));
    out.v.push(headView(layer.v, g, nKv));
    out.positions.push(all);
  }
  return out;
}

/**
 * Compresses every layer with `policy` at `budget` (today: compressKv per
 * layer, the same nKeep for every head and layer). Throws what compressKv
 * throws, e.g. a TypeError when the policy needs an input the layer lacks.
 */
export function compressLayerForEval(policy: KvPolicy, layers: LayerInputs[], budget: KvBudget): EvalLayerCache[] {
  return layers.map((layer) => {
    const c = compressKv(layer, policy, budget);
    const [nKvHeads, nKeep] = c.indices.shape as [number, number];
    const out: EvalLayerCache = { k: [], v: [], positions: [] };
    for (let g = 0; g < nKvHeads; g++) {
      out.k.push(headView(c.k, g, nKeep));
      out.v.push(headView(c.v, g, nKeep));
      out.positions.push(c.indices.data.subarray(g * nKeep, (g + 1) * nKeep));
    }
    return out;
  });
}
