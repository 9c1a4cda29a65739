// The safetensors reader/writer and the KV trace format (lib/kv/eval/safetensors.ts,
// traces.ts): round trips on files the test writes, every kind of corrupt file
// (each must give a clear ERR_BAD_FILE error, never a crash or a huge
// allocation), and `eval kv` on a trace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { castTo, type FloatDType, type Tensor } from '../../lib/index.js';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors } from '../../lib/kv/eval/safetensors.js';
import { kvTraceFromContents, loadKvTrace, traceSource, writeKvTrace, type KvTraceLayer } from '../../lib/kv/eval/traces.js';
import { runKvEval } from '../../lib/kv/eval/run.js';
import { mulberry32, randomF32 } from '../reference/random.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmp = (bytes?: Uint8Array) => {
  const f = join(dir, `t${fileNo++}.safetensors`);
  if (bytes) writeFileSync(f, bytes);
  return f;
};

function f32(shape: number[], seed: number): Tensor<'f32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'f32', shape, data: randomF32(mulberry32(seed), n) };
}

/** A raw safetensors file from a header object and a data region. */
function rawFile(header: unknown, dataLen: number, opts: { headerLen?: bigint } = {}): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, opts.headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

function expectBad(bytes: Uint8Array, message: RegExp): void {
  const f = tmp(bytes);
  for (const read of [() => readSafetensors(f), () => decodeSafetensors(bytes, f)]) {
    let err: unknown;
    try { read(); } catch (e) { err = e; }
    expect(err, `expected an error matching ${message}`).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ERR_BAD_FILE');
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain('safetensors');
  }
}

describe('safetensors', () => {
  test('round trip: F32, F16, BF16, empty and scalar tensors, metadata', () => {
    const a = f32([3, 5, 7], 1);
    const b = castTo(f32([2, 9], 2), 'f16');
    const c = castTo(f32([4], 3), 'bf16');
    const empty: Tensor<'f32'> = { dtype: 'f32', shape: [0, 3], data: new Float32Array(0) };
    const scalar: Tensor<'f16'> = { dtype: 'f16', shape: [], data: Uint16Array.of(0x3c00) };
    const tensors: [string, Tensor<FloatDType>][] = [['a', a], ['b.x', b], ['c', c], ['empty', empty], ['scalar', scalar]];
    const file = tmp();
    writeSafetensors(file, tensors, { note: 'héllo', n: '3' });
    const bytes = encodeSafetensors(tensors, { note: 'héllo', n: '3' });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    for (const got of [readSafetensors(file), decodeSafetensors(bytes)]) {
      expect(got.metadata).toEqual({ note: 'héllo', n: '3' });
      expect([...got.tensors.keys()].sort()).toEqual(['a', 'b.x', 'c', 'empty', 'scalar']);
      for (const [name, t] of tensors) {
        const r = got.tensors.get(name)!;
        expect(r.dtype, name).toBe(t.dtype);
        expect(r.shape, name).toEqual(t.shape);
        expect(Array.from(r.data), name).toEqual(Array.from(t.data));
      }
    }
  });

  const T = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
  const corrupt: { label: string; bytes: () => Uint8Array; message: RegExp }[] = [
    { label: 'empty file', bytes: () => new Uint8Array(0), message: /shorter than the 8-byte header length/ },
    { label: '5 bytes', bytes: () => new Uint8Array(5), message: /shorter than the 8-byte/ },
    { label: 'header length beyond the file', bytes: () => rawFile({ a: T('F32', [1], 0, 4) }, 4, { headerLen: 10_000n }), message: /header length 10000 is beyond the end of the file/ },
    { label: 'header length 2^63', bytes: () => rawFile({}, 0, { headerLen: 1n << 63n }), message: /beyond the end of the file/ },
    { label: 'truncated data (file cut short)', bytes: () => encodeSafetensors([['a', f32([4, 4], 5)]]).subarray(0, 8 + 64 + 30), message: /data_offsets \[0, 64\] out of range|beyond the end/ },
    { label: 'header not JSON', bytes: () => { const b = rawFile({ a: 1 }, 0); b[9] = 0x7b; b[10] = 0x7b; return b; }, message: /not UTF-8 JSON/ },
    { label: 'header not UTF-8', bytes: () => { const b = rawFile({ ab: 1 }, 0); b[10] = 0xff; return b; }, message: /not UTF-8 JSON/ },
    { label: 'header is an array', bytes: () => rawFile([1, 2], 0), message: /not a JSON object/ },
    { label: 'unknown dtype', bytes: () => rawFile({ a: T('F33', [1], 0, 4) }, 4), message: /tensor "a" has unknown dtype "F33"/ },
    { label: 'unsupported dtype', bytes: () => rawFile({ a: T('I64', [1], 0, 8) }, 8), message: /tensor "a" has unsupported dtype "I64" \(supported: F32, F16, BF16\)/ },
    { label: 'shape/bytes mismatch', bytes: () => rawFile({ a: T('F32', [2, 3], 0, 20) }, 20), message: /shape \[2, 3\] F32 needs 24 bytes, data_offsets span 20/ },
    { label: 'huge shape (no allocation)', bytes: () => rawFile({ a: T('F32', [2 ** 40, 2 ** 40, 2 ** 40], 0, 16) }, 16), message: /needs more than 2\^53 bytes/ },
    { label: 'negative dimension', bytes: () => rawFile({ a: T('F32', [-1], 0, 4) }, 4), message: /shape is not an array of non-negative integers/ },
    { label: 'offsets overlapping', bytes: () => rawFile({ a: T('F32', [2], 0, 8), b: T('F32', [2], 4, 12) }, 12), message: /tensor "b" overlaps the previous tensor/ },
    { label: 'offsets out of range', bytes: () => rawFile({ a: T('F32', [2], 8, 16) }, 12), message: /data_offsets \[8, 16\] out of range \(data region is 12 bytes\)/ },
    { label: 'begin after end', bytes: () => rawFile({ a: T('F32', [0], 8, 4) }, 8), message: /out of range/ },
    { label: 'gap between tensors', bytes: () => rawFile({ a: T('F32', [1], 0, 4), b: T('F32', [1], 8, 12) }, 12), message: /gap before tensor "b"/ },
    { label: 'trailing bytes', bytes: () => rawFile({ a: T('F32', [1], 0, 4) }, 12), message: /cover 4 bytes of the 12-byte data region/ },
    { label: 'offsets not integers', bytes: () => rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4.5] } }, 4), message: /data_offsets is not \[begin, end\]/ },
    { label: 'extra field', bytes: () => rawFile({ a: { ...T('F32', [1], 0, 4), strides: [1] } }, 4), message: /unknown field "strides"/ },
    { label: 'metadata not strings', bytes: () => rawFile({ __metadata__: { n: 3 } }, 0), message: /__metadata__.n is not a string/ },
  ];
  test.each(corrupt)('corrupt file: $label', ({ bytes, message }) => expectBad(bytes(), message));

  test('a missing file is a plain ENOENT error', () => {
    expect(() => readSafetensors(join(dir, 'nope.safetensors'))).toThrow(/ENOENT/);
  });
});

