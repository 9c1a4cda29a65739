// The vision kernels on the CUDA device (native/cuda/cuda_reduce.cu) against
// their host model (native/reduce/reduce_device_model.cpp, the same TP_HD
// code of native/reduce/reduce_hd.h run on the CPU; test/unit/
// vision-device-model.test.ts checks the host model against float64 JS
// references). Every output must be equal BIT FOR BIT: the row norms' lane
// tree, each dot's fma chain, the argmax and top-k rules are the same code in
// the same order on both sides. Sizes: awkward (n = 1, 2, odd; d = 1, 3, 67,
// not multiples of the 16-k tiles; k = 0, = n, > n; ties, zero rows), and
// the shapes scaled to keep the host model fast (577 x 1024 ToMe,
// 577 x 256 DivPrune, 2880 x 256 k-means with K = 32, 16 x 2880 top-k).
//
// Without the CUDA build or a device every comparison SKIPS (the describe
// title and a console line give the reason) and one test checks that the
// binding refuses device 1 with code ERR_NO_CUDA and that device 2 (auto)
// falls back to the host model.
import { describe, expect, test } from 'vitest';
import { cudaAvailability } from '../../lib/cuda.js';
import { native, type NativeVisionKernelParams, type NativeVisionKernelResult } from '../../lib/native.js';
import { mulberry32 } from '../reference/random.js';

const cuda = cudaAvailability();
if (!cuda.available) console.warn(`test/gpu: CUDA vision kernel tests skipped: ${cuda.reason}`);
const title = cuda.available ? `CUDA vision kernels on ${cuda.devices}` : `CUDA vision kernels (skipped: ${cuda.reason})`;

function randomRows(n: number, d: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
  return x;
}

/** The device result equals the host model's bit for bit, field by field. */
function same(p: Omit<NativeVisionKernelParams, 'device'>): NativeVisionKernelResult {
  const gpu = native().visionKernels({ ...p, device: 1 });
  const host = native().visionKernels({ ...p, device: 0 });
  expect(gpu.device).toBe('cuda');
  expect(gpu.kernelMs).toBeGreaterThanOrEqual(0);
  for (const f of ['out', 'outSizes', 'nodeMax', 'nodeIdx', 'idx', 'counts'] as const) {
    expect(gpu[f] === undefined).toBe(host[f] === undefined);
    if (host[f]) expect(gpu[f]).toEqual(host[f]);
  }
  return gpu;
}

describe.skipIf(!cuda.available)(title, () => {
  test.each([[1, 1], [7, 3], [33, 67], [577, 1024], [5, 0]])('normalize n=%i d=%i (a zero row)', (n, d) => {
    const x = randomRows(n, d, n + d);
    if (n > 2) x.fill(0, d, 2 * d);
    same({ op: 0, x, n, d });
  });

  test.each([[1, 1, 1], [17, 9, 67], [65, 130, 33], [300, 200, 1024]])('dot and cosine na=%i nb=%i d=%i', (na, nb, d) => {
    const a = randomRows(na, d, na), b = randomRows(nb, d, nb + 1);
    same({ op: 1, x: a, n: na, d, b, nb, normalize: false });
    same({ op: 1, x: a, n: na, d, b, nb, normalize: true });
  });

  test.each<[number, number, number, boolean]>([[1, 4, 3, false], [2, 3, 1, true], [31, 16, 10, true], [101, 33, 0, false], [577, 1024, 288, true]])(
    'ToMe n=%i d=%i r=%i protect=%s',
    (n, d, r, protect) => {
      const metric = randomRows(n, d, n), tokens = randomRows(n, d + 3, 2 * n);
      const sizes = Float32Array.from({ length: n }, (_, i) => 1 + (i % 3));
      same({ op: 2, x: metric, n, d, tokens, dt: d + 3, r, protectFirst: protect });
      same({ op: 2, x: metric, n, d, tokens, dt: d + 3, sizes, r, protectFirst: protect });
    },
  );

  test('ToMe ties: duplicate rows', () => {
    const d = 3, x = Float32Array.from([1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, -1, -2, 0, 1, 2, 0, 0, 0, 0]);
    expect([...same({ op: 2, x, n: 9, d, tokens: x, dt: d, r: 2, protectFirst: false }).idx!]).toEqual([0, 1]);
  });

  test.each([[1, 3, 1], [2, 2, 5], [97, 20, 10], [64, 67, 64], [577, 256, 57]])('DivPrune n=%i d=%i k=%i', (n, d, k) => {
    same({ op: 3, x: randomRows(n, d, n * k), n, d, k });
  });

  test('DivPrune ties: orthogonal and zero rows, duplicates', () => {
    const n = 9, d = 6, x = new Float32Array(n * d);
    for (let i = 0; i < d; i++) x[i * d + i] = 1 + i;
    expect([...same({ op: 3, x, n, d, k: 7 }).idx!]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const base = randomRows(5, 4, 99), dup = new Float32Array(40);
    dup.set(base, 0);
    dup.set(base, 20);
    same({ op: 3, x: dup, n: 10, d: 4, k: 10 });
  });

  test.each([[1, 3, 1], [33, 16, 32], [2880, 256, 32]])('k-means n=%i d=%i K=%i', (n, d, K) => {
    same({ op: 4, x: randomRows(n, d, n), n, d, b: randomRows(K, d, K + 5), nb: K });
  });

  test('top-k: ties, NaN, signed zeros, k = 0, k = n, k > n, 16 rows of 2880', () => {
    const n = 11, rows = 3, rnd = mulberry32(4), s = new Float32Array(rows * n);
    for (let i = 0; i < s.length; i++) s[i] = Math.floor(rnd() * 4) - 1;
    s[3] = NaN;
    s[5] = -0;
    s[n + 2] = Infinity;
    for (const k of [0, 1, 4, 11, 12]) same({ op: 5, x: s, n, rows, k });
    same({ op: 5, x: randomRows(16, 2880, 8), n: 2880, rows: 16, k: 288 });
  });
});

describe.skipIf(cuda.available)('CUDA vision kernels without a device', () => {
  test('device 1 is refused with ERR_NO_CUDA; device 2 runs the host model', () => {
    const x = randomRows(5, 3, 1);
    expect(() => native().visionKernels({ op: 0, device: 1, x, n: 5, d: 3 })).toThrow(expect.objectContaining({ code: 'ERR_NO_CUDA' }));
    const auto = native().visionKernels({ op: 0, device: 2, x, n: 5, d: 3 });
    expect(auto.device).toBe('cpu');
    expect(auto.out).toEqual(native().visionKernels({ op: 0, device: 0, x, n: 5, d: 3 }).out);
  });
});
