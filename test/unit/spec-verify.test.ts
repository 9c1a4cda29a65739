// Speculative verification (lib/spec/verify.ts, typical.ts):
// - exactness: speculative decoding with verifyGreedy / verifySampled emits
//   exactly the tokens of plain decoding with sampleAt, for many drafters,
//   prompts, seeds, temperatures, top-k and top-p (a toy hashed target);
// - distribution: over many seeds, the first emitted token (and the second,
//   after an accepted node) follows the target distribution (chi-square);
// - Medusa's typical acceptance against hand-computed thresholds;
// - hostile inputs: clear TypeError / RangeError naming the argument.
import { describe, expect, test } from 'vitest';
import {
  sampleAt, targetDistribution, verifyGreedy, verifySampled, verifyTypical, TYPICAL_DEFAULTS,
  type DraftTree, type SamplingOptions, type VerifyResult,
} from '../../lib/index.js';
import {
  TreeBuilder, chiSquare, chiSquareBound, logitsOfProbs, pathTokens, randInt, rng, targetLogits, treeLogits,
} from './spec-toy.js';

interface Setup { model: number; vocab: number; opts: SamplingOptions }

/** Plain decoding's next token after ctx (its position is ctx.length). */
const nextToken = (s: Setup, ctx: readonly number[]) => sampleAt(targetLogits(s.model, ctx, s.vocab), ctx.length, s.opts);

function plainDecode(s: Setup, prompt: readonly number[], n: number): number[] {
  const ctx = [...prompt];
  while (ctx.length < prompt.length + n) ctx.push(nextToken(s, ctx));
  return ctx.slice(prompt.length);
}

type Drafter = (s: Setup, ctx: readonly number[], r: () => number) => DraftTree;

/** Random shape; each token is the plain continuation of its own path (p = 0.5) or random. */
const randomDrafter: Drafter = (s, ctx, r) => {
  const b = new TreeBuilder(ctx[ctx.length - 1]!);
  const size = 1 + randInt(r, 14);
  while (b.size < size) {
    const parent = randInt(r, b.size);
    const path = [...ctx, ...pathTokens(b.build(), parent)];
    b.add(parent, r() < 0.5 ? nextToken(s, path) : randInt(r, s.vocab));
  }
  return b.build();
};

/** The true continuation to a random depth 0..6 among random decoys, in a random node order. */
const truthAtDepthDrafter: Drafter = (s, ctx, r) => {
  const truth = plainDecode(s, ctx, randInt(r, 7));
  const b = new TreeBuilder(ctx[ctx.length - 1]!);
  let tip = 0;
  let depth = 0;
  const decoys = randInt(r, 10);
  let added = 0;
  while (depth < truth.length || added < decoys) {
    if (depth < truth.length && (added >= decoys || r() < 0.5)) tip = b.add(tip, truth[depth++]!);
    else { b.add(randInt(r, b.size), randInt(r, s.vocab)); added++; }
  }
  return b.build();
};

/** A chain: the true continuation for k tokens, then random ones. */
const chainDrafter: Drafter = (s, ctx, r) => {
  const len = 1 + randInt(r, 8);
  const truth = plainDecode(s, ctx, randInt(r, len + 1));
  const b = new TreeBuilder(ctx[ctx.length - 1]!);
  for (let i = 0; i < len; i++) b.add(i, i < truth.length ? truth[i]! : randInt(r, s.vocab));
  return b.build();
};

/** A wide root whose children repeat tokens (the true one among them), each with one child. */
const wideDuplicatesDrafter: Drafter = (s, ctx, r) => {
  const [t0, t1] = plainDecode(s, ctx, 2) as [number, number];
  const pool = [t0, randInt(r, s.vocab), randInt(r, s.vocab)];
  const b = new TreeBuilder(ctx[ctx.length - 1]!);
  const kids: number[] = [];
  for (let i = 0, n = 4 + randInt(r, 7); i < n; i++) kids.push(b.add(0, pool[randInt(r, pool.length)]!));
  for (const k of kids) b.add(k, r() < 0.5 ? t1 : randInt(r, s.vocab));
  return b.build();
};

const rootOnlyDrafter: Drafter = (_s, ctx) => new TreeBuilder(ctx[ctx.length - 1]!).build();

