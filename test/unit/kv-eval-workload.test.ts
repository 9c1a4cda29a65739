// The synthetic needle workload of `tokenpress eval kv` (lib/kv/eval/workload.ts):
// determinism per seed, the needle property (full attention returns the
// needle's value) and the structure it claims (sink, local bias, RoPE),
// checked with the float64 attention reference.
import { describe, expect, test } from 'vitest';
import { applyRope, makeNeedleWorkload, type NeedleWorkloadOptions, type WorkloadLayer } from '../../lib/kv/eval/workload.js';
import { decode3, referenceAttention } from '../reference/attention.js';

function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function cos(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, n: number): number {
  let ab = 0, aa = 0, bb = 0;
  for (let d = 0; d < n; d++) {
    ab += a[ao + d]! * b[d]!;
    aa += a[ao + d]! ** 2;
    bb += b[d]! ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** bool mask [nQ, nKv]: key p visible to query i when p <= positions[i]. */
function causalMask(positions: Int32Array, nKv: number) {
  const data = new Uint8Array(positions.length * nKv);
  positions.forEach((qp, i) => { for (let p = 0; p < nKv; p++) data[i * nKv + p] = p <= qp ? 1 : 0; });
  return { dtype: 'bool' as const, shape: [positions.length, nKv], data };
}

/** Full-cache needle cosines of every (retrieval head, needle) in a layer, in float64. */
function needleCosines(layer: WorkloadLayer, nKv: number, nKvHeads: number): number[] {
  const { q, positions } = layer.question;
  const [nHeads, nQ, headDim] = q.shape as [number, number, number];
  const ref = referenceAttention(q, layer.k, layer.v, { mask: causalMask(positions, nKv) });
  const group = nHeads / nKvHeads;
  const out: number[] = [];
  for (const h of layer.retrievalHeads) {
    for (let j = 0; j < nQ; j++) out.push(cos(ref.output, (h * nQ + j) * headDim, layer.needleValues[Math.floor(h / group)]![j]!, headDim));
  }
  return out;
}

const CONFIGS: { label: string; opts: NeedleWorkloadOptions }[] = [
  { label: 'defaults (nKv 8192, 8/2 heads, headDim 128)', opts: {} },
  { label: 'seed 1, nKv 4096', opts: { seed: 1, nKv: 4096 } },
  { label: 'seed 2, f16, nKv 3001', opts: { seed: 2, nKv: 3001, dtype: 'f16' } },
  { label: 'awkward: 6/3 heads, headDim 66, 5 needles, window 7, nKv 777', opts: { seed: 3, nHeads: 6, nKvHeads: 3, headDim: 66, nNeedles: 5, window: 7, nKv: 777, nLayers: 3 } },
  { label: 'MHA 4/4, 1 needle, nKv 1000', opts: { seed: 4, nHeads: 4, nKvHeads: 4, nNeedles: 1, nKv: 1000 } },
];

describe('needle workload', () => {
  test.each(CONFIGS)('full attention returns every needle (cosine >= 0.9): $label', ({ opts }) => {
    const w = makeNeedleWorkload(opts);
    const o = w.options;
    expect(w.layers).toHaveLength(o.nLayers);
    for (const layer of w.layers) {
      expect(layer.k.shape).toEqual([o.nKvHeads, o.nKv, o.headDim]);
      expect(layer.k.dtype).toBe(o.dtype);
      expect(layer.window.shape).toEqual([o.nHeads, o.window, o.headDim]);
      expect(layer.retrievalHeads).toHaveLength(o.nKvHeads);
      const cosines = needleCosines(layer, o.nKv, o.nKvHeads);
      expect(cosines).toHaveLength(o.nKvHeads * o.nNeedles);
      for (const c of cosines) expect(c).toBeGreaterThanOrEqual(0.9);
    }
    // Needles lie in the prompt before the window; question rows end the prompt.
    for (const p of w.needlePositions) expect(p >= 1 && p < o.nKv - o.window).toBe(true);
    expect(w.questionPositions).toEqual(Array.from({ length: o.nNeedles }, (_, j) => o.nKv - o.nNeedles + j));
  });

  test('question rows are the last window rows, probes follow the prompt', () => {
    const w = makeNeedleWorkload({ nKv: 600, nNeedles: 3, window: 5, nProbes: 4, headDim: 16 });
    const l = w.layers[0]!;
    const hd = 16;
    for (let h = 0; h < 8; h++) {
      for (let j = 0; j < 3; j++) {
        const fromWindow = l.window.data.subarray((h * 5 + 2 + j) * hd, (h * 5 + 3 + j) * hd);
        const fromQuestion = l.question.q.data.subarray((h * 3 + j) * hd, (h * 3 + j + 1) * hd);
        expect(Array.from(fromQuestion)).toEqual(Array.from(fromWindow));
      }
    }
    expect(Array.from(l.probes.positions)).toEqual([600, 601, 602, 603]);
  });

  test('deterministic per seed; another seed differs', () => {
    const opts = { nKv: 1024, seed: 42, dtype: 'f16' as const };
    const a = makeNeedleWorkload(opts);
    const b = makeNeedleWorkload(opts);
    const c = makeNeedleWorkload({ ...opts, seed: 43 });
    expect(b.needlePositions).toEqual(a.needlePositions);
    for (let l = 0; l < a.layers.length; l++) {
      expect(sameBytes(b.layers[l]!.k.data, a.layers[l]!.k.data)).toBe(true);
      expect(sameBytes(b.layers[l]!.v.data, a.layers[l]!.v.data)).toBe(true);
      expect(sameBytes(b.layers[l]!.window.data, a.layers[l]!.window.data)).toBe(true);
      expect(sameBytes(b.layers[l]!.probes.q.data, a.layers[l]!.probes.q.data)).toBe(true);
      expect(b.layers[l]!.retrievalHeads).toEqual(a.layers[l]!.retrievalHeads);
    }
    expect(sameBytes(c.layers[0]!.k.data, a.layers[0]!.k.data)).toBe(false);
    expect(c.needlePositions).not.toEqual(a.needlePositions);
  });

  test('attention sink at position 0 and a local bias (probe queries, float64)', () => {
    const w = makeNeedleWorkload({ nKv: 4096, seed: 5 });
    const nKv = 4096;
    for (const layer of w.layers) {
      const { q } = layer.probes;
      const [nHeads, nQ] = q.shape as [number, number];
      const ref = referenceAttention(q, layer.k, layer.v);
      // keyMass sums probabilities over the probes and the group's heads: normalise to a mean per (query, head).
      const rows = nQ * nHeads;
      let sink = 0, recent = 0, old = 0;
      for (let g = 0; g < 2; g++) {
        sink += ref.keyMass[g * nKv]! / rows;
        for (let p = nKv - 64; p < nKv; p++) recent += ref.keyMass[g * nKv + p]! / rows;
        for (let p = 1024; p < 1024 + 64; p++) old += ref.keyMass[g * nKv + p]! / rows;
      }
      expect(sink).toBeGreaterThan(0.02); // > 80x the uniform share 1/4096
      expect(recent).toBeGreaterThan(3 * old); // the last 64 keys beat 64 keys far back
    }
  });

  test('RoPE: q.k depends only on the relative position', () => {
    const hd = 10;
    const q = Float64Array.from({ length: hd }, (_, i) => Math.sin(i + 1));
    const k = Float64Array.from({ length: hd }, (_, i) => Math.cos(2 * i + 0.5));
    const dotAt = (tq: number, tk: number) => {
      const a = Float64Array.from(q); const b = Float64Array.from(k);
      applyRope(a, 0, hd, tq); applyRope(b, 0, hd, tk);
      return a.reduce((s, x, i) => s + x * b[i]!, 0);
    };
    expect(dotAt(100, 37)).toBeCloseTo(dotAt(163, 100), 9);
    expect(dotAt(5, 5)).toBeCloseTo(q.reduce((s, x, i) => s + x * k[i]!, 0), 12);
    expect(Math.abs(dotAt(100, 37) - dotAt(100, 38))).toBeGreaterThan(1e-6);
  });

  test('f16 keys are the f32 keys rounded', () => {
    const a = makeNeedleWorkload({ nKv: 500, seed: 9, nLayers: 1 });
    const b = makeNeedleWorkload({ nKv: 500, seed: 9, nLayers: 1, dtype: 'f16' });
    const ka = a.layers[0]!.k.data as Float32Array;
    const kb = decode3(b.layers[0]!.k);
    for (let i = 0; i < ka.length; i += 97) expect(Math.abs(kb[i]! - ka[i]!)).toBeLessThanOrEqual(Math.abs(ka[i]!) * 2 ** -11 + 2 ** -24);
  });

  test('bad options', () => {
    expect(() => makeNeedleWorkload({ headDim: 65 })).toThrow(/headDim.*even/);
    expect(() => makeNeedleWorkload({ nHeads: 6, nKvHeads: 4 })).toThrow(/nKvHeads.*divisor/);
    expect(() => makeNeedleWorkload({ nNeedles: 40 })).toThrow(/nNeedles.*window/);
    expect(() => makeNeedleWorkload({ nKv: 100 })).toThrow(/nKv.*at least/);
    expect(() => makeNeedleWorkload({ nkv: 100 } as never)).toThrow(/did you mean "nKv"/);
    expect(() => makeNeedleWorkload({ dtype: 'bf16' } as never)).toThrow(TypeError);
    expect(() => makeNeedleWorkload({ seed: -1 })).toThrow(RangeError);
  });
});
