// Issue 12 (Low): an exception thrown by ByteModel.train's onProgress was
// swallowed (the promise resolved as if nothing happened). Now the first
// error the callback throws rejects the promise, later progress is not
// reported, and the addon stays usable: the next train() gives the same
// model as a train() that was never interrupted.
import { describe, expect, it } from 'vitest';
import { ByteModel } from '../../../lib/index.js';

const text = 'tokenpress trains a byte model. '.repeat(4000) + 'an end.';

describe('ByteModel.train onProgress', () => {
  it('an error thrown by onProgress rejects the promise with that error', async () => {
    const boom = new Error('stop here');
    let calls = 0;
    await expect(ByteModel.train(text, { maxOrder: 3, onProgress: () => { calls++; throw boom; } })).rejects.toBe(boom);
    expect(calls).toBe(1);
  });

  it('training still works afterwards, with the same result', async () => {
    await expect(ByteModel.train(text, { maxOrder: 3, onProgress: () => { throw new TypeError('x'); } })).rejects.toThrow(TypeError);
    const fractions: number[] = [];
    const a = await ByteModel.train(text, { maxOrder: 3, onProgress: (f) => fractions.push(f) });
    const b = await ByteModel.train(text, { maxOrder: 3 });
    expect(fractions.length).toBeGreaterThan(0);
    expect(Array.from(a.toBytes())).toEqual(Array.from(b.toBytes()));
  });
});
