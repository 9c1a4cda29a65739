// The speculative decoding loop (lib/spec/decoder.ts) over a toy target
// whose logits are a deterministic function of the prefix: greedy and seeded
// sampled speculation must emit exactly what plain decoding emits, with any
// drafter; the statistics must add up; the target must see the positions
// and commits a real cache needs; bad drafters / targets / options fail
// with errors that name them.
import { describe, expect, test } from 'vitest';
import { speculate, treePositions, type SpecTarget } from '../../lib/spec/decoder.js';
import type { DraftTree, Drafter } from '../../lib/spec/drafter.js';
import { sampleAt } from '../../lib/spec/sampler.js';

const VOCAB = 37;

/** Logits of the token after `prefix`: a hash of its last 3 tokens; some rows peaked, some flat. */
function logitsAfter(prefix: ArrayLike<number>): Float32Array {
  const n = prefix.length;
  let h = 2166136261;
  for (let i = Math.max(0, n - 3); i < n; i++) h = Math.imul(h ^ prefix[i]!, 16777619);
  const peaked = (h >>> 3) % 3 !== 0;
  const out = new Float32Array(VOCAB);
  for (let t = 0; t < VOCAB; t++) {
    let x = Math.imul(h ^ (t * 0x9e3779b1), 0x85ebca6b) >>> 0;
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
    out[t] = ((x >>> 8) / 2 ** 24) * (peaked ? 6 : 1.5);
  }
  return out;
}

/** A target that keeps its committed tokens like a KV cache and checks every call. */
class ToyTarget implements SpecTarget {
  readonly vocab = VOCAB;
  committed: number[] = [];
  pending: DraftTree | undefined;
  calls = 0;
  prefill(tokens: Int32Array): void {
    this.committed.push(...tokens);
  }
  run(tree: DraftTree, positions: Int32Array): Float32Array {
    expect(this.pending).toBeUndefined();
    expect([...positions]).toEqual([...treePositions(tree, this.committed.length)]);
    this.calls++;
    const n = tree.tokens.length;
    const out = new Float32Array(n * VOCAB);
    for (let i = 0; i < n; i++) {
      const path: number[] = [];
      for (let j = i; j >= 0; j = tree.parents[j]!) path.unshift(tree.tokens[j]!);
      out.set(logitsAfter([...this.committed, ...path]), i * VOCAB);
    }
    this.pending = tree;
    return out;
  }
  commit(accepted: Int32Array): void {
    const tree = this.pending!;
    expect(accepted[0]).toBe(0);
    for (let i = 1; i < accepted.length; i++) expect(tree.parents[accepted[i]!]).toBe(accepted[i - 1]);
    for (const node of accepted) this.committed.push(tree.tokens[node]!);
    this.pending = undefined;
  }
}

const chain = (tokens: number[]): DraftTree => ({
  tokens: Int32Array.from(tokens),
  parents: Int32Array.from(tokens, (_, i) => i - 1),
});

/** Proposes nothing: plain decoding through the same loop. */
const noDraft: Drafter = { name: 'none', draft: (ctx) => chain([ctx[ctx.length - 1]!]) };

/** Knows the greedy continuation, proposes `depth` tokens of it with every `wrongEvery`-th one wrong, plus random siblings. */
function oracleDrafter(depth: number, wrongEvery: number, seed: number): Drafter {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return {
    name: 'oracle',
    draft(ctx) {
      const seq = [...ctx];
      const tokens = [ctx[ctx.length - 1]!], parents = [-1];
      let parent = 0;
      for (let d = 0; d < depth; d++) {
        const l = logitsAfter(seq);
        let best = 0;
        for (let t = 1; t < VOCAB; t++) if (l[t]! > l[best]!) best = t;
        const tok = (d + 1) % wrongEvery === 0 ? (best + 1) % VOCAB : best;
        let sibling = Math.floor(rnd() * VOCAB);
        if (sibling === tok) sibling = (tok + 1) % VOCAB;  // siblings carry distinct tokens (checkDraftTree)
        tokens.push(sibling); parents.push(parent);
        tokens.push(tok); parents.push(parent);
        parent = tokens.length - 1;
        seq.push(tok);
      }
      return { tokens: Int32Array.from(tokens), parents: Int32Array.from(parents) };
    },
  };
}

/** A random tree of up to 12 nodes over a small alphabet (many hits); siblings distinct. */
function randomDrafter(seed: number): Drafter {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return {
    name: 'random',
    draft(ctx, maxNodes = 81) {
      const n = Math.min(maxNodes, 1 + Math.floor(rnd() * 12));
      const tokens = [ctx[ctx.length - 1]!], parents = [-1];
      for (let i = 1; i < n; i++) {
        const parent = Math.floor(rnd() * i);
        const used = new Set(tokens.filter((_, j) => parents[j] === parent));
        let tok = Math.floor(rnd() * 4);
        while (used.has(tok)) tok = (tok + 1) % VOCAB;
        parents.push(parent);
        tokens.push(tok);
      }
      return { tokens: Int32Array.from(tokens), parents: Int32Array.from(parents) };
    },
  };
}

function plainGreedy(prompt: number[], n: number): number[] {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) {
    const l = logitsAfter(seq);
    let best = 0;
    for (let t = 1; t < VOCAB; t++) if (l[t]! > l[best]!) best = t;
    seq.push(best);
  }
  return seq.slice(prompt.length);
}

