// f16 / bf16 conversions (exhaustive over all 65536 bit patterns, plus
// rounding ties and edge values) and castTo / toF32 on strided views. The
// decoders they are checked against (test/reference/attention.ts) are written
// independently of lib/tensor.ts.
import { describe, expect, test } from 'vitest';
import {
  bf16BitsToF32,
  castTo,
  contiguousStrides,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  numel,
  tensor,
  toF32,
  zeros,
  type FloatDType,
  type Tensor,
} from '../../lib/index.js';
import { decode3, decodeBf16, decodeF16 } from '../reference/attention.js';
import { mulberry32, randomF32, randomU32 } from '../reference/random.js';

const isF16NaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
const isBf16NaN = (b: number) => (b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0;
const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

const u32 = new Uint32Array(1);
const f32 = new Float32Array(u32.buffer);
const fromBits = (bits: number) => { u32[0] = bits; return f32[0]!; };

describe('f16', () => {
  test('all 65536 bit patterns decode exactly and encode back (NaN aside)', () => {
    const bad: string[] = [];
    for (let h = 0; h < 65536; h++) {
      const x = f16BitsToF32(h);
      if (!same(x, decodeF16(h))) bad.push(`decode 0x${h.toString(16)}: ${x} vs ${decodeF16(h)}`);
      const back = f32ToF16Bits(x);
      if (isF16NaN(h)) {
        if (!isF16NaN(back)) bad.push(`NaN 0x${h.toString(16)} -> 0x${back.toString(16)} is not a NaN`);
      } else if (back !== h) {
        bad.push(`round trip 0x${h.toString(16)} -> ${x} -> 0x${back.toString(16)}`);
      }
      if (bad.length > 10) break;
    }
    expect(bad).toEqual([]);
  });

  test('round to nearest, ties to even', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 (even) and 0x3c01: even
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02 (even)
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [1 + 2 ** -11 - 2 ** -20, 0x3c00], // just below
      [-(1 + 3 * 2 ** -11), 0xbc02],
      [2048 + 1, 0x6800], // 2049 ties between 2048 and 2050: even mantissa
      [2048 + 3, 0x6802], // 2051 ties between 2050 (odd) and 2052 (even)
      [65504, 0x7bff], // largest finite
      [65519, 0x7bff], // below the overflow tie
      [65520, 0x7c00], // the tie rounds to even = infinity
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [0, 0x0000],
      [-0, 0x8000],
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 (even) and 0x0001
      [2 ** -25 + 2 ** -40, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between 0x0001 and 0x0002 (even)
      [5 * 2 ** -25, 0x0002], // tie between 0x0002 (even) and 0x0003
      [-(3 * 2 ** -25), 0x8002],
      [2 ** -26, 0x0000],
      [1023.5 * 2 ** -24, 0x0400], // tie between largest subnormal 0x03ff and smallest normal 0x0400
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -14 - 2 ** -25, 0x0400], // the same tie written as 2^-14 - half an ulp
      [1e-10, 0x0000],
    ];
    for (const [x, bits] of cases) expect(f32ToF16Bits(x), `f32ToF16Bits(${x})`).toBe(bits);
    expect(isF16NaN(f32ToF16Bits(NaN))).toBe(true);
  });

  test('random f32 values in the f16 range round to the nearest f16, ties to even', () => {
    const rng = mulberry32(1234);
    const bits = randomU32(rng, 20000);
    const bad: string[] = [];
    for (let j = 0; j < bits.length && bad.length < 10; j++) {
      // f32 with a random exponent in [2^-26, 2^16) and a random mantissa.
      const e = Math.floor(rng() * 42) - 26;
      const x = fromBits((bits[j]! & 0x807fffff) | ((e + 127) << 23));
      const h = f32ToF16Bits(x);
      const y = decodeF16(h);
      const mag = h & 0x7fff;
      const msg = `f32ToF16Bits(${x}) = 0x${h.toString(16)} (${y})`;
      if (mag === 0x7c00) {
        if (!(Math.abs(x) >= 65520)) bad.push(`${msg}: overflow below 65520`);
        continue;
      }
      const sign = h & 0x8000;
      const lower = mag === 0 ? -decodeF16(sign | 1) : decodeF16(sign | (mag - 1));
      const upper = decodeF16(sign | (mag + 1));
      const d = Math.abs(x - y);
      if (d > Math.abs(x - lower) || d > Math.abs(x - upper)) bad.push(`${msg}: not the nearest`);
      else if ((d === Math.abs(x - lower) || d === Math.abs(x - upper)) && (h & 1) !== 0) bad.push(`${msg}: tie not even`);
    }
    expect(bad).toEqual([]);
  });
});

