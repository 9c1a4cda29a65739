// Speed of the clustering-group vision operators (docs/vision-cluster.md):
// node bench/vision-cluster-speed.mjs T N DIM REPS (after npx tsc -p tsconfig.json and the native build).
import { tensor } from '../dist/lib/tensor.js';
import { vqToken } from '../dist/lib/vision/vqtoken.js';
import { recoverableCompressFrames } from '../dist/lib/vision/recoverable.js';
import { coreMatchingFrames } from '../dist/lib/vision/corematching.js';
import { tokenCorrCompressFrames } from '../dist/lib/vision/tokencorr.js';
const [t, n, dim, reps] = process.argv.slice(2).map(Number);
let a = 1;
const rnd = () => { a = (a * 1103515245 + 12345) >>> 0; return a / 4294967296; };
const x = new Float32Array(t * n * dim);
for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
const cls = new Float32Array(t * n);
for (let i = 0; i < cls.length; i++) cls[i] = 0.01 + 0.002 * rnd() + (rnd() < 0.08 ? 0.05 * rnd() : 0);
const text = x.slice(0, dim);
const act = new Float32Array(t * (n + 1) * dim);
for (let f = 0; f < t; f++) act.set(x.subarray(f * n * dim, (f + 1) * n * dim), f * (n + 1) * dim);
const med = (v) => v.sort((p, q) => p - q)[v.length >> 1];
const time = (f, r) => { const v = []; for (let i = 0; i < r; i++) { const s = process.hrtime.bigint(); f(); v.push(Number(process.hrtime.bigint() - s) / 1e6); } return med(v); };
let sink = 0;
const pass = time(() => { let s = 0; for (let i = 0; i < x.length; i++) s += x[i]; sink += s; }, 41);
console.log(`[${t}, ${n}, ${dim}] one pass (JS f32 sum, median of 41) ${pass.toFixed(2)} ms`);
const T = tensor('f32', [t, n, dim], x);
const ops = {
  'vqtoken K=32': () => vqToken(T),
  recoverable: () => recoverableCompressFrames(T, { clsAttention: cls, textEmbedding: text }),
  corematching: () => coreMatchingFrames(T, { activations: act, rows: n + 1, inter: dim, queryRow: -1 }),
  tokencorr: () => tokenCorrCompressFrames(T, { deepAttention: cls, shallowAttention: cls }),
  'tokencorr projectDim=256': () => tokenCorrCompressFrames(T, { deepAttention: cls, shallowAttention: cls, projectDim: 256 }),
};
for (const [name, f] of Object.entries(ops)) {
  const ms = time(f, reps);
  console.log(`${name}: ${ms.toFixed(1)} ms = ${(ms / pass).toFixed(1)} passes`);
}
