/**
 * TidalDecode (Yang et al. 2024, "TidalDecode: Fast and Accurate LLM
 * Decoding with Position Persistent Sparse Attention"; code:
 * DerrickYLJ/TidalDecode, src/tidal_build/modify_llama.py): across the
 * layers of one decode step, the first layers attend fully; a selection
 * layer attends fully and keeps the top-`budget` token positions per KV head
 * (ranked by the softmax probabilities of that same attention pass, summed
 * over the KV head's query heads and query rows); the following layers
 * attend only to those positions; re-selection layers refresh them. See
 * docs/sparse.md and native/sparse/tidal.h for what differs from the paper's
 * code.
 *
 * Stateless form, for packages that own their caches (tidalSelect):
 *   weights  f32 [nKvHeads, nKv]        (attention(..., { returnKeyMass: true }).keyMass)
 *        or  f32 [nHeads, nQ, nKv]      (per-head probabilities or scores; options.nKvHeads groups them)
 *   indices  i32 [nKvHeads, nSel]       -> attention(q, k, v, { indices }) in the later layers
 */
import { native } from '../native.js';
import { rangeError, typeError } from '../errors.js';
import type { Tensor, TensorLike } from '../tensor.js';
import { checkInteger, checkTensor } from '../validate.js';
import { readOptions, withoutMethod } from './options.js';

/** TidalDecode's schedule and budget (KvCache.attend's `sparse`). */
export interface TidalSparseOptions {
  method: 'tidal';
  /** Token positions kept per KV head (top-k; the paper's code uses 256 to 4096), the forced ones included. */
  budget: number;
  /**
   * Layers that attend fully without selecting: a count n (layers 0..n-1;
   * then selectLayer defaults to n, the official `sparse_layer_start`) or a
   * list of layer indices, which must hold every layer before selectLayer
   * and may hold later ones (they attend fully and keep the selection).
   * Default: every layer before selectLayer.
   */
  fullLayers?: number | readonly number[];
  /** The layer that attends fully and selects; default 2 (or the fullLayers count). */
  selectLayer?: number;
  /** Layers after selectLayer that attend fully and select again; default [13] when the cache has more than 13 layers (the paper's 13 of 32), else []. */
  reselectLayers?: number | readonly number[];
  /** The first `sinks` tokens are always kept; default 0 (the paper has none). */
  sinks?: number;
  /** The newest max(recent, nQ) tokens are always kept; default 1 (the current token, as the kernel path's last page). */
  recent?: number;
}

export const TIDAL_DEFAULTS = Object.freeze({ selectLayer: 2, reselectLayer: 13, sinks: 0, recent: 1 });

const TIDAL_KEYS = ['method', 'budget', 'fullLayers', 'selectLayer', 'reselectLayers', 'sinks', 'recent'] as const;

/** Validated TidalDecode options (the schedule is checked against the cache's nLayers by tidalSchedule). */
export interface ResolvedTidal {
  method: 'tidal';
  budget: number;
  sinks: number;
  recent: number;
  fullLayers?: number | readonly number[];
  selectLayer?: number;
  reselectLayers?: number | readonly number[];
}

export function resolveTidal(arg: string, value: object): ResolvedTidal {
  const o = readOptions(arg, value, TIDAL_KEYS, withoutMethod(TIDAL_KEYS)) as Partial<TidalSparseOptions>;
  if (o.budget === undefined) throw typeError(`${arg}.budget`, 'an integer >= 1 (token positions per KV head)', undefined);
  const budget = checkInteger(`${arg}.budget`, o.budget, 1);
  const sinks = o.sinks === undefined ? TIDAL_DEFAULTS.sinks : checkInteger(`${arg}.sinks`, o.sinks, 0);
  const recent = o.recent === undefined ? TIDAL_DEFAULTS.recent : checkInteger(`${arg}.recent`, o.recent, 0);
  const r: ResolvedTidal = { method: 'tidal', budget, sinks, recent };
  if (o.fullLayers !== undefined) r.fullLayers = o.fullLayers;
  if (o.selectLayer !== undefined) r.selectLayer = o.selectLayer;
  if (o.reselectLayers !== undefined) r.reselectLayers = o.reselectLayers;
  return r;
}

/** A layer's role in the decode step: 0 full attention, 1 full attention + selection, 2 attention over the kept positions. */
export type TidalRole = 0 | 1 | 2;

export interface TidalSchedule {
  selectLayer: number;
  fullLayers: number[];
  reselectLayers: number[];
}

