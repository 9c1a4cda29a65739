// Real-model KV fidelity (lib/model/fidelity/, `tokenpress eval kv --model`):
// the metric math against a float64 reference, the held-out text and needle
// generators, the evaluation on the shipped model at tiny sizes (budget 100%
// reproduces the full cache exactly; the full-cache loss matches a single
// uncompressed pass; eviction and quantized caches behave), and CLI errors.
// Nothing here depends on the weights' values.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { ByteLm } from '../../lib/model/byte-lm.js';
import { evalKvCli } from './eval-kv-cli-helper.js';
import { argmaxRow, meanAndSe, sumBits } from '../../lib/model/fidelity/metrics.js';
import { makeNeedleTrial, samplePassages } from '../../lib/model/fidelity/text.js';
import { parseVariant, REAL_VARIANT_NAMES } from '../../lib/model/fidelity/variants.js';
import { captureContext, restoreSession } from '../../lib/model/fidelity/context.js';
import { StageRunner } from '../../lib/model/fidelity/runner.js';
import { answerNeedle, realKeepFor, runRealKvEval, type RealKvEvalReport } from '../../lib/model/fidelity/run.js';
import { formatRealKvEvalTable, renderRealKvEvalSvg } from '../../lib/model/fidelity/format.js';
import { mulberry32 } from '../reference/random.js';
import { parseSparseSpec, sparseCacheOptions } from '../../lib/kv/eval/sparse.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-lmfid-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

const dec = new TextDecoder();

/** A small held-out-like text: numbered lines of words, no "key is". */
function fakeText(bytes: number, seed = 1): Uint8Array {
  const rnd = mulberry32(seed);
  const words = ['apple', 'river', 'stone', 'quiet', 'lamp', 'north', 'violet', 'harbor', 'cloud', 'ember'];
  let s = '';
  let line = 0;
  while (s.length < bytes) {
    s += `${line++}. `;
    const n = 4 + Math.floor(rnd() * 8);
    for (let i = 0; i < n; i++) s += `${words[Math.floor(rnd() * words.length)]}${i + 1 < n ? ' ' : ''}`;
    s += '.\n';
  }
  return new TextEncoder().encode(s.slice(0, bytes));
}

/** Reference bits of a row: -log2(p[target]) with p normalised explicitly, in float64. */
function refBits(row: number[], target: number): number {
  const m = Math.max(...row);
  const e = row.map((x) => Math.exp(x - m));
  const z = e.reduce((a, b) => a + b, 0);
  return -Math.log2(e[target]! / z);
}

describe('metric math', () => {
  test('sumBits equals a float64 reference, including large logits', () => {
    const rnd = mulberry32(7);
    const T = 9;
    const logits = new Float32Array(T * 256);
    for (let i = 0; i < logits.length; i++) logits[i] = (rnd() - 0.5) * (i < 256 ? 200 : 8); // row 0 spans +-100
    const targets = Uint8Array.from({ length: T }, (_, t) => (t * 37 + 11) % 256);
    let ref = 0;
    for (let t = 0; t < T; t++) ref += refBits(Array.from(logits.subarray(t * 256, (t + 1) * 256)), targets[t]!);
    expect(sumBits(logits, targets)).toBeCloseTo(ref, 9);
    expect(Number.isFinite(sumBits(logits, targets))).toBe(true);
  });

  test('uniform logits cost exactly 8 bits per byte; a certain byte costs ~0', () => {
    expect(sumBits(new Float32Array(3 * 256), new Uint8Array([1, 2, 3]))).toBeCloseTo(24, 12);
    const sure = new Float32Array(256).fill(-1e4);
    sure[65] = 1e4;
    expect(sumBits(sure, new Uint8Array([65]))).toBeCloseTo(0, 12);
    expect(sumBits(sure, new Uint8Array([66]))).toBeGreaterThan(1e4);
  });

  test('argmaxRow picks the largest logit, the lowest index on ties', () => {
    const l = new Float32Array(512);
    l[3] = 2; l[9] = 2; l[256 + 200] = 1;
    expect(argmaxRow(l, 0)).toBe(3);
    expect(argmaxRow(l, 1)).toBe(200);
    expect(() => argmaxRow(l, 2)).toThrow(/row: expected a row index in \[0, 1\], received 2/);
  });

  test('sumBits names a shape mismatch', () => {
    expect(() => sumBits(new Float32Array(256), new Uint8Array(2))).toThrow(/logits.length: expected targets.length \* vocab = 2 \* 256 = 512, received 256/);
  });

  test('meanAndSe', () => {
    const r = meanAndSe([1, 2, 3, 4]);
    expect(r.mean).toBe(2.5);
    expect(r.se).toBeCloseTo(Math.sqrt(1.6666666666666667 / 4), 12);
    expect(meanAndSe([5]).se).toBe(0);
  });
});

