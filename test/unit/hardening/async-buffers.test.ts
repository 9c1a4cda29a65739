// Finding 5 (issue 12): KvCache appendAsync / attendAsync read the caller's
// arrays in place; resizing or transferring one while the call ran crashed.
// The rule now (docs/guarantees.md): async calls copy their inputs before
// they return and write outputs when they settle. With one libuv thread
// held by a blocker, each call is still queued when its array is shrunk or
// transferred and collected: inputs give a result, outputs reject with
// ERR_OUTPUT_CHANGED, and nothing crashes.
import { describe, expect, it } from 'vitest';
import { expectSurvived, runFixture } from './run.js';

describe('async calls do not read caller arrays in place', () => {
  it('every array of every async entry point resized or transferred while the call runs', () => {
    const run = runFixture('hardening-run.mjs', ['async-buffers'], { env: { UV_THREADPOOL_SIZE: '1' } });
    expectSurvived(run);
    expect(run.cases.length).toBeGreaterThan(30);
    for (const c of run.cases) {
      if (c.role === 'output') {
        expect(c, c.case).toMatchObject({ outcome: 'threw', code: 'ERR_OUTPUT_CHANGED' });
        expect(c.message).toMatch(/^\w+: the array was resized, transferred or detached while the call ran; its result was not written$/);
      } else {
        expect(c, c.case).toMatchObject({ role: 'input', outcome: 'ok' });
      }
    }
    expect(run.cases.map((c) => c.case)).toContain('KvCacheHandle.appendAsync: detach k while the call runs');
    expect(run.cases.map((c) => c.case)).toContain('KvCacheHandle.attendAsync: shrink q while the call runs');
  }, 600_000);

  it('inputs are copied: overwriting one after the call starts does not change the result', () => {
    const run = runFixture('hardening-run.mjs', ['async-inputs'], { env: { UV_THREADPOOL_SIZE: '1' } });
    expectSurvived(run);
    expect(run.cases.length).toBeGreaterThanOrEqual(10);
    for (const c of run.cases) expect(c, `${c.case}: ${c.message}`).toMatchObject({ outcome: 'ok' });
    expect(run.cases.map((c) => c.case)).toContain('KvCacheHandle.appendAsync: overwrite k while the call runs');
  }, 300_000);
});
