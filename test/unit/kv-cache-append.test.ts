// KvCache.append: contents against independent references (exact f64
// rounding of f16 / bf16 written here, not the library's converters), on
// awkward sizes, strided views, every ISA path; growth across many appends;
// failed appends that must leave lengths and contents unchanged; the element
// converter's NaN / infinity / subnormal / tie lanes bit for bit; and int8 /
// int4 quantize-on-append independent of how the tokens were chunked.
import { describe, expect, test } from 'vitest';
import { KvCache, f32ToBf16Bits, f32ToF16Bits, type KvCacheDtype, type Tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { mulberry32 } from '../reference/random.js';
import { isasOnThisCpu, withIsa } from './isa.js';

// ---- independent references: round a float32 value to f16 / bf16 bits in f64 ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function roundHalfEven(q: number): number {
  const fl = Math.floor(q), diff = q - fl;
  if (diff > 0.5) return fl + 1;
  if (diff < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

/** f16 bits of the float32 with these bits: exact f64 arithmetic; NaN -> sign | 0x7e00. */
function refF16(bits: number): number {
  u32[0] = bits;
  const x = f32[0]!;
  const sign = bits & 0x80000000 ? 0x8000 : 0;
  if (Number.isNaN(x)) return sign | 0x7e00;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // the tie between 65504 and 2^16 goes to the even 2^16: infinity
  let e = -14;
  while (a >= 2 ** (e + 1)) e++;
  const r = roundHalfEven(a / 2 ** (e - 10)); // a has 24 bits: the quotient is exact in f64
  if (e === -14 && a < 2 ** -14) return sign | r; // subnormal (r may reach 1024: the smallest normal)
  return sign | (((e + 15) << 10) + (r - 1024));
}

/** bf16 bits: exact f64 arithmetic; NaN -> quieted (bits >> 16) | 0x40. */
function refBf16(bits: number): number {
  u32[0] = bits;
  const x = f32[0]!;
  if (Number.isNaN(x)) return ((bits >>> 16) | 0x40) & 0xffff;
  const sign = bits & 0x80000000 ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity || a >= (2 - 2 ** -8) * 2 ** 127) return sign | 0x7f80;
  let e = -126;
  while (a >= 2 ** (e + 1)) e++;
  const r = roundHalfEven(a / 2 ** (e - 7));
  if (e === -126 && a < 2 ** -126) return sign | r;
  return sign | (((e + 127) << 7) + (r - 128));
}

function bitsOf(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** Finite float32 edge values: subnormals of f16 and bf16, ties, the overflow edge, random. */
function edgeValues(rng: () => number, n: number): Float32Array {
  const fixed = [
    0, -0, 1, -1, 65504, -65504, 65519.99, 65520, -65520, 65536, 1e30, -3.4e38, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -26,
    -(2 ** -24), 5.96e-8, 6.1e-5, 6.09e-5, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 2 ** -126, 2 ** -149, -(2 ** -140),
    1.17549421e-38, 3.4028235e38, 0.1, 1 / 3, 2 / 3, 1000.5, 2049, 2051,
  ];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (i < fixed.length) out[i] = fixed[i]!;
    else {
      // Random bits with a finite exponent: every magnitude, tie patterns included.
      let b = Math.floor(rng() * 2 ** 32) >>> 0;
      if ((b & 0x7f800000) === 0x7f800000) b &= 0xbfffffff;
      if (i % 5 === 0) b = (b & 0xffffe000) | 0x1000; // exact f16 tie
      if (i % 7 === 0) b = (b & 0xffff0000) | 0x8000; // exact bf16 tie
      u32[0] = b;
      out[i] = f32[0]!;
    }
  }
  return out;
}

/** Index of the first element where the two differ by Object.is (-1: none; -2: lengths differ). toEqual on millions of numbers costs seconds. */
function firstDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) return -2;
  for (let i = 0; i < actual.length; i++) if (!Object.is(actual[i], expected[i])) return i;
  return -1;
}

const refFor = (dtype: KvCacheDtype) => (dtype === 'f16' ? refF16 : refBf16);

