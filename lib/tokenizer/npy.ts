// Reading and writing 2-D float32 matrices as NumPy .npy (format 1.0-3.0,
// '<f4', C order) or as raw little-endian f32 with a known width, for
// `tokenpress tokenizer transplant`.
import { TokenpressError } from '../errors.js';

export interface F32Matrix {
  data: Float32Array;
  rows: number;
  cols: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses a .npy file holding a 2-D '<f4' C-order array (throws ERR_BAD_FILE naming `what` otherwise). */
export function parseNpy(bytes: Uint8Array, what: string): F32Matrix {
  const bad = (why: string): TokenpressError => new TokenpressError('ERR_BAD_FILE', `${what}: not a 2-D float32 .npy file (${why})`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('no \\x93NUMPY magic');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (major < 1 || major > 3) throw bad(`format version ${major}`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lenBytes + headerLen;
  if (start > bytes.length) throw bad('truncated header');
  const header = new TextDecoder('latin1').decode(bytes.subarray(8 + lenBytes, start));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== '<f4') throw bad(`dtype ${descr ?? '?'}; expected <f4`);
  if (fortran !== 'False') throw bad('Fortran order');
  const dims = (shape ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (dims.length !== 2 || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`shape (${shape ?? ''}); expected 2 dimensions`);
  const [rows, cols] = dims as [number, number];
  const need = rows * cols * 4;
  if (bytes.length - start < need) throw bad(`${bytes.length - start} data bytes for shape (${rows}, ${cols}) need ${need}`);
  const data = new Float32Array(rows * cols);
  new Uint8Array(data.buffer).set(bytes.subarray(start, start + need));
  return { data, rows, cols };
}

/** Raw little-endian f32 of a known width. */
export function parseRawF32(bytes: Uint8Array, cols: number, what: string): F32Matrix {
  if (bytes.length % (4 * cols) !== 0) {
    throw new TokenpressError('ERR_BAD_FILE', `${what}: ${bytes.length} bytes is not a whole number of rows of ${cols} float32`);
  }
  const data = new Float32Array(bytes.length / 4);
  new Uint8Array(data.buffer).set(bytes);
  return { data, rows: bytes.length / 4 / cols, cols };
}

/** A .npy file (format 1.0) of a 2-D '<f4' array. */
export function encodeNpy(m: F32Matrix): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${m.rows}, ${m.cols}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + m.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength), 10 + header.length);
  return out;
}
