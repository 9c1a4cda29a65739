/**
 * A token-level Kneser-Ney n-gram LM (native/text/token_kn.h): the built-in
 * byte model's interpolated KN with modified discounts (native/coding/
 * kn_model.h), generalised from 256 bytes to a vocabulary of V token ids, in
 * float64. A TokenLm: byte-probs.ts turns it into next-byte probabilities.
 *
 *   const kn = TokenKnModel.train(vocab.encode(text), vocab.size);   // order 3
 *   kn.nextTokenProbs([id1, id2])   // Float64Array [V], sums to 1
 *
 * Shapes: tokens Uint32Array [n] (or number[]), ids < vocabSize; a row is
 * Float64Array [vocabSize]. Training sorts the n-gram positions once per
 * order (O(N n log n)); a query is O(V + entries of its contexts).
 */
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { native } from '../native.js';
import type { TokenLm } from './token-lm.js';

export interface TokenKnTrainOptions {
  /** n-gram order N in [1, 8] (N - 1 tokens of context). Default 3. */
  order?: number;
}

const OPTION_NAMES = ['order'] as const;

export class TokenKnModel implements TokenLm {
  readonly vocabSize: number;
  readonly order: number;
  readonly maxContext: number;
  /** Tokens trained on. */
  readonly trainedTokens: number;
  readonly #blob: Uint32Array;
  readonly #discounts: Float64Array;
  readonly #row: Float64Array;
  readonly #ctx: Uint32Array;

  private constructor(blob: Uint32Array, discounts: Float64Array, vocabSize: number, order: number, trained: number) {
    this.#blob = blob;
    this.#discounts = discounts;
    this.vocabSize = vocabSize;
    this.order = order;
    this.maxContext = order - 1;
    this.trainedTokens = trained;
    this.#row = new Float64Array(vocabSize);
    this.#ctx = new Uint32Array(Math.max(order - 1, 1));
  }

  /** Trains on one token stream (ids in [0, vocabSize)). */
  static train(tokens: Uint32Array | readonly number[], vocabSize: number, options?: TokenKnTrainOptions): TokenKnModel {
    const v = checkInteger('vocabSize', vocabSize, 1, 2 ** 24);
    const o = checkOptions('options', options, OPTION_NAMES);
    const order = o.order === undefined ? 3 : checkInteger('options.order', o.order, 1, 8);
    let ids: Uint32Array;
    if (tokens instanceof Uint32Array) ids = tokens;
    else if (Array.isArray(tokens)) {
      ids = new Uint32Array(tokens.length);
      tokens.forEach((t, i) => {
        ids[i] = checkInteger(`tokens[${i}]`, t, 0, v - 1);
      });
    } else throw typeError('tokens', 'a Uint32Array or an array of token ids', tokens);
    for (let i = 0; i < ids.length; i++) if (ids[i]! >= v) throw rangeError(`tokens[${i}]`, `an id < ${v}`, ids[i]);
    const { blob, discounts } = native().tokenKnTrain({ tokens: ids, vocab: v, order });
    return new TokenKnModel(blob, discounts, v, order, ids.length);
  }

  /** The discounts D1, D2, D3+ of order k (0..order-1), for raw ('raw') or continuation counts. */
  discounts(k: number, kind: 'raw' | 'cont'): [number, number, number] {
    checkInteger('k', k, 0, this.order - 1);
    if (kind !== 'raw' && kind !== 'cont') throw rangeError('kind', "'raw' or 'cont'", kind);
    const at = k * 6 + (kind === 'raw' ? 0 : 3);
    return [this.#discounts[at]!, this.#discounts[at + 1]!, this.#discounts[at + 2]!];
  }

  /**
   * P(next | context): Float64Array [vocabSize] (the model's own array,
   * overwritten by the next call; copy it to keep it). Reads the last
   * order - 1 ids of context.
   */
  nextTokenProbs(context: readonly number[] | Uint32Array): Float64Array {
    this.nextTokenProbsInto(context, this.#row);
    return this.#row;
  }

  /** nextTokenProbs into out (Float64Array [vocabSize]). */
  nextTokenProbsInto(context: readonly number[] | Uint32Array, out: Float64Array): Float64Array {
    if (!Array.isArray(context) && !(context instanceof Uint32Array)) throw typeError('context', 'an array of token ids', context);
    if (!(out instanceof Float64Array) || out.length !== this.vocabSize) throw typeError('out', `a Float64Array of ${this.vocabSize}`, out);
    const take = Math.min(context.length, this.order - 1);
    const ctx = this.#ctx.subarray(0, take);
    for (let i = 0; i < take; i++) {
      const id = context[context.length - take + i];
      if (!Number.isInteger(id) || id! < 0 || id! >= this.vocabSize) {
        throw rangeError(`context[${context.length - take + i}]`, `a token id in [0, ${this.vocabSize})`, id);
      }
      ctx[i] = id!;
    }
    native().tokenKnNext({ blob: this.#blob, discounts: this.#discounts, context: ctx, out });
    return out;
  }

  /** log2 P(tokens[i] | tokens before it) summed over i (the token-level code length in bits). */
  bits(tokens: readonly number[] | Uint32Array): number {
    let bits = 0;
    const row = new Float64Array(this.vocabSize);
    const before: number[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      this.nextTokenProbsInto(before, row);
      if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) throw rangeError(`tokens[${i}]`, `a token id in [0, ${this.vocabSize})`, t);
      bits -= Math.log2(row[t]!);
      before.push(t);
      if (before.length > this.order) before.shift();
    }
    return bits;
  }
}