describe('KvCache.append conversion (f32 -> f16 / bf16) against an exact f64 reference', () => {
  for (const isa of isasOnThisCpu()) {
    for (const dtype of ['f16', 'bf16'] as const) {
      test(`${dtype} cache, ${isa}: every element as the reference and as the existing converter`, () => {
        withIsa(isa, () => {
          const rng = mulberry32(7);
          const H = 3, n = 37, d = 29; // awkward: not a multiple of any vector width
          const k = edgeValues(rng, H * n * d), v = edgeValues(rng, H * n * d).reverse();
          const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype });
          cache.append(0, { dtype: 'f32', shape: [H, n, d], data: k }, { dtype: 'f32', shape: [H, n, d], data: v });
          const e = cache.export(0);
          const ref = refFor(dtype), existing = dtype === 'f16' ? f32ToF16Bits : f32ToBf16Bits;
          const gotK = e.k.data as Uint16Array, gotV = e.v.data as Uint16Array;
          for (let i = 0; i < k.length; i++) {
            if (gotK[i] !== ref(bitsOf(k[i]!)) || gotV[i] !== ref(bitsOf(v[i]!))) {
              expect([i, k[i], gotK[i], v[i], gotV[i]]).toEqual([i, k[i], ref(bitsOf(k[i]!)), v[i], ref(bitsOf(v[i]!))]);
            }
            expect(gotK[i]).toBe(existing(k[i]!));
          }
        });
      });
    }
  }

  test('the converter on NaN payloads, infinities and subnormals, every path, bit for bit', () => {
    const hook = (native() as unknown as { kvAppendConvertForTest(src: Float32Array, dtype: number, path: number): Uint16Array }).kvAppendConvertForTest;
    const rng = mulberry32(3);
    const bits = new Uint32Array(4099);
    const special = [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0x7fffffff, 0x7fa00000, 0x00000001, 0x80000001, 0x007fffff,
      0x33000000, 0x33000001, 0x337fffff, 0x38800000, 0x387fffff, 0x477fefff, 0x477ff000, 0x477fffff];
    for (let i = 0; i < bits.length; i++) bits[i] = i < special.length ? special[i]! : Math.floor(rng() * 2 ** 32) >>> 0;
    const src = new Float32Array(bits.buffer);
    const paths = isasOnThisCpu().map((isa) => ({ scalar: 0, avx2: 1, avx512: 2 })[isa]);
    let checked = 0;
    for (const path of paths) {
      const h = hook(src, 1, path), b = hook(src, 2, path);
      for (let i = 0; i < bits.length; i++) {
        if (h[i] !== refF16(bits[i]!)) expect([path, bits[i]!.toString(16), h[i]]).toEqual([path, bits[i]!.toString(16), refF16(bits[i]!)]);
        if (b[i] !== refBf16(bits[i]!)) expect([path, bits[i]!.toString(16), b[i]]).toEqual([path, bits[i]!.toString(16), refBf16(bits[i]!)]);
        checked++;
      }
    }
    expect(checked).toBe(paths.length * bits.length);
    // Spot checks of the reference itself: NaN -> 0x7e00 (sign kept), the
    // f16 overflow edge, the smallest subnormal's tie.
    expect([refF16(0xffc00001), refF16(bitsOf(65520)), refF16(bitsOf(65519.99)), refF16(bitsOf(2 ** -25)), refF16(bitsOf(3 * 2 ** -25))]).toEqual([0xfe00, 0x7c00, 0x7bff, 0, 2]);
    expect([refBf16(0x7f800001), refBf16(bitsOf(1 + 2 ** -8)), refBf16(bitsOf(1 + 3 * 2 ** -8))]).toEqual([0x7fc0, 0x3f80, 0x3f82]);
  });
});

// ---- storage: awkward sizes, strided views, growth ----

