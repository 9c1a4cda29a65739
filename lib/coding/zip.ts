/**
 * Whole-file compression into the .tpz container (lib/coding/container.ts):
 * `adaptive` (context mixing that learns as it goes, no model needed),
 * `static` (plain coding with a frozen built-in model) or `equal-info`
 * (Equal-Info Windows tokens; the payload is the tokens, big-endian). The
 * container keeps the mode, the model's identity, the window parameters, the
 * length and a CRC-32, so a truncated, corrupted or wrong-model file fails
 * with ERR_BAD_FILE instead of decoding to garbage.
 */
import { TokenpressError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { compressAdaptiveAsync, decompressAdaptiveAsync } from './adaptive.js';
import { readContainer, verifyChecksum, writeContainer, containerChecksum, type ContainerHeader, type ContainerMode } from './container.js';
import { EqualInfoTokenizer } from './equal-info.js';
import { ByteModel } from './model.js';
import { compressStaticBatchAsync, decompressStaticBatchAsync } from './static.js';

export type ZipMode = ContainerMode;
export const ZIP_MODES: readonly ZipMode[] = ['adaptive', 'static', 'equal-info'];

export interface ZipOptions {
  /** Default 'adaptive'. */
  mode?: ZipMode;
  /** The frozen model for 'static' and 'equal-info' (default: the embedded model). */
  model?: ByteModel;
  /** 'equal-info' only: bits per window (default 16). */
  windowBits?: number;
  /** 'equal-info' only: 8 or 16 bits per token (default 16). */
  tokenBits?: 8 | 16;
  /**
   * 'equal-info' only: the input is coded in chunks of this many bytes in
   * parallel (default 1 MiB); each chunk ends a window. Used only when
   * windowBits is a multiple of tokenBits (chunks join at token boundaries).
   */
  chunkBytes?: number;
  /** Called with (bytes done, bytes total): every 1 MiB ('adaptive'), as chunks finish ('equal-info'), at the end ('static'). */
  onProgress?: (done: number, total: number) => void;
}

export interface UnzipOptions {
  /** The model the file was made with ('static', 'equal-info'); default: the embedded model. */
  model?: ByteModel;
  /** Refuse files that declare more original bytes than this (default 2^32). */
  maxBytes?: number;
  /** 'adaptive' files: called with (bytes done, bytes total) every 1 MiB. */
  onProgress?: (done: number, total: number) => void;
}

function badFile(message: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', message);
}

function modelOption(value: unknown): ByteModel | undefined {
  if (value !== undefined && !(value instanceof ByteModel)) throw typeError('options.model', 'a ByteModel', value);
  return value;
}

function progressOption(value: unknown): ZipOptions['onProgress'] {
  if (value !== undefined && typeof value !== 'function') throw typeError('options.onProgress', 'a function (bytesDone, totalBytes) => void', value);
  return value as ZipOptions['onProgress'];
}

/** zipBytes' options, every one checked before any coding starts. */
function zipOptions(options: unknown) {
  const o = checkOptions('options', options, ['mode', 'model', 'windowBits', 'tokenBits', 'chunkBytes', 'onProgress']);
  const mode = (o.mode ?? 'adaptive') as ZipMode;
  if (!ZIP_MODES.includes(mode)) throw typeError('options.mode', `one of ${ZIP_MODES.join(', ')}`, o.mode);
  const model = modelOption(o.model);
  const onProgress = progressOption(o.onProgress) ?? (() => {});
  const windowBits = o.windowBits === undefined ? 16 : checkInteger('options.windowBits', o.windowBits, 16, 2048);
  const tokenBits = o.tokenBits === undefined ? 16 : o.tokenBits;
  if (tokenBits !== 8 && tokenBits !== 16) throw typeError('options.tokenBits', '8 or 16', tokenBits);
  const chunkBytes = o.chunkBytes === undefined ? 2 ** 20 : checkInteger('options.chunkBytes', o.chunkBytes, 1);
  if (mode === 'adaptive' && (o.model !== undefined || o.windowBits !== undefined || o.tokenBits !== undefined)) {
    throw typeError('options', "no model, windowBits or tokenBits with mode 'adaptive'", options);
  }
  return { mode, model, onProgress, windowBits, tokenBits: tokenBits as 8 | 16, chunkBytes };
}

/** Compresses bytes into a .tpz container. Option errors (TypeError / RangeError naming the option) come before any coding. */
export async function zipBytes(data: Uint8Array, options?: ZipOptions): Promise<Uint8Array> {
  if (!(data instanceof Uint8Array)) throw typeError('data', 'a Uint8Array', data);
  const { mode, onProgress: progress, windowBits, tokenBits, chunkBytes, ...o } = zipOptions(options);
  const base = { originalLength: data.length, checksum: containerChecksum(data) };
  if (mode === 'adaptive') {
    const payload = await compressAdaptiveAsync(data, undefined, progress);
    return writeContainer({ mode, modelIdentity: null, ...base }, payload);
  }
  const model = o.model ?? ByteModel.loadDefault();
  if (mode === 'static') {
    const [payload] = await compressStaticBatchAsync(model, [data]);
    progress(data.length, data.length);
    return writeContainer({ mode, modelIdentity: model.info.identity, ...base }, payload!);
  }
  // Chunks join at the token level, so they need windows that fill whole tokens.
  const chunk = windowBits % tokenBits !== 0 ? Math.max(1, data.length) : chunkBytes;
  const tok = new EqualInfoTokenizer({ model, windowBits, tokenBits });
  // Chunks are independent runs of whole windows, so they code in parallel
  // and the decoder just reads all windows in order.
  const parts: Uint8Array[] = [];
  for (let start = 0; start < data.length; start += chunk * 8) {
    const docs: Uint8Array[] = [];
    for (let s = start; s < Math.min(data.length, start + chunk * 8); s += chunk) docs.push(data.subarray(s, s + chunk));
    for (const ids of await tok.encodeBatchAsync(docs)) parts.push(tokensToPayload(ids, tokenBits));
    progress(Math.min(data.length, start + chunk * 8), data.length);
  }
  const header: ContainerHeader = { mode, modelIdentity: model.info.identity, windowBits, tokenBits, ...base };
  return writeContainer(header, Buffer.concat(parts));
}

/**
 * The original bytes of a .tpz container, checked against its CRC-32.
 * Option errors (TypeError / RangeError naming the option) come before the
 * file is read; a bad file is ERR_BAD_FILE.
 */
export async function unzipBytes(file: Uint8Array, options?: UnzipOptions): Promise<Uint8Array> {
  if (!(file instanceof Uint8Array)) throw typeError('file', 'a Uint8Array', file);
  const o = checkOptions('options', options, ['model', 'maxBytes', 'onProgress']);
  const maxBytes = o.maxBytes === undefined ? 2 ** 32 : checkInteger('options.maxBytes', o.maxBytes, 0);
  const given = modelOption(o.model);
  const onProgress = progressOption(o.onProgress);
  const { header, payload } = readContainer(file, { maxOriginalBytes: maxBytes });
  let out: Uint8Array;
  if (header.mode === 'adaptive') {
    out = await decodeOrBadFile(() => decompressAdaptiveAsync(payload, header.originalLength, undefined, onProgress));
  } else {
    const model = given ?? ByteModel.loadDefault();
    if (header.modelIdentity !== model.info.identity) {
      throw badFile(`the file was made with model ${header.modelIdentity}, but the model given is ${model.info.identity}`);
    }
    if (header.mode === 'static') {
      out = (await decodeOrBadFile(() => decompressStaticBatchAsync(model, [payload], [header.originalLength])))[0]!;
    } else {
      const tokenBits = header.tokenBits!;
      const tok = new EqualInfoTokenizer({ model, windowBits: header.windowBits!, tokenBits, maxBytes: header.originalLength });
      const ids = payloadToTokens(payload, tokenBits);
      out = await decodeOrBadFile(() => tok.decodeBytesAsync(ids));
    }
  }
  if (out.length !== header.originalLength) {
    throw badFile(`payload decodes to ${out.length} bytes, but the header says ${header.originalLength}`);
  }
  verifyChecksum(header, out);
  return out;
}

async function decodeOrBadFile<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof Error && !(e instanceof TokenpressError)) {
      throw new TokenpressError('ERR_BAD_FILE', `payload: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

function tokensToPayload(ids: Uint16Array | Uint32Array, tokenBits: 8 | 16): Uint8Array {
  if (tokenBits === 8) return Uint8Array.from(ids);
  const out = new Uint8Array(ids.length * 2);
  for (let i = 0; i < ids.length; i++) {
    out[2 * i] = ids[i]! >>> 8;
    out[2 * i + 1] = ids[i]! & 0xff;
  }
  return out;
}

function payloadToTokens(payload: Uint8Array, tokenBits: 8 | 16): Uint16Array {
  if (tokenBits === 8) return Uint16Array.from(payload);
  if (payload.length % 2 !== 0) throw badFile(`payload: expected an even number of bytes for 16-bit tokens, received ${payload.length}`);
  const ids = new Uint16Array(payload.length / 2);
  for (let i = 0; i < ids.length; i++) ids[i] = (payload[2 * i]! << 8) | payload[2 * i + 1]!;
  return ids;
}

