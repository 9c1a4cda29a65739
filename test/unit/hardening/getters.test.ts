// Finding 3 (issue 12): a getter on a later field of a params object shrank
// or detached a typed array after the binding had taken its pointer (10 entry
// points crashed). For every entry point of test/fixtures/hardening-entry-points.mjs,
// every typed array, every other field as the getter, shrink and detach:
// the process survives, and a shrunk or detached array reads as empty
// (a RangeError naming it, or a valid result for an input that may be empty).
import { describe, expect, it } from 'vitest';
import { expectSurvived, runFixture } from './run.js';

describe('getters run before any pointer is taken', () => {
  it('every entry point, every typed array, a getter on every other field (shrink, detach)', () => {
    const run = runFixture('hardening-run.mjs', ['getters']);
    expectSurvived(run);
    expect(run.cases.length).toBeGreaterThan(1000);
    for (const c of run.cases) {
      if (c.outcome === 'threw') expect(['RangeError', 'TypeError'], `${c.case}: ${c.message}`).toContain(c.type);
    }
    // The array was emptied before its pointer was taken: the error names it.
    const select = run.cases.find((c) => c.case === 'kvSelect: shrink scores from a getter on out');
    expect(select).toMatchObject({ outcome: 'threw', type: 'RangeError', message: 'scores: expected 8 elements, received 0' });
  }, 600_000);

  it('lists of arrays: a getter on element 1 empties element 0 first', () => {
    const run = runFixture('hardening-run.mjs', ['lists']);
    expectSurvived(run);
    expect(run.cases.map((c) => c.case)).toContain('staticEncode: shrink docs[0] from a getter on docs[1]');
    for (const c of run.cases) {
      if (c.outcome === 'threw') expect(['RangeError', 'TypeError'], `${c.case}: ${c.message}`).toContain(c.type);
    }
  }, 300_000);
});