/** [H, n, d] view with padded rows (row stride d + pad) of values exact in every dtype. */
function strided(rng: () => number, dtype: 'f32' | 'f16' | 'bf16', H: number, n: number, d: number, pad: number): { t: Tensor<'f32' | 'f16' | 'bf16'>; vals: number[][][] } {
  const rs = d + pad, hs = n * rs;
  const vals: number[][][] = [];
  const data = dtype === 'f32' ? new Float32Array(H * hs) : new Uint16Array(H * hs);
  for (let h = 0; h < H; h++) {
    const rows: number[][] = [];
    for (let r = 0; r < n; r++) {
      const row: number[] = [];
      for (let c = 0; c < d; c++) {
        const x = Math.round((rng() * 2 - 1) * 64) / 16; // exact in f16 and bf16
        row.push(x);
        data[h * hs + r * rs + c] = dtype === 'f32' ? x : dtype === 'f16' ? f32ToF16Bits(x) : f32ToBf16Bits(x);
      }
      rows.push(row);
    }
    vals.push(rows);
  }
  const t = { dtype, shape: [H, n, d], strides: [hs, rs, 1], data } as Tensor<'f32' | 'f16' | 'bf16'>;
  return { t, vals };
}

function exportedRows(cache: KvCache, layer: number): { k: number[][][]; v: number[][][] } {
  const e = cache.export(layer, { dtype: 'f32' });
  const [H, m, d] = e.k.shape as [number, number, number];
  const read = (data: Float32Array) => Array.from({ length: H }, (_, h) => Array.from({ length: e.lengths[h]! }, (_, r) => Array.from(data.subarray((h * m + r) * d, (h * m + r + 1) * d))));
  return { k: read(e.k.data as Float32Array), v: read(e.v.data as Float32Array) };
}

describe('KvCache.append storage', () => {
  for (const isa of isasOnThisCpu()) {
    test(`awkward sizes and strided views, every dtype pair, ${isa}`, () => {
      withIsa(isa, () => {
        const rng = mulberry32(5);
        for (const [H, d, sizes] of [[1, 1, [1, 17, 1]], [3, 17, [1, 4099, 2]], [2, 129, [17, 1, 300]]] as const) {
          for (const cacheType of ['f32', 'f16', 'bf16'] as const) {
            for (const inType of ['f32', 'f16', 'bf16'] as const) {
              const cache = new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, dtype: cacheType });
              const want: { k: number[][][]; v: number[][][] } = { k: Array.from({ length: H }, () => []), v: Array.from({ length: H }, () => []) };
              for (const [i, n] of sizes.entries()) {
                const k = strided(rng, inType, H, n, d, i % 2 ? 3 : 0), v = strided(rng, inType, H, n, d, i % 2 ? 0 : 5);
                cache.append(1, k.t, v.t);
                for (let h = 0; h < H; h++) {
                  want.k[h]!.push(...k.vals[h]!);
                  want.v[h]!.push(...v.vals[h]!);
                }
              }
              expect(exportedRows(cache, 1)).toEqual(want);
              expect(cache.export(0).lengths.every((x) => x === 0)).toBe(true);
            }
          }
        }
      });
    });
  }

  test('growth across 600 appends of 1 to 40 tokens keeps every earlier row and position', () => {
    const rng = mulberry32(9);
    const H = 2, d = 64;
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype: 'f16' });
    const want: number[][][] = [[], []];
    let total = 0;
    for (let i = 0; i < 600; i++) {
      const n = 1 + Math.floor(rng() * 40);
      const k = strided(rng, 'f32', H, n, d, 0);
      cache.append(0, k.t, k.t);
      for (let h = 0; h < H; h++) want[h]!.push(...k.vals[h]!);
      total += n;
    }
    const got = exportedRows(cache, 0);
    expect(got.k).toEqual(want);
    expect(got.v).toEqual(want);
    const e = cache.export(0);
    expect(Array.from(e.positions.data.subarray(0, total))).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(Array.from(e.counts.data.subarray(0, total)).every((c) => c === 1)).toBe(true);
  });
});

// ---- failed appends change nothing ----

function snapshot(cache: KvCache) {
  return { lengths: Array.from(cache.lengths().data), rows: exportedRows(cache, 0), pos: Array.from(cache.export(0).positions.data) };
}

