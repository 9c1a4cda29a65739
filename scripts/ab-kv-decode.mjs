// KvCache decode passes (f16 / int8 / int4 caches), two or more builds of
// tokenpress side by side in one process, passes interleaved (rotated order
// per rep), medians of process CPU time and wall time per layer, the bytes
// one attend reads per layer against the read bandwidth measured at the end
// of the same run. Used for the quantized-kernel figures of
// docs/benchmarks.md ("Zen 5, quantized KvCache kernels").
//
//   T=1 REPS=15 node scripts/ab-kv-decode.mjs /path/to/before-checkout /path/to/after-checkout
//
// Each argument is a built checkout (dist/ and build/Release/); every build
// but one needs its own SONAME (see scripts/ab-decode.mjs). The f16 cache is
// built with the first checkout only (F16ALL=1: every one). Env: T threads,
// REPS, L layers (8), NKV tokens (32768), HD headDim (128), HKV KV heads (8),
// NH query heads (32), DT dtypes (f16,int8,int4).
const repos = process.argv.slice(2), threads = +(process.env.T ?? 1), reps = +(process.env.REPS ?? 9);
const L = +(process.env.L ?? 8), nKv = +(process.env.NKV ?? 32768), d = +(process.env.HD ?? 128), H = +(process.env.HKV ?? 8), NH = +(process.env.NH ?? 32);
const dtypes = (process.env.DT ?? 'f16,int8,int4').split(',');
const F16ALL = !!process.env.F16ALL;
const tps = []; for (const r of repos) { const m = await import(r + '/dist/lib/index.js'); m.setThreads(threads); tps.push(m); }
const nat = (await import(repos[0] + '/dist/lib/native.js')).native();
function f16(n, seed) { const o = new Uint16Array(n); let x = seed * 2654435761 >>> 0; const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; const v = (x / 4294967296) * 2 - 1; f[0] = v; const b = u[0];
    // f32 -> f16 bits (round toward zero is fine for test data)
    const s = (b >>> 16) & 0x8000, e = ((b >>> 23) & 0xff) - 127 + 15, m = (b >>> 13) & 0x3ff; o[i] = e <= 0 ? s : s | (e << 10) | m; }
  return o; }
const k = { dtype: 'f16', shape: [H, nKv, d], data: f16(H * nKv * d, 1) }, v = { dtype: 'f16', shape: [H, nKv, d], data: f16(H * nKv * d, 2) };
const qd = new Float32Array(NH * d); for (let i = 0; i < qd.length; i++) qd[i] = Math.sin(i * 0.37);
const q = { dtype: 'f32', shape: [NH, 1, d], data: qd };
const cases = [];
for (let i = 0; i < tps.length; i++) for (const dt of dtypes) {
  if (dt === 'f16' && i > 0 && !F16ALL) continue;
  const c = new tps[i].KvCache({ nLayers: L, nKvHeads: H, headDim: d, capacity: nKv, dtype: dt });
  for (let l = 0; l < L; l++) c.append(l, k, v);
  cases.push({ name: `${repos[i].split('/').pop()}:${dt}`, c, dt, cpu: [], wall: [], out: null });
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const cs of cases) { for (let l = 0; l < L; l++) cs.c.attend(l, q, { remember: false }); cs.out = cs.c.attend(0, q, { remember: false }).output.data; }
for (let r = 0; r < reps; r++) {
  for (let x = 0; x < cases.length; x++) {
    const cs = cases[(x + r) % cases.length];
    const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
    for (let l = 0; l < L; l++) cs.c.attend(l, q, { remember: false });
    cs.wall.push(Number(process.hrtime.bigint() - t0) / 1e6 / L);
    const cu = process.cpuUsage(c0); cs.cpu.push((cu.user + cu.system) / 1e3 / L);
  }
}
const bw = []; for (let r = 0; r < 3; r++) bw.push(nat.measureReadBandwidth(1 << 30, threads, 1) / 1e9);
const f16c = cases.find((c) => c.dt === 'f16');
console.log(`T=${threads} L=${L} nKv=${nKv} d=${d} H=${H} NH=${NH} readBW(1t? ${threads}t) med ${med(bw).toFixed(1)} max ${Math.max(...bw).toFixed(1)} GB/s`);
// Bytes one attend reads per layer: int blocks (codes + f16 scales / mins) + the f16 tail; f16: K + V.
function kernelBytes(dt) {
  if (dt === 'f16') return H * nKv * d * 2 * 2;
  const G = 32, residual = 128, nb = Math.max(0, Math.floor((nKv - residual) / G)), tail = nKv - nb * G;
  const vg = Math.ceil(d / G), codes = dt === 'int8' ? 2 * G * d : G * d;
  const block = Math.ceil((codes + 4 * d + 4 * G * vg) / 64) * 64;
  return H * (nb * block + tail * d * 4);
}
for (const cs of cases) {
  const mem = cs.c.memoryBytes / L;
  let num = 0, den = 0; if (f16c) for (let i = 0; i < cs.out.length; i++) { num += (cs.out[i] - f16c.out[i]) ** 2; den += f16c.out[i] ** 2; }
  const sp = f16c ? ` vsF16 cpu ${(med(f16c.cpu) / med(cs.cpu)).toFixed(2)}x wall ${(med(f16c.wall) / med(cs.wall)).toFixed(2)}x` : '';
  const kb = kernelBytes(cs.dt);
  console.log(`${cs.name.padEnd(22)} kernel reads ${(kb / 2 ** 20).toFixed(1)} MiB/layer = ${(kb / med(cs.wall) / 1e6).toFixed(1)} GB/s (wall med; ${(100 * kb / med(cs.wall) / 1e6 / med(bw)).toFixed(0)}% of read BW med) ${(kb / med(cs.cpu) / 1e6).toFixed(1)} GB/s (cpu med)`);
  console.log(`${cs.name.padEnd(22)} cpu ms/layer med ${med(cs.cpu).toFixed(3)} min ${Math.min(...cs.cpu).toFixed(3)} | wall med ${med(cs.wall).toFixed(3)} min ${Math.min(...cs.wall).toFixed(3)} | ${(mem / 2 ** 20).toFixed(1)} MiB/layer -> ${(mem / med(cs.wall) / 1e6).toFixed(1)} GB/s wall-med${sp} relerr ${Math.sqrt(num / (den || 1)).toExponential(2)}`);
}