describe('bf16', () => {
  test('all 65536 bit patterns decode exactly and encode back (NaN aside)', () => {
    const bad: string[] = [];
    for (let b = 0; b < 65536; b++) {
      const x = bf16BitsToF32(b);
      if (!same(x, decodeBf16(b))) bad.push(`decode 0x${b.toString(16)}: ${x} vs ${decodeBf16(b)}`);
      const back = f32ToBf16Bits(x);
      if (isBf16NaN(b)) {
        if (!isBf16NaN(back)) bad.push(`NaN 0x${b.toString(16)} -> 0x${back.toString(16)} is not a NaN`);
      } else if (back !== b) {
        bad.push(`round trip 0x${b.toString(16)} -> ${x} -> 0x${back.toString(16)}`);
      }
      if (bad.length > 10) break;
    }
    expect(bad).toEqual([]);
  });

  test('round to nearest, ties to even', () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [1 + 2 ** -8, 0x3f80], // tie between 0x3f80 (even) and 0x3f81
      [1 + 3 * 2 ** -8, 0x3f82], // tie between 0x3f81 and 0x3f82 (even)
      [1 + 2 ** -8 + 2 ** -20, 0x3f81],
      [-(1 + 2 ** -8), 0xbf80],
      [3.4e38, 0x7f80], // above the largest finite bf16 (~3.39e38) past the tie
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [0, 0x0000],
      [-0, 0x8000],
      [2 ** -133, 0x0001], // smallest bf16 subnormal
      [fromBits(0x00008000), 0x0000], // tie between 0 and 0x0001: even
      [fromBits(0x00018000), 0x0002], // tie between 0x0001 and 0x0002: even
      [fromBits(0x7f7f8000), 0x7f80], // tie between the largest finite (odd) and inf: even = inf
      [fromBits(0x7f7f7fff), 0x7f7f],
    ];
    for (const [x, bits] of cases) expect(f32ToBf16Bits(x), `f32ToBf16Bits(${x})`).toBe(bits);
    expect(isBf16NaN(f32ToBf16Bits(NaN))).toBe(true);
    // A signalling-looking NaN payload stays a NaN (not infinity).
    expect(isBf16NaN(f32ToBf16Bits(fromBits(0x7f800001)))).toBe(true);
    expect(isBf16NaN(f32ToBf16Bits(fromBits(0xff800001)))).toBe(true);
  });

  test('random f32 bit patterns round to the nearest bf16, ties to even', () => {
    const rng = mulberry32(99);
    const bits = randomU32(rng, 20000);
    const bad: string[] = [];
    for (let j = 0; j < bits.length && bad.length < 10; j++) {
      const x = fromBits(bits[j]!);
      if (!Number.isFinite(x)) continue;
      const b = f32ToBf16Bits(x);
      // The answer is one of the two bf16 neighbours (truncation or one up).
      const lo = bits[j]! >>> 16;
      const hi = (lo + 1) & 0xffff;
      const rest = bits[j]! & 0xffff;
      const expected = rest > 0x8000 || (rest === 0x8000 && (lo & 1) === 1) ? hi : lo;
      if (b !== expected) bad.push(`f32ToBf16Bits(0x${bits[j]!.toString(16)}) = 0x${b.toString(16)}, expected 0x${expected.toString(16)}`);
    }
    expect(bad).toEqual([]);
  });
});

