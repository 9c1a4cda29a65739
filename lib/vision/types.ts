// The contract of the visual-token reduction operators (issue 19; docs/vision.md).
//
// Every operator takes visual tokens f32 [n, dim] (one image) or [t, n, dim]
// (a batch or the frames of a video: threads over t), plus the side inputs
// its rule needs (attention scores, text embeddings, FFN activations), and
// returns either the kept indices (pruning) or merged tokens with their sizes
// (merging). Tokens are row-major; TensorLike inputs (ours or onnxruntime /
// transformers.js tensors) are read in place.
import type { Tensor } from '../tensor.js';

/**
 * A pruning result: which source tokens survive, in their original order.
 * For a [t, n, dim] input every array gains a leading t (same keep per frame).
 */
export interface KeepResult {
  /** i32 [keep] or [t, keep]: kept source indices, ascending within a frame. */
  indices: Tensor<'i32'>;
  /** f32 [keep, dim] or [t, keep, dim]: the kept tokens, gathered. */
  tokens: Tensor<'f32'>;
  /** f32 [n] or [t, n]: the score the rule ranked by, where it has one (higher = kept first). */
  scores?: Tensor<'f32'>;
}

/**
 * A merging result: m output tokens, each a size-weighted combination of
 * source tokens. `sizes` is the mass each output carries (the number of
 * source tokens, or the sum of their sizes when sizes came in): attention
 * over merged keys adds log(size) to their logits (proportional attention,
 * ToMe) through the `keySizes` option.
 */
export interface MergeResult {
  /** f32 [m, dim] or [t, m, dim]. */
  tokens: Tensor<'f32'>;
  /** f32 [m] or [t, m]. */
  sizes: Tensor<'f32'>;
  /**
   * i32 [n] or [t, n]: the output row each source token went to (for a
   * many-to-many transform, the row of its largest weight); -1 for a source
   * token dropped outright.
   */
  assignment: Tensor<'i32'>;
}

/**
 * One image's patches with the side inputs of a synthetic scene, as
 * `tokenpress eval vision` builds them (lib/vision/eval/): real 16x16
 * patches (dim 768) of a real photo on a gridH x gridW grid, plus synthetic
 * attention maps and a text embedding that point at a known object region.
 */
export interface PatchScene {
  /** f32 [n, dim], n = gridH * gridW, row-major over the grid. */
  tokens: Float32Array;
  n: number;
  dim: number;
  gridH: number;
  gridW: number;
  /** f32 [layers, n]: synthetic [CLS] -> patch attention per encoder layer (rows sum to 1). */
  clsAttention: Float32Array;
  layers: number;
  /** f32 [dim]: a synthetic text embedding close to the region's patches. */
  textEmbedding: Float32Array;
  /** f32 [n]: synthetic attention of the last prompt token to each patch (head-averaged). */
  lastTokenAttention: Float32Array;
  /** u8 [n]: 1 where the patch lies in the object region the text asks about. */
  region: Uint8Array;
}

/** What an eval adapter returns: m output tokens and where each source token went. */
export interface ReducedScene {
  /** f32 [m, dim]: kept or merged tokens. */
  tokens: Float32Array;
  m: number;
  /** i32 [n]: output row of each source token, or -1 when it was dropped (the eval maps it to its nearest kept token). */
  assignment: Int32Array;
}

/**
 * An operator as `tokenpress eval vision` runs it. Each operator group
 * exports an array of these from lib/vision/eval/methods-<group>.ts;
 * lib/vision/eval/methods.ts lists them all.
 */
export interface VisionEvalMethod {
  /** Short name for tables, e.g. 'tome', 'divprune', 'random'. */
  name: string;
  /** 'prune' keeps a subset, 'merge' combines tokens, 'floor' is a baseline (random, grid pooling). */
  family: 'prune' | 'merge' | 'floor';
  /** Whether the rule reads the scene's synthetic attention / text inputs (then the region-retention table reports it). */
  usesSideInputs: boolean;
  /** Reduces the scene to about `keep` tokens. */
  run(scene: PatchScene, keep: number): ReducedScene;
  /**
   * Speed: the native operator and its straightforward typed-array JS
   * reference (lib/vision/reference/), on tokens f32 [frames, n, dim] with a
   * keep ratio. Side inputs are made up by the adapter from the sizes.
   */
  bench?: {
    native(tokens: Float32Array, frames: number, n: number, dim: number, keepRatio: number): unknown;
    reference(tokens: Float32Array, frames: number, n: number, dim: number, keepRatio: number): unknown;
  };
}
