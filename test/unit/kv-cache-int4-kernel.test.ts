// The integer int4 decode kernels (avx2, and avx512 without VNNI:
// native/kv/kv_quant_attend_avx2.cpp; avx512 with VNNI: its 512-bit port in
// native/kv/kv_quant_attend_avx512.cpp)
// against exact attention over the stored (dequantized) values, with a
// tolerance derived from the kernel's own arithmetic instead of a fixed 3%.
//
// Per block of G tokens the kernel rounds to nearest:
//   keys:   q'_c = q_c * kscale_c to int8, step a = max_c |q'_c| / 127: one
//           error e_c per (row, block, channel), uniform in [-a/2, a/2] and
//           shared by the block's tokens, so logit t moves by
//           scale * sum_c e_c code_tc (correlated across t). lse moves by
//           sum_t P_t ds_t, output channel c by sum_t P_t ds_t (v_tc - o_c):
//           variance (scale a)^2 / 12 * x^T M x, M = the block's Gram matrix
//           of key codes, x_t the token's weight in that sum.
//   values: weights P_t * vscale_tg to u8 with step vsmax_g * f,
//           f = max(Pmax_block / 255, Psum_block / 4300) (normalised
//           probabilities; the AVX2 kernel's u16 sums must not overflow), or
//           f = Pmax_block / 255 in the VNNI port (int32 sums), one
//           independent error per token: channel c moves with variance
//           step^2 / 12 * sum_t code_tc^2. lse does not see them.
// Codes, scales and minima are read back from the stored values (scale =
// range / 15). Rounding errors have mean zero and these variances; a kernel
// that truncates adds a bias of half a step per term, which adds up with
// the number of terms instead of their square root. The checks: the
// measured RMS error of the outputs, and of lse, is at most 3x the RMS the
// rounding model predicts (measured here: 0.89-1.01x for outputs and
// 0.65-1.17x for lse; a q' that truncates gives lse 8.7x, weights that
// truncate give outputs ~30x). TP_DEBUG=1 prints the ratios.
import { describe, expect, test } from 'vitest';
import { backendInfo, type Tensor } from '../../lib/index.js';
import { decode3 } from '../reference/attention.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';
import { isasOnThisCpu, withIsa } from './isa.js';
import { makeCache } from './kv-helpers.js';
import { U32 } from './tolerance.js';

const LEVELS = 15;

/** Gram matrix of a block's key codes: M[t][t'] = sum_c code_tc code_t'c, code = (k - kmin) / kscale. */
function gram(K: (t: number, c: number) => number, kmin: Float64Array, kscale: Float64Array, b0: number, G: number, d: number): Float64Array {
  const C = new Float64Array(G * d);
  for (let t = 0; t < G; t++) for (let c = 0; c < d; c++) C[t * d + c] = kscale[c]! > 0 ? (K(b0 + t, c) - kmin[c]!) / kscale[c]! : 0;
  const M = new Float64Array(G * G);
  for (let t = 0; t < G; t++) {
    for (let u = t; u < G; u++) {
      let acc = 0;
      for (let c = 0; c < d; c++) acc += C[t * d + c]! * C[u * d + c]!;
      M[t * G + u] = M[u * G + t] = acc;
    }
  }
  return M;
}

/** x^T M x. */
function quad(M: Float64Array, x: Float64Array, G: number): number {
  let acc = 0;
  for (let t = 0; t < G; t++) {
    if (x[t] === 0) continue;
    let row = 0;
    for (let u = 0; u < G; u++) row += M[t * G + u]! * x[u]!;
    acc += x[t]! * row;
  }
  return acc;
}

interface Model { out: Float64Array; variance: Float64Array; lse: Float64Array; lseVariance: Float64Array }

