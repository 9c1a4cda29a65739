/**
 * KV eviction policies: one config type each, with defaults. Each maps to one
 * scoring function in native/kv/policy_<name>.cpp, registered in
 * native/kv/policy_registry.cpp. Scores are f32 [nKvHeads, nKv], higher = keep.
 */
import { typeError } from '../errors.js';
import { checkInteger, checkOptions, closestName } from '../validate.js';

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

export type KvPolicyConfig = StreamingLlmPolicy | KnormPolicy | RandomPolicy | TovaPolicy | H2oPolicy | SnapKvPolicy;
export type KvPolicyName = KvPolicyConfig['name'];
/** A policy: its name (all defaults) or a config object. */
export type KvPolicy = KvPolicyName | KvPolicyConfig;

export const KV_POLICY_NAMES: readonly KvPolicyName[] = ['streamingllm', 'knorm', 'random', 'tova', 'h2o', 'snapkv'];

/** Defaults of every option, per policy. */
export const KV_POLICY_DEFAULTS = {
  streamingllm: { sinks: 4 },
  knorm: {},
  random: { seed: 0 },
  tova: {},
  h2o: { recent: 32 },
  snapkv: { window: 32, kernel: 5, pooling: 'avg' },
} as const;

/** Policies that cannot score without queries (h2o needs queries or keyMass). */
export const KV_NEEDS_QUERIES: ReadonlySet<KvPolicyName> = new Set(['tova', 'snapkv']);

/** A validated policy with every option filled in (the native parameters). */
export interface ResolvedPolicy {
  name: KvPolicyName;
  sinks: number;
  recent: number;
  window: number;
  kernel: number;
  pooling: 'avg' | 'max';
  seed: number | undefined;
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
  const out: ResolvedPolicy = { name, sinks: 4, recent: 32, window: 32, kernel: 5, pooling: 'avg', seed: undefined };
  if (cfg.sinks !== undefined) out.sinks = checkInteger('policy.sinks', cfg.sinks, 0);
  if (cfg.recent !== undefined) out.recent = checkInteger('policy.recent', cfg.recent, 0);
  if (cfg.window !== undefined) out.window = checkInteger('policy.window', cfg.window, 1);
  if (cfg.kernel !== undefined) out.kernel = checkInteger('policy.kernel', cfg.kernel, 1);
  if (cfg.pooling !== undefined) {
    if (cfg.pooling !== 'avg' && cfg.pooling !== 'max') throw typeError('policy.pooling', "'avg' | 'max'", cfg.pooling);
    out.pooling = cfg.pooling;
  }
  if (cfg.seed !== undefined) out.seed = checkInteger('policy.seed', cfg.seed, 0);
  return out;
}
