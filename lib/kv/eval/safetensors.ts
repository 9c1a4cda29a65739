/**
 * A small, strict safetensors reader and writer (F32, F16, BF16 tensors).
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * unsigned header length N, N bytes of UTF-8 JSON, then the data region. The
 * JSON maps each tensor name to { dtype, shape, data_offsets: [begin, end] }
 * (byte offsets into the data region) and may hold "__metadata__", a map of
 * strings to strings. Data is little-endian, row-major.
 *
 * Strictness (as the reference implementation): N fits in the file and is at
 * most 100 MiB; the header is an object; every entry has exactly those three
 * fields; byte counts equal numel * dtype size; the entries, sorted by begin,
 * tile the data region exactly (start at 0, no gap, no overlap, end at the
 * file's end). A corrupt file throws a TokenpressError with code
 * 'ERR_BAD_FILE' naming the file and the problem; nothing is allocated
 * beyond what the file's real size allows.
 */
import { closeSync, fstatSync, openSync, readSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { TokenpressError } from '../../errors.js';
import type { FloatDType, Tensor } from '../../tensor.js';

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const SUPPORTED: Record<string, { dtype: FloatDType; size: number }> = {
  F32: { dtype: 'f32', size: 4 },
  F16: { dtype: 'f16', size: 2 },
  BF16: { dtype: 'bf16', size: 2 },
};
/** Every dtype the format defines (to tell "unsupported" from "unknown"). */
const KNOWN_DTYPES = new Set([
  'BOOL', 'U8', 'I8', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64',
  'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64',
]);

export interface SafetensorsEntry {
  name: string;
  dtype: FloatDType;
  shape: number[];
  /** Byte range in the data region. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  /** In file order of their data. */
  entries: SafetensorsEntry[];
  /** Bytes before the data region: 8 + N. */
  dataStart: number;
}

export interface SafetensorsContents {
  metadata: Record<string, string>;
  tensors: Map<string, Tensor<FloatDType>>;
}

function bad(file: string, what: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `${file}: not a valid safetensors file: ${what}`);
}

/**
 * obj[key] = value as an own property, whatever the key: plain assignment
 * of "__proto__" sets the prototype (and drops a string), so a tensor or
 * metadata key named "__proto__" would vanish on the way in or out.
 */
function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/**
 * Parses and checks a header. `head` holds at least the file's first 8 + N
 * bytes (or fewer, which is an error); fileSize is the whole file's size.
 */
export function parseSafetensorsHeader(head: Uint8Array, fileSize: number, file = '<buffer>'): SafetensorsHeader {
  if (fileSize < 8 || head.length < 8) throw bad(file, `${fileSize} bytes is shorter than the 8-byte header length`);
  const n64 = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(fileSize - 8)) throw bad(file, `header length ${n64} is beyond the end of the file (${fileSize - 8} bytes follow it)`);
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) throw bad(file, `header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) throw bad(file, `header length ${n} is too small for a JSON object`);
  if (head.length < 8 + n) throw bad(file, `truncated header (${head.length - 8} of ${n} bytes)`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, 8 + n)));
  } catch (e) {
    throw bad(file, `header is not UTF-8 JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad(file, 'header is not a JSON object');
  const dataLen = fileSize - 8 - n;
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(file, '__metadata__ is not an object');
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof value !== 'string') throw bad(file, `__metadata__.${key} is not a string`);
        setOwn(metadata, key, value);
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(file, `tensor "${name}" is not an object`);
    const e = raw as Record<string, unknown>;
    const extra = Object.keys(e).filter((key) => key !== 'dtype' && key !== 'shape' && key !== 'data_offsets');
    if (extra.length > 0) throw bad(file, `tensor "${name}" has unknown field "${extra[0]}"`);
    if (typeof e.dtype !== 'string') throw bad(file, `tensor "${name}" has no dtype string`);
    const dt = SUPPORTED[e.dtype];
    if (!dt) {
      const why = KNOWN_DTYPES.has(e.dtype) ? 'unsupported' : 'unknown';
      throw bad(file, `tensor "${name}" has ${why} dtype ${JSON.stringify(e.dtype)} (supported: F32, F16, BF16)`);
    }
    if (!Array.isArray(e.shape) || !e.shape.every(isCount)) throw bad(file, `tensor "${name}" shape is not an array of non-negative integers`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isCount(off[0]) || !isCount(off[1])) {
      throw bad(file, `tensor "${name}" data_offsets is not [begin, end] with non-negative integers`);
    }
    const [begin, end] = off as [number, number];
    if (begin > end || end > dataLen) {
      throw bad(file, `tensor "${name}" data_offsets [${begin}, ${end}] out of range (data region is ${dataLen} bytes)`);
    }
    // numel * size, stopping once it is no longer exact (past 2^53); any 0 dimension gives 0.
    let bytes = (e.shape as number[]).includes(0) ? 0 : dt.size;
    for (const d of e.shape as number[]) {
      if (bytes > Number.MAX_SAFE_INTEGER) break;
      bytes *= d;
    }
    if (bytes !== end - begin) {
      const need = bytes > Number.MAX_SAFE_INTEGER ? 'more than 2^53' : String(bytes);
      throw bad(file, `tensor "${name}" shape [${(e.shape as number[]).join(', ')}] ${e.dtype} needs ${need} bytes, data_offsets span ${end - begin}`);
    }
    entries.push({ name, dtype: dt.dtype, shape: [...(e.shape as number[])], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of entries) {
    if (e.begin !== at) {
      throw bad(file, e.begin < at ? `tensor "${e.name}" overlaps the previous tensor (starts at ${e.begin}, previous ends at ${at})` : `gap before tensor "${e.name}" (bytes ${at}..${e.begin} belong to no tensor)`);
    }
    at = e.end;
  }
  if (at !== dataLen) throw bad(file, `the tensors cover ${at} bytes of the ${dataLen}-byte data region`);
  return { metadata, entries, dataStart: 8 + n };
}