function layerList(arg: string, value: unknown, nLayers: number): number[] {
  if (!Array.isArray(value)) throw typeError(arg, 'an array of layer indices', value);
  const seen = new Set<number>();
  return value.map((l, i) => {
    const x = checkInteger(`${arg}[${i}]`, l, 0, nLayers - 1);
    if (seen.has(x)) throw rangeError(`${arg}[${i}]`, 'distinct layer indices', x);
    seen.add(x);
    return x;
  });
}

/** The schedule of resolved options for a cache of nLayers layers, validated (errors name `arg`'s fields). */
export function tidalSchedule(arg: string, r: ResolvedTidal, nLayers: number): TidalSchedule {
  const last = nLayers - 1;
  let selectLayer: number;
  const fullCount = typeof r.fullLayers === 'number' ? checkInteger(`${arg}.fullLayers`, r.fullLayers, 0, last) : undefined;
  if (r.selectLayer !== undefined) {
    selectLayer = checkInteger(`${arg}.selectLayer`, r.selectLayer, 0, last);
  } else {
    selectLayer = fullCount ?? TIDAL_DEFAULTS.selectLayer;
    if (selectLayer > last) {
      throw rangeError(`${arg}.selectLayer`, `a layer index in [0, ${last}] (the default ${selectLayer} needs at least ${selectLayer + 1} layers: set selectLayer for this ${nLayers}-layer cache)`, selectLayer);
    }
  }
  let fullLayers: number[];
  if (r.fullLayers === undefined) fullLayers = Array.from({ length: selectLayer }, (_, i) => i);
  else if (fullCount !== undefined) {
    if (fullCount !== selectLayer) throw rangeError(`${arg}.fullLayers`, `selectLayer = ${selectLayer} (the layers before the selection layer; give a list to add later full layers)`, fullCount);
    fullLayers = Array.from({ length: fullCount }, (_, i) => i);
  } else {
    fullLayers = layerList(`${arg}.fullLayers`, r.fullLayers, nLayers);
    for (let l = 0; l < selectLayer; l++) {
      if (!fullLayers.includes(l)) throw rangeError(`${arg}.fullLayers`, `every layer before selectLayer = ${selectLayer} (layer ${l} would need positions not yet selected in the step)`, `[${fullLayers.join(', ')}]`);
    }
    if (fullLayers.includes(selectLayer)) throw rangeError(`${arg}.fullLayers`, `no selection layer (selectLayer = ${selectLayer})`, `[${fullLayers.join(', ')}]`);
  }
  let reselectLayers: number[];
  if (r.reselectLayers === undefined) {
    reselectLayers = nLayers > TIDAL_DEFAULTS.reselectLayer && TIDAL_DEFAULTS.reselectLayer > selectLayer ? [TIDAL_DEFAULTS.reselectLayer] : [];
  } else {
    reselectLayers = typeof r.reselectLayers === 'number' ? [checkInteger(`${arg}.reselectLayers`, r.reselectLayers, 0, last)] : layerList(`${arg}.reselectLayers`, r.reselectLayers, nLayers);
  }
  for (const l of reselectLayers) {
    if (l <= selectLayer) throw rangeError(`${arg}.reselectLayers`, `layers after selectLayer = ${selectLayer}`, l);
    if (fullLayers.includes(l)) throw rangeError(`${arg}.reselectLayers`, 'layers not in fullLayers', l);
  }
  return { selectLayer, fullLayers, reselectLayers };
}

/** The role of `layer` in a step of the schedule. */
export function tidalRole(s: TidalSchedule, layer: number): TidalRole {
  if (s.fullLayers.includes(layer)) return 0;
  if (layer === s.selectLayer || s.reselectLayers.includes(layer)) return 1;
  return 2;
}

/** tidalSelect's options. */
export interface TidalSelectOptions {
  /** Token positions per KV head, the forced ones included. */
  budget: number;
  /** The first `sinks` tokens are always kept; default 0. */
  sinks?: number;
  /** The newest max(recent, nQ) tokens are always kept; default 1. */
  recent?: number;
  /** 3-D weights [nHeads, nQ, nKv]: KV heads (nHeads % nKvHeads == 0); default nHeads (one set per query head, as the official code). */
  nKvHeads?: number;
  /** 2-D weights: the query rows behind them (forced recent tokens); default 1. */
  nQ?: number;
  /** How a KV head's rows combine: 'sum' (default; for probabilities and key mass) or 'max' (for scores). */
  gqa?: 'max' | 'sum';
}