describe('castTo and toF32', () => {
  const rng = mulberry32(5);

  test('castTo rounds every element like the scalar converters', () => {
    const src: Tensor<'f32'> = { dtype: 'f32', shape: [3, 5, 7], data: randomF32(rng, 105, 100) };
    const h = castTo(src, 'f16');
    const b = castTo(src, 'bf16');
    const f = castTo(src, 'f32');
    expect(h.dtype).toBe('f16');
    expect([...h.shape]).toEqual([3, 5, 7]);
    expect(h.data).toBeInstanceOf(Uint16Array);
    expect(b.data).toBeInstanceOf(Uint16Array);
    expect(f.data).toBeInstanceOf(Float32Array);
    expect(f.data).not.toBe(src.data); // a copy
    for (let i = 0; i < 105; i++) {
      expect(h.data[i]).toBe(f32ToF16Bits(src.data[i]!));
      expect(b.data[i]).toBe(f32ToBf16Bits(src.data[i]!));
      expect(f.data[i]).toBe(src.data[i]);
    }
    const back = toF32(h);
    for (let i = 0; i < 105; i++) expect(back.data[i]).toBe(decodeF16(h.data[i]!));
  });

  /** A [2, 3, 4] view: row stride 6, head stride 20, starting 3 elements in. */
  function stridedView<D extends FloatDType>(dtype: D): Tensor<D> {
    const full = castTo({ dtype: 'f32', shape: [50], data: randomF32(rng, 50, 4) }, dtype);
    const data = (full.data as Float32Array | Uint16Array).subarray(3);
    return { dtype, shape: [2, 3, 4], data, strides: [20, 6, 1] } as unknown as Tensor<D>;
  }

  for (const dtype of ['f32', 'f16', 'bf16'] as FloatDType[]) {
    test(`toF32 of a strided ${dtype} view is a contiguous copy of the viewed elements`, () => {
      const view = stridedView(dtype);
      const out = toF32(view);
      expect(out.dtype).toBe('f32');
      expect([...out.shape]).toEqual([2, 3, 4]);
      expect(out.strides).toBeUndefined();
      expect(out.data.length).toBe(24);
      expect([...out.data]).toEqual([...decode3(view)]);
      // Head stride 0 (broadcast) works too.
      const bcast = { ...view, strides: [0, 6, 1] } as Tensor<FloatDType>;
      const ob = toF32(bcast);
      expect([...ob.data.subarray(0, 12)]).toEqual([...ob.data.subarray(12)]);
    });

    test(`castTo of a strided f32 view to ${dtype} follows the strides`, () => {
      const view = stridedView('f32');
      const cast = castTo(view, dtype);
      // Whatever layout castTo returns must be a valid tensor of the viewed elements.
      if (cast.strides === undefined) expect(cast.data.length, 'a contiguous result holds numel elements').toBe(24);
      const got = toF32(cast as Tensor<FloatDType>);
      const want = [...decode3(view)].map((x) =>
        dtype === 'f32' ? x : dtype === 'f16' ? decodeF16(f32ToF16Bits(x)) : decodeBf16(f32ToBf16Bits(x)));
      expect([...got.data]).toEqual(want);
    });
  }

  test('toF32 of a contiguous f32 tensor is a copy', () => {
    const t = tensor('f32', [2, 2], Float32Array.from([1, 2, 3, 4]));
    const c = toF32(t);
    expect(c.data).not.toBe(t.data);
    expect([...c.data]).toEqual([1, 2, 3, 4]);
  });
});

describe('shape helpers', () => {
  test('numel, contiguousStrides, zeros, tensor', () => {
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([])).toBe(1);
    expect(numel([5, 0, 2])).toBe(0);
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(contiguousStrides([7])).toEqual([1]);
    const z = zeros('bf16', [3, 2]);
    expect(z.data).toBeInstanceOf(Uint16Array);
    expect(z.data.length).toBe(6);
    expect(zeros('i32', [4]).data).toBeInstanceOf(Int32Array);
    expect(zeros('bool', [4]).data).toBeInstanceOf(Uint8Array);
    const shape = [2, 2];
    const t = tensor('f32', shape, new Float32Array(4));
    shape[0] = 9; // the tensor keeps its own copy of the shape
    expect([...t.shape]).toEqual([2, 2]);
  });
});
