// The vision kernels' shared code (native/reduce/reduce_hd.h, TP_HD: compiled
// into the CUDA kernels of native/cuda/cuda_reduce.cu and, here, into the CPU
// addon) run on the host through `visionKernels` with device 0 (the host
// model, native/reduce/reduce_device_model.cpp), against float64 JS
// references written here from the official rules:
// - row normalisation and the dot / cosine matrix (within f32 rounding);
// - ToMe bipartite soft matching (facebookresearch/ToMe tome/merge.py):
//   best B partner per A row (first maximum), top-r A rows (higher first,
//   lower A index on ties), class-token protection, merge_wavg with sizes;
// - DivPrune (vbdi/divprune llava_arch.py): step 0 by the distance to the
//   nearest other token, then max-min, lowest index on ties, no token picked
//   twice (the CPU divprune_greedy's rule);
// - k-means assignment (argmax cosine, lowest centroid on ties) and the
//   centroid means of the normalised tokens, and counts (native/reduce/kmeans.cpp);
// - top-k with ascending output (NaN after every number, -0 as +0, lower
//   index on ties: native/reduce/topk.h ranks_before).
// Awkward sizes: n = 0, 1, 2, odd; d = 1, 3, 67; k = 0, = n, > n; duplicate
// rows (exact ties), zero rows, orthogonal rows (every distance exactly 1).
// test/gpu/cuda-vision.test.ts compares the device with this host model bit
// for bit.
import { describe, expect, test } from 'vitest';
import { native, type NativeVisionKernelParams, type NativeVisionKernelResult } from '../../lib/native.js';
import { divPrune } from '../../lib/vision/divprune.js';
import { tomeMerge } from '../../lib/vision/tome.js';
import { mulberry32 } from '../reference/random.js';

const run = (p: Omit<NativeVisionKernelParams, 'device'>): NativeVisionKernelResult => native().visionKernels({ ...p, device: 0 });

function randomRows(n: number, d: number, seed: number): Float32Array {
  const rnd = mulberry32(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = rnd() * 2 - 1;
  return x;
}

// -- float64 references ---------------------------------------------------------

function refNormalize(x: Float32Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[i * d + k]! * x[i * d + k]!;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let k = 0; k < d; k++) out[i * d + k] = x[i * d + k]! * inv;
  }
  return out;
}

function refDot(a: ArrayLike<number>, na: number, b: ArrayLike<number>, nb: number, d: number): Float64Array {
  const out = new Float64Array(na * nb);
  for (let i = 0; i < na; i++) {
    for (let j = 0; j < nb; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a[i * d + k]! * b[j * d + k]!;
      out[i * nb + j] = s;
    }
  }
  return out;
}

/** Higher first, NaN after every number, lower index on ties: the k best indices, ascending. */
function refTopk(scores: ArrayLike<number>, candidates: number[], k: number): number[] {
  const before = (p: number, q: number): number => {
    const a = scores[p]!, b = scores[q]!;
    if (Number.isNaN(a) !== Number.isNaN(b)) return Number.isNaN(a) ? 1 : -1;
    if (!Number.isNaN(a) && a !== b) return a > b ? -1 : 1;
    return p - q;
  };
  return [...candidates].sort(before).slice(0, Math.max(0, k)).sort((p, q) => p - q);
}

function refTome(metric: Float32Array, tokens: Float32Array, sizes: Float32Array | null, n: number, d: number, dt: number, r: number, protect: boolean) {
  const xn = refNormalize(metric, n, d);
  const na = Math.ceil(n / 2), nb = Math.floor(n / 2);
  const nodeMax: number[] = [], nodeIdx: number[] = [];
  for (let i = 0; i < na; i++) {
    let best = -Infinity, arg = nb > 0 ? 0 : -1;
    if (!(protect && i === 0)) {
      for (let j = 0; j < nb; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += xn[2 * i * d + k]! * xn[(2 * j + 1) * d + k]!;
        if (s > best) { best = s; arg = j; }  // the first maximum
      }
    }
    nodeMax.push(best);
    nodeIdx.push(arg);
  }
  const rr = Math.max(0, Math.min(r, Math.floor((n - (protect ? 1 : 0)) / 2)));
  const cands = [...Array(na).keys()].filter((i) => !(protect && i === 0));
  const src = refTopk(nodeMax, cands, rr);
  const size = (t: number) => (sizes ? sizes[t]! : 1);
  const out = new Float64Array(nb * dt), outSizes = new Float64Array(nb);
  for (let q = 0; q < nb; q++) {
    const members = [2 * q + 1, ...src.filter((i) => nodeIdx[i] === q).map((i) => 2 * i)];
    let total = 0;
    for (const t of members) total += size(t);
    outSizes[q] = total;
    for (let c = 0; c < dt; c++) {
      let acc = 0;
      for (const t of members) acc += tokens[t * dt + c]! * size(t);
      out[q * dt + c] = acc / total;
    }
  }
  return { nodeMax, nodeIdx, src, out, outSizes };
}

