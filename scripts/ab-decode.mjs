// Decode attention, two or more builds of tokenpress side by side in one
// process: their calls interleaved on the same K/V, a 256 MiB read between
// calls so K/V come from DRAM, the read bandwidth of the same minutes
// printed with every row. Used for the before/after figures of issue 13
// (docs/benchmarks.md).
//
//   T=1 REPS=11 NKV=32768 CASES=mha32,mha16,gqa16,gqa32 \
//     node scripts/ab-decode.mjs /path/to/before-checkout /path/to/after-checkout
//
// Each argument is a built checkout (dist/ and build/Release/). glibc loads a
// shared object once per SONAME, so every build but one needs its own
// SONAME, e.g. for the "before" checkout:
//   python3 -c "p='build/Release/tokenpress.node';b=open(p,'rb').read();open(p,'wb').write(b.replace(b'tokenpress.node\0',b'tokenbase0.node\0'))"
// Columns: "cpu" = K+V bytes / median process CPU time of one call (robust
// to being descheduled), "wallmin" = K+V bytes / fastest wall time.
const repos = process.argv.slice(2), threads = +(process.env.T ?? 1), reps = +(process.env.REPS ?? 11);
const tps = []; for (const r of repos) { const m = await import(r + '/dist/lib/index.js'); m.setThreads(threads); tps.push(m); }
const nKv = +(process.env.NKV ?? 32768), hd = +(process.env.HD ?? 128), nq = +(process.env.NQ ?? 1);
const cases = (process.env.CASES ?? 'mha32,mha16,gqa16').split(',');
function tensor(dtype, shape) {
  const n = shape.reduce((a, b) => a * b, 1);
  if (dtype === 'f32') { const d = new Float32Array(n); for (let i = 0; i < n; i++) d[i] = Math.sin(i * 0.37); return { dtype, shape, data: d }; }
  const d = new Uint16Array(n); for (let i = 0; i < n; i++) d[i] = dtype === 'f16' ? (0x3000 + (i * 7919) % 0x0c00) : (0x3e00 + (i * 7919) % 0x100); return { dtype, shape, data: d };
}
const big = new Float32Array(64 << 20);
const nat = (await import(repos[0] + '/dist/lib/native.js')).native();
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
for (const c of cases) {
  const dt = c.endsWith('32') ? 'f32' : c.endsWith('bf') ? 'bf16' : 'f16';
  const hkv = c.startsWith('gqa') ? 8 : 32;
  const q = tensor('f32', [32, nq, hd]), k = tensor(dt, [hkv, nKv, hd]), v = tensor(dt, [hkv, nKv, hd]);
  const bytes = 2 * hkv * nKv * hd * (dt === 'f32' ? 4 : 2);
  const wall = repos.map(() => []), cpu = repos.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (let x = 0; x < repos.length; x++) {
      const i = (x + r) % repos.length;
      if (!process.env.NOEVICT) { let acc = 0; for (let z = 0; z < big.length; z += 16) acc += big[z]; if (acc === 1.5) console.log(acc); }
      const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
      tps[i].attention(q, k, v, {});
      wall[i].push(Number(process.hrtime.bigint() - t0) / 1e6);
      const cu = process.cpuUsage(c0); cpu[i].push((cu.user + cu.system) / 1e3);
    }
  }
  const bw = []; for (let r = 0; r < 5; r++) bw.push(nat.measureReadBandwidth(512 << 20, threads, 1) / 1e9);
  const line = `readBW med ${med(bw).toFixed(1)} max ${Math.max(...bw).toFixed(1)} | ` + repos.map((r, i) => `${r.split('/').pop()}: cpu ${(bytes / med(cpu[i]) / 1e6).toFixed(1)} wallmin ${(bytes / Math.min(...wall[i]) / 1e6).toFixed(1)}`).join(' | ');
  console.log(`${c} ${threads}t nKv=${nKv} GB/s  ${line}`);
}
