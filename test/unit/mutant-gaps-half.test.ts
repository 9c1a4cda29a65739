// The scalar f16 conversions of native/core/half.h, pinned bit for bit
// (mutants half-f16-ties-away and half-f16-subnormal-exponent of
// scripts/mutants/native.json). On F16C / AVX-512 CPUs the kernels convert
// with SIMD instructions, so the scalar code is reached through the KvCache
// row copies, which use it on every CPU:
//   append f32 rows into an f16 cache   -> f32_to_f16 per element
//   append f16 rows into an f32 cache   -> f16_to_f32 per element
// and an export in the cache's own dtype copies the stored bits unchanged.
// The reference is the IEEE 754 binary16 rule, computed here in float64
// (exact for f32 inputs): round to nearest, ties to even; subnormals are
// m * 2^-24.
import { describe, expect, test } from 'vitest';
import { KvCache, type Tensor } from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';

/** 2^e for integer e (exact in float64 for the range used here). */
const pow2 = (e: number): number => 2 ** e;

/** binary16 bits -> value, from the format's definition. */
function f16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f, m = bits & 0x3ff;
  if (e === 0x1f) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * m * pow2(-24);
  return sign * (1 + m / 1024) * pow2(e - 15);
}

/** f32 value -> binary16 bits: round to nearest, ties to even (finite x only). */
function f16Bits(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  // Exponent of a's leading bit, at least -14 (the subnormal range shares it).
  let e = -14;
  while (a >= pow2(e + 1)) e++;
  const ulp = pow2(e - 10);
  const q = a / ulp; // exact: a is an f32, ulp a power of two
  let m = Math.floor(q);
  const frac = q - m;
  if (frac > 0.5 || (frac === 0.5 && m % 2 === 1)) m++;
  const r = m * ulp;
  if (r > 65504) return sign | 0x7c00; // rounds to infinity
  if (r < pow2(-14)) return sign | Math.round(r / pow2(-24));
  let E = -14;
  while (r >= pow2(E + 1)) E++;
  return sign | ((E + 15) << 10) | Math.round((r / pow2(E) - 1) * 1024);
}

describe('reference self-checks (hand-computed binary16 values)', () => {
  test('known values', () => {
    expect(f16Bits(1)).toBe(0x3c00);
    expect(f16Bits(1 + pow2(-11))).toBe(0x3c00); // tie, even stays
    expect(f16Bits(1 + 3 * pow2(-11))).toBe(0x3c02); // tie, odd goes up
    expect(f16Bits(65504)).toBe(0x7bff);
    expect(f16Bits(pow2(-24))).toBe(0x0001);
    expect(f16Bits(pow2(-25))).toBe(0x0000); // tie to even (zero)
    expect(f16Bits(3 * pow2(-25))).toBe(0x0002);
    expect(f16Bits(-2)).toBe(0xc000);
    expect(f16Value(0x0001)).toBe(pow2(-24));
    expect(f16Value(0x03ff)).toBe(1023 * pow2(-24));
    expect(f16Value(0x0400)).toBe(pow2(-14));
    expect(f16Value(0xbc00)).toBe(-1);
  });
});

const D = 16;

/** n rows of D values through a 1-layer, 1-head KvCache of `dtype`; returns the exported k. */
function roundTrip(dtype: 'f16' | 'f32', k: Float32Array | Uint16Array): Float32Array | Uint16Array {
  const n = k.length / D;
  const cache = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: D, capacity: n, dtype });
  const rows = (data: Float32Array | Uint16Array): Tensor<'f32' | 'f16'> =>
    (data instanceof Float32Array ? { dtype: 'f32', shape: [1, n, D], data } : { dtype: 'f16', shape: [1, n, D], data });
  cache.append(0, rows(k), rows(k.slice()));
  const e = cache.export(0, { dtype });
  expect(e.k.dtype).toBe(dtype);
  return e.k.data as Float32Array | Uint16Array;
}

describe('scalar f32 -> f16 (KvCache f16 storage)', () => {
  test('exact ties round to even, in the normal and subnormal ranges, both signs', () => {
    const xs: number[] = [];
    // Halfway between two normal f16 values: (2m + 1) * 2^(e - 11).
    for (const e of [-14, -3, 0, 1, 7, 15]) for (const m of [1024, 1025, 1500, 1501, 2046, 2047]) xs.push((2 * m + 1) * pow2(e - 11));
    // Halfway between two subnormals: (2m + 1) * 2^-25.
    for (const m of [0, 1, 2, 3, 100, 101, 1022, 1023]) xs.push((2 * m + 1) * pow2(-25));
    const vals = [...xs, ...xs.map((x) => -x)];
    while (vals.length % D) vals.push(0.5);
    const input = new Float32Array(vals);
    expect(Array.from(input)).toEqual(vals); // every tie is an exact f32
    const got = roundTrip('f16', input) as Uint16Array;
    const want = vals.map(f16Bits);
    for (let i = 0; i < vals.length; i++) expect(got[i], `x = ${vals[i]}`).toBe(want[i]);
  });

  test('random f32 values (normal, subnormal, near the f16 max) equal the IEEE rounding', () => {
    const rng = mulberry32(12);
    const vals: number[] = [];
    for (let i = 0; i < 64 * D; i++) {
      const mag = pow2(Math.floor(rng() * 40) - 26) * (1 + rng()); // 2^-26 .. 2^14
      vals.push(Math.fround((rng() < 0.5 ? -1 : 1) * mag));
    }
    const got = roundTrip('f16', new Float32Array(vals)) as Uint16Array;
    for (let i = 0; i < vals.length; i++) expect(got[i], `x = ${vals[i]}`).toBe(f16Bits(vals[i]!));
  });
});

describe('scalar f16 -> f32 (f16 rows into a KvCache f32 storage)', () => {
  test('every subnormal and a sweep of normal f16 values decode exactly', () => {
    const bits: number[] = [];
    for (let m = 1; m < 1024; m++) bits.push(m, 0x8000 | m); // all subnormals, both signs
    for (let b = 0x0400; b < 0x7c00; b += 97) bits.push(b, 0x8000 | b);
    bits.push(0x0000, 0x8000, 0x7bff, 0xfbff);
    while (bits.length % D) bits.push(0x3c00);
    const got = roundTrip('f32', new Uint16Array(bits)) as Float32Array;
    for (let i = 0; i < bits.length; i++) {
      expect(Object.is(got[i], f16Value(bits[i]!)), `bits 0x${bits[i]!.toString(16)}: got ${got[i]}, want ${f16Value(bits[i]!)}`).toBe(true);
    }
  });
});
