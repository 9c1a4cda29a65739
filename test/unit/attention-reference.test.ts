// Checks the float64 reference itself (no native code): hand-computed cases
// for every rule, and self-consistency (views, masks, indices). The kernel
// tests are only as good as this file.
import { describe, expect, test } from 'vitest';
import type { AttentionOptions, FloatDType, Tensor } from '../../lib/index.js';
import { decode3, decodeBf16, decodeF16, referenceAttention } from '../reference/attention.js';
import { mulberry32 } from '../reference/random.js';
import { buildCase, maxAbsDiff, randomTensor3 } from './helpers.js';

const f32 = (shape: number[], values: number[]): Tensor<'f32'> => ({ dtype: 'f32', shape, data: Float32Array.from(values) });

describe('reference decoders', () => {
  test('f16', () => {
    expect(decodeF16(0x3c00)).toBe(1);
    expect(decodeF16(0xc000)).toBe(-2);
    expect(decodeF16(0x3555)).toBe(0.333251953125);
    expect(decodeF16(0x0001)).toBe(2 ** -24);
    expect(decodeF16(0x03ff)).toBe(1023 * 2 ** -24);
    expect(decodeF16(0x0400)).toBe(2 ** -14);
    expect(decodeF16(0x7bff)).toBe(65504);
    expect(decodeF16(0x7c00)).toBe(Infinity);
    expect(decodeF16(0xfc00)).toBe(-Infinity);
    expect(decodeF16(0x7e00)).toBeNaN();
    expect(Object.is(decodeF16(0x8000), -0)).toBe(true);
  });
  test('bf16', () => {
    expect(decodeBf16(0x3f80)).toBe(1);
    expect(decodeBf16(0xc000)).toBe(-2);
    expect(decodeBf16(0x3f81)).toBe(1 + 2 ** -7);
    expect(decodeBf16(0x0001)).toBe(2 ** -133);
    expect(decodeBf16(0x7f80)).toBe(Infinity);
    expect(decodeBf16(0x7fc0)).toBeNaN();
  });
  test('decode3 follows strides', () => {
    // [2, 2, 3] view with row stride 4 and head stride 9 into 18 values.
    const data = Float32Array.from({ length: 18 }, (_, i) => i);
    const t: Tensor<'f32'> = { dtype: 'f32', shape: [2, 2, 3], data, strides: [9, 4, 1] };
    expect([...decode3(t)]).toEqual([0, 1, 2, 4, 5, 6, 9, 10, 11, 13, 14, 15]);
  });
});