/** Exact attention over the stored values (float64) and the rounding model's variance of each output element. */
function predict(q: Tensor<'f32'>, k: Float64Array, v: Float64Array, H: number, n: number, d: number, G: number, quantized: number, softcap: number,
  int32Sums: boolean): Model {
  const [nHeads, nQ] = q.shape as [number, number];
  const Q = decode3(q);
  const group = nHeads / H;
  const scale = 1 / Math.sqrt(d);
  const out = new Float64Array(nHeads * nQ * d);
  const variance = new Float64Array(nHeads * nQ * d);
  const lse = new Float64Array(nHeads * nQ);
  const lseVariance = new Float64Array(nHeads * nQ);
  const P = new Float64Array(n);
  for (let hq = 0; hq < nHeads; hq++) {
    const h = Math.floor(hq / group);
    const K = (t: number, c: number) => k[(h * n + t) * d + c]!;
    const V = (t: number, c: number) => v[(h * n + t) * d + c]!;
    for (let r = 0; r < nQ; r++) {
      const qr = Q.subarray((hq * nQ + r) * d, (hq * nQ + r + 1) * d);
      const last = n - nQ + r;
      let m = -Infinity;
      for (let t = 0; t < n; t++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += qr[c]! * K(t, c);
        s *= scale;
        if (softcap > 0) s = softcap * Math.tanh(s / softcap);
        P[t] = t <= last ? s : -Infinity;
        m = Math.max(m, P[t]!);
      }
      let l = 0;
      for (let t = 0; t < n; t++) l += (P[t] = Math.exp(P[t]! - m));
      for (let t = 0; t < n; t++) P[t]! /= l;
      lse[hq * nQ + r] = m + Math.log(l);
      const o = out.subarray((hq * nQ + r) * d, (hq * nQ + r + 1) * d);
      for (let t = 0; t < n; t++) for (let c = 0; c < d; c++) o[c]! += P[t]! * V(t, c);
      const vr = variance.subarray((hq * nQ + r) * d, (hq * nQ + r + 1) * d);
      for (let b0 = 0; b0 < quantized; b0 += G) {
        // Keys: per-channel scale and min of the block, the row's q' step.
        const kmin = new Float64Array(d), kscale = new Float64Array(d);
        let amax = 0;
        for (let c = 0; c < d; c++) {
          let lo = Infinity, hi = -Infinity;
          for (let t = b0; t < b0 + G; t++) { lo = Math.min(lo, K(t, c)); hi = Math.max(hi, K(t, c)); }
          kmin[c] = lo;
          kscale[c] = (hi - lo) / LEVELS;
          amax = Math.max(amax, Math.abs(qr[c]! * kscale[c]!));
        }
        const a = amax / 127;
        let pmax = 0, psum = 0;
        for (let t = b0; t < b0 + G; t++) { pmax = Math.max(pmax, P[t]!); psum += P[t]!; }
        const f = int32Sums ? pmax / 255 : Math.max(pmax / 255, psum / 4300);
        // One rounding error e_c per (row, block, channel) is shared by the block's
        // tokens, so the logit errors are correlated: with codes C [G, d] and the
        // Gram matrix M = C C^T, var(sum_t x_t ds_t) = (scale a)^2 / 12 * x^T M x.
        const M = gram(K, kmin, kscale, b0, G, d);
        const vk = (scale * a) ** 2 / 12;
        const x = new Float64Array(G);
        for (let t = 0; t < G; t++) x[t] = b0 + t <= last ? P[b0 + t]! : 0;
        lseVariance[hq * nQ + r]! += vk * quad(M, x, G);
        for (let c = 0; c < d; c++) {
          for (let t = 0; t < G; t++) x[t] = b0 + t <= last ? P[b0 + t]! * (V(b0 + t, c) - o[c]!) : 0;
          vr[c]! += vk * quad(M, x, G);
        }
        // Values: per (token, channel group) scale and min; the block's largest scale per group.
        for (let g0 = 0; g0 < d; g0 += G) {
          const g1 = Math.min(d, g0 + G);
          const vmin: number[] = [], vscale: number[] = [];
          let vsmax = 0;
          for (let t = b0; t < b0 + G; t++) {
            let lo = Infinity, hi = -Infinity;
            for (let c = g0; c < g1; c++) { lo = Math.min(lo, V(t, c)); hi = Math.max(hi, V(t, c)); }
            vmin.push(lo);
            vscale.push((hi - lo) / LEVELS);
            vsmax = Math.max(vsmax, (hi - lo) / LEVELS);
          }
          const step = vsmax * f;
          for (let c = g0; c < g1; c++) {
            let codes2 = 0;
            for (let t = b0; t < b0 + G; t++) {
              const s = vscale[t - b0]!;
              if (t <= last && s > 0) codes2 += ((V(t, c) - vmin[t - b0]!) / s) ** 2;
            }
            vr[c]! += step ** 2 / 12 * codes2;
          }
        }
      }
    }
  }
  return { out, variance, lse, lseVariance };
}

describe('int4 integer decode kernel: error within the rounding model', () => {
  const isas = isasOnThisCpu().filter((isa) => isa !== 'scalar');
  test.skipIf(isas.length === 0).each(isas)('%s: measured RMS error <= 3x the predicted RMS (headDim 64, 96, 128)', (isa) => {
    // Which weight step the kernel uses: the 512-bit port runs where the ISA is avx512 and the CPU has VNNI.
    const vnniPort = isa === 'avx512' && backendInfo().features.avx512vnni === true;
    withIsa(isa, () => {
      for (const d of [64, 96, 128]) {
        const rng = mulberry32(d + 1);
        const H = 2, n = 1000, G = 32, R = 128;
        const { cache } = makeCache(rng, { H, d, n, dtype: 'int4' });
        const quantized = Math.floor((n - R) / G) * G;
        const e = cache.export(0, { dtype: 'f32' });
        const k = decode3(e.k), v = decode3(e.v);
        for (const [nQ, softcap] of [[1, 0], [3, 0], [3, 5]] as const) {
          const q = randomTensor3(rng, 'f32', [8, nQ, d], 2);
          const res = cache.attend(0, q, { returnLse: true, ...(softcap > 0 ? { softcap } : {}) });
          const got = res.output.data;
          const model = predict(q, k, v, H, n, d, G, quantized, softcap, vnniPort);
          let err2 = 0, var2 = 0;
          got.forEach((x, i) => { err2 += (x - model.out[i]!) ** 2; var2 += model.variance[i]!; });
          // lse sees only the key path (q rounding); f32 adds ~n u32 |lse| at most.
          let lerr2 = 0, lvar2 = 0;
          res.lse!.data.forEach((x, i) => { lerr2 += (x - model.lse[i]!) ** 2; lvar2 += model.lseVariance[i]! + (n * U32 * Math.abs(model.lse[i]!)) ** 2; });
          const label = `isa=${isa} headDim=${d} nQ=${nQ} softcap=${softcap}`;
          if (process.env.TP_DEBUG) console.log(label, 'out', Math.sqrt(err2 / var2), 'lse', Math.sqrt(lerr2 / lvar2));
          expect(Math.sqrt(lerr2), `${label}: lse RMS error vs 3x predicted RMS ${3 * Math.sqrt(lvar2)}`).toBeLessThanOrEqual(3 * Math.sqrt(lvar2));
          expect(var2, `${label}: the model predicts some rounding`).toBeGreaterThan(0);
          expect(Math.sqrt(err2), `${label}: RMS error vs 3x predicted RMS ${3 * Math.sqrt(var2)}`).toBeLessThanOrEqual(3 * Math.sqrt(var2));
        }
      }
    });
  });
});