const DRAFTERS: Record<string, Drafter> = {
  random: randomDrafter, 'truth-at-depth': truthAtDepthDrafter, chain: chainDrafter, 'wide-duplicates': wideDuplicatesDrafter, 'root-only': rootOnlyDrafter,
};

type Verify = (tree: DraftTree, logits: Float32Array, s: Setup, position: number) => VerifyResult;

/** The result is a root path of the tree, with its tokens then one new token. */
function expectWellFormed(tree: DraftTree, r: VerifyResult): void {
  expect(r.acceptedNodes[0]).toBe(0);
  expect(r.tokens.length).toBe(r.acceptedNodes.length);
  for (let i = 1; i < r.acceptedNodes.length; i++) {
    expect(tree.parents[r.acceptedNodes[i]!]).toBe(r.acceptedNodes[i - 1]);
    expect(r.tokens[i - 1]).toBe(tree.tokens[r.acceptedNodes[i]!]);
  }
}

/** Draft -> the target's logits for every node from its own prefix -> verify -> append. */
function specDecode(s: Setup, prompt: readonly number[], n: number, drafter: Drafter, verify: Verify, r: () => number) {
  const ctx = [...prompt];
  let accepted = 0;
  let steps = 0;
  while (ctx.length < prompt.length + n) {
    const tree = drafter(s, ctx, r);
    const res = verify(tree, treeLogits(s.model, ctx, tree, s.vocab), s, ctx.length);
    expectWellFormed(tree, res);
    accepted += res.acceptedNodes.length - 1;
    steps++;
    ctx.push(...res.tokens);
  }
  return { tokens: ctx.slice(prompt.length, prompt.length + n), accepted, steps };
}

const sampled: Verify = (tree, logits, s, position) => verifySampled(tree, logits, s.vocab, { ...s.opts, position });
const greedy: Verify = (tree, logits, s) => verifyGreedy(tree, logits, s.vocab);

const MODELS = [{ model: 1, vocab: 50 }, { model: 2, vocab: 97 }, { model: 3, vocab: 300 }];
const VARIANTS: Record<string, Omit<SamplingOptions, 'temperature' | 'seed'>> = {
  full: {}, 'topK 5': { topK: 5 }, 'topP 0.8': { topP: 0.8 }, 'topK 20 + topP 0.9': { topK: 20, topP: 0.9 },
};
const N_TOKENS = 40;

describe('speculative decoding emits exactly the plain tokens', () => {
  for (const temperature of [0, 0.7, 1.3]) {
    for (const [variant, cut] of Object.entries(VARIANTS)) {
      test(`temperature ${temperature}, ${variant}`, () => {
        const acceptedBy: Record<string, number> = {};
        let runs = 0;
        for (const { model, vocab } of MODELS) {
          for (let p = 0; p < 3; p++) {
            const pr = rng(1000 * model + p);
            const prompt = Array.from({ length: 1 + randInt(pr, 8) }, () => randInt(pr, vocab));
            for (const seed of [p, 0x9e3779b9 + 17 * p]) {
              const s: Setup = { model, vocab, opts: { temperature, ...cut, seed } };
              const plain = plainDecode(s, prompt, N_TOKENS);
              for (const [name, drafter] of Object.entries(DRAFTERS)) {
                const verifiers: Verify[] = temperature === 0 ? [sampled, greedy] : [sampled];
                for (const verify of verifiers) {
                  const spec = specDecode(s, prompt, N_TOKENS, drafter, verify, rng(seed * 31 + model));
                  expect(spec.tokens, `${name}, model ${model}, prompt ${p}, seed ${seed}`).toEqual(plain);
                  acceptedBy[name] = (acceptedBy[name] ?? 0) + spec.accepted;
                  runs++;
                }
              }
            }
          }
        }
        // The check is not vacuous: drafts were accepted, often, deep in trees.
        expect(runs).toBeGreaterThanOrEqual(90);
        expect(acceptedBy['root-only']).toBe(0);
        for (const name of ['random', 'truth-at-depth', 'chain', 'wide-duplicates']) expect(acceptedBy[name], name).toBeGreaterThan(5 * N_TOKENS);
      });
    }
  }

  test('verifyGreedy equals verifySampled at temperature 0 on every tree, and the argmax on ties is the lowest id', () => {
    // Row 0: tokens 3 and 5 tie at the max; greedy takes 3; the child with token 3 is accepted.
    const b = new TreeBuilder(0);
    b.add(0, 5);
    const c3 = b.add(0, 3);
    b.add(c3, 1);
    const tree = b.build();
    const logits = new Float32Array(4 * 8);
    logits.set([0, 0, 0, 2, 0, 2, 0, 0], 0);
    logits.set([0, 0, 0, 0, 0, 0, 0, 9], 2 * 8); // after node 2 (token 3): argmax 7, the child has token 1
    const g = verifyGreedy(tree, logits, 8);
    expect(Array.from(g.acceptedNodes)).toEqual([0, 2]);
    expect(Array.from(g.tokens)).toEqual([3, 7]);
    const s = verifySampled(tree, logits, 8, { temperature: 0, position: 12 });
    expect(s).toEqual(g);
  });
});