describe('held-out text', () => {
  const text = fakeText(200_000);

  test('the needle is placed once, early, at a line start; the question and answer spell the key', () => {
    for (let seed = 0; seed < 20; seed++) {
      const t = makeNeedleTrial(text, seed, { context: 4000, digits: 6 });
      expect(t.context.length).toBe(4000);
      expect(t.key).toMatch(/^[1-9]\d{5}$/);
      const s = dec.decode(t.context);
      const line = `The key is ${t.key}.\n`;
      expect(s.indexOf(line)).toBe(t.needleStart);
      expect(s.lastIndexOf('key is')).toBe(t.needleStart + 4); // the only "key is"
      expect(t.needleEnd - t.needleStart).toBe(line.length);
      expect(t.needleStart).toBeGreaterThanOrEqual(Math.floor(0.1 * (4000 - line.length)));
      expect(t.needleStart).toBeLessThan(0.5 * 4000);
      expect(s[t.needleStart - 1]).toBe('\n');
      expect(dec.decode(t.question)).toBe(`\nThe key is ${t.key[0]}`);
      expect(dec.decode(t.answer)).toBe(t.key.slice(1));
    }
  });

  test('needle trials are reproducible per seed and differ across seeds', () => {
    const a = makeNeedleTrial(text, 3, { context: 1000 });
    const b = makeNeedleTrial(text, 3, { context: 1000 });
    const c = makeNeedleTrial(text, 4, { context: 1000 });
    expect(Buffer.from(a.context).equals(Buffer.from(b.context))).toBe(true);
    expect(a.key).toBe(b.key);
    expect(a.key === c.key && Buffer.from(a.context).equals(Buffer.from(c.context))).toBe(false);
  });

  test('a haystack containing "key is" is never chosen', () => {
    const s = new TextDecoder().decode(fakeText(60_000)).replace(/apple/g, 'KEY IS'); // most windows have one
    const clean = new TextEncoder().encode(s.slice(0, 30_000).replace(/KEY IS/g, 'apple') + s.slice(30_000));
    for (let seed = 0; seed < 5; seed++) {
      const t = makeNeedleTrial(clean, seed, { context: 1000 });
      expect(dec.decode(t.context).toLowerCase().split('key is').length).toBe(2);
    }
  });

  test('the needle is solvable by copying: an induction oracle answers every trial', async () => {
    // Predicts the byte that followed the last earlier occurrence of the
    // newest 12 bytes (what an induction head does); only the last row is used.
    const oracle = (context: Uint8Array) => {
      const seen = Array.from(context);
      return {
        forward: async (bytes: Uint8Array | readonly number[]) => {
          const logits = new Float32Array(bytes.length * 256);
          const k = 12;
          for (let r = 0; r < bytes.length; r++) {
            seen.push(bytes[r]!);
            const n = seen.length;
            for (let j = n - 2; j >= k - 1; j--) {
              let match = true;
              for (let d = 0; d < k && match; d++) match = seen[j - d] === seen[n - 1 - d];
              if (match) { logits[r * 256 + seen[j + 1]!] = 20; break; }
            }
          }
          return logits;
        },
      };
    };
    for (let seed = 0; seed < 10; seed++) {
      const t = makeNeedleTrial(text, seed, { context: 2000, digits: 6 });
      const hit = await answerNeedle(oracle(t.context) as never, t);
      expect(hit.correct).toBe(true);
      expect(hit.bits).toBeLessThan(0.01);
      // Without the needle line the oracle cannot know the key.
      const blank = t.context.slice();
      blank.fill(0x2e, t.needleStart, t.needleEnd - 1);
      const miss = await answerNeedle(oracle(blank) as never, t);
      expect(miss.correct).toBe(false);
      expect(miss.bits).toBeGreaterThan(1);
    }
  });

  test('needle option errors name the option', () => {
    expect(() => makeNeedleTrial(text, 0, { context: 100 })).toThrow(/options.context: expected an integer >= 256/);
    expect(() => makeNeedleTrial(text, 0, { context: 1000, depth: [0.5, 0.2] })).toThrow(/options.depth: expected two fractions/);
    expect(() => makeNeedleTrial(text.subarray(0, 2000), 0, { context: 1000 })).toThrow(/text.length: expected at least 4 \* options.context = 4000 bytes, received 2000/);
  });

  test('passages: one per stratum, at line starts, reproducible, never overlapping', () => {
    const p = samplePassages(text, 8, 1000, 5);
    const q = samplePassages(text, 8, 1000, 5);
    expect(p).toHaveLength(8);
    const starts = p.map((x) => x.byteOffset - text.byteOffset);
    expect(starts).toEqual(q.map((x) => x.byteOffset - text.byteOffset));
    for (let i = 0; i < 8; i++) {
      expect(p[i]!.length).toBe(1000);
      expect(starts[i] === 0 || text[starts[i]! - 1] === 0x0a).toBe(true);
      if (i > 0) expect(starts[i]!).toBeGreaterThanOrEqual(starts[i - 1]! + 1000);
    }
    expect(samplePassages(text, 8, 1000, 6).map((x) => x.byteOffset)).not.toEqual(p.map((x) => x.byteOffset));
    expect(() => samplePassages(text.subarray(0, 5000), 8, 1000, 0)).toThrow(/text.length: expected at least count \* length = 8 \* 1000 = 8000 bytes, received 5000/);
  });

  test('variant names', () => {
    expect(parseVariant('snapkv+merge')).toEqual({ kind: 'evict', name: 'snapkv+merge', policy: { name: 'snapkv', merge: true } });
    expect(parseVariant('int4')).toEqual({ kind: 'quant', name: 'int4', dtype: 'int4' });
    expect(REAL_VARIANT_NAMES).not.toContain('razor+merge');
    expect(() => parseVariant('snapvk')).toThrow(/policy: unknown policy "snapvk" \(did you mean "snapkv"\?\)/);
    expect(() => parseVariant('razor+merge', '--policies')).toThrow(/--policies: unknown policy "razor\+merge"/);
    // Sparse methods, with options as in the synthetic eval.
    expect(parseVariant('quest')).toEqual({ kind: 'sparse', name: 'quest', spec: { name: 'quest', options: {} } });
    expect(parseVariant('tidal:selectLayer=2')).toEqual({ kind: 'sparse', name: 'tidal:selectLayer=2', spec: { name: 'tidal', options: { selectLayer: 2 } } });
    for (const m of ['quest', 'blocks', 'tidal']) expect(REAL_VARIANT_NAMES).toContain(m);
    expect(() => parseVariant('quest:pageSize=x', '--policies')).toThrow(/--policies: quest:pageSize=x: pageSize: expected a non-negative integer/);
  });
});