describe('reference attention: hand-computed', () => {
  test('two keys: softmax weights, lse, key mass', () => {
    // headDim 1, q = 1, k = [0, 1], scale = ln 3: logits [0, ln 3], p = [1/4, 3/4].
    const r = referenceAttention(f32([1, 1, 1], [1]), f32([1, 2, 1], [0, 1]), f32([1, 2, 1], [4, 8]), { scale: Math.log(3) });
    expect(r.output[0]).toBeCloseTo(0.25 * 4 + 0.75 * 8, 12);
    expect(r.lse[0]).toBeCloseTo(Math.log(4), 12);
    expect(r.keyMass[0]).toBeCloseTo(0.25, 12);
    expect(r.keyMass[1]).toBeCloseTo(0.75, 12);
  });

  test('default scale is 1/sqrt(headDim)', () => {
    // headDim 4, q = k1 = [1,1,1,1], k0 = 0: dot 4, logit 4 / 2 = 2.
    const q = f32([1, 1, 4], [1, 1, 1, 1]);
    const k = f32([1, 2, 4], [0, 0, 0, 0, 1, 1, 1, 1]);
    const v = f32([1, 2, 4], [0, 0, 0, 0, 1, 1, 1, 1]);
    const r = referenceAttention(q, k, v);
    const p1 = Math.exp(2) / (1 + Math.exp(2));
    expect(r.output[0]).toBeCloseTo(p1, 12);
    expect(r.lse[0]).toBeCloseTo(Math.log(1 + Math.exp(2)), 12);
  });

  test('GQA: query head h reads KV head floor(h / (nHeads / nKvHeads))', () => {
    // nHeads 4, nKvHeads 2, one key per KV head with v = 10 * (kvHead + 1).
    const q = f32([4, 1, 1], [1, 1, 1, 1]);
    const k = f32([2, 1, 1], [0, 0]);
    const v = f32([2, 1, 1], [10, 20]);
    const r = referenceAttention(q, k, v, { returnKeyMass: true });
    expect([...r.output]).toEqual([10, 10, 20, 20]);
    expect([...r.keyMass]).toEqual([2, 2]); // two query heads per group, p = 1 each
  });

  // Zero logits (k = 0): each visible key gets the same weight, so the output is
  // the mean of the visible v values and visibility errors are easy to read.
  const flat = (nQ: number, vs: number[], options: AttentionOptions) =>
    referenceAttention(
      f32([1, nQ, 1], new Array(nQ).fill(1)),
      f32([1, vs.length, 1], new Array(vs.length).fill(0)),
      f32([1, vs.length, 1], vs),
      { returnKeyMass: true, ...options },
    );

  test('causal: query i sees p <= nKv - nQ + i', () => {
    const r = flat(2, [1, 2, 4], { causal: true });
    expect(r.output[0]).toBeCloseTo(1.5, 12); // sees p 0, 1
    expect(r.output[1]).toBeCloseTo(7 / 3, 12); // sees p 0, 1, 2
    expect(r.keyMass[2]).toBeCloseTo(1 / 3, 12);
    expect(r.keyMass[0]).toBeCloseTo(0.5 + 1 / 3, 12);
  });

  test('causal with nQ > nKv: early queries see nothing (zero row, lse -Infinity)', () => {
    const r = flat(3, [5], { causal: true });
    expect([...r.output]).toEqual([0, 0, 5]);
    expect([...r.lse]).toEqual([-Infinity, -Infinity, 0]);
    expect([...r.keyMass]).toEqual([1]);
  });

  test('bool mask: non-zero means may attend', () => {
    const mask: Tensor<'bool'> = { dtype: 'bool', shape: [2, 3], data: Uint8Array.from([1, 0, 7, 0, 0, 0]) };
    const r = flat(2, [1, 2, 4], { mask });
    expect(r.output[0]).toBeCloseTo(2.5, 12);
    expect(r.output[1]).toBe(0);
    expect(r.lse[1]).toBe(-Infinity);
    expect([...r.keyMass]).toEqual([0.5, 0, 0.5]);
  });

  test('additive mask is added after softcap', () => {
    // Logits before cap: [0, 10]; softcap 5 -> [0, 5 tanh 2]; mask adds [1, 0].
    const q = f32([1, 1, 1], [10]);
    const k = f32([1, 2, 1], [0, 1]);
    const v = f32([1, 2, 1], [0, 1]);
    const mask: Tensor<'f32'> = { dtype: 'f32', shape: [1, 2], data: Float32Array.from([1, 0]) };
    const r = referenceAttention(q, k, v, { scale: 1, softcap: 5, mask });
    const s0 = 1;
    const s1 = 5 * Math.tanh(2);
    expect(r.output[0]).toBeCloseTo(Math.exp(s1) / (Math.exp(s0) + Math.exp(s1)), 12);
    expect(r.lse[0]).toBeCloseTo(Math.log(Math.exp(s0) + Math.exp(s1)), 12);
    // -Infinity masks the key.
    const masked = referenceAttention(q, k, v, { scale: 1, mask: { dtype: 'f32', shape: [1, 2], data: Float32Array.from([0, -Infinity]) } });
    expect(masked.output[0]).toBe(0);
    expect(masked.lse[0]).toBe(0);
  });

  test('tree: prefix plus ancestors and self', () => {
    // nKv 4, nQ 3: key 0 is the prefix; tree nodes 0..2 are keys 1..3; parents [-1, 0, 0].
    const r = flat(3, [1, 10, 100, 1000], { treeMask: [-1, 0, 0] });
    expect(r.output[0]).toBeCloseTo(11 / 2, 12);
    expect(r.output[1]).toBeCloseTo(111 / 3, 12);
    expect(r.output[2]).toBeCloseTo(1011 / 3, 12);
    expect(r.keyMass[2]).toBeCloseTo(1 / 3, 12);
    expect(r.keyMass[1]).toBeCloseTo(0.5 + 2 / 3, 12);
  });

  test('tree combined with causal and a chain', () => {
    // chain: every node sees all earlier tree nodes, which is exactly causal.
    const vs = [3, 1, 4, 1, 5, 9];
    const a = flat(4, vs, { treeMask: [-1, 0, 1, 2] });
    const b = flat(4, vs, { causal: true });
    expect(maxAbsDiff(a.output, b.output)).toBeLessThan(1e-12);
  });

  test('indices: a repeated index counts twice; its mass is summed', () => {
    const indices: Tensor<'i32'> = { dtype: 'i32', shape: [1, 3], data: Int32Array.from([2, 2, 0]) };
    const r = flat(1, [1, 2, 3], { indices });
    expect(r.output[0]).toBeCloseTo(7 / 3, 12);
    expect(r.keyMass[0]).toBeCloseTo(1 / 3, 12);
    expect(r.keyMass[1]).toBe(0);
    expect(r.keyMass[2]).toBeCloseTo(2 / 3, 12);
    // Causal still applies to the original positions.
    const c = flat(2, [1, 2, 3], { indices, causal: true });
    expect(c.output[0]).toBeCloseTo(1, 12); // query 0 sees p <= 1: only index 0
    expect(c.output[1]).toBeCloseTo(7 / 3, 12);
    // No indices selected: nothing to see.
    const none = flat(1, [1, 2], { indices: { dtype: 'i32', shape: [1, 0], data: new Int32Array(0) } });
    expect(none.output[0]).toBe(0);
    expect(none.lse[0]).toBe(-Infinity);
  });

  test('no keys at all', () => {
    const r = referenceAttention(f32([2, 1, 3], [1, 2, 3, 4, 5, 6]), f32([1, 0, 3], []), f32([1, 0, 3], []));
    expect([...r.output]).toEqual([0, 0, 0, 0, 0, 0]);
    expect([...r.lse]).toEqual([-Infinity, -Infinity]);
  });
});

