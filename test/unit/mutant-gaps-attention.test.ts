// attention()'s argument checks and the flat parameters it hands the native
// kernel (lib/attention.ts prepareAttention), pinned in full without running
// a kernel: defaults (scale 1/sqrt(headDim), softcap 0, causal false),
// strides, dtype codes (f32 0, f16 1, bf16 2: lib/native.ts), masks, trees,
// indices and outputs, and every refusal by message.
import { describe, expect, test } from 'vitest';
import { MAX_TREE_NODES, prepareAttention } from '../../lib/attention.js';

const f32 = (shape: number[], n = shape.reduce((a, b) => a * b, 1)) => ({ dtype: 'f32' as const, shape, data: new Float32Array(n) });
const u16 = (dtype: 'f16' | 'bf16', shape: number[]) => ({ dtype, shape, data: new Uint16Array(shape.reduce((a, b) => a * b, 1)) });

describe('prepareAttention: parameters', () => {
  test('defaults, GQA and strided keys', () => {
    const q = f32([4, 3, 16]);
    const k = { ...f32([2, 5, 16], 2 * 40 * 16), strides: [40 * 16, 16, 1] };
    const v = u16('bf16', [2, 5, 16]);
    const { params, result } = prepareAttention(q, k, v, undefined);
    expect(params).toMatchObject({
      nHeads: 4, nKvHeads: 2, nQ: 3, nKv: 5, headDim: 16, qStrides: [48, 16], kDtype: 0, kStrides: [640, 16],
      vDtype: 2, vStrides: [80, 16], scale: 0.25, softcap: 0, causal: false, nSel: 0,
    });
    expect(params.q).toBe(q.data);
    expect(params.k).toBe(k.data);
    expect(params.v).toBe(v.data);
    expect(params.out).toHaveLength(4 * 3 * 16);
    for (const key of ['boolMask', 'additiveMask', 'treeParents', 'indices', 'lse', 'keyMass']) expect(params).not.toHaveProperty(key);
    expect(result.output).toEqual({ dtype: 'f32', shape: [4, 3, 16], data: params.out });
    expect(result).not.toHaveProperty('lse');
    expect(result).not.toHaveProperty('keyMass');
  });
  test('every option', () => {
    const out = new Float32Array(2 * 2 * 4);
    const { params, result } = prepareAttention(f32([2, 2, 4]), u16('f16', [1, 3, 4]), f32([1, 3, 4]), {
      scale: 0.5, softcap: 30, causal: true, returnLse: true, returnKeyMass: true, out,
      mask: { dtype: 'bool', shape: [2, 3], data: Uint8Array.of(1, 1, 0, 1, 1, 1) },
      treeMask: [-1, 0], indices: { dtype: 'i32', shape: [1, 2], data: Int32Array.of(2, 0) },
    });
    expect(params).toMatchObject({ kDtype: 1, vDtype: 0, scale: 0.5, softcap: 30, causal: true, nSel: 2 });
    expect(params.out).toBe(out);
    expect(Array.from(params.boolMask!)).toEqual([1, 1, 0, 1, 1, 1]);
    expect(Array.from(params.treeParents!)).toEqual([-1, 0]);
    expect(Array.from(params.indices!)).toEqual([2, 0]);
    expect(params.lse).toHaveLength(4);
    expect(params.keyMass).toHaveLength(3);
    expect(result.lse).toEqual({ dtype: 'f32', shape: [2, 2], data: params.lse });
    expect(result.keyMass).toEqual({ dtype: 'f32', shape: [1, 3], data: params.keyMass });
  });
  test('an f32 mask is additive; a strided indices tensor is made dense; a longer mask buffer is cut to nQ * nKv', () => {
    const mask = { dtype: 'f32' as const, shape: [1, 3], data: Float32Array.of(0, -Infinity, 0) };
    const p1 = prepareAttention(f32([2, 1, 2]), f32([2, 3, 2]), f32([2, 3, 2]), { mask, indices: { dtype: 'i32', shape: [2, 2], strides: [3, 1], data: Int32Array.of(0, 2, 9, 1, 1, 9) } }).params;
    expect(Array.from(p1.additiveMask!)).toEqual([0, -Infinity, 0]);
    expect(p1).not.toHaveProperty('boolMask');
    expect(Array.from(p1.indices!)).toEqual([0, 2, 1, 1]);
    const dense = Int32Array.of(0, 1, 2, 0);
    expect(prepareAttention(f32([2, 1, 2]), f32([2, 3, 2]), f32([2, 3, 2]), { indices: { dtype: 'i32', shape: [2, 2], data: dense } }).params.indices!.buffer).toBe(dense.buffer);
    const long = { dtype: 'bool' as const, shape: [1, 2], strides: [2, 1], data: Uint8Array.of(1, 0, 7, 7) };
    expect(Array.from(prepareAttention(f32([1, 1, 2]), f32([1, 2, 2]), f32([1, 2, 2]), { mask: long }).params.boolMask!)).toEqual([1, 0]);
  });
  test('a tree of exactly nKv nodes, and MAX_TREE_NODES', () => {
    expect(MAX_TREE_NODES).toBe(4096);
    expect(Array.from(prepareAttention(f32([1, 3, 2]), f32([1, 3, 2]), f32([1, 3, 2]), { treeMask: Int32Array.of(-1, 0, 1) }).params.treeParents!)).toEqual([-1, 0, 1]);
    const n = MAX_TREE_NODES;
    const tree = Array.from({ length: n }, (_, i) => i - 1);
    expect(prepareAttention(f32([1, n, 1]), f32([1, n, 1]), f32([1, n, 1]), { treeMask: tree }).params.treeParents).toHaveLength(n);
    const m = n + 1;
    expect(() => prepareAttention(f32([1, m, 1]), f32([1, m, 1]), f32([1, m, 1]), { treeMask: Array.from({ length: m }, (_, i) => i - 1) }))
      .toThrow(new RangeError(`options.treeMask: expected a tree of at most ${n} nodes, received "${m} nodes"`));
  });
});

