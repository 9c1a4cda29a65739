// Bad input: the public API throws TypeError / RangeError whose message starts
// with the argument's name, the Promise form rejects instead of throwing, a
// failed call leaves a caller-provided `out` untouched, and the native addon
// called directly with hostile flat params throws a JS error instead of
// crashing (this file finishing proves the process survived).
import { describe, expect, test } from 'vitest';
import {
  attention,
  attentionAsync,
  type AttentionOptions,
  type FloatDType,
  type Tensor,
} from '../../lib/index.js';
import { native, type NativeAttentionParams } from '../../lib/native.js';
import { mulberry32, randomF32 } from '../reference/random.js';

// A valid call: nHeads 4, nKvHeads 2, nQ 3, nKv 10, headDim 8.
const H = 4;
const KVH = 2;
const NQ = 3;
const NKV = 10;
const D = 8;

interface Call {
  q: unknown;
  k: unknown;
  v: unknown;
  options?: unknown;
}

function validCall(): { q: Tensor<'f32'>; k: Tensor<FloatDType>; v: Tensor<FloatDType>; options: AttentionOptions } {
  const rng = mulberry32(42);
  return {
    q: { dtype: 'f32', shape: [H, NQ, D], data: randomF32(rng, H * NQ * D) },
    k: { dtype: 'f32', shape: [KVH, NKV, D], data: randomF32(rng, KVH * NKV * D) },
    v: { dtype: 'f32', shape: [KVH, NKV, D], data: randomF32(rng, KVH * NKV * D) },
    options: {},
  };
}