/** DivPrune picks in pick order, and the distance each was picked at. */
function refDivPrune(x: Float32Array, n: number, d: number, k: number): { picks: number[]; at: number[] } {
  const xn = refNormalize(x, n, d);
  const dist = (i: number, j: number) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += xn[i * d + c]! * xn[j * d + c]!;
    return 1 - s;
  };
  const score = new Float64Array(n);  // step 0: the distance to the nearest other token
  for (let j = 0; j < n; j++) {
    let m = Infinity;
    for (let i = 0; i < n; i++) if (i !== j) m = Math.min(m, dist(i, j));
    score[j] = m;
  }
  const picks: number[] = [], at: number[] = [], taken = new Uint8Array(n);
  for (let s = 0; s < Math.min(k, n); s++) {
    if (s > 0) for (let j = 0; j < n; j++) score[j] = s === 1 ? dist(picks[0]!, j) : Math.min(score[j]!, dist(picks[s - 1]!, j));
    let best = -Infinity, arg = -1;
    for (let j = 0; j < n; j++) if (!taken[j] && (arg < 0 || score[j]! > best)) { best = score[j]!; arg = j; }
    picks.push(arg);
    at.push(best);
    taken[arg] = 1;
  }
  return { picks, at };
}

function refKMeans(x: Float32Array, n: number, d: number, c: Float32Array, K: number) {
  const xn = refNormalize(x, n, d);
  const cos = refDot(xn, n, refNormalize(c, K, d), K, d);
  const assign: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = -Infinity, arg = 0;
    for (let j = 0; j < K; j++) if (cos[i * K + j]! > best) { best = cos[i * K + j]!; arg = j; }
    assign.push(arg);
  }
  const sums = new Float64Array(K * d), counts = new Array<number>(K).fill(0);
  assign.forEach((a, i) => {
    counts[a] = counts[a]! + 1;
    for (let e = 0; e < d; e++) sums[a * d + e] = sums[a * d + e]! + xn[i * d + e]!;
  });
  const means = sums.map((v, i) => (counts[Math.floor(i / d)]! > 0 ? v / counts[Math.floor(i / d)]! : 0));
  return { assign, means, counts };
}

function expectClose(got: Float32Array | undefined, want: ArrayLike<number>, tol: number): void {
  expect(got).toBeDefined();
  expect(got!.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got![i]! - want[i]!) / Math.max(1, Math.abs(want[i]!)));
  expect(worst).toBeLessThanOrEqual(tol);
}

// -- tests ----------------------------------------------------------------------------

describe('vision kernels: host model of the device (normalize, dot)', () => {
  test.each([[0, 5], [1, 1], [7, 3], [33, 67], [5, 0]])('normalize n=%i d=%i, zero rows stay zero', (n, d) => {
    const x = randomRows(n, d, n * 7 + d);
    if (n > 2) x.fill(0, d, 2 * d);  // row 1 zero
    const before = x.slice();
    const r = run({ op: 0, x, n, d });
    expectClose(r.out, refNormalize(x, n, d), 2e-7);
    if (n > 2) expect([...r.out!.subarray(d, 2 * d)].every((v) => v === 0)).toBe(true);
    expect(x).toEqual(before);
    expect(r.device).toBe('cpu');
  });

  test.each([[1, 1, 1], [3, 5, 1], [17, 9, 67], [65, 70, 33], [2, 3, 0]])('dot and cosine na=%i nb=%i d=%i', (na, nb, d) => {
    const a = randomRows(na, d, 11 + na), b = randomRows(nb, d, 13 + nb);
    expectClose(run({ op: 1, x: a, n: na, d, b, nb, normalize: false }).out, refDot(a, na, b, nb, d), 1e-5);
    const cos = run({ op: 1, x: a, n: na, d, b, nb, normalize: true }).out!;
    expectClose(cos, refDot(refNormalize(a, na, d), na, refNormalize(b, nb, d), nb, d), 1e-6);
  });

  test('a self-similarity is symmetric bit for bit (the DivPrune kernel relies on it)', () => {
    const n = 37, d = 29, x = randomRows(n, d, 5);
    const s = run({ op: 1, x, n, d, b: x, nb: n, normalize: true }).out!;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(s[i * n + j]).toBe(s[j * n + i]);
  });
});