describe('sampled verification is lossless in distribution', () => {
  // Root row P (vocab 6, temperature 0.9, topK 5: token 5 is cut); root children
  // tokens [2, 0, 2 (a duplicate), 4]; node 1 (token 2) has a child with token 1.
  const vocab = 6;
  const opts = { temperature: 0.9, topK: 5 };
  const rootRow = Float32Array.from([0.4, -0.3, 1.1, 0.2, 0.7, -2]);
  const childRow = Float32Array.from([0.1, 1.3, -0.5, 0.9, 0.9, 0.2]);
  const b = new TreeBuilder(3);
  const n1 = b.add(0, 2);
  b.add(0, 0);
  b.add(0, 2);
  b.add(0, 4);
  b.add(n1, 1);
  const tree = b.build();
  const logits = new Float32Array(tree.tokens.length * vocab);
  for (let i = 0; i < tree.tokens.length; i++) logits.set(i === n1 ? childRow : rootRow, i * vocab);
  const N = 40_000;
  const position = 7;

  const first = new Array<number>(vocab).fill(0);
  const second = new Array<number>(vocab).fill(0);
  let dupAccepted = 0;
  for (let seed = 0; seed < N; seed++) {
    const r = verifySampled(tree, logits, vocab, { ...opts, seed, position });
    first[r.tokens[0]!]!++;
    if (r.acceptedNodes[1] === 3) dupAccepted++;
    if (r.acceptedNodes[1] === n1) second[r.tokens[1]!]!++;
  }
  const p1 = targetDistribution(rootRow, opts);
  const p2 = targetDistribution(childRow, opts);

  test('the first token follows the root distribution; the duplicate sibling is never accepted', () => {
    expect(p1[5]).toBe(0);
    const { stat, df } = chiSquare(first, p1);
    expect(stat).toBeLessThan(chiSquareBound(df));
    expect(dupAccepted).toBe(0);
  });

  test('after the accepted node, the next token follows that node\'s distribution', () => {
    const n = second.reduce((a, c) => a + c, 0);
    expect(n).toBeGreaterThan(N * p1[2]! * 0.9);
    const { stat, df } = chiSquare(second, p2);
    expect(stat).toBeLessThan(chiSquareBound(df));
  });

  test('the bound has power: a distribution off by 0.02 is rejected at this sample size', () => {
    const off = Float64Array.from(p1);
    off[0]! += 0.02;
    off[2]! -= 0.02;
    const { stat, df } = chiSquare(first, off);
    expect(stat).toBeGreaterThan(chiSquareBound(df));
  });
});

