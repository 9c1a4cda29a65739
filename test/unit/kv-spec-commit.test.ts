// KvCache speculative decoding: tree attend against a float64 reference, and
// commit / rollback against a cache that only ever saw the kept tokens (bit
// for bit: export, attend outputs, Quest summaries, later positions), for
// f32, f16, int8 and int4 caches, several layers, GQA, ragged heads; hostile
// arguments leave the cache unchanged.
import { describe, expect, test } from 'vitest';
import { KvCache, type KvCacheDtype, type KvCacheOptions } from '../../lib/index.js';
import { mulberry32, randomF32, type Rng } from '../reference/random.js';
import { f32 } from './kv-helpers.js';

const DTYPES: KvCacheDtype[] = ['f32', 'f16', 'int8', 'int4'];
const d = 40, H = 2, NH = 6; // GQA: 3 query heads per KV head
// Small groups and residual window so trees cross group boundaries.
const BASE: Omit<KvCacheOptions, 'dtype'> = { nLayers: 3, nKvHeads: H, headDim: d, groupSize: 8, residual: 12, speculative: 48 };

/** Random parents: node 0 a root, later nodes hang under an earlier node (sometimes a new root). */
function randomTree(rng: Rng, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => (i === 0 || rng() < 0.08 ? -1 : Math.floor(rng() * i)));
}
const depths = (p: Int32Array): Int32Array => {
  const dep = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) dep[i] = p[i]! < 0 ? 0 : dep[p[i]!]! + 1;
  return dep;
};
/** Root-to-leaf path of the deepest node (ascending: parents come first). */
function deepestPath(p: Int32Array): number[] {
  const dep = depths(p);
  let at = dep.indexOf(Math.max(...dep));
  const path: number[] = [];
  for (; at >= 0; at = p[at]!) path.unshift(at);
  return path;
}

/** Rows [H, n, d] of one layer, selected along the token axis. */
function pick(x: Float32Array, n: number, rows: number[]): Float32Array {
  const out = new Float32Array(H * rows.length * d);
  for (let h = 0; h < H; h++) rows.forEach((r, j) => out.set(x.subarray((h * n + r) * d, (h * n + r + 1) * d), (h * rows.length + j) * d));
  return out;
}

interface Step { k: Float32Array; v: Float32Array; n: number; positions?: Int32Array }

/** A prefix (two appends per layer, different data per layer), optionally ragged by an adakv compression. */
function prefix(rng: Rng, n0: number): Step[][] {
  return Array.from({ length: BASE.nLayers }, () => {
    const a = Math.floor(n0 / 3);
    return [a, n0 - a].map((n) => ({ k: randomF32(rng, H * n * d), v: randomF32(rng, H * n * d), n }));
  });
}
function build(dtype: KvCacheDtype, steps: Step[][], ragged: boolean, extra: Partial<KvCacheOptions> = {}): KvCache {
  const c = new KvCache({ ...BASE, dtype, ...extra });
  steps.forEach((layer, l) => {
    for (const s of layer) c.append(l, f32([H, s.n, d], s.k), f32([H, s.n, d], s.v), s.positions ? { positions: s.positions } : undefined);
  });
  if (ragged) c.compress({ name: 'adakv', scorer: { name: 'knorm' }, alpha: 0.3 }, { keep: steps[0]!.reduce((t, s) => t + s.n, 0) - 5 });
  return c;
}

function snapshot(c: KvCache): string {
  const parts: unknown[] = [Array.from(c.lengths().data)];
  for (let l = 0; l < c.nLayers; l++) {
    const e = c.export(l);
    parts.push(Array.from(e.k.data), Array.from(e.v.data), Array.from(e.positions.data), Array.from(e.counts.data), Array.from(e.lengths));
  }
  return JSON.stringify(parts);
}

function expectSameCache(a: KvCache, b: KvCache, label: string): void {
  for (let l = 0; l < a.nLayers; l++) {
    const ea = a.export(l), eb = b.export(l); // the cache dtype (f16 bits for int caches): bit for bit
    expect(Array.from(ea.lengths), `${label} layer ${l} lengths`).toEqual(Array.from(eb.lengths));
    expect(Array.from(ea.positions.data), `${label} layer ${l} positions`).toEqual(Array.from(eb.positions.data));
    expect(Buffer.from(ea.k.data.buffer).equals(Buffer.from(eb.k.data.buffer)), `${label} layer ${l} k`).toBe(true);
    expect(Buffer.from(ea.v.data.buffer).equals(Buffer.from(eb.v.data.buffer)), `${label} layer ${l} v`).toBe(true);
    expect(Array.from(ea.counts.data), `${label} layer ${l} counts`).toEqual(Array.from(eb.counts.data));
  }
}

