/**
 * Cache-level compression policies: a scoring policy (lib/kv/policies.ts)
 * plus how the budget is spread over layers and heads, and whether evicted
 * tokens are merged. These need a KvCache: heads end up with different
 * numbers of tokens, which a dense tensor cannot hold.
 *
 *   any scoring policy, optionally with `merge: true`
 *   pyramidkv  SnapKV scores, per-layer budgets (PyramidKV, kvpress get_layer_budget)
 *   adakv      any scorer, head-adaptive budgets within each layer (AdaKV)
 *   ems        EMS scores; evicted tokens similar to a kept one merge into it
 *   razor      RazorAttention: retrieval heads keep everything, the others
 *              sinks + a recent window + one compensation token
 */
import type { NativeKvCompressParams, NativeKvPolicyOptions } from '../native.js';
import { rangeError, typeError } from '../errors.js';
import { checkBoolean, checkInteger, checkNumber, checkOptions, closestName } from '../validate.js';
import { KV_POLICY_NAMES, policyOptions, resolvePolicy, type EmsPolicy, type KvPolicy, type KvPolicyConfig } from './policies.js';

/** Any scoring policy, with evicted tokens optionally merged into their nearest kept token. */
export type MergeablePolicy = KvPolicyConfig & {
  /**
   * Fold each evicted token into the kept token of the same head whose key is
   * most similar (cosine): k and v become count-weighted means, attention
   * mass adds up. Default false (evicted tokens are dropped).
   */
  merge?: boolean;
};

/** PyramidKV (Cai et al. 2024): SnapKV scores, more tokens in lower layers. */
export interface PyramidKvPolicy {
  name: 'pyramidkv';
  /** SnapKV observation window and the pyramid's reserved window; default 64 (kvpress). */ window?: number;
  /** default 5 */ kernel?: number;
  /** default 'avg' */ pooling?: 'avg' | 'max';
  /** Pyramid steepness; default 20. */ beta?: number;
  merge?: boolean;
}

/** AdaKV (Feng et al. 2024): head-adaptive budgets over a scorer's scores. */
export interface AdaKvPolicy {
  name: 'adakv';
  /** The scores to allocate by; default 'snapkv'. */ scorer?: KvPolicy;
  /** Every head keeps at least floor(alpha * budget) tokens; default 0.2. */ alpha?: number;
  merge?: boolean;
}

/** RazorAttention (Tang et al. 2024). */
export interface RazorPolicy {
  name: 'razor';
  /**
   * Retrieval heads, which keep every token: booleans [nLayers][nKvHeads]
   * (for example from pickRetrievalHeads), or a flat Uint8Array. Default: none.
   */
  retrievalHeads?: boolean[][] | Uint8Array;
  /** Sink tokens kept on the other heads; default 4. */ sinks?: number;
  /** Recent tokens kept on the other heads; default: budget - sinks - 1. */ recent?: number;
}

/** EMS (Li et al. 2024) in a cache: global-local scores, then evict-then-merge. */
export type EmsCachePolicy = EmsPolicy & {
  /** Merge evicted tokens at least this similar (key cosine) to a kept one; default 0.5. */ similarity?: number;
  /** default true */ merge?: boolean;
};

export type KvCompressionPolicy = KvPolicy | MergeablePolicy | PyramidKvPolicy | AdaKvPolicy | RazorPolicy | EmsCachePolicy;

export const KV_CACHE_POLICY_NAMES = ['pyramidkv', 'adakv', 'razor'] as const;
const ALL_NAMES: readonly string[] = [...KV_POLICY_NAMES, ...KV_CACHE_POLICY_NAMES];

const ALLOCATION = { uniform: 0, pyramid: 1, adakv: 2, razor: 3 } as const;

/** Native compress parameters except the budget and layers. */
export type ResolvedCompression = Omit<NativeKvCompressParams, 'keep' | 'ratio' | 'layers'>;

function asConfig(policy: unknown): Record<string, unknown> {
  if (typeof policy === 'string') return { name: policy };
  if (policy !== null && typeof policy === 'object' && !Array.isArray(policy)) return policy as Record<string, unknown>;
  throw typeError('policy', `a policy name (${ALL_NAMES.join(', ')}) or { name, ...options }`, policy);
}

function scorerParams(policy: unknown): Pick<ResolvedCompression, 'policy'> & NativeKvPolicyOptions {
  const p = resolvePolicy(policy);
  return { policy: p.name, ...policyOptions(p) };
}

function retrievalFlags(value: unknown, nLayers: number, nKvHeads: number): Uint8Array {
  const n = nLayers * nKvHeads;
  if (value instanceof Uint8Array) {
    if (value.length !== n) throw rangeError('policy.retrievalHeads.length', `nLayers * nKvHeads = ${n}`, value.length);
    return value.slice();
  }
  if (!Array.isArray(value) || value.length !== nLayers) {
    throw typeError('policy.retrievalHeads', `booleans [nLayers = ${nLayers}][nKvHeads = ${nKvHeads}] or a Uint8Array(${n})`, value);
  }
  const out = new Uint8Array(n);
  value.forEach((row: unknown, l) => {
    if (!Array.isArray(row) || row.length !== nKvHeads) throw typeError(`policy.retrievalHeads[${l}]`, `${nKvHeads} booleans`, row);
    row.forEach((b: unknown, h) => {
      if (typeof b !== 'boolean') throw typeError(`policy.retrievalHeads[${l}][${h}]`, 'a boolean', b);
      out[l * nKvHeads + h] = b ? 1 : 0;
    });
  });
  return out;
}