describe('vision kernels: ToMe bipartite matching and merge', () => {
  const cases: [number, number, number, boolean, boolean][] = [
    // n, d, r, protectFirst, sizes
    [1, 4, 3, false, false],
    [2, 3, 1, false, true],
    [3, 3, 5, true, false],
    [9, 8, 2, false, true],
    [31, 16, 10, true, true],
    [64, 24, 40, false, false],
    [101, 33, 0, false, true],
  ];
  test.each(cases)('n=%i d=%i r=%i protect=%s sizes=%s', (n, d, r, protect, withSizes) => {
    const metric = randomRows(n, d, n + d), dt = d + 3, tokens = randomRows(n, dt, 3 * n);
    const sizes = withSizes ? Float32Array.from({ length: n }, (_, i) => 1 + (i % 4)) : undefined;
    const got = run({ op: 2, x: metric, n, d, tokens, dt, sizes, r, protectFirst: protect });
    const want = refTome(metric, tokens, sizes ?? null, n, d, dt, r, protect);
    expect([...got.nodeIdx!]).toEqual(want.nodeIdx);
    expect(got.nodeMax!.length).toBe(want.nodeMax.length);
    want.nodeMax.forEach((v, i) => {
      if (v === -Infinity) expect(got.nodeMax![i]).toBe(-Infinity);  // the class token, or no B row
      else expect(Math.abs(got.nodeMax![i]! - v)).toBeLessThanOrEqual(1e-6);
    });
    expect([...got.idx!]).toEqual(want.src);
    expectClose(got.out, want.out, 1e-6);
    expect([...got.outSizes!]).toEqual([...want.outSizes]);
  });

  test('exact ties: duplicate B rows go to the lower B index, equal A scores to the lower A index', () => {
    // rows: A0 = u, B0 = v, A1 = u, B1 = v, A2 = u, B2 = w, A3 = -u (+ a last A row)
    const d = 3, u = [1, 2, 0], v = [1, 2, 0], w = [1, 2, 0], neg = [-1, -2, 0];
    const rows = [u, v, u, v, u, w, neg, v, [0, 0, 0]];
    const n = rows.length, x = Float32Array.from(rows.flat());
    const got = run({ op: 2, x, n, d, tokens: x, dt: d, r: 2, protectFirst: false });
    const want = refTome(x, x, null, n, d, d, 2, false);
    expect([...got.nodeIdx!]).toEqual([0, 0, 0, 0, 0]);  // every B row ties: the first
    expect([...got.nodeIdx!]).toEqual(want.nodeIdx);
    expect([...got.idx!]).toEqual([0, 1]);  // A0, A1, A2 tie at cos 1: the lowest two
    expect([...got.idx!]).toEqual(want.src);
    expect([...got.outSizes!]).toEqual([3, 1, 1, 1]);
  });
});

