/**
 * Error bounds derived from the arithmetic, for comparing f32 / f16 / int8 /
 * int4 kernels with float64 references. Each bound is first order (products
 * of two roundings are dropped) and scales with the values involved, so
 * it neither hides a real error on large inputs nor fails on rounding.
 *
 *   u32 = 2^-24        unit roundoff of f32 (round to nearest)
 *   u16 = 2^-11        unit roundoff of f16: |fl16(x) - x| <= u16 |x| (normal range)
 *   f32 sum of n terms |fl(sum) - sum| <= (n - 1) u32 sum |terms|   (Higham, gamma_{n-1})
 *   quantized, per group:  x = min + scale * code, code = round((x - min) / scale):
 *                      |deq(q(x)) - x| <= scale / 2, scale = (max - min) / levels
 *                      (levels 255 for int8, 15 for int4), plus the f16 rounding of
 *                      scale and min: <= u16 (|min| + scale * code).
 */
export const U32 = 2 ** -24;
export const U16 = 2 ** -11;

/** |error| of an f32 accumulation of n terms whose magnitudes sum to sumAbs. */
export function f32SumBound(n: number, sumAbs: number): number {
  return Math.max(n - 1, 1) * U32 * sumAbs;
}

/**
 * Relative error bound of one softmax probability p_j = exp(s_j - m) / sum_t exp(s_t - m)
 * computed in f32: the logit error ds (absolute, from its f32 dot product) enters
 * twice (numerator and the sum's dominant terms), exp adds a few ulp (EXP_ULPS:
 * the SIMD exp polynomials are accurate to ~2-4 ulp), and the sum of nKeys terms
 * adds nKeys u32.
 */
export const EXP_ULPS = 8;
export function probabilityRelBound(ds: number, nKeys: number): number {
  return 2 * ds + 2 * EXP_ULPS * U32 + nKeys * U32;
}

/** Absolute logit error bound: scale * (q . k) over headDim products in f32. */
export function logitBound(headDim: number, scaledSumAbs: number): number {
  return f32SumBound(headDim + 1, scaledSumAbs);
}

/** Quantization bound of one element: half a step plus the f16 rounding of the group's min and scale. */
export function quantBound(lo: number, hi: number, levels: number, x: number): number {
  const step = (hi - lo) / levels;
  return step / 2 + U16 * (Math.abs(lo) + Math.abs(x - lo)) + 4 * U32 * Math.abs(x);
}