function detachedF32(n: number): Float32Array {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

type ErrorCtor = typeof TypeError | typeof RangeError;

/** [label, how to break a valid call, error type, message pattern (names the argument)]. */
const BAD: [string, (c: Call) => void, ErrorCtor, RegExp][] = [
  // q, k, v: not tensors at all.
  ['q as a plain array', (c) => { c.q = [1, 2, 3]; }, TypeError, /^q: expected a tensor/],
  ['q as a Float32Array', (c) => { c.q = new Float32Array(H * NQ * D); }, TypeError, /^q: expected a tensor/],
  ['q null', (c) => { c.q = null; }, TypeError, /^q: /],
  ['q undefined', (c) => { c.q = undefined; }, TypeError, /^q: /],
  ['k a number', (c) => { c.k = 3; }, TypeError, /^k: /],
  ['v a string', (c) => { c.v = 'v'; }, TypeError, /^v: /],
  // Wrong dtype.
  ['q dtype f16', (c) => { (c.q as Tensor).dtype = 'f16'; }, TypeError, /^q\.dtype: expected 'f32', received "f16"/],
  ['k dtype i32', (c) => { (c.k as Tensor).dtype = 'i32'; }, TypeError, /^k\.dtype: /],
  ['v dtype f64', (c) => { (c.v as { dtype: string }).dtype = 'f64'; }, TypeError, /^v\.dtype: /],
  ['k dtype missing', (c) => { delete (c.k as { dtype?: string }).dtype; }, TypeError, /^k\.dtype: /],
  // Wrong data array type.
  ['q data Float64Array', (c) => { (c.q as { data: unknown }).data = new Float64Array(H * NQ * D); }, TypeError, /^q\.data: expected a Float32Array/],
  ['q data plain array', (c) => { (c.q as { data: unknown }).data = new Array(H * NQ * D).fill(0); }, TypeError, /^q\.data: /],
  ['k f16 with Float32Array data', (c) => { (c.k as Tensor).dtype = 'f16'; }, TypeError, /^k\.data: expected a Uint16Array/],
  ['v f32 with Uint16Array data', (c) => { (c.v as { data: unknown }).data = new Uint16Array(KVH * NKV * D); }, TypeError, /^v\.data: expected a Float32Array/],
  ['k bf16 with Int16Array data', (c) => { c.k = { dtype: 'bf16', shape: [KVH, NKV, D], data: new Int16Array(KVH * NKV * D) }; }, TypeError, /^k\.data: /],
  // Wrong shape or length.
  ['q rank 2', (c) => { (c.q as { shape: unknown }).shape = [H * NQ, D]; }, TypeError, /^q\.shape: /],
  ['q shape a string', (c) => { (c.q as { shape: unknown }).shape = '4,3,8'; }, TypeError, /^q\.shape: /],
  ['q shape non-integer', (c) => { (c.q as { shape: unknown }).shape = [H, 1.5, D]; }, RangeError, /^q\.shape\[1\] \(nQ\): /],
  ['q shape negative', (c) => { (c.q as { shape: unknown }).shape = [H, NQ, -D]; }, RangeError, /^q\.shape\[2\] \(headDim\): /],
  ['q shape NaN', (c) => { (c.q as { shape: unknown }).shape = [NaN, NQ, D]; }, RangeError, /^q\.shape\[0\] \(nHeads\): /],
  ['q shape a string element', (c) => { (c.q as { shape: unknown }).shape = [H, '3', D]; }, TypeError, /^q\.shape\[1\] \(nQ\): /],
  ['q data too short', (c) => { (c.q as { data: unknown }).data = new Float32Array(H * NQ * D - 1); }, RangeError, /^q\.data\.length: /],
  ['q data too long', (c) => { (c.q as { data: unknown }).data = new Float32Array(H * NQ * D + 1); }, RangeError, /^q\.data\.length: /],
  ['v data too short', (c) => { (c.v as { data: unknown }).data = new Float32Array(5); }, RangeError, /^v\.data\.length: /],
  ['k headDim mismatch', (c) => { c.k = { dtype: 'f32', shape: [KVH, NKV, D + 1], data: new Float32Array(KVH * NKV * (D + 1)) }; }, RangeError, /^k\.shape\[2\] \(headDim\): /],
  ['v nKv mismatch', (c) => { c.v = { dtype: 'f32', shape: [KVH, NKV + 1, D], data: new Float32Array(KVH * (NKV + 1) * D) }; }, RangeError, /^v\.shape: /],
  ['v headDim mismatch', (c) => { c.v = { dtype: 'f32', shape: [KVH, NKV, D - 1], data: new Float32Array(KVH * NKV * (D - 1)) }; }, RangeError, /^v\.shape: /],
  ['nHeads not divisible by nKvHeads', (c) => {
    c.k = { dtype: 'f32', shape: [3, NKV, D], data: new Float32Array(3 * NKV * D) };
    c.v = { dtype: 'f32', shape: [3, NKV, D], data: new Float32Array(3 * NKV * D) };
  }, RangeError, /^k\.shape\[0\] \(nKvHeads\): expected a divisor of nHeads = 4\b.*received 3$/],
  ['nKvHeads > nHeads', (c) => {
    c.k = { dtype: 'f32', shape: [8, NKV, D], data: new Float32Array(8 * NKV * D) };
    c.v = { dtype: 'f32', shape: [8, NKV, D], data: new Float32Array(8 * NKV * D) };
  }, RangeError, /^k\.shape\[0\] \(nKvHeads\): /],
  ['nHeads 0', (c) => { c.q = { dtype: 'f32', shape: [0, NQ, D], data: new Float32Array(0) }; }, RangeError, /^q\.shape\[0\] \(nHeads\): /],
  ['headDim 0', (c) => {
    c.q = { dtype: 'f32', shape: [H, NQ, 0], data: new Float32Array(0) };
    c.k = { dtype: 'f32', shape: [KVH, NKV, 0], data: new Float32Array(0) };
    c.v = { dtype: 'f32', shape: [KVH, NKV, 0], data: new Float32Array(0) };
  }, RangeError, /^q\.shape\[2\] \(headDim\): /],
  // Strides.
  ['k strides wrong length', (c) => { (c.k as { strides: unknown }).strides = [NKV * D, D]; }, TypeError, /^k\.strides: /],
  ['k strides not an array', (c) => { (c.k as { strides: unknown }).strides = 'dense'; }, TypeError, /^k\.strides: /],
  ['k inner stride 2', (c) => { (c.k as { strides: unknown }).strides = [NKV * D, D, 2]; }, RangeError, /^k\.strides\[2\]: /],
  ['k negative stride', (c) => { (c.k as { strides: unknown }).strides = [-NKV * D, D, 1]; }, RangeError, /^k\.strides\[0\]: /],
  ['v non-integer stride', (c) => { (c.v as { strides: unknown }).strides = [NKV * D, 8.5, 1]; }, RangeError, /^v\.strides\[1\]: /],
  ['q strides beyond the data', (c) => { (c.q as { strides: unknown }).strides = [NQ * D + 1, D, 1]; }, RangeError, /^q\.data\.length: /],
  ['k row stride beyond the data', (c) => { (c.k as { strides: unknown }).strides = [NKV * D, D + 1, 1]; }, RangeError, /^k\.data\.length: /],
  ['misspelled tensor key', (c) => { (c.k as Record<string, unknown>).stride = [NKV * D, D, 1]; }, TypeError, /^k: unknown option "stride" \(did you mean "strides"\?\)/],
  // Detached buffers.
  ['q detached', (c) => { (c.q as { data: unknown }).data = detachedF32(H * NQ * D); }, TypeError, /^q\.data: .*detached/],
  ['v detached', (c) => { (c.v as { data: unknown }).data = detachedF32(KVH * NKV * D); }, TypeError, /^v\.data: .*detached/],
  // Options object.
  ['options a number', (c) => { c.options = 5; }, TypeError, /^options: expected an options object/],
  ['options a string', (c) => { c.options = 'causal'; }, TypeError, /^options: /],
  ['options null', (c) => { c.options = null; }, TypeError, /^options: /],
  ['options an array', (c) => { c.options = [true]; }, TypeError, /^options: /],
  ['options a function', (c) => { c.options = () => ({}); }, TypeError, /^options: /],
  // Misspelled options.
  ['casual', (c) => { c.options = { casual: true }; }, TypeError, /^options: unknown option "casual" \(did you mean "causal"\?\)/],
  ['returnLSE', (c) => { c.options = { returnLSE: true }; }, TypeError, /did you mean "returnLse"/],
  ['soft_cap', (c) => { c.options = { soft_cap: 5 }; }, TypeError, /did you mean "softcap"/],
  ['indexes', (c) => { c.options = { indexes: undefined }; }, TypeError, /did you mean "indices"/],
  ['treemask', (c) => { c.options = { treemask: [-1, 0, 1] }; }, TypeError, /did you mean "treeMask"/],
  ['returnKeymass', (c) => { c.options = { returnKeymass: true }; }, TypeError, /did you mean "returnKeyMass"/],
  ['scael', (c) => { c.options = { scael: 1 }; }, TypeError, /did you mean "scale"/],
  ['outt', (c) => { c.options = { outt: new Float32Array(1) }; }, TypeError, /did you mean "out"/],
  ['unrelated key lists the known options', (c) => { c.options = { temperature: 1 }; }, TypeError, /^options: unknown option "temperature"; known options: scale, causal/],
  // scale and softcap.
  ...([NaN, 0, -1, -0, Infinity, -Infinity] as number[]).flatMap((x): [string, (c: Call) => void, ErrorCtor, RegExp][] => [
    [`scale ${x}`, (c) => { c.options = { scale: x }; }, RangeError, /^options\.scale: /],
    [`softcap ${x}`, (c) => { c.options = { softcap: x }; }, RangeError, /^options\.softcap: /],
  ]),
  ['scale a string', (c) => { c.options = { scale: '0.5' }; }, TypeError, /^options\.scale: expected a number, received "0.5"/],
  ['softcap null', (c) => { c.options = { softcap: null }; }, TypeError, /^options\.softcap: /],
  ['scale a bigint', (c) => { c.options = { scale: 1n }; }, TypeError, /^options\.scale: /],
  // Booleans.
  ['causal 1', (c) => { c.options = { causal: 1 }; }, TypeError, /^options\.causal: expected a boolean, received 1/],
  ['returnLse "yes"', (c) => { c.options = { returnLse: 'yes' }; }, TypeError, /^options\.returnLse: /],
  ['returnKeyMass null', (c) => { c.options = { returnKeyMass: null }; }, TypeError, /^options\.returnKeyMass: /],
  // Masks.
  ['mask wrong shape', (c) => { c.options = { mask: { dtype: 'bool', shape: [NQ, NKV - 1], data: new Uint8Array(NQ * (NKV - 1)) } }; }, RangeError, /^options\.mask\.shape: expected \[nQ, nKv\] = \[3, 10\]/],
  ['mask transposed', (c) => { c.options = { mask: { dtype: 'f32', shape: [NKV, NQ], data: new Float32Array(NQ * NKV) } }; }, RangeError, /^options\.mask\.shape: /],
  ['mask rank 3', (c) => { c.options = { mask: { dtype: 'bool', shape: [1, NQ, NKV], data: new Uint8Array(NQ * NKV) } }; }, TypeError, /^options\.mask\.shape: /],
  ['mask dtype i32', (c) => { c.options = { mask: { dtype: 'i32', shape: [NQ, NKV], data: new Int32Array(NQ * NKV) } }; }, TypeError, /^options\.mask\.dtype: /],
  ['mask data too short', (c) => { c.options = { mask: { dtype: 'bool', shape: [NQ, NKV], data: new Uint8Array(NQ * NKV - 1) } }; }, RangeError, /^options\.mask\.data\.length: /],
  ['bool mask with Float32Array data', (c) => { c.options = { mask: { dtype: 'bool', shape: [NQ, NKV], data: new Float32Array(NQ * NKV) } }; }, TypeError, /^options\.mask\.data: /],
  ['mask strided', (c) => { c.options = { mask: { dtype: 'bool', shape: [NQ, NKV], data: new Uint8Array(NQ * (NKV + 2)), strides: [NKV + 2, 1] } }; }, RangeError, /^options\.mask\.strides: /],
  ['mask as a bare Uint8Array', (c) => { c.options = { mask: new Uint8Array(NQ * NKV) }; }, TypeError, /^options\.mask: /],
  // Tree.
  ['tree parent == i', (c) => { c.options = { treeMask: [-1, 1, 0] }; }, RangeError, /^options\.treeMask\[1\]: /],
  ['tree parent > i', (c) => { c.options = { treeMask: [-1, 0, 2] }; }, RangeError, /^options\.treeMask\[2\]: /],
  ['tree root not -1', (c) => { c.options = { treeMask: Int32Array.from([0, 0, 1]) }; }, RangeError, /^options\.treeMask\[0\]: /],
  ['tree parent < -1', (c) => { c.options = { treeMask: [-1, -2, 0] }; }, RangeError, /^options\.treeMask\[1\]: /],
  ['tree parent non-integer', (c) => { c.options = { treeMask: [-1, 0.5, 0] }; }, RangeError, /^options\.treeMask\[1\]: /],
  ['tree parent a string', (c) => { c.options = { treeMask: [-1, '0', 0] }; }, RangeError, /^options\.treeMask\[1\]: /],
  ['tree too short', (c) => { c.options = { treeMask: [-1, 0] }; }, RangeError, /^options\.treeMask\.length: expected nQ = 3, received 2/],
  ['tree too long', (c) => { c.options = { treeMask: Int32Array.from([-1, 0, 1, 2]) }; }, RangeError, /^options\.treeMask\.length: /],
  ['tree a Float32Array', (c) => { c.options = { treeMask: Float32Array.from([-1, 0, 1]) }; }, TypeError, /^options\.treeMask: /],
  ['tree a string', (c) => { c.options = { treeMask: '-1,0,1' }; }, TypeError, /^options\.treeMask: /],
  ['tree longer than nKv', (c) => {
    c.k = { dtype: 'f32', shape: [KVH, 2, D], data: new Float32Array(KVH * 2 * D) };
    c.v = { dtype: 'f32', shape: [KVH, 2, D], data: new Float32Array(KVH * 2 * D) };
    c.options = { treeMask: [-1, 0, 1] };
  }, RangeError, /^options\.treeMask: /],
  ['tree over MAX_TREE_NODES nodes', (c) => {
    const n = 4097; // MAX_TREE_NODES + 1, with headDim 1 to stay small
    c.q = { dtype: 'f32', shape: [1, n, 1], data: new Float32Array(n) };
    c.k = { dtype: 'f32', shape: [1, n, 1], data: new Float32Array(n) };
    c.v = { dtype: 'f32', shape: [1, n, 1], data: new Float32Array(n) };
    c.options = { treeMask: Int32Array.from({ length: n }, (_, i) => i - 1) };
  }, RangeError, /^options\.treeMask: expected a tree of at most 4096 nodes, received "4097 nodes"/],
  // Indices.
  ['index == nKv', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 3], data: Int32Array.from([0, 1, 2, 3, 4, NKV]) } }; }, RangeError, /^options\.indices\[1\]\[2\]: expected a key position in \[0, 9\], received 10/],
  ['index -1', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 3], data: Int32Array.from([0, -1, 2, 3, 4, 5]) } }; }, RangeError, /^options\.indices\[0\]\[1\]: /],
  ['index huge', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 1], data: Int32Array.from([2 ** 31 - 1, 0]) } }; }, RangeError, /^options\.indices\[0\]\[0\]: /],
  ['strided index out of range', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 2], data: Int32Array.from([0, 1, 99, 2, NKV]), strides: [3, 1] } }; }, RangeError, /^options\.indices\[1\]\[1\]: /],
  ['non-integer indices (Float32Array data)', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 2], data: Float32Array.from([0.5, 1, 2, 3]) } }; }, TypeError, /^options\.indices\.data: /],
  ['non-integer indices (number[] data)', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 2], data: [0.5, 1, 2, 3] } }; }, TypeError, /^options\.indices\.data: /],
  ['indices dtype f32', (c) => { c.options = { indices: { dtype: 'f32', shape: [KVH, 2], data: new Float32Array(4) } }; }, TypeError, /^options\.indices\.dtype: /],
  ['indices rank 1', (c) => { c.options = { indices: { dtype: 'i32', shape: [4], data: new Int32Array(4) } }; }, TypeError, /^options\.indices\.shape: /],
  ['indices wrong nKvHeads', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH + 1, 2], data: new Int32Array((KVH + 1) * 2) } }; }, RangeError, /^options\.indices\.shape\[0\]: expected nKvHeads = 2/],
  ['indices data too short', (c) => { c.options = { indices: { dtype: 'i32', shape: [KVH, 2], data: new Int32Array(3) } }; }, RangeError, /^options\.indices\.data\.length: /],
  ['indices as a bare Int32Array', (c) => { c.options = { indices: new Int32Array(4) }; }, TypeError, /^options\.indices: /],
  // out.
  ['out too short', (c) => { c.options = { out: new Float32Array(H * NQ * D - 1) }; }, RangeError, /^options\.out\.length: expected 96/],
  ['out too long', (c) => { c.options = { out: new Float32Array(H * NQ * D + 8) }; }, RangeError, /^options\.out\.length: /],
  ['out a Float64Array', (c) => { c.options = { out: new Float64Array(H * NQ * D) }; }, TypeError, /^options\.out: /],
  ['out a plain array', (c) => { c.options = { out: new Array(H * NQ * D).fill(0) }; }, TypeError, /^options\.out: /],
];

