// JS reference of FastV's ranking (float64): head mean of the last query's
// attention over the image span, top round(len * (1 - r)), absolute
// positions ascending. Official: pkunlp-icler/FastV modeling_llama.py.
import { topkReference } from './topk.js';

export function fastvReference(probs: Float32Array, heads: number, nk: number, start: number, len: number, keep: number): { imageKeep: Int32Array; scores: Float64Array } {
  const scores = new Float64Array(len);
  for (let i = 0; i < len; i++) {
    let s = 0;
    for (let h = 0; h < heads; h++) s += probs[h * nk + start + i]!;
    scores[i] = s / heads;
  }
  return { imageKeep: topkReference(scores, keep).map((i) => i + start), scores };
}
