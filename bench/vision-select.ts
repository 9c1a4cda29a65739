// Speed of the pruning operators of group `select` (lib/vision/eval/
// methods-select.ts bench hooks) against one pass over the tokens measured
// in the same run. Usage (after `npx tsc -p tsconfig.json`):
//   node dist/bench/vision-select.js [--threads 2] [--reps 5] [--reference]
// Prints a table: operator, frames x n x dim, median native ms, one pass
// (a copy of the tokens into a preallocated array) ms, ratio, and the JS reference's median where run.
import { setThreads } from '../lib/backend.js';
import { divPrune } from '../lib/vision/divprune.js';
import { selectMethods } from '../lib/vision/eval/methods-select.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown, reps: number): number {
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ts);
}

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const threads = arg('--threads', 2);
const reps = arg('--reps', 5);
const withReference = args.includes('--reference');
setThreads(threads);

const shapes: [number, number, number][] = [[1, 576, 1024], [1, 576, 4096], [1, 2880, 1024], [1, 2880, 4096], [16, 576, 1024], [16, 576, 4096]];
const ratio = 0.25;
console.log(`threads ${threads}, reps ${reps} (median), keep ratio ${ratio}`);
console.log('operator     shape            native ms   one pass ms   ratio   reference ms');
for (const [t, n, dim] of shapes) {
  const x = new Float32Array(t * n * dim);
  let s = 12345;
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  // One pass: a copy of the tokens into a preallocated array (memcpy: one
  // read and one write of every token, no allocation or page faults).
  const dst = new Float32Array(x.length);
  dst.set(x);
  const pass = time(() => dst.set(x), reps);
  for (const m of selectMethods) {
    if (!m.bench) continue;
    m.bench.native(x, t, n, dim, ratio); // warm
    const nat = time(() => m.bench!.native(x, t, n, dim, ratio), reps);
    // The float64 JS DivPrune is O(n^2 dim): only on the smallest shape.
    const runRef = withReference && (m.name !== 'divprune' || (t === 1 && n === 576 && dim === 1024));
    const ref = runRef ? time(() => m.bench!.reference(x, t, n, dim, ratio), m.name === 'divprune' ? 1 : reps) : NaN;
    if (m.name === 'divprune') {
      // The approximate option: cosines of a 256-wide random projection.
      const tensor = { dtype: 'f32' as const, shape: [t, n, dim], data: x };
      const keep = Math.round(ratio * n);
      divPrune(tensor, { keep, metricDim: 256 });
      const approx = time(() => divPrune(tensor, { keep, metricDim: 256 }), reps);
      console.log(`${'divprune~256'.padEnd(12)} ${`${t}x${n}x${dim}`.padEnd(16)} ${approx.toFixed(2).padStart(9)} ${pass.toFixed(2).padStart(13)} ${(approx / pass).toFixed(1).padStart(7)}   -`);
    }
    console.log(
      `${m.name.padEnd(12)} ${`${t}x${n}x${dim}`.padEnd(16)} ${nat.toFixed(2).padStart(9)} ${pass.toFixed(2).padStart(13)} ${(nat / pass).toFixed(1).padStart(7)}   ${Number.isNaN(ref) ? '-' : ref.toFixed(1)}`,
    );
  }
}