describe('KvCache.append: a failed call leaves the cache unchanged', () => {
  const H = 4, d = 16;
  const make = (dtype: KvCacheDtype = 'f16') => {
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 5000, dtype, residual: 8, groupSize: 4 });
    const rng = mulberry32(2);
    const k = strided(rng, 'f32', H, 13, d, 0);
    cache.append(0, k.t, k.t);
    return cache;
  };
  for (const dtype of ['f32', 'f16', 'bf16', 'int8', 'int4'] as const) {
    for (const [what, n] of [['inline', 3], ['pool (> 256 KiB)', 1200]] as const) {
      test(`${dtype}: a NaN or an infinity in the last head (${what}) is refused, naming it`, () => {
        const cache = make(dtype);
        const before = snapshot(cache);
        for (const bad of [NaN, Infinity, -Infinity]) {
          const k = new Float32Array(H * n * d).fill(0.5);
          const v = new Float32Array(H * n * d).fill(0.25);
          const at = (H - 1) * n * d + (n - 1) * d + 3;
          (Number.isNaN(bad) ? v : k)[at] = bad;
          const name = Number.isNaN(bad) ? 'v' : 'k';
          expect(() => cache.append(0, { dtype: 'f32', shape: [H, n, d], data: k }, { dtype: 'f32', shape: [H, n, d], data: v }))
            .toThrow(new RegExp(`^${name}: expected finite values, received ${Number.isNaN(bad) ? 'NaN' : bad > 0 ? 'Infinity' : '-Infinity'} at \\[${H - 1}, ${n - 1}, 3\\]`));
          expect(snapshot(cache)).toEqual(before);
        }
      });
    }
  }

  test('wrong shapes, dtypes, capacity and positions are refused with nothing changed', () => {
    const cache = make();
    const before = snapshot(cache);
    const ok = (n: number) => ({ dtype: 'f32' as const, shape: [H, n, d], data: new Float32Array(H * n * d) });
    const bad: [() => void, RegExp | ErrorConstructor][] = [
      [() => cache.append(0, ok(2), ok(3)), RangeError],
      [() => cache.append(0, { dtype: 'f32', shape: [H + 1, 1, d], data: new Float32Array((H + 1) * d) }, ok(1)), RangeError],
      [() => cache.append(0, { dtype: 'f64', shape: [H, 1, d], data: new Float64Array(H * d) } as unknown as Tensor<'f32'>, ok(1)), TypeError],
      [() => cache.append(0, { dtype: 'f16', shape: [H, 1, d], data: new Float32Array(H * d) } as unknown as Tensor<'f16'>, ok(1)), TypeError],
      [() => cache.append(0, ok(4990), ok(4990)), RangeError],
      [() => cache.append(0, ok(2), ok(2), { positions: Int32Array.of(1) }), RangeError],
      [() => cache.append(1, ok(1), ok(1)), RangeError],
    ];
    for (const [fn, err] of bad) {
      expect(fn).toThrow(err as ErrorConstructor);
      expect(snapshot(cache)).toEqual(before);
    }
  });

  test('native appendRows re-checks what the TS layer checked: detached, short, shared, wrong types', () => {
    const cache = make();
    const before = snapshot(cache);
    const h = new (native().KvCacheHandle)({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 100, dtype: 1, groupSize: 32, residual: 128, window: 32, device: 0 });
    const good = new Uint16Array(H * d);
    h.appendRows(0, 1, good, 1, d, d, good, 1, d, d);
    const detached = new Uint16Array(H * d);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const shared = new Uint16Array(new SharedArrayBuffer(H * d * 2));
    const calls: (() => void)[] = [
      () => h.appendRows(0, 1, detached, 1, d, d, good, 1, d, d),
      () => h.appendRows(0, 2, good, 1, d, d, good, 1, d, d),
      () => h.appendRows(0, 1, shared, 1, d, d, good, 1, d, d),
      () => h.appendRows(0, 1, new Float32Array(H * d) as unknown as Uint16Array, 1, d, d, good, 1, d, d),
      () => h.appendRows(0, 1, good, 3, d, d, good, 1, d, d),
      () => h.appendRows(0, 1, good, 1, -1, d, good, 1, d, d),
      () => h.appendRows(0, 1, good, 1, d, d, good, 1, d, d, Int32Array.of(1, 2)),
      () => h.appendRows(1, 1, good, 1, d, d, good, 1, d, d),
      () => h.appendRows(0, 200, new Uint16Array(H * 200 * d), 1, 200 * d, d, new Uint16Array(H * 200 * d), 1, 200 * d, d),
      () => (h.appendRows as (...a: unknown[]) => void)(0, 1, good, { valueOf: () => 1 }, d, d, good, 1, d, d),
      () => (h.appendRows as (...a: unknown[]) => void)(0, 1),
    ];
    for (const call of calls) {
      expect(call).toThrow();
      expect(Array.from(h.lengths())).toEqual([1, 1, 1, 1]);
    }
    expect(snapshot(cache)).toEqual(before);
  });
});

