/** Shared inputs for the coding tests: a model and awkward documents. */
import type { EqualInfoTokenizer } from '../../lib/coding/equal-info.js';
import { ByteModel } from '../../lib/coding/model.js';
import type { NativeSlotDecodeParams } from '../../lib/native.js';

const SAMPLE =
  'The quick brown fox jumps over the lazy dog. Coagulate \\Co*ag"u*late\\, v. t. To cause (a liquid) to change ' +
  'into a curdlike or semisolid state; to curdle; as, rennet coagulates milk. [1913 Webster]\n';

export function sampleText(repeat = 40): string {
  let s = '';
  for (let i = 0; i < repeat; i++) s += SAMPLE.replace('fox', `fox ${i}`);
  return s;
}

/** The embedded default model (loaded once per test file). */
export function testModel(): ByteModel {
  return ByteModel.loadDefault();
}

/** xorshift32 bytes. */
export function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/** Empty, one byte, binary, invalid UTF-8, runs of zeros and 0xff, text, awkward lengths. */
export function awkwardDocs(): Uint8Array[] {
  const enc = new TextEncoder();
  const docs: Uint8Array[] = [
    new Uint8Array(0),
    Uint8Array.of(0),
    Uint8Array.of(255),
    Uint8Array.of(0x41),
    new Uint8Array(5000),
    new Uint8Array(777).fill(255),
    Uint8Array.of(0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0xff, 0xfe),
    randomBytes(1, 3),
    randomBytes(17, 4),
    randomBytes(4099, 5),
    enc.encode(sampleText(3)),
    enc.encode('héllo wörld — ✓ 🙂'),
    Uint8Array.from({ length: 256 }, (_, i) => i),
  ];
  return docs;
}

/** The slot-decode bindings' parameters (equalInfoDecodePortable / Cuda) for a tokenizer's settings. */
export function slotParams(tok: EqualInfoTokenizer, tokens: (Uint16Array | Uint32Array)[], slotBytes?: number): NativeSlotDecodeParams {
  return {
    model: (tok.model as ByteModel).handle, windowBits: tok.windowBits, tokenBits: tok.tokenBits, tokens, maxBytes: tok.maxBytes,
    ...(slotBytes === undefined ? {} : { slotBytes }),
  };
}

/** The result of fn, or the error it throws, as a comparable value. */
export function outcome<T>(fn: () => T): { ok: T } | { error: string; type: string } {
  try {
    return { ok: fn() };
  } catch (e) {
    return { error: (e as Error).message, type: (e as Error).constructor.name };
  }
}

/**
 * Documents of runs (zeros, 0xff, "abab...") plus some text. Models trained on
 * them make a run nearly free, so a 16-bit Equal-Info window holds hundreds of
 * bytes: beyond the default 64-byte slot of the slot decoders.
 */
export function runDocs(): Uint8Array[] {
  const enc = new TextEncoder();
  return [new Uint8Array(20000), new Uint8Array(9000).fill(255), enc.encode('ab'.repeat(3000)), enc.encode(sampleText(2))];
}

/** Byte models of orders 1 (no dense order-2 rows), 3 and 12 (the longest context) trained on runDocs(). */
export async function modelsTrainedOnRuns(): Promise<ByteModel[]> {
  const runs = runDocs();
  const corpus = new Uint8Array(runs.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of runs) (corpus.set(r, at), (at += r.length));
  const out: ByteModel[] = [];
  for (const maxOrder of [1, 3, 12]) out.push(await ByteModel.train(corpus, { maxOrder, maxBytes: 1 << 20 }));
  return out;
}
