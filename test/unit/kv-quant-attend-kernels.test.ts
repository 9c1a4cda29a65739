// KvCache.attend over int8 and int4 caches (native/kv/kv_quant_attend*.cpp)
// on every ISA path this CPU runs, against float64 attention over the stored
// values (export dequantizes with the block format's own code, not with the
// attend kernels), on awkward sizes: nKv not a multiple of the group (and a
// partial f16 tail), headDim 64 / 80 / 96 / 128, GQA 1 / 4 / 8, causal nQ 1
// and 3, softcap, groups 16 / 32 / 12, and several thread counts.
//
// Which kernel runs (kv_quant_attend.h):
//   int8, every ISA: f32 arithmetic over the stored values (avx512: codes
//     widened in registers, scales folded into q and the token weights;
//     avx2: rows dequantized once per block; scalar: dequantize_rows). Bound:
//     first-order f32 rounding of the logits and of the weighted sums, the
//     terms' magnitudes taken from the stored values (tolerance.ts).
//   int4, avx2 / avx512, group 32 and headDim % 32 == 0: the integer kernel
//     (q and token weights rounded to 8 bits per block; avx512 with VNNI:
//     kv_quant_attend_avx512.cpp's 512-bit port): relative L2 error under 3%
//     (kv-cache-int4-kernel.test.ts checks it against its rounding model);
//     other int4 shapes and scalar: the f32 bound above. The shapes from
//     headDim 32 on exercise the 512-bit port's edges: 64-channel value
//     passes with a 32-channel remainder (headDim 32, 96, 160), the widest
//     head (256), row tiles of 4 with remainders 1-3 (GQA 2, 5, 6, 7 with nQ
//     1 and 3), a single quantized block, and a head of one key.
// Results must not depend on the thread count (fixed chunking): compared bit
// for bit across 1, 2 and 3 threads.
import { afterAll, describe, expect, test } from 'vitest';
import { backendInfo, setThreads, type KvCacheDtype } from '../../lib/index.js';
import { referenceAttention } from '../reference/attention.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { isasOnThisCpu, withIsa } from './isa.js';
import { makeCache } from './kv-helpers.js';
import { EXP_ULPS, f32SumBound, logitBound, U32 } from './tolerance.js';

const initialThreads = backendInfo().threads;
afterAll(() => setThreads(initialThreads));

interface Shape { d: number; H: number; group: number; n: number; groupSize: number; residual: number }

// n: never a multiple of the group; residual: the f16 tail the cache keeps.
const SHAPES: Shape[] = [
  { d: 128, H: 2, group: 4, n: 1000, groupSize: 32, residual: 128 },
  { d: 64, H: 3, group: 1, n: 777, groupSize: 32, residual: 40 },
  { d: 96, H: 1, group: 8, n: 611, groupSize: 32, residual: 7 },
  { d: 80, H: 2, group: 4, n: 530, groupSize: 16, residual: 16 },
  { d: 128, H: 2, group: 8, n: 4099, groupSize: 32, residual: 128 },
  { d: 96, H: 2, group: 4, n: 301, groupSize: 12, residual: 20 },
  { d: 160, H: 1, group: 5, n: 333, groupSize: 32, residual: 1 },
  { d: 32, H: 2, group: 2, n: 97, groupSize: 32, residual: 33 },
  { d: 256, H: 1, group: 7, n: 290, groupSize: 32, residual: 2 },
  { d: 64, H: 2, group: 6, n: 33, groupSize: 32, residual: 1 },
  { d: 96, H: 1, group: 3, n: 1, groupSize: 32, residual: 1 },
];

/** True where the int4 cache runs the integer kernel (q and weights rounded to 8 bits). */
function int4Integer(isa: string, s: Shape): boolean {
  return isa !== 'scalar' && s.groupSize === 32 && s.d % 32 === 0 && s.d <= 256;
}