describe('reference attention: self-consistency', () => {
  const base = {
    nHeads: 4, nKvHeads: 2, nQ: 5, nKv: 23, headDim: 7, returnLse: true, returnKeyMass: true,
  } as const;

  test('strided views give the same result as contiguous copies', () => {
    for (const dtype of ['f32', 'f16', 'bf16'] as FloatDType[]) {
      const a = buildCase({ ...base, name: `plain-${dtype}`, kDtype: dtype, vDtype: dtype, seed: 5 });
      const layout = { rowPad: 3, capacity: 31, offset: 5 };
      const b = buildCase({ ...base, name: `view-${dtype}`, kDtype: dtype, vDtype: dtype, seed: 5, kvLayout: layout });
      const ra = referenceAttention(a.q, a.k, a.v, a.options);
      // Copy b's viewed values into a contiguous tensor and compare both ways.
      const kc = f32([2, 23, 7], [...decode3(b.k)]);
      const vc = f32([2, 23, 7], [...decode3(b.v)]);
      const rb = referenceAttention(b.q, b.k, b.v, b.options);
      const rc = referenceAttention(b.q, kc, vc, b.options);
      expect(maxAbsDiff(rb.output, rc.output)).toBe(0);
      expect(maxAbsDiff(rb.keyMass, rc.keyMass)).toBe(0);
      expect(ra.output.length).toBe(rb.output.length);
    }
  });

  test('all-ones bool mask, zero additive mask, all indices, flat tree of roots = no option', () => {
    const c = buildCase({ ...base, name: 'consistency', seed: 9 });
    const r0 = referenceAttention(c.q, c.k, c.v, c.options);
    const ones: Tensor<'bool'> = { dtype: 'bool', shape: [5, 23], data: new Uint8Array(5 * 23).fill(1) };
    const zeros: Tensor<'f32'> = { dtype: 'f32', shape: [5, 23], data: new Float32Array(5 * 23) };
    const all = Int32Array.from({ length: 2 * 23 }, (_, i) => i % 23);
    const variants: AttentionOptions[] = [
      { mask: ones },
      { mask: zeros },
      { indices: { dtype: 'i32', shape: [2, 23], data: all } },
    ];
    for (const o of variants) {
      const r = referenceAttention(c.q, c.k, c.v, o);
      expect(maxAbsDiff(r.output, r0.output)).toBeLessThan(1e-15);
      expect(maxAbsDiff(r.lse, r0.lse)).toBeLessThan(1e-14);
      expect(maxAbsDiff(r.keyMass, r0.keyMass)).toBeLessThan(1e-14);
    }
    // Tree of only roots over the last 5 keys == a mask hiding the other tree keys.
    const tree = referenceAttention(c.q, c.k, c.v, { treeMask: [-1, -1, -1, -1, -1] });
    const m = new Uint8Array(5 * 23).fill(1);
    for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) if (i !== j) m[i * 23 + 18 + j] = 0;
    const masked = referenceAttention(c.q, c.k, c.v, { mask: { dtype: 'bool', shape: [5, 23], data: m } });
    expect(maxAbsDiff(tree.output, masked.output)).toBeLessThan(1e-15);
  });

  test('softmax rows sum to 1: key mass totals nQ * nHeads when every query sees a key', () => {
    const c = buildCase({ ...base, name: 'mass-total', seed: 3, causal: true });
    const r = referenceAttention(c.q, c.k, c.v, c.options);
    const total = r.keyMass.reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(5 * 4, 10);
    // lse agrees with a direct log(sum(exp)) for one row.
    const rng = mulberry32(1);
    const q = randomTensor3(rng, 'f32', [1, 1, 3], 1);
    const k = randomTensor3(rng, 'f32', [1, 4, 3], 1);
    const rr = referenceAttention(q, k, k, { scale: 0.5 });
    let sum = 0;
    for (let p = 0; p < 4; p++) {
      let d = 0;
      for (let j = 0; j < 3; j++) d += q.data[j]! * k.data[p * 3 + j]!;
      sum += Math.exp(0.5 * d);
    }
    expect(rr.lse[0]).toBeCloseTo(Math.log(sum), 12);
  });
});