function expectSameAttend(a: KvCache, b: KvCache, rng: Rng, label: string, sparse = false): void {
  for (let l = 0; l < a.nLayers; l++) {
    const q = f32([NH, 2, d], randomF32(rng, NH * 2 * d));
    const opts = sparse ? { sparse: { method: 'quest' as const, budget: 16, pageSize: 4 }, returnLse: true } : { returnLse: true };
    const ra = a.attend(l, q, opts), rb = b.attend(l, q, opts);
    expect(Buffer.from(ra.output.data.buffer).equals(Buffer.from(rb.output.data.buffer)), `${label} layer ${l} attend${sparse ? ' (quest)' : ''}`).toBe(true);
    expect(Array.from(ra.lse!.data), `${label} layer ${l} lse`).toEqual(Array.from(rb.lse!.data));
  }
}

function expectSameSummaries(a: KvCache, b: KvCache, label: string): void {
  for (let l = 0; l < a.nLayers; l++) {
    const sa = a.questSummaries(l), sb = b.questSummaries(l);
    expect(sa.pageSize, `${label} layer ${l} pageSize`).toBe(4);
    expect(Array.from(sa.headPages), `${label} layer ${l} pages`).toEqual(Array.from(sb.headPages));
    expect(Array.from(sa.kmin.data), `${label} layer ${l} kmin`).toEqual(Array.from(sb.kmin.data));
    expect(Array.from(sa.kmax.data), `${label} layer ${l} kmax`).toEqual(Array.from(sb.kmax.data));
  }
}

/** Float64 attention of one query head over visible rows of exported f32 keys / values. */
function refRow(q: Float32Array, qOff: number, k: Float32Array, v: Float32Array, rowOff: number, rows: number[]): Float64Array {
  const scale = 1 / Math.sqrt(d);
  const logits = rows.map((r) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += q[qOff + c]! * k[(rowOff + r) * d + c]!;
    return s * scale;
  });
  const m = Math.max(...logits);
  const w = logits.map((x) => Math.exp(x - m));
  const z = w.reduce((a, b) => a + b, 0);
  const out = new Float64Array(d);
  rows.forEach((r, j) => {
    for (let c = 0; c < d; c++) out[c]! += (w[j]! / z) * v[(rowOff + r) * d + c]!;
  });
  return out;
}

