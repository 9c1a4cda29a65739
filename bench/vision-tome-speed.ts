// Speed of the ToMe-group operators at N = 2880, D = 4096 (and 576, and
// 16 x 576 frames) against one read pass over the tokens, measured in the
// same run: medians of 5. Usage: npx tsx bench/vision-tome-speed.ts [--ref]
// (--ref also times the float64 JS reference, 576 tokens only).
import { llavoltaPool, setThreads, tokenTransform, tomeMerge } from '../lib/index.js';
import { refTomeFrame } from '../lib/vision/reference/tome.js';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function time(fn: () => unknown, reps = 5): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ts);
}
function pass(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i += 16) s += x[i]! + x[i + 1]! + x[i + 2]! + x[i + 3]! + x[i + 4]! + x[i + 5]! + x[i + 6]! + x[i + 7]! + x[i + 8]! + x[i + 9]! + x[i + 10]! + x[i + 11]! + x[i + 12]! + x[i + 13]! + x[i + 14]! + x[i + 15]!;
  return s;
}

setThreads(2);
const withRef = process.argv.includes('--ref');
for (const [t, n, d] of [[1, 576, 1024], [1, 2880, 4096], [16, 576, 1024]] as const) {
  const x = new Float32Array(t * n * d);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37) + ((i * 2654435761) % 1000) / 1000;
  const tok = { dtype: 'f32' as const, shape: t > 1 ? [t, n, d] : [n, d], data: x };
  const keep = Math.round(n * 0.5);
  const rows: [string, number][] = [
    ['one pass (JS sum, 16-wide)', time(() => pass(x))],
    ['tomeMerge r = n/2', time(() => tomeMerge(tok, { r: n - keep }))],
    ['tomeMerge r = n/2 sketchDim 256', time(() => tomeMerge(tok, { r: n - keep, sketchDim: 256 }))],
    ['tokenTransform m = n/4', time(() => tokenTransform(tok, { m: Math.round(n / 4) }))],
    ['llavoltaPool stride 2', time(() => llavoltaPool(tok, { stride: 2 }))],
  ];
  if (withRef && n === 576 && t === 1) rows.push(['refTomeFrame (float64 JS)', time(() => refTomeFrame(x, n, d, n - keep), 3)]);
  console.log(`t=${t} n=${n} d=${d} (${((x.length * 4) / 2 ** 20).toFixed(0)} MiB)`);
  const base = rows[0]![1];
  for (const [name, ms] of rows) console.log(`  ${name.padEnd(30)} ${ms.toFixed(2).padStart(9)} ms  ${(ms / base).toFixed(2)}x pass`);
}
