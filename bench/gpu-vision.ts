/**
 * The vision kernels (native/cuda/cuda_reduce.cu) on the CUDA device, run by
 * bench/gpu-check.sh: each op on the issue's shapes (576 and 2,880 tokens,
 * and the 16 x 576 video as 16 calls or one 16-row top-k) at D = 1024 and
 * 4096, median of --iters calls of the device time (CUDA events around the
 * whole call: uploads, kernels, downloads), and the input bytes / that time.
 * Correctness is test/gpu/cuda-vision.test.ts (bit for bit against the host
 * model). Without a device it says so and exits 0.
 *
 * Usage: node dist/bench/gpu-vision.js [--iters N] [--json out.json] [--md out.md]
 */
import { writeFileSync } from 'node:fs';
import { cudaAvailability } from '../lib/cuda.js';
import { native, type NativeVisionKernelParams } from '../lib/native.js';

interface Row {
  op: string;
  n: number;
  d: number;
  calls: number;
  ms: number;
  inputGBs: number;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : def;
}

function rows(n: number, d: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 2 ** 31 - 1;
  }
  return x;
}

const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1] ?? NaN;

function main(): void {
  const cuda = cudaAvailability();
  if (!cuda.available) {
    console.log(`gpu-vision: no CUDA device (${cuda.reason}); nothing measured`);
    return;
  }
  const iters = Number(arg('--iters', '5'));
  const out: Row[] = [];
  for (const d of [1024, 4096]) {
    for (const [n, calls] of [[576, 1], [2880, 1], [576, 16]] as const) {
      const x = rows(n, d, n + d);
      const ops: [string, Omit<NativeVisionKernelParams, 'device'>][] = [
        ['cosine matrix n x n', { op: 1, x, n, d, b: x, nb: n, normalize: true }],
        ['ToMe match + merge (r = n/4)', { op: 2, x, n, d, tokens: x, dt: d, r: n >> 2, protectFirst: false }],
        ['DivPrune (k = 9.8%)', { op: 3, x, n, d, k: Math.round(0.098 * n) }],
        ['k-means assign + sums (K = 32)', { op: 4, x, n, d, b: rows(32, d, 7), nb: 32 }],
        ['top-k (k = n/4)', { op: 5, x: x.subarray(0, n), n, rows: 1, k: n >> 2 }],
      ];
      for (const [name, p] of ops) {
        native().visionKernels({ ...p, device: 1 });  // warm-up
        const t: number[] = [];
        for (let i = 0; i < iters; i++) {
          let ms = 0;
          for (let c = 0; c < calls; c++) ms += native().visionKernels({ ...p, device: 1 }).kernelMs;
          t.push(ms);
        }
        const ms = median(t);
        const bytes = (p.op === 5 ? n : n * d) * 4 * calls;
        out.push({ op: name, n, d, calls, ms, inputGBs: bytes / (ms * 1e6) });
        console.log(`${name}  n=${n}${calls > 1 ? ` x${calls}` : ''} d=${d}: ${ms.toFixed(3)} ms (${(bytes / (ms * 1e6)).toFixed(1)} GB/s of input)`);
      }
    }
  }
  const json = arg('--json', '');
  if (json) writeFileSync(json, JSON.stringify({ device: cuda.devices, iters, rows: out }, null, 2));
  const md = arg('--md', '');
  if (md) {
    const lines = [`Device: ${cuda.devices}; median of ${iters} (CUDA events, copies included)`, '', '| op | n | d | calls | ms | input GB/s |', '| --- | --- | --- | --- | --- | --- |'];
    for (const r of out) lines.push(`| ${r.op} | ${r.n} | ${r.d} | ${r.calls} | ${r.ms.toFixed(3)} | ${r.inputGBs.toFixed(1)} |`);
    writeFileSync(md, lines.join('\n') + '\n');
  }
}

main();
