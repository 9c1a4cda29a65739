// Finding 6 (issue 12): setThreads(1024), when the OS refuses a thread
// (ulimit -v), aborted on an uncaught std::system_error. Now it is an Error
// with code ERR_THREADS, the pool keeps its size and still computes the same
// results, and a later setThreads works. Allocation failures under the same
// limit are errors with code ERR_OUT_OF_MEMORY, the pool still usable.
import { describe, expect, it } from 'vitest';
import { expectSurvived, runFixture } from './run.js';

describe('refused threads and allocations', () => {
  it('setThreads(1024) under ulimit -v: ERR_THREADS, the pool unchanged and usable', () => {
    const run = runFixture('hardening-threads.mjs', [], { ulimitV: 3_000_000 });
    expectSurvived(run);
    const at = (name: string) => run.cases.find((c) => c.case === name);
    expect(at('setThreads(1024)')).toMatchObject({ outcome: 'threw', type: 'Error', code: 'ERR_THREADS' });
    expect(at('setThreads(1024)')!.message).toMatch(/^n: could not start 1024 threads; the pool keeps \d+/);
    const after = at('threads after')!;
    expect(after.value).toBe(after.before);
    expect(at('pool still computes')).toMatchObject({ outcome: 'ok', value: true });
    expect(at('setThreads(2)')).toMatchObject({ outcome: 'ok' });
    expect(at('pool computes on 2 threads')).toMatchObject({ outcome: 'ok', value: true });
    expect(at('kvScore with huge scratch')).toMatchObject({ outcome: 'threw', code: 'ERR_OUT_OF_MEMORY' });
    expect(at('pool computes after the allocation failures')).toMatchObject({ outcome: 'ok', value: true });
  }, 300_000);
});
