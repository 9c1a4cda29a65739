/**
 * Small ONNX models built in memory for the attention benchmark's
 * onnxruntime-node baselines. The protobuf is hand-encoded by onnx-proto.ts
 * (shared with the tests' ONNX decoder graph), so no protobuf dependency is
 * needed.
 *
 * Graphs (batch 1 everywhere; the KV length is the symbolic dim "nkv"):
 *   plainDecode:  q f32 [nKvHeads, group, headDim], k/v T [nKvHeads, nkv, headDim]
 *                 -> Mul(q, scale) . Transpose(k) -> Softmax -> . v -> out f32
 *                 (f16 k/v are Cast to f32 first: the CPU EP has no f16 MatMul path
 *                 worth comparing against). GQA: the `group` query heads that
 *                 share a KV head are the rows of one matrix, so no KV is repeated.
 *   plainPrefill: q/k/v f32 [nHeads, S, headDim], mask f32 [S, S] (additive causal)
 *                 -> Mul . Transpose -> Add(mask) -> Softmax -> . v
 *   mhaDecode:    com.microsoft MultiHeadAttention, query T [1, 1, nHeads*headDim],
 *                 key/value T [1, nHeads, nkv, headDim] (BNSH: the cache as is)
 *   mhaPrefill:   MultiHeadAttention, query/key/value T [1, S, nHeads*headDim],
 *                 unidirectional=1 (causal)
 *   gqaDecode:    com.microsoft GroupQueryAttention, query [1, 1, nHeads*headDim],
 *                 key/value [1, 1, nKvHeads*headDim] (the newest token), past_key /
 *                 past_value [1, nKvHeads, nkv, headDim] (BNSH buffers holding nkv
 *                 slots; the newest token goes into slot seqlens_k), seqlens_k i32 [1]
 *                 = total - 1, total_sequence_length i32 scalar; outputs output,
 *                 present_key, present_value.
 *   gqaPrefill:   GroupQueryAttention without past: query/key/value [1, S, H*headDim],
 *                 seqlens_k = S - 1, total_sequence_length = S (causal by definition).
 */

import { ELEM, encodeModel, type NodeSpec, type OrtElem } from './onnx-proto.js';

export type { OrtElem };

// ---- the graphs --------------------------------------------------------------

export interface DecodeShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  scale: number;
}

/** Softmax(scale * q k^T) v per KV head; k/v in `kvElem`, q and out f32. */
export function plainDecodeModel(s: DecodeShape, kvElem: OrtElem): Uint8Array {
  const group = s.nHeads / s.nKvHeads;
  const nodes: NodeSpec[] = [];
  let k = 'k';
  let v = 'v';
  if (kvElem === 'float16') {
    nodes.push({ op: 'Cast', inputs: ['k'], outputs: ['k32'], attrs: { to: { i: ELEM.float32 } } });
    nodes.push({ op: 'Cast', inputs: ['v'], outputs: ['v32'], attrs: { to: { i: ELEM.float32 } } });
    k = 'k32';
    v = 'v32';
  }
  nodes.push(
    { op: 'Mul', inputs: ['q', 'scale'], outputs: ['qs'] },
    { op: 'Transpose', inputs: [k], outputs: ['kt'], attrs: { perm: { ints: [0, 2, 1] } } },
    { op: 'MatMul', inputs: ['qs', 'kt'], outputs: ['scores'] },
    { op: 'Softmax', inputs: ['scores'], outputs: ['probs'], attrs: { axis: { i: -1 } } },
    { op: 'MatMul', inputs: ['probs', v], outputs: ['out'] },
  );
  return encodeModel({
    name: 'plain_decode',
    nodes,
    inputs: [
      { name: 'q', elem: 'float32', dims: [s.nKvHeads, group, s.headDim] },
      { name: 'k', elem: kvElem, dims: [s.nKvHeads, 'nkv', s.headDim] },
      { name: 'v', elem: kvElem, dims: [s.nKvHeads, 'nkv', s.headDim] },
    ],
    outputs: [{ name: 'out', elem: 'float32', dims: [s.nKvHeads, group, s.headDim] }],
    initializers: [{ name: 'scale', elem: 'float32', dims: [], values: [s.scale] }],
  });
}

/** Causal prefill as plain ops with an additive [S, S] mask input. */
export function plainPrefillModel(nHeads: number, headDim: number, scale: number): Uint8Array {
  return encodeModel({
    name: 'plain_prefill',
    nodes: [
      { op: 'Mul', inputs: ['q', 'scale'], outputs: ['qs'] },
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: { ints: [0, 2, 1] } } },
      { op: 'MatMul', inputs: ['qs', 'kt'], outputs: ['scores'] },
      { op: 'Add', inputs: ['scores', 'mask'], outputs: ['masked'] },
      { op: 'Softmax', inputs: ['masked'], outputs: ['probs'], attrs: { axis: { i: -1 } } },
      { op: 'MatMul', inputs: ['probs', 'v'], outputs: ['out'] },
    ],
    inputs: [
      { name: 'q', elem: 'float32', dims: [nHeads, 's', headDim] },
      { name: 'k', elem: 'float32', dims: [nHeads, 's', headDim] },
      { name: 'v', elem: 'float32', dims: [nHeads, 's', headDim] },
      { name: 'mask', elem: 'float32', dims: ['s', 's'] },
    ],
    outputs: [{ name: 'out', elem: 'float32', dims: [nHeads, 's', headDim] }],
    initializers: [{ name: 'scale', elem: 'float32', dims: [], values: [scale] }],
  });
}

