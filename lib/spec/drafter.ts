/**
 * The drafter contract of speculative decoding: a drafter proposes a tree of
 * tokens, the target model runs the whole tree in one forward (tree mask),
 * verification (lib/spec/verify.ts) accepts a root-to-node path.
 */
import { rangeError, typeError } from '../errors.js';
import type { DraftTree } from './tree.js';

/**
 * The draft (lib/spec/tree.ts, shared with the verifiers): node 0 is the
 * root = the last accepted token (not yet run by the target); parents[0] =
 * -1, parents[i] in [0, i) for i >= 1. Shapes: tokens and parents int32
 * [nodes]. The built-in drafters give siblings distinct tokens.
 */
export type { DraftTree };

export interface Drafter {
  readonly name: string;
  /** A tree rooted at context[context.length - 1]; at most maxNodes nodes including the root. */
  draft(context: Int32Array, maxNodes?: number): DraftTree;
  /** After the target ran the tree: its logits f32 [nodes, vocab] at every node (row i = distribution of the token after node i). */
  update?(tree: DraftTree, logits: Float32Array, vocab: number): void;
}

/** The largest vocabulary the drafters accept (token ids are int32; a Token Recycling table of 8 slots is then 512 MiB). */
export const MAX_VOCAB = 1 << 24;

/** A positive integer vocabulary size in [1, MAX_VOCAB]. */
export function checkVocab(vocab: unknown, arg = 'vocab'): number {
  if (typeof vocab !== 'number') throw typeError(arg, `an integer in [1, ${MAX_VOCAB}]`, vocab);
  if (!Number.isInteger(vocab) || vocab < 1 || vocab > MAX_VOCAB) throw rangeError(arg, `an integer in [1, ${MAX_VOCAB}]`, vocab);
  return vocab;
}

/** Int32Array or an array of integers -> Int32Array (a copy only for plain arrays); anything else is a TypeError. */
function int32Field(value: unknown, arg: string): Int32Array {
  if (value instanceof Int32Array) return value;
  if (Array.isArray(value)) {
    const out = new Int32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
        throw typeError(`${arg}[${i}]`, 'an int32 integer', v);
      }
      out[i] = v;
    }
    return out;
  }
  throw typeError(arg, 'an Int32Array (or an array of integers)', value);
}

/**
 * Validates a draft tree against `vocab` and returns it with Int32Array
 * fields (plain integer arrays are converted). Errors name `arg.tokens[i]` /
 * `arg.parents[i]` and say what was expected: equal non-zero lengths,
 * parents[0] = -1, parents[i] in [0, i), tokens in [0, vocab), distinct
 * sibling tokens.
 */
export function checkDraftTree(tree: unknown, vocab: number, arg = 'tree'): DraftTree {
  checkVocab(vocab, 'vocab');
  if (tree === null || typeof tree !== 'object' || Array.isArray(tree)) throw typeError(arg, 'an object { tokens, parents }', tree);
  const t = tree as { tokens?: unknown; parents?: unknown };
  const tokens = int32Field(t.tokens, `${arg}.tokens`);
  const parents = int32Field(t.parents, `${arg}.parents`);
  if (tokens.length < 1) throw rangeError(`${arg}.tokens`, 'at least the root node', tokens);
  if (parents.length !== tokens.length) throw rangeError(`${arg}.parents`, `${tokens.length} entries (one per token)`, parents);
  if (parents[0] !== -1) throw rangeError(`${arg}.parents[0]`, '-1 (the root)', parents[0]);
  // Children seen so far, keyed by parent * vocab + token (fits a double: both < 2^31 and 2^24).
  const seen = new Map<number, number>();
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok < 0 || tok >= vocab) throw rangeError(`${arg}.tokens[${i}]`, `a token in [0, ${vocab})`, tok);
    if (i === 0) continue;
    const p = parents[i]!;
    if (p < 0 || p >= i) throw rangeError(`${arg}.parents[${i}]`, `a parent index in [0, ${i})`, p);
    const key = p * vocab + tok;
    const twin = seen.get(key);
    if (twin !== undefined) {
      throw rangeError(`${arg}.tokens[${i}]`, `a token distinct from its sibling ${arg}.tokens[${twin}] (both under node ${p})`, tok);
    }
    seen.set(key, i);
  }
  return tokens === t.tokens && parents === t.parents ? (tree as DraftTree) : { tokens, parents };
}

/** A non-empty Int32Array context whose last token is in [0, vocab) when vocab is given. */
export function checkContext(context: unknown, arg = 'context', vocab?: number): Int32Array {
  if (!(context instanceof Int32Array)) throw typeError(arg, 'an Int32Array of token ids', context);
  if (context.length < 1) throw rangeError(arg, 'at least one token (the root of the draft)', context);
  const last = context[context.length - 1]!;
  if (last < 0 || (vocab !== undefined && last >= vocab)) {
    throw rangeError(`${arg}[${context.length - 1}]`, `a token in [0, ${vocab ?? 2 ** 31})`, last);
  }
  return context;
}

/** maxNodes: undefined -> fallback, else an integer in [1, limit]. */
export function checkMaxNodes(maxNodes: unknown, fallback: number, limit = 1 << 20, arg = 'maxNodes'): number {
  if (maxNodes === undefined) return fallback;
  if (typeof maxNodes !== 'number') throw typeError(arg, `an integer in [1, ${limit}]`, maxNodes);
  if (!Number.isInteger(maxNodes) || maxNodes < 1 || maxNodes > limit) throw rangeError(arg, `an integer in [1, ${limit}]`, maxNodes);
  return maxNodes;
}
