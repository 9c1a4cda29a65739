// The byte-level transformer runner (lib/model/byte-lm.ts) on the committed
// models (models/lm/main, models/lm/draft; placeholder weights are fine: every
// reference comes from the model's own config.json or from the other path):
// ORT + tokenpress attention vs ORT's plain graph, both vs PyTorch's logits,
// the f16 cache, eviction keeping positions, bad input, and seeded
// generation. Needs onnxruntime-node (a devDependency).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { castTo, toF32, TokenpressError } from '../../lib/index.js';
import { ByteLm, cardTrainingSteps, type ByteLmCard, type ByteLmConfig, type LmSession, type PlainSession } from '../../lib/model/byte-lm.js';
import { generate, sampleByte, Sampler } from '../../lib/model/generate.js';

const U32 = 2 ** -24; // f32 unit roundoff
const U16 = 2 ** -11; // f16 unit roundoff
const PRINTED = 5e-7; // config.json prints the reference logits with 6 decimals

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Runs bytes through a session in the given chunk sizes (cycled); logits of every position. */
async function run(s: LmSession | PlainSession, bytes: Uint8Array, chunks: number[]): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  for (let i = 0, c = 0; i < bytes.length; c++) {
    const n = Math.min(chunks[c % chunks.length]!, bytes.length - i);
    parts.push(await s.forward(bytes.subarray(i, i + n)));
    i += n;
  }
  return concat(parts);
}

/**
 * Bound on |ORT - PyTorch| for logits computed in f32 from the same
 * f16-rounded weights. The two differ only in the order of f32 operations
 * (GEMM blocking, fused norms, exp/sin/cos implementations). A length-K sum
 * in f32 is off by at most K * u * sum|terms| in the worst case (Higham's
 * gamma_K), and by about sqrt(K) * u * sum|terms| in practice (rounding
 * errors behave as a random walk: Higham & Mary 2019); we take 4 sqrt(K) u.
 * The longest reductions are K = max(d_model, mlp_hidden, the sequence), and
 * a logit goes through about 3 of them per layer (projections, attention,
 * MLP down) plus the head: R = 3 nLayers + 1, relative to the logits' scale
 * (1 + max|logit|). Plus the 6-decimal printing of the reference. For main:
 * 4 * 13 * sqrt(768) * 6e-8 * (1 + 4.3) ~ 5e-4, while the measured
 * difference is ~1e-6 and a position off by one moves the logits by ~2e-2
 * even with untrained weights (asserted below, so the bound stays tight
 * enough to catch it).
 */
function referenceTolerance(cfg: ByteLmConfig, reference: number[][], sequence: number): number {
  const reductions = 3 * cfg.nLayers + 1;
  const k = Math.max(cfg.dModel, cfg.mlpHidden, sequence);
  return 4 * reductions * Math.sqrt(k) * U32 * (1 + maxAbs(reference.flat())) + PRINTED;
}

/** Rounds f32 values to the nearest f16 in place (what an f16 cache stores). */
function roundToF16(a: Float32Array): void {
  a.set(toF32(castTo({ dtype: 'f32', shape: [a.length], data: a }, 'f16')).data);
}

