/**
 * ByteModel: the built-in static byte model the arithmetic coders query
 * (native/coding/kn_model.h): interpolated Kneser-Ney over byte n-grams of
 * orders 0..maxOrder, with modified discounts per order. Frozen once built:
 * train it from text, save it, load it, or use the embedded default
 * (models/default.tpm, trained by `npm run train:default` on a Debian corpus).
 *
 * Shapes: a context is the Uint8Array of bytes before the predicted one,
 * oldest first (only the last maxOrder bytes matter); a distribution is a
 * Float64Array [256] indexed by byte value.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TokenpressError, typeError } from '../errors.js';
import { native, type NativeByteModelHandle, type NativeByteModelInfo } from '../native.js';
import { checkInteger, checkOptions } from '../validate.js';

/** Orders a model may have. */
export const MAX_MODEL_ORDER = 12;
/** Default training options: order 6, at most 8,000,000 serialized bytes. */
export const MODEL_TRAIN_DEFAULTS = { maxOrder: 6, maxBytes: 8_000_000 } as const;

export interface ByteModelInfo {
  kind: 'kneser-ney';
  maxOrder: number;
  /** File format version. */
  version: number;
  /** Serialized size in bytes. */
  bytes: number;
  /** 64-bit hash of the serialized bytes, 16 hex digits (containers store it to detect a wrong model). */
  identity: string;
  /** Length of the training text in bytes. */
  trainedBytes: number;
  /** Contexts kept per order, [maxOrder + 1]. */
  contexts: number[];
  /** (context, next byte) entries kept per order, [maxOrder + 1]. */
  entries: number[];
}

export interface TrainModelOptions {
  /** Longest context in bytes, 1..12 (default 6). */
  maxOrder?: number;
  /** Size limit of the serialized model; rare high-order contexts are pruned to fit (default 8,000,000, at least 4096). */
  maxBytes?: number;
  /** Called with the fraction done, 0..1, on the main thread. */
  onProgress?: (fraction: number) => void;
}

const TRAIN_KEYS = ['maxOrder', 'maxBytes', 'onProgress'] as const;

function badFile(file: string, cause: unknown): TokenpressError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new TokenpressError('ERR_BAD_FILE', `${file}: ${message}`, { cause });
}

function checkBytes(arg: string, value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) throw typeError(arg, 'a Uint8Array', value);
  return value;
}

function checkPath(arg: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw typeError(arg, 'a non-empty file path string', value);
  return value;
}

/** Directory holding models/default.tpm: the package root, found upward from this file (dist/lib/coding or lib/coding). */
function defaultModelPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'models', 'default.tpm');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) {
      throw new TokenpressError('ERR_BAD_FILE', 'tokenpress: the default model models/default.tpm is missing from the package (run `npm run train:default`)');
    }
    dir = up;
  }
}

let defaultModel: ByteModel | undefined;

export class ByteModel {
  readonly #handle: NativeByteModelHandle;
  #info: ByteModelInfo | undefined;

  private constructor(handle: NativeByteModelHandle) {
    this.#handle = handle;
  }

  /**
   * Parses a serialized model (the bytes of a .tpm file), checking every size
   * before allocating and a hash of the payload. A bad model throws a
   * TokenpressError with code 'ERR_BAD_FILE'.
   */
  static fromBytes(bytes: Uint8Array): ByteModel {
    checkBytes('bytes', bytes);
    try {
      return new ByteModel(native().ByteModel.fromBytes(bytes));
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BAD_FILE') throw badFile('bytes', err);
      throw err;
    }
  }

  /** Reads and parses a model file; a bad file throws code 'ERR_BAD_FILE' naming it. */
  static async load(path: string): Promise<ByteModel> {
    checkPath('path', path);
    const bytes = await readFile(path);
    return ByteModel.#parseFile(path, bytes);
  }

  /** load(), synchronously. */
  static loadSync(path: string): ByteModel {
    checkPath('path', path);
    return ByteModel.#parseFile(path, readFileSync(path));
  }

