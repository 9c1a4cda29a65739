// callbackScorer (lib/prompt/callback-scorer.ts) driving compressPrompt with a
// token classifier run by onnxruntime-node: a graph the test builds in memory
// (ids -> Gather(embedding) -> MatMul(w) -> Sigmoid = P(keep) per token), the
// result checked against a JS reference computed from the same weights; and
// the checks on the callbacks' outputs.
import { describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../bench/onnx-proto.js';
import { callbackScorer } from '../../lib/prompt/callback-scorer.js';
import { compressPrompt } from '../../lib/prompt/llmlingua2.js';
import { cl100kCounter } from '../../lib/prompt/tokenizers.js';
import type { Span } from '../../lib/prompt/types.js';
import { mulberry32 } from '../reference/random.js';
import { refPercentile } from '../reference/percentile.js';

const DIM = 4;

/** ids int64 [n] -> Gather(emb [V, DIM]) -> MatMul(w [DIM, 1]) -> Sigmoid -> probs f32 [n, 1]. */
function classifierModel(emb: Float32Array, w: Float32Array, vocab: number): Uint8Array {
  return encodeModel({
    name: 'token_keep_classifier',
    nodes: [
      { op: 'Gather', inputs: ['emb', 'ids'], outputs: ['h'], attrs: { axis: { i: 0 } } },
      { op: 'MatMul', inputs: ['h', 'w'], outputs: ['logit'] },
      { op: 'Sigmoid', inputs: ['logit'], outputs: ['probs'] },
    ],
    inputs: [{ name: 'ids', elem: 'int64', dims: ['n'] }],
    outputs: [{ name: 'probs', elem: 'float32', dims: ['n', 1] }],
    initializers: [
      { name: 'emb', elem: 'float32', dims: [vocab, DIM], values: Array.from(emb) },
      { name: 'w', elem: 'float32', dims: [DIM, 1], values: Array.from(w) },
    ],
  });
}

/** Whitespace-separated tokens. */
function whitespaceSpans(text: string): Span[] {
  return Array.from(text.matchAll(/\S+/g), (m) => ({ start: m.index, end: m.index + m[0].length }));
}


describe('callbackScorer with an onnxruntime-node token classifier', () => {
  test('compressPrompt keeps the words a JS reference of the same weights keeps', async () => {
    const words = ('alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon ' +
      'phi chi psi omega').split(' ');
    const vocab = new Map(words.map((w, i) => [w, i + 1])); // 0 = unknown
    const V = words.length + 1;
    const rng = mulberry32(21);
    // Well separated logits: each word's probability differs from the others by far more than float32 rounding.
    const emb = new Float32Array(V * DIM);
    const w = Float32Array.of(1, 0.5, -0.25, 0.125);
    const perm = Array.from({ length: V }, (_, i) => i).sort(() => rng() - 0.5);
    for (let v = 0; v < V; v++) {
      emb[v * DIM] = (perm[v]! - V / 2) * 0.37;
      for (let d = 1; d < DIM; d++) emb[v * DIM + d] = 0;
    }
    const session = await ort.InferenceSession.create(classifierModel(emb, w, V));
    const idOf = (tok: string) => vocab.get(tok) ?? 0;
    let calls = 0;
    const scorer = callbackScorer({
      name: 'onnx-clf',
      maxTokens: 7,
      tokenize: whitespaceSpans,
      score: async (text, tokens) => {
        calls++;
        const ids = BigInt64Array.from(tokens, (t) => BigInt(idOf(text.slice(t.start, t.end))));
        const out = await session.run({ ids: new ort.Tensor('int64', ids, [ids.length]) });
        return out.probs!.data as Float32Array;
      },
    });
    expect(scorer.name).toBe('onnx-clf');
    expect(scorer.maxTokens).toBe(7);

    const sentence = Array.from({ length: 40 }, () => words[Math.floor(rng() * words.length)]!);
    sentence[12] = '.'; // an unknown token that ends a chunk
    const text = sentence.join(' ');
    const rate = 1 / 3;
    const r = await compressPrompt(text, { scorer, rate });

    // Reference: sigmoid(emb[id] . w) in float64, the same chunks (cut after a token ending in a chunk end), per-chunk percentile.
    const prob = (tok: string) => 1 / (1 + Math.exp(-(emb[idOf(tok) * DIM]! * w[0]!)));
    const toks = text.split(' ');
    const bounds = [0];
    for (let st = 0; st < toks.length; ) {
      if (toks.length - st <= 7) { bounds.push(toks.length); break; }
      let cut = st + 7;
      for (let i = st + 6; i > st; i--) if (toks[i] === '.') { cut = i + 1; break; }
      bounds.push(cut);
      st = cut;
    }
    const kept: string[] = [];
    for (let c = 0; c + 1 < bounds.length; c++) {
      const idx = Array.from({ length: bounds[c + 1]! - bounds[c]! }, (_, k) => bounds[c]! + k);
      const rep = idx.flatMap((i) => Array<number>(cl100kCounter(toks[i]!)).fill(prob(toks[i]!)));
      const thr = refPercentile(rep, Math.trunc(100 * (1 - rate) + 1));
      for (const i of idx) if (prob(toks[i]!) > thr) kept.push(toks[i]!);
    }
    expect(r.text).toBe(kept.join(' '));
    expect(r.chunks).toBe(bounds.length - 1);
    expect(calls).toBe(bounds.length - 1);
    expect(r.scorer).toBe('onnx-clf');
    await session.release();
  });
});

describe('callbackScorer checks', () => {
  const tokenize = whitespaceSpans;
  test('refuses bad options', () => {
    expect(() => callbackScorer(undefined as never)).toThrow(TypeError);
    expect(() => callbackScorer({ tokenize: 1 as never, score: () => [] })).toThrow(/tokenize: expected a function/);
    expect(() => callbackScorer({ tokenize, score: null as never })).toThrow(/score: expected a function/);
    expect(() => callbackScorer({ tokenize, score: () => [], maxTokens: 0 })).toThrow(/maxTokens: expected an integer >= 1/);
    expect(() => callbackScorer({ tokenize, score: () => [], name: '' })).toThrow(/name/);
    expect(() => callbackScorer({ tokenize, score: () => [], maxToken: 5 } as never)).toThrow(/did you mean "maxTokens"/);
  });
  test('checks tokenize output: ordered, non-overlapping, non-empty, inside the text, integers', async () => {
    const s = (spans: unknown) => callbackScorer({ tokenize: () => spans as Span[], score: () => [] });
    await expect(s([{ start: 0, end: 3 }, { start: 2, end: 4 }]).tokenize('abcdef')).rejects.toThrow(/result\[1\].start: expected an offset >= 3/);
    await expect(s([{ start: 0, end: 7 }]).tokenize('abcdef')).rejects.toThrow(/result\[0\].end/);
    await expect(s([{ start: 0.5, end: 2 }]).tokenize('abcdef')).rejects.toThrow(/result\[0\].start: expected an integer/);
    await expect(s([{ start: -1, end: 2 }]).tokenize('abcdef')).rejects.toThrow(/result\[0\].start/);
    await expect(s([null]).tokenize('abcdef')).rejects.toThrow(/result\[0\]/);
    await expect(s({ length: 0 }).tokenize('abcdef')).rejects.toThrow(/scorer "callback" tokenize\(\) result: expected an array/);
    await expect(s([{ start: 0, end: 2 }]).tokenize('abcdef')).resolves.toEqual([{ start: 0, end: 2 }]);
  });
  test('checks score output: one finite number per token; and the tokens it is given', async () => {
    const s = (out: unknown) => callbackScorer({ tokenize, score: () => out as number[], maxTokens: 3 });
    const toks = whitespaceSpans('a b');
    await expect(s([0.5]).score('a b', toks)).rejects.toThrow(/score\(\) result.length: expected 2/);
    await expect(s([0.5, Infinity]).score('a b', toks)).rejects.toThrow(/result\[1\]: expected a finite number, received Infinity/);
    await expect(s([0.5, null]).score('a b', toks)).rejects.toThrow(TypeError);
    await expect(s(7).score('a b', toks)).rejects.toThrow(/expected an array of 2 numbers/);
    await expect(s([1, 2, 3, 4]).score('a b c d', whitespaceSpans('a b c d'))).rejects.toThrow(/tokens.length: expected at most maxTokens = 3/);
    await expect(s([1, 2]).score('a b', [{ start: 0, end: 9 }])).rejects.toThrow(/tokens result\[0\].end/);
    expect(Array.from(await s(Float32Array.of(0.25, 0.75)).score('a b', toks))).toEqual([0.25, 0.75]);
  });
});
