// The token LM as a byte model (lib/tokenizer/token-byte-model.ts): plain
// coding round trips and its ideal bits equal the sum of -log2 of the exact
// rows; the Equal-Info callback gives the stepper's rows whatever the batch,
// and the Equal-Info tokenizer round-trips with it.
import { describe, expect, test } from 'vitest';
import { EqualInfoTokenizer } from '../../lib/coding/equal-info.js';
import { TokenByteProbs } from '../../lib/tokenizer/byte-probs.js';
import { TokenKnModel } from '../../lib/tokenizer/token-kn.js';
import { TokenLmByteModel, compressTokenLm, decompressTokenLm } from '../../lib/tokenizer/token-byte-model.js';
import { hashLm, tinyBpe } from '../reference/tiny-bpe.js';

const vocab = tinyBpe(['a|b', 'b|c', 'ab|c', ' |a', ' a|b', 'a|a', 'c|a', ' |b', '.|.', ' | ']);
const TRAIN = 'ab abc cab. aab ba ca  ab abc.. b a c abca bca ab. '.repeat(4);
const kn = TokenKnModel.train(vocab.encode(TRAIN), vocab.size, { order: 3 });

describe('TokenLmByteModel', () => {
  test.each(['', 'a', 'ab abc cab.', 'zz\xff ab  c\n', 'abcabcabc abc'])('plain coding round trip of %j', (text) => {
    const model = new TokenLmByteModel(vocab, kn);
    const data = Uint8Array.from(Buffer.from(text, 'latin1'));
    const { payload, modelBits } = compressTokenLm(model, data);
    expect(decompressTokenLm(model, payload, data.length)).toEqual(data);
    // the ideal bits are the exact rows' -log2 p, recomputed from scratch
    const probs = new TokenByteProbs(vocab, kn);
    let bits = 0;
    for (let i = 0; i < data.length; i++) bits -= Math.log2(probs.nextByteProbs(data.subarray(0, i))[data[i]!]!);
    expect(modelBits).toBeCloseTo(bits, 9);
    expect(payload.length * 8).toBeLessThan(bits + 64);
  });

  test('callback rows equal the stepper rows in any batch order', () => {
    const model = new TokenLmByteModel(vocab, hashLm(vocab.size, 2));
    const probs = new TokenByteProbs(vocab, hashLm(vocab.size, 2));
    const a = Uint8Array.from(Buffer.from('ab ca', 'latin1'));
    const b = Uint8Array.from(Buffer.from('c. a', 'latin1'));
    for (let n = 0; n <= 4; n++) {
      const ctx = [a.subarray(0, n), b.subarray(0, n), a.subarray(0, n)];
      const rows = model.callback(ctx) as Float64Array;
      ctx.forEach((c, i) => expect(rows.subarray(i * 256, (i + 1) * 256)).toEqual(probs.nextByteProbs(c)));
    }
    const rows = model.callback([b.subarray(0, 3)]) as Float64Array; // not a one-byte extension: from scratch
    expect(rows).toEqual(probs.nextByteProbs(b.subarray(0, 3)));
  });

  test('Equal-Info windows round-trip with the callback', async () => {
    const model = new TokenLmByteModel(vocab, kn);
    const tok = new EqualInfoTokenizer({ model: model.callback, windowBits: 16, tokenBits: 16 });
    const text = 'ab abc cab. b a';
    const ids = await tok.encodeAsync(text);
    expect(await tok.decodeAsync(ids)).toBe(text);
  });

  test('arguments', () => {
    const model = new TokenLmByteModel(vocab, kn);
    expect(() => compressTokenLm({} as never, 'a')).toThrow(/model: expected a TokenLmByteModel/);
    expect(() => decompressTokenLm(model, 'x' as never, 1)).toThrow(/payload/);
    expect(() => decompressTokenLm(model, new Uint8Array(5), -1)).toThrow(/length/);
    expect(() => model.rows(['a'] as never)).toThrow(/contexts\[0\]/);
    expect(() => new TokenLmByteModel(vocab, kn, { mask: 'x' } as never)).toThrow(/options.mask/);
  });
});
