// Finding 1 (issue 12): worker.terminate(), or process.exit() inside a
// worker, while any tokenpress async call ran in that worker ended the whole
// process ("terminate called after throwing an instance of 'Napi::Error'").
// A child process (test/fixtures/hardening-worker-host.mjs) starts every
// async entry point in a loop inside a worker, then terminates the worker or
// has it call process.exit(); it must run to its end, twice over every API.
// Then every entry point, sync ones too, has a params getter call
// process.exit() in the middle of the native call (this aborted too, in
// node-addon-api's error path: native/binding/napi_config.h).
import { describe, expect, it } from 'vitest';
import { ENTRY_POINTS } from '../../fixtures/hardening-entry-points.mjs';
import { expectSurvived, runFixture } from './run.js';

describe('worker teardown during async calls', () => {
  it('every async entry point survives worker.terminate() and process.exit() in the worker', () => {
    const run = runFixture('hardening-worker-host.mjs', ['', '2']);
    expectSurvived(run);
    const names = new Set(run.cases.map((c) => c.case));
    for (const api of ['attentionAsync', 'KvCacheHandle.appendAsync', 'KvCacheHandle.attendAsync', 'KvCacheHandle.compressAsync',
      'KvCacheHandle.exportLayerAsync', 'equalInfoEncodeAsync', 'equalInfoDecodeAsync', 'staticEncodeAsync', 'staticDecodeAsync',
      'compressAdaptiveAsync', 'decompressAdaptiveAsync', 'trainByteModelAsync',
      'KvCacheHandle.attendAsync (quest)', 'KvCacheHandle.attendAsync (blocks)', 'KvCacheHandle.attendAsync (tidal)']) {
      expect(names).toContain(`${api}: terminate`);
      expect(names).toContain(`${api}: exit`);
    }
    for (const e of ENTRY_POINTS) expect(names).toContain(`${e.name}: exit-in-getter`);
    // Every async entry point 2 rounds x 2 modes, then every entry point once.
    expect(run.done?.workers).toBe(4 * ENTRY_POINTS.filter((e) => e.async).length + ENTRY_POINTS.length);
  }, 600_000);
});
