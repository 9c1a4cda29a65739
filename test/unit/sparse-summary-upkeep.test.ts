// Quest summaries kept through appends on float caches at the head sizes the
// SIMD fold paths serve (native/sparse/quest_fold.cpp: F16C blocks of 32
// channels plus 8-channel tails; d % 8 != 0 takes the scalar loop), with the
// fold done inside append (native/kv/kv_cache.cpp: append_float_rows), on the
// inline path (small appends) and the pooled one (large appends).
//
// Reference: float64 min / max per page of the exported keys, computed here.
// Float summaries are exact (the min / max of stored values is a stored
// value), so every comparison is equality.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvCacheDtype, type Tensor } from '../../lib/index.js';
import { decode3 } from '../reference/attention.js';
import { mulberry32, type Rng } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { isasOnThisCpu, withIsa } from './isa.js';

const P = 16;

function refPages(K: Float64Array, rowOffset: number, n: number, d: number): { lo: number[]; hi: number[] } {
  const lo: number[] = [], hi: number[] = [];
  for (let p = 0; p * P < n; p++) {
    for (let c = 0; c < d; c++) {
      let a = Infinity, b = -Infinity;
      for (let t = p * P; t < Math.min(n, (p + 1) * P); t++) {
        const x = K[(rowOffset + t) * d + c]!;
        a = Math.min(a, x);
        b = Math.max(b, x);
      }
      lo.push(a);
      hi.push(b);
    }
  }
  return { lo, hi };
}

/** Every head's summaries equal the float64 min / max of its exported keys, page by page. */
function expectExact(cache: KvCache, layer: number): void {
  const e = cache.export(layer, { dtype: 'f32' });
  const s = cache.questSummaries(layer);
  const [H, maxLen, d] = e.k.shape as [number, number, number];
  const K = decode3(e.k);
  const pages = s.kmin.shape[1]!;
  expect(s.pageSize).toBe(P);
  for (let h = 0; h < H; h++) {
    const n = e.lengths[h]!;
    expect(s.headPages[h]).toBe(Math.ceil(n / P));
    const ref = refPages(K, h * maxLen, n, d);
    const m = Math.ceil(n / P) * d;
    expect(Array.from(s.kmin.data.subarray(h * pages * d, h * pages * d + m))).toEqual(ref.lo);
    expect(Array.from(s.kmax.data.subarray(h * pages * d, h * pages * d + m))).toEqual(ref.hi);
  }
}

/**
 * Appends m random tokens. Input in the cache's own dtype is folded from the
 * input itself (append_float_rows' fresh rows), f32 into an f16 / bf16 cache
 * from the storage; `pad` lays the key rows out with padding between them
 * (a strided input) and an offset.
 */
function appendRandom(cache: KvCache, rng: Rng, H: number, d: number, m: number, dtype: 'f32' | 'f16' | 'bf16' = 'f32', pad = 0): void {
  const layout = pad ? { rowPad: pad, offset: 3 } : {};
  cache.append(0, randomTensor3(rng, dtype, [H, m, d], 3, layout), randomTensor3(rng, dtype, [H, m, d], 1));
}

const FLOAT_DTYPES: KvCacheDtype[] = ['f16', 'f32', 'bf16'];