  static #parseFile(path: string, bytes: Uint8Array): ByteModel {
    try {
      return new ByteModel(native().ByteModel.fromBytes(bytes));
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BAD_FILE') throw badFile(path, err);
      throw err;
    }
  }

  /** The embedded default model (models/default.tpm), loaded once and cached. */
  static loadDefault(): ByteModel {
    defaultModel ??= ByteModel.loadSync(defaultModelPath());
    return defaultModel;
  }

  /** Path of the embedded default model file. */
  static defaultPath(): string {
    return defaultModelPath();
  }

  /**
   * Trains a model on `text` (a string is encoded as UTF-8) off the event
   * loop; the result is a deterministic function of (text, maxOrder, maxBytes).
   */
  static async train(text: Uint8Array | string, opts?: TrainModelOptions): Promise<ByteModel> {
    if (typeof text !== 'string' && !(text instanceof Uint8Array)) throw typeError('text', 'a Uint8Array or a string', text);
    const o = checkOptions('opts', opts, TRAIN_KEYS);
    const maxOrder = o.maxOrder === undefined ? MODEL_TRAIN_DEFAULTS.maxOrder : checkInteger('opts.maxOrder', o.maxOrder, 1, MAX_MODEL_ORDER);
    const maxBytes = o.maxBytes === undefined ? MODEL_TRAIN_DEFAULTS.maxBytes : checkInteger('opts.maxBytes', o.maxBytes, 4096, 2 ** 31);
    if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('opts.onProgress', 'a function', o.onProgress);
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    if (bytes.length >= 2 ** 32 - 1) throw typeError('text', 'fewer than 2^32 - 1 bytes', text);
    const handle = await native().trainByteModelAsync(bytes, { maxOrder, maxBytes }, o.onProgress as ((f: number) => void) | undefined);
    return new ByteModel(handle);
  }

  /** The serialized model (a fresh copy). */
  toBytes(): Uint8Array {
    return this.#handle.serialize();
  }

  /** Writes the serialized model to `path`. */
  async save(path: string): Promise<void> {
    checkPath('path', path);
    await writeFile(path, this.toBytes());
  }

  /** save(), synchronously. */
  saveSync(path: string): void {
    checkPath('path', path);
    writeFileSync(path, this.toBytes());
  }

  get info(): ByteModelInfo {
    this.#info ??= this.#handle.info() as ByteModelInfo;
    return { ...this.#info, contexts: [...this.#info.contexts], entries: [...this.#info.entries] };
  }

  get maxOrder(): number {
    return this.info.maxOrder;
  }

  /** The identity: 16 hex digits of a 64-bit hash of the serialized bytes. */
  get identity(): string {
    return this.info.identity;
  }

  /**
   * The integer masses the coders use for the byte after `context`
   * (Uint32Array [256], each >= 1, sum < 2^31). Only the last maxOrder bytes
   * of context are read.
   */
  masses(context: Uint8Array): Uint32Array {
    checkBytes('context', context);
    return this.#handle.masses(context);
  }

  /** The masses normalized: Float64Array [256] of probabilities summing to 1. */
  probabilities(context: Uint8Array): Float64Array {
    const m = this.masses(context);
    let total = 0;
    for (let i = 0; i < m.length; i++) total += m[i]!;
    const out = new Float64Array(m.length);
    for (let i = 0; i < m.length; i++) out[i] = m[i]! / total;
    return out;
  }

  /**
   * Code length of `text` under the model, in bits per byte (-log2 of the
   * normalized masses). window = 0: byte i sees min(i, maxOrder) bytes of
   * context; window = w > 0: the context restarts every w bytes (byte i sees
   * i mod w, at most maxOrder), as after Equal-Info window resets, and
   * positionBits [w] gives the average bits at each window position.
   */
  evaluate(text: Uint8Array, opts: { window?: number } = {}): { bitsPerByte: number; positionBits: Float64Array } {
    checkBytes('text', text);
    const o = checkOptions('opts', opts, ['window']);
    const window = o.window === undefined ? 0 : checkInteger('opts.window', o.window, 0, 1 << 20);
    const r = this.#handle.evaluate(text, window);
    return { bitsPerByte: text.length === 0 ? 0 : r.bits / text.length, positionBits: r.positionBits };
  }

  /** The native handle, for the coder bindings (native ByteModelHandle::FromValue). */
  get handle(): NativeByteModelHandle {
    return this.#handle;
  }

  /** Info as JSON-friendly data. */
  toJSON(): ByteModelInfo {
    return this.info;
  }
}

export type { NativeByteModelInfo };
