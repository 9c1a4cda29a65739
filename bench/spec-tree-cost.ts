/**
 * The cost of verifying a token tree (part of `tokenpress bench spec`,
 * bench/spec.ts): one attention pass of an n-node tree (nQ = n queries
 * under the tree mask) over a cache of `tokens` committed tokens, against a
 * single-token decode step (nQ = 1) over the same cache, f16 K/V
 * [kvHeads, tokens + n, headDim], interleaved, medians. The ratio is what a
 * speculative step pays in attention for verifying n nodes at once.
 *
 * Roofs from the machine limits measured in the same run: a decode step
 * reads K + V once (bytes / read bandwidth); the tree pass reads the same
 * bytes and does n times the FLOPs (4 * heads * n * keys * headDim: the
 * scores and P.V), so its roof is max(bytes / bandwidth, FLOPs / FMA peak).
 */
import { attention, type Tensor } from '../lib/index.js';
import { f16Block, median, randomBlock } from './common.js';

export interface TreeCostRow {
  tokens: number;
  nodes: number;
  /** Median ms of one decode step (nQ 1) and of one tree pass (nQ = nodes). */
  stepMs: number;
  treeMs: number;
  /** treeMs / stepMs (goal <= 1.5 at 32k for 80 nodes + the root). */
  ratio: number;
  /** Roofs (ms) from the measured read bandwidth and FMA peak. */
  stepRoofMs: number;
  treeRoofMs: number;
}

export interface TreeCostConfig {
  kvHeads: number;
  heads: number;
  headDim: number;
  reps: number;
}

/**
 * One row per cache size: `parents` is the tree (node 0 the root, -1; the
 * others an earlier node), the newest parents.length keys of the cache.
 */
export function measureTreeCost(sizes: number[], parents: Int32Array, cfg: TreeCostConfig, readBytesPerS: number, fmaFlopsPerS: number): TreeCostRow[] {
  const n = parents.length;
  const { kvHeads, heads, headDim, reps } = cfg;
  return sizes.map((tokens) => {
    const keys = tokens + n;
    const k: Tensor<'f16'> = { dtype: 'f16', shape: [kvHeads, keys, headDim], data: f16Block(kvHeads * keys * headDim, 1) };
    const v: Tensor<'f16'> = { dtype: 'f16', shape: [kvHeads, keys, headDim], data: f16Block(kvHeads * keys * headDim, 2) };
    const q1: Tensor<'f32'> = { dtype: 'f32', shape: [heads, 1, headDim], data: randomBlock(heads * headDim, 3) };
    const qT: Tensor<'f32'> = { dtype: 'f32', shape: [heads, n, headDim], data: randomBlock(heads * n * headDim, 4) };
    const out1 = new Float32Array(heads * headDim);
    const outT = new Float32Array(heads * n * headDim);
    // The decode step: the committed tokens plus the root, one query.
    const stepK: Tensor<'f16'> = { dtype: 'f16', shape: [kvHeads, tokens + 1, headDim], data: f16Block(kvHeads * (tokens + 1) * headDim, 5) };
    const stepV: Tensor<'f16'> = { dtype: 'f16', shape: [kvHeads, tokens + 1, headDim], data: f16Block(kvHeads * (tokens + 1) * headDim, 6) };
    const step = () => attention(q1, stepK, stepV, { out: out1 });
    const tree = () => attention(qT, k, v, { treeMask: parents, out: outT });
    step(); tree();
    const ts: number[] = [], tt: number[] = [];
    for (let r = 0; r < reps; r++) {
      const order = r % 2 === 0 ? [step, tree] : [tree, step];
      for (const f of order) {
        const t0 = performance.now();
        f();
        (f === step ? ts : tt).push(performance.now() - t0);
      }
    }
    const stepMs = median(ts), treeMs = median(tt);
    const bytes = 2 * kvHeads * keys * headDim * 2;
    const flops = 4 * heads * n * keys * headDim;
    return {
      tokens, nodes: n, stepMs, treeMs, ratio: treeMs / stepMs,
      stepRoofMs: ((2 * kvHeads * (tokens + 1) * headDim * 2) / readBytesPerS) * 1e3,
      treeRoofMs: Math.max(bytes / readBytesPerS, flops / fmaFlopsPerS) * 1e3,
    };
  });
}