function makeTrace(nLayers: number, nHeads: number, nKvHeads: number, n: number, headDim: number, seed: number): KvTraceLayer[] {
  return Array.from({ length: nLayers }, (_, l) => ({
    q: f32([nHeads, n, headDim], seed + 3 * l),
    k: castTo(f32([nKvHeads, n, headDim], seed + 3 * l + 1), 'f16'),
    v: castTo(f32([nKvHeads, n, headDim], seed + 3 * l + 2), 'bf16'),
  }));
}

describe('KV traces', () => {
  test('round trip with needles metadata; F16 queries become f32', () => {
    const layers = makeTrace(3, 4, 2, 37, 6, 10);
    layers[1]!.q = castTo(layers[1]!.q, 'f16') as never;
    const file = tmp();
    writeKvTrace(file, layers, [{ start: 3, end: 5 }, { start: 20, end: 21 }], { model: 'test' });
    const t = loadKvTrace(file);
    expect([t.nLayers, t.nHeads, t.nKvHeads, t.n, t.headDim]).toEqual([3, 4, 2, 37, 6]);
    expect(t.needles).toEqual([{ start: 3, end: 5 }, { start: 20, end: 21 }]);
    expect(t.metadata.model).toBe('test');
    for (let l = 0; l < 3; l++) {
      expect(t.layers[l]!.q.dtype).toBe('f32');
      expect(t.layers[l]!.k.dtype).toBe('f16');
      expect(t.layers[l]!.v.dtype).toBe('bf16');
      expect(Array.from(t.layers[l]!.k.data)).toEqual(Array.from(layers[l]!.k.data));
      if (l !== 1) expect(Array.from(t.layers[l]!.q.data)).toEqual(Array.from(layers[l]!.q.data));
    }
  });

  const badTraces: { label: string; tensors: () => [string, Tensor<FloatDType>][]; meta?: Record<string, string>; message: RegExp }[] = [
    { label: 'no tensors', tensors: () => [], message: /no layers/ },
    { label: 'misspelled name', tensors: () => [['layer.0.q', f32([2, 4, 2], 1)]], message: /unexpected tensor "layer.0.q"/ },
    { label: 'missing v', tensors: () => [['layers.0.q', f32([2, 4, 2], 1)], ['layers.0.k', f32([1, 4, 2], 2)]], message: /layers.0.v is missing/ },
    { label: 'layer gap', tensors: () => { const l = makeTrace(1, 2, 1, 4, 2, 1)[0]!; return [['layers.0.q', l.q], ['layers.0.k', l.k], ['layers.0.v', l.v], ['layers.2.q', l.q], ['layers.2.k', l.k], ['layers.2.v', l.v]]; }, message: /layer 1 is missing/ },
    { label: 'k shape differs from q', tensors: () => [['layers.0.q', f32([2, 4, 2], 1)], ['layers.0.k', f32([1, 5, 2], 2)], ['layers.0.v', f32([1, 4, 2], 3)]], message: /layers.0.k has shape \[1, 5, 2\], expected \[1, 4, 2\]/ },
    { label: 'nHeads not a multiple of nKvHeads', tensors: () => [['layers.0.q', f32([3, 4, 2], 1)], ['layers.0.k', f32([2, 4, 2], 2)], ['layers.0.v', f32([2, 4, 2], 3)]], message: /nHeads = 3 is not a multiple of nKvHeads = 2/ },
    { label: 'rank 2', tensors: () => [['layers.0.q', f32([4, 2], 1)], ['layers.0.k', f32([4, 2], 2)], ['layers.0.v', f32([4, 2], 3)]], message: /expected 3 dimensions/ },
    { label: 'needles out of range', tensors: () => { const l = makeTrace(1, 2, 1, 4, 2, 1)[0]!; return [['layers.0.q', l.q], ['layers.0.k', l.k], ['layers.0.v', l.v]]; }, meta: { needles: '[{"start":2,"end":9}]' }, message: /needles\[0\] is not \{ start, end \} with 0 <= start < end <= n = 4/ },
    { label: 'needles not JSON', tensors: () => { const l = makeTrace(1, 2, 1, 4, 2, 1)[0]!; return [['layers.0.q', l.q], ['layers.0.k', l.k], ['layers.0.v', l.v]]; }, meta: { needles: '[{' }, message: /"needles" is not JSON/ },
  ];
  test.each(badTraces)('bad trace: $label', ({ tensors, meta, message }) => {
    const file = tmp();
    writeSafetensors(file, tensors(), meta);
    expect(() => loadKvTrace(file)).toThrow(message);
    try { loadKvTrace(file); } catch (e) { expect((e as { code?: string }).code).toBe('ERR_BAD_FILE'); }
  });

  test('traceSource splits prompt / window / probes as documented', () => {
    const layers = makeTrace(2, 4, 2, 50, 4, 20);
    const t = kvTraceFromContents({ metadata: { needles: '[{"start":10,"end":14},{"start":45,"end":47}]' }, tensors: new Map(layers.flatMap((l, i) => [[`layers.${i}.q`, l.q], [`layers.${i}.k`, l.k], [`layers.${i}.v`, l.v]] as [string, Tensor<FloatDType>][])) });
    const s = traceSource(t, { window: 6, nProbes: 8 });
    expect(s.nKv).toBe(42);
    expect(s.layers[0]!.k.shape).toEqual([2, 42, 4]);
    expect(Array.from(s.question[0]!.positions)).toEqual([36, 37, 38, 39, 40, 41]);
    expect(Array.from(s.probes[1]!.positions)).toEqual([42, 43, 44, 45, 46, 47, 48, 49]);
    // probe row i of head 3 is trace row 42 + i.
    const q = layers[1]!.q.data as Float32Array;
    expect(Array.from(s.probes[1]!.q.data.subarray((3 * 8 + 2) * 4, (3 * 8 + 3) * 4))).toEqual(Array.from(q.subarray((3 * 50 + 44) * 4, (3 * 50 + 45) * 4)));
    expect(s.needles).toEqual({ kind: 'kept', ranges: [{ start: 10, end: 14 }] }); // the second lies after the prompt
    expect(() => traceSource(t, { window: 45, nProbes: 8 })).toThrow(RangeError);
  });

  test('eval kv on a trace: keep-all is exact; needle kept rate counts tokens', async () => {
    const layers = makeTrace(2, 4, 2, 90, 8, 30);
    const file = tmp();
    writeKvTrace(file, layers, [{ start: 1, end: 4 }, { start: 50, end: 52 }]);
    const source = traceSource(loadKvTrace(file), { window: 8, nProbes: 10 });
    const report = await runKvEval(source, { budgets: [0.1, 1], policies: ['streamingllm', 'snapkv', 'random'] });
    expect(report.source.kind).toBe('trace');
    expect(report.questionLabel).toBe('window');
    const all = report.rows.filter((r) => r.fraction === 1);
    for (const r of all) {
      expect(r.errQuestion).toBeLessThan(1e-6);
      expect(r.errProbes).toBeLessThan(1e-6);
      expect(r.massProbes).toBeCloseTo(1, 5);
      expect(r.needleRate).toBe(1);
    }
    // streamingllm at keep 8 of 80: sinks 0..3 plus the last 4 positions: needle 1 keeps 3/3 tokens, needle 2 keeps 0/2.
    const s = report.rows.find((r) => r.policy === 'streamingllm' && r.fraction === 0.1)!;
    expect(s.keep).toBe(8);
    expect(s.needleRate).toBeCloseTo(0.5, 12);
  });
});
