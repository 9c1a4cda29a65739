// Real traces (lib/model/trace-dump.ts, `tokenpress eval kv --dump-trace`):
// the copy-task text, a tiny trace of the committed draft model written and
// read back with loadKvTrace (shapes, metadata, q/k/v bit-exact against
// forward()'s onLayer), `eval kv --trace` on it, and the CLI's errors.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { Command } from 'commander';
import { ByteLm } from '../../lib/model/byte-lm.js';
import { bitsPerByte, dumpLmTrace, KEY_DIGITS, lmTraceText, MIN_NEEDLE_PROMPT, TRACE_FORMAT } from '../../lib/model/trace-dump.js';
import { loadKvTrace, traceSource, writeKvTrace } from '../../lib/kv/eval/traces.js';
import { registerEvalKv } from '../../lib/cli/eval-kv.js';
import type { KvEvalReport } from '../../lib/kv/eval/run.js';
import { mulberry32 } from '../reference/random.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-lmtrace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Text-like bytes (lines of lowercase words) from a seed: no corpus needed. */
function fakeText(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng();
    out[i] = r < 0.05 ? 0x0a : r < 0.2 ? 0x20 : 0x61 + Math.floor(rng() * 26);
  }
  return out;
}
const SOURCE = fakeText(20_000, 9);
const textFile = join(dir, 'source.txt');
writeFileSync(textFile, SOURCE);
const dec = (b: Uint8Array) => Buffer.from(b).toString('latin1');

describe('lmTraceText: the copy-task text', () => {
  test('fact early, question at the prompt end, answer in the probes; deterministic in the seed', () => {
    const n = 400;
    const probes = 20;
    const t = lmTraceText(SOURCE, n, probes, 5, true);
    expect(t.bytes).toHaveLength(n);
    expect(t).toEqual(lmTraceText(SOURCE, n, probes, 5, true));
    expect(lmTraceText(SOURCE, n, probes, 6, true).offset).not.toBe(t.offset);
    const nd = t.needle!;
    expect(nd.key).toMatch(new RegExp(`^[1-9][0-9]{${KEY_DIGITS - 1}}$`));
    expect(nd.end - nd.start).toBe(KEY_DIGITS);
    expect(dec(t.bytes.subarray(nd.start - 11, nd.end + 2))).toBe(`The key is ${nd.key}.\n`);
    const nKv = n - probes;
    expect(nd.start - 11).toBeGreaterThanOrEqual(Math.floor(0.1 * nKv)); // at a depth in [0.1, 0.3], moved to a line start
    expect(nd.start - 11).toBeLessThan(nKv / 2);
    expect(t.bytes[nd.start - 12]).toBe(0x0a);
    expect(nd.question).toBe(nKv - 1);
    expect(dec(t.bytes.subarray(nKv - 13, nKv))).toBe(`\nThe key is ${nd.key[0]}`);
    expect(dec(t.bytes.subarray(nKv, nKv + KEY_DIGITS + 1))).toBe(`${nd.key.slice(1)}.\n`);
    // Everything else is the source, in order, from the offset (a line start).
    expect(SOURCE[t.offset - 1]).toBe(0x0a);
    const inserted = new Set<number>();
    for (let p = nd.start - 11; p < nd.end + 2; p++) inserted.add(p);
    for (let p = nKv - 13; p < nKv + KEY_DIGITS + 1; p++) inserted.add(p);
    const rest = Array.from(t.bytes).filter((_, p) => !inserted.has(p));
    expect(rest).toEqual(Array.from(SOURCE.subarray(t.offset, t.offset + rest.length)));
    expect(t.consumed).toBe(rest.length);
  });

  test('without line starts the needle goes mid-line at its depth', () => {
    const noLines = SOURCE.map((b) => (b === 0x0a ? 0x20 : b));
    const t = lmTraceText(noLines, 400, 20, 5, true);
    const at = t.needle!.start - 11;
    expect(at).toBeGreaterThanOrEqual(Math.floor(0.1 * 380));
    expect(at).toBeLessThanOrEqual(Math.floor(0.3 * 380));
    expect(dec(t.bytes.subarray(at, t.needle!.end + 2))).toBe(`The key is ${t.needle!.key}.\n`);
  });

  test('without the needle: a plain slice of the source', () => {
    const t = lmTraceText(SOURCE, 300, 10, 1, false);
    expect(t.needle).toBeUndefined();
    expect(Array.from(t.bytes)).toEqual(Array.from(SOURCE.subarray(t.offset, t.offset + 300)));
  });

  test('errors name the argument, the expectation and what was received', () => {
    expect(() => lmTraceText(SOURCE, 100 + MIN_NEEDLE_PROMPT - 1, 100, 0, true)).toThrow(
      new RangeError(`context: expected at least probes + ${MIN_NEEDLE_PROMPT} = ${100 + MIN_NEEDLE_PROMPT} with the needle, received ${99 + MIN_NEEDLE_PROMPT}`));
    expect(() => lmTraceText(SOURCE, 400, KEY_DIGITS - 1, 0, true)).toThrow(/^probes: expected at least 6 with the needle/);
    const keyEverywhere = new Uint8Array(5000).map((_, i) => 'the KEY IS x\n'.charCodeAt(i % 13));
    expect(() => lmTraceText(keyEverywhere, 400, 10, 0, true)).toThrow(/^source: expected text with windows free of "key is"/);
    expect(lmTraceText(keyEverywhere, 400, 10, 0, false).bytes).toHaveLength(400); // no needle: any text
    expect(() => lmTraceText(SOURCE, 10, 10, 0, false)).toThrow(/^context: expected more than probes = 10, received 10$/);
    expect(() => lmTraceText(SOURCE.subarray(0, 300), 200, 10, 0, false)).toThrow(/^source: expected at least context \+ 256 = 456 bytes, received "300 bytes"$/);
    expect(() => lmTraceText('text' as never, 200, 10, 0, false)).toThrow(TypeError);
    expect(() => lmTraceText(SOURCE, 200, 10, -1, false)).toThrow(/^seed: expected an integer in \[0, 4294967295\], received -1$/);
  });

  test('bitsPerByte is the mean next-byte cross-entropy in bits', () => {
    const logits = new Float32Array(3 * 256);
    logits[0 * 256 + 7] = Math.log(3); // row 0: p(7) = 3 / 258
    const bits = bitsPerByte(logits, Uint8Array.from([1, 7, 9]));
    expect(bits).toBeCloseTo((-Math.log2(3 / 258) - Math.log2(1 / 256)) / 2, 5);
  });
});

