/**
 * The byte LM as the coders' model (lib/model/neural-coder.ts), with the
 * draft model (small and fast; its weights may be the untrained placeholder
 * or the trained ones: nothing here depends on them):
 * round trips (Equal-Info and plain, across the sliding boundary of a small
 * context limit), determinism (same rows however contexts are batched,
 * memoized or replayed; same tokens and payloads every time), the rows
 * against an independent softmax of the model's prefill logits and of the
 * PyTorch reference logits in the model card, the JS range coder, and errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { EqualInfoTokenizer } from '../../lib/coding/equal-info.js';
import { JsRangeDecoder, JsRangeEncoder, quantizeProbabilities } from '../../lib/coding/js-range-coder.js';
import { ByteLm } from '../../lib/model/byte-lm.js';
import {
  NeuralByteModel, compressNeural, compressNeuralMeasured, decompressNeural, softmaxRow,
} from '../../lib/model/neural-coder.js';
import { randomBytes, sampleText } from './coding-fixtures.js';

const enc = new TextEncoder();
let lm: ByteLm;

beforeAll(async () => {
  lm = await ByteLm.load('draft', { threads: 1, stages: false });
});

/** Independent reference: log-sum-exp over the float32 logits, in a different order of operations. */
function referenceSoftmax(logits: Float32Array, offset: number): Float64Array {
  const row = Array.from(logits.subarray(offset, offset + 256), Number);
  const lse = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
  return Float64Array.from(row, (x) => Math.exp(x - lse));
}

