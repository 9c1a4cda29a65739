// A toy deterministic target LM and draft-tree builders for the speculative
// decoding tests (spec-verify.test.ts). The target's logits are a hash of
// the model id and the last three tokens: some rows peaked, some flat, some
// with tied maxima, some with masked (-Infinity) tokens.
import type { DraftTree } from '../../lib/spec/tree.js';
import { mulberry32 } from '../reference/random.js';

/** A 32-bit integer hash (murmur3's finaliser over a running mix). */
export function hash32(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x | 0), 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** mulberry32 (test/reference/random.ts): the tests' own randomness (never the sampler's). */
export const rng = mulberry32;

export const randInt = (r: () => number, n: number) => Math.floor(r() * n);

/** The toy target's logits [vocab] for the token after ctx. */
export function targetLogits(model: number, ctx: readonly number[], vocab: number): Float32Array {
  const n = ctx.length;
  const h = hash32(model, ctx[n - 1] ?? -1, ctx[n - 2] ?? -1, ctx[n - 3] ?? -1);
  const r = rng(h);
  const out = new Float32Array(vocab);
  const mode = h % 5;
  for (let i = 0; i < vocab; i++) out[i] = r() * (mode === 1 ? 0.3 : 1.5);
  const a = randInt(r, vocab);
  const b = (a + 1 + randInt(r, vocab - 1)) % vocab;
  if (mode === 0) out[a] = 9; // peaked
  else if (mode === 2) out[a] = out[b] = 4; // two tied maxima
  else if (mode === 3) {
    for (let i = 0; i < vocab; i++) if (r() < 0.5) out[i] = -Infinity; // masked half
    out[a] = 3;
  } else if (mode === 4) out[a] = 2.5; // mildly peaked
  return out;
}

/** Builds a tree node by node; parents come before children by construction. */
export class TreeBuilder {
  readonly tokens: number[];
  readonly parents: number[] = [-1];
  constructor(root: number) { this.tokens = [root]; }
  add(parent: number, token: number): number {
    this.tokens.push(token);
    this.parents.push(parent);
    return this.tokens.length - 1;
  }
  get size(): number { return this.tokens.length; }
  build(): DraftTree { return { tokens: Int32Array.from(this.tokens), parents: Int32Array.from(this.parents) }; }
}

/** Tokens on the path from the root (excluded) to node (included). */
export function pathTokens(tree: DraftTree, node: number): number[] {
  const out: number[] = [];
  for (let n = node; n > 0; n = tree.parents[n]!) out.push(tree.tokens[n]!);
  return out.reverse();
}

/** The target's logits for every node: [nodes, vocab], row i computed from ctx + the path to node i. */
export function treeLogits(model: number, ctx: readonly number[], tree: DraftTree, vocab: number): Float32Array {
  const out = new Float32Array(tree.tokens.length * vocab);
  for (let i = 0; i < tree.tokens.length; i++) out.set(targetLogits(model, [...ctx, ...pathTokens(tree, i)], vocab), i * vocab);
  return out;
}

/** ln(p) * temperature as f32 logits (-Infinity for p = 0): softmax(logits / temperature) = p. */
export function logitsOfProbs(p: readonly number[], temperature = 1): Float32Array {
  return Float32Array.from(p, (x) => (x > 0 ? Math.log(x) * temperature : -Infinity));
}

/**
 * Pearson's chi-square statistic of counts against probabilities (cells
 * with probability 0 must be empty: Infinity otherwise), and its degrees of freedom.
 */
export function chiSquare(counts: readonly number[], probs: ArrayLike<number>): { stat: number; df: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let stat = 0;
  let cells = 0;
  for (let i = 0; i < counts.length; i++) {
    const e = n * probs[i]!;
    if (e === 0) {
      if (counts[i]! > 0) return { stat: Infinity, df: 1 };
      continue;
    }
    cells++;
    stat += (counts[i]! - e) ** 2 / e;
  }
  return { stat, df: Math.max(1, cells - 1) };
}

/**
 * The chi-square critical value for df degrees of freedom at a one-sided
 * tail z (Wilson-Hilferty; z = 4.265 is a tail of 1e-5). With a fixed list
 * of seeds the tests are deterministic; the tail only sizes the bound.
 */
export function chiSquareBound(df: number, z = 4.265): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}
