// Issue 12 (Low): a tensor over a SharedArrayBuffer got a bare "Invalid
// argument" that named nothing. Shared memory is refused (another thread
// could change an index between the kernel's check and its use) with an
// error naming the argument: in the TS layer and in the binding.
import { describe, expect, it } from 'vitest';
import { attention, selectKv } from '../../../lib/index.js';
import { ENTRY_POINTS, loadAddon } from '../../fixtures/hardening-entry-points.mjs';

const shared = <T extends Float32Array | Int32Array | Uint8Array>(a: T): T => {
  const b = new (a.constructor as new (buf: SharedArrayBuffer) => T)(new SharedArrayBuffer(a.byteLength));
  b.set(a as never);
  return b;
};
const MESSAGE = /: expected (a typed array|an? \w+Array) over an ArrayBuffer, received one over a SharedArrayBuffer \(copy it first/;

describe('SharedArrayBuffer-backed arrays', () => {
  it('attention(): a TypeError naming q.data', () => {
    const q = { dtype: 'f32' as const, shape: [1, 1, 4], data: shared(new Float32Array(4)) };
    const kv = { dtype: 'f32' as const, shape: [1, 2, 4], data: new Float32Array(8) };
    expect(() => attention(q, kv, kv)).toThrow(TypeError);
    expect(() => attention(q, kv, kv)).toThrow(/^q\.data: expected a typed array over an ArrayBuffer/);
  });

  it('selectKv: a TypeError naming scores.data and opts.out', () => {
    expect(() => selectKv({ dtype: 'f32', shape: [1, 4], data: shared(new Float32Array(4)) }, { keep: 2 })).toThrow(/^scores\.data: /);
    expect(() => selectKv({ dtype: 'f32', shape: [1, 4], data: new Float32Array(4) }, { keep: 2 }, { out: shared(new Int32Array(2)) })).toThrow(/^opts\.out: /);
  });

  it('the binding: every typed array of every sync entry point, a TypeError naming the field', () => {
    const addon = loadAddon();
    let checked = 0;
    for (const e of ENTRY_POINTS.filter((x) => !x.async)) {
      const state = e.setup ? e.setup(addon) : {};
      for (const field of [...e.inputs, ...e.outputs]) {
        const p = e.params(state);
        if (p[field] === undefined) continue;
        p[field] = shared(p[field]);
        let error: unknown;
        try {
          e.call(addon, state, p);
        } catch (err) {
          error = err;
        }
        expect(error, `${e.name} ${field}`).toBeInstanceOf(TypeError);
        expect((error as Error).message, `${e.name} ${field}`).toMatch(new RegExp(`^${field}${MESSAGE.source}`));
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });
});