function checkAgainstReference(isa: string, dtype: KvCacheDtype, s: Shape, seed: number) {
  const rng = mulberry32(seed);
  const { cache } = makeCache(rng, { H: s.H, d: s.d, n: s.n, dtype, groupSize: s.groupSize, residual: s.residual });
  const e = cache.export(0, { dtype: 'f32' });
  for (const [nQ, softcap] of [[1, 0], [3, 0], [3, 5]] as const) {
    if (nQ > s.n) continue;  // a causal row with no visible key has lse -inf on both sides
    const nHeads = s.H * s.group;
    const q = randomTensor3(rng, 'f32', [nHeads, nQ, s.d], 2);
    const opts = softcap > 0 ? { softcap } : {};
    const ref = referenceAttention(q, e.k, e.v, { causal: true, returnLse: true, ...opts });
    const got = cache.attend(0, q, { returnLse: true, ...opts });
    const label = `${isa} ${dtype} d=${s.d} H=${s.H} gqa=${s.group} n=${s.n} G=${s.groupSize} nQ=${nQ} softcap=${softcap}`;
    if (dtype === 'int4' && int4Integer(isa, s)) {
      let num = 0, den = 0;
      got.output.data.forEach((x, i) => { num += (x - ref.output[i]!) ** 2; den += ref.output[i]! ** 2; });
      expect(Math.sqrt(num / den), `${label}: relative L2 error`).toBeLessThan(0.03);
      got.lse!.data.forEach((x, i) => expect(Math.abs(x - ref.lse![i]!), `${label}: lse[${i}]`).toBeLessThan(0.03));
      continue;
    }
    // f32 kernels. Stored values lie in [-1, 1]: min and scale * code are each
    // at most 2 in magnitude, so a kernel that folds the scales (q . kmin +
    // (q * kscale) . code, and the same for the weights) adds terms of up to
    // 3 per element where the dequantized value is <= 1.
    // In quadrature as well: the f32 roundings are independent and of mean
    // zero, so the relative L2 error stays near sqrt(depth) u32 (~1e-6);
    // 1e-5 still catches a systematic error (a mis-weighted chunk or tail)
    // that the worst-case bound below is too loose to see.
    let num = 0, den = 0;
    got.output.data.forEach((x, i) => { num += (x - ref.output[i]!) ** 2; den += ref.output[i]! ** 2; });
    if (process.env.TP_DEBUG) console.log(label, 'relative L2', Math.sqrt(num / den));
    expect(Math.sqrt(num / den), `${label}: relative L2 error`).toBeLessThan(1e-5);
    const d = s.d, group = s.group;
    const scale = 1 / Math.sqrt(d);
    const Q = q.data;
    for (let hq = 0; hq < nHeads; hq++) {
      for (let r = 0; r < nQ; r++) {
        let qAbs = 0;
        for (let c = 0; c < d; c++) qAbs += Math.abs(Q[(hq * nQ + r) * d + c]!);
        const visible = s.n - nQ + r + 1;
        const ds = logitBound(d, 3 * scale * qAbs);
        // Each probability moves by 2 ds + exp + sum rounding (relative); the
        // output row is a convex mix of values in [-1, 1] plus the f32 sums.
        // Sums run over one chunk of the head at most (kv_quant_attend.cpp:
        // max(8, ceil(groups / 32)) groups), then over the chunks.
        const groups = Math.ceil(s.n / s.groupSize);
        const span = Math.max(8, Math.ceil(groups / 32)) * s.groupSize;
        const depth = span + Math.ceil(s.n / span) + 2;
        const pRel = 2 * ds + 2 * EXP_ULPS * U32 + depth * U32;
        const outTol = 2 * pRel + f32SumBound(depth, 3);
        const lseTol = ds + depth * U32 * (Math.abs(ref.lse![hq * nQ + r]!) + 1);
        for (let c = 0; c < d; c++) {
          const i = (hq * nQ + r) * d + c;
          const err = Math.abs(got.output.data[i]! - ref.output[i]!);
          if (!(err <= outTol)) expect(err, `${label}: out[${hq}, ${r}, ${c}] (kv head ${Math.floor(hq / group)})`).toBeLessThanOrEqual(outTol);
        }
        expect(Math.abs(got.lse!.data[hq * nQ + r]! - ref.lse![hq * nQ + r]!), `${label}: lse[${hq}, ${r}]`).toBeLessThanOrEqual(lseTol);
      }
    }
  }
}