describe('tree attend (opts.treeMask) against a float64 reference', () => {
  for (const dtype of DTYPES) for (const nodes of [1, 7, 80]) {
    test(`${dtype}, ${nodes} nodes, headDim ${d}, GQA ${NH}/${H}`, () => {
      const rng = mulberry32(11 + nodes);
      const n0 = 37;
      const c = build(dtype, prefix(rng, n0).slice(0, 1).concat([[], []]), false);
      const parents = randomTree(rng, nodes);
      const dep = depths(parents);
      c.append(0, f32([H, nodes, d], randomF32(rng, H * nodes * d)), f32([H, nodes, d], randomF32(rng, H * nodes * d)),
        { positions: Int32Array.from(dep, (x) => n0 + x) });
      const q = f32([NH, nodes, d], randomF32(rng, NH * nodes * d));
      const e = c.export(0, { dtype: 'f32' });
      const L = e.lengths[0]!, maxLen = e.k.shape[1]!;
      const k = e.k.data as Float32Array, v = e.v.data as Float32Array;
      for (const causal of [true, false]) {
        const got = c.attend(0, q, { treeMask: dtype === 'f16' ? Array.from(parents) : parents, causal }).output.data;
        let worst = 0;
        for (let hq = 0; hq < NH; hq++) {
          const h = Math.floor(hq / (NH / H));
          for (let i = 0; i < nodes; i++) {
            const rows = Array.from({ length: L - nodes }, (_, r) => r);
            for (let a = i; a >= 0; a = parents[a]!) rows.push(L - nodes + a);
            const ref = refRow(q.data, (hq * nodes + i) * d, k, v, h * maxLen, rows);
            for (let x = 0; x < d; x++) worst = Math.max(worst, Math.abs(got[(hq * nodes + i) * d + x]! - ref[x]!));
          }
        }
        // f32 arithmetic over <= 117 keys of |x| <= 1 (headDim 40): far below 1e-4.
        expect(worst, `causal ${causal}`).toBeLessThan(1e-4);
      }
    });
  }

  test('causal true and false give the same outputs (the tree replaces the causal rule)', () => {
    const rng = mulberry32(5);
    const c = build('f16', prefix(rng, 20), false);
    const parents = randomTree(rng, 9);
    c.append(1, f32([H, 9, d], randomF32(rng, H * 9 * d)), f32([H, 9, d], randomF32(rng, H * 9 * d)));
    const q = f32([NH, 9, d], randomF32(rng, NH * 9 * d));
    const a = c.attend(1, q, { treeMask: parents }).output.data;
    const b = c.attend(1, q, { treeMask: parents, causal: false }).output.data;
    expect(Array.from(a)).toEqual(Array.from(b));
    // A chain is the causal rule: the same as a plain causal attend.
    const chain = Int32Array.from({ length: 9 }, (_, i) => i - 1);
    expect(Array.from(c.attend(1, q, { treeMask: chain }).output.data)).toEqual(Array.from(c.attend(1, q, { remember: false }).output.data));
  });

  test('refused clearly: sparse, accumulateMass, remember, wrong length, bad parent, longer than a head', () => {
    const rng = mulberry32(6);
    const c = build('f32', prefix(rng, 10), false);
    const q = f32([NH, 3, d], randomF32(rng, NH * 3 * d));
    const before = snapshot(c);
    expect(() => c.attend(0, q, { treeMask: [-1, 0, 0], sparse: { method: 'quest', budget: 8 } })).toThrow(/opts\.treeMask: expected a dense attend/);
    expect(() => c.attend(0, q, { treeMask: [-1, 0, 0], accumulateMass: true })).toThrow(/opts\.accumulateMass: expected false with opts\.treeMask/);
    expect(() => c.attend(0, q, { treeMask: [-1, 0, 0], remember: true })).toThrow(/opts\.remember: expected false/);
    expect(() => c.attend(0, q, { treeMask: [-1, 0] })).toThrow(/opts\.treeMask\.length: expected nQ = 3/);
    expect(() => c.attend(0, q, { treeMask: [-1, 2, 0] })).toThrow(/opts\.treeMask\[1\]: expected -1 \(a root\) or the index of an earlier node in \[0, 0\], received 2/);
    expect(() => c.attend(0, q, { treeMask: 'x' as never })).toThrow(TypeError);
    const big = f32([NH, 11, d], randomF32(rng, NH * 11 * d));
    expect(() => c.attend(0, big, { treeMask: new Int32Array(11).fill(-1) })).toThrow(/treeMask: expected at most 10 tree nodes \(layer 0 head 0 holds 10 tokens\)/);
    expect(snapshot(c)).toBe(before);
  });
});

