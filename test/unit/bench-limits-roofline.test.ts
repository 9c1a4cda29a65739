/**
 * The roofline decode loop (native/attention/roofline_decode.h), the peer
 * `bench attention` times beside the real kernels: it must compute correct
 * attention on every ISA path, checked against a float64 reference on
 * awkward sizes (nKv not a multiple of the 64-key chunk, head dims 64/80/128
 * and one no SIMD path takes, GQA groups 1/4/8 and one that is not a power of
 * two, f32 and f16 K/V). Tolerances come from f32 rounding bounds, not from
 * observed errors. No timing here.
 */
import { describe, expect, it } from 'vitest';
import { backendInfo, f16BitsToF32, f32ToF16Bits } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { isasOnThisCpu } from './isa.js';
import { randomBlock } from '../../bench/common.js';

const ISA_CODE = { scalar: 0, avx2: 1, avx512: 2 } as const;
const U = 2 ** -24; // f32 unit roundoff
const gamma = (n: number) => (n * U) / (1 - n * U);

/** The benchmarks' xorshift32 fill, scaled to [-amp, amp). */
function random(n: number, seed: number, amp: number): Float32Array {
  return randomBlock(n, seed).map((x) => amp * x);
}

interface Case {
  nKvHeads: number;
  group: number;
  nKv: number;
  headDim: number;
  dtype: 'f32' | 'f16';
}

interface Built {
  q: Float32Array;
  k: Float32Array; // the values the kernel sees (f16-rounded for f16)
  v: Float32Array;
  kArg: Float32Array | Uint16Array;
  vArg: Float32Array | Uint16Array;
  scale: number;
  nHeads: number;
}

function build(c: Case, seed: number): Built {
  const nHeads = c.nKvHeads * c.group;
  const n = c.nKvHeads * c.nKv * c.headDim;
  const q = random(nHeads * c.headDim, seed, 2);
  let k = random(n, seed + 1, 2);
  let v = random(n, seed + 2, 1);
  let kArg: Float32Array | Uint16Array = k;
  let vArg: Float32Array | Uint16Array = v;
  if (c.dtype === 'f16') {
    const kb = Uint16Array.from(k, (x) => f32ToF16Bits(x));
    const vb = Uint16Array.from(v, (x) => f32ToF16Bits(x));
    k = Float32Array.from(kb, (b) => f16BitsToF32(b));
    v = Float32Array.from(vb, (b) => f16BitsToF32(b));
    kArg = kb;
    vArg = vb;
  }
  return { q, k, v, kArg, vArg, scale: 1 / Math.sqrt(c.headDim), nHeads };
}

/**
 * Float64 attention, and for each head the f32 error bound:
 *   scores:  |ds| <= gamma(D + 1) * scale * max_j sum_i |q_i k_ji| = Es
 *   weights: relative error <= 2 Es (score and running max) + 4u (exp, rescaling)
 *   output:  out = sum p v / sum p moves by <= 2 * (weight error) * max|v|, and the
 *            two f32 sums over nKv terms add <= 2 gamma(nKv) max|v|; the final
 *            division u max|v|. Doubled for slack in the model, not for luck.
 */
function reference(c: Case, b: Built): { out: Float64Array; tol: Float64Array } {
  const D = c.headDim;
  const out = new Float64Array(b.nHeads * D);
  const tol = new Float64Array(b.nHeads);
  let vmax = 0;
  for (const x of b.v) vmax = Math.max(vmax, Math.abs(x));
  for (let h = 0; h < b.nHeads; h++) {
    const kh = Math.floor(h / c.group);
    const s = new Float64Array(c.nKv);
    let m = -Infinity;
    let absMax = 0;
    for (let j = 0; j < c.nKv; j++) {
      let dot = 0;
      let abs = 0;
      for (let i = 0; i < D; i++) {
        const p = b.q[h * D + i]! * b.k[(kh * c.nKv + j) * D + i]!;
        dot += p;
        abs += Math.abs(p);
      }
      s[j] = dot * b.scale;
      absMax = Math.max(absMax, abs * b.scale);
      m = Math.max(m, s[j]!);
    }
    let l = 0;
    for (let j = 0; j < c.nKv; j++) {
      s[j] = Math.exp(s[j]! - m);
      l += s[j]!;
    }
    for (let i = 0; i < D; i++) {
      let o = 0;
      for (let j = 0; j < c.nKv; j++) o += s[j]! * b.v[(kh * c.nKv + j) * D + i]!;
      out[h * D + i] = o / l;
    }
    const es = gamma(D + 1) * absMax;
    tol[h] = 2 * (2 * (2 * es + 4 * U) + 2 * gamma(c.nKv) + U) * vmax;
  }
  return { out, tol };
}

function runRoof(c: Case, b: Built, isa: -1 | 0 | 1 | 2, threads = 2): Float32Array {
  const out = new Float32Array(b.nHeads * c.headDim).fill(NaN);
  native().rooflineDecode({
    q: b.q, k: b.kArg, v: b.vArg, out, kvDtype: c.dtype === 'f32' ? 0 : 1,
    nHeads: b.nHeads, nKvHeads: c.nKvHeads, nKv: c.nKv, headDim: c.headDim, scale: b.scale, isa, threads,
  });
  return out;
}