describe('quantized KvCache.attend: every ISA path against float64 attention over the stored values', () => {
  for (const isa of isasOnThisCpu()) {
    for (const dtype of ['int8', 'int4'] as const) {
      test(`${isa} ${dtype}: headDim 64/80/96/128, GQA 1/4/8, groups 12/16/32, nKv not a multiple of the group`, () => {
        withIsa(isa, () => {
          SHAPES.forEach((s, i) => checkAgainstReference(isa, dtype, s, 1000 + 17 * i + (dtype === 'int4' ? 7 : 0)));
        });
      });
    }
  }
});

describe('quantized KvCache.attend: bit-identical across thread counts', () => {
  for (const isa of isasOnThisCpu()) {
    test(`${isa}: int8 and int4, 1 / 2 / 3 threads give the same bits`, () => {
      withIsa(isa, () => {
        for (const dtype of ['int8', 'int4'] as const) {
          const rng = mulberry32(dtype === 'int8' ? 41 : 42);
          const { cache } = makeCache(rng, { H: 4, d: 128, n: 3001, dtype });
          const q = randomTensor3(rng, 'f32', [16, 2, 128], 2);
          const runs = [1, 2, 3].map((t) => {
            setThreads(t);
            const r = cache.attend(0, q, { returnLse: true });
            return { out: Array.from(r.output.data), lse: Array.from(r.lse!.data) };
          });
          setThreads(initialThreads);
          for (const r of runs.slice(1)) {
            expect(r.out).toEqual(runs[0]!.out);
            expect(r.lse).toEqual(runs[0]!.lse);
          }
        }
      });
    });
  }
});

describe('quantized KvCache.attend: heads of different lengths in one call', () => {
  test('int8 and int4: after a head-adaptive compression each head matches its own float64 attention', () => {
    for (const dtype of ['int8', 'int4'] as const) {
      const rng = mulberry32(dtype === 'int8' ? 91 : 92);
      const { cache } = makeCache(rng, { H: 4, d: 64, n: 900, dtype, residual: 32 });
      cache.compress({ name: 'adakv', scorer: 'knorm', alpha: 0 }, { keep: 500 });
      const e = cache.export(0, { dtype: 'f32' });
      const lengths = Array.from(e.lengths);
      expect(new Set(lengths).size, `${dtype}: head lengths ${lengths.join(', ')}`).toBeGreaterThan(1);
      const q = randomTensor3(rng, 'f32', [8, 1, 64], 2);
      const got = cache.attend(0, q, { returnLse: true });
      const maxLen = e.k.shape[1]!;
      for (let h = 0; h < 4; h++) {
        const n = lengths[h]!;
        const slice = (t: typeof e.k) => ({ dtype: 'f32' as const, shape: [1, n, 64], data: Float32Array.from((t.data as Float32Array).subarray(h * maxLen * 64, (h * maxLen + n) * 64)) });
        const qh = { dtype: 'f32' as const, shape: [2, 1, 64], data: q.data.subarray(h * 2 * 64, (h + 1) * 2 * 64) };
        const ref = referenceAttention(qh, slice(e.k), slice(e.v), { causal: true, returnLse: true });
        const out = got.output.data.subarray(h * 2 * 64, (h + 1) * 2 * 64);
        let num = 0, den = 0;
        out.forEach((x, i) => { num += (x - ref.output[i]!) ** 2; den += ref.output[i]! ** 2; });
        expect(Math.sqrt(num / den), `${dtype} head ${h} (${n} tokens)`).toBeLessThan(dtype === 'int8' ? 1e-5 : 0.03);
      }
    }
  });
});
