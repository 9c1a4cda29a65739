// Several worker_threads, each with its own KvCache, append, attend and
// compress at once on the one native thread pool; each result must equal the
// same work done alone on the main thread.
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const FIXTURE = fileURLToPath(new URL('../fixtures/kv-cache-worker.mjs', import.meta.url));

function inWorker(seed: number, dtype: string): Promise<{ digest: number; lengths: number[] }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(FIXTURE, { workerData: { seed, dtype } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

test('separate caches in 4 worker_threads at once give the single-threaded results', async () => {
  const { run } = (await import(FIXTURE)) as { run: (seed: number, dtype: string) => { digest: number; lengths: number[] } };
  const jobs = [[1, 'f32'], [2, 'f16'], [3, 'int8'], [4, 'int4']] as const;
  const expected = jobs.map(([seed, dtype]) => run(seed, dtype));
  const got = await Promise.all(jobs.map(([seed, dtype]) => inWorker(seed, dtype)));
  expect(got).toEqual(expected);
  expect(expected[0]!.lengths.every((n) => n > 0)).toBe(true);
}, 60_000);
