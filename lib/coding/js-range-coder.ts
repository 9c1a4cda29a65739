/**
 * A range coder in plain JavaScript for models that live in JavaScript (a
 * neural LM through onnxruntime-node): the native coders query the built-in
 * ByteModel themselves, and a callback model needs one step per byte anyway,
 * so the coder's own cost is negligible here.
 *
 * The coder is LZMA's (32-bit range, 33-bit low with carry, a cache byte and
 * a run of pending 0xff bytes); every quantity stays below 2^53, so Number
 * arithmetic is exact. Frequencies come from `quantizeProbabilities`, the
 * same rule the native side applies to a callback's probabilities
 * (native/coding/quantize.h): masses floor(p_j / sum * 2^30), then byte j
 * covers [C_j, C_{j+1}) of T = 2^16 with C_j = j + floor(P_j (T - 256) / M),
 * so every byte keeps a frequency >= 1 and the same probabilities always give
 * the same bits, on every machine.
 *
 * Shapes: a distribution is 256 non-negative weights (need not sum to 1); a
 * cumulative table is Float64Array [257], C_0 = 0, C_256 = 2^16.
 */
import { rangeError, typeError } from '../errors.js';

/** log2 of the total frequency T. */
export const RANGE_CODER_TOTAL_LOG2 = 16;
const TOTAL = 2 ** RANGE_CODER_TOTAL_LOG2;
const MASS_ONE = 2 ** 30;
const TOP = 2 ** 24;
const TWO32 = 2 ** 32;

/** 256 weights -> the cumulative table [257] (deterministic integer rule, every byte >= 1). */
export function quantizeProbabilities(p: ArrayLike<number>, offset = 0, arg = 'probabilities'): Float64Array {
  let sum = 0;
  for (let j = 0; j < 256; j++) {
    const v = p[offset + j]!;
    if (!(v >= 0) || !Number.isFinite(v)) throw rangeError(`${arg}[${j}]`, 'a finite number >= 0', v);
    sum += v;
  }
  if (!(sum > 0) || !Number.isFinite(sum)) throw rangeError(arg, 'weights with a positive finite sum', sum);
  const mass = new Float64Array(256);
  let total = 0;
  for (let j = 0; j < 256; j++) {
    mass[j] = Math.floor((p[offset + j]! / sum) * MASS_ONE);
    total += mass[j]!;
  }
  const cum = new Float64Array(257);
  if (total === 0) {
    // Unreachable for finite weights (the largest share is >= 1/256); kept so the table is always valid.
    for (let j = 0; j <= 256; j++) cum[j] = j * (TOTAL / 256);
    return cum;
  }
  let before = 0;
  for (let j = 0; j < 256; j++) {
    cum[j] = j + Math.floor((before * (TOTAL - 256)) / total);
    before += mass[j]!;
  }
  cum[256] = TOTAL;
  return cum;
}

/** Encoder: encode(cum, byte) per byte, then finish() for the payload. */
export class JsRangeEncoder {
  #low = 0;
  #range = TWO32 - 1;
  #cache = 0;
  #cacheSize = 1;
  #out: number[] = [];

  encode(cum: Float64Array, byte: number): void {
    const r = Math.floor(this.#range / TOTAL);
    this.#low += cum[byte]! * r;
    this.#range = (cum[byte + 1]! - cum[byte]!) * r;
    while (this.#range < TOP) {
      this.#range *= 256;
      this.#shiftLow();
    }
  }

  /** The payload (5 bytes of flush; the first byte is always 0, as in LZMA). */
  finish(): Uint8Array {
    for (let i = 0; i < 5; i++) this.#shiftLow();
    return Uint8Array.from(this.#out);
  }

  #shiftLow(): void {
    const low32 = this.#low % TWO32;
    if (low32 < 0xff000000 || this.#low >= TWO32) {
      const carry = this.#low >= TWO32 ? 1 : 0;
      let temp = this.#cache;
      do {
        this.#out.push((temp + carry) & 0xff);
        temp = 0xff;
      } while (--this.#cacheSize !== 0);
      this.#cache = Math.floor(low32 / TOP);
    }
    this.#cacheSize++;
    this.#low = (low32 % TOP) * 256;
  }
}

/** Decoder over one payload: decode(cum) per byte. A payload this coder did not write throws a RangeError. */
export class JsRangeDecoder {
  #code = 0;
  #range = TWO32 - 1;
  #pos = 0;
  readonly #payload: Uint8Array;

  constructor(payload: Uint8Array) {
    if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Uint8Array', payload);
    if (payload.length < 5) throw rangeError('payload', 'at least 5 bytes (a range-coded payload)', payload);
    this.#payload = payload;
    for (let i = 0; i < 5; i++) this.#code = this.#code * 256 + this.#next();
    if (this.#code >= this.#range) throw rangeError('payload', 'a range-coded payload (bad first bytes)', payload);
  }

  decode(cum: Float64Array): number {
    const r = Math.floor(this.#range / TOTAL);
    const v = Math.floor(this.#code / r);
    if (v >= TOTAL) throw rangeError('payload', 'a payload this model wrote (value out of range)', this.#payload);
    let lo = 0;
    let hi = 256; // cum[lo] <= v < cum[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! <= v) lo = mid;
      else hi = mid;
    }
    this.#code -= cum[lo]! * r;
    this.#range = (cum[lo + 1]! - cum[lo]!) * r;
    while (this.#range < TOP) {
      this.#range *= 256;
      this.#code = this.#code * 256 + this.#next();
    }
    return lo;
  }

  #next(): number {
    if (this.#pos >= this.#payload.length) throw rangeError('payload', 'a complete payload (it ended early)', this.#payload);
    return this.#payload[this.#pos++]!;
  }
}
