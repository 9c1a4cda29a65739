// Finding 4 (issue 12): a KvCacheHandle whose prototype was set to
// ByteModel.prototype passed the instanceof check and equalInfoEncode
// crashed. Handles are now checked by a type tag kept by the engine
// (native/binding/handles.h): every model-taking entry point refuses a
// disguised handle, and every method of every handle class refuses a
// foreign `this` (another class, disguised or not, or a plain object).
import { describe, expect, it } from 'vitest';
import { expectSurvived, runFixture } from './run.js';

describe('native handles are checked by tag, not by prototype', () => {
  it('refuses every foreign or disguised handle with a TypeError naming the argument', () => {
    const run = runFixture('hardening-run.mjs', ['handles']);
    expectSurvived(run);
    expect(run.cases.length).toBeGreaterThan(100);
    for (const c of run.cases) {
      expect(c, c.case).toMatchObject({ outcome: 'threw', type: 'TypeError' });
      if (c.case.includes('disguised as the model')) expect(c.message).toMatch(/^model: expected a ByteModel, received an object$/);
      else expect(c.message).toMatch(/^this: expected a (KvCacheHandle|ByteModel|EqualInfoStepper), received an object$/);
    }
    expect(run.cases.map((c) => c.case)).toContain('equalInfoEncode: a KvCacheHandle disguised as the model');
  }, 300_000);
});
