/**
 * KV eviction policies: one config type each, with defaults. Each maps to one
 * scoring function in native/kv/policy_<name>.cpp, registered in
 * native/kv/policy_registry.cpp. Scores are f32 [nKvHeads, nKv], higher = keep.
 */
import type { NativeKvPolicyOptions } from '../native.js';
import { rangeError, typeError } from '../errors.js';
import { checkBoolean, checkInteger, checkNumber, checkOptions, closestName } from '../validate.js';

/** Keep the first `sinks` tokens (attention sinks) and the most recent ones. */
export interface StreamingLlmPolicy { name: 'streamingllm'; /** default 4 */ sinks?: number }
/** Keep the keys with the smallest L2 norm (score = -||k||). */
export interface KnormPolicy { name: 'knorm' }
/** Random scores, deterministic per seed (the floor). */
export interface RandomPolicy { name: 'random'; /** default: inputs.seed, else 0 */ seed?: number }
/** Attention of the last query, averaged over the group's query heads. Needs queries. */
export interface TovaPolicy { name: 'tova' }
/**
 * Accumulated attention (inputs.keyMass, else the causal key mass of
 * inputs.queries) with the last `recent` tokens forced kept.
 */
export interface H2oPolicy { name: 'h2o'; /** default 32 */ recent?: number }
/**
 * Attention of the last `window` queries (causal), averaged over them and the
 * group's heads, pooled over `kernel` positions; the window is forced kept.
 * Needs queries.
 */
export interface SnapKvPolicy {
  name: 'snapkv';
  /** default 32 */ window?: number;
  /** default 5 */ kernel?: number;
  /** default 'avg' */ pooling?: 'avg' | 'max';
}

/**
 * Expected Attention (kvpress ExpectedAttentionPress): future queries modelled
 * as a Gaussian with the mean and covariance of inputs.queries (rows at
 * positions < sinks left out); score = softmax over the non-sink keys of
 * mu.k/sqrt(d) + k^T S k/(2d), averaged over the group's heads, then
 * (score + epsilon) * ||v||. The first `sinks` keys are forced kept. Uses the
 * given (already rotated) queries as they are: no RoPE extrapolation to future
 * positions (the stateless API has no positions). Needs queries.
 */
export interface ExpectedAttentionPolicy {
  name: 'expected_attention';
  /** default 4 (kvpress n_sink) */ sinks?: number;
  /** default 0; added before the value-norm factor (only with useVnorm) */ epsilon?: number;
  /** default true; false: the mean query only */ useCovariance?: boolean;
  /** default true; multiply by ||v|| */ useVnorm?: boolean;
}
/**
 * SpecKV (Galim et al. 2025): attention of draft / lookahead queries
 * (inputs.draftQueries, which see every key) plus the last `window` prompt
 * queries when inputs.queries is given, reduced over those rows and the
 * group's heads (`reduction`), pooled over `kernel` positions (`pooling`); the
 * prompt window is forced kept. Needs draftQueries.
 */
export interface SpecKvPolicy {
  name: 'speckv';
  /** default 32 (prompt queries in the observation window) */ window?: number;
  /** default 7 */ kernel?: number;
  /** default 'max' */ pooling?: 'avg' | 'max';
  /** default 'max': over the observation rows and the group's heads */ reduction?: 'mean' | 'max';
}
/**
 * EMS Global-Local score (the scoring half; the evict-then-merge step is
 * separate): global = accumulated attention (inputs.keyMass, else the causal
 * key mass of all queries), local = attention of the last `window` queries,
 * each normalised to sum 1 per head, combined by `combine`; the window is
 * forced kept. Needs queries.
 */
export interface EmsPolicy {
  name: 'ems';
  /** default 32 */ window?: number;
  /** default 'mean' (additive: the two distributions averaged) */ combine?: 'mean' | 'max';
}

export type KvPolicyConfig =
  | StreamingLlmPolicy | KnormPolicy | RandomPolicy | TovaPolicy | H2oPolicy | SnapKvPolicy
  | ExpectedAttentionPolicy | SpecKvPolicy | EmsPolicy;
export type KvPolicyName = KvPolicyConfig['name'];
/** A policy: its name (all defaults) or a config object. */
export type KvPolicy = KvPolicyName | KvPolicyConfig;

export const KV_POLICY_NAMES: readonly KvPolicyName[] = [
  'streamingllm', 'knorm', 'random', 'tova', 'h2o', 'snapkv', 'expected_attention', 'speckv', 'ems',
];

/** Defaults of every option, per policy. */
export const KV_POLICY_DEFAULTS = {
  streamingllm: { sinks: 4 },
  knorm: {},
  random: { seed: 0 },
  tova: {},
  h2o: { recent: 32 },
  snapkv: { window: 32, kernel: 5, pooling: 'avg' },
  expected_attention: { sinks: 4, epsilon: 0, useCovariance: true, useVnorm: true },
  speckv: { window: 32, kernel: 7, pooling: 'max', reduction: 'max' },
  ems: { window: 32, combine: 'mean' },
} as const;