for (const name of ['main', 'draft'] as const) {
  describe(`byte-lm ${name}`, () => {
    let model: ByteLm;
    let prompt: Uint8Array;

    beforeAll(async () => {
      model = await ByteLm.load(name);
      prompt = new TextEncoder().encode(model.card.reference.prompt);
    });
    afterAll(async () => {
      await model.release();
    });

    test('the card matches the graphs', () => {
      const c = model.config;
      expect(c.vocab).toBe(256);
      expect(c.nHeads % c.nKvHeads).toBe(0);
      expect(model.card.stages).toBe(c.nLayers + 1);
      expect(model.card.reference.positions.length).toBe(model.card.reference.logits.length);
    });

    test('tokenpress (f32 cache) and the plain graph agree, chunked prefill and single-byte steps mixed', async () => {
      const plain = await run(model.plainSession(), prompt, [prompt.length]);
      for (const chunks of [[prompt.length], [1], [7, 1, 1, 13, 1], [1, 30]]) {
        const tp = await run(model.session({ dtype: 'f32' }), prompt, chunks);
        expect(maxDiff(tp, plain)).toBeLessThan(1e-3);
      }
      // the plain graph chunked too (its past_key_values grow between calls)
      const plainChunked = await run(model.plainSession(), prompt, [5, 1, 20]);
      expect(maxDiff(plainChunked, plain)).toBeLessThan(1e-3);
    });

    test("both paths match PyTorch's reference logits (config.json) within the f32 reordering bound", async () => {
      const ref = model.card.reference;
      const tol = referenceTolerance(model.config, ref.logits, prompt.length);
      const paths = { plain: await run(model.plainSession(), prompt, [prompt.length]), tokenpress: await run(model.session({ dtype: 'f32' }), prompt, [16, 1]) };
      for (const logits of Object.values(paths)) {
        ref.positions.forEach((p, i) => {
          expect(maxDiff(logits.subarray(p * 256, (p + 1) * 256), ref.logits[i]!)).toBeLessThan(tol);
        });
      }
      // The bound is tight enough to see a position off by one: the same
      // bytes one position later give different logits (RoPE is relative
      // only within a sequence, so shift the whole prompt behind one byte).
      const shifted = await run(model.session({ dtype: 'f32' }), Uint8Array.of(32, ...prompt), [prompt.length + 1]);
      const last = ref.positions[ref.positions.length - 1]!;
      expect(maxDiff(shifted.subarray((last + 1) * 256, (last + 2) * 256), ref.logits[ref.logits.length - 1]!)).toBeGreaterThan(tol);
    });

    test('the f16 cache is exactly an f32 cache holding f16-rounded keys and values, and near the f32 path', async () => {
      const f32 = await run(model.session({ dtype: 'f32' }), prompt, [20, 1]);
      const f16 = await run(model.session({ dtype: 'f16' }), prompt, [20, 1]);
      // The only difference an f16 cache may make is rounding what it stores:
      // round k, v to f16 on their way into an f32 cache (onLayer sees the
      // arrays that are appended) and the logits agree to f32 reordering.
      const rounded = model.session({ dtype: 'f32' });
      const parts: Float32Array[] = [];
      for (let i = 0, c = 0; i < prompt.length; c++) {
        const n = c % 2 === 0 ? 20 : 1;
        parts.push(await rounded.forward(prompt.subarray(i, i + n), { onLayer: ({ k, v }) => { roundToF16(k); roundToF16(v); } }));
        i += n;
      }
      expect(maxDiff(f16, concat(parts))).toBeLessThan(1e-3);
      // Against the f32 path: each stored value moves by at most 2^-11
      // relative; to first order an attention output moves by that times
      // (1 + 2 * the largest |score| change), and each layer adds its share
      // to the logits. Bound: 2^-11 * nLayers * 8 * (1 + max|logit|) (main:
      // 0.08; measured 0.003 with the placeholder weights).
      const bound = U16 * model.config.nLayers * 8 * (1 + maxAbs(f32));
      const d = maxDiff(f16, f32);
      expect(d).toBeLessThan(bound);
    });

    test('eviction keeps positions: later tokens get the next position, not a renumbered one', async () => {
      const full = model.session({ dtype: 'f32' });
      const evicted = model.session({ dtype: 'f32' });
      await full.forward(prompt);
      await evicted.forward(prompt);
      const before = evicted.position;
      evicted.compress('streamingllm', { keep: 12 });
      expect(evicted.position).toBe(before);
      const lengths = evicted.cache.lengths().data;
      expect(Math.max(...lengths)).toBe(12);
      const pos = evicted.cache.export(0).positions.data;
      expect(Math.max(...pos)).toBe(before - 1); // the newest token kept its original position
      // Layer 0's key of the next byte depends only on the byte and its
      // position (RoPE): equal to the uncompressed session's bit for bit.
      const k0 = (s: LmSession) => {
        let k: Float32Array | undefined;
        return s.forward([65], { onLayer: (a) => { if (a.layer === 0) k = Float32Array.from(a.k); } }).then(() => k!);
      };
      const [a, b] = [await k0(full), await k0(evicted)];
      expect(maxDiff(a, b)).toBe(0);
      expect(evicted.position).toBe(before + 1);
      expect(Math.max(...evicted.cache.export(0).positions.data)).toBe(before);
      // and the rest of the model did see fewer tokens
      expect(Math.max(...evicted.cache.lengths().data)).toBe(13);
      // reset() starts over at position 0 with an empty cache: the same logits as a new session
      evicted.reset();
      expect(evicted.position).toBe(0);
      const again = await evicted.forward(prompt);
      expect(maxDiff(again, await model.session({ dtype: 'f32' }).forward(prompt))).toBe(0);
      expect(Math.max(...evicted.cache.export(0).positions.data)).toBe(prompt.length - 1);
    });

    test('autoCompress runs after attention: a budget above the sequence changes nothing, a small one bounds the cache', async () => {
      const plain = await run(model.session({ dtype: 'f32' }), prompt, [9, 1]);
      const roomy = await run(model.session({ dtype: 'f32', autoCompress: { policy: 'snapkv', budget: { keep: 200 }, interval: 8 } }), prompt, [9, 1]);
      expect(maxDiff(roomy, plain)).toBe(0);
      const s = model.session({ dtype: 'f32', autoCompress: { policy: 'streamingllm', budget: { keep: 16 }, interval: 4 } });
      await run(s, prompt, [9, 1]);
      expect(s.position).toBe(prompt.length);
      expect(Math.max(...s.cache.lengths().data)).toBeLessThan(16 + 4);
      // query- and mass-scored policies too (h2o scores with the mass attend accumulates)
      for (const policy of ['h2o', 'snapkv', 'tova'] as const) {
        const q = model.session({ dtype: 'f32', autoCompress: { policy, budget: { keep: 40 }, interval: 4 } });
        await run(q, prompt, [9, 1]);
        expect(q.position).toBe(prompt.length);
        expect(Math.max(...q.cache.lengths().data)).toBeLessThan(40 + 4);
        expect(Math.max(...q.cache.lengths().data)).toBeGreaterThanOrEqual(40);
      }
    });

    test('bad input throws naming the argument and changes nothing', async () => {
      const s = model.session({ dtype: 'f32' });
      await s.forward(prompt.subarray(0, 5));
      const lengths = Array.from(s.cache.lengths().data);
      const cases: [unknown, RegExp, ErrorConstructor][] = [
        [[], /tokens: expected at least one token/, RangeError],
        [new Uint8Array(0), /tokens: expected at least one token/, RangeError],
        [[1, 256], /tokens\[1\]: expected an integer byte value in \[0, 255\], received 256/, RangeError],
        [[-1], /tokens\[0\]: expected an integer byte value/, RangeError],
        [[1.5], /tokens\[0\]/, RangeError],
        [['a'], /tokens\[0\]/, RangeError],
        ['abc', /tokens: expected a Uint8Array or an array of byte values/, TypeError],
        [new Float32Array(2), /tokens: expected a Uint8Array/, TypeError],
      ];
      for (const [bad, message, kind] of cases) {
        expect(() => s.forward(bad as never)).toThrow(kind);
        expect(() => s.forward(bad as never)).toThrow(message);
      }
      expect(() => s.forward([1], { onLayr: () => 0 } as never)).toThrow(/unknown option "onLayr" \(did you mean "onLayer"\?\)/);
      expect(s.position).toBe(5);
      expect(Array.from(s.cache.lengths().data)).toEqual(lengths);
      const p = model.plainSession();
      expect(() => p.forward([])).toThrow(/tokens: expected at least one token/);
      expect(p.position).toBe(0);
      // a second forward while one runs is refused, and the first completes
      const first = s.forward([1, 2, 3]);
      expect(() => s.forward([4])).toThrow(expect.objectContaining({ code: 'ERR_CACHE_BUSY' }) as never);
      await first;
      expect(s.position).toBe(8);
      // session options name the argument
      expect(() => model.session({ nLayers: 3 } as never)).toThrow(/options.nLayers: expected nothing \(the model fixes it/);
      expect(() => model.session({ dtype: 'f8' } as never)).toThrow(/options.dtype/);
      expect(() => model.session({ autoCompress: { policy: 'nope', budget: { keep: 8 } } } as never)).toThrow(/policy/);
      // a capacity the step would overflow is refused before anything runs
      const small = model.session({ dtype: 'f32', capacity: 8 });
      await small.forward([1, 2, 3, 4, 5, 6]);
      await expect(Promise.resolve().then(() => small.forward([1, 2, 3]))).rejects.toThrow(/tokens.length: expected at most 2 tokens/);
      expect(small.position).toBe(6);
    });
  });
}

describe('byte-lm loading and release', () => {
  test('an unknown model, bad options and a malformed directory are named', async () => {
    await expect(ByteLm.load('no-such-model')).rejects.toThrow(/model: expected a built-in model name \(main, draft\) or a directory holding config.json/);
    await expect(ByteLm.load('')).rejects.toThrow(TypeError);
    await expect(ByteLm.load(42 as never)).rejects.toThrow(/model: expected a built-in model name/);
    await expect(ByteLm.load('main', { thread: 2 } as never)).rejects.toThrow(/unknown option "thread" \(did you mean "threads"\?\)/);
    await expect(ByteLm.load('main', { threads: 0 })).rejects.toThrow(/options.threads: expected an integer in \[1, 256\], received 0/);
    await expect(ByteLm.load('main', { plain: false, stages: false })).rejects.toThrow(/options: expected plain or stages/);
    await expect(ByteLm.load('test')).rejects.toThrow(/looked for .*test\/config.json/);
  });

  test('release() makes later calls throw ERR_RELEASED; a plain-only model has no tokenpress session', async () => {
    const m = await ByteLm.load('draft', { stages: false });
    expect(() => m.session()).toThrow(/ByteLm.session: expected a model loaded with options.stages true/);
    const s = m.plainSession();
    await s.forward([1, 2]);
    await m.release();
    await m.release(); // idempotent
    expect(() => s.forward([3])).toThrow(TokenpressError);
    expect(() => s.forward([3])).toThrow(expect.objectContaining({ code: 'ERR_RELEASED' }) as never);
    expect(() => m.plainSession()).toThrow(/released/);
    expect(s.position).toBe(2);
  });

  test('the public ORT run gives the same logits as the direct one', async () => {
    const a = await ByteLm.load('draft', { plain: false });
    const b = await ByteLm.load('draft', { plain: false, directRun: false });
    expect(b.runner).toBe('public');
    const bytes = new TextEncoder().encode('hello, world');
    const la = await run(a.session({ dtype: 'f32' }), bytes, [5, 1]);
    const lb = await run(b.session({ dtype: 'f32' }), bytes, [5, 1]);
    expect(maxDiff(la, lb)).toBe(0);
    await a.release();
    await b.release();
  });
});

describe('generate', () => {
  let model: ByteLm;
  beforeAll(async () => {
    model = await ByteLm.load('draft');
  });
  afterAll(async () => {
    await model.release();
  });

  test('a seed reproduces the bytes; another seed changes them; both paths sample the same bytes from the same seed', async () => {
    const opts = { maxTokens: 48, temperature: 1.5, topK: 0, seed: 7 };
    const a = await generate(model, 'The key is ', opts);
    const b = await generate(model, 'The key is ', opts);
    expect(Array.from(a.tokens)).toEqual(Array.from(b.tokens));
    expect(a.tokens.length).toBe(48);
    const c = await generate(model, 'The key is ', { ...opts, seed: 8 });
    expect(Array.from(c.tokens)).not.toEqual(Array.from(a.tokens));
    const p = await generate(model, 'The key is ', { ...opts, plain: true, cacheDtype: 'f32' });
    const f = await generate(model, 'The key is ', { ...opts, cacheDtype: 'f32' });
    expect(Array.from(p.tokens)).toEqual(Array.from(f.tokens));
    expect(a.decode.tokens).toBe(47);
    expect(a.memory.tokensSeen).toBe(11 + 47);
    expect(a.memory.bytes).toBe(a.memory.fullBytes); // no policy: the cache is the full cache
  });

  test('greedy is the argmax; top-k 1 is greedy at any temperature', async () => {
    const g = await generate(model, 'abc', { maxTokens: 6, temperature: 0 });
    const s = model.session({ dtype: 'f16' });
    let logits = await s.forward(new TextEncoder().encode('abc'));
    for (let i = 0; i < 6; i++) {
      const row = logits.subarray(logits.length - 256);
      const best = row.indexOf(Math.max(...row));
      expect(g.tokens[i]).toBe(best);
      logits = await s.forward([best]);
    }
    const k1 = await generate(model, 'abc', { maxTokens: 6, temperature: 5, topK: 1, seed: 99 });
    expect(Array.from(k1.tokens)).toEqual(Array.from(g.tokens));
  });

  test('a policy keeps the cache under its budget and below the full cache', async () => {
    const r = await generate(model, 'x'.repeat(300), { maxTokens: 40, policy: 'streamingllm', budget: 64, interval: 16, temperature: 0 });
    expect(r.memory.tokensSeen).toBe(300 + 39);
    expect(r.memory.tokensKept).toBeLessThan(64 + 16);
    expect(r.memory.bytes).toBeLessThan(r.memory.fullBytes);
    const frac = await generate(model, 'x'.repeat(300), { maxTokens: 2, policy: 'streamingllm', budget: 0.25, interval: 16 });
    expect(frac.memory.keep).toBe(75);
  });

  test('bad options are named', async () => {
    await expect(generate(model, '', {})).rejects.toThrow(/prompt: expected at least one byte/);
    await expect(generate(model, 5 as never, {})).rejects.toThrow(/prompt: expected a string or a Uint8Array/);
    await expect(generate(model, 'a', { maxTokens: 0 })).rejects.toThrow(/options.maxTokens: expected an integer in \[1, /);
    await expect(generate(model, 'a', { temperature: -1 })).rejects.toThrow(/options.temperature: expected a number >= 0/);
    await expect(generate(model, 'a', { topK: 300 })).rejects.toThrow(/options.topK/);
    await expect(generate(model, 'a', { seed: -1 })).rejects.toThrow(/options.seed/);
    await expect(generate(model, 'a', { policy: 'snapkv' })).rejects.toThrow(/options.budget: expected tokens per head/);
    await expect(generate(model, 'a', { budget: 5 })).rejects.toThrow(/options.budget: expected nothing without options.policy/);
    await expect(generate(model, 'a', { plain: true, policy: 'knorm', budget: 4 })).rejects.toThrow(/options.policy: expected nothing with options.plain/);
    await expect(generate(model, 'a', { plain: true, cacheDtype: 'int8' })).rejects.toThrow(/options.cacheDtype/);
    await expect(generate(model, 'a', { maxTokenz: 3 } as never)).rejects.toThrow(/did you mean "maxTokens"/);
  });

  test('the sampler is deterministic and follows the distribution', () => {
    const a = new Sampler(3);
    const b = new Sampler(3);
    for (let i = 0; i < 100; i++) expect(a.next()).toBe(b.next());
    // two bytes with logits ln 3 and 0, the rest -inf-ish: byte 1 three times as often as byte 2
    const logits = new Float32Array(256).fill(-100);
    logits[1] = Math.log(3);
    logits[2] = 0;
    const rng = new Sampler(11);
    let ones = 0;
    for (let i = 0; i < 4000; i++) if (sampleByte(logits, 0, 1, 0, rng) === 1) ones++;
    expect(ones / 4000).toBeGreaterThan(0.72);
    expect(ones / 4000).toBeLessThan(0.78);
  });
});

describe('cardTrainingSteps', () => {
  const base = { format: 'tokenpress-byte-lm/1', name: 'x', parameters: 1, stages: 2, config: {}, reference: { prompt: '', positions: [], logits: [] } };
  test('sums the phases of a phased recipe, else the last run\'s step, else undefined', () => {
    const phased = { ...base, training: { step: 120 }, phases: [{ steps: 640 }, { steps: 300 }, { steps: 120 }] } as ByteLmCard;
    expect(cardTrainingSteps(phased)).toBe(1060);
    expect(cardTrainingSteps({ ...base, training: { step: 400 } } as ByteLmCard)).toBe(400);
    expect(cardTrainingSteps({ ...base, phases: [{ steps: 5 }, { nope: 1 }], training: { step: 7 } } as ByteLmCard)).toBe(7);
    expect(cardTrainingSteps(base as ByteLmCard)).toBeUndefined();
  });
});