function expectClose(c: Case, got: Float32Array, ref: { out: Float64Array; tol: Float64Array }, label: string): void {
  const D = c.headDim;
  let worst = 0;
  let where = '';
  for (let h = 0; h < ref.tol.length; h++) {
    for (let i = 0; i < D; i++) {
      const err = Math.abs(got[h * D + i]! - ref.out[h * D + i]!);
      const ratio = Number.isNaN(err) ? Infinity : err / ref.tol[h]!;
      if (ratio > worst) {
        worst = ratio;
        where = `head ${h} dim ${i}: got ${got[h * D + i]}, want ${ref.out[h * D + i]}, tol ${ref.tol[h]}`;
      }
    }
  }
  expect(worst, `${label}: ${where}`).toBeLessThanOrEqual(1);
}

const CASES: Case[] = [];
for (const headDim of [64, 80, 128]) {
  for (const group of [1, 4, 8]) {
    // 4099 (many chunks, a short last one) only at headDim 80: the reference is the slow part.
    for (const nKv of headDim === 80 ? [1, 17, 64, 300, 4099] : [1, 17, 64, 300]) {
      for (const dtype of ['f32', 'f16'] as const) CASES.push({ nKvHeads: group === 8 ? 1 : 2, group, nKv, headDim, dtype });
    }
  }
}
// A head dim no SIMD path takes (scalar loop) and a group that is not a power of two (sub-group passes).
CASES.push({ nKvHeads: 2, group: 1, nKv: 130, headDim: 36, dtype: 'f32' });
CASES.push({ nKvHeads: 2, group: 3, nKv: 200, headDim: 64, dtype: 'f16' });
CASES.push({ nKvHeads: 3, group: 6, nKv: 65, headDim: 128, dtype: 'f32' });

// Inputs and references are built once and shared by every ISA.
let built: { c: Case; b: Built; ref: { out: Float64Array; tol: Float64Array } }[] | undefined;
function cases() {
  built ??= CASES.map((c, i) => {
    const b = build(c, 100 + 7 * i);
    return { c, b, ref: reference(c, b) };
  });
  return built;
}

describe('roofline decode loop vs a float64 reference', () => {
  for (const isa of isasOnThisCpu()) {
    it(`${isa}: awkward sizes, f32 and f16 K/V, GQA groups 1/3/4/6/8`, () => {
      for (const { c, b, ref } of cases()) expectClose(c, runRoof(c, b, ISA_CODE[isa]), ref, `${isa} ${JSON.stringify(c)}`);
    });
  }

  it('gives the same answer with one thread and with the whole pool, and on the active ISA', () => {
    const c: Case = { nKvHeads: 4, group: 4, nKv: 333, headDim: 128, dtype: 'f16' };
    const b = build(c, 5);
    const one = runRoof(c, b, -1, 1);
    const all = runRoof(c, b, -1, backendInfo().threads);
    expect(Array.from(all)).toEqual(Array.from(one));
    expectClose(c, one, reference(c, b), 'active ISA');
  });
});

describe('rooflineDecode arguments', () => {
  const c: Case = { nKvHeads: 2, group: 2, nKv: 10, headDim: 64, dtype: 'f32' };
  const b = build(c, 9);
  const base = () => ({
    q: b.q, k: b.kArg, v: b.vArg, out: new Float32Array(b.nHeads * c.headDim), kvDtype: 0 as const,
    nHeads: b.nHeads, nKvHeads: c.nKvHeads, nKv: c.nKv, headDim: c.headDim, scale: b.scale, isa: -1 as const, threads: 1,
  });

  it('refuses shapes that do not match, with the argument named', () => {
    expect(() => native().rooflineDecode({ ...base(), nHeads: 3 })).toThrow(/nHeads/);
    expect(() => native().rooflineDecode({ ...base(), nKv: 11 })).toThrow(RangeError);
    expect(() => native().rooflineDecode({ ...base(), nKv: 11 })).toThrow(/^k: expected 1408 elements, received 1280/);
    expect(() => native().rooflineDecode({ ...base(), headDim: 300 })).toThrow(/headDim/);
    expect(() => native().rooflineDecode({ ...base(), kvDtype: 1 as 0 })).toThrow(TypeError);
    expect(() => native().rooflineDecode({ ...base(), scale: NaN })).toThrow(/scale/);
    expect(() => native().rooflineDecode({ ...base(), nKv: 2 ** 40, nKvHeads: 2 ** 16, nHeads: 2 ** 16, headDim: 256 })).toThrow(/nKv/);
  });

  it('refuses an output that shares memory with an input', () => {
    const buf = new Float32Array(2 * b.nHeads * c.headDim);
    const q = buf.subarray(0, b.nHeads * c.headDim);
    q.set(b.q);
    const out = buf.subarray(b.nHeads * c.headDim);
    expect(() => native().rooflineDecode({ ...base(), q, out })).toThrow(/out: expected an output that shares no memory/);
  });
});
