// The native thread pool under resizing and concurrent async calls. Runs in a
// child process with a hard timeout: a deadlock fails the test instead of
// hanging the runner.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const script = fileURLToPath(new URL('../fixtures/pool-stress.cjs', import.meta.url));

test('pool survives resizing between calls and bursts of async calls, results unchanged', () => {
  const run = spawnSync(process.execPath, [script, '300'], { encoding: 'utf8', timeout: 60_000 });
  expect(run.signal, `killed (deadlock?) after timeout; stderr: ${run.stderr}`).toBeNull();
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toContain('ok 300');
});

// Idle workers spin (TOKENPRESS_SPIN_US, default 50) before blocking: the
// same stress with no spinning (every hand-over through the condition
// variables), with a long spin, and with a value the pool must ignore.
test.each(['0', '5000', 'abc', '-3'])('pool stress with TOKENPRESS_SPIN_US=%s', (spin) => {
  const run = spawnSync(process.execPath, [script, '100'], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, TOKENPRESS_SPIN_US: spin },
  });
  expect(run.signal, `killed (deadlock?) after timeout; stderr: ${run.stderr}`).toBeNull();
  expect(run.status, run.stderr).toBe(0);
  expect(run.stdout).toContain('ok 100');
});
