// The addon's positional attention form (lib/native.ts NativeAttentionArgs:
// a Float64Array header, then the arrays) that attention() and
// attentionAsync() use on every call: the same results as the params-object
// form, and the same refusals with messages naming the field, for callers
// that reach the addon directly.
import { describe, expect, test } from 'vitest';
import { ATTENTION_HEADER, native, type NativeAttentionArgs, type NativeAttentionParams } from '../../lib/native.js';
import { prepareAttention } from '../../lib/attention.js';
import { f32ToF16Bits } from '../../lib/index.js';

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    a[i] = (x / 2 ** 32) * 2 - 1;
  }
  return a;
}

function header(p: NativeAttentionParams): Float64Array {
  return Float64Array.of(p.nHeads, p.nKvHeads, p.nQ, p.nKv, p.headDim, p.nSel, p.kDtype, p.vDtype,
    ...p.qStrides, ...p.kStrides, ...p.vStrides, p.scale, p.softcap, p.causal ? 1 : 0);
}

function args(p: NativeAttentionParams, h = header(p)): NativeAttentionArgs {
  return [h, p.q, p.k, p.v, p.out, p.lse, p.keyMass, p.boolMask, p.additiveMask, p.treeParents, p.indices];
}

/** Validated params of a small GQA case (nHeads 4, nKvHeads 2, nQ 3, nKv 9, headDim 8). */
function small(opts: Record<string, unknown> = {}, f16 = false): NativeAttentionParams {
  const d = 8;
  const kd = fill(2 * 9 * d, 2);
  const k = f16 ? { dtype: 'f16' as const, shape: [2, 9, d], data: Uint16Array.from(kd, f32ToF16Bits) } : { dtype: 'f32' as const, shape: [2, 9, d], data: kd };
  const v = { dtype: 'f32' as const, shape: [2, 9, d], data: fill(2 * 9 * d, 3) };
  return prepareAttention({ dtype: 'f32', shape: [4, 3, d], data: fill(4 * 3 * d, 1) }, k, v, opts).params;
}

const bits = (a: Float32Array | undefined) => (a ? Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length)) : undefined);

function bothForms(p: NativeAttentionParams) {
  const copy = (a: Float32Array | undefined) => (a ? new Float32Array(a.length) : undefined);
  const q: NativeAttentionParams = { ...p, out: copy(p.out)! };
  if (p.lse) q.lse = copy(p.lse)!;
  if (p.keyMass) q.keyMass = copy(p.keyMass)!;
  native().attention(p);
  native().attention(...args(q));
  return [p, q] as const;
}