/**
 * TidalDecode's selection from a full pass: the top-`budget` token positions
 * per KV head (higher weight first, the lower index on ties; forced sinks and
 * recent tokens in), ascending, i32 [nKvHeads, nSel] (every head the same
 * count) for attention(q, k, v, { indices }) in the following layers.
 * weights: attention(..., { returnKeyMass: true }).keyMass f32 [nKvHeads,
 * nKv] (the selection tokenpress's cache makes), or f32 [nHeads, nQ, nKv]
 * probabilities or pre-softmax scores (-Infinity allowed) per query head,
 * whose rows options.nKvHeads groups and options.gqa combines.
 */
export function tidalSelect(weights: TensorLike<'f32'>, options: TidalSelectOptions): Tensor<'i32'> {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('options', 'an options object such as { budget: 2048 }', options);
  }
  const o = readOptions('options', options, ['budget', 'sinks', 'recent', 'nKvHeads', 'nQ', 'gqa']) as Partial<TidalSelectOptions>;
  if (o.budget === undefined) throw typeError('options.budget', 'an integer >= 1 (token positions per KV head)', undefined);
  const budget = checkInteger('options.budget', o.budget, 1);
  const sinks = o.sinks === undefined ? 0 : checkInteger('options.sinks', o.sinks, 0);
  const recent = o.recent === undefined ? 1 : checkInteger('options.recent', o.recent, 0);
  if (o.gqa !== undefined && o.gqa !== 'max' && o.gqa !== 'sum') throw typeError('options.gqa', "'max' or 'sum'", o.gqa);
  const gqa = o.gqa ?? 'sum';
  const shape = (weights as { shape?: unknown; dims?: unknown })?.shape ?? (weights as { dims?: unknown })?.dims;
  const rank = Array.isArray(shape) ? shape.length : 0;
  let nKvHeads: number, rows: number, nKv: number, nQ: number, data: Float32Array;
  if (rank === 2) {
    const w = checkTensor('weights', weights, ['f32'] as const, ['nKvHeads', 'nKv']);
    [nKvHeads, nKv] = w.shape as [number, number];
    if (w.strides[0] !== nKv || w.strides[1] !== 1) throw rangeError('weights.strides', 'contiguous weights', `[${w.strides.join(', ')}]`);
    if (o.nKvHeads !== undefined && o.nKvHeads !== nKvHeads) throw rangeError('options.nKvHeads', `weights.shape[0] = ${nKvHeads} (or undefined) for 2-D weights`, o.nKvHeads);
    nQ = o.nQ === undefined ? 1 : checkInteger('options.nQ', o.nQ, 1);
    rows = 1;
    data = w.data as Float32Array;
  } else {
    const w = checkTensor('weights', weights, ['f32'] as const, ['nHeads', 'nQ', 'nKv']);
    const [nHeads, q, n] = w.shape as [number, number, number];
    if (w.strides[0] !== q * n || w.strides[1] !== n) throw rangeError('weights.strides', 'contiguous weights', `[${w.strides.join(', ')}]`);
    if (o.nQ !== undefined && o.nQ !== q) throw rangeError('options.nQ', `weights.shape[1] = ${q} (or undefined) for 3-D weights`, o.nQ);
    nKvHeads = o.nKvHeads === undefined ? nHeads : checkInteger('options.nKvHeads', o.nKvHeads, 1);
    if (nHeads < 1 || nHeads % nKvHeads !== 0) throw rangeError('weights.shape[0] (nHeads)', `a multiple of options.nKvHeads = ${nKvHeads}`, nHeads);
    nKv = n;
    nQ = q;
    rows = (nHeads / nKvHeads) * q;
    data = w.data as Float32Array;
  }
  if (nKvHeads < 1) throw rangeError('weights.shape[0]', 'at least 1 head', nKvHeads);
  if (nKv < 1) throw rangeError(`weights.shape[${rank === 2 ? 1 : 2}] (nKv)`, 'at least 1 token', nKv);
  if (nQ < 1) throw rangeError('weights.shape[1] (nQ)', 'at least 1 query', nQ);
  const indices = new Int32Array(nKvHeads * nKv);
  const header = Float64Array.of(nKvHeads, rows, nKv, nQ, budget, sinks, recent, gqa === 'sum' ? 1 : 0);
  const nSel = native().tidalSelect(header, data, indices);
  return { dtype: 'i32', shape: [nKvHeads, nSel], data: indices.subarray(0, nKvHeads * nSel) };
}