function decodeTensor(e: SafetensorsEntry, bytes: Uint8Array): Tensor<FloatDType> {
  const copy = new Uint8Array(bytes); // aligned, owns its memory
  const data = e.dtype === 'f32' ? new Float32Array(copy.buffer) : new Uint16Array(copy.buffer);
  return { dtype: e.dtype, shape: e.shape, data } as Tensor<FloatDType>;
}

/** Parses a whole safetensors file held in memory. */
export function decodeSafetensors(buf: Uint8Array, file = '<buffer>'): SafetensorsContents {
  if (os.endianness() !== 'LE') throw new TokenpressError('ERR_UNSUPPORTED', 'safetensors: big-endian hosts are not supported');
  const h = parseSafetensorsHeader(buf, buf.length, file);
  const tensors = new Map<string, Tensor<FloatDType>>();
  for (const e of h.entries) tensors.set(e.name, decodeTensor(e, buf.subarray(h.dataStart + e.begin, h.dataStart + e.end)));
  return { metadata: h.metadata, tensors };
}

/** Reads a safetensors file: the header first, then each tensor (never more bytes than the file has). */
export function readSafetensors(file: string): SafetensorsContents {
  if (os.endianness() !== 'LE') throw new TokenpressError('ERR_UNSUPPORTED', 'safetensors: big-endian hosts are not supported');
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const first = new Uint8Array(Math.min(8, size));
    readSync(fd, first, 0, first.length, 0);
    let head = first;
    if (size >= 8) {
      const n = new DataView(first.buffer).getBigUint64(0, true);
      if (n <= BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) {
        head = new Uint8Array(8 + Number(n));
        readSync(fd, head, 0, head.length, 0);
      }
    }
    const h = parseSafetensorsHeader(head, size, file);
    const tensors = new Map<string, Tensor<FloatDType>>();
    for (const e of h.entries) {
      const bytes = new Uint8Array(e.end - e.begin);
      let got = 0;
      while (got < bytes.length) {
        const r = readSync(fd, bytes, got, bytes.length - got, h.dataStart + e.begin + got);
        if (r === 0) throw bad(file, `file shrank while reading tensor "${e.name}"`);
        got += r;
      }
      tensors.set(e.name, decodeTensor(e, bytes));
    }
    return { metadata: h.metadata, tensors };
  } finally {
    closeSync(fd);
  }
}

const DTYPE_NAME: Record<FloatDType, string> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };

/**
 * Encodes contiguous tensors (in the given order) and string metadata as a
 * safetensors file; the header is padded with spaces to a multiple of 8.
 */
export function encodeSafetensors(tensors: Iterable<[string, Tensor<FloatDType>]>, metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const meta: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata)) setOwn(meta, key, value);
    header.__metadata__ = meta;
  }
  const parts: Uint8Array[] = [];
  let at = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new TypeError('encodeSafetensors: "__metadata__" is not a tensor name');
    if (Object.prototype.hasOwnProperty.call(header, name)) throw new TypeError(`encodeSafetensors: tensor name "${name}" appears twice`);
    if (t.strides) throw new TypeError(`encodeSafetensors: tensor "${name}" must be contiguous`);
    let numel = 1;
    for (const d of t.shape) numel *= d;
    if (t.data.length !== numel) throw new RangeError(`encodeSafetensors: tensor "${name}" has ${t.data.length} elements, its shape [${t.shape.join(', ')}] needs ${numel}`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    setOwn(header, name, { dtype: DTYPE_NAME[t.dtype], shape: [...t.shape], data_offsets: [at, at + bytes.length] });
    parts.push(bytes);
    at += bytes.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(padded - json.length));
  const out = new Uint8Array(8 + json.length + at);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let o = 8 + json.length;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Writes encodeSafetensors(tensors, metadata) to a file. */
export function writeSafetensors(file: string, tensors: Iterable<[string, Tensor<FloatDType>]>, metadata?: Record<string, string>): void {
  writeFileSync(file, encodeSafetensors(tensors, metadata));
}
