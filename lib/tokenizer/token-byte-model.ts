/**
 * A token-level LM as the coders' byte model, through the exact next-byte
 * probabilities of byte-probs.ts:
 *
 *   - `TokenLmByteModel.callback`: a ModelCallback for EqualInfoTokenizer
 *     (contexts -> one row of 256 probabilities per context). A context that
 *     extends a context of the previous round by one byte reuses that
 *     context's stepper (one push); any other context is pushed from its
 *     start. Rows depend only on the context bytes, never on batching.
 *   - `compressTokenLm` / `decompressTokenLm`: plain coding of one document
 *     with the full context, through the JavaScript range coder
 *     (lib/coding/js-range-coder.ts; the same quantization the native side
 *     applies to callback rows), like compressNeural for the byte LM.
 *
 * Rows are float64 computed in one fixed order from the context alone, so the
 * encoder and the decoder see the same numbers on the same machine and build.
 */
import { typeError } from '../errors.js';
import { checkInteger } from '../validate.js';
import { toBytes } from '../coding/tokenizer.js';
import { JsRangeDecoder, JsRangeEncoder, quantizeProbabilities } from '../coding/js-range-coder.js';
import type { ModelCallback } from '../coding/equal-info.js';
import { TokenByteProbs, type ByteProbStepper, type ByteProbsOptions } from './byte-probs.js';
import type { TokenLm } from './token-lm.js';
import type { TokenVocab } from './types.js';

function keyOf(bytes: Uint8Array, n = bytes.length): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1');
}

export class TokenLmByteModel {
  readonly probs: TokenByteProbs;
  /** The ModelCallback for EqualInfoTokenizer (bound). */
  readonly callback: ModelCallback;
  /** Steppers of the last round's contexts, by context bytes (latin1). */
  #live = new Map<string, ByteProbStepper>();

  /** vocab and lm as for TokenByteProbs (options too). */
  constructor(vocab: TokenVocab, lm: TokenLm, options?: ByteProbsOptions) {
    this.probs = new TokenByteProbs(vocab, lm, options);
    this.callback = (contexts) => this.rows(contexts);
  }

  /** One row of 256 next-byte probabilities per context: Float64Array [contexts.length * 256]. */
  rows(contexts: readonly Uint8Array[]): Float64Array {
    if (!Array.isArray(contexts)) throw typeError('contexts', 'an array of Uint8Array', contexts);
    contexts.forEach((c, i) => {
      if (!(c instanceof Uint8Array)) throw typeError(`contexts[${i}]`, 'a Uint8Array', c);
    });
    const out = new Float64Array(contexts.length * 256);
    const next = new Map<string, ByteProbStepper>();
    contexts.forEach((c, i) => {
      const key = keyOf(c);
      let s = next.get(key) ?? this.#live.get(key);
      if (!s) {
        const parent = c.length > 0 ? this.#live.get(keyOf(c, c.length - 1)) : undefined;
        if (parent) {
          s = parent.clone();
          s.push(c[c.length - 1]!);
        } else {
          s = this.probs.start();
          for (const b of c) s.push(b);
        }
      }
      next.set(key, s);
      out.set(s.probs(), i * 256);
    });
    this.#live = next;
    return out;
  }
}

/** What compressTokenLm measured on the way. */
export interface TokenLmCompressed {
  payload: Uint8Array;
  /** -log2 of the model's float64 row at every byte, summed (what the coder approaches). */
  modelBits: number;
}

function modelArg(model: unknown): TokenLmByteModel {
  if (!(model instanceof TokenLmByteModel)) throw typeError('model', 'a TokenLmByteModel', model);
  return model;
}

/** Plain coding of one document; the payload has no length of its own (decompressTokenLm needs it). */
export function compressTokenLm(model: TokenLmByteModel, data: string | Uint8Array): TokenLmCompressed {
  const m = modelArg(model);
  const bytes = toBytes('data', data);
  const enc = new JsRangeEncoder();
  const s = m.probs.start();
  let modelBits = 0;
  for (let i = 0; i < bytes.length; i++) {
    const row = s.probs();
    const b = bytes[i]!;
    modelBits -= Math.log2(row[b]!);
    enc.encode(quantizeProbabilities(row, 0, 'model row'), b);
    if (i + 1 < bytes.length) s.push(b);
  }
  return { payload: enc.finish(), modelBits };
}

/** The `length` bytes back from a compressTokenLm payload made with the same model. */
export function decompressTokenLm(model: TokenLmByteModel, payload: Uint8Array, length: number): Uint8Array {
  const m = modelArg(model);
  if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Uint8Array', payload);
  const n = checkInteger('length', length, 0, 2 ** 32);
  const dec = new JsRangeDecoder(payload);
  const out = new Uint8Array(n);
  const s = m.probs.start();
  for (let i = 0; i < n; i++) {
    const b = dec.decode(quantizeProbabilities(s.probs(), 0, 'model row'));
    out[i] = b;
    if (i + 1 < n) s.push(b);
  }
  return out;
}