/** Policies that cannot score without queries (h2o needs queries or keyMass). */
export const KV_NEEDS_QUERIES: ReadonlySet<KvPolicyName> = new Set(['tova', 'snapkv', 'expected_attention', 'ems']);

/** Policies that cannot score without draftQueries. */
export const KV_NEEDS_DRAFT_QUERIES: ReadonlySet<KvPolicyName> = new Set(['speckv']);

/** A validated policy with every option filled in (the native parameters). */
export interface ResolvedPolicy {
  name: KvPolicyName;
  sinks: number;
  recent: number;
  window: number;
  kernel: number;
  pooling: 'avg' | 'max';
  seed: number | undefined;
  epsilon: number;
  useCovariance: boolean;
  useVnorm: boolean;
  /** speckv's reduction, or ems's combine */
  reduction: 'mean' | 'max';
}

function checkEnum<T extends string>(arg: string, value: unknown, allowed: readonly T[]): T {
  if (!(allowed as readonly unknown[]).includes(value)) throw typeError(arg, allowed.map((a) => `'${a}'`).join(' | '), value);
  return value as T;
}

function checkName(value: unknown): KvPolicyName {
  if (typeof value !== 'string') throw typeError('policy.name', `one of ${KV_POLICY_NAMES.join(', ')}`, value);
  if ((KV_POLICY_NAMES as readonly string[]).includes(value)) return value as KvPolicyName;
  const best = closestName(value, KV_POLICY_NAMES);
  const hint = best ? ` (did you mean "${best}"?)` : '';
  throw new TypeError(`policy: unknown policy "${value}"${hint}; known policies: ${KV_POLICY_NAMES.join(', ')}`);
}

/** Validates a policy argument (name or config) and fills in defaults. */
export function resolvePolicy(policy: unknown): ResolvedPolicy {
  let cfg: Record<string, unknown>;
  if (typeof policy === 'string') cfg = { name: policy };
  else if (policy !== null && typeof policy === 'object' && !Array.isArray(policy)) cfg = policy as Record<string, unknown>;
  else throw typeError('policy', `a policy name (${KV_POLICY_NAMES.join(', ')}) or { name, ...options }`, policy);
  const name = checkName(cfg.name);
  const known = ['name', ...Object.keys(KV_POLICY_DEFAULTS[name])];
  checkOptions(`policy (${name})`, cfg, known);
  // Every native field gets a value; this policy's own defaults win.
  const out: ResolvedPolicy = {
    name, sinks: 4, recent: 32, window: 32, kernel: 5, pooling: 'avg', seed: undefined,
    epsilon: 0, useCovariance: true, useVnorm: true, reduction: 'max',
  };
  const defaults = KV_POLICY_DEFAULTS[name] as Record<string, unknown>;
  const value = (key: string): unknown => (cfg[key] !== undefined ? cfg[key] : defaults[key]);
  if (value('sinks') !== undefined) out.sinks = checkInteger('policy.sinks', value('sinks'), 0);
  if (value('recent') !== undefined) out.recent = checkInteger('policy.recent', value('recent'), 0);
  if (value('window') !== undefined) out.window = checkInteger('policy.window', value('window'), 1);
  if (value('kernel') !== undefined) out.kernel = checkInteger('policy.kernel', value('kernel'), 1);
  if (value('pooling') !== undefined) out.pooling = checkEnum('policy.pooling', value('pooling'), ['avg', 'max'] as const);
  if (cfg.seed !== undefined) out.seed = checkInteger('policy.seed', cfg.seed, 0);
  if (value('epsilon') !== undefined) {
    out.epsilon = checkNumber('policy.epsilon', value('epsilon'));
    if (out.epsilon < 0) throw rangeError('policy.epsilon', 'a finite number >= 0', out.epsilon);
  }
  if (value('useCovariance') !== undefined) out.useCovariance = checkBoolean('policy.useCovariance', value('useCovariance'), true);
  if (value('useVnorm') !== undefined) out.useVnorm = checkBoolean('policy.useVnorm', value('useVnorm'), true);
  if (value('reduction') !== undefined) out.reduction = checkEnum('policy.reduction', value('reduction'), ['mean', 'max'] as const);
  if (value('combine') !== undefined) out.reduction = checkEnum('policy.combine', value('combine'), ['mean', 'max'] as const);
  return out;
}

/** The native option fields of a resolved policy (seed: the policy's, else `seed`). */
export function policyOptions(p: ResolvedPolicy, seed = 0): NativeKvPolicyOptions {
  return {
    sinks: p.sinks, recent: p.recent, window: p.window, kernel: p.kernel,
    pooling: p.pooling === 'max' ? 1 : 0,
    seed: p.seed ?? seed,
    epsilon: p.epsilon, useCovariance: p.useCovariance, useVnorm: p.useVnorm,
    reduction: p.reduction === 'max' ? 1 : 0,
  };
}
