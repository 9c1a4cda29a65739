/** Argument checks shared by the tokenizer tools (one message template: lib/errors.ts). */
import { rangeError, typeError } from '../errors.js';

/** A Uint8Array (a Buffer is one). */
export function checkBytes(arg: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw typeError(arg, 'a Uint8Array of UTF-8 bytes', value);
  return value;
}

export function checkText(arg: string, value: unknown): string {
  if (typeof value !== 'string') throw typeError(arg, 'a string', value);
  return value;
}

/** One token id: an integer in [0, size). */
export function checkId(arg: string, value: unknown, size: number): number {
  if (typeof value !== 'number') throw typeError(arg, `a token id (an integer in [0, ${size - 1}])`, value);
  if (!Number.isInteger(value) || value < 0 || value >= size) {
    throw rangeError(arg, `a token id (an integer in [0, ${size - 1}])`, value);
  }
  return value;
}

/** An array-like of token ids (Array, Int32Array, Uint32Array, ...), each an integer in [0, size). */
export function checkIds(arg: string, value: unknown, size: number): ArrayLike<number> {
  if (value === null || typeof value !== 'object' || typeof (value as { length?: unknown }).length !== 'number') {
    throw typeError(arg, 'an array of token ids', value);
  }
  const ids = value as ArrayLike<unknown>;
  const n = ids.length;
  if (!Number.isSafeInteger(n) || n < 0) throw rangeError(`${arg}.length`, 'a non-negative integer', n);
  for (let i = 0; i < n; i++) checkId(`${arg}[${i}]`, ids[i], size);
  return ids as ArrayLike<number>;
}
