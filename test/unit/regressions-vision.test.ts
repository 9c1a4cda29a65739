// Regressions found by the adversarial hardening of the visual-token
// reduction entry points (issue 19; native/binding/reduce_{select,cluster,tome}_binding.cpp).
// Each case runs in a child process with a time limit, so that a hang or an
// out-of-memory abort of the native code fails the test instead of vitest.
// TOKENPRESS_TEST_ADDON=/path/to/x.node runs it against another build (how
// each was checked to fail on the unfixed one).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from './hardening/run.js';

/** Runs `body` (a script with `a`, the addon) in a child; returns its exit status and output. */
function inChild(body: string, timeoutMs = 20_000) {
  const script = `import { loadAddon } from ${JSON.stringify(join(FIXTURES, 'hardening-entry-points.mjs'))};\nconst a = loadAddon();\n${body}\nconsole.log('done');`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: timeoutMs, env: process.env });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

describe('visual-token reduction: hardening regressions', () => {
  // Finding 1: with t = 0 (no frame, every array empty, so every length
  // check passes) and n up to 2^31, reduceClsRank / reduceFastvRank still
  // built the kernel's per-worker scratch of n int32 (8 GiB per worker):
  // the call hung zero-filling it, or died out of memory. The unfixed build
  // ran past the 20 s limit on both calls (checked with TOKENPRESS_TEST_ADDON
  // pointing at the build before the fix).
  it('reduceClsRank / reduceFastvRank with t = 0 and a huge n return at once (sync and async)', () => {
    const r = inChild(`
      const F = Float32Array, I = Int32Array;
      const cls = () => ({ attention: new F(0), t: 0, layers: 65536, n: 2 ** 31, start: 0, end: 65536, keep: 2 ** 31, scores: new F(0), out: new I(0) });
      const fastv = () => ({ probs: new F(0), t: 0, heads: 65536, nk: 2 ** 31 - 1, start: 0, length: 2 ** 31 - 1, keep: 2 ** 31 - 1, scores: new F(0), out: new I(0) });
      a.reduceClsRank(cls());
      a.reduceFastvRank(fastv());
      await a.reduceClsRankAsync(cls());
      await a.reduceFastvRankAsync(fastv());`);
    expect(r, r.out).toMatchObject({ status: 0, signal: null });
    expect(r.out).toContain('done');
  }, 30_000);

  // The same shapes with one frame are still refused by their lengths (the
  // fix skips only the empty call): the error names the array.
  it('t = 1 with the same n is refused by the attention length, naming it', () => {
    const r = inChild(`
      try { a.reduceClsRank({ attention: new Float32Array(0), t: 1, layers: 65536, n: 2 ** 31, start: 0, end: 65536, keep: 1, scores: new Float32Array(0), out: new Int32Array(1) }); }
      catch (e) { console.log(e.constructor.name + ': ' + e.message); }`);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/RangeError: attention: expected t \* layers \* n = \d+ elements, received 0/);
  }, 30_000);
});