function freshCall(breakIt: (c: Call) => void): Call {
  const c: Call = validCall();
  breakIt(c);
  return c;
}

describe('the valid base call works (so the failures below are the checks)', () => {
  test('sync and async', async () => {
    const c = validCall();
    expect(attention(c.q, c.k, c.v, c.options).output.data.length).toBe(H * NQ * D);
    expect((await attentionAsync(c.q, c.k, c.v, c.options)).output.data.length).toBe(H * NQ * D);
  });
});

describe('attention rejects bad arguments, naming them', () => {
  for (const [label, breakIt, ErrorType, pattern] of BAD) {
    test(label, async () => {
      const c = freshCall(breakIt);
      const call = () => attention(c.q as never, c.k as never, c.v as never, c.options as never);
      let thrown: unknown;
      try {
        call();
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `${label}: should throw`).toBeInstanceOf(ErrorType);
      expect((thrown as Error).message, label).toMatch(pattern);

      // The promise form rejects with the same error and never throws synchronously.
      let promise: Promise<unknown> | undefined;
      expect(() => {
        promise = attentionAsync(c.q as never, c.k as never, c.v as never, c.options as never);
      }, `${label}: attentionAsync must not throw synchronously`).not.toThrow();
      expect(promise).toBeInstanceOf(Promise);
      const rejected = await promise!.then(() => undefined, (e: unknown) => e);
      expect(rejected, `${label}: attentionAsync should reject`).toBeInstanceOf(ErrorType);
      expect((rejected as Error).message).toBe((thrown as Error).message);
    });
  }
});

