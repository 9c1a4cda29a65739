// Findings 2 and 8 (issue 12): an output sharing memory with an input (two
// views of one ArrayBuffer) was written while the input was still read:
// attention() with out over the indices crashed, selectKv with out over the
// scores at another offset returned wrong indices. The rule now: no output
// shares an ArrayBuffer with any input or another output, whatever the
// offsets; refused in the TS layer (lib/validate.ts checkNoOverlap) and in
// the binding (native/binding/napi_args.h RefuseOverlap) for raw calls.
import { describe, expect, it } from 'vitest';
import { attention, selectKv } from '../../../lib/index.js';
import { expectSurvived, runFixture } from './run.js';

describe('outputs never share memory with inputs', () => {
  it('binding: every output of every entry point over every input and every other output is refused', () => {
    const run = runFixture('hardening-run.mjs', ['overlap']);
    expectSurvived(run);
    expect(run.cases.length).toBeGreaterThan(100);
    for (const c of run.cases) {
      // Field names may hold dots (the sparse forms' summaries.kmin).
      const [, out, input] = (/: ([\w.]+) shares the ArrayBuffer of ([\w.]+)/.exec(c.case)!).map((x) => x.replace(/\./g, '\\.'));
      expect(c, c.case).toMatchObject({ outcome: 'threw', type: 'RangeError' });
      // An output pair is named in the order the binding lists its outputs.
      expect(c.message).toMatch(new RegExp(`^(${out}: expected an output that shares no memory with the (input|output) ${input}|${input}: expected an output that shares no memory with the output ${out}), received a view of the same ArrayBuffer$`));
    }
    expect(run.cases.map((c) => c.case)).toContain('attention (sparse): out shares the ArrayBuffer of indices (after)');
    expect(run.cases.map((c) => c.case)).toContain('kvScore: scores shares the ArrayBuffer of k (after)');
  }, 300_000);

  const nHeads = 2, nQ = 3, nKv = 8, d = 4;
  const tensor = (shape: number[], data: Float32Array) => ({ dtype: 'f32' as const, shape, data });
  const filled = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + seed));

  it('attention(): options.out over the same ArrayBuffer as the indices (prefill, sparse) is a RangeError', () => {
    const buf = new ArrayBuffer(4 * (nHeads * nQ * d) + 4 * 4);
    const indices = new Int32Array(buf, 0, 4);
    indices.set([0, 2, 4, 6]);
    const out = new Float32Array(buf, 16, nHeads * nQ * d);
    const q = tensor([nHeads, nQ, d], filled(nHeads * nQ * d, 1));
    const k = tensor([1, nKv, d], filled(nKv * d, 2));
    const v = tensor([1, nKv, d], filled(nKv * d, 3));
    expect(() => attention(q, k, v, { indices: { dtype: 'i32', shape: [1, 4], data: indices }, out }))
      .toThrow(new RangeError('options.out: expected an output that shares no memory with the input options.indices, received a view of the same ArrayBuffer'));
    expect(Array.from(indices)).toEqual([0, 2, 4, 6]);
  });

  it('attention(): options.out over q at another offset is a RangeError; a separate out works', () => {
    const buf = new ArrayBuffer(8 * nHeads * nQ * d);
    const qData = new Float32Array(buf, 0, nHeads * nQ * d);
    qData.set(filled(qData.length, 1));
    const out = new Float32Array(buf, 4 * nHeads * nQ * d, nHeads * nQ * d);
    const q = tensor([nHeads, nQ, d], qData);
    const k = tensor([1, nKv, d], filled(nKv * d, 2));
    const v = tensor([1, nKv, d], filled(nKv * d, 3));
    expect(() => attention(q, k, v, { out })).toThrow(/^options\.out: expected an output that shares no memory with the input q/);
    const own = new Float32Array(nHeads * nQ * d);
    expect(attention(q, k, v, { out: own }).output.data).toBe(own);
    expect(Array.from(own)).toEqual(Array.from(attention(q, k, v).output.data));
  });

  it('selectKv: opts.out over the scores at another offset is a RangeError (it returned wrong indices)', () => {
    const buf = new ArrayBuffer(4 * 16 + 4 * 3);
    const scores = new Float32Array(buf, 0, 16);
    scores.set([5, 1, 9, 3, 7, 2, 8, 0, 4, 6, 1, 2, 3, 9, 9, 1]);
    const out = new Int32Array(buf, 4 * 16, 3);
    expect(() => selectKv({ dtype: 'f32', shape: [1, 16], data: scores }, { keep: 3 }, { out }))
      .toThrow(new RangeError('opts.out: expected an output that shares no memory with the input scores, received a view of the same ArrayBuffer'));
    expect(Array.from(selectKv({ dtype: 'f32', shape: [1, 16], data: scores }, { keep: 3 }).data)).toEqual([2, 13, 14]);
  });
});