describe('on the shipped model (tiny sizes)', () => {
  let model: ByteLm;
  let runner: StageRunner;
  const text = fakeText(120_000, 3);
  beforeAll(async () => { model = await ByteLm.load('main', { plain: false }); runner = await StageRunner.open(model); });
  afterAll(async () => { await runner?.release(); await model?.release(); });

  const tiny = { text, passages: 2, context: 192, continuation: 24, trials: 2, needleContext: 300, digits: 4, seed: 1 };

  test('budget 100% reproduces the full-cache row exactly; the full loss equals one uncompressed pass', async () => {
    const r = await runRealKvEval(model, { ...tiny, budgets: [1], policies: ['snapkv', 'h2o', 'streamingllm'] });
    const full = r.rows[0]!;
    expect(full.policy).toBe('full');
    for (const row of r.rows.slice(1)) {
      expect(row.fraction).toBe(1);
      expect(row.loss!.bitsPerByte).toBe(full.loss!.bitsPerByte);
      expect(row.loss!.delta).toBe(0);
      expect(row.loss!.kept).toBe(1);
      expect(row.needle!.correct).toBe(full.needle!.correct);
      expect(row.needle!.keyBits).toBe(full.needle!.keyBits);
    }
    // Independent path: the whole passage in one forward, no capture / restore.
    const passages = samplePassages(text, 2, 192 + 24 + 1, 1);
    let bits = 0;
    for (const p of passages) {
      const s = model.session({ dtype: 'f16' });
      const logits = await s.forward(p.subarray(0, 192 + 24));
      bits += sumBits(logits.subarray(192 * 256), p.subarray(193, 193 + 24));
    }
    expect(full.loss!.bitsPerByte).toBeCloseTo(bits / 48, 3);
    expect(full.loss!.bytes).toBe(48);
  });

  test('a restored session at position C continues exactly like LmSession after the whole context', async () => {
    const ctx = text.subarray(1000, 1300);
    const cap = await captureContext(runner, ctx, 16);
    expect(cap.length).toBe(300);
    const direct = model.session({ dtype: 'f16', window: 16 });
    await direct.forward(ctx);
    const a = await direct.forward(text.subarray(1300, 1310));
    const restored = restoreSession(runner, cap);
    expect(restored.position).toBe(300);
    const b = await restored.forward(text.subarray(1300, 1310));
    expect(Array.from(b)).toEqual(Array.from(a));
    expect(restored.position).toBe(310);
    // The prefill's own logits are LmSession's too.
    const p = model.session({ dtype: 'f16' });
    expect(Array.from(cap.logits)).toEqual(Array.from(await p.forward(ctx)));
  });

  test('eviction, merging and integer caches run and report what the cache held', async () => {
    const r = await runRealKvEval(model, { ...tiny, budgets: [0.25, 0.5], policies: ['snapkv', 'tova+merge', 'adakv', 'razor', 'speckv', 'int8', 'int4'], razorPeriod: 64, razorRepeats: 3 });
    expect(r.retrievalHeads).toMatchObject({ period: 64, repeats: 3 });
    const row = (p: string, f: number | null) => r.rows.find((x) => x.policy === p && x.fraction === f)!;
    expect(r.rows.map((x) => x.policy)).toEqual(['full', 'snapkv', 'snapkv', 'tova+merge', 'tova+merge', 'adakv', 'adakv', 'razor', 'razor', 'int8', 'int4']);
    for (const f of [0.25, 0.5]) {
      const s = row('snapkv', f);
      expect(s.loss!.keep).toBe(realKeepFor(f, 192));
      expect(s.loss!.kept).toBeCloseTo(realKeepFor(f, 192) / 192, 12);
      expect(s.needle!.kept).toBeCloseTo(realKeepFor(f, 300) / 300, 12);
      expect(s.loss!.memory).toBeLessThan(1);
      expect(Number.isFinite(s.loss!.bitsPerByte) && s.loss!.bitsPerByte > 0).toBe(true);
      expect(s.loss!.delta).toBeCloseTo(s.loss!.bitsPerByte - r.rows[0]!.loss!.bitsPerByte, 9);
      expect(row('adakv', f).loss!.kept).toBeCloseTo(realKeepFor(f, 192) / 192, 12); // same total, spread over heads
    }
    expect(row('snapkv', 0.25).loss!.memory).toBeLessThan(row('snapkv', 0.5).loss!.memory);
    expect(r.needleControl!.keyBits).toBeGreaterThan(0);
    for (const x of r.rows) expect(Number.isFinite(x.needle!.keyBits) && x.needle!.keyBits >= 0).toBe(true);
    // razor: retrieval heads whole, so it keeps at least the budget; the pick is reported.
    expect(r.retrievalHeads!.picked).toHaveLength(model.config.nLayers);
    expect(row('razor', 0.25).loss!.kept).toBeGreaterThanOrEqual(0.25 - 1e-9);
    for (const q of ['int8', 'int4']) expect(row(q, null).loss!.kept).toBe(1);
    expect(row('int4', null).loss!.memory).toBeLessThan(row('int8', null).loss!.memory);
    // (int8 below the f16 cache needs contexts well past the f16 residual of 128 tokens; not at 192.)
    // speckv without a draft model: skipped, with the reason.
    expect(r.skipped).toEqual([{ policy: 'speckv', fraction: 0.25, task: 'all', reason: expect.stringMatching(/speckv needs draft queries/) }, { policy: 'speckv', fraction: 0.5, task: 'all', reason: expect.stringMatching(/speckv needs draft queries/) }]);
    const table = formatRealKvEvalTable(r);
    expect(table).toMatch(/^full\s+100%\s+100.0%\s+100.0%\s+\d+\.\d{4}\s+-\s+\d+%\s+\d+\.\d\d$/m);
    expect(table).toMatch(/^int4\s+all\s+100.0%/m);
    expect(table).toMatch(/skipped speckv at 25%: speckv needs draft queries/);
    const svg = renderRealKvEvalSvg(r);
    expect(svg.match(/<polyline/g)?.length).toBe(2 * 4); // 4 evicting policies with rows, 2 panels
    // The needle panel shows accuracy when the full cache copies, else the graded key bits with the control line.
    expect(svg).toContain(r.rows[0]!.needle!.accuracy >= 0.5 ? 'needle accuracy (copy test)' : 'needle key bits per digit');
  });

  test('sparse sessions decode byte by byte through the selection: a budget over the whole cache is the dense result, a small one is not', async () => {
    const ctx = text.subarray(2000, 2300);
    const cap = await captureContext(runner, ctx, 16);
    const next = text.subarray(2300, 2312);
    // Dense, one byte per step (the same steps as the sparse sessions).
    const dense = restoreSession(runner, cap);
    const want = new Float32Array(next.length * 256);
    for (let t = 0; t < next.length; t++) want.set(await dense.forward(next.subarray(t, t + 1)), t * 256);
    const maxDiff = (a: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - want[i]!)), 0);
    for (const spec of ['quest', 'blocks', 'tidal']) {
      const all = restoreSession(runner, cap);
      all.sparse = sparseCacheOptions(parseSparseSpec(spec)!, 100_000, model.config.nLayers);
      const got = await all.forward(next);
      expect(all.position).toBe(300 + next.length);
      expect(all.cache.lengths().data[0]).toBe(300 + next.length);
      expect([spec, maxDiff(got)]).toEqual([spec, expect.closeTo(0, 3)]);
      const few = restoreSession(runner, cap);
      few.sparse = sparseCacheOptions(parseSparseSpec(spec)!, 64, model.config.nLayers);
      expect([spec, maxDiff(await few.forward(next)) > 1e-2]).toEqual([spec, true]);
    }
  });

  test('sparse rows: every row kept, the budget attended per byte, memory counts the summaries', async () => {
    const r = await runRealKvEval(model, { ...tiny, passages: 1, trials: 1, budgets: [0.25], policies: ['quest', 'tidal:selectLayer=2'] });
    expect(r.rows.map((x) => [x.policy, x.kind, x.fraction])).toEqual([['full', 'full', null], ['quest', 'sparse', 0.25], ['tidal:selectLayer=2', 'sparse', 0.25]]);
    const full = r.rows[0]!;
    for (const row of r.rows.slice(1)) {
      expect(row.loss!.keep).toBe(realKeepFor(0.25, 192));
      expect(row.loss!.kept).toBe(1);
      expect(row.needle!.kept).toBe(1);
      expect(row.loss!.delta).toBeCloseTo(row.loss!.bitsPerByte - full.loss!.bitsPerByte, 9);
      expect(row.loss!.delta).not.toBe(0); // 48 of 216 rows per step: not the full cache's result
    }
    // Quest's page summaries (2 rows per 16 keys) on top of the full cache; TidalDecode keeps none.
    expect(r.rows[1]!.loss!.memory).toBeGreaterThan(1.05);
    expect(r.rows[2]!.loss!.memory).toBe(1);
    expect(formatRealKvEvalTable(r)).toMatch(/^quest\s+25%\s+100.0%/m);
  });

  test('speckv scores with lookahead queries from the draft model', async () => {
    const draft = await ByteLm.load('draft', { plain: false });
    try {
      const r = await runRealKvEval(model, { ...tiny, trials: 0, budgets: [0.5], policies: ['speckv'], draft, lookahead: 8 });
      expect(r.skipped).toEqual([]);
      expect(r.settings.draft).toBe(draft.config.name);
      expect(r.rows[1]).toMatchObject({ policy: 'speckv', fraction: 0.5 });
      expect(r.rows[1]!.loss!.kept).toBeCloseTo(realKeepFor(0.5, 192) / 192, 12);
    } finally {
      await draft.release();
    }
  });

  test('a budget below what a policy always keeps is skipped for that budget only', async () => {
    const r = await runRealKvEval(model, { ...tiny, trials: 0, budgets: [0.05, 0.5], policies: ['snapkv'] });
    expect(r.rows.map((x) => [x.policy, x.fraction])).toEqual([['full', null], ['snapkv', 0.5]]);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]).toMatchObject({ policy: 'snapkv', fraction: 0.05, task: 'loss' });
    expect(r.skipped[0]!.reason).toMatch(/budget: expected at least/);
  });

  test('answerNeedle: one teacher-forced pass gives greedy decoding\'s verdict and the digits\' bits', async () => {
    for (let seed = 0; seed < 3; seed++) {
      const t = makeNeedleTrial(text, seed, { context: 300, digits: 4 });
      const cap = await captureContext(runner, t.context);
      // Reference: greedy, one byte at a time, and the digits' bits step by step.
      const g = restoreSession(runner, cap);
      let logits = await g.forward(t.question);
      let greedy = true;
      let bits = 0;
      for (let j = 0; j < t.answer.length; j++) {
        const row = Array.from(logits.subarray(logits.length - 256));
        bits += refBits(row, t.answer[j]!);
        if (greedy && row.indexOf(Math.max(...row)) !== t.answer[j]) greedy = false;
        if (j + 1 < t.answer.length) logits = await g.forward([t.answer[j]!]);
      }
      const s = restoreSession(runner, cap);
      const forward = vi.spyOn(s, 'forward');
      const r = await answerNeedle(s, t);
      expect(forward).toHaveBeenCalledTimes(1);
      expect(r.correct).toBe(greedy);
      expect(r.bits).toBeCloseTo(bits, 3);
    }
  });

  test('option errors name the option before the model runs', async () => {
    await expect(runRealKvEval(model, { ...tiny, context: 4000, continuation: 200 })).rejects.toThrow(/options.context \+ options.continuation: expected at most the model's trained context \(4096 bytes\), received 4200/);
    await expect(runRealKvEval(model, { ...tiny, passages: 0, trials: 0 })).rejects.toThrow(/at least one task/);
    await expect(runRealKvEval(model, { ...tiny, budgets: [0] })).rejects.toThrow(/options.budgets\[0\]: expected a fraction in \(0, 1\], received 0/);
    await expect(runRealKvEval(model, { ...tiny, policies: ['int16'] })).rejects.toThrow(/options.policies\[0\]: unknown policy "int16"/);
    await expect(runRealKvEval(model, { ...tiny, text: 'abc' as never })).rejects.toThrow(/options.text: expected the held-out text as a Uint8Array/);
    await expect(runRealKvEval(model, { ...tiny, pasages: 3 } as never)).rejects.toThrow(/pasages/);
  });
});

