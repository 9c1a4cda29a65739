/**
 * The Token Recycling table file, little-endian:
 *   bytes 0..3    "TPTR" (magic)
 *   bytes 4..7    u32 format version = 1
 *   bytes 8..11   u32 vocab
 *   bytes 12..15  u32 topK
 *   bytes 16..    int32 [vocab, topK] table, -1 = empty slot
 * Total 16 + 4 * vocab * topK bytes exactly. The template is not stored (it
 * is a drafting choice, not learned state). Golden bytes in
 * test/unit/spec-drafters.test.ts pin the format.
 */
import { TokenpressError, typeError } from '../errors.js';
import { MAX_VOCAB } from './drafter.js';

export const TR_FILE_MAGIC = 'TPTR';
export const TR_FILE_VERSION = 1;
const HEADER_BYTES = 16;

export interface TrTableContents {
  vocab: number;
  topK: number;
  /** int32 [vocab, topK] */
  table: Int32Array;
}

export function encodeTrTable(c: TrTableContents): Uint8Array {
  const bytes = new Uint8Array(HEADER_BYTES + 4 * c.table.length);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < 4; i++) bytes[i] = TR_FILE_MAGIC.charCodeAt(i);
  view.setUint32(4, TR_FILE_VERSION, true);
  view.setUint32(8, c.vocab, true);
  view.setUint32(12, c.topK, true);
  for (let i = 0; i < c.table.length; i++) view.setInt32(HEADER_BYTES + 4 * i, c.table[i]!, true);
  return bytes;
}

function bad(message: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `Token Recycling table: ${message}`);
}

/** Parses and checks a table file (sizes before any allocation, every entry in [-1, vocab)); a bad file is ERR_BAD_FILE. */
export function decodeTrTable(bytes: Uint8Array, maxTopK: number): TrTableContents {
  if (!(bytes instanceof Uint8Array)) throw typeError('bytes', 'a Uint8Array (a Token Recycling table file)', bytes);
  if (bytes.length < HEADER_BYTES) throw bad(`expected at least ${HEADER_BYTES} bytes, received ${bytes.length}`);
  const magic = String.fromCharCode(bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!);
  if (magic !== TR_FILE_MAGIC) throw bad(`expected the magic "${TR_FILE_MAGIC}", received ${JSON.stringify(magic)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== TR_FILE_VERSION) throw bad(`expected format version ${TR_FILE_VERSION}, received ${version}`);
  const vocab = view.getUint32(8, true);
  const topK = view.getUint32(12, true);
  if (vocab < 1 || vocab > MAX_VOCAB) throw bad(`expected vocab in [1, ${MAX_VOCAB}], received ${vocab}`);
  if (topK < 1 || topK > maxTopK) throw bad(`expected topK in [1, ${maxTopK}], received ${topK}`);
  const want = HEADER_BYTES + 4 * vocab * topK;
  if (bytes.length !== want) throw bad(`expected ${want} bytes for vocab ${vocab} and topK ${topK}, received ${bytes.length}`);
  const table = new Int32Array(vocab * topK);
  for (let i = 0; i < table.length; i++) {
    const v = view.getInt32(HEADER_BYTES + 4 * i, true);
    if (v < -1 || v >= vocab) throw bad(`entry ${i} (row ${Math.floor(i / topK)}): expected a token in [-1, ${vocab}), received ${v}`);
    table[i] = v;
  }
  return { vocab, topK, table };
}