describe('vision kernels: DivPrune greedy max-min', () => {
  test.each([[1, 3, 1], [2, 2, 5], [7, 5, 3], [40, 12, 4], [97, 20, 10], [64, 67, 64]])('n=%i d=%i k=%i', (n, d, k) => {
    const x = randomRows(n, d, 17 * n + k);
    const got = [...run({ op: 3, x, n, d, k }).idx!];
    const want = refDivPrune(x, n, d, k);
    expect(got.length).toBe(Math.min(k, n));
    expect(new Set(got).size).toBe(got.length);  // never picked twice
    // Identical while the picked distance is clear of f32 rounding; past it
    // (only near-duplicates left) the order may differ, the set rule holds.
    const clear = want.at.findIndex((a) => a < 1e-4);
    const upto = clear < 0 ? got.length : clear;
    expect(got.slice(0, upto)).toEqual(want.picks.slice(0, upto));
  });

  test('ties: orthogonal and zero rows (every distance exactly 1) are picked lowest index first', () => {
    const n = 9, d = 6, x = new Float32Array(n * d);
    for (let i = 0; i < d; i++) x[i * d + i] = 1 + i;  // rows 0..5 orthogonal, 6..8 zero
    expect([...run({ op: 3, x, n, d, k: 7 }).idx!]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(refDivPrune(x, n, d, 7).picks).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  test('duplicates: a duplicate of a picked row comes after every distinct row', () => {
    const d = 4, base = randomRows(5, d, 99);
    const x = new Float32Array(7 * d);
    x.set(base, 0);
    x.set(base.subarray(0, 2 * d), 5 * d);  // rows 5, 6 duplicate rows 0, 1
    const got = [...run({ op: 3, x, n: 7, d, k: 7 }).idx!];
    expect([...got.slice(0, 5)].sort()).toEqual([0, 1, 2, 3, 4]);  // equal rows tie: the lower index first
    expect(got.slice(0, 5)).toEqual(refDivPrune(x, 7, d, 5).picks);
    expect(new Set(got).size).toBe(7);
  });
});

describe('vision kernels: DivPrune with a non-finite token', () => {
  test('a token with a NaN or an infinite value is picked last (the CPU greedy ranks it last)', () => {
    for (const bad of [NaN, Infinity]) {
      const x = randomRows(6, 4, 31);
      x[2 * 4 + 1] = bad;
      const got = [...run({ op: 3, x, n: 6, d: 4, k: 6 }).idx!];
      expect(got[5]).toBe(2);
      expect(new Set(got).size).toBe(6);
    }
  });
});

describe('vision kernels: k-means assignment and centroid means', () => {
  test.each([[1, 3, 1], [9, 5, 2], [33, 16, 32], [200, 8, 7]])('n=%i d=%i K=%i', (n, d, K) => {
    const x = randomRows(n, d, n + K), c = randomRows(K, d, 7 * K);
    const got = run({ op: 4, x, n, d, b: c, nb: K });
    const want = refKMeans(x, n, d, c, K);
    expect([...got.idx!]).toEqual(want.assign);
    expect([...got.counts!]).toEqual(want.counts);
    expectClose(got.out, want.means, 1e-6);
  });

  test('ties: duplicate centroids and zero rows go to the lowest centroid', () => {
    const d = 3, x = Float32Array.from([1, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    const c = Float32Array.from([0, 1, 0, 1, 0, 0, 3, 0, 0]);  // centroids 1 and 2 point the same way
    const got = run({ op: 4, x, n: 4, d, b: c, nb: 3 });
    expect([...got.idx!]).toEqual([1, 0, 0, 1]);
    expect([...got.idx!]).toEqual(refKMeans(x, 4, d, c, 3).assign);
    expect([...got.counts!]).toEqual([2, 2, 0]);
    expect([...got.out!]).toEqual([0, 0.5, 0, 1, 0, 0, 0, 0, 0]);  // means of the normalised rows; empty: zeros
  });
});

describe('vision kernels: top-k with ascending output', () => {
  test('ties, NaN, signed zeros, k = 0, k = n, k > n, several rows', () => {
    const n = 11, rows = 3, rnd = mulberry32(4);
    const s = new Float32Array(rows * n);
    for (let i = 0; i < s.length; i++) s[i] = Math.floor(rnd() * 4) - 1;  // many ties
    s[3] = NaN;
    s[5] = -0;
    s[n + 2] = Infinity;
    s[2 * n + 7] = -Infinity;
    s[8] = -Infinity;  // row 0: NaN (index 3) ranks after -inf
    for (const k of [0, 1, 4, 10, 11, 12]) {
      const got = run({ op: 5, x: s, n, rows, k }).idx!;
      const kk = Math.min(k, n);
      expect(got.length).toBe(rows * kk);
      for (let r = 0; r < rows; r++) {
        const row = s.subarray(r * n, (r + 1) * n);
        expect([...got.subarray(r * kk, (r + 1) * kk)]).toEqual(refTopk(row, [...Array(n).keys()], kk));
      }
    }
  });

  test.each([[1, 1], [1000, 37], [4099, 4098]])('random scores n=%i k=%i', (n, k) => {
    const s = randomRows(1, n, n);
    expect([...run({ op: 5, x: s, n, rows: 1, k }).idx!]).toEqual(refTopk(s, [...Array(n).keys()], k));
  });
});

describe('vision kernels: the same selections as the CPU operators (lib/vision)', () => {
  test.each([[37, 16, 9], [120, 33, 12]])('DivPrune n=%i d=%i keep=%i: the picks, sorted, are divPrune\'s', (n, d, keep) => {
    const x = randomRows(n, d, n * 3 + d);
    const got = [...run({ op: 3, x, n, d, k: keep }).idx!].sort((a, b) => a - b);
    expect(got).toEqual([...divPrune({ dtype: 'f32', shape: [n, d], data: x }, { keep }).indices.data]);
  });

  test.each<[number, number, number, boolean]>([[31, 16, 10, true], [64, 24, 20, false]])('ToMe n=%i d=%i r=%i class=%s: the merges and merged rows are tomeMerge\'s', (n, d, r, cls) => {
    const x = randomRows(n, d, n + 77), sizes = Float32Array.from({ length: n }, (_, i) => 1 + (i % 3));
    const dev = run({ op: 2, x, n, d, tokens: x, dt: d, sizes, r, protectFirst: cls });
    const cpu = tomeMerge({ dtype: 'f32', shape: [n, d], data: x }, { r, classToken: cls, sizes });
    const na = Math.ceil(n / 2), nb = Math.floor(n / 2), rr = dev.idx!.length, nu = na - rr;
    const a = cpu.assignment.data;
    const merged = new Set(dev.idx!);
    for (let i = 0; i < na; i++) {
      if (merged.has(i)) expect(a[2 * i]).toBe(nu + dev.nodeIdx![i]!);
      else expect(a[2 * i]!).toBeLessThan(nu);
    }
    for (let q = 0; q < nb; q++) expect(a[2 * q + 1]).toBe(nu + q);
    expectClose(dev.out, cpu.tokens.data.subarray(nu * d), 1e-6);
    expect([...dev.outSizes!]).toEqual([...cpu.sizes.data.subarray(nu)]);
  });
});

describe('vision kernels: arguments', () => {
  const x = new Float32Array(6);
  test.each<[Record<string, unknown>, RegExp]>([
    [{ op: 9, device: 0, x, n: 2, d: 3 }, /op: expected an integer in \[0, 5\], received 9/],
    [{ op: 0, device: 3, x, n: 2, d: 3 }, /device: expected an integer in \[0, 2\], received 3/],
    [{ op: 0, device: 0, x, n: 2, d: 4 }, /x: expected 8 elements \(\[n, d\]\), received 6/],
    [{ op: 0, device: 0, x: [1, 2], n: 1, d: 2 }, /x: expected a Float32Array, received/],
    [{ op: 2, device: 0, x, n: 2, d: 3, tokens: x, dt: 3, r: 1, protectFirst: false, sizes: Float32Array.of(1, 0) }, /sizes\[1\]: expected a finite number > 0, received 0/],
    [{ op: 4, device: 0, x, n: 2, d: 3, b: new Float32Array(0), nb: 0 }, /nb: expected an integer in \[1, /],
    [{ op: 1, device: 0, x, n: 2, d: 3, b: x, nb: 2 }, /normalize: expected a boolean/],
  ])('%o is refused', (p, msg) => {
    const before = x.slice();
    expect(() => native().visionKernels(p as never)).toThrow(msg);
    expect(x).toEqual(before);
  });

  test('device 2 (auto) without a GPU runs the host model with the same bits', () => {
    const a = randomRows(13, 7, 1);
    const host = run({ op: 2, x: a, n: 13, d: 7, tokens: a, dt: 7, r: 4, protectFirst: true });
    const auto = native().visionKernels({ op: 2, device: 2, x: a, n: 13, d: 7, tokens: a, dt: 7, r: 4, protectFirst: true });
    const cuda = native().backendInfo().cuda;
    expect(auto.device).toBe(cuda.compiled && cuda.deviceCount > 0 ? 'cuda' : 'cpu');
    expect(auto.out).toEqual(host.out);
    expect(auto.idx).toEqual(host.idx);
  });
});
