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
import { KvCache } from '../cache.js';
import { KV_CACHE_POLICY_NAMES, resolveCompression, type KvCompressionPolicy } from '../compression.js';
import type { FloatDType, Tensor } from '../../tensor.js';
import type { KvPolicy } from '../policies.js';

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

/** Policies that need a KvCache: layer/head-adaptive budgets, merging, EMS's evict-then-merge. */
function needsCache(policy: KvCompressionPolicy): boolean {
  const name = typeof policy === 'string' ? policy : policy.name;
  if ((KV_CACHE_POLICY_NAMES as readonly string[]).includes(name) || name === 'ems') return true;
  return typeof policy === 'object' && (policy as { merge?: boolean }).merge === true;
}

/**
 * Through a KvCache: every layer appended, its queries given to attend (the
 * cache remembers them as the observation window, and accumulates key mass),
 * then one compress call over all layers, and each head's rows exported.
 */
function compressWithCache(policy: KvCompressionPolicy, layers: LayerInputs[], budget: KvBudget): EvalLayerCache[] {
  const [nKvHeads, nKv, headDim] = layers[0]!.k.shape as [number, number, number];
  const nQ = layers[0]!.queries?.shape[1] ?? 1;
  resolveCompression(policy, layers.length, nKvHeads); // bad policies fail before any work
  const cache = new KvCache({
    nLayers: layers.length, nKvHeads, headDim, capacity: Math.max(nKv, 1),
    dtype: layers[0]!.k.dtype, window: Math.min(Math.max(nQ, 1), 4096),
  });
  layers.forEach((layer, l) => {
    cache.append(l, layer.k, layer.v);
    if (layer.queries) cache.attend(l, layer.queries, { accumulateMass: true });
  });
  cache.compress(policy, budget);
  return layers.map((_, l) => {
    const e = cache.export(l);
    const maxLen = e.k.shape[1]!;
    const out: EvalLayerCache = { k: [], v: [], positions: [] };
    for (let g = 0; g < nKvHeads; g++) {
      const n = e.lengths[g]!;
      out.k.push(headView({ ...e.k, strides: [maxLen * headDim, headDim, 1] } as Tensor<FloatDType>, g, n));
      out.v.push(headView({ ...e.v, strides: [maxLen * headDim, headDim, 1] } as Tensor<FloatDType>, g, n));
      out.positions.push(e.positions.data.slice(g * maxLen, g * maxLen + n));
    }
    return out;
  });
}

/**
 * Compresses every layer with `policy` at `budget`. Scoring policies go
 * through compressKv per layer (the same nKeep everywhere); cache policies
 * (pyramidkv, adakv, razor, ems, any policy with merge) through a KvCache,
 * where heads and layers may keep different counts. Throws what those throw,
 * e.g. a TypeError when the policy needs an input the layer lacks.
 */
export function compressLayerForEval(policy: KvCompressionPolicy, layers: LayerInputs[], budget: KvBudget): EvalLayerCache[] {
  if (needsCache(policy)) return compressWithCache(policy, layers, budget);
  return layers.map((layer) => {
    const c = compressKv(layer, policy as KvPolicy, budget);
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
