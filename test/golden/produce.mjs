// Golden vectors of every coded format: what each one is made from, how to
// make it, and how to decode it. Shared by scripts/golden.mjs (writes the
// files, from dist/) and test/unit/golden.test.ts (re-makes them from lib/
// and compares byte for byte). Plain JS so both can import it; the caller
// passes the library in (see produce.d.mts for the shape).
//
// A vector's bytes may change only with a deliberate format change: bump the
// format's version where it has one (container version, model file version),
// then rewrite with `node scripts/golden.mjs --write` and say why in the
// commit (docs/testing.md).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = fileURLToPath(new URL('.', import.meta.url));
export const MANIFEST = 'manifest.json';

/** The fixed inputs, committed under test/golden/inputs/. */
export function input(name) {
  return new Uint8Array(readFileSync(new URL(`inputs/${name}`, import.meta.url)));
}

export function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Tokens as little-endian u32, 4 bytes each (the .u32 vector files). */
export function tokensToBytes(ids) {
  const out = new Uint8Array(ids.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < ids.length; i++) view.setUint32(i * 4, ids[i], true);
  return out;
}

export function bytesToTokens(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Uint32Array.from({ length: bytes.length / 4 }, (_, i) => view.getUint32(i * 4, true));
}

/** Byte histogram of the input (+1 each): the raw coder's fixed distribution. */
function histogram(bytes) {
  const h = new Float64Array(256).fill(1);
  for (const b of bytes) h[b] += 1;
  return h;
}

const MODEL_FILE = 'model-o3.tpm';

/**
 * Every vector: file (under vectors/), kind, input, options. The model the
 * coded vectors use is the golden .tpm itself (read back from its file), so
 * a change in training shows up once, in that file.
 */
export const VECTORS = [
  { file: MODEL_FILE, kind: 'tpm', input: 'train.txt', options: { maxOrder: 3 } },
  { file: 'model-o1.tpm', kind: 'tpm', input: 'train.txt', options: { maxOrder: 1 } },
  { file: 'static-prose.bin', kind: 'static', input: 'prose.txt', options: {} },
  { file: 'static-binary.bin', kind: 'static', input: 'binary.bin', options: {} },
  { file: 'adaptive-prose.bin', kind: 'adaptive', input: 'prose.txt', options: {} },
  { file: 'adaptive-binary-m16.bin', kind: 'adaptive', input: 'binary.bin', options: { memoryLog2: 16 } },
  { file: 'raw-prose.bin', kind: 'raw', input: 'prose.txt', options: {} },
  { file: 'equal-info-w16-t16.u32', kind: 'equal-info', input: 'prose.txt', options: { windowBits: 16, tokenBits: 16 } },
  { file: 'equal-info-w24-t8.u32', kind: 'equal-info', input: 'prose.txt', options: { windowBits: 24, tokenBits: 8 } },
  { file: 'equal-info-w20-t8.u32', kind: 'equal-info', input: 'prose.txt', options: { windowBits: 20, tokenBits: 8 } },
  { file: 'equal-info-w64-t32.u32', kind: 'equal-info', input: 'binary.bin', options: { windowBits: 64, tokenBits: 32 } },
  { file: 'zip-adaptive-prose.tpz', kind: 'tpz', input: 'prose.txt', options: { mode: 'adaptive' } },
  { file: 'zip-adaptive-empty.tpz', kind: 'tpz', input: '', options: { mode: 'adaptive' } },
  { file: 'zip-static-prose.tpz', kind: 'tpz', input: 'prose.txt', options: { mode: 'static' } },
  { file: 'zip-static-binary.tpz', kind: 'tpz', input: 'binary.bin', options: { mode: 'static' } },
  { file: 'zip-equal-info-w16-t16.tpz', kind: 'tpz', input: 'prose.txt', options: { mode: 'equal-info' } },
  { file: 'zip-equal-info-w16-t8-chunk100.tpz', kind: 'tpz', input: 'prose.txt', options: { mode: 'equal-info', windowBits: 16, tokenBits: 8, chunkBytes: 100 } },
  { file: 'zip-equal-info-w20-t8.tpz', kind: 'tpz', input: 'prose.txt', options: { mode: 'equal-info', windowBits: 20, tokenBits: 8 } },
];

function inputOf(v) {
  return v.input === '' ? new Uint8Array(0) : input(v.input);
}

/** The golden model (from its stored file when `stored` is given, else trained afresh). */
async function model(api, stored) {
  const { ByteModel } = api.lib;
  if (stored) return ByteModel.fromBytes(stored(MODEL_FILE));
  return ByteModel.train(input('train.txt'), { maxOrder: 3, maxBytes: 1 << 20 });
}

/**
 * Makes one vector's bytes. api: { lib, native, quantizeForRawCoder };
 * stored(file): the committed bytes of another vector (the model), or null
 * while writing (the model is then trained afresh, which gives the same bytes).
 */
export async function produce(api, v, stored) {
  const { lib } = api;
  const data = inputOf(v);
  switch (v.kind) {
    case 'tpm':
      return (await lib.ByteModel.train(data, { ...v.options, maxBytes: 1 << 20 })).toBytes();
    case 'static':
      return lib.compressStatic(await model(api, stored), data);
    case 'adaptive':
      return lib.compressAdaptive(data, v.options);
    case 'raw': {
      const { freqs, totalLog2 } = api.quantizeForRawCoder(histogram(data));
      return api.native().rawEncode({ freqs, totalLog2, data });
    }
    case 'equal-info': {
      const tok = new lib.EqualInfoTokenizer({ model: await model(api, stored), ...v.options });
      return tokensToBytes(tok.encode(data));
    }
    case 'tpz': {
      const o = { ...v.options };
      if (o.mode !== 'adaptive') o.model = await model(api, stored);
      return lib.zipBytes(data, o);
    }
    default:
      throw new Error(`unknown vector kind ${v.kind}`);
  }
}

/** Decodes stored vector bytes back to the input (a .tpm: to a model whose own bytes are the same). */
export async function decode(api, v, bytes, stored) {
  const { lib } = api;
  const n = inputOf(v).length;
  switch (v.kind) {
    case 'tpm':
      return lib.ByteModel.fromBytes(bytes).toBytes();
    case 'static':
      return lib.decompressStatic(await model(api, stored), bytes, n);
    case 'adaptive':
      return lib.decompressAdaptive(bytes, n, v.options);
    case 'raw': {
      const { freqs, totalLog2 } = api.quantizeForRawCoder(histogram(inputOf(v)));
      return api.native().rawDecode({ freqs, totalLog2, payload: bytes, length: n, maxBytes: n });
    }
    case 'equal-info': {
      const tok = new lib.EqualInfoTokenizer({ model: await model(api, stored), ...v.options });
      return tok.decodeBytes(bytesToTokens(bytes));
    }
    case 'tpz':
      return lib.unzipBytes(bytes, v.options.mode === 'adaptive' ? {} : { model: await model(api, stored) });
    default:
      throw new Error(`unknown vector kind ${v.kind}`);
  }
}

/** What decode() must give back: the input, or for a .tpm the stored bytes themselves. */
export function expectedDecode(v, bytes) {
  return v.kind === 'tpm' ? bytes : inputOf(v);
}