// ---- int8 / int4: quantize-on-append does not depend on chunking ----

describe('int8 / int4 quantize on append', () => {
  test('the CPU block quantizer is byte for byte the shared per-element one (ties, -0, huge, tiny, random bits)', () => {
    const hook = (native() as unknown as {
      kvQuantizeForTest(k: Float32Array, v: Float32Array, d: number, g: number, bits: number, fast: boolean): Uint8Array;
    }).kvQuantizeForTest;
    const rng = mulberry32(17);
    let blocks = 0;
    // Every ISA level this CPU has (the SIMD quantizer takes headDim % 32 == 0,
    // group % 8 == 0 dividing headDim; the other shapes run the portable one).
    for (const isa of isasOnThisCpu()) withIsa(isa, () => {
    for (const bits of [8, 4]) {
      for (const d of [1, 3, 17, 33, 64, 96, 128, 129, 256]) {
        for (const g of [1, 2, 7, 8, 16, 32, 33, 64]) {
          for (let trial = 0; trial < 7; trial++) {
            const fill = () => Float32Array.from({ length: g * d }, () => {
              switch (trial) {
                case 0: return Math.round((rng() * 2 - 1) * 1000) * 2 ** -Math.floor(rng() * 40);
                case 1: return rng() < 0.5 ? -0 : 0;
                case 2: return (Math.floor(rng() * 5) - 2) * 70000;
                case 3: return Math.floor(rng() * 7) * 1e-6;
                case 4: {
                  u32[0] = Math.floor(rng() * 2 ** 32) >>> 0;
                  return Number.isFinite(f32[0]!) ? f32[0]! : 1;
                }
                // Positive or negative values with zeros of both signs among them (which zero a min / max keeps).
                case 5: return rng() < 0.4 ? (rng() < 0.5 ? -0 : 0) : (rng() < 0.5 ? 1 : -1) * (1 + Math.floor(rng() * 9));
                default: return (rng() * 2 - 1) * 2 ** (Math.floor(rng() * 10) - 5);
              }
            });
            const k = fill(), v = fill();
            // The first differing byte (-1: none); toEqual on 16k-byte arrays cost 30 s here.
            const fast = hook(k, v, d, g, bits, true), portable = hook(k, v, d, g, bits, false);
            const at = fast.length !== portable.length ? -2 : fast.findIndex((b, i) => b !== portable[i]);
            expect(at, `${isa} bits ${bits} d ${d} g ${g} trial ${trial}`).toBe(-1);
            blocks++;
          }
        }
      }
    }
    });
    expect(blocks).toBe(isasOnThisCpu().length * 2 * 9 * 8 * 7);
  });

  // The new rows and the old f16 tail are quantized from where they lie, and
  // the tail moves once per call: chunking must not show in the bytes.
  for (const dtype of ['int8', 'int4'] as const) for (const [input, d] of [['f32', 33], ['f16', 64], ['bf16', 128]] as const) {
    test(`${dtype} from ${input}, headDim ${d}: one token at a time, in one call and in awkward chunks give the same bytes`, () => {
      const rng = mulberry32(21);
      const H = 2, n = 517;
      const k = strided(rng, input, H, n, d, 0), v = strided(rng, input, H, n, d, 0);
      const kd = k.t.data, vd = v.t.data;
      const slice = (data: Float32Array | Uint16Array, r0: number, r1: number) => {
        const out = new (data.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(H * (r1 - r0) * d);
        for (let h = 0; h < H; h++) out.set(data.subarray((h * n + r0) * d, (h * n + r1) * d), h * (r1 - r0) * d);
        return { dtype: input, shape: [H, r1 - r0, d], data: out } as Tensor<'f32' | 'f16' | 'bf16'>;
      };
      const exports: unknown[] = [];
      for (const chunks of [[n], Array.from({ length: n }, () => 1), [1, 31, 32, 33, 100, 300, 20]]) {
        const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype, groupSize: 32, residual: 40 });
        let r = 0;
        for (const c of chunks) {
          cache.append(0, slice(kd, r, r + c), slice(vd, r, r + c));
          r += c;
        }
        expect(r).toBe(n);
        const e = cache.export(0, { dtype: 'f32' });
        exports.push([Array.from(e.k.data as Float32Array), Array.from(e.v.data as Float32Array)]);
      }
      expect(exports[1]).toEqual(exports[0]);
      expect(exports[2]).toEqual(exports[0]);
    });
  }
});