describe('prepareAttention: refusals by message', () => {
  const Q = f32([2, 2, 4]), K = f32([1, 3, 4]), V = f32([1, 3, 4]);
  const cases: [string, unknown[], ErrorConstructor, string][] = [
    ['headDim', [Q, f32([1, 3, 5]), f32([1, 3, 5]), {}], RangeError, "k.shape[2] (headDim): expected q's headDim = 4, received 5"],
    ['v shape', [Q, K, f32([1, 2, 4]), {}], RangeError, 'v.shape: expected [1, 3, 4] (the shape of k), received "[1, 2, 4]"'],
    ['v heads', [Q, K, f32([2, 3, 4]), {}], RangeError, 'v.shape: expected [1, 3, 4] (the shape of k), received "[2, 3, 4]"'],
    ['v dim', [Q, K, f32([1, 3, 3]), {}], RangeError, 'v.shape: expected [1, 3, 4] (the shape of k), received "[1, 3, 3]"'],
    ['no heads', [f32([0, 2, 4]), f32([0, 3, 4]), f32([0, 3, 4]), {}], RangeError, 'q.shape[0] (nHeads): expected at least 1 head, received 0'],
    ['headDim 0', [f32([1, 2, 0]), f32([1, 3, 0]), f32([1, 3, 0]), {}], RangeError, 'q.shape[2] (headDim): expected headDim >= 1, received 0'],
    ['GQA', [f32([3, 2, 4]), f32([2, 3, 4]), f32([2, 3, 4]), {}], RangeError, 'k.shape[0] (nKvHeads): expected a divisor of nHeads = 3 (GQA), received 2'],
    ['no kv heads', [Q, f32([0, 3, 4]), f32([0, 3, 4]), {}], RangeError, 'k.shape[0] (nKvHeads): expected a divisor of nHeads = 2 (GQA), received 0'],
    ['scale', [Q, K, V, { scale: 0 }], RangeError, 'options.scale: expected a positive number, received 0'],
    ['softcap', [Q, K, V, { softcap: -1 }], RangeError, 'options.softcap: expected a positive number, received -1'],
    ['causal', [Q, K, V, { causal: 1 }], TypeError, 'options.causal: expected a boolean, received 1'],
    ['returnLse', [Q, K, V, { returnLse: 'y' }], TypeError, 'options.returnLse: expected a boolean, received "y"'],
    ['returnKeyMass', [Q, K, V, { returnKeyMass: 0 }], TypeError, 'options.returnKeyMass: expected a boolean, received 0'],
    ['unknown', [Q, K, V, { casual: true }], TypeError, 'options: unknown option "casual" (did you mean "causal"?)'],
    ['mask shape', [Q, K, V, { mask: { dtype: 'bool', shape: [2, 2], data: new Uint8Array(4) } }], RangeError, 'options.mask.shape: expected [nQ, nKv] = [2, 3], received "[2, 2]"'],
    ['mask rows', [Q, K, V, { mask: { dtype: 'bool', shape: [3, 3], data: new Uint8Array(9) } }], RangeError, 'options.mask.shape: expected [nQ, nKv] = [2, 3], received "[3, 3]"'],
    ['mask strides', [Q, K, V, { mask: { dtype: 'bool', shape: [2, 3], strides: [4, 1], data: new Uint8Array(8) } }], RangeError, 'options.mask.strides: expected a contiguous [nQ, nKv] mask, received "[4, 1]"'],
    ['tree type', [Q, K, V, { treeMask: 'x' }], TypeError, 'options.treeMask: expected a parent array (Int32Array or number[]) of length nQ = 2, received "x"'],
    ['tree length', [Q, K, V, { treeMask: [-1] }], RangeError, 'options.treeMask.length: expected nQ = 2, received 1'],
    ['tree > nKv', [f32([1, 4, 4]), K, V, { treeMask: [-1, 0, 1, 2] }], RangeError, 'options.treeMask: expected a tree of at most nKv = 3 nodes (the tree is the last nQ keys), received "4 nodes"'],
    ['tree self', [Q, K, V, { treeMask: [-1, 1] }], RangeError, 'options.treeMask[1]: expected -1 (a root) or the index of an earlier node in [0, 0], received 1'],
    ['tree -2', [Q, K, V, { treeMask: [-2, 0] }], RangeError, 'options.treeMask[0]: expected -1 (a root) or the index of an earlier node in [0, -1], received -2'],
    ['tree 0.5', [Q, K, V, { treeMask: [-1, 0.5] }], RangeError, 'options.treeMask[1]: expected -1 (a root) or the index of an earlier node in [0, 0], received 0.5'],
    ['tree string', [Q, K, V, { treeMask: [-1, '0'] }], RangeError, 'options.treeMask[1]: expected -1 (a root) or the index of an earlier node in [0, 0], received "0"'],
    ['indices heads', [Q, K, V, { indices: { dtype: 'i32', shape: [2, 1], data: new Int32Array(2) } }], RangeError, 'options.indices.shape[0]: expected nKvHeads = 1, received 2'],
    ['indices nKv', [Q, K, V, { indices: { dtype: 'i32', shape: [1, 2], data: Int32Array.of(0, 3) } }], RangeError, 'options.indices[0][1]: expected a key position in [0, 2], received 3'],
    ['indices -1', [Q, K, V, { indices: { dtype: 'i32', shape: [1, 2], data: Int32Array.of(-1, 0) } }], RangeError, 'options.indices[0][0]: expected a key position in [0, 2], received -1'],
    ['out type', [Q, K, V, { out: new Float64Array(16) }], TypeError, 'options.out: expected a Float32Array of 16 elements, received Float64Array(16)'],
    ['out length', [Q, K, V, { out: new Float32Array(15) }], RangeError, 'options.out.length: expected 16 (nHeads * nQ * headDim), received 15'],
    ['out shared', [Q, K, V, { out: new Float32Array(new SharedArrayBuffer(64)) }], TypeError, 'options.out: expected a typed array over an ArrayBuffer, received one over a SharedArrayBuffer'],
  ];
  for (const [name, args, kind, message] of cases) {
    test(`${name}: ${message}`, () => {
      const run = () => prepareAttention(args[0], args[1], args[2], args[3]);
      expect(run).toThrow(kind);
      expect(run).toThrow(message);
    });
  }
  test('out over each input is refused by name', () => {
    const buf = new ArrayBuffer(4 * 64);
    const out = new Float32Array(buf, 0, 16);
    const over = (n: number) => new Float32Array(buf, 64, n);
    expect(() => prepareAttention({ ...Q, data: over(16) }, K, V, { out })).toThrow('options.out: expected an output that shares no memory with the input q');
    expect(() => prepareAttention(Q, { ...K, data: over(12) }, V, { out })).toThrow('with the input k,');
    expect(() => prepareAttention(Q, K, { ...V, data: over(12) }, { out })).toThrow('with the input v,');
    expect(() => prepareAttention(Q, K, V, { out, mask: { dtype: 'f32', shape: [2, 3], data: over(6) } })).toThrow('with the input options.mask,');
    expect(() => prepareAttention(Q, K, V, { out, indices: { dtype: 'i32', shape: [1, 2], data: new Int32Array(buf, 64, 2) } })).toThrow('with the input options.indices,');
  });
});