describe('commit keeps the accepted path: the cache equals one that only saw it', () => {
  // [tokens before the tree, tree nodes]: int caches (group 8, residual 12)
  // cross a group boundary with the tree (43 + 10), have tree rows quantized
  // (43 + 30), or stay within the residual window (20 + 5).
  const SHAPES: [number, number][] = [[43, 10], [43, 30], [20, 5], [31, 1]];
  for (const dtype of DTYPES) for (const [n0, T] of SHAPES) for (const ragged of [false, true]) {
    test(`${dtype}: ${n0} tokens + a tree of ${T}${ragged ? ', ragged heads' : ''}`, () => {
      const rng = mulberry32(n0 * 100 + T);
      const pre = prefix(rng, n0);
      const spec = build(dtype, pre, ragged), ref = build(dtype, pre, ragged);
      expectSameAttend(spec, ref, mulberry32(1), 'before', true); // builds Quest summaries (pageSize 4) on both
      const parents = randomTree(rng, T);
      const path = deepestPath(parents);
      const dep = depths(parents);
      for (let l = 0; l < BASE.nLayers; l++) {
        const base = spec.export(l).positions.data.reduce((m, x) => Math.max(m, x), -1) + 1;
        const k = randomF32(rng, H * T * d), v = randomF32(rng, H * T * d);
        spec.append(l, f32([H, T, d], k), f32([H, T, d], v), { positions: Int32Array.from(dep, (x) => base + x) });
        spec.attend(l, f32([NH, T, d], randomF32(rng, NH * T * d)), { treeMask: parents });
        ref.append(l, f32([H, path.length, d], pick(k, T, path)), f32([H, path.length, d], pick(v, T, path)),
          { positions: Int32Array.from(path, (_, j) => base + j) });
      }
      spec.commit(path, { treeSize: T });
      expectSameCache(spec, ref, 'after commit');
      expectSameSummaries(spec, ref, 'after commit');
      expectSameAttend(spec, ref, mulberry32(2), 'after commit');
      expectSameAttend(spec, ref, mulberry32(3), 'after commit', true);
      // Later appends count positions on from the same place, and quantize the same groups.
      for (let l = 0; l < BASE.nLayers; l++) {
        const n = 9, k = randomF32(rng, H * n * d), v = randomF32(rng, H * n * d);
        spec.append(l, f32([H, n, d], k), f32([H, n, d], v));
        ref.append(l, f32([H, n, d], k), f32([H, n, d], v));
      }
      expectSameCache(spec, ref, 'after a later append');
      expectSameSummaries(spec, ref, 'after a later append');
    });
  }

  test('H2O mass moves with its tokens (compress by h2o keeps the same tokens)', () => {
    const rng = mulberry32(77);
    const pre = prefix(rng, 24);
    const spec = build('f16', pre, false), ref = build('f16', pre, false);
    const parents = randomTree(rng, 12), path = deepestPath(parents);
    for (let l = 0; l < BASE.nLayers; l++) {
      const k = randomF32(rng, H * 12 * d), v = randomF32(rng, H * 12 * d);
      spec.append(l, f32([H, 12, d], k), f32([H, 12, d], v), { positions: Int32Array.from(depths(parents), (x) => 24 + x) });
      ref.append(l, f32([H, path.length, d], pick(k, 12, path)), f32([H, path.length, d], pick(v, 12, path)), { positions: Int32Array.from(path, (_, j) => 24 + j) });
    }
    spec.commit(path, { treeSize: 12 });
    for (let l = 0; l < BASE.nLayers; l++) {
      const q = f32([NH, 4, d], randomF32(rng, NH * 4 * d));
      spec.attend(l, q, { accumulateMass: true });
      ref.attend(l, q, { accumulateMass: true });
    }
    spec.compress({ name: 'h2o', recent: 2 }, { keep: 15 });
    ref.compress({ name: 'h2o', recent: 2 }, { keep: 15 });
    expectSameCache(spec, ref, 'after h2o');
  });

  test('speculative: 0 on an int cache: exact within the window, close past a group boundary', () => {
    const rng = mulberry32(8);
    const pre = prefix(rng, 43);
    const spec = build('int8', pre, false, { speculative: 0 }), ref = build('int8', pre, false, { speculative: 0 });
    const k = randomF32(rng, H * 10 * d), v = randomF32(rng, H * 10 * d);
    spec.append(0, f32([H, 10, d], k), f32([H, 10, d], v));
    ref.append(0, f32([H, 1, d], pick(k, 10, [0])), f32([H, 1, d], pick(v, 10, [0])));
    spec.commit([0], { treeSize: 10, layers: [0] });
    const a = spec.export(0, { dtype: 'f32' }), b = ref.export(0, { dtype: 'f32' });
    expect(Array.from(a.lengths)).toEqual(Array.from(b.lengths));
    let worst = 0;
    for (let i = 0; i < a.k.data.length; i++) worst = Math.max(worst, Math.abs(a.k.data[i]! - b.k.data[i]!));
    expect(worst).toBeGreaterThan(0); // the rows of the rebuilt group came back from int8 codes
    expect(worst).toBeLessThan(0.02); // within int8 error over values in [-1, 1]
  });
});

describe('rollback drops the newest tokens: the cache equals one that never saw them', () => {
  for (const dtype of DTYPES) for (const [n0, n] of [[43, 10], [43, 30], [20, 3], [12, 12]] as [number, number][]) {
    test(`${dtype}: ${n0} tokens + ${n} dropped`, () => {
      const rng = mulberry32(n0 + 7 * n);
      const pre = prefix(rng, n0);
      const spec = build(dtype, pre, false), ref = build(dtype, pre, false);
      expectSameAttend(spec, ref, mulberry32(1), 'before', true);
      for (let l = 0; l < BASE.nLayers; l++) spec.append(l, f32([H, n, d], randomF32(rng, H * n * d)), f32([H, n, d], randomF32(rng, H * n * d)));
      spec.rollback(n);
      expectSameCache(spec, ref, 'after rollback');
      expectSameSummaries(spec, ref, 'after rollback');
      expectSameAttend(spec, ref, mulberry32(4), 'after rollback', true);
      for (let l = 0; l < BASE.nLayers; l++) {
        const k = randomF32(rng, H * 5 * d), v = randomF32(rng, H * 5 * d);
        spec.append(l, f32([H, 5, d], k), f32([H, 5, d], v));
        ref.append(l, f32([H, 5, d], k), f32([H, 5, d], v));
      }
      expectSameCache(spec, ref, 'after a later append'); // positions count on from the same place
    });
  }

  test('opts.layers: only the named layers change', () => {
    const rng = mulberry32(9);
    const c = build('f32', prefix(rng, 10), false);
    c.rollback(3, { layers: [1] });
    expect(Array.from(c.lengths().data)).toEqual([10, 10, 7, 7, 10, 10]);
    c.commit([1], { treeSize: 4, layers: [0, 2] });
    expect(Array.from(c.lengths().data)).toEqual([7, 7, 7, 7, 7, 7]);
    c.rollback(0);
    c.commit([0, 1], { treeSize: 2 });
    expect(Array.from(c.lengths().data)).toEqual([7, 7, 7, 7, 7, 7]);
  });
});

