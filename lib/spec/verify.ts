/**
 * Lossless verification of a draft tree against the target's logits for
 * every node (one target pass over the tree).
 *
 * Shapes: tree.tokens, tree.parents Int32Array [nodes]; logits f32 (or f64)
 * [nodes, vocab] row-major, row i = the target's logits for the token after
 * node i (given the committed context, node i's ancestors and node i).
 *
 * Both verifiers walk from the root: at node n (depth d) the target's token
 * y for position `position + d` is picked exactly as plain decoding picks it
 * (sampler.ts pickAt); if a child of n carries y (the first such child, in
 * index order) it is accepted and the walk goes on from it, else y is
 * emitted and the walk stops. At a leaf y is the bonus token. The rows
 * visited are the target's logits given exactly the tokens plain decoding
 * would have produced, so the emitted tokens are the plain ones.
 *
 * Why this is SpecInfer's rule for point-mass drafts (multi-step speculative
 * sampling, Miao et al. 2024, with each draft token proposed with
 * probability 1): at a node with children x1, x2, ... (target distribution P),
 * the rule accepts x1 with probability min(1, P(x1) / 1) = P(x1); on
 * rejection the residual is P with x1 zeroed, renormalised, P1 = P|y!=x1;
 * x2 is accepted with P1(x2) = P(x2) / (1 - P(x1)); and so on; with every
 * sibling rejected the correction is drawn from P restricted to the other
 * tokens, renormalised. Draw y from P once (y = inverse CDF of u):
 * Pr[y = x1] = P(x1); Pr[y = x2 | y != x1] = P(x2) / (1 - P(x1)) = P1(x2);
 * Pr[y = t | y not in {x1..xm}] = P(t) / (1 - P(x1) - ... - P(xm)) for any
 * other t: the same law, step by step. A duplicate sibling xj = xi (i < j)
 * has residual mass 0 once xi is rejected, so it is never accepted; here the
 * first child with token y is taken, the same thing. After the last accepted
 * node the bonus is drawn from that node's P, as in the rule. So the walk
 * realises the rule exactly, and because u depends only on (seed, position),
 * it emits the very tokens plain sampleAt decoding emits with that seed.
 * Drafts must not depend on the u stream (a drafter that peeks breaks this).
 */
import { rangeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { checkNodeRow, pickAt, resolveSampling, SAMPLING_OPTION_NAMES, type ResolvedSampling, type SamplingOptions } from './sampler.js';
import { checkVerifyInputs, childWithToken, logitsRow, type CheckedVerifyInputs, type DraftTree, type VerifyResult } from './tree.js';

export { verifyTypical, TYPICAL_DEFAULTS, type TypicalOptions, type TypicalVerifyResult } from './typical.js';

/** verifySampled's options: the sampler's, and where the tree sits in the sequence. */
export interface SampledVerifyOptions extends SamplingOptions {
  /** Sequence position of the root's successor (the token row 0 predicts): an integer >= 0. Node at depth d uses position + d. */
  position: number;
}

const SAMPLED_OPTION_NAMES = [...SAMPLING_OPTION_NAMES, 'position'] as const;

/** Walks the tree from the root; pick(node, depth) is the target's token after node. */
function walk(t: CheckedVerifyInputs, pick: (row: Float32Array | Float64Array, depth: number) => number): VerifyResult {
  const path = [0];
  const out: number[] = [];
  for (;;) {
    const n = path[path.length - 1]!;
    const row = logitsRow(t, n);
    checkNodeRow(n, row);
    const y = pick(row, path.length - 1);
    out.push(y);
    const c = childWithToken(t, n, y);
    if (c < 0) break;
    path.push(c);
  }
  return { acceptedNodes: Int32Array.from(path), tokens: Int32Array.from(out) };
}

/**
 * Greedy verification: accepts the longest root path whose tokens are the
 * target's argmax (lowest id on ties) at each step, then emits the argmax
 * after it. The tokens equal plain greedy decoding's.
 * tree: DraftTree [nodes]; logits [nodes, vocab].
 */
export function verifyGreedy(tree: DraftTree, logits: Float32Array | Float64Array, vocab: number): VerifyResult {
  const t = checkVerifyInputs(tree, logits, vocab);
  const greedy: ResolvedSampling = { temperature: 0, topK: 0, topP: 1, seed: 0 };
  return walk(t, (row) => pickAt(row, 0, greedy));
}

/**
 * Lossless sampled verification (SpecInfer's rule for point-mass drafts,
 * realised with the one seeded u of each position; see the file comment).
 * With the same options, the tokens equal those of plain decoding with
 * sampleAt(row, position + i, options) for i = 0, 1, ...
 * tree: DraftTree [nodes]; logits [nodes, vocab]; options.position: the
 * position of the root's successor.
 */
export function verifySampled(tree: DraftTree, logits: Float32Array | Float64Array, vocab: number, options: SampledVerifyOptions): VerifyResult {
  const t = checkVerifyInputs(tree, logits, vocab);
  const raw = checkOptions('options', options, SAMPLED_OPTION_NAMES).position;
  const position = checkInteger('options.position', raw, 0);
  const o = resolveSampling('options', options, SAMPLED_OPTION_NAMES);
  if (position + t.nodes > Number.MAX_SAFE_INTEGER) throw rangeError('options.position', `at most 2^53 - 1 - nodes (${t.nodes})`, position);
  return walk(t, (row, depth) => pickAt(row, position + depth, o));
}