describe('a failed call leaves a caller-provided out untouched', () => {
  const SENTINEL = 42.5;
  const failing: [string, AttentionOptions][] = [
    ['bad index', { indices: { dtype: 'i32', shape: [KVH, 2], data: Int32Array.from([0, 1, 2, NKV]) } }],
    ['bad tree', { treeMask: [-1, 0, 5] }],
    ['bad mask shape', { mask: { dtype: 'bool', shape: [NQ, 1], data: new Uint8Array(NQ) } }],
    ['bad scale', { scale: NaN }],
    ['misspelled option', { returnLSE: true } as AttentionOptions],
    ['bad softcap', { softcap: -1 }],
  ];
  for (const [label, options] of failing) {
    test(label, async () => {
      const c = validCall();
      const out = new Float32Array(H * NQ * D).fill(SENTINEL);
      const opts = { ...options, out };
      expect(() => attention(c.q, c.k, c.v, opts)).toThrow();
      await expect(attentionAsync(c.q, c.k, c.v, opts)).rejects.toThrow();
      expect(out.every((x) => x === SENTINEL)).toBe(true);
    });
  }

  test('out aliasing q is refused (the kernel reads q while writing out)', async () => {
    const c = validCall();
    const qData = c.q.data;
    const before = new Float32Array(qData);
    expect(() => attention(c.q, c.k, c.v, { out: qData })).toThrow(/out/);
    await expect(attentionAsync(c.q, c.k, c.v, { out: qData })).rejects.toThrow(/out/);
    expect(qData).toEqual(before);
  });

  test('a bad input tensor does not touch out, q, k or v', () => {
    const c = validCall();
    const out = new Float32Array(H * NQ * D).fill(SENTINEL);
    const kBefore = new Float32Array(c.k.data as Float32Array);
    const bad = { ...c.v, shape: [KVH, NKV, D + 1] };
    expect(() => attention(c.q, c.k, bad, { out })).toThrow(RangeError);
    expect(out.every((x) => x === SENTINEL)).toBe(true);
    expect(c.k.data).toEqual(kBefore);
  });
});