describe('attention: the positional native form', () => {
  test.each([
    ['plain', {}, false],
    ['f16 k, causal, lse, key mass, softcap', { causal: true, returnLse: true, returnKeyMass: true, softcap: 5 }, true],
    ['bool mask', { mask: { dtype: 'bool', shape: [3, 9], data: Uint8Array.from({ length: 27 }, (_, i) => (i % 4 ? 1 : 0)) } }, false],
    ['additive mask', { mask: { dtype: 'f32', shape: [3, 9], data: fill(27, 9) } }, false],
    ['tree', { treeMask: [-1, 0, 0], returnLse: true }, false],
    ['indices', { indices: { dtype: 'i32', shape: [2, 4], data: Int32Array.of(0, 2, 4, 8, 1, 3, 5, 7) } }, true],
  ])('%s: the same bits as the params-object form', (_name, opts, f16) => {
    const [a, b] = bothForms(small(opts, f16));
    expect(bits(b.out)).toEqual(bits(a.out));
    expect(bits(b.lse)).toEqual(bits(a.lse));
    expect(bits(b.keyMass)).toEqual(bits(a.keyMass));
  });

  test('strided k and v (a view into a larger cache)', () => {
    const d = 8;
    const big = fill(2 * 20 * d, 5);
    const view = { dtype: 'f32' as const, shape: [2, 9, d], strides: [20 * d, d, 1], data: big };
    const { params } = prepareAttention({ dtype: 'f32', shape: [2, 1, d], data: fill(2 * d, 6) }, view, view, {});
    const [a, b] = bothForms(params);
    expect(bits(b.out)).toEqual(bits(a.out));
  });

  test('attentionAsync takes it too', async () => {
    const p = small({ returnLse: true });
    const q = { ...p, out: new Float32Array(p.out.length), lse: new Float32Array(p.lse!.length) };
    native().attention(p);
    await native().attentionAsync(...args(q));
    expect(bits(q.out)).toEqual(bits(p.out));
    expect(bits(q.lse)).toEqual(bits(p.lse));
    const h = header(p);
    h[0] = 1.5;
    await expect(native().attentionAsync(...args(p, h))).rejects.toThrow(/^nHeads: expected an integer, received 1\.5$/);
  });

  test('the header: its length, each number checked and named', () => {
    const p = small();
    const call = (h: Float64Array) => () => native().attention(...args(p, h));
    expect(ATTENTION_HEADER.length).toBe(17);
    expect(call(new Float64Array(16))).toThrow(/^header\.length: expected 17, received 16$/);
    const cases: [number, number, RegExp, ErrorConstructor][] = [
      [0, 1.5, /^nHeads: expected an integer, received 1\.5$/, RangeError],
      [3, NaN, /^nKv: expected an integer, received NaN$/, RangeError],
      [9, Infinity, /^qStrides\[1\]: expected an integer, received Infinity$/, RangeError],
      [6, 3, /^kDtype: expected 0 \(f32\), 1 \(f16\) or 2 \(bf16\), received 3$/, RangeError],
      [7, -1, /^vDtype: expected 0 \(f32\), 1 \(f16\) or 2 \(bf16\), received -1$/, RangeError],
      [16, 2, /^causal: expected a boolean \(0 or 1 in the header\), received 2$/, TypeError],
    ];
    for (const [slot, value, message, type] of cases) {
      const h = header(p);
      h[slot] = value;
      expect(call(h)).toThrow(type);
      expect(call(h)).toThrow(message);
    }
    // Sizes that disagree with the arrays: the kernel's validator refuses them.
    const h = header(p);
    h[3] = 1000;
    expect(call(h)).toThrow(RangeError);
  });

  test('the arrays: wrong types, shared memory, overlapping outputs, detached inputs', () => {
    const p = small({ returnLse: true });
    const a = args(p);
    const withArg = (i: number, value: unknown) => () => {
      const b = [...a] as unknown[];
      b[i] = value;
      (native().attention as (...x: unknown[]) => void)(...b);
    };
    expect(withArg(1, [1, 2])).toThrow(/^q: expected a Float32Array, received an array$/);
    expect(withArg(2, new Uint16Array(p.k.length))).toThrow(/^k: expected a Float32Array, received a typed array/);
    expect(withArg(4, undefined)).toThrow(/^out: expected a Float32Array, received undefined$/);
    expect(withArg(8, new Uint8Array(27))).toThrow(/^additiveMask: expected a Float32Array/);
    expect(withArg(0, new Float32Array(17))).toThrow(/^params: expected an object|^nHeads: expected an integer/);
    expect(() => (native().attention as (...x: unknown[]) => void)(a[0], a[1], a[2])).toThrow(/^attention: expected 11 arguments/);
    const shared = new Float32Array(new SharedArrayBuffer(p.q.byteLength));
    expect(withArg(1, shared)).toThrow(/^q: expected a Float32Array over an ArrayBuffer, received one over a SharedArrayBuffer/);
    const sharedHeader = new Float64Array(new SharedArrayBuffer(17 * 8));
    sharedHeader.set(a[0]);
    expect(withArg(0, sharedHeader)).toThrow(/^header: expected a typed array over an ArrayBuffer|^header: expected a Float64Array over an ArrayBuffer/);
    // out over q's buffer, lse over out's buffer.
    const backing = new Float32Array(p.q.length + p.out.length);
    backing.set(p.q);
    const b = [...a] as unknown[];
    b[1] = backing.subarray(0, p.q.length);
    b[4] = backing.subarray(p.q.length);
    expect(() => (native().attention as (...x: unknown[]) => void)(...b)).toThrow(/^out: expected an output that shares no memory with the input q/);
    expect(withArg(5, new Float32Array(p.out.buffer, 0, p.lse!.length))).toThrow(/^lse: expected an output that shares no memory with the output out/);
    // A detached q reads as empty: the same refusal as the object form.
    const gone = new Float32Array(p.q);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    let objectMessage = '';
    try { native().attention({ ...p, q: gone }); } catch (e) { objectMessage = (e as Error).message; }
    expect(objectMessage).not.toBe('');
    expect(withArg(1, gone)).toThrow(objectMessage);
  });
});