describe('a trace of the draft model', () => {
  let model: ByteLm;
  const file = join(dir, 'draft.safetensors');
  const n = 200;
  const probes = 16;
  beforeAll(async () => { model = await ByteLm.load('draft', { plain: false }); });
  afterAll(async () => { await model?.release(); });

  test('writes the trace format; loadKvTrace reads it; q/k/v are bit-exact what forward() gave', async () => {
    const r = await dumpLmTrace(model, 'draft', SOURCE, 'source.txt', file, { context: n, seed: 3, probes });
    const c = model.config;
    const trace = loadKvTrace(file);
    expect([trace.nLayers, trace.nHeads, trace.nKvHeads, trace.n, trace.headDim]).toEqual([c.nLayers, c.nHeads, c.nKvHeads, n, c.headDim]);
    expect(trace.layers[0]!.q.shape).toEqual([c.nHeads, n, c.headDim]);
    expect(trace.layers[0]!.k.shape).toEqual([c.nKvHeads, n, c.headDim]);
    expect(trace.layers.every((l) => l.k.dtype === 'f32' && l.v.dtype === 'f32')).toBe(true);
    expect(trace.probes).toBe(probes);
    const nd = r.text.needle!;
    expect(trace.needles).toEqual([{ start: nd.start, end: nd.end }]);
    expect(trace.metadata).toMatchObject({
      format: TRACE_FORMAT, model: 'draft', modelName: c.name, cacheDtype: model.session().cache.dtype, context: String(n), probes: String(probes), source: 'source.txt',
      offset: String(r.text.offset), seed: '3', needle: '1', key: nd.key, question: String(n - probes - 1),
    });
    expect(trace.metadata.copyCorrect).toMatch(new RegExp(`^[0-${KEY_DIGITS - 1}]/${KEY_DIGITS - 1}$`));
    expect(Number(trace.metadata.bitsPerByte)).toBeCloseTo(r.bitsPerByte, 3);
    // keyBits: -log2 softmax at the answer rows, recomputed here in float64
    const lg = (await model.session().forward(r.text.bytes)).slice();
    let kb = 0;
    for (let i = 1; i < KEY_DIGITS; i++) {
      const row = Array.from(lg.subarray((nd.question + i - 1) * 256, (nd.question + i) * 256));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
      kb += (lse - row[nd.key.charCodeAt(i)]!) / Math.LN2;
    }
    expect(Number(trace.metadata.keyBits)).toBeCloseTo(kb / (KEY_DIGITS - 1), 3);
    expect(r.bitsPerByte).toBeGreaterThan(0);

    // The same bytes through a fresh session: onLayer's arrays equal the stored tensors bit for bit.
    const seen: { q: Float32Array; k: Float32Array; v: Float32Array }[] = [];
    await model.session().forward(r.text.bytes, { onLayer: (a) => seen.push({ q: a.q.slice(), k: a.k.slice(), v: a.v.slice() }) });
    expect(seen).toHaveLength(c.nLayers);
    const bits = (x: Float32Array | Uint16Array) => new Uint32Array(x.buffer, x.byteOffset, x.byteLength / 4);
    for (let l = 0; l < c.nLayers; l++) {
      for (const part of ['q', 'k', 'v'] as const) {
        const stored = trace.layers[l]![part].data as Float32Array;
        expect(stored).toHaveLength(seen[l]![part].length);
        expect(bits(stored)).toEqual(bits(seen[l]![part]));
      }
    }
    // Not trivially equal: layers differ, and q is not all zeros.
    expect(bits(trace.layers[0]!.k.data as Float32Array)).not.toEqual(bits(trace.layers[1]!.k.data as Float32Array));
    expect((trace.layers[1]!.q.data as Float32Array).some((x) => x !== 0)).toBe(true);

    // As an eval source: the question's last row ends the window, the answer opens the probes.
    const src = traceSource(trace, { window: 32, nProbes: trace.probes! });
    expect(src.nKv).toBe(n - probes);
    expect(src.needles).toEqual({ kind: 'kept', ranges: [{ start: nd.start, end: nd.end }] });
    expect(src.description).toMatch(/; model draft \(step \d+\), source\.txt byte \d+, seed 3, full cache copies \d\/5 answer digits$/);
  });

  test('options are checked before any work', async () => {
    await expect(dumpLmTrace(model, 'draft', SOURCE, 's', join(dir, 'x.safetensors'), { context: c4096() + 1 })).rejects.toThrow(
      /^options\.context: expected an integer in \[2, 4096\], received 4097$/);
    await expect(dumpLmTrace(model, 'draft', SOURCE, 's', join(dir, 'x.safetensors'), { contxt: 100 } as never)).rejects.toThrow(
      /unknown option "contxt" \(did you mean "context"\?\)/);
    await expect(dumpLmTrace(model, 'draft', SOURCE, 's', join(dir, 'x.safetensors'), { context: 100, probes: 100 })).rejects.toThrow(
      /^options\.probes: expected an integer in \[1, 99\], received 100$/);
  });
  const c4096 = () => model.config.context;
});

