/**
 * The token-level language model contract the byte-level tools read
 * (lib/tokenizer/byte-probs.ts): next-token probabilities for a token prefix.
 *
 * A TokenLm sees token ids of one vocabulary (TokenVocab.size ids) and
 * returns P(next token | context) as a Float64Array [vocabSize]. The rows need
 * not sum to exactly 1 (the byte-level code normalizes per byte), but every
 * entry must be finite and >= 0 (checked where the row is read). Unused ids
 * and special tokens may carry mass: the byte-level code masks them (they
 * never appear in a canonical encoding). The returned array may be reused by
 * the model's next call: the caller reads it before calling again.
 */
import { rangeError, typeError } from '../errors.js';

export interface TokenLm {
  /** Number of ids the model scores (the vocabulary's size). */
  readonly vocabSize: number;
  /**
   * The most recent tokens the model reads (an n-gram of order n reads n - 1);
   * undefined: the whole context. Callers may pass only that many tokens.
   */
  readonly maxContext?: number;
  /** P(next | context) over the vocabulary: Float64Array [vocabSize]. context: token ids, oldest first (may be empty). */
  nextTokenProbs(context: readonly number[]): Float64Array;
}

/** Checks that lm looks like a TokenLm over `vocabSize` ids (its shape, not its class). */
export function checkTokenLm(arg: string, lm: unknown, vocabSize: number): TokenLm {
  if (lm === null || typeof lm !== 'object' || typeof (lm as TokenLm).nextTokenProbs !== 'function') {
    throw typeError(arg, 'a TokenLm ({ vocabSize, nextTokenProbs(context) })', lm);
  }
  const v = (lm as TokenLm).vocabSize;
  if (v !== vocabSize) throw rangeError(`${arg}.vocabSize`, `the vocabulary's size ${vocabSize}`, v);
  const m = (lm as TokenLm).maxContext;
  if (m !== undefined && !(Number.isInteger(m) && m >= 0)) throw rangeError(`${arg}.maxContext`, 'an integer >= 0 or undefined', m);
  return lm as TokenLm;
}

/** Calls lm and checks the row's shape (the values are checked where they are summed). */
export function callTokenLm(lm: TokenLm, context: readonly number[]): Float64Array {
  const row = lm.nextTokenProbs(context);
  if (!(row instanceof Float64Array) || row.length !== lm.vocabSize) {
    throw typeError('lm.nextTokenProbs(context) result', `a Float64Array of ${lm.vocabSize} probabilities`, row);
  }
  return row;
}