describe('typical acceptance (Medusa, lossy)', () => {
  // vocab 12, temperature 0.7 (the default): logits = 0.7 ln p, so softmax(logits / 0.7) = p.
  // Bound = min(0.09, 0.3 exp(-H)), H = -sum p ln(p + 1e-5) (computed by hand, 4 digits):
  const A = [0.5, 0.3, 0.15, 0.05]; // H 1.1421, 0.3 e^-H 0.0957 -> bound 0.09
  const F = [0.25, 0.25, 0.25, 0.25]; // H 1.3863, 0.3 e^-H 0.0750 -> bound 0.0750
  const P = [0.97, 0.01, 0.01, 0.01]; // H 0.1677, 0.3 e^-H 0.2537 -> bound 0.09
  const H = [0.28, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.08, 0.0335, 0.0305, 0.016]; // H 2.2585, bound 0.03135
  const X = [0.1, 0.2, 0.3, 0.4]; // argmax 3
  const vocab = 12;
  const row = (p: number[]) => logitsOfProbs([...p, ...new Array<number>(vocab - p.length).fill(0)], 0.7);

  /** The hand case; withNode10 adds the likelier length-3 path 0 -> 3 -> 9 -> 10. */
  function handCase(withNode10: boolean) {
    const b = new TreeBuilder(7);
    const rows: number[][] = [A]; // row of node 0
    const add = (parent: number, token: number, r: number[]) => { rows.push(r); return b.add(parent, token); };
    add(0, 3, P); // 1: p 0.05 < 0.09, rejected
    add(0, 2, F); // 2: p 0.15 > 0.09
    add(0, 0, P); // 3: p 0.5
    add(2, 1, H); // 4: p 0.25 > 0.075
    add(3, 1, A); // 5: p 0.01 < 0.09, rejected
    add(4, 10, A); // 6: p 0.0305 < 0.03135, rejected
    add(4, 9, A); // 7: p 0.0335 > 0.03135 (accepted through the entropy term: 0.0335 < 0.09)
    add(1, 0, A); // 8: p 0.97 but its parent was rejected
    add(3, 0, A); // 9: p 0.97
    if (withNode10) add(9, 1, X); // 10: p 0.3; path log-lik ln .5 + ln .97 + ln .3 = -1.93 > ln .15 + ln .25 + ln .0335 = -6.68
    const tree = b.build();
    const logits = new Float32Array(tree.tokens.length * vocab);
    rows.forEach((r, i) => logits.set(row(r), i * vocab));
    return { tree, logits };
  }

  test('defaults are Medusa\'s medusa_generate defaults', () => {
    expect(TYPICAL_DEFAULTS).toEqual({ temperature: 0.7, posteriorThreshold: 0.09, posteriorAlpha: 0.3 });
  });

  test('the longest accepted path wins; the new token is its argmax', () => {
    const { tree, logits } = handCase(false);
    const r = verifyTypical(tree, logits, vocab);
    expect(r.lossy).toBe(true);
    expect(Array.from(r.acceptedNodes)).toEqual([0, 2, 4, 7]);
    expect(Array.from(r.tokens)).toEqual([2, 1, 9, 0]);
    // Lossy: greedy accepts only argmax tokens (token 0 at the root, then 0 after node 3).
    expect(Array.from(verifyGreedy(tree, logits, vocab).tokens)).toEqual([0, 0, 0]);
  });

  test('equal lengths: the larger log-likelihood wins over the lower node index', () => {
    const { tree, logits } = handCase(true);
    const r = verifyTypical(tree, logits, vocab);
    expect(Array.from(r.acceptedNodes)).toEqual([0, 3, 9, 10]);
    expect(Array.from(r.tokens)).toEqual([0, 0, 1, 3]);
  });

  test('posteriorAlpha matters: without the entropy term node 7 (p 0.0335) is rejected', () => {
    const { tree, logits } = handCase(false);
    const r = verifyTypical(tree, logits, vocab, { posteriorAlpha: 10 });
    expect(Array.from(r.acceptedNodes)).toEqual([0, 3, 9]);
    const all = verifyTypical(tree, logits, vocab, { posteriorThreshold: 0, posteriorAlpha: 0 });
    expect(all.acceptedNodes.length).toBe(4); // bound 0: every token with p > 0, e.g. 0 -> 2 -> 4 -> 6
  });

  test('equal length and likelihood: the lowest node index; nothing accepted: the argmax of the root', () => {
    const b = new TreeBuilder(0);
    b.add(0, 1);
    b.add(0, 0);
    const logits = new Float32Array(3 * vocab);
    logits.set(row(F), 0);
    expect(Array.from(verifyTypical(b.build(), logits, vocab).acceptedNodes)).toEqual([0, 1]);
    const none = new TreeBuilder(0);
    none.add(0, 9);
    const l2 = new Float32Array(2 * vocab);
    l2.set(row(X), 0);
    const r = verifyTypical(none.build(), l2, vocab);
    expect(Array.from(r.acceptedNodes)).toEqual([0]);
    expect(Array.from(r.tokens)).toEqual([3]);
  });

  test('temperature 0 accepts argmax tokens only, like verifyGreedy', () => {
    const { tree, logits } = handCase(true);
    const r = verifyTypical(tree, logits, vocab, { temperature: 0 });
    const g = verifyGreedy(tree, logits, vocab);
    expect(Array.from(r.acceptedNodes)).toEqual(Array.from(g.acceptedNodes));
    expect(Array.from(r.tokens)).toEqual(Array.from(g.tokens));
  });
});