/** Validates a cache compression policy and fills in every default. */
export function resolveCompression(policy: unknown, nLayers: number, nKvHeads: number): ResolvedCompression {
  const cfg = asConfig(policy);
  const base = { allocation: ALLOCATION.uniform as number, beta: 20, pyramidWindow: 64, alpha: 0.2, razorSinks: 4, razorRecent: 0, merge: false, mergeThreshold: -2 };
  const name = cfg.name;
  if (name === 'pyramidkv') {
    const o = checkOptions('policy (pyramidkv)', cfg, ['name', 'window', 'kernel', 'pooling', 'beta', 'merge']);
    const window = o.window === undefined ? 64 : checkInteger('policy.window', o.window, 1);
    const beta = o.beta === undefined ? 20 : checkNumber('policy.beta', o.beta);
    if (beta < 1) throw rangeError('policy.beta', 'a number >= 1', beta);
    const s = scorerParams({ name: 'snapkv', window, kernel: o.kernel, pooling: o.pooling });
    return { ...s, ...base, allocation: ALLOCATION.pyramid, beta, pyramidWindow: window, merge: checkBoolean('policy.merge', o.merge, false) };
  }
  if (name === 'adakv') {
    const o = checkOptions('policy (adakv)', cfg, ['name', 'scorer', 'alpha', 'merge']);
    const alpha = o.alpha === undefined ? 0.2 : checkNumber('policy.alpha', o.alpha);
    if (!(alpha >= 0 && alpha <= 1)) throw rangeError('policy.alpha', 'a fraction in [0, 1]', alpha);
    const s = scorerParams(o.scorer ?? 'snapkv');
    return { ...s, ...base, allocation: ALLOCATION.adakv, alpha, merge: checkBoolean('policy.merge', o.merge, false) };
  }
  if (name === 'razor') {
    const o = checkOptions('policy (razor)', cfg, ['name', 'retrievalHeads', 'sinks', 'recent']);
    const out: ResolvedCompression = { ...scorerParams('streamingllm'), ...base, allocation: ALLOCATION.razor, merge: true };
    if (o.sinks !== undefined) out.razorSinks = checkInteger('policy.sinks', o.sinks, 0);
    if (o.recent !== undefined) out.razorRecent = checkInteger('policy.recent', o.recent, 1);
    if (o.retrievalHeads !== undefined) out.retrieval = retrievalFlags(o.retrievalHeads, nLayers, nKvHeads);
    return out;
  }
  if (typeof name === 'string' && !ALL_NAMES.includes(name)) {
    const best = closestName(name, ALL_NAMES);
    throw new TypeError(`policy: unknown policy "${name}"${best ? ` (did you mean "${best}"?)` : ''}; known policies: ${ALL_NAMES.join(', ')}`);
  }
  if (name === 'ems') {
    // EMS evict-then-merge: the lowest scores are evicted; an evicted token
    // whose key is redundant (cosine >= similarity with its nearest kept
    // key) is merged into it, the others are dropped.
    const { merge, similarity, ...scorer } = cfg;
    const sim = similarity === undefined ? 0.5 : checkNumber('policy.similarity', similarity);
    if (!(sim >= -1 && sim <= 1)) throw rangeError('policy.similarity', 'a cosine similarity in [-1, 1]', sim);
    return { ...scorerParams(scorer), ...base, merge: checkBoolean('policy.merge', merge, true), mergeThreshold: sim };
  }
  const { merge, ...scorer } = cfg;
  return { ...scorerParams(typeof policy === 'string' ? policy : scorer), ...base, merge: checkBoolean('policy.merge', merge, false) };
}

/**
 * autoCompress: a { keep } budget must hold what the scorer always keeps
 * (sinks, recent tokens, the observation window, at most the cache's
 * `window` remembered queries), or every compression an append triggers
 * would fail. Checked at construction, so no append can meet it. speckv
 * needs draft queries, which an append cannot pass. (Razor's own minimum is
 * checked with compress's; adakv allocates around the forced tokens.)
 */
export function checkAutoPolicyFits(r: ResolvedCompression, keep: number, cacheWindow: number): void {
  if (r.policy === 'speckv') {
    throw new TypeError('options.autoCompress.policy: "speckv" scores with draft queries, which autoCompress cannot pass; call compress(policy, budget, { draftQueries }) instead');
  }
  if (r.allocation === ALLOCATION.adakv || r.allocation === ALLOCATION.razor) return;
  let need = 0;
  let what = '';
  if (r.policy === 'streamingllm' || r.policy === 'expected_attention') {
    need = r.sinks;
    what = `its ${need} sink tokens`;
  } else if (r.policy === 'h2o') {
    need = r.recent;
    what = `its ${need} recent tokens`;
  } else if (r.policy === 'snapkv' || r.policy === 'ems') {
    need = Math.min(r.window, cacheWindow);
    what = `its observation window of up to ${need} queries' tokens (policy window ${r.window}, cache window ${cacheWindow})`;
  }
  if (keep < need) {
    throw new RangeError(`options.autoCompress.budget: expected at least ${need} tokens per head (policy "${r.policy}" always keeps ${what}), received ${keep}`);
  }
}
