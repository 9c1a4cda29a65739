// Speculative decoding with the built-in byte model as the target
// (LmSession.forwardTree / commitTree over its KvCache, lib/spec/byte-lm-target.ts):
// greedy speculation emits exactly plain greedy decoding (generate at
// temperature 0), with every drafter; the cache afterwards holds what a
// session that only ever saw the accepted bytes holds; the tree API refuses
// calls out of order and bad trees without changing the session.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ByteLm, generate, type LmSession } from '../../lib/index.js';
import { speculate } from '../../lib/spec/decoder.js';
import { byteLmTarget } from '../../lib/spec/byte-lm-target.js';
import type { Drafter } from '../../lib/spec/drafter.js';
import { PromptLookupDrafter } from '../../lib/spec/prompt-lookup.js';
import { TokenRecyclingDrafter } from '../../lib/spec/token-recycling.js';

let model: ByteLm;
beforeAll(async () => { model = await ByteLm.load('draft', { plain: false }); });
afterAll(async () => { await model.release(); });

const none: Drafter = { name: 'none', draft: (c) => ({ tokens: Int32Array.of(c[c.length - 1]!), parents: Int32Array.of(-1) }) };
const PROMPTS = [
  'ABANDON, v. t. To give up wholly; to forsake. ABANDON, v. t. To give',
  'The key is 8351. The key is 8351. The key',
  'Q: What is the answer?\nA: The answer is',
];

describe('byte model target', () => {
  test.each(PROMPTS.map((p, i) => [i, p] as const))('greedy speculation = plain greedy decoding, prompt %i', async (_, text) => {
    const prompt = new TextEncoder().encode(text);
    const plain = await generate(model, prompt, { maxTokens: 40, temperature: 0 });
    for (const d of [none, new PromptLookupDrafter(), new TokenRecyclingDrafter({ vocab: 256 })]) {
      // Token Recycling: a second pass over the same prompt drafts from a filled table.
      for (let pass = 0; pass < (d.name === 'token-recycling' ? 2 : 1); pass++) {
        const session = model.session();
        const r = await speculate(byteLmTarget(session), d, Int32Array.from(prompt), { maxTokens: 40 });
        expect([...r.tokens], `${d.name} pass ${pass}`).toEqual([...plain.tokens]);
        // The session saw the prompt and every byte but the last (the next root).
        expect(session.position).toBe(prompt.length + r.tokens.length - 1);
        expect(Math.max(...session.cache.lengths().data)).toBe(session.position);
        if (d.name === 'token-recycling' && pass === 1) expect(r.stats.targetCalls).toBeLessThan(40);
      }
    }
  });

  test('after speculation the cache equals a session that saw only the accepted bytes', async () => {
    const prompt = new TextEncoder().encode(PROMPTS[0]!);
    const d = new PromptLookupDrafter();
    const spec = model.session();
    const r = await speculate(byteLmTarget(spec), d, Int32Array.from(prompt), { maxTokens: 24 });
    expect(r.stats.accepted).toBeGreaterThan(0);
    const plain = model.session();
    const seen = Uint8Array.from([...prompt, ...r.tokens.subarray(0, r.tokens.length - 1)]);
    await plain.forward(seen.subarray(0, prompt.length));
    for (let i = prompt.length; i < seen.length; i++) await plain.forward(seen.subarray(i, i + 1));
    expect(spec.position).toBe(plain.position);
    for (let l = 0; l < model.config.nLayers; l++) {
      const a = spec.cache.export(l, { dtype: 'f32' }), b = plain.cache.export(l, { dtype: 'f32' });
      expect([...a.positions.data]).toEqual([...b.positions.data]);
      // K/V of a tree pass and of one-token steps come from the same graphs; allow f16 rounding of the cache.
      const ka = a.k.data as Float32Array, kb = b.k.data as Float32Array;
      let worst = 0;
      for (let i = 0; i < ka.length; i++) worst = Math.max(worst, Math.abs(ka[i]! - kb[i]!) / (1 + Math.abs(kb[i]!)));
      expect(worst).toBeLessThan(2e-3);
    }
  });

  test('forwardTree / commitTree: order and arguments', async () => {
    const s: LmSession = model.session();
    await s.forward(new TextEncoder().encode('hello'));
    expect(() => s.commitTree(Int32Array.of(0))).toThrow(/no tree to commit/);
    expect(() => s.forwardTree([1, 2], Int32Array.of(0, 0))).toThrow(/parents\[0\]/);
    expect(() => s.forwardTree([1, 2], Int32Array.of(-1, 1))).toThrow(/parents\[1\]/);
    expect(() => s.forwardTree([1, 2], Int32Array.of(-1))).toThrow(/parents/);
    expect(s.position).toBe(5);
    const logits = await s.forwardTree([111, 32, 119], Int32Array.of(-1, 0, 0));
    expect(logits.length).toBe(3 * 256);
    expect(() => s.forwardTree([1], Int32Array.of(-1))).toThrow(/not committed/);
    expect(() => s.commitTree(Int32Array.of(0, 2, 1))).toThrow();
    s.commitTree(Int32Array.of(0, 2));
    expect(s.position).toBe(7);
    expect(Math.max(...s.cache.lengths().data)).toBe(7);
  });
});