// ---------------------------------------------------------------------------
// The addon called directly: the binding must re-check everything memory
// safety depends on and throw (or reject) with a JS error, never crash.

function baseParams(): NativeAttentionParams {
  const rng = mulberry32(7);
  return {
    nHeads: H, nKvHeads: KVH, nQ: NQ, nKv: NKV, headDim: D,
    q: randomF32(rng, H * NQ * D), qStrides: [NQ * D, D],
    k: randomF32(rng, KVH * NKV * D), kDtype: 0, kStrides: [NKV * D, D],
    v: randomF32(rng, KVH * NKV * D), vDtype: 0, vStrides: [NKV * D, D],
    scale: 0.3, softcap: 0, causal: true,
    boolMask: new Uint8Array(NQ * NKV).fill(1),
    treeParents: Int32Array.from([-1, 0, 0]),
    indices: Int32Array.from([0, 3, 9, 1, 2, 8]), nSel: 3,
    out: new Float32Array(H * NQ * D),
    lse: new Float32Array(H * NQ),
    keyMass: new Float32Array(KVH * NKV),
  };
}

type Params = Record<string, unknown>;
const BIG = 2 ** 40;
const F16 = (n: number) => new Uint16Array(n);

/** [label, mutation of valid params]. Every one must fail with a JS error. */
const HOSTILE: [string, (p: Params) => void][] = [
  // Buffers too short for their shapes / strides.
  ['q too short', (p) => { p.q = new Float32Array(H * NQ * D - 1); }],
  ['q empty', (p) => { p.q = new Float32Array(0); }],
  ['q detached', (p) => { p.q = detachedF32(H * NQ * D); }],
  ['k too short', (p) => { p.k = new Float32Array(KVH * NKV * D - 1); }],
  ['v too short', (p) => { p.v = new Float32Array(D); }],
  ['k detached', (p) => { p.k = detachedF32(KVH * NKV * D); }],
  ['q head stride too large', (p) => { p.qStrides = [NQ * D + 1, D]; }],
  ['k row stride too large', (p) => { p.kStrides = [NKV * D, D + 1]; }],
  ['v head stride too large', (p) => { p.vStrides = [NKV * D * 2, D]; }],
  ['k f16 too short (length in elements, not bytes)', (p) => { p.kDtype = 1; p.k = F16(KVH * NKV * D - 1); }],
  ['v bf16 half the bytes', (p) => { p.vDtype = 2; p.v = F16(KVH * NKV * D / 2); }],
  ['k stride huge', (p) => { p.kStrides = [2 ** 52, D]; }],
  ['k stride * rows overflows int64', (p) => { p.nKv = 2 ** 40; p.kStrides = [0, 2 ** 53]; p.vStrides = [0, 2 ** 53]; }],
  ['negative strides', (p) => { p.kStrides = [-NKV * D, D]; }],
  ['negative row stride', (p) => { p.vStrides = [NKV * D, -D]; }],
  ['strides wrong length', (p) => { p.qStrides = [NQ * D]; }],
  ['strides not an array', (p) => { p.kStrides = NKV * D; }],
  ['strides non-integer', (p) => { p.kStrides = [NKV * D, 8.5]; }],
  ['strides NaN', (p) => { p.vStrides = [NaN, D]; }],
  ['strides strings', (p) => { p.qStrides = ['24', '8']; }],
  ['out too short', (p) => { p.out = new Float32Array(H * NQ * D - 1); }],
  ['out too long', (p) => { p.out = new Float32Array(H * NQ * D + 1); }],
  ['out empty', (p) => { p.out = new Float32Array(0); }],
  ['out aliases q', (p) => { p.out = p.q; }],
  // k viewed with head stride 0 (80 elements) inside a 96-element array that is also out.
  ['out aliases k', (p) => { p.k = new Float32Array(H * NQ * D); p.kStrides = [0, D]; p.out = p.k; }],
  ['lse too short', (p) => { p.lse = new Float32Array(H * NQ - 1); }],
  ['keyMass too short', (p) => { p.keyMass = new Float32Array(KVH * NKV - 1); }],
  // Present but empty arrays (V8 may give them a null data pointer): must be
  // rejected for their length, not silently treated as absent.
  ['keyMass empty', (p) => { p.keyMass = new Float32Array(0); }],
  ['lse empty', (p) => { p.lse = new Float32Array(0); }],
  ['tree empty', (p) => { p.treeParents = new Int32Array(0); }],
  ['indices empty with nSel 3', (p) => { p.indices = new Int32Array(0); }],
  ['bool mask empty', (p) => { p.boolMask = new Uint8Array(0); }],
  ['bool mask too short', (p) => { p.boolMask = new Uint8Array(NQ * NKV - 1); }],
  ['additive mask too short', (p) => { delete p.boolMask; p.additiveMask = new Float32Array(NKV); }],
  ['both masks', (p) => { p.additiveMask = new Float32Array(NQ * NKV); }],
  ['tree too short', (p) => { p.treeParents = Int32Array.from([-1, 0]); }],
  ['tree too long', (p) => { p.treeParents = Int32Array.from([-1, 0, 0, 0]); }],
  ['tree parent == i', (p) => { p.treeParents = Int32Array.from([-1, 1, 0]); }],
  ['tree parent > i', (p) => { p.treeParents = Int32Array.from([-1, 0, 2]); }],
  ['tree root 0', (p) => { p.treeParents = Int32Array.from([0, 0, 0]); }],
  ['tree parent -2', (p) => { p.treeParents = Int32Array.from([-1, -2, 0]); }],
  ['tree parent INT32_MIN', (p) => { p.treeParents = Int32Array.from([-1, -(2 ** 31), 0]); }],
  ['tree larger than nKv', (p) => { p.nKv = 2; p.k = new Float32Array(KVH * 2 * D); p.v = new Float32Array(KVH * 2 * D); p.kStrides = [2 * D, D]; p.vStrides = [2 * D, D]; p.boolMask = new Uint8Array(NQ * 2); p.keyMass = new Float32Array(KVH * 2); p.indices = new Int32Array(KVH * 3); }],
  ['tree over 4096 nodes', (p) => {
    const n = 4097;
    Object.assign(p, {
      nHeads: 1, nKvHeads: 1, nQ: n, nKv: n, headDim: 1, nSel: 0,
      q: new Float32Array(n), qStrides: [n, 1], k: new Float32Array(n), kStrides: [n, 1],
      v: new Float32Array(n), vStrides: [n, 1], out: new Float32Array(n), lse: new Float32Array(n),
      keyMass: new Float32Array(n), boolMask: new Uint8Array(n * n).fill(1),
      treeParents: Int32Array.from({ length: n }, (_, i) => i - 1),
    });
    delete p.indices;
  }],
  ['index == nKv', (p) => { p.indices = Int32Array.from([0, 3, 9, 1, 2, NKV]); }],
  ['index -1', (p) => { p.indices = Int32Array.from([-1, 3, 9, 1, 2, 8]); }],
  ['index INT32_MAX', (p) => { p.indices = Int32Array.from([0, 3, 2 ** 31 - 1, 1, 2, 8]); }],
  ['index INT32_MIN', (p) => { p.indices = Int32Array.from([0, 3, 9, 1, 2, -(2 ** 31)]); }],
  ['indices shorter than nKvHeads * nSel', (p) => { p.indices = Int32Array.from([0, 1, 2]); }],
  ['nSel larger than indices', (p) => { p.nSel = 4; }],
  ['nSel negative', (p) => { p.nSel = -1; }],
  ['nSel huge', (p) => { p.nSel = BIG; }],
  ['nSel * nKvHeads overflows', (p) => { p.nSel = 2 ** 53; }],
  // Dimensions.
  ['nHeads -1', (p) => { p.nHeads = -1; }],
  ['nHeads 0', (p) => { p.nHeads = 0; }],
  ['nKvHeads 0 (no division by zero)', (p) => { p.nKvHeads = 0; }],
  ['nKvHeads -2', (p) => { p.nKvHeads = -2; }],
  ['nHeads % nKvHeads != 0', (p) => { p.nKvHeads = 3; }],
  ['nQ -1', (p) => { p.nQ = -1; }],
  ['nKv -5', (p) => { p.nKv = -5; }],
  ['headDim -8', (p) => { p.headDim = -8; }],
  ['headDim 0', (p) => { p.headDim = 0; }],
  ['nQ larger than the buffers', (p) => { p.nQ = NQ + 1; }],
  ['nKv larger than the buffers', (p) => { p.nKv = NKV + 1; }],
  ['headDim larger than the buffers', (p) => { p.headDim = D + 1; }],
  ['nHeads larger than the buffers', (p) => { p.nHeads = 2 * H; }],
  ['huge dims whose product overflows int64', (p) => { p.nHeads = BIG; p.nKvHeads = BIG; p.nQ = BIG; p.headDim = BIG; }],
  ['dims over 2^40', (p) => { p.nQ = BIG + 1; }],
  ['nQ * headDim overflows with strides 0', (p) => { p.nQ = BIG; p.headDim = BIG; p.qStrides = [0, 0]; }],
  ['dims 2^53 + 2', (p) => { p.nKv = 2 ** 53 + 2; }],
  ['dims 1e300', (p) => { p.nHeads = 1e300; }],
  ['dims Infinity', (p) => { p.headDim = Infinity; }],
  ['dims NaN', (p) => { p.nQ = NaN; }],
  ['dims non-integer', (p) => { p.nKv = 9.5; }],
  ['dims strings', (p) => { p.nHeads = '4'; }],
  ['dims bigint', (p) => { p.nHeads = 4n; }],
  // Element types.
  ['q a Float64Array', (p) => { p.q = new Float64Array(H * NQ * D); }],
  ['q a plain array', (p) => { p.q = new Array(H * NQ * D).fill(0); }],
  ['q an ArrayBuffer', (p) => { p.q = new ArrayBuffer(H * NQ * D * 4); }],
  ['q a DataView', (p) => { p.q = new DataView(new ArrayBuffer(H * NQ * D * 4)); }],
  ['k Uint16Array with dtype f32 (half the bytes)', (p) => { p.k = new Uint16Array(KVH * NKV * D); }],
  ['k Float32Array with dtype f16', (p) => { p.kDtype = 1; }],
  ['v Int32Array', (p) => { p.v = new Int32Array(KVH * NKV * D); }],
  ['v Int16Array with dtype bf16', (p) => { p.vDtype = 2; p.v = new Int16Array(KVH * NKV * D); }],
  ['out a Float64Array', (p) => { p.out = new Float64Array(H * NQ * D); }],
  ['out a Uint8Array of the same byte length', (p) => { p.out = new Uint8Array(H * NQ * D * 4); }],
  ['lse a Float64Array', (p) => { p.lse = new Float64Array(H * NQ); }],
  ['keyMass a plain array', (p) => { p.keyMass = new Array(KVH * NKV).fill(0); }],
  ['bool mask an Int8Array', (p) => { p.boolMask = new Int8Array(NQ * NKV); }],
  ['bool mask a Uint8ClampedArray', (p) => { p.boolMask = new Uint8ClampedArray(NQ * NKV); }],
  ['additive mask a Float64Array', (p) => { delete p.boolMask; p.additiveMask = new Float64Array(NQ * NKV); }],
  ['tree a Uint32Array', (p) => { p.treeParents = Uint32Array.from([0xffffffff, 0, 0]); }],
  ['tree a plain array', (p) => { p.treeParents = [-1, 0, 0]; }],
  ['indices a Uint32Array', (p) => { p.indices = new Uint32Array(6); }],
  ['indices a BigInt64Array', (p) => { p.indices = new BigInt64Array(6); }],
  ['kDtype 3', (p) => { p.kDtype = 3; }],
  ['kDtype -1', (p) => { p.kDtype = -1; }],
  ['vDtype 1.5', (p) => { p.vDtype = 1.5; }],
  ['kDtype a string', (p) => { p.kDtype = 'f32'; }],
  // Scalars.
  ['scale NaN', (p) => { p.scale = NaN; }],
  ['scale 0', (p) => { p.scale = 0; }],
  ['scale -1', (p) => { p.scale = -1; }],
  ['scale Infinity', (p) => { p.scale = Infinity; }],
  ['scale 1e300 (f32 overflow)', (p) => { p.scale = 1e300; }],
  ['scale a string', (p) => { p.scale = '0.3'; }],
  ['softcap -1', (p) => { p.softcap = -1; }],
  ['softcap NaN', (p) => { p.softcap = NaN; }],
  ['softcap Infinity', (p) => { p.softcap = Infinity; }],
  ['causal 1', (p) => { p.causal = 1; }],
  ['causal undefined', (p) => { delete p.causal; }],
  // A getter that throws while the binding reads the params.
  ['throwing getter', (p) => { Object.defineProperty(p, 'nKv', { get() { throw new Error('boom'); }, enumerable: true }); }],
  // Missing required fields, one at a time.
  ...['nHeads', 'nKvHeads', 'nQ', 'nKv', 'headDim', 'q', 'qStrides', 'k', 'kDtype', 'kStrides', 'v', 'vDtype', 'vStrides',
    'scale', 'softcap', 'nSel', 'out'].map((f): [string, (p: Params) => void] => [`missing ${f}`, (p) => { delete p[f]; }]),
];

