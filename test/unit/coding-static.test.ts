import { describe, expect, it } from 'vitest';
import { compressStatic, decompressStatic, compressStaticBatchAsync, decompressStaticBatchAsync } from '../../lib/coding/static.js';
import { quantizeForRawCoder } from '../../lib/coding/raw.js';
import { native } from '../../lib/native.js';
import { setThreads } from '../../lib/backend.js';
import { awkwardDocs, randomBytes, sampleText, testModel } from './coding-fixtures.js';

const enc = new TextEncoder();

/** -log2 p of each byte under the model's own masses (float64), summed: what an ideal coder would spend. */
function idealBits(model: ReturnType<typeof testModel>, text: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < text.length; i++) {
    const ctx = text.subarray(Math.max(0, i - model.maxOrder), i);
    const p = model.probabilities(ctx);
    bits -= Math.log2(p[text[i]!]!);
  }
  return bits;
}

describe('plain coding with a static model', () => {
  const model = testModel();

  it('round-trips awkward documents exactly, alone and in a batch, for any thread count', async () => {
    const docs = awkwardDocs();
    const single = docs.map((d) => compressStatic(model, d));
    single.forEach((p, i) => expect(Buffer.from(decompressStatic(model, p, docs[i]!.length)).equals(Buffer.from(docs[i]!))).toBe(true));
    setThreads(1);
    const batch1 = await compressStaticBatchAsync(model, docs);
    setThreads(2);
    const batch2 = await compressStaticBatchAsync(model, docs);
    expect(batch1).toEqual(single);
    expect(batch2).toEqual(single);
    const back = await decompressStaticBatchAsync(model, batch2, docs.map((d) => d.length));
    back.forEach((d, i) => expect(Buffer.from(d).equals(Buffer.from(docs[i]!))).toBe(true));
  });

  it("spends within 1% (+ 8 bytes) of the ideal code length under the model (the quantized table may differ slightly either way)", () => {
    const text = enc.encode(sampleText(8));
    const ideal = idealBits(model, text) / 8;
    const got = compressStatic(model, text).length;
    expect(got).toBeLessThanOrEqual(ideal * 1.01 + 8);
    expect(got).toBeGreaterThanOrEqual(ideal * 0.99 - 1);
  });

  it('rejects corrupt and truncated payloads with a RangeError, never a crash', () => {
    const text = enc.encode(sampleText(3));
    const p = compressStatic(model, text);
    expect(() => decompressStatic(model, p.subarray(0, p.length - 6), text.length)).toThrow(RangeError);
    expect(() => decompressStatic(model, p, text.length * 50)).toThrow(/not a stream this model wrote/);
    expect(() => decompressStatic(model, p.subarray(0, 3), 2 ** 30)).toThrow(/lengths\[0\]: expected at most 11384 bytes \(the most a 3-byte payload can hold\)/);
    for (let k = 0; k < 200; k++) {
      const bad = randomBytes(1 + (k % 40), k + 3);
      try {
        decompressStatic(model, bad, 1 + (k % 300));
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
      }
    }
    expect(() => decompressStatic(model, p, -1)).toThrow(/lengths\[0\]: expected an integer in \[0, 4294967296\], received -1/);
    expect(() => compressStatic({} as never, text)).toThrow(/model: expected a ByteModel/);
  });
});

describe('the raw coder (one fixed distribution)', () => {
  it('round-trips and spends within 0.5% of the entropy', () => {
    const p = new Float64Array(256).map((_, i) => Math.pow(0.93, i) + 1e-4);
    const { freqs, totalLog2 } = quantizeForRawCoder(p);
    expect(freqs.reduce((a, b) => a + b, 0)).toBe(2 ** totalLog2);
    // Bytes drawn from p by inverse CDF on a fixed sequence.
    const cdf: number[] = [];
    let acc = 0;
    const sum = p.reduce((a, b) => a + b, 0);
    for (const x of p) cdf.push((acc += x / sum));
    const u = randomBytes(400000, 7);
    const data = new Uint8Array(100000);
    for (let i = 0; i < data.length; i++) {
      const r = (u[4 * i]! + 256 * u[4 * i + 1]! + 65536 * u[4 * i + 2]!) / 2 ** 24;
      data[i] = cdf.findIndex((c) => r < c);
    }
    const payload = native().rawEncode({ freqs, totalLog2, data });
    const back = native().rawDecode({ freqs, totalLog2, payload, length: data.length, maxBytes: data.length });
    expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true);
    let ideal = 0;
    for (const b of data) ideal -= Math.log2(freqs[b]! / 2 ** totalLog2);
    expect(payload.length * 8).toBeLessThan(ideal * 1.005 + 64);
  });

  it('checks the table and the length', () => {
    const { freqs } = quantizeForRawCoder(new Float64Array(256).fill(1));
    const bad = Uint32Array.from(freqs);
    bad[3] = 0;
    expect(() => native().rawEncode({ freqs: bad, totalLog2: 16, data: new Uint8Array(4) })).toThrow(/freqs\[3\]: expected >= 1, received 0/);
    expect(() => native().rawEncode({ freqs, totalLog2: 15, data: new Uint8Array(4) })).toThrow(/freqs: expected a sum of 2\^15/);
    expect(() => native().rawDecode({ freqs, totalLog2: 16, payload: new Uint8Array(8), length: 100, maxBytes: 10 })).toThrow(/length: expected an integer in \[0, maxBytes\]/);
    expect(() => quantizeForRawCoder(new Float64Array(255))).toThrow(/probabilities: expected 256 non-negative weights/);
  });
});
