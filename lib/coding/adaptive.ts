/**
 * Adaptive whole-file compression: a context-mixing model (orders 0-8, word
 * contexts, a match model, mixers and APMs, in the lpaq/paq family) drives a
 * binary arithmetic coder, learning as it goes. No static model and no
 * windows: use it for plain compression of a whole text or byte string.
 *
 * The payload is a pure function of (bytes, memoryLog2): integer arithmetic
 * only, one thread per call, so it is identical on every machine and thread
 * count. The payload does not store the original length or the options: the
 * caller's container keeps both and passes them back to decompress.
 */
import { rangeError, typeError } from '../errors.js';
import { native, type NativeCmOptions } from '../native.js';
import { checkInteger, checkOptions } from '../validate.js';

export interface AdaptiveOptions {
  /**
   * log2 of the hashed context table in bytes (the match index adds a
   * quarter of that); both shrink for small inputs. Default 27 (about
   * 160 MiB on inputs of a few MB). Decompress with the same value.
   */
  memoryLog2?: number;
}

export const ADAPTIVE_MIN_MEMORY_LOG2 = 16;
export const ADAPTIVE_MAX_MEMORY_LOG2 = 30;
export const ADAPTIVE_DEFAULT_MEMORY_LOG2 = 27;
/** Largest input (and original length) accepted, in bytes: 2^31 - 1. */
export const ADAPTIVE_MAX_LENGTH = 0x7fffffff;
/** No payload decodes to more than this many bytes per payload byte (checked before allocating). */
export const ADAPTIVE_MAX_EXPANSION = 32768;

const KNOWN_OPTIONS = ['memoryLog2'] as const;

function checkAdaptiveOptions(opts: unknown): NativeCmOptions {
  const o = checkOptions('opts', opts, KNOWN_OPTIONS);
  if (o.memoryLog2 === undefined) return {};
  return { memoryLog2: checkInteger('opts.memoryLog2', o.memoryLog2, ADAPTIVE_MIN_MEMORY_LOG2, ADAPTIVE_MAX_MEMORY_LOG2) };
}

function toBytes(arg: string, data: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof data === 'string') bytes = new TextEncoder().encode(data);
  else if (data instanceof Uint8Array) bytes = data;
  else throw typeError(arg, 'a Uint8Array or a string', data);
  if (bytes.length > ADAPTIVE_MAX_LENGTH) throw rangeError(arg, `at most ${ADAPTIVE_MAX_LENGTH} bytes`, bytes);
  return bytes;
}

function checkPayload(payload: unknown): Uint8Array {
  if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Uint8Array', payload);
  return payload;
}

/** The largest original length a payload of `payloadLength` bytes can decode to. */
export function adaptiveMaxOriginalLength(payloadLength: number): number {
  if (payloadLength < 4) return 0;
  return Math.min(ADAPTIVE_MAX_LENGTH, payloadLength * ADAPTIVE_MAX_EXPANSION);
}

function checkOriginalLength(originalLength: unknown, payload: Uint8Array): number {
  const max = adaptiveMaxOriginalLength(payload.length);
  if (typeof originalLength === 'number' && Number.isInteger(originalLength) && originalLength >= 0 && originalLength > max) {
    throw rangeError('originalLength', `an integer in [0, ${max}] for a payload of ${payload.length} bytes`, originalLength);
  }
  return checkInteger('originalLength', originalLength, 0, max);
}

/**
 * Compresses `data` (bytes, or a string taken as UTF-8) of n bytes.
 * Returns the payload (about 1.5-2 bits per byte on English text); empty
 * input gives an empty payload. Runs on the calling thread at roughly 0.5-1
 * MB/s; use compressAdaptiveAsync for large inputs.
 */
export function compressAdaptive(data: Uint8Array | string, opts?: AdaptiveOptions): Uint8Array {
  const bytes = toBytes('data', data);
  return native().compressAdaptive(bytes, checkAdaptiveOptions(opts));
}

/** Progress of a long async call: bytes of the original done so far, and the total. */
export type AdaptiveProgress = (bytesDone: number, totalBytes: number) => void;

function checkProgress(onProgress: unknown, total: number): ((done: number) => void) | undefined {
  if (onProgress === undefined) return undefined;
  if (typeof onProgress !== 'function') throw typeError('onProgress', 'a function (bytesDone, totalBytes) => void', onProgress);
  return (done: number) => (onProgress as AdaptiveProgress)(done, total);
}

/**
 * compressAdaptive off the event loop (the input is copied first, so it may
 * change meanwhile). onProgress hears every 1 MiB and at the end.
 */
export async function compressAdaptiveAsync(data: Uint8Array | string, opts?: AdaptiveOptions, onProgress?: AdaptiveProgress): Promise<Uint8Array> {
  const bytes = toBytes('data', data);
  return native().compressAdaptiveAsync(bytes, checkAdaptiveOptions(opts), checkProgress(onProgress, bytes.length));
}

/**
 * Decompresses a payload of compressAdaptive back to its `originalLength`
 * bytes (same memoryLog2 as compression). A payload that the coder can tell
 * is truncated or corrupt throws a RangeError; other damage gives wrong
 * bytes, so keep a checksum beside the payload.
 */
export function decompressAdaptive(payload: Uint8Array, originalLength: number, opts?: AdaptiveOptions): Uint8Array {
  const bytes = checkPayload(payload);
  const n = checkOriginalLength(originalLength, bytes);
  return native().decompressAdaptive(bytes, n, checkAdaptiveOptions(opts));
}

/** decompressAdaptive off the event loop (the payload is copied first); onProgress as for compressAdaptiveAsync. */
export async function decompressAdaptiveAsync(
  payload: Uint8Array, originalLength: number, opts?: AdaptiveOptions, onProgress?: AdaptiveProgress,
): Promise<Uint8Array> {
  const bytes = checkPayload(payload);
  const n = checkOriginalLength(originalLength, bytes);
  return native().decompressAdaptiveAsync(bytes, n, checkAdaptiveOptions(opts), checkProgress(onProgress, n));
}