/** The call must fail with a JS Error: a synchronous throw, or a rejected promise. */
async function expectFails(fn: () => unknown): Promise<Error> {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    expect(e).toBeInstanceOf(Error);
    return e as Error;
  }
  expect(result, 'returned a value instead of failing').toBeInstanceOf(Promise);
  const e = await (result as Promise<unknown>).then(() => undefined, (err: unknown) => err);
  expect(e, 'the promise resolved instead of rejecting').toBeInstanceOf(Error);
  return e as Error;
}

describe('native addon: hostile flat params throw a JS error, never crash', () => {
  const addon = native();

  test('the addon exports attention and attentionAsync', () => {
    expect(typeof addon.attention).toBe('function');
    expect(typeof addon.attentionAsync).toBe('function');
  });

  test('the valid base params succeed (so each failure below is a check)', async () => {
    const p = baseParams();
    expect(() => addon.attention(p)).not.toThrow();
    expect(p.lse!.some((x) => x !== 0)).toBe(true);
    await expect(addon.attentionAsync(baseParams())).resolves.toBeUndefined();
  });

  for (const [label, mutate] of HOSTILE) {
    test(label, async () => {
      const p = baseParams() as unknown as Params;
      mutate(p);
      const out = p.out;
      const outBefore = out instanceof Float32Array ? new Float32Array(out.fill(13)) : undefined;
      const sync = await expectFails(() => addon.attention(p as never));
      expect(sync.message.length, label).toBeGreaterThan(0);
      // The promise form: must reject (argument errors never throw synchronously).
      let promise: unknown;
      expect(() => { promise = addon.attentionAsync(p as never); }, `${label}: attentionAsync threw synchronously`).not.toThrow();
      await expectFails(() => promise);
      if (outBefore && out !== p.q && out !== p.k) {
        expect(out, `${label}: out must be untouched after a failed call`).toEqual(outBefore);
      }
    });
  }

  test('params that are not an object', async () => {
    for (const bad of [undefined, null, 42, 'params', [], () => 0]) {
      await expectFails(() => addon.attention(bad as never));
      await expectFails(() => addon.attentionAsync(bad as never));
    }
    await expectFails(() => (addon.attention as () => void)());
    await expectFails(() => (addon.attentionAsync as () => Promise<void>)());
  });

  test('valid edge: nQ 0 (empty q and out) succeeds', () => {
    const empty = { ...baseParams(), nQ: 0, q: new Float32Array(0), out: new Float32Array(0), lse: new Float32Array(0), boolMask: new Uint8Array(0), treeParents: new Int32Array(0) };
    expect(() => addon.attention(empty)).not.toThrow();
  });

  test('valid edge: nSel 0 means every query sees nothing', () => {
    for (const indices of [new Int32Array(0), new Int32Array(4).subarray(0, 0)]) {
      const none = { ...baseParams(), nSel: 0, indices };
      none.out.fill(5);
      addon.attention(none);
      const label = `indices ${indices.buffer.byteLength ? 'a zero-length view of a non-empty buffer' : 'new Int32Array(0)'}`;
      expect(none.out.every((x) => x === 0), `${label}: out all 0`).toBe(true);
      expect(none.lse!.every((x) => x === -Infinity), `${label}: lse all -Infinity`).toBe(true);
    }
  });

  test('valid edge: head stride 0 on k and v (every KV head reads the same rows)', async () => {
    const shared = { ...baseParams(), kStrides: [0, D] as [number, number], vStrides: [0, D] as [number, number] };
    addon.attention(shared);
    await addon.attentionAsync(shared);
    const out = new Float32Array(shared.out);
    // Same as giving both KV heads a copy of head 0's rows.
    const copy = { ...baseParams(), out: new Float32Array(H * NQ * D), lse: new Float32Array(H * NQ), keyMass: new Float32Array(KVH * NKV) };
    const k = copy.k as Float32Array;
    const v = copy.v as Float32Array;
    k.copyWithin(NKV * D, 0, NKV * D);
    v.copyWithin(NKV * D, 0, NKV * D);
    const shared2 = { ...baseParams(), kStrides: [0, D] as [number, number], vStrides: [0, D] as [number, number], k, v };
    addon.attention(copy);
    addon.attention(shared2);
    expect(shared2.out).toEqual(copy.out);
    expect(out.length).toBe(H * NQ * D);
  });

  test('the process survived many failing calls in a row (sync and async interleaved)', async () => {
    const pending: Promise<unknown>[] = [];
    for (let r = 0; r < 200; r++) {
      const [, mutate] = HOSTILE[r % HOSTILE.length]!;
      const p = baseParams() as unknown as Params;
      mutate(p);
      try { addon.attention(p as never); } catch { /* expected */ }
      try {
        pending.push(Promise.resolve(addon.attentionAsync(p as never)).catch(() => undefined));
      } catch { /* a synchronous throw is reported by the tests above */ }
    }
    await Promise.all(pending);
    const ok = baseParams();
    addon.attention(ok);
    expect(Number.isFinite(ok.out[0])).toBe(true);
  });
});