// ---- same-dtype rows: one pass that copies and checks ----

describe('same-dtype appends copy and check in one pass', () => {
  const H = 3, d = 40; // 80 or 160 bytes a row: runs that end inside the 128-byte steps
  const bitsOf = {
    f32: { nan: 0x7fc00000, inf: 0x7f800000, ninf: 0xff800000 },
    f16: { nan: 0x7e00, inf: 0x7c00, ninf: 0xfc00 },
    bf16: { nan: 0x7fc0, inf: 0x7f80, ninf: 0xff80 },
  } as const;
  for (const isa of isasOnThisCpu()) {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) {
      test(`${dtype} -> ${dtype} (${isa}): a bad element anywhere in a run is refused with nothing changed; good rows are stored bit for bit`, () => withIsa(isa, () => {
        const rng = mulberry32(33);
        for (const n of [1, 7, 2000]) { // inline and pool (> 256 KiB at n = 2000)
          const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype });
          const first = strided(rng, dtype, H, 5, d, 0);
          cache.append(0, first.t, first.t);
          const before = snapshot(cache);
          const good = strided(rng, dtype, H, n, d, 0);
          for (const at of [0, 31, 63, 64, n * d - 1, (H - 1) * n * d + n * d - 1]) {
            for (const kind of ['nan', 'inf', 'ninf'] as const) {
              const k = good.t.data.slice();
              if (k instanceof Float32Array) new Uint32Array(k.buffer)[at] = bitsOf.f32[kind];
              else k[at] = bitsOf[dtype as 'f16' | 'bf16'][kind];
              const h = Math.floor(at / (n * d)), t = Math.floor((at % (n * d)) / d), c = at % d;
              const word = kind === 'nan' ? 'NaN' : kind === 'inf' ? 'Infinity' : '-Infinity';
              expect(() => cache.append(0, { dtype, shape: [H, n, d], data: k } as Tensor<typeof dtype>, good.t))
                .toThrow(new RegExp(`^k: expected finite values, received ${word} at \\[${h}, ${t}, ${c}\\]`));
              expect(snapshot(cache)).toEqual(before);
            }
          }
          cache.append(0, good.t, good.t);
          const e = cache.export(0);
          for (let h = 0; h < H; h++) {
            const row = (r: number) => Array.from(e.k.data.subarray((h * (5 + n) + r) * d, (h * (5 + n) + r + 1) * d));
            expect(row(5)).toEqual(Array.from(good.t.data.subarray(h * n * d, h * n * d + d)));
            expect(row(4 + n)).toEqual(Array.from(good.t.data.subarray(h * n * d + (n - 1) * d, (h + 1) * n * d)));
          }
        }
      }));
    }
  }
});

// ---- freed storage is reused (retained mappings) and shows nothing old ----

