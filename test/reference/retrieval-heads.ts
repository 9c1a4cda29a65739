/**
 * Slow float64 reference for lib/kv/retrieval-heads.ts (scoreRetrievalHeads):
 * full causal softmax per query row in float64 (no lse from the kernel).
 *
 *   queries f32 [nHeads, n, headDim], keys f32|f16|bf16 [nKvHeads, n, headDim]
 *   echo[h]      = mean over i in [period, n) of sum_{m>=1} P[h][i][i - m*period]
 *   induction[h] = mean over i in [period, n) of sum_{m>=1} P[h][i][i - m*period + 1]
 */
import type { FloatDType, Tensor } from '../../lib/index.js';
import { decode3 } from './attention.js';

export function referenceRetrievalHeads(
  queries: Tensor<'f32'>, keys: Tensor<FloatDType>, period: number, scale?: number,
): { echo: number[]; induction: number[] } {
  const [nHeads, n, d] = queries.shape as [number, number, number];
  const group = nHeads / keys.shape[0]!;
  const s = scale ?? 1 / Math.sqrt(d);
  const Q = decode3(queries);
  const K = decode3(keys);
  const echo: number[] = [];
  const induction: number[] = [];
  for (let h = 0; h < nHeads; h++) {
    const kh = Math.floor(h / group);
    let e = 0;
    let ind = 0;
    for (let i = period; i < n; i++) {
      const logits: number[] = [];
      for (let j = 0; j <= i; j++) {
        let dot = 0;
        for (let a = 0; a < d; a++) dot += Q[(h * n + i) * d + a]! * K[(kh * n + j) * d + a]!;
        logits.push(dot * s);
      }
      const m = Math.max(...logits);
      const sum = logits.reduce((acc, x) => acc + Math.exp(x - m), 0);
      const p = (j: number) => Math.exp(logits[j]! - m) / sum;
      for (let prev = i - period; prev >= 0; prev -= period) {
        e += p(prev);
        ind += p(prev + 1);
      }
    }
    echo.push(e / (n - period));
    induction.push(ind / (n - period));
  }
  return { echo, induction };
}
