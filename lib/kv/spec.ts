/**
 * Speculative decoding on a KvCache: the argument checks of the tree attend
 * (opts.treeMask), commit and rollback (native/kv/kv_cache_spec.cpp does the
 * work). Each reads the caller's values once, into an Int32Array, before any
 * other check runs: a getter or Proxy cannot change what was checked.
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger } from '../validate.js';
import { MAX_TREE_NODES, readParents } from '../attention.js';

function isIndexList(value: unknown): value is Int32Array | readonly unknown[] {
  return value instanceof Int32Array || Array.isArray(value);
}

/**
 * opts.treeMask: a parent array (Int32Array or number[]), parents[i] = -1 (a
 * root) or an earlier node index. Returns a copy; its length is checked
 * against nQ by checkTreeLength once q is known.
 */
export function readTreeMask(arg: string, value: unknown): Int32Array {
  if (!isIndexList(value)) throw typeError(arg, 'a parent array (Int32Array or number[]) of length nQ', value);
  const n = value.length;
  if (n < 1 || n > MAX_TREE_NODES) throw rangeError(`${arg}.length`, `1 to ${MAX_TREE_NODES} tree nodes`, n);
  return readParents(arg, value);
}

export function checkTreeLength(arg: string, parents: Int32Array, nQ: number): void {
  if (parents.length !== nQ) throw rangeError(`${arg}.length`, `nQ = ${nQ} (one parent per query; the queries are the tree's nodes)`, parents.length);
}

/**
 * commit's acceptedNodes: ascending, distinct node indices in [0, treeSize)
 * (a root-to-leaf path in a real step; empty keeps no node).
 */
export function readAcceptedNodes(arg: string, value: unknown, treeSize: number): Int32Array {
  if (!isIndexList(value)) throw typeError(arg, `an ascending list (Int32Array or number[]) of tree node indices in [0, ${treeSize - 1}]`, value);
  const n = value.length;
  if (n > treeSize) throw rangeError(`${arg}.length`, `at most treeSize = ${treeSize} nodes`, n);
  const nodes = new Int32Array(n);
  for (let j = 0; j < n; j++) {
    const x = value[j];
    const lo = j === 0 ? 0 : nodes[j - 1]! + 1;
    if (typeof x !== 'number') throw typeError(`${arg}[${j}]`, 'a node index (an integer)', x);
    if (!Number.isInteger(x) || x < lo || x >= treeSize) {
      const why = j > 0 && Number.isInteger(x) && x < lo ? ' (ascending, no duplicates)' : '';
      throw rangeError(`${arg}[${j}]`, `a node index in [${lo}, ${treeSize - 1}]${why}`, x);
    }
    nodes[j] = x;
  }
  return nodes;
}

/** opts.layers of commit / rollback: distinct layer indices (absent: all layers). */
export function readLayers(arg: string, value: unknown, nLayers: number): Int32Array | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw typeError(arg, 'an array of layer indices', value);
  const seen = new Set<number>();
  const out = new Int32Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const x = checkInteger(`${arg}[${i}]`, value[i], 0, nLayers - 1);
    if (seen.has(x)) throw rangeError(`${arg}[${i}]`, 'distinct layer indices', x);
    seen.add(x);
    out[i] = x;
  }
  return out;
}

/** Every head of the named layers must hold the tree: its newest treeSize tokens. */
export function checkHeadsHold(arg: string, n: number, lengths: Int32Array, nKvHeads: number, layers: Int32Array | undefined, what: string): void {
  const nLayers = lengths.length / nKvHeads;
  const list = layers ?? Int32Array.from({ length: nLayers }, (_, l) => l);
  for (const l of list) {
    for (let h = 0; h < nKvHeads; h++) {
      const len = lengths[l * nKvHeads + h]!;
      if (n > len) throw rangeError(arg, `at most ${len} ${what} (layer ${l} head ${h} holds ${len} tokens)`, n);
    }
  }
}