describe('storage freed by clear() and reused', () => {
  test('a layer refilled after clear(), and a second cache on the freed mappings, hold exactly their own rows', () => {
    // 2 MiB and more per buffer (f32, headDim 128, 4096 tokens): the size
    // whose mappings are retained for reuse.
    const H = 2, d = 128, big = 4096;
    const rng = mulberry32(44);
    const a = new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, dtype: 'f32' });
    const fill = strided(rng, 'f32', H, big, d, 0);
    a.append(0, fill.t, fill.t);
    a.append(1, fill.t, fill.t);
    a.clear(0);
    expect(a.memoryBytes).toBeGreaterThan(0); // layer 1 still holds its rows
    // The same size again: the freed mappings serve it.
    const again = strided(rng, 'f32', H, big, d, 0);
    const half = strided(rng, 'f32', H, big, d, 0);
    a.append(0, again.t, half.t);
    const e0 = a.export(0);
    expect(e0.k.shape).toEqual([H, big, d]);
    expect(firstDifference(e0.k.data, again.vals.flat(2)), 'e0.k').toBe(-1);
    expect(firstDifference(e0.v.data, half.vals.flat(2)), 'e0.v').toBe(-1);
    expect(firstDifference(e0.positions.data, Array.from({ length: H }, () => Array.from({ length: big }, (_, i) => i)).flat()), 'e0.positions').toBe(-1);
    a.clear();
    // A second cache takes the freed mappings, then grows past them in steps.
    const b = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype: 'f32' });
    const rows: number[][][] = Array.from({ length: H }, () => []);
    for (const n of [big, 1, 2000, 2904]) {
      const x = strided(rng, 'f32', H, n, d, 0);
      b.append(0, x.t, x.t);
      for (let h = 0; h < H; h++) rows[h]!.push(...x.vals[h]!);
    }
    const e = b.export(0);
    expect(e.k.shape).toEqual([H, 9001, d]);
    expect(firstDifference(e.k.data, rows.flat(2)), 'e.k').toBe(-1);
    expect(firstDifference(e.v.data, rows.flat(2)), 'e.v').toBe(-1);
  });
});

// ---- the allocation-free sync path accepts exactly what the general one does ----

describe('KvCache.append: the plain-tensor fast path', () => {
  const H = 2, d = 8;
  const tensor = (n: number, extra: Record<string, unknown> = {}) => ({ dtype: 'f32', shape: [H, n, d], data: Float32Array.from({ length: H * n * d }, (_, i) => i / 8), ...extra });
  test('plain, strided (general path) and subarray-backed tensors store the same rows', () => {
    const runs = [
      (c: KvCache) => c.append(0, tensor(3) as Tensor<'f32'>, tensor(3) as Tensor<'f32'>),
      (c: KvCache) => c.append(0, tensor(3, { strides: [3 * d, d, 1] }) as Tensor<'f32'>, tensor(3, { strides: undefined }) as Tensor<'f32'>),
      (c: KvCache) => {
        const big = new Float32Array(H * 3 * d + 5);
        big.set(tensor(3).data, 5);
        c.append(0, { dtype: 'f32', shape: [H, 3, d], data: big.subarray(5) }, tensor(3) as Tensor<'f32'>);
      },
    ];
    const got = runs.map((run) => {
      const c = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype: 'f32' });
      run(c);
      return exportedRows(c, 0);
    });
    expect(got[1]).toEqual(got[0]);
    expect(got[2]).toEqual(got[0]);
  });
  test('what the fast path does not take is still checked and named by the general path', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, dtype: 'f16' });
    const ok = tensor(1) as Tensor<'f32'>;
    expect(() => c.append(0, tensor(1, { strdies: [d, d, 1] }) as Tensor<'f32'>, ok)).toThrow(/^k: unknown option "strdies" \(did you mean "strides"\?\)/);
    expect(() => c.append(0, { dtype: 'f32', shape: [H, 1, d], data: new Float32Array(H * d + 1) }, ok)).toThrow(/^k\.data\.length: expected 16 elements/);
    expect(() => c.append(0, { dtype: 'f32', shape: [H, 1.5, d], data: new Float32Array(H * d) }, ok)).toThrow(RangeError);
    expect(() => c.append(0, ok, { dtype: 'f32', shape: [H, 2, d], data: new Float32Array(2 * H * d) })).toThrow(/^v\.shape: expected \[2, 1, 8\]/);
    expect(() => c.append(0, { dtype: 'f32', shape: [H, 1, d], data: new Float32Array(new SharedArrayBuffer(4 * H * d)) }, ok)).toThrow(/^k\.data: expected a typed array over an ArrayBuffer/);
    expect(() => c.append(-1, ok, ok)).toThrow(/^layer: /);
    expect(() => c.append(0, { dtype: 'f16', shape: [H, 1, d], data: new Float32Array(H * d) } as unknown as Tensor<'f16'>, ok)).toThrow(TypeError);
    expect(Array.from(c.lengths().data)).toEqual([0, 0]);
    c.append(0, ok, ok);
    expect(Array.from(c.lengths().data)).toEqual([1, 1]);
  });
});