async function cli(args: string[]): Promise<string> {
  const logs: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { logs.push(a.join(' ')); });
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (s) => logs.push(s) });
  registerEvalKv(program.command('eval').exitOverride());
  for (const c of program.commands) for (const sub of c.commands) sub.exitOverride().configureOutput({ writeErr: () => undefined });
  await program.parseAsync(['node', 'tokenpress', 'eval', 'kv', '--no-progress', ...args]);
  return logs.join('\n');
}

describe('tokenpress eval kv --dump-trace / --trace', () => {
  const file = join(dir, 'cli.safetensors');

  test('dumps a trace that eval kv --trace evaluates with the trace\'s own probes', async () => {
    const out = await cli(['--dump-trace', file, '--model', 'draft', '--text', textFile, '--context', '240', '--probes', '12', '--seed', '4']);
    expect(out).toMatch(/^wrote .*cli\.safetensors: 2 layers, q \[2, 240, 64\], k\/v \[1, 240, 64\] f32$/m);
    expect(out).toMatch(/^needle: key \d{6} at bytes \d+\.\.\d+, question ends at row 227, answer in the first probes; full cache copies \d\/5 answer digits, \d+\.\d{4} bits per digit \(chance 3\.32\)$/m);
    expect(loadKvTrace(file).metadata.source).toBe('source.txt');
    const json = join(dir, 'cli-eval.json');
    const table = await cli(['--trace', file, '--window', '16', '--budgets', '0.25', '--policies', 'h2o,streamingllm', '--json', json]);
    expect(table).toMatch(/^h2o\s+25%\s+57\s/m);
    const report = JSON.parse(readFileSync(json, 'utf8')) as KvEvalReport;
    expect(report.source.nKv).toBe(228); // 240 - the 12 probes from the metadata
    expect(report.source.description).toMatch(/240 rows = prompt 228 \+ 12 probes, window 16; model draft/);
    expect(report.rows.map((r) => [r.policy, r.keep])).toEqual([['h2o', 57], ['streamingllm', 57]]);
    expect(report.rows.every((r) => r.needleRate !== null && r.errProbes >= 0 && r.errProbes < 2)).toBe(true);
    // --probes on the command line wins over the metadata.
    const over = JSON.parse(await cli(['--trace', file, '--probes', '20', '--budgets', '0.5', '--policies', 'h2o', '--json'])) as KvEvalReport;
    expect(over.source.nKv).toBe(220);
  });

  test('--no-needle writes plain text without needles', async () => {
    const plain = join(dir, 'plain.safetensors');
    await cli(['--dump-trace', plain, '--model', 'draft', '--text', textFile, '--context', '64', '--probes', '8', '--no-needle']);
    const t = loadKvTrace(plain);
    expect(t.needles).toBeUndefined();
    expect(t.metadata.needle).toBe('0');
    expect(t.metadata.key).toBeUndefined();
    expect(t.n).toBe(64);
  });

  test('errors', async () => {
    const x = join(dir, 'never.safetensors');
    await expect(cli(['--dump-trace', x])).rejects.toThrow(/^--dump-trace: expected --model <name> \(main, draft or a model directory\), received none$/);
    await expect(cli(['--dump-trace', x, '--model', 'draft', '--budgets', '0.1'])).rejects.toThrow(/^--budgets does not apply with --dump-trace/);
    await expect(cli(['--dump-trace', x, '--model', 'draft', '--trace', file])).rejects.toThrow(/^--trace does not apply with --dump-trace/);
    await expect(cli(['--dump-trace', x, '--model', 'draft', '--context', '5000'])).rejects.toThrow(/^--context: expected at most the model's context 4096, received 5000$/);
    await expect(cli(['--dump-trace', x, '--model', 'draft', '--text', textFile, '--context', '100'])).rejects.toThrow(
      /^context: expected at least probes \+ 128 = 160 with the needle, received 100$/);
    await expect(cli(['--dump-trace', x, '--model', 'draft', '--text', join(dir, 'nope.txt')])).rejects.toThrow(/^--text: expected a readable file, received ".*nope\.txt"/);
    await expect(cli(['--dump-trace', x, '--model', join(dir, 'no-model')])).rejects.toThrow(/^model: expected .*config\.json/);
    await expect(cli(['--context', '100'])).rejects.toThrow(/^--context applies only with --dump-trace <file> or --model$/);
    await expect(cli(['--no-needle'])).rejects.toThrow(/^--no-needle applies only with --dump-trace <file>$/);
    await expect(cli(['--context', '0', '--dump-trace', x, '--model', 'draft'])).rejects.toThrow(/--context: expected an integer in \[1, 1048576\]/);
  });

  test('a trace whose metadata "probes" is not a valid row count is refused', () => {
    const f = (shape: number[]) => ({ dtype: 'f32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    for (const probes of ['0', '40', '1e1', ' 3', '-2']) {
      const bad = join(dir, `probes-${probes.trim()}.safetensors`);
      writeKvTrace(bad, [{ q: f([2, 40, 4]), k: f([1, 40, 4]), v: f([1, 40, 4]) }], undefined, { probes });
      expect(() => loadKvTrace(bad)).toThrow(expect.objectContaining({
        code: 'ERR_BAD_FILE', message: expect.stringMatching(/__metadata__ "probes" is .*, expected an integer in \[1, n - 1 = 39\]/) as unknown,
      }));
    }
  });
});