describe('hostile arguments leave the cache unchanged', () => {
  for (const dtype of ['f16', 'int4'] as const) test(dtype, () => {
    const rng = mulberry32(10);
    const c = build(dtype, prefix(rng, 30), true);
    c.attend(0, f32([NH, 1, d], randomF32(rng, NH * d)), { sparse: { method: 'quest', budget: 8, pageSize: 4 } });
    const shortest = Math.min(...c.lengths().data);
    const before = snapshot(c);
    const throwing = [0, 1];
    Object.defineProperty(throwing, 1, { get() { throw new Error('getter ran'); } });
    const cases: [() => void, RegExp][] = [
      [() => c.commit([2, 1], { treeSize: 5 }), /acceptedNodes\[1\]: expected a node index in \[3, 4\] \(ascending, no duplicates\), received 1/],
      [() => c.commit([1, 1], { treeSize: 5 }), /acceptedNodes\[1\]: expected a node index in \[2, 4\] \(ascending, no duplicates\), received 1/],
      [() => c.commit([0, 5], { treeSize: 5 }), /acceptedNodes\[1\]: expected a node index in \[1, 4\], received 5/],
      [() => c.commit([-1], { treeSize: 5 }), /acceptedNodes\[0\]/],
      [() => c.commit([0.5], { treeSize: 5 }), /acceptedNodes\[0\]: expected a node index in \[0, 4\], received 0\.5/],
      [() => c.commit(['0'] as never, { treeSize: 5 }), /acceptedNodes\[0\]: expected a node index \(an integer\)/],
      [() => c.commit(new Float32Array([0]) as never, { treeSize: 5 }), /acceptedNodes: expected an ascending list/],
      [() => c.commit([0], { treeSize: shortest + 1 }), new RegExp(`opts\\.treeSize: expected at most ${shortest} tree nodes`)],
      [() => c.commit([0], { treeSize: 1.5 }), /opts\.treeSize: expected an integer/],
      [() => c.commit([0], undefined as never), /opts: expected \{ treeSize, layers\? \}/],
      [() => c.commit([0], { treeSize: 5, layers: [0, 0] }), /opts\.layers\[1\]: expected distinct layer indices/],
      [() => c.commit([0], { treeSize: 5, layers: [3] }), /opts\.layers\[0\]: expected an integer in \[0, 2\]/],
      [() => c.commit([0], { treeSize: 5, layer: [0] } as never), /unknown option "layer"/],
      [() => c.commit([0], { get treeSize(): number { throw new Error('getter ran'); } }), /getter ran/],
      [() => c.commit(throwing, { treeSize: 5 }), /getter ran/],
      [() => c.rollback(1.5), /n: expected an integer/],
      [() => c.rollback(-1), /n: expected an integer in \[0,/],
      [() => c.rollback(Number.NaN), /n: expected an integer/],
      [() => c.rollback('2' as never), /n: expected an integer, received/],
      [() => c.rollback(shortest + 1), new RegExp(`n: expected at most ${shortest} tokens`)],
      [() => c.rollback(1, { layers: [5] }), /opts\.layers\[0\]/],
    ];
    for (const [run, message] of cases) {
      expect(run).toThrow(message);
      expect(snapshot(c), String(message)).toBe(before);
    }
    expect(c.questSummaries(0).pageSize).toBe(4);
  });

  test('a device cache refuses commit, rollback and tree attends (ERR_UNSUPPORTED, with or without a GPU)', () => {
    const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 64, dtype: 'f16', device: 'cuda' });
    const k = f32([1, 2, 64], new Float32Array(128));
    c.append(0, k, k);
    expect(() => c.commit([0], { treeSize: 2 })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(() => c.rollback(1)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(() => c.attend(0, f32([1, 2, 64], new Float32Array(128)), { treeMask: [-1, 0] })).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED' }));
    expect(Array.from(c.lengths().data)).toEqual([2]);
  });
});