describe.each(FLOAT_DTYPES)('Quest summaries through appends (%s cache)', (dtype) => {
  // 128: four 32-channel blocks; 40: one block and an 8-channel tail; 24:
  // tails only; 12: the scalar loop.
  test.each([128, 40, 24, 12])('headDim %i: single tokens, page-crossing chunks and a pooled chunk stay exact', (d) => {
    const rng = mulberry32(100 + d);
    const H = 3;
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 4096, dtype });
    appendRandom(cache, rng, H, d, 37);
    const q: Tensor<'f32'> = randomTensor3(rng, 'f32', [H, 1, d], 1);
    cache.attend(0, q, { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
    expectExact(cache, 0);
    const own = dtype as 'f32' | 'f16' | 'bf16';
    for (const [m, input, pad] of [[1, 'f32', 0], [1, own, 0], [9, own, 0], [1, own, 8], [16, 'f32', 0], [5, own, 8], [33, own, 0], [1, 'f32', 0]] as const) {
      appendRandom(cache, rng, H, d, m, input, pad);
      expectExact(cache, 0);
    }
    // Large enough for the pooled append path (each head in a pool task).
    appendRandom(cache, rng, H, d, 1500);
    expectExact(cache, 0);
    appendRandom(cache, rng, H, d, 1500, own, 16);
    expectExact(cache, 0);
  });

  test('the SIMD fold and the scalar loop give the same summaries', () => {
    const d = 72;
    const H = 2;
    const build = () => {
      const rng = mulberry32(7);
      const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 2048, dtype });
      appendRandom(cache, rng, H, d, 20);
      cache.attend(0, randomTensor3(rng, 'f32', [H, 1, d], 1), { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
      for (const m of [1, 3, 17, 200]) appendRandom(cache, rng, H, d, m);
      for (const m of [1, 3, 17, 200]) appendRandom(cache, rng, H, d, m, dtype as 'f32' | 'f16' | 'bf16', 8);
      const s = cache.questSummaries(0);
      return { lo: Array.from(s.kmin.data), hi: Array.from(s.kmax.data) };
    };
    expect(withIsa('scalar', build)).toEqual(build());
  });

  // f16 on AVX2-only cores folds the raw bits as integers (quest_fold.cpp
  // fold_f16_bits_avx2: signed max, unsigned min and max per lane): pages
  // whose columns are all negative, all positive, mixed, or hold zeros of
  // both signs must still give the exact float extremes, on every ISA here.
  test.each(isasOnThisCpu())('on the %s path, pages of all-negative, all-positive and mixed-sign keys stay exact', (isa) => {
    withIsa(isa, () => {
      const d = 48;
      const H = 2;
      const rng = mulberry32(31);
      const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 4096, dtype });
      appendRandom(cache, rng, H, d, 20);
      cache.attend(0, randomTensor3(rng, 'f32', [H, 1, d], 1), { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
      const own = dtype as 'f32' | 'f16' | 'bf16';
      for (const sign of [-1, 1, 0, 2] as const) {
        for (const m of [7, 45, 700]) {
          const k = randomTensor3(rng, own, [H, m, d], 3);
          const v = randomTensor3(rng, own, [H, m, d], 1);
          const x = k.data;
          for (let i = 0; i < x.length; i++) {
            if (own === 'f32') {
              const a = x as Float32Array;
              a[i] = sign === 0 ? (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : a[i]!) : sign === 2 ? a[i]! : sign * Math.abs(a[i]!);
            } else {
              const a = x as Uint16Array;  // sign bit 0x8000 for both f16 and bf16
              a[i] = sign === 0 ? (i % 3 === 0 ? 0x8000 : i % 3 === 1 ? 0 : a[i]!) : sign === 2 ? a[i]! : sign < 0 ? a[i]! | 0x8000 : a[i]! & 0x7fff;
            }
          }
          cache.append(0, k, v);
          const e = cache.export(0, { dtype: 'f32' });
          const s = cache.questSummaries(0);
          const K = decode3(e.k);
          const pages = s.kmin.shape[1]!;
          for (let h = 0; h < H; h++) {
            const n = e.lengths[h]!;
            const ref = refPages(K, h * e.k.shape[1]!, n, d);
            const mm = Math.ceil(n / P) * d;
            // Numeric equality (+0 and -0 are the same bound).
            expect(Array.from(s.kmin.data.subarray(h * pages * d, h * pages * d + mm), (y) => y + 0)).toEqual(ref.lo.map((y) => y + 0));
            expect(Array.from(s.kmax.data.subarray(h * pages * d, h * pages * d + mm), (y) => y + 0)).toEqual(ref.hi.map((y) => y + 0));
          }
        }
      }
    });
  });

  // A non-finite value makes the append fail after some heads (or some key
  // segments of a head) were already folded: the summaries must come back
  // exactly. 'key': the last key of the last head (every earlier ~8 KiB key
  // segment of every head folded first, in the append's own dtype); 'value':
  // the last value (every head's keys folded first, f32 input).
  test.each(['key', 'value'] as const)('a failed append (a non-finite %s at the end) leaves the summaries as they were', (where) => {
    const d = 64;
    const H = 4;
    const rng = mulberry32(where === 'key' ? 19 : 9);
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 8192, dtype });
    appendRandom(cache, rng, H, d, 21);
    cache.attend(0, randomTensor3(rng, 'f32', [H, 1, d], 1), { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
    const snapshot = () => {
      const s = cache.questSummaries(0);
      return { lo: Array.from(s.kmin.data), hi: Array.from(s.kmax.data), pages: Array.from(s.headPages) };
    };
    const before = snapshot();
    const input = where === 'key' ? (dtype as 'f32' | 'f16' | 'bf16') : 'f32';
    for (const m of where === 'key' ? [40, 2000] : [3, 2000]) {  // inline and pooled paths
      const k = randomTensor3(rng, input, [H, m, d], 3);
      const v = randomTensor3(rng, input, [H, m, d], 1);
      // Keys far below every stored key: folded, they would move every kmin.
      if (input === 'f32') (k.data as Float32Array).fill(-1000);
      else (k.data as Uint16Array).fill(input === 'f16' ? 0xe3d0 : 0xc47a);  // -1000 (f16), about -1000 (bf16)
      const bad = where === 'key' ? k.data : v.data;
      if (input === 'f32') (bad as Float32Array)[bad.length - 1] = NaN;
      else (bad as Uint16Array)[bad.length - 1] = input === 'f16' ? 0x7e00 : 0x7fc0;
      expect(() => cache.append(0, k, v)).toThrow(/finite/);
      expect(snapshot()).toEqual(before);
    }
    appendRandom(cache, rng, H, d, 5);
    expectExact(cache, 0);
  });

  // Every pattern of an all-ones exponent, either sign, anywhere in a page
  // an append folds (its first element, its middle, the open page, the
  // first new row of a page completed from stored rows) must be refused,
  // with the cache's keys and summaries left as they were. A fold that finds
  // non-finite keys from its min / max accumulators instead of per element
  // (the f16 copy-and-fold kernel tried in docs/sparse.md, summary upkeep)
  // must meet this too.
  test('a non-finite key of either sign anywhere in a folded page is refused', () => {
    const d = 64;
    const H = 2;
    const rng = mulberry32(23);
    const cache = new KvCache({ nLayers: 1, nKvHeads: H, headDim: d, capacity: 4096, dtype });
    appendRandom(cache, rng, H, d, 21);
    cache.attend(0, randomTensor3(rng, 'f32', [H, 1, d], 1), { sparse: { method: 'quest', budget: 32, pageSize: P }, remember: false });
    const snapshot = () => {
      const s = cache.questSummaries(0);
      const e = cache.export(0, { dtype: 'f32' });
      return { lo: Array.from(s.kmin.data), hi: Array.from(s.kmax.data), k: Array.from(e.k.data), lengths: Array.from(e.lengths) };
    };
    const before = snapshot();
    const own = dtype as 'f32' | 'f16' | 'bf16';
    // Bit patterns: +inf, -inf, +NaN, -NaN (and f16's largest NaN payloads).
    const bits = own === 'f32' ? [0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001]
      : own === 'f16' ? [0x7c00, 0xfc00, 0x7e00, 0xfe00, 0x7c01, 0xffff, 0x7fff] : [0x7f80, 0xff80, 0x7fc0, 0xffc0];
    // Rows 21..60: page 1 (rows 16..31) completes from 5 stored rows and
    // input rows 0..10, page 2 is input rows 11..26, rows 27..39 stay in
    // the open page (copied, not folded).
    const m = 40;
    // (head, input row, channel): page 2's first element, its middle, the
    // open page's last key, page 1's first input row.
    const places = [[0, 11, 0], [1, 20, 33], [1, m - 1, d - 1], [0, 0, 17]] as const;
    for (const b of bits) {
      for (const [h, r, c] of places) {
        const k = randomTensor3(rng, own, [H, m, d], 3);
        const v = randomTensor3(rng, own, [H, m, d], 1);
        const i = (h * m + r) * d + c;
        if (own === 'f32') {
          const a = k.data as Float32Array;
          a.fill(-1000);  // folded, they would move every kmin
          new Uint32Array(a.buffer, a.byteOffset, a.length)[i] = b;
        } else {
          const a = k.data as Uint16Array;
          a.fill(own === 'f16' ? 0xe3d0 : 0xc47a);
          a[i] = b;
        }
        expect(() => cache.append(0, k, v), `bits 0x${b.toString(16)} at ${h},${r},${c}`).toThrow(/finite/);
        expect(snapshot()).toEqual(before);
      }
    }
    appendRandom(cache, rng, H, d, 40, own);
    expectExact(cache, 0);
  });
});
