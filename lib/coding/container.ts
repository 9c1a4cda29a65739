/**
 * The .tpz file container that `tokenpress zip` writes and `unzip` reads: a
 * fixed 44-byte header, then the coded payload.
 *
 * Layout (all integers little-endian):
 *
 * | offset | size | field                                                         |
 * |-------:|-----:|---------------------------------------------------------------|
 * |      0 |    4 | magic `89 54 50 5A` ("\x89TPZ": the high byte catches 7-bit    |
 * |        |      | transfers and text-mode mangling, as PNG's does)              |
 * |      4 |    2 | format version (u16), 1                                       |
 * |      6 |    1 | mode (u8): 0 static, 1 adaptive, 2 equal-info                 |
 * |      7 |    1 | flags (u8): none defined yet, must be 0                       |
 * |      8 |    8 | model identity (the 16 hex chars as 8 bytes); zeros (adaptive)|
 * |     16 |    2 | windowBits (u16): 16..2048 for equal-info, else 0             |
 * |     18 |    1 | tokenBits (u8): 8 or 16 for equal-info, else 0                |
 * |     19 |    1 | reserved, must be 0                                           |
 * |     20 |    8 | original length in bytes (u64, at most 2^53 - 1)              |
 * |     28 |    4 | CRC-32 (zlib's) of the original bytes                         |
 * |     32 |    8 | payload length in bytes (u64): exactly the bytes that follow  |
 * |     40 |    4 | CRC-32 of header bytes 0..39                                  |
 * |     44 |    … | payload                                                       |
 *
 * readContainer checks everything (magic, version, header CRC, every field's
 * range, the payload length against the bytes present, the declared original
 * length against a limit) before it returns, so a caller may allocate
 * `originalLength` bytes afterwards. It allocates nothing itself: the payload
 * is a view of the input. A bad file throws TokenpressError 'ERR_BAD_FILE'
 * with a message naming what was expected and what was found.
 */