// ---- reserve: storage allocated up front, kept through clear and compression ----

describe('KvCache reserve option', () => {
  const H = 2, d = 64;
  for (const dtype of ['f16', 'f32', 'int8'] as const) {
    test(`${dtype}: appends up to the reservation never grow storage; past it they grow; rows are exact`, () => {
      const reserve = 3000;
      const cache = new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, dtype, reserve, residual: 128, groupSize: 32 });
      const plain = new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, dtype, residual: 128, groupSize: 32 });
      const perToken = dtype === 'f32' ? 4 * d : dtype === 'f16' ? 2 * d : d;
      const start = cache.memoryBytes;
      // Both layers, every head: at least K + V rows (int8: codes) and positions, mass, counts.
      expect(start).toBeGreaterThanOrEqual(2 * H * reserve * (2 * perToken + 12));
      expect(plain.memoryBytes).toBe(0);
      const rng = mulberry32(55);
      let n = 0;
      for (const step of [1, 500, 1, 1, 1200, 1297]) {
        const x = strided(rng, 'f32', H, step, d, 0);
        cache.append(0, x.t, x.t);
        plain.append(0, x.t, x.t);
        n += step;
        expect(cache.memoryBytes, `after ${n} tokens`).toBe(start);
      }
      expect(n).toBe(reserve);
      expect(exportedRows(cache, 0)).toEqual(exportedRows(plain, 0));
      const more = strided(rng, 'f32', H, 100, d, 0);
      cache.append(0, more.t, more.t);
      plain.append(0, more.t, more.t);
      expect(cache.memoryBytes).toBeGreaterThan(start);
      expect(exportedRows(cache, 0)).toEqual(exportedRows(plain, 0));
      // Compression and clear() keep the reservation (and give back what grew past it).
      cache.compress('knorm', { keep: 50 });
      expect(Array.from(cache.lengths().data)).toEqual([50, 50, 0, 0]);
      expect(cache.memoryBytes).toBeGreaterThanOrEqual(2 * H * reserve * 2 * perToken);
      cache.clear();
      expect(Array.from(cache.lengths().data)).toEqual([0, 0, 0, 0]);
      expect(cache.memoryBytes).toBe(start);
      expect(cache.export(0).k.shape).toEqual([H, 0, d]);
      const again = strided(rng, 'f32', H, 7, d, 0);
      cache.append(1, again.t, again.t);
      const fresh = new KvCache({ nLayers: 2, nKvHeads: H, headDim: d, dtype, residual: 128, groupSize: 32 });
      fresh.append(1, again.t, again.t);
      expect(exportedRows(cache, 1)).toEqual(exportedRows(fresh, 1));
      expect(Array.from(cache.export(1).positions.data)).toEqual(Array.from(fresh.export(1).positions.data));
      expect(cache.memoryBytes).toBe(start);
    });
  }
  test('reserve is checked: an integer from 0 to the capacity', () => {
    const base = { nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 100 };
    expect(() => new KvCache({ ...base, reserve: 101 })).toThrow(new RangeError('options.reserve: expected an integer in [0, 100], received 101'));
    expect(() => new KvCache({ ...base, reserve: -1 })).toThrow(RangeError);
    expect(() => new KvCache({ ...base, reserve: 1.5 })).toThrow(RangeError);
    expect(() => new KvCache({ ...base, reserve: '8' as unknown as number })).toThrow(TypeError);
    expect(() => new KvCache({ ...base, reserv: 8 } as never)).toThrow(/unknown option "reserv" \(did you mean "reserve"\?\)/);
    expect(new KvCache({ ...base, reserve: 100 }).memoryBytes).toBeGreaterThan(0);
    expect(() => new (native().KvCacheHandle)({ ...base, dtype: 0, groupSize: 32, residual: 0, window: 4, reserve: 101 })).toThrow(/^reserve: expected 0 to the capacity \(100\) tokens, received 101/);
  });
});
