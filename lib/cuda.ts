/**
 * Attention on the CUDA device (internal: not exported from index.ts; used by
 * test/gpu and bench/gpu-attention.ts). Same arguments as attention():
 *
 *   q    f32        [nHeads,   nQ,  headDim]
 *   k, v f16|bf16   [nKvHeads, nKv, headDim]   (one dtype; strides allowed)
 *   out  f32        [nHeads,   nQ,  headDim]   (+ lse f32 [nHeads, nQ])
 *   keyMass f32     [nKvHeads, nKv]            (returnKeyMass)
 * GQA: query head h reads KV head floor(h / (nHeads / nKvHeads)).
 *
 * Supported: scale, causal, returnLse, out; on the decode path only (path
 * 'auto' or 'decode'; RangeError on 'prefill'): indices (sparse decode),
 * softcap, treeMask and returnKeyMass, with attention()'s semantics:
 *   softcap        logits s -> softcap * tanh(s / softcap) before the softmax
 *   treeMask       the last nQ keys are the draft tree: query i sees a tree
 *                  key only if it is i or an ancestor, and every earlier key
 *   returnKeyMass  keyMass f32 [nKvHeads, nKv]: per key position, its softmax
 *                  probability summed over the queries and the query heads of
 *                  its group (repeated indices add up; unseen keys get 0)
 * 'auto' picks decode when nQ <= 16 or any of these is given. Not on CUDA
 * (RangeError): mask (bool or additive), f32 K/V. headDim 64/128/256 on the
 * decode path, 64/128 on the prefill path. The prefill path rounds q and the
 * softmax probabilities to the K/V dtype (tensor cores); decode keeps f32.
 * Synchronous: inputs are copied to the device and the result back.
 * Without the CUDA build or a device it throws an Error with code 'ERR_NO_CUDA'.
 */
import { prepareAttention, type AttentionOptions, type AttentionResult } from './attention.js';
import { rangeError } from './errors.js';
import { native } from './native.js';
import type { FloatDType, Tensor } from './tensor.js';
import { checkInteger } from './validate.js';

export type CudaAttentionPath = 'auto' | 'decode' | 'prefill';
const PATHS: readonly CudaAttentionPath[] = ['auto', 'decode', 'prefill'];

/** Whether the CUDA attention can run here, and why not. */
export function cudaAvailability(): { available: boolean; reason: string; devices: string } {
  const c = native().backendInfo().cuda;
  if (!c.compiled) return { available: false, reason: 'this build has no CUDA backend (npm run build:cuda)', devices: '' };
  if (c.deviceCount < 1) return { available: false, reason: `no CUDA device (${c.error})`, devices: '' };
  return { available: true, reason: '', devices: c.devices };
}

/**
 * attention() on the CUDA device; `path` 'auto' picks decode for nQ <= 16
 * or when indices, softcap, treeMask or returnKeyMass are given.
 * `variant` selects a kernel variant for tests and tuning (0 = default;
 * decode 1 = cp.async pipeline; prefill 1 = 16 rows per warp with 64-key
 * tiles, 2 = the same at 1 block/SM). Shapes: see the module comment.
 */
export function cudaAttention(
  q: Tensor<'f32'>,
  k: Tensor<FloatDType>,
  v: Tensor<FloatDType>,
  options?: AttentionOptions,
  path: CudaAttentionPath = 'auto',
  variant = 0,
): AttentionResult {
  if (!PATHS.includes(path)) throw rangeError('path', `one of ${PATHS.join(', ')}`, path);
  checkInteger('variant', variant, 0, 2);
  const { params, result } = prepareAttention(q, k, v, options);
  native().cudaAttention({ ...params, path: PATHS.indexOf(path), variant });
  return result;
}
