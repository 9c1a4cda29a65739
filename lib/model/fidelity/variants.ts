/**
 * What the real-model evaluation compares, by name:
 *
 *   <policy>        every scoring and cache policy (KV_POLICY_NAMES, KV_CACHE_POLICY_NAMES),
 *                   evicting to each budget
 *   <policy>+merge  the same with evicted tokens merged into their nearest kept
 *                   token (MergeablePolicy merge: true; not razor, which
 *                   always compensates, nor ems, which merges by default)
 *   int8, int4      a KIVI-quantized cache of the whole context, no eviction
 *   quest, blocks, tidal   sparse decoding (every token kept; each decoded
 *                   byte attends `keep` rows per KV head and layer, selected
 *                   by the cache: KvCache.attend's `sparse`), with options as
 *                   in `eval kv`'s synthetic runs (quest:pageSize=8, ...)
 */
import { KV_POLICY_NAMES } from '../../kv/policies.js';
import { KV_CACHE_POLICY_NAMES, type KvCompressionPolicy } from '../../kv/compression.js';
import { closestName } from '../../validate.js';
import { parseSparseSpec, sparseEvalMethodNames, type SparseSpec } from '../../kv/eval/sparse.js';

export type RealVariant =
  | { kind: 'evict'; name: string; policy: KvCompressionPolicy }
  | { kind: 'quant'; name: 'int8' | 'int4'; dtype: 'int8' | 'int4' }
  | { kind: 'sparse'; name: string; spec: SparseSpec };

const POLICIES: readonly string[] = [...KV_POLICY_NAMES, ...KV_CACHE_POLICY_NAMES];
const NO_MERGE = ['razor', 'ems'];

/** Every name parseVariant accepts. */
export const REAL_VARIANT_NAMES: readonly string[] = [
  ...POLICIES,
  ...POLICIES.filter((p) => !NO_MERGE.includes(p)).map((p) => `${p}+merge`),
  'int8', 'int4',
  ...sparseEvalMethodNames(),
];

/** The default set: every policy, three merging variants, both integer caches. */
export const DEFAULT_REAL_VARIANTS: readonly string[] = [
  ...POLICIES, 'snapkv+merge', 'tova+merge', 'h2o+merge', 'int8', 'int4', ...sparseEvalMethodNames(),
];

/** A variant by name (see the module comment); TypeError naming the known names otherwise. */
export function parseVariant(name: string, arg = 'policy'): RealVariant {
  if (name === 'int8' || name === 'int4') return { kind: 'quant', name, dtype: name };
  let spec: SparseSpec | undefined;
  try {
    spec = parseSparseSpec(name);
  } catch (e) {
    const err = e as Error;
    throw new (err.constructor as ErrorConstructor)(`${arg}: ${err.message}`);
  }
  if (spec) return { kind: 'sparse', name, spec };
  if (POLICIES.includes(name)) return { kind: 'evict', name, policy: name as KvCompressionPolicy };
  if (name.endsWith('+merge')) {
    const base = name.slice(0, -'+merge'.length);
    if (POLICIES.includes(base) && !NO_MERGE.includes(base)) {
      return { kind: 'evict', name, policy: { name: base, merge: true } as KvCompressionPolicy };
    }
  }
  const best = closestName(name, REAL_VARIANT_NAMES);
  throw new TypeError(`${arg}: unknown policy "${name}"${best ? ` (did you mean "${best}"?)` : ''}; known: ${REAL_VARIANT_NAMES.join(', ')}`);
}