import { crc32 } from 'node:zlib';
import { TokenpressError, rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';

/** How the payload was coded. */
export type ContainerMode = 'static' | 'adaptive' | 'equal-info';

export interface ContainerHeader {
  /** static: a built-in/static model, plain range coding; adaptive: context mixing; equal-info: Equal-Info Windows. */
  mode: ContainerMode;
  /** 16 lowercase hex chars naming the model (static, equal-info); null for adaptive. */
  modelIdentity: string | null;
  /** Equal-info only: the fixed size of each window's code, in bits (integer 16..2048). */
  windowBits?: number;
  /** Equal-info only: bits per emitted token, 8 or 16. */
  tokenBits?: 8 | 16;
  /** Length of the original (decoded) bytes. */
  originalLength: number;
  /** CRC-32 (zlib.crc32) of the original bytes, as an unsigned 32-bit integer. */
  checksum: number;
}

/** The magic bytes at offset 0: "\x89TPZ". */
export const CONTAINER_MAGIC: Readonly<Uint8Array> = Uint8Array.of(0x89, 0x54, 0x50, 0x5a);
/** The format version this code writes. */
export const CONTAINER_VERSION = 1;
/** Every version readContainer understands. */
export const SUPPORTED_CONTAINER_VERSIONS: readonly number[] = [1];
/** Bytes before the payload. */
export const CONTAINER_HEADER_BYTES = 44;
/** Default limit on the declared original length (4 GiB). */
export const DEFAULT_MAX_ORIGINAL_BYTES = 2 ** 32;
export const MIN_WINDOW_BITS = 16;
export const MAX_WINDOW_BITS = 2048;

const MODES: readonly ContainerMode[] = ['static', 'adaptive', 'equal-info'];
const HEADER_CRC_AT = 40;

function bad(what: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `not a valid tokenpress (.tpz) file: ${what}`);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Checks a header's fields before writing it. */
function checkHeader(header: unknown): ContainerHeader {
  const h = checkOptions('header', header, ['mode', 'modelIdentity', 'windowBits', 'tokenBits', 'originalLength', 'checksum']);
  if (header === undefined) throw typeError('header', 'a ContainerHeader object', header);
  if (typeof h.mode !== 'string' || !MODES.includes(h.mode as ContainerMode)) {
    throw typeError('header.mode', `one of ${MODES.map((m) => `'${m}'`).join(', ')}`, h.mode);
  }
  const mode = h.mode as ContainerMode;
  if (mode === 'adaptive') {
    if (h.modelIdentity !== null && h.modelIdentity !== undefined) {
      throw typeError('header.modelIdentity', "null for mode 'adaptive' (it has no model)", h.modelIdentity);
    }
  } else if (typeof h.modelIdentity !== 'string' || !/^[0-9a-fA-F]{16}$/.test(h.modelIdentity)) {
    throw typeError('header.modelIdentity', `a string of 16 hex digits for mode '${mode}'`, h.modelIdentity);
  }
  if (mode === 'equal-info') {
    checkInteger('header.windowBits', h.windowBits, MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    if (h.tokenBits !== 8 && h.tokenBits !== 16) throw rangeError('header.tokenBits', '8 or 16', h.tokenBits);
  } else {
    if (h.windowBits !== undefined) throw typeError('header.windowBits', "undefined (only mode 'equal-info' has windows)", h.windowBits);
    if (h.tokenBits !== undefined) throw typeError('header.tokenBits', "undefined (only mode 'equal-info' has token bits)", h.tokenBits);
  }
  checkInteger('header.originalLength', h.originalLength, 0);
  checkInteger('header.checksum', h.checksum, 0, 0xffffffff);
  return h as unknown as ContainerHeader;
}

/**
 * Serializes header + payload into one .tpz image (44 + payload.length
 * bytes). Throws TypeError/RangeError on a bad header or payload.
 */
export function writeContainer(header: ContainerHeader, payload: Uint8Array): Uint8Array {
  const h = checkHeader(header);
  if (!(payload instanceof Uint8Array)) throw typeError('payload', 'a Uint8Array', payload);
  const out = new Uint8Array(CONTAINER_HEADER_BYTES + payload.length);
  const dv = new DataView(out.buffer);
  out.set(CONTAINER_MAGIC, 0);
  dv.setUint16(4, CONTAINER_VERSION, true);
  dv.setUint8(6, MODES.indexOf(h.mode));
  dv.setUint8(7, 0);
  if (h.modelIdentity !== null && h.modelIdentity !== undefined) {
    for (let i = 0; i < 8; i++) out[8 + i] = parseInt(h.modelIdentity.slice(2 * i, 2 * i + 2), 16);
  }
  dv.setUint16(16, h.mode === 'equal-info' ? h.windowBits! : 0, true);
  dv.setUint8(18, h.mode === 'equal-info' ? h.tokenBits! : 0);
  dv.setUint8(19, 0);
  dv.setBigUint64(20, BigInt(h.originalLength), true);
  dv.setUint32(28, h.checksum >>> 0, true);
  dv.setBigUint64(32, BigInt(payload.length), true);
  dv.setUint32(HEADER_CRC_AT, crc32(out.subarray(0, HEADER_CRC_AT)), true);
  out.set(payload, CONTAINER_HEADER_BYTES);
  return out;
}

/**
 * Parses and checks a .tpz image. Returns the header and the payload as a
 * subarray of `bytes` (no copy). Throws TokenpressError 'ERR_BAD_FILE' on
 * any problem; `maxOriginalBytes` (default 2^32) caps the declared original
 * length so a caller can allocate it safely.
 */
export function readContainer(
  bytes: Uint8Array,
  opts?: { maxOriginalBytes?: number },
): { header: ContainerHeader; payload: Uint8Array } {
  if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array', bytes);
  const o = checkOptions('opts', opts, ['maxOriginalBytes']);
  const maxOriginal = o.maxOriginalBytes === undefined ? DEFAULT_MAX_ORIGINAL_BYTES : checkInteger('opts.maxOriginalBytes', o.maxOriginalBytes, 0);

  const n = bytes.length;
  const magicSeen = bytes.subarray(0, Math.min(4, n));
  if (n === 0 || !magicSeen.every((b, i) => b === CONTAINER_MAGIC[i])) {
    throw new TokenpressError(
      'ERR_BAD_FILE',
      `not a tokenpress file: expected magic bytes ${hex(CONTAINER_MAGIC)} ("\\x89TPZ"), found ${n === 0 ? 'an empty file' : hex(magicSeen)}`,
    );
  }
  if (n < 6) throw bad(`truncated header: ${n} of ${CONTAINER_HEADER_BYTES} bytes (${CONTAINER_HEADER_BYTES - n} missing)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, n);
  const version = dv.getUint16(4, true);
  if (!SUPPORTED_CONTAINER_VERSIONS.includes(version)) {
    throw bad(`format version ${version} is not supported (this tokenpress reads version ${SUPPORTED_CONTAINER_VERSIONS.join(', ')})`);
  }
  if (n < CONTAINER_HEADER_BYTES) {
    throw bad(`truncated header: ${n} of ${CONTAINER_HEADER_BYTES} bytes (${CONTAINER_HEADER_BYTES - n} missing)`);
  }
  const storedCrc = dv.getUint32(HEADER_CRC_AT, true);
  const actualCrc = crc32(bytes.subarray(0, HEADER_CRC_AT));
  if (storedCrc !== actualCrc) {
    throw bad(`header checksum mismatch (stored CRC-32 0x${storedCrc.toString(16).padStart(8, '0')}, computed 0x${actualCrc.toString(16).padStart(8, '0')}): the header is corrupt`);
  }

  const modeIndex = dv.getUint8(6);
  const mode = MODES[modeIndex];
  if (mode === undefined) throw bad(`mode ${modeIndex} is unknown (expected 0 static, 1 adaptive or 2 equal-info)`);
  const flags = dv.getUint8(7);
  if (flags !== 0) throw bad(`flags 0x${flags.toString(16)} are unknown (expected 0)`);
  if (dv.getUint8(19) !== 0) throw bad(`reserved byte 19 is ${dv.getUint8(19)} (expected 0)`);

  const idBytes = bytes.subarray(8, 16);
  let modelIdentity: string | null = null;
  if (mode === 'adaptive') {
    if (idBytes.some((b) => b !== 0)) throw bad(`mode adaptive has no model, but the model identity is ${hex(idBytes)} (expected zeros)`);
  } else {
    modelIdentity = hex(idBytes).replaceAll(' ', '');
  }

  const windowBits = dv.getUint16(16, true);
  const tokenBits = dv.getUint8(18);
  const header: ContainerHeader = { mode, modelIdentity, originalLength: 0, checksum: 0 };
  if (mode === 'equal-info') {
    if (windowBits < MIN_WINDOW_BITS || windowBits > MAX_WINDOW_BITS) {
      throw bad(`windowBits ${windowBits} is out of range (expected an integer in [${MIN_WINDOW_BITS}, ${MAX_WINDOW_BITS}])`);
    }
    if (tokenBits !== 8 && tokenBits !== 16) throw bad(`tokenBits ${tokenBits} is invalid (expected 8 or 16)`);
    header.windowBits = windowBits;
    header.tokenBits = tokenBits;
  } else if (windowBits !== 0 || tokenBits !== 0) {
    throw bad(`mode ${mode} has no windows, but windowBits is ${windowBits} and tokenBits ${tokenBits} (expected 0 and 0)`);
  }

  const original = dv.getBigUint64(20, true);
  if (original > BigInt(maxOriginal)) {
    throw bad(`original length ${original} bytes exceeds the limit of ${maxOriginal} bytes (raise maxOriginalBytes to accept it)`);
  }
  header.originalLength = Number(original);
  header.checksum = dv.getUint32(28, true);

  const payloadLen = dv.getBigUint64(32, true);
  const present = BigInt(n - CONTAINER_HEADER_BYTES);
  if (payloadLen > present) {
    throw bad(`truncated payload: the header declares ${payloadLen} bytes, ${present} are present (${payloadLen - present} missing)`);
  }
  if (payloadLen < present) {
    throw bad(`${present - payloadLen} unexpected bytes after the ${payloadLen}-byte payload`);
  }
  return { header, payload: bytes.subarray(CONTAINER_HEADER_BYTES) };
}

/** Throws ERR_BAD_FILE "checksum mismatch" unless `original` has the header's length and CRC-32. */
export function verifyChecksum(header: ContainerHeader, original: Uint8Array): void {
  if (!(original instanceof Uint8Array)) throw typeError('original', 'a Uint8Array', original);
  if (original.length !== header.originalLength) {
    throw new TokenpressError(
      'ERR_BAD_FILE',
      `checksum mismatch: the header declares ${header.originalLength} original bytes, decoding gave ${original.length}`,
    );
  }
  const got = crc32(original);
  if (got !== header.checksum >>> 0) {
    throw new TokenpressError(
      'ERR_BAD_FILE',
      `checksum mismatch: expected CRC-32 0x${(header.checksum >>> 0).toString(16).padStart(8, '0')}, the decoded bytes give 0x${got.toString(16).padStart(8, '0')}`,
    );
  }
}

/** CRC-32 (zlib's) of `bytes`: the value to put in ContainerHeader.checksum. */
export function containerChecksum(bytes: Uint8Array): number {
  return crc32(bytes);
}
