/**
 * Medusa's typical acceptance (Cai et al. 2024), LOSSY: the accepted text
 * is plausible under the target but is not distributed as the target's
 * samples (nor equal to greedy decoding at temperature > 0).
 *
 * Source: FasterDecoding/Medusa, medusa/model/utils.py evaluate_posterior
 * (sampling = 'typical', fast = True, the defaults of medusa_generate in
 * medusa/model/medusa_model.py). For a candidate token x drafted after a
 * node whose target row is P = softmax(logits / temperature):
 *   H = -sum_t P(t) * ln(P(t) + 1e-5)
 *   accept x  iff  P(x) > min(posteriorThreshold, posteriorAlpha * exp(-H))
 * A candidate's accept length is its longest accepted prefix; the longest
 * wins, ties broken by the larger sum of ln P(x) over the accepted tokens.
 * Temperature 0 accepts x iff x is the argmax (Medusa's greedy branch).
 * The new token is the argmax of the last accepted node's row (medusa_generate
 * with fast = True takes the next root token by argmax, generate_candidates).
 *
 * Defaults as medusa_generate passes them: posterior_threshold 0.09,
 * posterior_alpha 0.3 (its comment: "recommended to be sqrt(posterior_threshold)");
 * utils.py's own signatures default to the swapped pair (0.3, 0.09), which
 * medusa_generate overrides. Temperature 0.7 is the Medusa CLI's default.
 *
 * Where we differ: Medusa scores the padded root-to-leaf paths of a fixed
 * tree (shorter paths padded with token 0, scored like drafted tokens);
 * here every root-to-node path is a candidate, without padding, and among
 * equal (length, likelihood) the path ending at the lowest node index wins
 * (Medusa: the first in its own candidate order). Probabilities are f64.
 */
import { rangeError } from '../errors.js';
import { checkNumber, checkOptions } from '../validate.js';
import { checkNodeRow, distributionOf, pickAt, type ResolvedSampling } from './sampler.js';
import { checkVerifyInputs, logitsRow, type DraftTree, type VerifyResult } from './tree.js';

export interface TypicalOptions {
  /** Softmax temperature, >= 0; default 0.7 (Medusa's CLI). 0: accept only argmax tokens. */
  temperature?: number;
  /** Medusa's posterior_threshold (epsilon), >= 0; default 0.09. */
  posteriorThreshold?: number;
  /** Medusa's posterior_alpha (delta), >= 0; default 0.3 = sqrt(0.09). */
  posteriorAlpha?: number;
}

/** A typical-acceptance result: `lossy: true` says the tokens are not the target's exact samples. */
export interface TypicalVerifyResult extends VerifyResult { lossy: true }

export const TYPICAL_DEFAULTS = Object.freeze({ temperature: 0.7, posteriorThreshold: 0.09, posteriorAlpha: 0.3 });

const OPTION_NAMES = ['temperature', 'posteriorThreshold', 'posteriorAlpha'] as const;

function nonNegative(arg: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const x = checkNumber(arg, value);
  if (x < 0) throw rangeError(arg, 'a number >= 0', x);
  return x;
}

/** Medusa's acceptance bound for one row of probabilities. */
function typicalBound(p: Float64Array, threshold: number, alpha: number): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) h -= p[i]! * Math.log(p[i]! + 1e-5);
  return Math.min(threshold, alpha * Math.exp(-h));
}

/**
 * LOSSY typical acceptance over a draft tree (Medusa; see the file comment).
 * tree: DraftTree [nodes]; logits [nodes, vocab]. Returns the longest
 * accepted root path (likelihood breaks ties) and the argmax after it.
 */
export function verifyTypical(tree: DraftTree, logits: Float32Array | Float64Array, vocab: number, options: TypicalOptions = {}): TypicalVerifyResult {
  const t = checkVerifyInputs(tree, logits, vocab);
  const o = checkOptions('options', options, OPTION_NAMES) as TypicalOptions;
  const temperature = nonNegative('options.temperature', o.temperature, TYPICAL_DEFAULTS.temperature);
  const threshold = nonNegative('options.posteriorThreshold', o.posteriorThreshold, TYPICAL_DEFAULTS.posteriorThreshold);
  const alpha = nonNegative('options.posteriorAlpha', o.posteriorAlpha, TYPICAL_DEFAULTS.posteriorAlpha);
  const dist: ResolvedSampling = { temperature, topK: 0, topP: 1, seed: 0 };

  // Nodes are in topological order (parents[i] < i): one forward sweep sees
  // each accepted parent before its children. depth < 0: not accepted.
  const depth = new Int32Array(t.nodes).fill(-1);
  const logLik = new Float64Array(t.nodes);
  depth[0] = 0;
  // Longer first, then the larger log-likelihood, then the lower index.
  const better = (a: number, b: number) => depth[a]! !== depth[b]! ? depth[a]! > depth[b]!
    : logLik[a] !== logLik[b] ? logLik[a]! > logLik[b]! : a < b;
  let best = 0;
  for (let n = 0; n < t.nodes; n++) {
    if (depth[n]! < 0 || t.childStart[n] === t.childStart[n + 1]) continue;
    const row = logitsRow(t, n);
    checkNodeRow(n, row);
    const p = distributionOf(row, dist);
    const bound = temperature === 0 ? 0.5 : typicalBound(p, threshold, alpha); // greedy: one-hot p, accept p = 1
    for (let j = t.childStart[n]!; j < t.childStart[n + 1]!; j++) {
      const c = t.childIds[j]!;
      const pc = p[t.tokens[c]!]!;
      if (!(pc > bound)) continue;
      depth[c] = depth[n]! + 1;
      logLik[c] = logLik[n]! + Math.log(pc);
      if (better(c, best)) best = c;
    }
  }
  const path: number[] = [];
  for (let n = best; n >= 0; n = t.parents[n]!) path.push(n);
  path.reverse();
  const last = logitsRow(t, best);
  checkNodeRow(best, last);
  const tokens = new Int32Array(path.length);
  for (let i = 1; i < path.length; i++) tokens[i - 1] = t.tokens[path[i]!]!;
  tokens[path.length - 1] = pickAt(last, 0, { ...dist, temperature: 0 });
  return { acceptedNodes: Int32Array.from(path), tokens, lossy: true };
}
