/**
 * The raw range coder with one fixed distribution (no model): what the
 * benchmark times against other coders. Probabilities are quantized with the
 * same deterministic rule the coders use (every byte keeps a frequency >= 1).
 */
import { typeError, rangeError } from '../errors.js';

export interface RawCoderTable {
  freqs: Uint32Array;
  totalLog2: number;
}

/** 256 probabilities (any non-negative weights) -> 256 frequencies >= 1 summing to 2^16. */
export function quantizeForRawCoder(probabilities: ArrayLike<number>): RawCoderTable {
  if (probabilities === null || typeof probabilities !== 'object' || probabilities.length !== 256) {
    throw typeError('probabilities', '256 non-negative weights', probabilities);
  }
  let sum = 0;
  for (let i = 0; i < 256; i++) {
    const p = probabilities[i]!;
    if (!(p >= 0) || !Number.isFinite(p)) throw rangeError(`probabilities[${i}]`, 'a finite number >= 0', p);
    sum += p;
  }
  if (!(sum > 0)) throw rangeError('probabilities', 'a positive sum', sum);
  const totalLog2 = 16;
  const spread = 2 ** totalLog2 - 256;
  const freqs = new Uint32Array(256);
  let used = 0;
  let best = 0;
  for (let i = 0; i < 256; i++) {
    freqs[i] = 1 + Math.floor((probabilities[i]! / sum) * spread);
    used += freqs[i]!;
    if (probabilities[i]! > probabilities[best]!) best = i;
  }
  freqs[best]! += 2 ** totalLog2 - used;
  return { freqs, totalLog2 };
}
