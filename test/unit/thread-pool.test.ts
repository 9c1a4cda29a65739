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
