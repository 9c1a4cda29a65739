/**
 * LLaVolta pooling (Chen et al., "Efficient Large Multi-modal Models via
 * Visual Context Compression"): 1-D average pooling of the visual tokens
 * with kernel = stride = s, as an inference operator, and its training
 * stage schedule as data. Official code: Beckschen/LLaVolta
 * llava/model/language_model/llava_llama.py (visual_avg_pool1d,
 * visual_operating, step_stride_and_layer). Native kernel: native/reduce/pool.h.
 *
 * Shapes: tokens f32 [(t,) n, dim] -> m = floor(n / stride) rows (the last
 * n mod stride tokens are dropped, as avg_pool1d without padding):
 *   tokens f32 [(t,) m, dim] (plain means), sizes f32 [(t,) m] (stride, or
 *   the summed input sizes), assignment i32 [(t,) n] (floor(j / stride),
 *   -1 for the dropped tail), positions i32 [(t,) m] when positions came in
 *   (trunc of the mean of the pooled positions).
 */
import { rangeError, typeError } from '../errors.js';
import { native, type NativePoolParams } from '../native.js';
import type { Tensor } from '../tensor.js';
import { checkInteger, checkOptions } from '../validate.js';
import { checkSizes, checkTokens, f32, i32, type Tokens } from './tome-common.js';
import type { MergeResult } from './types.js';

export interface LlavoltaPoolOptions {
  /** Kernel = stride, >= 1 (LLaVolta's "heavy" and "light" settings use 8). */
  stride: number;
  /** Position ids of the tokens, i32 [(t,) n]; default none (then no positions out). */
  positions?: Int32Array;
  /** Sizes carried in, f32 [(t,) n]; the outputs' sizes sum them. */
  sizes?: Float32Array | Tensor<'f32'>;
}

export interface LlavoltaPoolResult extends MergeResult {
  /** Pooled position ids i32 [(t,) m] (only when positions were given). */
  positions?: Tensor<'i32'>;
}

const OPTION_NAMES = ['stride', 'positions', 'sizes'] as const;

function prepare(tokens: unknown, options: unknown): { params: NativePoolParams; result: LlavoltaPoolResult } {
  const opts = checkOptions('options', options, OPTION_NAMES);
  const block = checkTokens('tokens', tokens);
  const stride = checkInteger('options.stride', opts.stride, 1, 0x7fffffff);
  const sizes = checkSizes('options.sizes', opts.sizes, block);
  let positions: Int32Array | undefined;
  if (opts.positions !== undefined) {
    if (!(opts.positions instanceof Int32Array)) throw typeError('options.positions', `an Int32Array of t * n = ${block.t * block.n} ids`, opts.positions);
    if (opts.positions.length !== block.t * block.n) throw rangeError('options.positions.length', `t * n = ${block.t * block.n}`, opts.positions.length);
    positions = opts.positions;
  }
  const m = Math.floor(block.n / stride);
  const outX = new Float32Array(block.t * m * block.dim);
  const outSizes = new Float32Array(block.t * m);
  const outAssignment = new Int32Array(block.t * block.n);
  const params: NativePoolParams = { x: block.data, t: block.t, n: block.n, d: block.dim, stride, outX, outSizes, outAssignment };
  if (sizes) params.sizes = sizes;
  const result: LlavoltaPoolResult = {
    tokens: f32(block, outX, [m, block.dim]),
    sizes: f32(block, outSizes, [m]),
    assignment: i32(block, outAssignment, [block.n]),
  };
  if (positions) {
    params.positions = positions;
    params.outPositions = new Int32Array(block.t * m);
    result.positions = i32(block, params.outPositions, [m]);
  }
  return { params, result };
}

/** LLaVolta's visual_avg_pool1d on every frame. Shapes: see the module comment. */
export function llavoltaPool(tokens: Tokens, options: LlavoltaPoolOptions): LlavoltaPoolResult {
  const { params, result } = prepare(tokens, options);
  native().reducePool(params);
  return result;
}

/** {@link llavoltaPool} off the event loop (inputs copied first). */
export async function llavoltaPoolAsync(tokens: Tokens, options: LlavoltaPoolOptions): Promise<LlavoltaPoolResult> {
  const { params, result } = prepare(tokens, options);
  await native().reducePoolAsync(params);
  return result;
}

/**
 * A LLaVolta stage schedule as data, the lists of LlavaLlamaModel.set_lists:
 * strides[k] and layers[k] are stage k's pooling stride and decoder layer;
 * pivots[k] is the training step that ends stage k (a stride of 1 or a
 * layer of 0 with stride 1 means no compression).
 */
export interface LlavoltaSchedule {
  strides: readonly number[];
  layers: readonly number[];
  pivots: readonly number[];
}

/**
 * The schedules of the LLaVolta scripts (scripts/v1_5): the 4-stage recipe
 * (layer, stride) = (2, 8) -> (2, 2) -> (16, 2) -> (0, 1) switching at
 * steps 1300 / 2600 / 3900 (the 4-stage model is evaluated uncompressed),
 * and the single-stage "heavy" (layer 2, stride 8) and "light" (layer 16,
 * stride 8). Values from the anchors notes, cross-read with llava_llama.py.
 */
export const LLAVOLTA_SCHEDULES: Readonly<Record<'fourStage' | 'heavy' | 'light', LlavoltaSchedule>> = {
  fourStage: { strides: [8, 2, 2, 1], layers: [2, 2, 16, 0], pivots: [1300, 2600, 3900] },
  heavy: { strides: [8], layers: [2], pivots: [] },
  light: { strides: [8], layers: [16], pivots: [] },
};

/**
 * The (stride, layer) in force at training step `step` (0-based), by
 * replaying step_stride_and_layer: the stage advances at a step where
 * step % pivot == 0, step != 0 and the current stride > 1; after the last
 * pivot the pivot becomes 10000, as the official code.
 */
export function llavoltaStageAt(schedule: LlavoltaSchedule, step: number): { stride: number; layer: number } {
  const s = checkInteger('step', step, 0, 1e7);
  if (!schedule || !Array.isArray(schedule.strides) || !Array.isArray(schedule.layers) || !Array.isArray(schedule.pivots)) {
    throw typeError('schedule', '{ strides, layers, pivots } arrays', schedule);
  }
  if (schedule.strides.length < 1 || schedule.layers.length !== schedule.strides.length) {
    throw rangeError('schedule.layers.length', `strides.length = ${schedule.strides.length} (>= 1)`, schedule.layers.length);
  }
  schedule.strides.forEach((v, i) => checkInteger(`schedule.strides[${i}]`, v, 1));
  schedule.layers.forEach((v, i) => checkInteger(`schedule.layers[${i}]`, v, 0));
  schedule.pivots.forEach((v, i) => checkInteger(`schedule.pivots[${i}]`, v, 1));
  const strides = [...schedule.strides], layers = [...schedule.layers], pivots = [...schedule.pivots];
  let stride = strides.shift()!, layer = layers.shift()!;
  let pivot = pivots.length > 0 ? pivots.shift()! : 10000;
  // Replays the calls made before step s, then the one at step s (it runs before the forward pass).
  for (let k = 0; k <= s; k++) {
    if (k % pivot === 0 && k !== 0 && stride > 1 && strides.length > 0) {
      stride = strides.shift()!;
      layer = layers.shift()!;
      pivot = pivots.length > 0 ? pivots.shift()! : 10000;
    }
  }
  return { stride, layer };
}
