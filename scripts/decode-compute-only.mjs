// Decode attention with K/V resident in L2: how fast the kernel computes when
// memory is not the limit. 8 KV heads x nKv keys x headDim 128 (f16: 128
// keys, 512 KiB K+V; f32: 64 keys), nH query heads (32: GQA 32/8, 8: MHA),
// 4,000 calls per sample, process CPU time; the cost of the same call over 16
// keys is subtracted (call overhead). Used for docs/benchmarks.md (issue 13).
//
//   node scripts/decode-compute-only.mjs [checkout=.] [f16|f32] [nH=32]
import path from 'node:path';
const lib = path.resolve(process.argv[2] ?? '.');
const dt = process.argv[3] ?? 'f16';
const nH = +(process.argv[4] ?? 32);
const { attention, setThreads } = await import(lib + '/dist/lib/index.js');
setThreads(1);
const D = 128, H = 8;
function perCallUs(nKv, calls) {
  const n = H * nKv * D;
  const fill = () => (dt === 'f32'
    ? Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37))
    : Uint16Array.from({ length: n }, (_, i) => 0x3000 + ((i * 2654435761) >>> 22)));
  const k = { dtype: dt, shape: [H, nKv, D], data: fill() }, v = { dtype: dt, shape: [H, nKv, D], data: fill() };
  const q = { dtype: 'f32', shape: [nH, 1, D], data: Float32Array.from({ length: nH * D }, (_, i) => Math.cos(i)) };
  const out = new Float32Array(nH * D);
  for (let i = 0; i < 500; i++) attention(q, k, v, { scale: 0.1, out });
  const samples = [];
  for (let r = 0; r < 9; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < calls; i++) attention(q, k, v, { scale: 0.1, out });
    const c = process.cpuUsage(c0);
    samples.push((c.user + c.system) / calls);
  }
  return samples.sort((a, b) => a - b)[4];
}
const nKv = dt === 'f32' ? 64 : 128;
const overhead = perCallUs(16, 4000), full = perCallUs(nKv, 4000);
const bytes = 2 * H * nKv * D * (dt === 'f32' ? 4 : 2), net = full - overhead;
console.log(`${dt} ${nH}/${H} heads: call ${full.toFixed(2)} us, 16-key call ${overhead.toFixed(2)} us, ` +
  `net ${net.toFixed(2)} us for ${bytes / 1024} KiB: ${(bytes / net / 1e3).toFixed(1)} GB/s compute-only`);
