// JS reference of VTC-CLS (float64): score_i = sum over layers [start, end)
// of att[l, i]; top keep, ascending. Official: THU-MIG/VTC-CLS
// llava/model/multimodal_encoder/clip_encoder.py (`cls_token_only`).
import { topkReference } from './topk.js';

export function vtcClsReference(att: Float32Array, layers: number, n: number, start: number, end: number, keep: number): { indices: Int32Array; scores: Float64Array } {
  const scores = new Float64Array(n);
  for (let l = start; l < end; l++) for (let i = 0; i < n; i++) scores[i] = scores[i]! + att[l * n + i]!;
  return { indices: topkReference(scores, keep), scores };
}