/** com.microsoft MultiHeadAttention over a BNSH cache (no GQA: nKvHeads must equal nHeads). */
export function mhaDecodeModel(s: DecodeShape, elem: OrtElem): Uint8Array {
  const hidden = s.nHeads * s.headDim;
  return encodeModel({
    name: 'mha_decode',
    contrib: true,
    nodes: [{
      op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['query', 'key', 'value'], outputs: ['output'],
      attrs: { num_heads: { i: s.nHeads }, scale: { f: s.scale } },
    }],
    inputs: [
      { name: 'query', elem, dims: [1, 1, hidden] },
      { name: 'key', elem, dims: [1, s.nHeads, 'nkv', s.headDim] },
      { name: 'value', elem, dims: [1, s.nHeads, 'nkv', s.headDim] },
    ],
    outputs: [{ name: 'output', elem, dims: [1, 1, hidden] }],
  });
}

/** MultiHeadAttention prefill, BSD inputs, causal via unidirectional=1. */
export function mhaPrefillModel(nHeads: number, headDim: number, scale: number, elem: OrtElem): Uint8Array {
  const hidden = nHeads * headDim;
  return encodeModel({
    name: 'mha_prefill',
    contrib: true,
    nodes: [{
      op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: ['query', 'key', 'value'], outputs: ['output'],
      attrs: { num_heads: { i: nHeads }, scale: { f: scale }, unidirectional: { i: 1 } },
    }],
    inputs: [
      { name: 'query', elem, dims: [1, 's', hidden] },
      { name: 'key', elem, dims: [1, 's', hidden] },
      { name: 'value', elem, dims: [1, 's', hidden] },
    ],
    outputs: [{ name: 'output', elem, dims: [1, 's', hidden] }],
  });
}

/** com.microsoft GroupQueryAttention decode step with a past KV buffer of nkv slots. */
export function gqaDecodeModel(s: DecodeShape, elem: OrtElem): Uint8Array {
  const hidden = s.nHeads * s.headDim;
  const kvHidden = s.nKvHeads * s.headDim;
  return encodeModel({
    name: 'gqa_decode',
    contrib: true,
    nodes: [{
      op: 'GroupQueryAttention', domain: 'com.microsoft',
      inputs: ['query', 'key', 'value', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length'],
      outputs: ['output', 'present_key', 'present_value'],
      attrs: { num_heads: { i: s.nHeads }, kv_num_heads: { i: s.nKvHeads }, scale: { f: s.scale } },
    }],
    inputs: [
      { name: 'query', elem, dims: [1, 1, hidden] },
      { name: 'key', elem, dims: [1, 1, kvHidden] },
      { name: 'value', elem, dims: [1, 1, kvHidden] },
      { name: 'past_key', elem, dims: [1, s.nKvHeads, 'nkv', s.headDim] },
      { name: 'past_value', elem, dims: [1, s.nKvHeads, 'nkv', s.headDim] },
      { name: 'seqlens_k', elem: 'int32', dims: [1] },
      { name: 'total_sequence_length', elem: 'int32', dims: [] },
    ],
    outputs: [
      { name: 'output', elem, dims: [1, 1, hidden] },
      { name: 'present_key', elem, dims: [1, s.nKvHeads, 'nkv', s.headDim] },
      { name: 'present_value', elem, dims: [1, s.nKvHeads, 'nkv', s.headDim] },
    ],
  });
}

/** GroupQueryAttention prompt (no past): causal over S tokens. */
export function gqaPrefillModel(nHeads: number, headDim: number, scale: number, elem: OrtElem): Uint8Array {
  const hidden = nHeads * headDim;
  return encodeModel({
    name: 'gqa_prefill',
    contrib: true,
    nodes: [{
      op: 'GroupQueryAttention', domain: 'com.microsoft',
      inputs: ['query', 'key', 'value', '', '', 'seqlens_k', 'total_sequence_length'],
      outputs: ['output', 'present_key', 'present_value'],
      attrs: { num_heads: { i: nHeads }, kv_num_heads: { i: nHeads }, scale: { f: scale } },
    }],
    inputs: [
      { name: 'query', elem, dims: [1, 's', hidden] },
      { name: 'key', elem, dims: [1, 's', hidden] },
      { name: 'value', elem, dims: [1, 's', hidden] },
      { name: 'seqlens_k', elem: 'int32', dims: [1] },
      { name: 'total_sequence_length', elem: 'int32', dims: [] },
    ],
    outputs: [
      { name: 'output', elem, dims: [1, 's', hidden] },
      { name: 'present_key', elem, dims: [1, nHeads, 's', headDim] },
      { name: 'present_value', elem, dims: [1, nHeads, 's', headDim] },
    ],
  });
}

/**
 * A byte bigram language model as an ONNX graph, to drive the Equal-Info
 * tokenizer through onnxruntime-node (bring-your-own model): input `prev`
 * int64 [n] (the previous byte, or 256 at a window start) -> Gather from a
 * [257, 256] logit table -> Softmax -> `probs` f32 [n, 256].
 */
export function byteBigramModel(logits: Float32Array): Uint8Array {
  if (logits.length !== 257 * 256) throw new RangeError(`logits: expected 257 x 256 values, received ${logits.length}`);
  return encodeModel({
    name: 'byte_bigram',
    nodes: [
      { op: 'Gather', inputs: ['table', 'prev'], outputs: ['rows'], attrs: { axis: { i: 0 } } },
      { op: 'Softmax', inputs: ['rows'], outputs: ['probs'], attrs: { axis: { i: -1 } } },
    ],
    inputs: [{ name: 'prev', elem: 'int64', dims: ['n'] }],
    outputs: [{ name: 'probs', elem: 'float32', dims: ['n', 256] }],
    initializers: [{ name: 'table', elem: 'float32', dims: [257, 256], values: Array.from(logits) }],
  });
}
