import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { EqualInfoTokenizer, type ModelCallback } from '../../lib/coding/equal-info.js';
import { byteBigramModel } from '../../bench/ort-graphs.js';
import { sampleText } from './coding-fixtures.js';

/** Bigram logits (log of add-one counts) from a text; row 256 is the window start. */
function bigramLogits(text: Uint8Array): Float32Array {
  const counts = new Float64Array(257 * 256).fill(1);
  let prev = 256;
  for (const b of text) {
    counts[prev * 256 + b]! += 1;
    prev = b;
  }
  return Float32Array.from(counts, Math.log);
}

describe('a bring-your-own model through onnxruntime-node', () => {
  it('drives the Equal-Info tokenizer: exact round trip, same tokens every time, fewer tokens than bytes', async () => {
    const text = new TextEncoder().encode(sampleText(30));
    const session = await ort.InferenceSession.create(byteBigramModel(bigramLogits(text)));
    let calls = 0;
    const model: ModelCallback = async (contexts) => {
      calls++;
      const prev = BigInt64Array.from(contexts, (c) => BigInt(c.length === 0 ? 256 : c[c.length - 1]!));
      const out = await session.run({ prev: new ort.Tensor('int64', prev, [prev.length]) });
      return out.probs!.data as Float32Array;
    };
    const tok = new EqualInfoTokenizer({ model, windowBits: 32, tokenBits: 16 });
    const docs = [sampleText(2), 'a short one', '', 'ünïcödé ✓'];
    const ids = await tok.encodeBatchAsync(docs);
    const again = await tok.encodeBatchAsync(docs);
    expect(again).toEqual(ids);
    const back = await tok.decodeBatchAsync(ids);
    expect(back.map((b) => new TextDecoder().decode(b))).toEqual(docs);
    expect(calls).toBeGreaterThan(0);
    const bytes = new TextEncoder().encode(docs[0]).length;
    expect(ids[0]!.length * 2).toBeLessThan(bytes * 0.6);
    await session.release();
  });
});
