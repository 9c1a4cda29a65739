/** Helpers shared by the benchmarks: tinybench timing and fast deterministic fills. */
import { Bench } from 'tinybench';
import { f32ToF16Bits } from '../lib/index.js';

export interface Timed {
  medianMs: number;
  samples: number;
  rmePct: number;
}

export interface Budget {
  time: number;
  iterations: number;
}

export /** Times fn with tinybench. Callers run fn once before (that call is the warmup). */
async function timeIt(name: string, fn: () => unknown, budget: Budget): Promise<Timed> {
  const bench = new Bench({
    time: budget.time,
    iterations: budget.iterations,
    warmup: false,
    throws: true,
  });
  bench.add(name, fn);
  await bench.run();
  const task = bench.tasks[0];
  if (!task) throw new Error(`tinybench lost task ${name}`);
  const r = task.result;
  if (r.state !== 'completed') {
    throw r.state === 'errored' ? r.error : new Error(`${name}: tinybench state ${r.state}`);
  }
  return { medianMs: r.latency.p50, samples: r.latency.samplesCount, rmePct: r.latency.rme };
}

export /** xorshift32 in [-1, 1): fast, deterministic fill for large buffers. */
function randomBlock(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

/** randomBlock's values rounded to f16 bits. */
export function f16Block(n: number, seed: number): Uint16Array {
  const f = randomBlock(n, seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(f[i]!);
  return out;
}

/** Median of xs (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The value after `--name` on the command line, or `fallback`. */
export function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}