describe('hostile inputs: clear errors naming the argument', () => {
  const vocab = 4;
  const good = () => ({ tokens: Int32Array.from([1, 2, 3]), parents: Int32Array.from([-1, 0, 1]) });
  const logits = () => new Float32Array(3 * vocab);
  const verifiers = {
    greedy: (t: unknown, l: unknown, v: unknown, o?: unknown) => verifyGreedy(t as DraftTree, l as Float32Array, v as number),
    sampled: (t: unknown, l: unknown, v: unknown, o: unknown = { seed: 1, position: 0 }) => verifySampled(t as DraftTree, l as Float32Array, v as number, o as never),
    typical: (t: unknown, l: unknown, v: unknown, o?: unknown) => verifyTypical(t as DraftTree, l as Float32Array, v as number, o as never),
  };

  const CASES: [string, () => [unknown, unknown, unknown], ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, RegExp][] = [
    ['tree null', () => [null, logits(), vocab], TypeError, /^tree: expected a draft tree/],
    ['tree a number', () => [3, logits(), vocab], TypeError, /^tree:/],
    ['tokens missing', () => [{ parents: good().parents }, logits(), vocab], TypeError, /^tree\.tokens: expected an Int32Array/],
    ['tokens Float32Array', () => [{ ...good(), tokens: new Float32Array(3) }, logits(), vocab], TypeError, /^tree\.tokens:/],
    ['token >= vocab', () => [{ ...good(), tokens: Int32Array.from([1, 4, 0]) }, logits(), vocab], RangeError, /^tree\.tokens\[1\]: expected a token id in \[0, 3\]/],
    ['token negative', () => [{ ...good(), tokens: Int32Array.from([-1, 0, 0]) }, logits(), vocab], RangeError, /^tree\.tokens\[0\]/],
    ['token NaN in an array', () => [{ ...good(), tokens: [0, NaN, 1] }, logits(), vocab], RangeError, /^tree\.tokens\[1\]/],
    ['token 1.5 in an array', () => [{ ...good(), tokens: [0, 1.5, 1] }, logits(), vocab], RangeError, /^tree\.tokens\[1\]/],
    ['no nodes', () => [{ tokens: new Int32Array(0), parents: new Int32Array(0) }, new Float32Array(0), vocab], RangeError, /^tree\.tokens: expected at least one node/],
    ['parents[0] not -1', () => [{ ...good(), parents: Int32Array.from([0, 0, 1]) }, logits(), vocab], RangeError, /^tree\.parents\[0\]/],
    ['parent after child', () => [{ ...good(), parents: Int32Array.from([-1, 0, 2]) }, logits(), vocab], RangeError, /^tree\.parents\[2\]/],
    ['second root', () => [{ ...good(), parents: Int32Array.from([-1, -1, 0]) }, logits(), vocab], RangeError, /^tree\.parents\[1\]/],
    ['parents shorter', () => [{ ...good(), parents: Int32Array.from([-1, 0]) }, logits(), vocab], RangeError, /^tree\.parents\.length: expected tree\.tokens\.length = 3/],
    ['logits an array', () => [good(), [0, 0], vocab], TypeError, /^logits: expected a Float32Array/],
    ['logits short', () => [good(), new Float32Array(11), vocab], RangeError, /^logits\.length: expected nodes x vocab = 3 x 4 = 12, received 11/],
    ['logits long', () => [good(), new Float32Array(13), vocab], RangeError, /^logits\.length/],
    ['vocab 0', () => [good(), logits(), 0], RangeError, /^vocab: expected an integer in \[1,/],
    ['vocab 2.5', () => [good(), logits(), 2.5], RangeError, /^vocab: expected an integer/],
    ['vocab a string', () => [good(), logits(), '4'], TypeError, /^vocab:/],
    ['NaN logit on the root row', () => { const l = logits(); l[2] = NaN; return [good(), l, vocab]; }, RangeError, /^logits \(row 0\)\[2\]: expected a finite logit or -Infinity, received NaN/],
    ['+Infinity logit', () => { const l = logits(); l[1] = Infinity; return [good(), l, vocab]; }, RangeError, /^logits \(row 0\)\[1\]/],
    ['a row of -Infinity', () => { const l = logits(); l.fill(-Infinity, 0, 4); return [good(), l, vocab]; }, RangeError, /^logits \(row 0\): expected at least one finite logit/],
  ];
  for (const [name, make, ctor, message] of CASES) {
    for (const [vname, verify] of Object.entries(verifiers)) {
      test(`${vname}: ${name}`, () => {
        const [t, l, v] = make();
        expect(() => verify(t, l, v)).toThrow(ctor);
        expect(() => verify(t, l, v)).toThrow(message);
      });
    }
  }

  test('a NaN on a row the walk never visits is not read', () => {
    const l = logits();
    l.fill(NaN, 2 * vocab); // row 2: node 2 is never reached (argmax 0 != token 2 of node 1)
    expect(Array.from(verifyGreedy(good(), l, vocab).tokens)).toEqual([0]);
  });

  test('options: misspelled, wrong types, out of range, missing seed / position', () => {
    const t = good();
    const l = logits();
    const s = (o: unknown) => () => verifySampled(t, l, vocab, o as never);
    expect(s({ seed: 1, position: 0, temprature: 1 })).toThrow(/unknown option "temprature" \(did you mean "temperature"\?\)/);
    expect(s({ seed: 1 })).toThrow(TypeError);
    expect(s({ seed: 1 })).toThrow(/^options\.position: expected an integer, received undefined/);
    expect(s({ position: 0 })).toThrow(/^options\.seed: expected an integer in \[0, 2\^53\) \(required when temperature > 0\)/);
    expect(s({ position: 0, temperature: 0 })).not.toThrow();
    expect(s({ seed: -1, position: 0 })).toThrow(/^options\.seed: expected an integer >= 0, received -1/);
    expect(s({ seed: 1, position: -3 })).toThrow(/^options\.position/);
    expect(s({ seed: 1, position: 2 ** 53 - 2 })).toThrow(/^options\.position: expected at most 2\^53 - 1 - nodes/);
    expect(s({ seed: 1, position: 0, temperature: -0.1 })).toThrow(/^options\.temperature: expected a number >= 0/);
    expect(s({ seed: 1, position: 0, temperature: Infinity })).toThrow(/^options\.temperature: expected a finite number/);
    expect(s({ seed: 1, position: 0, topP: 0 })).toThrow(/^options\.topP: expected a number in \(0, 1\]/);
    expect(s({ seed: 1, position: 0, topP: 1.5 })).toThrow(/^options\.topP/);
    expect(s({ seed: 1, position: 0, topK: 2.5 })).toThrow(/^options\.topK: expected an integer/);
    expect(s(null)).toThrow(/^options: expected an options object/);
    expect(s(undefined)).toThrow(/^options\.position/);
    const ty = (o: unknown) => () => verifyTypical(t, l, vocab, o as never);
    expect(ty({ posteriorTreshold: 0.1 })).toThrow(/did you mean "posteriorThreshold"/);
    expect(ty({ posteriorAlpha: -1 })).toThrow(/^options\.posteriorAlpha: expected a number >= 0/);
    expect(ty({ posteriorThreshold: NaN })).toThrow(/^options\.posteriorThreshold: expected a finite number/);
    expect(ty({ temperature: '1' })).toThrow(TypeError);
  });

  test('a tree whose fields are getters is read once per field; inputs are not modified', () => {
    let reads = 0;
    const inner = good();
    const tree = { get tokens() { reads++; return inner.tokens; }, get parents() { reads++; return inner.parents; } };
    const l = logits();
    l[3] = 1;
    const before = Float32Array.from(l);
    expect(Array.from(verifyGreedy(tree as unknown as DraftTree, l, vocab).tokens)).toEqual([3]);
    expect(reads).toBe(2);
    expect(l).toEqual(before);
    expect(Array.from(inner.tokens)).toEqual([1, 2, 3]);
  });
});