function plainSampled(prompt: number[], n: number, opts: { temperature: number; topK?: number; topP?: number; seed: number }): number[] {
  const seq = [...prompt];
  for (let i = 0; i < n; i++) seq.push(sampleAt(logitsAfter(seq), seq.length, opts));
  return seq.slice(prompt.length);
}

const PROMPTS = [[1], [5, 9, 2], [0, 0, 0, 0, 0, 0, 7], [3, 1, 4, 1, 5, 9, 2, 6]];
const drafters = () => [noDraft, oracleDrafter(5, 4, 1), oracleDrafter(8, 100, 2), randomDrafter(3)];

describe('speculate: exactly plain decoding', () => {
  test.each(PROMPTS.map((p, i) => [i, p] as const))('greedy, prompt %i', async (_, prompt) => {
    const want = plainGreedy(prompt, 40);
    for (const d of drafters()) {
      const target = new ToyTarget();
      const r = await speculate(target, d, Int32Array.from(prompt), { maxTokens: 40 });
      expect([...r.tokens], d.name).toEqual(want);
      expect(r.stop).toBe('maxTokens');
      expect(r.stats.targetCalls).toBe(target.calls);
      // The target holds the prompt and every emitted token but the last (the next root).
      expect(target.committed.length).toBe(prompt.length + 39);
      expect(target.committed.slice(0, prompt.length + 39)).toEqual([...prompt, ...want.slice(0, 39)]);
      expect(r.stats.meanAcceptedPerCall).toBeCloseTo(r.stats.tokens / r.stats.targetCalls, 12);
      expect(r.stats.lossy).toBe(false);
      if (d === noDraft) expect(r.stats.targetCalls).toBe(40);
    }
  });

  test('an oracle drafter needs fewer target calls', async () => {
    const r = await speculate(new ToyTarget(), oracleDrafter(8, 100, 2), Int32Array.from([2, 7]), { maxTokens: 60 });
    expect(r.stats.targetCalls).toBeLessThanOrEqual(Math.ceil(60 / 9) + 1);
    expect(r.stats.accepted).toBeGreaterThan(40);
  });

  test.each([
    { temperature: 0.7, seed: 1 }, { temperature: 1.3, seed: 99 }, { temperature: 1, topK: 5, seed: 7 }, { temperature: 0.9, topP: 0.8, seed: 3 },
  ])('seeded sampling %j', async (opts) => {
    for (const prompt of PROMPTS) {
      const want = plainSampled(prompt, 40, opts);
      for (const d of drafters()) {
        const r = await speculate(new ToyTarget(), d, Int32Array.from(prompt), { maxTokens: 40, verification: { mode: 'sampled', ...opts } });
        expect([...r.tokens], `${d.name} ${JSON.stringify(prompt)}`).toEqual(want);
      }
    }
  });
});

describe('speculate: streaming, stop, abort, errors', () => {
  test('onToken streams every token in order; stopToken ends after emitting it', async () => {
    const want = plainGreedy([4, 4], 30);
    const seen: number[] = [];
    const r = await speculate(new ToyTarget(), oracleDrafter(6, 3, 5), Int32Array.from([4, 4]), { maxTokens: 30, onToken: (t) => seen.push(t) });
    expect(seen).toEqual([...r.tokens]);
    const stopAt = want[10]!;
    const first = want.indexOf(stopAt);
    const s = await speculate(new ToyTarget(), oracleDrafter(6, 3, 5), Int32Array.from([4, 4]), { maxTokens: 30, stopToken: stopAt });
    expect(s.stop).toBe('stopToken');
    expect([...s.tokens]).toEqual(want.slice(0, first + 1));
  });

  test('an AbortSignal stops the loop between target calls', async () => {
    const ac = new AbortController();
    const r = await speculate(new ToyTarget(), noDraft, Int32Array.from([1, 2]), { maxTokens: 50, signal: ac.signal, onToken: () => ac.abort() });
    expect(r.stop).toBe('aborted');
    expect(r.tokens.length).toBe(1);
  });

  test('bad drafters, targets and options are named', async () => {
    const p = Int32Array.from([1, 2]);
    const wrongRoot: Drafter = { name: 'wrongRoot', draft: () => chain([3, 4]) };
    await expect(speculate(new ToyTarget(), wrongRoot, p)).rejects.toThrow(/wrongRoot\.draft\(\)\.tokens\[0\]/);
    const big: Drafter = { name: 'big', draft: (c) => chain([c[c.length - 1]!, 1, 2, 3]) };
    await expect(speculate(new ToyTarget(), big, p, { maxNodes: 2 })).rejects.toThrow(/maxNodes = 2/);
    const short = new ToyTarget();
    short.run = () => new Float32Array(3);
    await expect(speculate(short, noDraft, p)).rejects.toThrow(/target\.run\(\) result/);
    await expect(speculate(new ToyTarget(), noDraft, new Int32Array(0))).rejects.toThrow(/prompt/);
    await expect(speculate(new ToyTarget(), noDraft, Int32Array.from([VOCAB]))).rejects.toThrow(/prompt\[0\]/);
    await expect(speculate(new ToyTarget(), noDraft, p, { maxTokens: 0 })).rejects.toThrow(/options.maxTokens/);
    await expect(speculate(new ToyTarget(), noDraft, p, { verification: { mode: 'best' } as never })).rejects.toThrow(/options.verification.mode/);
    await expect(speculate(new ToyTarget(), noDraft, p, { maxToken: 3 } as never)).rejects.toThrow(/maxToken/);
  });
});
