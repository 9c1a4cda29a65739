// Token-level Kneser-Ney (lib/tokenizer/token-kn.ts, native/text/token_kn.cpp)
// against the float64 reference of the same formula (test/reference/token-kn.ts)
// on small vocabularies, every context length, orders 1..4; hostile blobs.
import { describe, expect, test } from 'vitest';
import { TokenKnModel } from '../../lib/tokenizer/token-kn.js';
import { native } from '../../lib/native.js';
import { knReference } from '../reference/token-kn.js';
import { mulberry32 } from '../reference/random.js';

function randomTokens(seed: number, n: number, vocab: number): number[] {
  const rng = mulberry32(seed);
  const out: number[] = [];
  // skewed and repetitive (a few frequent ids, repeated phrases) so every count-of-count is hit
  for (let i = 0; i < n; i++) {
    if (i >= 4 && rng() < 0.3) out.push(out[i - 3]!);
    else out.push(Math.floor(vocab * rng() ** 2));
  }
  return out;
}

describe('TokenKnModel against the float64 reference', () => {
  test.each([
    [1, 17, 1, 5],
    [2, 600, 2, 13],
    [3, 999, 3, 29],
    [4, 1500, 4, 7],
    [5, 2, 3, 3],
  ])('seed %i: %i tokens, order %i, vocab %i', (seed, n, order, vocab) => {
    const toks = randomTokens(seed, n, vocab);
    const kn = TokenKnModel.train(Uint32Array.from(toks), vocab, { order });
    const ref = knReference(toks, vocab, order);
    for (let k = 0; k < order; k++) {
      expect(kn.discounts(k, 'raw')).toEqual(ref.discounts[k]!.slice(0, 3).map((v) => expect.closeTo(v, 12)));
      expect(kn.discounts(k, 'cont')).toEqual(ref.discounts[k]!.slice(3).map((v) => expect.closeTo(v, 12)));
    }
    const rng = mulberry32(seed + 100);
    const contexts: number[][] = [[], [toks[0]!], toks.slice(0, 2), toks.slice(-3), [vocab - 1, vocab - 1, vocab - 1]];
    for (let i = 0; i < 20; i++) {
      const at = Math.floor(rng() * toks.length);
      contexts.push(toks.slice(Math.max(0, at - 4), at));
    }
    for (const c of contexts) {
      const mine = kn.nextTokenProbs(c);
      const want = ref.next(c);
      let sum = 0;
      for (let w = 0; w < vocab; w++) {
        expect(mine[w]).toBeCloseTo(want[w]!, 12);
        expect(mine[w]).toBeGreaterThan(0);
        sum += mine[w]!;
      }
      expect(sum).toBeCloseTo(1, 12);
    }
  });

  test('empty training: uniform; bits() sums -log2 P', () => {
    const kn = TokenKnModel.train([], 4);
    expect(Array.from(kn.nextTokenProbs([1, 2]))).toEqual([0.25, 0.25, 0.25, 0.25]);
    const toks = randomTokens(9, 300, 11);
    const m = TokenKnModel.train(toks, 11);
    const ref = knReference(toks, 11, 3);
    const seq = toks.slice(10, 30);
    let want = 0;
    for (let i = 0; i < seq.length; i++) want -= Math.log2(ref.next(seq.slice(0, i))[seq[i]!]!);
    expect(m.bits(seq)).toBeCloseTo(want, 9);
  });
});

describe('TokenKnModel: arguments and hostile models', () => {
  test('arguments name themselves', () => {
    expect(() => TokenKnModel.train([0, 5], 5)).toThrow(/tokens\[1\]/);
    expect(() => TokenKnModel.train(Uint32Array.of(0, 5), 5)).toThrow(/tokens\[1\]/);
    expect(() => TokenKnModel.train('ab' as never, 5)).toThrow(TypeError);
    expect(() => TokenKnModel.train([0], 0)).toThrow(/vocabSize/);
    expect(() => TokenKnModel.train([0], 5, { order: 9 })).toThrow(/options.order/);
    expect(() => TokenKnModel.train([0], 5, { orders: 2 } as never)).toThrow(TypeError);
    const kn = TokenKnModel.train([0, 1, 2], 5);
    expect(() => kn.nextTokenProbs([7])).toThrow(/context\[0\]/);
    expect(() => kn.nextTokenProbsInto([1], new Float64Array(4))).toThrow(/out/);
    expect(() => kn.discounts(3, 'raw')).toThrow(/k/);
  });
  test('the native query refuses damaged blobs and bad ids, never reads out of bounds', () => {
    const n = native();
    const { blob, discounts } = n.tokenKnTrain({ tokens: Uint32Array.of(0, 1, 2, 1, 0), vocab: 3, order: 2 });
    const out = new Float64Array(3);
    n.tokenKnNext({ blob, discounts, context: Uint32Array.of(1), out });
    expect(out[0]! + out[1]! + out[2]!).toBeCloseTo(1, 12);
    expect(() => n.tokenKnNext({ blob, discounts, context: Uint32Array.of(3), out })).toThrow(/context/);
    expect(() => n.tokenKnNext({ blob: blob.slice(0, blob.length - 1), discounts, context: Uint32Array.of(1), out })).toThrow(RangeError);
    expect(() => n.tokenKnNext({ blob, discounts: discounts.slice(1), context: Uint32Array.of(1), out })).toThrow(/discounts/);
    expect(() => n.tokenKnNext({ blob, discounts, context: Uint32Array.of(1), out: new Float64Array(2) })).toThrow(/out/);
    const rng = mulberry32(4);
    for (let i = 0; i < 300; i++) {
      const bad = blob.slice();
      bad[4 + Math.floor(rng() * (bad.length - 4))] = Math.floor(rng() * 2 ** 32);
      try {
        n.tokenKnNext({ blob: bad, discounts, context: Uint32Array.of(Math.floor(rng() * 3)), out });
      } catch (e) {
        expect(e).toBeInstanceOf(RangeError);
      }
    }
    const badD = discounts.slice();
    badD.fill(NaN);
    expect(() => n.tokenKnNext({ blob, discounts: badD, context: Uint32Array.of(1), out })).toThrow(/discounts/);
  });
});