/** The view the documented schedule holds after `stream` (start byte included): simulated from the rule. */
function scheduleView(stream: Uint8Array, limit: number): Uint8Array {
  const keep = Math.floor(limit / 2) - 1;
  let start = 0;
  let len = 0;
  for (let i = 0; i < stream.length; i++) {
    if (len < limit) {
      len++;
    } else {
      start = i - keep;
      len = keep + 1;
    }
  }
  return stream.subarray(start, start + len);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function sameBits(a: Float64Array, b: Float64Array): boolean {
  return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
}

const DOCS: Uint8Array[] = [
  new Uint8Array(0),
  enc.encode('a'),
  enc.encode(sampleText(2)),
  enc.encode('ünïcödé ✓ and a tab\there'),
  randomBytes(97, 7),
  new Uint8Array(60).fill(0),
];

describe('NeuralByteModel as the Equal-Info model', () => {
  it('round-trips awkward documents at b = 16 / 16-bit tokens and b = 24 / 8-bit tokens', async () => {
    const m = new NeuralByteModel(lm);
    for (const [windowBits, tokenBits] of [[16, 16], [24, 8]] as const) {
      const tok = new EqualInfoTokenizer({ model: m.callback, windowBits, tokenBits });
      const ids = await tok.encodeBatchAsync(DOCS);
      m.clear();
      const back = await tok.decodeBatchAsync(ids);
      expect(back).toEqual(DOCS);
      expect(ids[0]!.length).toBe(0);
      expect(ids[2]!.length).toBeGreaterThan(0);
    }
  });

  it('gives the same tokens from a fresh model, with the memo off, and decodes on a model that never encoded', async () => {
    const text = enc.encode(sampleText(3));
    const a = new NeuralByteModel(lm);
    const b = new NeuralByteModel(lm, { memoRows: 0 });
    const ids1 = await new EqualInfoTokenizer({ model: a.callback }).encodeAsync(text);
    const ids2 = await new EqualInfoTokenizer({ model: a.callback }).encodeAsync(text); // memo warm now
    const ids3 = await new EqualInfoTokenizer({ model: b.callback }).encodeAsync(text);
    expect(ids2).toEqual(ids1);
    expect(ids3).toEqual(ids1);
    expect(a.stats.memoHits).toBeGreaterThan(0);
    expect(b.stats.memoHits).toBe(0);
    const fresh = await NeuralByteModel.load('draft');
    expect(await new EqualInfoTokenizer({ model: fresh.callback }).decodeBytesAsync(ids1)).toEqual(text);
  });

  it('extends the session of the previous context by one byte instead of replaying it', async () => {
    const m = new NeuralByteModel(lm, { memoRows: 0, startByte: 0x20 });
    const ctx = enc.encode('extend me');
    for (let n = 0; n <= ctx.length; n++) await m.probabilities([ctx.subarray(0, n)]);
    const s = m.stats;
    expect(s.replayed).toBe(0);
    expect(s.extended).toBe(ctx.length);
    expect(s.forwardCalls).toBe(ctx.length + 1); // the start byte, then one call per byte
    await m.probabilities([enc.encode('xy')]); // no live parent: replayed from the start
    expect(m.stats.replayed).toBe(1);
    expect(m.stats.forwardCalls).toBe(ctx.length + 1 + 3);
  });
});

describe('rows: one fixed path, a function of the context alone', () => {
  it('gives bit-identical rows however contexts are batched, memoized, replayed or plain-coded', async () => {
    const text = enc.encode('Rows must not depend on batching.');
    const prefixes = Array.from({ length: text.length + 1 }, (_, n) => text.subarray(0, n));
    const batched = await new NeuralByteModel(lm).probabilities([...prefixes].reverse());
    const one = new NeuralByteModel(lm, { memoRows: 0 });
    const cursor = await new NeuralByteModel(lm).startDocument();
    for (let n = 0; n < prefixes.length; n++) {
      const single = await one.probabilities([prefixes[n]!]);
      const fromBatch = batched.subarray((prefixes.length - 1 - n) * 256, (prefixes.length - n) * 256);
      expect(sameBits(single, Float64Array.from(fromBatch))).toBe(true);
      expect(sameBits(single, cursor.row)).toBe(true);
      if (n < text.length) await cursor.advance(text[n]!);
    }
  });

  it('matches an independent softmax of one prefill of the schedule view, across the sliding boundary', async () => {
    for (const [limit, startByte] of [[lm.config.context, 0x20], [12, 0x20], [9, null]] as const) {
      const m = new NeuralByteModel(lm, { contextLimit: limit, startByte });
      const context = enc.encode('The sliding window restarts from the last half.');
      for (const n of [1, 5, 11, 12, 13, 20, context.length]) {
        const ctx = context.subarray(0, n);
        const row = await m.probabilities([ctx]);
        const stream = startByte === null ? ctx : Uint8Array.of(startByte, ...ctx);
        const view = scheduleView(stream, limit);
        const logits = await lm.plainSession().forward(view);
        const ref = referenceSoftmax(logits, (view.length - 1) * 256);
        expect(maxAbsDiff(row, ref), `limit ${limit}, context length ${n}`).toBeLessThan(1e-5);
        expect(Math.abs(row.reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-12);
      }
      if (limit === 12) expect(m.stats.slides).toBeGreaterThan(0);
    }
  });

  it('matches the PyTorch reference logits of the model card (no start byte: the model sees the prompt alone)', async () => {
    const m = new NeuralByteModel(lm, { startByte: null });
    const ref = lm.card.reference;
    const prompt = enc.encode(ref.prompt);
    expect(ref.positions.length).toBeGreaterThan(0);
    for (let k = 0; k < ref.positions.length; k++) {
      const p = ref.positions[k]!;
      const row = await m.probabilities([prompt.subarray(0, p + 1)]);
      const expected = referenceSoftmax(Float32Array.from(ref.logits[k]!), 0);
      expect(maxAbsDiff(row, expected), `position ${p}`).toBeLessThan(1e-4); // one position off differs by ~1e-3 even untrained
    }
  });

  it("gives the empty context the uniform row with firstByte 'uniform'", async () => {
    const m = new NeuralByteModel(lm, { firstByte: 'uniform' });
    const row = await m.probabilities([new Uint8Array(0)]);
    expect(row.every((x) => x === 1 / 256)).toBe(true);
    expect(m.stats.forwardCalls).toBe(0);
  });

  it('gives the empty context the stationary distribution of the one-byte chain by default, the same every time', async () => {
    const m = new NeuralByteModel(lm);
    const pi = await m.probabilities([new Uint8Array(0)]);
    expect(m.stats.forwardCalls).toBe(256);
    const rows = await new NeuralByteModel(lm, { firstByte: 'uniform' }).probabilities(Array.from({ length: 256 }, (_, a) => Uint8Array.of(a)));
    // pi P = pi (P's rows are the rows of the one-byte contexts), and pi is a distribution.
    const piP = new Float64Array(256);
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) piP[b]! += pi[a]! * rows[a * 256 + b]!;
    expect(maxAbsDiff(piP, pi)).toBeLessThan(1e-9);
    expect(Math.abs(pi.reduce((s, x) => s + x, 0) - 1)).toBeLessThan(1e-12);
    expect(pi.every((x) => x > 0)).toBe(true);
    m.clear(); // kept: a function of the model
    expect(sameBits(await m.probabilities([new Uint8Array(0)]), pi)).toBe(true);
    expect(m.stats.forwardCalls).toBe(256);
    expect(sameBits(await (await NeuralByteModel.load('draft')).probabilities([new Uint8Array(0)]), pi)).toBe(true);
  });

  it('softmaxRow is shift-invariant and rejects non-finite logits', () => {
    const logits = Float64Array.from({ length: 256 }, (_, i) => Math.sin(i) * 5);
    const shifted = logits.map((x) => x + 100);
    expect(maxAbsDiff(softmaxRow(logits), softmaxRow(shifted))).toBeLessThan(1e-12);
    expect(() => softmaxRow(new Float32Array(256).fill(-Infinity))).toThrow(RangeError);
  });
});

describe('plain coding with the neural model', () => {
  it('round-trips across several slides of a small context limit, with the same payload every time', async () => {
    const m = new NeuralByteModel(lm, { contextLimit: 16 });
    const text = enc.encode(sampleText(1).slice(0, 150));
    const { payload, modelBits } = await compressNeuralMeasured(m, text);
    expect(m.stats.slides).toBeGreaterThan(5);
    expect(await decompressNeural(m, payload, text.length)).toEqual(text);
    expect(await compressNeural(new NeuralByteModel(lm, { contextLimit: 16 }), text)).toEqual(payload);
    // The coder spends at most a few bytes over the model's ideal code length.
    expect(payload.length * 8).toBeGreaterThanOrEqual(modelBits - 8);
    expect(payload.length * 8).toBeLessThan(modelBits * 1.02 + 64);
    // Another limit is another model: the payload differs, or decodes to other bytes.
    const other = new NeuralByteModel(lm, { contextLimit: 32 });
    expect(await compressNeural(other, text)).not.toEqual(payload);
  });

  it('round-trips empty, one-byte and binary documents with the full context', async () => {
    const m = new NeuralByteModel(lm);
    for (const doc of DOCS) {
      const payload = await compressNeural(m, doc);
      expect(await decompressNeural(m, payload, doc.length)).toEqual(doc);
    }
  });
});

describe('the JS range coder', () => {
  it('round-trips skewed and flat distributions (carries, long 0xff runs), and quantizes every byte to >= 1', () => {
    let seed = 12345;
    const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const tables: Float64Array[] = [];
    for (let t = 0; t < 8; t++) {
      const p = Float64Array.from({ length: 256 }, () => rand() ** (t * 4 + 1));
      p[t * 31] = t % 2 === 0 ? 1e6 : 1; // very confident on even tables
      const cum = quantizeProbabilities(p);
      expect(cum[0]).toBe(0);
      expect(cum[256]).toBe(65536);
      for (let j = 0; j < 256; j++) expect(cum[j + 1]! - cum[j]!).toBeGreaterThanOrEqual(1);
      tables.push(cum);
    }
    const symbols: number[] = [];
    const enc2 = new JsRangeEncoder();
    for (let i = 0; i < 40000; i++) {
      const t = i % 8;
      const b = rand() < 0.9 ? t * 31 : Math.floor(rand() * 256);
      symbols.push(b);
      enc2.encode(tables[t]!, b);
    }
    const payload = enc2.finish();
    const dec = new JsRangeDecoder(payload);
    const back = symbols.map((_, i) => dec.decode(tables[i % 8]!));
    expect(back).toEqual(symbols);
  });

  it('rejects bad weights and short payloads, naming the argument', () => {
    expect(() => quantizeProbabilities(new Float64Array(256))).toThrow(/probabilities: expected weights with a positive finite sum/);
    const bad = new Float64Array(256).fill(1);
    bad[3] = -1;
    expect(() => quantizeProbabilities(bad)).toThrow(/probabilities\[3\]: expected a finite number >= 0, received -1/);
    expect(() => new JsRangeDecoder(new Uint8Array(3))).toThrow(RangeError);
    expect(() => new JsRangeDecoder([1, 2, 3, 4, 5] as unknown as Uint8Array)).toThrow(TypeError);
  });
});

describe('errors', () => {
  it('validates the model and every option, naming argument, expected and received', async () => {
    expect(() => new NeuralByteModel({} as ByteLm)).toThrow(/lm: expected a ByteLm/);
    expect(() => new NeuralByteModel(lm, { startByte: 256 })).toThrow(RangeError);
    expect(() => new NeuralByteModel(lm, { startByte: 256 })).toThrow(/options\.startByte: expected an integer in \[0, 255\], received 256/);
    expect(() => new NeuralByteModel(lm, { firstByte: 'space' as never })).toThrow(/options\.firstByte: expected 'stationary' or 'uniform', received "space"/);
    expect(() => new NeuralByteModel(lm, { contextLimit: 1 })).toThrow(/options\.contextLimit: expected an integer in \[2, /);
    expect(() => new NeuralByteModel(lm, { contextLimit: lm.config.context + 1 })).toThrow(RangeError);
    expect(() => new NeuralByteModel(lm, { memoRow: 3 } as never)).toThrow(/unknown option "memoRow" \(did you mean "memoRows"\?\)/);
    await expect(NeuralByteModel.load('/nonexistent/model-dir')).rejects.toThrow(/^model: expected .*config\.json/);
    const m = new NeuralByteModel(lm);
    await expect(m.probabilities('abc' as never)).rejects.toThrow(/contexts: expected an array of Uint8Arrays/);
    await expect(m.probabilities([new Uint8Array(1), [1] as never])).rejects.toThrow(TypeError);
    await expect(compressNeural({} as NeuralByteModel, 'x')).rejects.toThrow(/model: expected a NeuralByteModel/);
    await expect(compressNeural(m, 42 as never)).rejects.toThrow(TypeError);
    await expect(decompressNeural(m, new Uint8Array(2), 4)).rejects.toThrow(/payload: expected at least 5 bytes/);
    await expect(decompressNeural(m, new Uint8Array(5), -1)).rejects.toThrow(/length: expected an integer in \[0, /);
    // A payload cut short fails instead of inventing bytes.
    const text = enc.encode(sampleText(1).slice(0, 80));
    const payload = await compressNeural(m, text);
    await expect(decompressNeural(m, payload.subarray(0, payload.length - 6), text.length)).rejects.toThrow(/payload: expected a complete payload/);
  });
});
