// attention()'s keySizes option (ToMe proportional attention: + log(size_j)
// on every logit of key j) against a float64 reference, with causal, bool
// and f32 masks, sparse indices, a tree and GQA; the async form; errors.
import { describe, expect, test } from 'vitest';
import { attention, attentionAsync } from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';

interface RefOpts { causal?: boolean; boolMask?: Uint8Array; addMask?: Float32Array; indices?: Int32Array; nSel?: number; tree?: Int32Array; sizes?: Float32Array }

function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, H: number, Hkv: number, nQ: number, nKv: number, hd: number, o: RefOpts): Float64Array {
  const out = new Float64Array(H * nQ * hd);
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / (H / Hkv));
    for (let i = 0; i < nQ; i++) {
      const logits: [number, number][] = [];
      const cand = o.indices ? Array.from(o.indices.subarray(g * o.nSel!, (g + 1) * o.nSel!)) : Array.from({ length: nKv }, (_, p) => p);
      for (const p of cand) {
        if (o.causal && p > nKv - nQ + i) continue;
        if (o.boolMask && !o.boolMask[i * nKv + p]) continue;
        if (o.addMask && o.addMask[i * nKv + p] === -Infinity) continue;
        if (o.tree && p >= nKv - nQ) {
          let node = i, ok = false;
          const target = p - (nKv - nQ);
          while (node >= 0) { if (node === target) { ok = true; break; } node = o.tree[node]!; }
          if (!ok) continue;
        }
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[(h * nQ + i) * hd + d]! * k[(g * nKv + p) * hd + d]!;
        s *= scale;
        if (o.addMask) s += o.addMask[i * nKv + p]!;
        if (o.sizes) s += Math.log(o.sizes[p]!);
        logits.push([p, s]);
      }
      if (logits.length === 0) continue;
      const mx = Math.max(...logits.map((x) => x[1]));
      let z = 0;
      for (const x of logits) z += Math.exp(x[1] - mx);
      for (const [p, s] of logits) {
        const w = Math.exp(s - mx) / z;
        for (let d = 0; d < hd; d++) out[(h * nQ + i) * hd + d]! += w * v[(g * nKv + p) * hd + d]!;
      }
    }
  }
  return out;
}

function rand(seed: number, len: number, lo = -1, hi = 1): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: len }, () => lo + (hi - lo) * rng());
}

function close(a: ArrayLike<number>, b: ArrayLike<number>): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > 2e-5) expect.fail(`[${i}] ${a[i]} vs ${b[i]}`);
}

describe('attention keySizes', () => {
  const H = 4, Hkv = 2, nQ = 3, nKv = 11, hd = 5;
  const q = rand(1, H * nQ * hd), k = rand(2, Hkv * nKv * hd), v = rand(3, Hkv * nKv * hd);
  const sizes = rand(4, nKv, 0.5, 9);
  const T = (data: Float32Array, shape: number[]) => ({ dtype: 'f32' as const, shape, data });
  const qt = T(q, [H, nQ, hd]), kt = T(k, [Hkv, nKv, hd]), vt = T(v, [Hkv, nKv, hd]);
  const bool = Uint8Array.from({ length: nQ * nKv }, (_, i) => (i * 7) % 3 !== 0 ? 1 : 0);
  const add = Float32Array.from({ length: nQ * nKv }, (_, i) => (i % 5 === 0 ? -Infinity : (i % 3) * 0.3));
  const indices = new Int32Array([0, 2, 5, 10, 1, 3, 4, 9]);

  test('plain, causal, bool mask, f32 mask, indices, tree', () => {
    close(attention(qt, kt, vt, { keySizes: sizes }).output.data, refAttention(q, k, v, H, Hkv, nQ, nKv, hd, { sizes }));
    close(attention(qt, kt, vt, { keySizes: sizes, causal: true }).output.data, refAttention(q, k, v, H, Hkv, nQ, nKv, hd, { sizes, causal: true }));
    close(attention(qt, kt, vt, { keySizes: sizes, mask: { dtype: 'bool', shape: [nQ, nKv], data: bool } }).output.data,
      refAttention(q, k, v, H, Hkv, nQ, nKv, hd, { sizes, boolMask: bool }));
    close(attention(qt, kt, vt, { keySizes: sizes, mask: T(add, [nQ, nKv]) }).output.data, refAttention(q, k, v, H, Hkv, nQ, nKv, hd, { sizes, addMask: add }));
    close(attention(qt, kt, vt, { keySizes: sizes, indices: { dtype: 'i32', shape: [Hkv, 4], data: indices } }).output.data,
      refAttention(q, k, v, H, Hkv, nQ, nKv, hd, { sizes, indices, nSel: 4 }));
    const tree = new Int32Array([-1, 0, 0]);
    close(attention(qt, kt, vt, { keySizes: sizes, treeMask: tree }).output.data, refAttention(q, k, v, H, Hkv, nQ, nKv, hd, { sizes, tree }));
  });

  test('all sizes 1 changes nothing; sizes shift weight like duplicated keys', () => {
    const ones = new Float32Array(nKv).fill(1);
    close(attention(qt, kt, vt, { keySizes: ones }).output.data, attention(qt, kt, vt).output.data);
    // A key of size 2 is a key present twice: duplicate key 3 and compare.
    const k2 = new Float32Array(Hkv * (nKv + 1) * hd), v2 = new Float32Array(k2.length);
    for (let g = 0; g < Hkv; g++) {
      for (let p = 0; p <= nKv; p++) {
        const src = p < nKv ? p : 3;
        k2.set(k.subarray((g * nKv + src) * hd, (g * nKv + src + 1) * hd), (g * (nKv + 1) + p) * hd);
        v2.set(v.subarray((g * nKv + src) * hd, (g * nKv + src + 1) * hd), (g * (nKv + 1) + p) * hd);
      }
    }
    const two = new Float32Array(nKv).fill(1);
    two[3] = 2;
    close(attention(qt, kt, vt, { keySizes: two }).output.data, attention(qt, T(k2, [Hkv, nKv + 1, hd]), T(v2, [Hkv, nKv + 1, hd])).output.data);
  });

  test('async form and errors (inputs untouched)', async () => {
    const res = await attentionAsync(qt, kt, vt, { keySizes: sizes, causal: true });
    close(res.output.data, attention(qt, kt, vt, { keySizes: sizes, causal: true }).output.data);
    const before = sizes.slice();
    expect(() => attention(qt, kt, vt, { keySizes: new Float32Array(3) })).toThrow(/options\.keySizes\.length/);
    const bad = sizes.slice();
    bad[4] = 0;
    expect(() => attention(qt, kt, vt, { keySizes: bad })).toThrow(/options\.keySizes\[4\]/);
    bad[4] = NaN;
    expect(() => attention(qt, kt, vt, { keySizes: bad })).toThrow(RangeError);
    expect(() => attention(qt, kt, vt, { keySizes: [1, 2] as never })).toThrow(TypeError);
    expect(Array.from(sizes)).toEqual(Array.from(before));
  });
});