const cli = evalKvCli;

describe('tokenpress eval kv --model', () => {
  const textFile = join(dir, 'held.txt');
  beforeAll(() => writeFileSync(textFile, fakeText(120_000, 4)));
  const TINY = ['--text', textFile, '--passages', '1', '--context', '128', '--continuation', '8', '--trials', '1', '--needle-context', '300', '--digits', '3'];

  test('table, --json and --svg', async () => {
    const json = join(dir, 'r.json');
    const svg = join(dir, 'r.svg');
    const { out } = await cli(['--model', 'main', ...TINY, '--budgets', '50%', '--policies', 'streamingllm,int8', '--json', json, '--svg', svg]);
    expect(out).toMatch(/policy\s+budget\s+kept\s+memory\s+bits\/byte\s+vs full\s+needle\s+key bits/);
    expect(out).toMatch(/needle control \(full cache, the needle line removed\): accuracy \d+\.\d%, key \d+\.\d\d bits\/digit/);
    expect(out).toMatch(/^streamingllm\s+50%\s+50.0%/m);
    const r = JSON.parse(readFileSync(json, 'utf8')) as RealKvEvalReport;
    expect(r.settings).toMatchObject({ passages: 1, context: 128, continuation: 8, trials: 1, needleContext: 300, digits: 3, budgets: [0.5], policies: ['streamingllm', 'int8'] });
    expect(r.rows.map((x) => x.policy)).toEqual(['full', 'streamingllm', 'int8']);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg /);
  });

  test('argument errors', async () => {
    await expect(cli(['--model', 'main', ...TINY, '--n-kv', '100'])).rejects.toThrow(/--n-kv shapes the synthetic workload or a trace and does not apply with --model/);
    await expect(cli(['--model', 'main', ...TINY, '--trace', 'x.safetensors'])).rejects.toThrow(/--trace .*does not apply with --model/);
    await expect(cli(['--passages', '2'])).rejects.toThrow(/--passages applies only with --model/);
    await expect(cli(['--policies', 'int8'])).rejects.toThrow(/--policies: "int8" applies only with --model/);
    await expect(cli(['--model', 'main', '--policies', 'snapkv,int3'])).rejects.toThrow(/--policies: unknown policy "int3"/);
    await expect(cli(['--model', 'main', ...TINY, '--passages', '0', '--trials', '0'])).rejects.toThrow(/--passages \/ --trials: expected at least one task/);
    await expect(cli(['--model', 'main', '--passages', '-1'])).rejects.toThrow(/--passages: expected an integer in \[0, 100000\], received "-1"/);
    await expect(cli(['--model', 'main', '--text', join(dir, 'missing.txt')])).rejects.toThrow(/--text: expected a readable text file, received ".*missing.txt" \(not found\)/);
    await expect(cli(['--model', join(dir, 'nomodel'), ...TINY])).rejects.toThrow(/model: expected .*config.json/);
  });
});
