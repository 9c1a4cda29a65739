/**
 * Metric math of the real-model evaluation, in float64.
 *
 *   logits   f32 [T, vocab]  (row t: the next-byte logits after input byte t)
 *   targets  Uint8Array(T)   (targets[t]: the byte that followed input byte t)
 *
 * bits of row t = -log2 softmax(logits[t])[targets[t]]
 *              = (logsumexp(logits[t]) - logits[t][targets[t]]) / ln 2,
 * with the max subtracted first (a stable logsumexp). Bits per byte of a set
 * of rows is the sum of their bits over their count (every passage weighs by
 * its scored bytes, as an ordinary held-out loss does).
 */
import { rangeError, typeError } from '../../errors.js';

/** Summed bits (not averaged) of the rows: see the module comment. */
export function sumBits(logits: Float32Array, targets: Uint8Array, vocab = 256): number {
  if (!(logits instanceof Float32Array)) throw typeError('logits', 'a Float32Array [T, vocab]', logits);
  if (!(targets instanceof Uint8Array)) throw typeError('targets', 'a Uint8Array(T)', targets);
  if (logits.length !== targets.length * vocab) {
    throw rangeError('logits.length', `targets.length * vocab = ${targets.length} * ${vocab} = ${targets.length * vocab}`, logits.length);
  }
  let bits = 0;
  for (let t = 0; t < targets.length; t++) {
    const row = t * vocab;
    let max = -Infinity;
    for (let j = 0; j < vocab; j++) max = Math.max(max, logits[row + j]!);
    let s = 0;
    for (let j = 0; j < vocab; j++) s += Math.exp(logits[row + j]! - max);
    bits += (max + Math.log(s) - logits[row + targets[t]!]!) / Math.LN2;
  }
  return bits;
}

/** Index of the largest logit of row `row` (the lowest index on ties): the greedy byte. */
export function argmaxRow(logits: Float32Array, row: number, vocab = 256): number {
  if (!Number.isInteger(row) || row < 0 || (row + 1) * vocab > logits.length) {
    throw rangeError('row', `a row index in [0, ${logits.length / vocab - 1}]`, row);
  }
  let best = 0;
  let bestV = -Infinity;
  for (let j = 0; j < vocab; j++) {
    const v = logits[row * vocab + j]!;
    if (v > bestV) { bestV = v; best = j; }
  }
  return best;
}

/** Mean and standard error of the mean (0 for fewer than 2 values). */
export function meanAndSe(xs: readonly number[]): { mean: number; se: number } {
  const n = xs.length;
  if (n === 0) return { mean: NaN, se: NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, se: 0 };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
  return { mean, se: Math.sqrt(v / n) };
}
