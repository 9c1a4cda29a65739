/**
 * The draft tree shared by the drafters (lib/spec/drafter.ts re-exports it)
 * and the verifiers (lib/spec/verify.ts), and the checks of a tree and its
 * target logits.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger } from '../validate.js';

/** A draft: node 0 is the root = the last accepted token (not yet run by the target); parents[0] = -1, parents[i] in [0, i) for i >= 1. */
export interface DraftTree { tokens: Int32Array; parents: Int32Array; }

/** What every verifier returns. */
export interface VerifyResult {
  /** The accepted root-to-node path, root first: [0, n1, n2, ...]; parents[n1] = 0, parents[n2] = n1, ... */
  acceptedNodes: Int32Array;
  /** tokens[n1], tokens[n2], ... then one new token (the correction, or the bonus after a fully accepted path): acceptedNodes.length of them. */
  tokens: Int32Array;
}

/** A validated tree and logits, with each node's children listed in index order (CSR). */
export interface CheckedVerifyInputs {
  tokens: Int32Array;
  parents: Int32Array;
  nodes: number;
  vocab: number;
  /** Row-major [nodes, vocab]: row i is the target's distribution of the token after node i. */
  logits: Float32Array | Float64Array;
  /** Children of node n: childIds[childStart[n] .. childStart[n + 1]), ascending. */
  childStart: Int32Array;
  childIds: Int32Array;
}

/** Largest vocabulary accepted (token ids are Int32). */
export const MAX_VOCAB = 0x7fffffff;

/** An Int32Array, or an array of integers copied into one; each element checked by `ok`. */
function int32s(arg: string, value: unknown, expected: string, ok: (v: number, i: number) => boolean): Int32Array {
  let out: Int32Array;
  if (value instanceof Int32Array) out = value;
  else if (Array.isArray(value)) {
    out = new Int32Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff) throw rangeError(`${arg}[${i}]`, expected, v);
      out[i] = v;
    }
  } else throw typeError(arg, 'an Int32Array (or an array of integers)', value);
  for (let i = 0; i < out.length; i++) if (!ok(out[i]!, i)) throw rangeError(`${arg}[${i}]`, expected, out[i]);
  return out;
}

/**
 * Checks a draft tree (shape, parents, tokens in [0, vocab)) and its logits
 * (Float32Array or Float64Array of nodes * vocab), and lists the children.
 * Throws TypeError / RangeError naming the argument; never reads past an array.
 */
export function checkVerifyInputs(tree: unknown, logits: unknown, vocab: unknown): CheckedVerifyInputs {
  const v = checkInteger('vocab', vocab, 1, MAX_VOCAB);
  if (tree === null || typeof tree !== 'object') throw typeError('tree', 'a draft tree { tokens, parents }', tree);
  const t = tree as Record<string, unknown>;
  const rawTokens = t.tokens;
  const rawParents = t.parents;
  const tokens = int32s('tree.tokens', rawTokens, `a token id in [0, ${v - 1}] (vocab = ${v})`, (x) => x >= 0 && x < v);
  const parents = int32s('tree.parents', rawParents, 'parents[0] = -1 and parents[i] in [0, i) (a parent before its child)',
    (p, i) => (i === 0 ? p === -1 : p >= 0 && p < i));
  const nodes = tokens.length;
  if (nodes === 0) throw rangeError('tree.tokens', 'at least one node (the root)', rawTokens);
  if (parents.length !== nodes) throw rangeError('tree.parents.length', `tree.tokens.length = ${nodes}`, parents.length);
  if (!(logits instanceof Float32Array) && !(logits instanceof Float64Array)) {
    throw typeError('logits', `a Float32Array (or Float64Array) of nodes x vocab = ${nodes} x ${v}`, logits);
  }
  if (logits.length !== nodes * v) throw rangeError('logits.length', `nodes x vocab = ${nodes} x ${v} = ${nodes * v}`, logits.length);
  const childStart = new Int32Array(nodes + 1);
  for (let i = 1; i < nodes; i++) childStart[parents[i]! + 1]!++;
  for (let n = 0; n < nodes; n++) childStart[n + 1]! += childStart[n]!;
  const fill = childStart.slice(0, nodes);
  const childIds = new Int32Array(Math.max(0, nodes - 1));
  for (let i = 1; i < nodes; i++) childIds[fill[parents[i]!]!++] = i;
  return { tokens, parents, nodes, vocab: v, logits, childStart, childIds };
}

/** The first child of `node` (lowest index) whose token is `token`, or -1. */
export function childWithToken(t: CheckedVerifyInputs, node: number, token: number): number {
  for (let j = t.childStart[node]!; j < t.childStart[node + 1]!; j++) {
    const c = t.childIds[j]!;
    if (t.tokens[c] === token) return c;
  }
  return -1;
}

/** Row `node` of the logits: the target's logits for the token after node. */
export function logitsRow(t: CheckedVerifyInputs, node: number): Float32Array | Float64Array {
  return t.logits.subarray(node * t.vocab, (node + 1) * t.vocab);
}
