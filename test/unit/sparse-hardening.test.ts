// Hardening of the sparse-decoding entry points (issue 15): KvCache.attend's
// `sparse` (Quest, TidalDecode with its step state, block retrieval) and the
// stateless forms (questPageSummaries / questSelect, blockSummaries /
// blockSelect, tidalSelect). The project rule: bad input gets an error naming
// the argument, what was expected and what was received, a failed call leaves
// the cache (rows, positions, page summaries, the TidalDecode selection) and
// the inputs as they were, and nothing a caller does crashes the process.
//
// Raw-addon cases that crashed before the fix (a header whose dimension
// product wrapped in int64) run in a child process (test/fixtures/
// sparse-hostile.mjs), as does worker termination during long sparse attends
// (test/fixtures/sparse-worker-teardown.mjs). The generic hardening suites
// (test/unit/hardening/) run the sparse entry points too: they are in
// test/fixtures/hardening-entry-points.mjs.
import { describe, expect, test } from 'vitest';
import {
  blockSelect, blockSummaries, KvCache, questPageSummaries, questSelect, tidalSelect, TokenpressError,
  type KvCacheDtype, type SparseOptions, type Tensor,
} from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';
import { maxAbsDiff, randomTensor3 } from './helpers.js';
import { expectSurvived, runFixture } from './hardening/run.js';

const L = 6, H = 2, GROUP = 2, D = 8, N = 40;
const TIDAL = { method: 'tidal', budget: 8 } as const; // full 0-1, select 2, no reselection (6 layers)

function tensor(shape: [number, number, number], seed: number): Tensor<'f32'> {
  return randomTensor3(mulberry32(seed), 'f32', shape, 1) as Tensor<'f32'>;
}
const query = (seed = 7) => tensor([H * GROUP, 1, D], seed);

/** A cache of L layers x N tokens with Quest summaries on layer 0 and a TidalDecode selection made at layer 2. */
function primedCache(dtype: KvCacheDtype): KvCache {
  const c = new KvCache({ nLayers: L, nKvHeads: H, headDim: D, dtype, capacity: 256 });
  for (let l = 0; l < L; l++) c.append(l, tensor([H, N, D], 100 + l), tensor([H, N, D], 200 + l));
  c.attend(0, query(1), { sparse: { method: 'quest', budget: 16, pageSize: 8 }, remember: false });
  c.attend(1, query(1), { sparse: { method: 'blocks', budget: 16, blockSize: 8 }, remember: false });
  c.attend(2, query(2), { sparse: TIDAL, remember: false });
  return c;
}

/** Everything a failed call must leave alone: rows, positions, counts, lengths, summaries, memory. */
function snapshot(c: KvCache): string {
  const layers = Array.from({ length: c.nLayers }, (_, l) => {
    const e = c.export(l, { dtype: 'f32' });
    const s = c.questSummaries(l);
    return {
      k: Array.from(e.k.data), v: Array.from(e.v.data), positions: Array.from(e.positions.data), counts: Array.from(e.counts.data),
      summaries: { pageSize: s.pageSize, kmin: Array.from(s.kmin.data), kmax: Array.from(s.kmax.data), kmean: s.kmean && Array.from(s.kmean.data), headPages: Array.from(s.headPages), bytes: s.bytes },
    };
  });
  return JSON.stringify({ lengths: Array.from(c.lengths().data), memoryBytes: c.memoryBytes, layers });
}

/** The rows TidalDecode keeps for layer 3 (the step's selection), or the error when none are. */
function kept(c: KvCache): string {
  try {
    return JSON.stringify(Array.from(c.attend(3, query(3), { sparse: TIDAL, returnSelected: true, remember: false }).selected!.data));
  } catch (err) {
    return String((err as Error).message);
  }
}

/** What `call` throws (undefined when it returns). */
function caught(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** `call` throws a `type` whose message matches. */
function expectError(call: () => unknown, type: ErrorConstructor, message: RegExp): void {
  const error = caught(call);
  expect(error).toBeInstanceOf(type);
  expect((error as Error).message).toMatch(message);
}

/** Runs a call that must fail with `type` and `message`; the cache and its TidalDecode selection are unchanged. */
function expectRefused(c: KvCache, call: () => unknown, type: ErrorConstructor, message: RegExp): void {
  const before = snapshot(c), keptBefore = kept(c);
  expectError(call, type, message);
  expect(snapshot(c)).toBe(before);
  expect(kept(c)).toBe(keptBefore);
}

const CACHE_DTYPES: KvCacheDtype[] = ['f32', 'int8'];

describe.each(CACHE_DTYPES)('KvCache.attend({ sparse }) refuses bad options and changes nothing (%s cache)', (dtype) => {
  const c = primedCache(dtype);
  const q = query();

  test('the primed state is what the other tests compare against', () => {
    expect(c.questSummaries(0).pageSize).toBe(8);
    expect(c.questSummaries(1).kmean).toBeDefined();
    expect(JSON.parse(kept(c))).toHaveLength(H * 8);
  });

  test.each([
    ['null', null, TypeError, /^opts\.sparse: expected an options object such as \{ method: 'quest', budget: 2048 \}, received null/],
    ['a string', 'quest', TypeError, /^opts\.sparse: expected an options object .*received "quest"/],
    ['an array', [{ method: 'quest', budget: 16 }], TypeError, /^opts\.sparse: expected an options object .*received an array/],
    ['no method', { budget: 16 }, TypeError, /^opts\.sparse\.method: expected 'quest', 'tidal' or 'blocks', received undefined/],
    ['method "Quest"', { method: 'Quest', budget: 16 }, TypeError, /^opts\.sparse\.method: expected 'quest', 'tidal' or 'blocks', received "Quest"/],
    ['method 1', { method: 1, budget: 16 }, TypeError, /^opts\.sparse\.method: .*received 1/],
    ['no budget', { method: 'quest' }, TypeError, /^opts\.sparse\.budget: expected an integer >= 1 \(tokens per KV head\), received undefined/],
    ['budget NaN', { method: 'quest', budget: NaN }, RangeError, /^opts\.sparse\.budget: expected an integer, received NaN/],
    ['budget Infinity', { method: 'blocks', budget: Infinity }, RangeError, /^opts\.sparse\.budget: expected an integer, received Infinity/],
    ['budget -Infinity', { method: 'tidal', budget: -Infinity }, RangeError, /^opts\.sparse\.budget: expected an integer, received -Infinity/],
    ['budget -16', { method: 'quest', budget: -16 }, RangeError, /^opts\.sparse\.budget: expected an integer >= 1, received -16/],
    ['budget 0', { method: 'tidal', budget: 0 }, RangeError, /^opts\.sparse\.budget: expected an integer >= 1, received 0/],
    ['budget 1.5', { method: 'blocks', budget: 1.5 }, RangeError, /^opts\.sparse\.budget: expected an integer, received 1\.5/],
    ['budget "16"', { method: 'quest', budget: '16' }, TypeError, /^opts\.sparse\.budget: expected an integer, received "16"/],
    ['budget 2^53', { method: 'quest', budget: 2 ** 53 }, RangeError, /^opts\.sparse\.budget: expected an integer >= 1, received 9007199254740992/],
    ['budget 1e300', { method: 'tidal', budget: 1e300 }, RangeError, /^opts\.sparse\.budget: expected an integer >= 1, received 1e\+300/],
    ['budget a BigInt', { method: 'quest', budget: 16n }, TypeError, /^opts\.sparse\.budget: expected an integer/],
    ['pageSize 0', { method: 'quest', budget: 16, pageSize: 0 }, RangeError, /^opts\.sparse\.pageSize: expected an integer in \[1, 65536\], received 0/],
    ['pageSize 65537', { method: 'quest', budget: 16, pageSize: 65537 }, RangeError, /^opts\.sparse\.pageSize: expected an integer in \[1, 65536\], received 65537/],
    ['pageSize -8', { method: 'quest', budget: 16, pageSize: -8 }, RangeError, /^opts\.sparse\.pageSize: .*received -8/],
    ['pageSize NaN', { method: 'quest', budget: 16, pageSize: NaN }, RangeError, /^opts\.sparse\.pageSize: expected an integer, received NaN/],
    ['blockSize 2^31', { method: 'blocks', budget: 16, blockSize: 2 ** 31 }, RangeError, /^opts\.sparse\.blockSize: expected an integer in \[1, 65536\], received 2147483648/],
    ['sinks -1', { method: 'quest', budget: 16, sinks: -1 }, RangeError, /^opts\.sparse\.sinks: expected an integer >= 0, received -1/],
    ['recent Infinity', { method: 'blocks', budget: 16, recent: Infinity }, RangeError, /^opts\.sparse\.recent: expected an integer, received Infinity/],
    ['recent null', { method: 'tidal', budget: 16, recent: null }, TypeError, /^opts\.sparse\.recent: expected an integer, received null/],
    ['gqa "mean"', { method: 'quest', budget: 16, gqa: 'mean' }, TypeError, /^opts\.sparse\.gqa: expected 'max' or 'sum', received "mean"/],
    ['gqa 1', { method: 'quest', budget: 16, gqa: 1 }, TypeError, /^opts\.sparse\.gqa: expected 'max' or 'sum', received 1/],
    ['mix NaN', { method: 'blocks', budget: 16, mix: NaN }, RangeError, /^opts\.sparse\.mix: expected a finite number, received NaN/],
    ['mix -0.1', { method: 'blocks', budget: 16, mix: -0.1 }, RangeError, /^opts\.sparse\.mix: expected a number in \[0, 1\], received -0\.1/],
    ['mix Infinity', { method: 'blocks', budget: 16, mix: Infinity }, RangeError, /^opts\.sparse\.mix: expected a finite number, received Infinity/],
    ['a misspelled option', { method: 'quest', budget: 16, pagesize: 8 }, TypeError, /^opts\.sparse: unknown option "pagesize" \(did you mean "pageSize"\?\)/],
    ['another method\'s option', { method: 'quest', budget: 16, mix: 0.5 }, TypeError, /^opts\.sparse: unknown option "mix"/],
    ['tidal selectLayer 6 of 6 layers', { ...TIDAL, selectLayer: 6 }, RangeError, /^opts\.sparse\.selectLayer: expected an integer in \[0, 5\], received 6/],
    ['tidal selectLayer -1', { ...TIDAL, selectLayer: -1 }, RangeError, /^opts\.sparse\.selectLayer: expected an integer in \[0, 5\], received -1/],
    ['tidal selectLayer 2.5', { ...TIDAL, selectLayer: 2.5 }, RangeError, /^opts\.sparse\.selectLayer: expected an integer, received 2\.5/],
    ['tidal fullLayers 6', { ...TIDAL, fullLayers: 6 }, RangeError, /^opts\.sparse\.fullLayers: expected an integer in \[0, 5\], received 6/],
    ['tidal fullLayers NaN', { ...TIDAL, fullLayers: NaN }, RangeError, /^opts\.sparse\.fullLayers: expected an integer, received NaN/],
    ['tidal fullLayers [0, 9]', { ...TIDAL, fullLayers: [0, 1, 9] }, RangeError, /^opts\.sparse\.fullLayers\[2\]: expected an integer in \[0, 5\], received 9/],
    ['tidal fullLayers holding a string', { ...TIDAL, fullLayers: [0, '1'] }, TypeError, /^opts\.sparse\.fullLayers\[1\]: expected an integer, received "1"/],
    ['tidal reselection before the selection', { ...TIDAL, reselectLayers: [1] }, RangeError, /^opts\.sparse\.reselectLayers: expected layers after selectLayer = 2, received 1/],
    ['tidal reselection layer 6', { ...TIDAL, reselectLayers: 6 }, RangeError, /^opts\.sparse\.reselectLayers: expected an integer in \[0, 5\], received 6/],
    ['tidal reselection that is a full layer', { ...TIDAL, fullLayers: [0, 1, 4], reselectLayers: [4] }, RangeError, /^opts\.sparse\.reselectLayers: expected layers not in fullLayers, received 4/],
    ['tidal reselectLayers an object', { ...TIDAL, reselectLayers: { 0: 4, length: 1 } }, TypeError, /^opts\.sparse\.reselectLayers: expected an array of layer indices, received an object/],
  ] as [string, unknown, ErrorConstructor, RegExp][])('%s', (_, sparse, type, message) => {
    // Layer 3: a quest / blocks attend would rebuild summaries, a tidal one read the selection.
    expectRefused(c, () => c.attend(3, q, { sparse: sparse as SparseOptions }), type, message);
  });

  test.each([
    ['-1', -1, RangeError, /^layer: expected an integer in \[0, 5\], received -1/],
    ['6', 6, RangeError, /^layer: expected an integer in \[0, 5\], received 6/],
    ['1.5', 1.5, RangeError, /^layer: expected an integer, received 1\.5/],
    ['NaN', NaN, RangeError, /^layer: expected an integer, received NaN/],
    ['"0"', '0', TypeError, /^layer: expected an integer, received "0"/],
    ['2^53', 2 ** 53, RangeError, /^layer: expected an integer in \[0, 5\], received 9007199254740992/],
  ] as [string, unknown, ErrorConstructor, RegExp][])('layer %s', (_, layer, type, message) => {
    expectRefused(c, () => c.attend(layer as number, q, { sparse: { method: 'quest', budget: 16 } }), type, message);
  });

  test.each([
    ['nHeads not a multiple of nKvHeads', () => tensor([3, 1, D], 1), RangeError, /^q\.shape\[0\] \(nHeads\): expected a multiple of nKvHeads = 2, received 3/],
    ['another headDim', () => tensor([4, 1, D + 1], 1), RangeError, /^q\.shape\[2\] \(headDim\): expected the cache's headDim = 8, received 9/],
    ['NaN', () => { const t = tensor([4, 1, D], 1); t.data[9] = NaN; return t; }, RangeError, /^q: expected finite values, received NaN at \[1, 0, 1\]/],
    ['-Infinity', () => { const t = tensor([4, 1, D], 1); t.data[31] = -Infinity; return t; }, RangeError, /^q: expected finite values, received -Infinity at \[3, 0, 7\]/],
    ['f16 data', () => ({ dtype: 'f16', shape: [4, 1, D], data: new Uint16Array(4 * D) }), TypeError, /^q\.dtype: expected 'f32'/],
    ['a detached buffer', () => { const t = tensor([4, 1, D], 1); structuredClone(t.data.buffer, { transfer: [t.data.buffer] }); return t; }, TypeError, /^q\.data: expected a live Float32Array, received a detached buffer/],
    ['data shorter than the shape', () => ({ dtype: 'f32', shape: [4, 1, D], data: new Float32Array(4 * D - 1) }), RangeError, /^q\.data\.length: expected 32 elements \(4 x 1 x 8\), received 31/],
  ] as [string, () => unknown, ErrorConstructor, RegExp][])('q: %s', (_, make, type, message) => {
    for (const sparse of [{ method: 'quest', budget: 16 }, { method: 'blocks', budget: 16 }, TIDAL] as SparseOptions[]) {
      expectRefused(c, () => c.attend(3, make() as Tensor<'f32'>, { sparse }), type, message);
    }
  });
});

describe('huge but valid options', () => {
  test.each([
    { method: 'quest', budget: Number.MAX_SAFE_INTEGER },
    { method: 'quest', budget: 1, sinks: Number.MAX_SAFE_INTEGER },
    { method: 'quest', budget: 1, recent: Number.MAX_SAFE_INTEGER, pageSize: 65536 },
    { method: 'blocks', budget: Number.MAX_SAFE_INTEGER, blockSize: 65536 },
    { method: 'blocks', budget: 1, recent: Number.MAX_SAFE_INTEGER },
    { method: 'tidal', budget: Number.MAX_SAFE_INTEGER, selectLayer: 0 },
    { method: 'tidal', budget: 1, sinks: Number.MAX_SAFE_INTEGER, selectLayer: 0 },
  ] as SparseOptions[])('%j attends every row: the dense result', (sparse) => {
    const c = new KvCache({ nLayers: 1, nKvHeads: H, headDim: D, dtype: 'f32' });
    c.append(0, tensor([H, N, D], 1), tensor([H, N, D], 2));
    const q = query();
    const dense = c.attend(0, q, { remember: false });
    const r = c.attend(0, q, { sparse, returnSelected: true, remember: false });
    expect(r.selected!.shape).toEqual([H, N]);
    expect(Array.from(r.selected!.data.subarray(0, N))).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(maxAbsDiff(r.output.data, dense.output.data)).toBeLessThanOrEqual(1e-6);
  });

  test('stateless: budget, sinks and recent at 2^53 - 1 select every token', () => {
    const k = tensor([H, N, D], 1), q = query();
    const big = Number.MAX_SAFE_INTEGER;
    const all = Array.from({ length: H }, () => Array.from({ length: N }, (_, i) => i)).flat();
    expect(Array.from(questSelect(q, questPageSummaries(k), { budget: big }).data)).toEqual(all);
    expect(Array.from(questSelect(q, questPageSummaries(k), { budget: 1, sinks: big }).data)).toEqual(all);
    expect(Array.from(blockSelect(q, blockSummaries(k, { blockSize: 8 }), { budget: 1, recent: big }).data)).toEqual(all);
    expect(Array.from(tidalSelect(tensor([H, 1, N], 3), { budget: big }).data)).toEqual(all);
  });
});

describe('TidalDecode step state: misuse fails clearly and changes nothing', () => {
  const fresh = () => {
    const c = new KvCache({ nLayers: L, nKvHeads: H, headDim: D, dtype: 'f32', capacity: 256 });
    for (let l = 0; l < L; l++) c.append(l, tensor([H, N, D], 100 + l), tensor([H, N, D], 200 + l));
    return c;
  };
  const token = (seed: number) => [tensor([H, 1, D], seed), tensor([H, 1, D], seed + 1)] as const;
  const q = query();

  test('a layer after the selection layer, before any selection: refused', () => {
    const c = fresh();
    expectRefused(c, () => c.attend(3, q, { sparse: TIDAL }), RangeError,
      /^sparse: layer 3 attends over the positions selected earlier in this decode step, but none are selected \(attend the selectLayer first/);
  });

  test('beginStep() drops the selection: a later layer is refused until the selection layer runs again', () => {
    const c = fresh();
    c.attend(2, q, { sparse: TIDAL });
    const before = kept(c);
    expect(JSON.parse(before)).toHaveLength(H * 8);
    c.beginStep();
    expectRefused(c, () => c.attend(4, q, { sparse: TIDAL }), RangeError, /none are selected/);
    c.attend(2, q, { sparse: TIDAL, remember: false });
    expect(kept(c)).toBe(before);
  });

  test('the next step appended to the selecting layer only: the selection is dropped', () => {
    const c = fresh();
    c.attend(2, q, { sparse: TIDAL });
    c.append(2, ...token(9));
    expectRefused(c, () => c.attend(3, q, { sparse: TIDAL }), RangeError, /none are selected/);
  });

  test('a later layer holding another row count than the selection was made over: refused, and the selection is kept', () => {
    const c = fresh();
    c.attend(2, q, { sparse: TIDAL });
    const before = kept(c);
    c.append(4, ...token(9));
    expectRefused(c, () => c.attend(4, q, { sparse: TIDAL }), RangeError,
      /^sparse: layer 4 KV head 0 holds 41 tokens, but the positions were selected at layer 2 over 40 \(append to every layer before attending it, in layer order\)/);
    expect(kept(c)).toBe(before);
  });

  test('layers compressed differently (same lengths, other positions at the kept rows): refused', () => {
    const c = fresh();
    c.compress('streamingllm', { keep: 24 }, { layers: [2] });
    c.compress('knorm', { keep: 24 }, { layers: [3] });
    expect(Array.from(c.lengths().data.subarray(2 * H, 4 * H))).toEqual([24, 24, 24, 24]);
    c.attend(2, q, { sparse: TIDAL });
    expectRefused(c, () => c.attend(3, q, { sparse: TIDAL }), RangeError, /^sparse: layer 3 KV head \d row \d+ is at position \d+, but the row selected at layer 2 was at position \d+ \(layers compressed differently\)/);
  });

  test('a schedule that disagrees from call to call: a layer the new schedule calls "kept" needs a selection', () => {
    const c = fresh();
    c.attend(2, q, { sparse: TIDAL });
    c.beginStep();
    // Layer 1 is a full layer of the default schedule; selectLayer 0 makes it a kept-positions layer: none selected.
    expectRefused(c, () => c.attend(1, q, { sparse: { ...TIDAL, selectLayer: 0 } }), RangeError, /none are selected/);
  });

  test('clear() of the selecting layer drops the selection; clear() of another layer makes its lengths disagree', () => {
    const c = fresh();
    c.attend(2, q, { sparse: TIDAL });
    c.clear(5);
    expectRefused(c, () => c.attend(5, q, { sparse: TIDAL }), RangeError, /layer 5 KV head 0 holds 0 tokens, but the positions were selected at layer 2 over 40/);
    c.clear(2);
    expectRefused(c, () => c.attend(3, q, { sparse: TIDAL }), RangeError, /none are selected/);
  });

  test('a sync call while an attendAsync over kept positions is pending: ERR_CACHE_BUSY, nothing changed', async () => {
    const c = fresh();
    c.attend(2, q, { sparse: TIDAL });
    const pending = c.attendAsync(3, q, { sparse: TIDAL, returnSelected: true, remember: false });
    const error = caught(() => c.attend(4, q, { sparse: TIDAL }));
    expect(error).toBeInstanceOf(TokenpressError);
    expect((error as TokenpressError).code).toBe('ERR_CACHE_BUSY');
    const r = await pending;
    expect(JSON.stringify(Array.from(r.selected!.data))).toBe(kept(c));
  });
});

/** A Proxy over `target` that counts the reads of each key (and throws on writes). */
function counting<T extends object>(target: T): { proxy: T; reads: Map<PropertyKey, number> } {
  const reads = new Map<PropertyKey, number>();
  const proxy = new Proxy(target, {
    get(t, key, receiver) {
      reads.set(key, (reads.get(key) ?? 0) + 1);
      return Reflect.get(t, key, receiver);
    },
    set() { throw new Error('the options were written to'); },
  });
  return { proxy, reads };
}
const maxReads = (reads: Map<PropertyKey, number>) => Math.max(...[...reads].filter(([k]) => typeof k === 'string').map(([, n]) => n));

describe('getters and proxies in the options', () => {
  const q = query();

  test.each([
    { method: 'quest', budget: 16, pageSize: 8, sinks: 1, recent: 4, gqa: 'max' },
    { method: 'blocks', budget: 16, blockSize: 8, sinks: 1, recent: 8, gqa: 'sum', mix: 0.25 },
    { method: 'tidal', budget: 8, selectLayer: 2, fullLayers: [0, 1], reselectLayers: [4], sinks: 1, recent: 2 },
  ] as SparseOptions[])('a counting Proxy (%j): every field read once, the result the plain object\'s', (sparse) => {
    const layer = sparse.method === 'tidal' ? 2 : 0;
    const a = primedCache('f32'), b = primedCache('f32');
    const s = counting({ ...sparse }), o = counting({ sparse: s.proxy, returnSelected: true, remember: false });
    const got = a.attend(layer, q, o.proxy);
    const want = b.attend(layer, q, { sparse, returnSelected: true, remember: false });
    expect(maxReads(s.reads)).toBe(1);
    expect(maxReads(o.reads)).toBe(1);
    expect(Array.from(got.selected!.data)).toEqual(Array.from(want.selected!.data));
    expect(Array.from(got.output.data)).toEqual(Array.from(want.output.data));
    expect(snapshot(a)).toBe(snapshot(b));
  });

  test('a getter answering the check and the use differently: what was checked is used (gqa "max", then "sum")', () => {
    // Data on which max and sum pick other pages (bounds max / sum: page 0 8 / 7,
    // page 1 5 / 10), so a second read would show.
    const c = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 2, dtype: 'f32' });
    const k = { dtype: 'f32' as const, shape: [1, 64, 2], data: new Float32Array(128) };
    for (let t = 0; t < 64; t++) k.data.set(t < 16 ? [8, -1] : t < 32 ? [5, 5] : [0, 0], 2 * t);
    c.append(0, k, k);
    const q2 = { dtype: 'f32' as const, shape: [2, 1, 2], data: Float32Array.of(1, 0, 0, 1) };
    const sel = (gqa: 'max' | 'sum') => Array.from(c.attend(0, q2, { sparse: { method: 'quest', budget: 32, pageSize: 16, gqa }, returnSelected: true, remember: false }).selected!.data);
    expect(sel('max')).not.toEqual(sel('sum'));
    let n = 0;
    const sparse = { method: 'quest', budget: 32, pageSize: 16, get gqa() { return n++ === 0 ? 'max' : 'sum'; } };
    const got = Array.from(c.attend(0, q2, { sparse: sparse as SparseOptions, returnSelected: true, remember: false }).selected!.data);
    expect(got).toEqual(sel('max'));
  });

  test.each(['budget', 'method', 'selectLayer'])('a getter on sparse.%s that throws: the error propagates, nothing changed', (key) => {
    const c = primedCache('f32');
    const boom = new Error('boom');
    const sparse = { ...TIDAL, selectLayer: 2 };
    Object.defineProperty(sparse, key, { enumerable: true, get() { throw boom; } });
    const before = snapshot(c), keptBefore = kept(c);
    expect(() => c.attend(3, q, { sparse })).toThrow(boom);
    expect(snapshot(c)).toBe(before);
    expect(kept(c)).toBe(keptBefore);
  });

  test('a Proxy whose ownKeys trap throws, and a revoked Proxy: the error propagates, nothing changed', () => {
    const c = primedCache('f32');
    const before = snapshot(c);
    const boom = new Error('no keys');
    expect(() => c.attend(0, q, { sparse: new Proxy({ method: 'quest', budget: 16 }, { ownKeys() { throw boom; } }) as SparseOptions })).toThrow(boom);
    const r = Proxy.revocable({ method: 'quest', budget: 16 }, {});
    r.revoke();
    expect(() => c.attend(0, q, { sparse: r.proxy as SparseOptions })).toThrow(TypeError);
    expect(snapshot(c)).toBe(before);
  });

  test('a getter that appends to the attended layer: the attend runs over the rows as they are then', () => {
    const a = primedCache('f32'), b = primedCache('f32');
    const [k, v] = [tensor([H, 1, D], 31), tensor([H, 1, D], 32)];
    const sparse = { method: 'quest', budget: 16, get pageSize() { a.append(0, k, v); return 8; } };
    const got = a.attend(0, q, { sparse: sparse as SparseOptions, returnSelected: true, remember: false });
    b.append(0, k, v);
    const want = b.attend(0, q, { sparse: { method: 'quest', budget: 16, pageSize: 8 }, returnSelected: true, remember: false });
    expect(got.selected!.shape).toEqual([H, 9]); // a page of 8 and the current page (row 40 alone)
    expect(Array.from(got.selected!.data)).toContain(N); // the appended row (the current page)
    expect(Array.from(got.selected!.data)).toEqual(Array.from(want.selected!.data));
    expect(Array.from(got.output.data)).toEqual(Array.from(want.output.data));
    expect(snapshot(a)).toBe(snapshot(b));
  });

  test('a getter that clears the layer, and one that compresses it: no crash, the result of the cache as it then is', () => {
    for (const mutate of [(c: KvCache) => c.clear(0), (c: KvCache) => c.compress('knorm', { keep: 20 }, { layers: [0] })]) {
      const a = primedCache('f32'), b = primedCache('f32');
      const sparse = { method: 'blocks', get budget() { mutate(a); return 16; }, blockSize: 8 };
      const got = a.attend(0, q, { sparse: sparse as SparseOptions, returnSelected: true, remember: false });
      mutate(b);
      const want = b.attend(0, q, { sparse: { method: 'blocks', budget: 16, blockSize: 8 }, returnSelected: true, remember: false });
      expect(Array.from(got.selected!.data)).toEqual(Array.from(want.selected!.data));
      expect(Array.from(got.output.data)).toEqual(Array.from(want.output.data));
      expect(snapshot(a)).toBe(snapshot(b));
    }
  });

  test('a getter that calls beginStep(): the kept-positions layer is refused, nothing changed', () => {
    const c = primedCache('f32');
    const sparse = { method: 'tidal', get budget() { c.beginStep(); return 8; } };
    const before = snapshot(c);
    expect(() => c.attend(3, q, { sparse: sparse as SparseOptions })).toThrow(/none are selected/);
    expect(snapshot(c)).toBe(before);
  });

  test('a getter that queues an appendAsync: the sync attend runs first, the append after it', async () => {
    const a = primedCache('f32'), b = primedCache('f32');
    const [k, v] = [tensor([H, 1, D], 41), tensor([H, 1, D], 42)];
    let appended: Promise<void> | undefined;
    const sparse = { method: 'quest', get budget() { appended = a.appendAsync(0, k, v); return 16; }, pageSize: 8 };
    const got = a.attend(0, q, { sparse: sparse as SparseOptions, remember: false });
    const want = b.attend(0, q, { sparse: { method: 'quest', budget: 16, pageSize: 8 }, remember: false });
    expect(Array.from(got.output.data)).toEqual(Array.from(want.output.data));
    await appended;
    b.append(0, k, v);
    expect(snapshot(a)).toBe(snapshot(b));
  });

  test('a getter that detaches q, or the out array, after they were given: an error naming it, nothing changed', () => {
    const c = primedCache('f32');
    const q1 = query();
    const sparse1 = { method: 'quest', get budget() { structuredClone(q1.data.buffer, { transfer: [q1.data.buffer] }); return 16; } };
    expectRefused(c, () => c.attend(0, q1, { sparse: sparse1 as SparseOptions }), TypeError, /^q\.data: expected a live Float32Array, received a detached buffer/);
    const out = new Float32Array(H * GROUP * D);
    const sparse2 = { method: 'quest', get budget() { structuredClone(out.buffer, { transfer: [out.buffer] }); return 16; } };
    expectRefused(c, () => c.attend(0, query(), { out, sparse: sparse2 as SparseOptions }), RangeError, /^opts\.out\.length: expected 32 \(nHeads \* nQ \* headDim\), received 0/);
  });

  test('stateless: option getters that throw propagate; the summaries and q are unchanged', () => {
    const k = tensor([H, N, D], 1);
    const s = questPageSummaries(k, { pageSize: 8 }), b = blockSummaries(k, { blockSize: 8 });
    const sBefore = JSON.stringify([Array.from(s.kmin.data), Array.from(s.kmax.data)]);
    const bBefore = JSON.stringify([Array.from(b.kmin.data), Array.from(b.kmax.data), Array.from(b.kmean.data)]);
    const qBefore = Array.from(q.data);
    const boom = new Error('boom');
    const throwing = { get budget(): number { throw boom; } };
    expect(() => questSelect(q, s, throwing)).toThrow(boom);
    expect(() => blockSelect(q, b, throwing)).toThrow(boom);
    expect(() => tidalSelect(tensor([H, 1, N], 3), throwing)).toThrow(boom);
    expect(() => questPageSummaries(k, { get pageSize(): number { throw boom; } })).toThrow(boom);
    expect(JSON.stringify([Array.from(s.kmin.data), Array.from(s.kmax.data)])).toBe(sBefore);
    expect(JSON.stringify([Array.from(b.kmin.data), Array.from(b.kmax.data), Array.from(b.kmean.data)])).toBe(bBefore);
    expect(Array.from(q.data)).toEqual(qBefore);
  });

  test('stateless: a counting Proxy for the options of each function, every field read once', () => {
    const k = tensor([H, N, D], 1);
    const cases: [string, (o: never) => unknown, object][] = [
      ['questPageSummaries', (o) => questPageSummaries(k, o), { pageSize: 8 }],
      ['blockSummaries', (o) => blockSummaries(k, o), { blockSize: 8 }],
      ['questSelect', (o) => questSelect(q, questPageSummaries(k), o), { budget: 16, sinks: 1, recent: 2, gqa: 'max' }],
      ['blockSelect', (o) => blockSelect(q, blockSummaries(k, { blockSize: 8 }), o), { budget: 16, sinks: 1, recent: 2, gqa: 'max', mix: 0.3 }],
      ['tidalSelect', (o) => tidalSelect(tensor([4, 1, N], 3), o), { budget: 8, sinks: 1, recent: 2, nKvHeads: 2, gqa: 'max' }],
    ];
    for (const [name, call, options] of cases) {
      const { proxy, reads } = counting({ ...options });
      const got = JSON.stringify(call(proxy as never));
      expect(maxReads(reads), name).toBe(1);
      expect(got, name).toBe(JSON.stringify(call(options as never)));
    }
  });

  test('stateless: a summaries getter that detaches another array of the summaries: an error naming it', () => {
    const k = tensor([H, N, D], 1);
    const s = questPageSummaries(k, { pageSize: 8 });
    const hostile = { ...s, get kmin() { structuredClone(s.kmax.data.buffer, { transfer: [s.kmax.data.buffer] }); return s.kmin; } };
    expect(() => questSelect(query(), hostile, { budget: 16 })).toThrow(/^summaries\.kmax\.data: expected a live Uint16Array|^summaries\.kmax\.data: expected a live Float32Array, received a detached buffer/);
  });
});

describe('aliased and detached arrays', () => {
  test('opts.out sharing q\'s buffer (the same array, or another view of it): refused naming opts.out, q and the cache unchanged', () => {
    const c = primedCache('f32');
    for (const sparse of [{ method: 'quest', budget: 16 }, { method: 'blocks', budget: 16 }, { ...TIDAL }] as SparseOptions[]) {
      const buf = new ArrayBuffer(2 * H * GROUP * D * 4);
      const q = { dtype: 'f32' as const, shape: [H * GROUP, 1, D], data: new Float32Array(buf, 0, H * GROUP * D) };
      q.data.set(query().data);
      const qBefore = Array.from(q.data);
      const layer = sparse.method === 'tidal' ? 3 : 0;
      for (const out of [q.data, new Float32Array(buf, H * GROUP * D * 4, H * GROUP * D)]) {
        expectRefused(c, () => c.attend(layer, q, { out, sparse }), RangeError,
          /^opts\.out: expected an output that shares no memory with the input q\.data, received a view of the same ArrayBuffer/);
        expect(Array.from(q.data)).toEqual(qBefore);
      }
    }
  });

  test('inputs may share a buffer: q and the summaries in one ArrayBuffer select what separate copies select', () => {
    const k = tensor([H, N, D], 1), q = query();
    const s = questPageSummaries(k, { pageSize: 8 });
    const n = q.data.length, m = s.kmin.data.length;
    const buf = new ArrayBuffer((n + 2 * m) * 4);
    const one = new Float32Array(buf);
    one.set(q.data, 0);
    one.set(s.kmin.data as Float32Array, n);
    one.set(s.kmax.data as Float32Array, n + m);
    const shared = { ...s, kmin: { ...s.kmin, data: one.subarray(n, n + m) }, kmax: { ...s.kmax, data: one.subarray(n + m) } };
    const got = questSelect({ ...q, data: one.subarray(0, n) }, shared, { budget: 16 });
    expect(Array.from(got.data)).toEqual(Array.from(questSelect(q, s, { budget: 16 }).data));
  });

  test('detached inputs of the stateless forms: a TypeError naming the array', () => {
    const detach = <T extends { data: ArrayBufferView }>(t: T): T => { structuredClone(t.data.buffer, { transfer: [t.data.buffer as ArrayBuffer] }); return t; };
    const k = tensor([H, N, D], 1);
    expect(() => questPageSummaries(detach(tensor([H, N, D], 1)))).toThrow(/^k\.data: expected a live Float32Array, received a detached buffer/);
    expect(() => blockSummaries(detach(tensor([H, N, D], 1)))).toThrow(/^k\.data: expected a live Float32Array, received a detached buffer/);
    const s = questPageSummaries(k, { pageSize: 8 });
    detach(s.kmax);
    expect(() => questSelect(query(), s, { budget: 16 })).toThrow(/^summaries\.kmax\.data: expected a live Float32Array, received a detached buffer/);
    const b = blockSummaries(k, { blockSize: 8 });
    detach(b.kmean);
    expect(() => blockSelect(query(), b, { budget: 16 })).toThrow(/^summaries\.kmean\.data: expected a live Float32Array, received a detached buffer/);
    expect(() => questSelect(detach(query()), questPageSummaries(k), { budget: 16 })).toThrow(/^q\.data: expected a live Float32Array, received a detached buffer/);
    expect(() => tidalSelect(detach(tensor([H, 1, N], 3)), { budget: 8 })).toThrow(/^weights\.data: expected a live Float32Array, received a detached buffer/);
  });

  test('the raw binding: every output of every sparse entry point sharing a buffer with an input or another output is refused', () => {
    const names = ['questSummarize', 'blockSummarize', 'questSelect', 'blockSelect', 'tidalSelect', 'KvCacheHandle.attend (quest)', 'KvCacheHandle.attend (tidal)'];
    let cases = 0;
    for (const name of names) {
      const run = runFixture('hardening-run.mjs', ['overlap', name]);
      expectSurvived(run);
      expect(run.cases.length, name).toBeGreaterThanOrEqual(4);
      for (const c of run.cases) {
        expect(c, c.case).toMatchObject({ outcome: 'threw', type: 'RangeError' });
        expect(c.message, c.case).toMatch(/^[\w.]+: expected an output that shares no memory with the (input|output) [\w.]+, received a view of the same ArrayBuffer$/);
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(100);
  }, 300_000);
});

describe('stateless forms: bad values named, inputs unchanged', () => {
  const k = tensor([H, N, D], 1);
  const q = query();

  test.each([
    ['pageSize 0', () => questPageSummaries(k, { pageSize: 0 }), RangeError, /^options\.pageSize: expected an integer in \[1, 65536\], received 0/],
    ['pageSize NaN', () => questPageSummaries(k, { pageSize: NaN }), RangeError, /^options\.pageSize: expected an integer, received NaN/],
    ['blockSize Infinity', () => blockSummaries(k, { blockSize: Infinity }), RangeError, /^options\.blockSize: expected an integer, received Infinity/],
    ['a misspelled option', () => questPageSummaries(k, { pagesize: 8 } as never), TypeError, /^options: unknown option "pagesize" \(did you mean "pageSize"\?\)/],
    ['k with Infinity', () => { const t = tensor([H, N, D], 1); t.data[N * D + 3 * D + 2] = Infinity; return questPageSummaries(t); }, RangeError, /^k\[1\]\[3\]\[2\]: expected a finite value, received Infinity/],
    ['k with NaN (blocks)', () => { const t = tensor([H, N, D], 1); t.data[5] = NaN; return blockSummaries(t); }, RangeError, /^k\[0\]\[0\]\[5\]: expected a finite value, received NaN/],
    ['k without tokens', () => questPageSummaries({ dtype: 'f32', shape: [H, 0, D], data: new Float32Array(0) }), RangeError, /^k\.shape\[1\] \(nKv\): expected at least 1 token, received 0/],
    ['questSelect: pageSize is the summaries\'', () => questSelect(q, questPageSummaries(k), { budget: 16, pageSize: 4 } as never), TypeError, /^options: unknown option "pageSize"; known options: budget, sinks, recent, gqa/],
    ['questSelect: method', () => questSelect(q, questPageSummaries(k), { budget: 16, method: 'tidal' } as never), TypeError, /^options: unknown option "method"/],
    ['blockSelect: blockSize is the summaries\'', () => blockSelect(q, blockSummaries(k), { budget: 16, blockSize: 4 } as never), TypeError, /^options: unknown option "blockSize"/],
    ['questSelect: budget -1', () => questSelect(q, questPageSummaries(k), { budget: -1 }), RangeError, /^options\.budget: expected an integer >= 1, received -1/],
    ['questSelect: no options', () => questSelect(q, questPageSummaries(k), undefined as never), TypeError, /^options: expected an options object such as \{ budget: 2048 \}, received undefined/],
    ['questSelect: summaries null', () => questSelect(q, null as never, { budget: 16 }), TypeError, /^summaries: expected the result of questPageSummaries\(\), received null/],
    ['questSelect: nKv of another page count', () => questSelect(q, { ...questPageSummaries(k), nKv: 200 }, { budget: 16 }), RangeError, /^summaries\.kmin\.shape\[1\] \(pages\): expected ceil\(nKv \/ pageSize\) = 13, received 3/],
    ['questSelect: NaN in kmin', () => { const s = questPageSummaries(k); (s.kmin.data as Float32Array)[D + 1] = NaN; return questSelect(q, s, { budget: 16 }); }, RangeError, /^summaries: expected finite kmin <= kmax, received kmin NaN, kmax [-\d.e]+ at \[0\]\[1\]\[1\]/],
    ['questSelect: kmin > kmax', () => { const s = questPageSummaries(k); (s.kmin.data as Float32Array)[2] = 5; return questSelect(q, s, { budget: 16 }); }, RangeError, /^summaries: expected finite kmin <= kmax, received kmin 5, kmax [-\d.e]+ at \[0\]\[0\]\[2\]/],
    ['questSelect: summaries of 0 KV heads', () => questSelect(q, { pageSize: 16, nKv: 5, kmin: tensor([0, 1, D], 1), kmax: tensor([0, 1, D], 1) }, { budget: 16 }), RangeError, /^summaries\.kmin\.shape\[0\] \(nKvHeads\): expected at least 1, received 0/],
    ['blockSelect: headDim 0', () => blockSelect(tensor([4, 1, 0], 1), { blockSize: 64, nKv: 5, kmin: tensor([1, 1, 0], 1), kmax: tensor([1, 1, 0], 1), kmean: tensor([1, 1, 0], 1) }, { budget: 16 }), RangeError, /^q\.shape\[2\] \(headDim\): expected at least 1, received 0/],
    ['questSelect: q of another headDim', () => questSelect(tensor([4, 1, 4], 1), questPageSummaries(k), { budget: 16 }), RangeError, /^summaries\.kmin\.shape\[2\] \(headDim\): expected q's headDim = 4, received 8/],
    ['blockSelect: Infinity in kmean', () => { const s = blockSummaries(k, { blockSize: 8 }); s.kmean.data[D * 5 + 1] = Infinity; return blockSelect(q, s, { budget: 16 }); }, RangeError, /^summaries: expected finite kmin <= kmax and a finite kmean, received .* kmean Infinity at \[1\]\[0\]\[1\]/],
    ['blockSelect: mix 2', () => blockSelect(q, blockSummaries(k), { budget: 16, mix: 2 }), RangeError, /^options\.mix: expected a number in \[0, 1\], received 2/],
    ['tidalSelect: +Infinity weight', () => { const w = tensor([H, 1, N], 3); w.data[N + 7] = Infinity; return tidalSelect(w, { budget: 8 }); }, RangeError, /^weights\[1\]\[7\]: expected a finite number or -Infinity, received Infinity/],
    ['tidalSelect: NaN weight (2-D)', () => tidalSelect({ dtype: 'f32', shape: [H, N], data: Float32Array.from({ length: H * N }, (_, i) => (i === 3 ? NaN : i)) }, { budget: 8 }), RangeError, /^weights\[0\]\[3\]: expected a finite number or -Infinity, received NaN/],
    ['tidalSelect: nKvHeads not dividing nHeads', () => tidalSelect(tensor([3, 1, N], 3), { budget: 8, nKvHeads: 2 }), RangeError, /^weights\.shape\[0\] \(nHeads\): expected a multiple of options\.nKvHeads = 2, received 3/],
    ['tidalSelect: nQ against 3-D weights', () => tidalSelect(tensor([2, 1, N], 3), { budget: 8, nQ: 2 }), RangeError, /^options\.nQ: expected weights\.shape\[1\] = 1/],
    ['tidalSelect: nKvHeads 0', () => tidalSelect(tensor([2, 1, N], 3), { budget: 8, nKvHeads: 0 }), RangeError, /^options\.nKvHeads: expected an integer >= 1, received 0/],
  ] as [string, () => unknown, ErrorConstructor, RegExp][])('%s', (_, call, type, message) => {
    const before = [Array.from(k.data), Array.from(q.data)];
    expectError(call, type, message);
    expect([Array.from(k.data), Array.from(q.data)]).toEqual(before);
  });

  test('-Infinity weights (masked keys) are allowed and never chosen over finite ones', () => {
    const w = tensor([1, 1, N], 3);
    for (let t = 0; t < N; t += 2) w.data[t] = -Infinity;
    const got = Array.from(tidalSelect(w, { budget: 8, recent: 0 }).data);
    expect(got).toHaveLength(8);
    expect(got.every((t) => t % 2 === 1)).toBe(true);
  });
});

describe('the raw binding in a child process (crashes before the fix)', () => {
  test('header products that wrap, hostile header values, selectedStride; failed calls leave outputs as they were', () => {
    const run = runFixture('sparse-hostile.mjs');
    expectSurvived(run);
    expect(run.cases.length).toBe(29);
    for (const c of run.cases) {
      expect(c.outcome, c.case).toBe('threw');
      expect(['RangeError', 'TypeError'], `${c.case}: ${c.message}`).toContain(c.type);
    }
    const byName = (name: string) => run.cases.find((c) => c.case === name)!;
    const product = /^(k\.shape|q\.shape|summaries|indices|weights): expected at most 2\^40 elements, received a larger product of the header's dimensions$/;
    for (const c of run.cases.filter((x) => /2\^|product/.test(x.case) && !x.case.includes('selectedStride') && !x.case.includes('in the header'))) {
      expect(c.message, c.case).toMatch(product);
    }
    expect(byName('questSelect: summaries product 2^44').message).toMatch(/^summaries: /);
    expect(byName('questSelect: indices product 2^50').message).toMatch(/^indices: /);
    expect(byName('tidalSelect: indices product 2^41 (rows 0)').message).toMatch(/^indices: /);
    expect(byName('questSelect: NaN in the header').message).toBe('questSelect: header[8]: expected an integer, received NaN');
    expect(byName('questSelect: a header of 12 numbers').message).toBe('questSelect: header: expected 13 numbers, received 12');
    expect(byName('questSummarize: indices output aliasing the header').message).toMatch(/^kmin: expected an output that shares no memory with the input header/);
    expect(byName('KvCacheHandle.attend: selectedStride 2^52, 4096 KV heads').message).toMatch(/^sparse: selectedStride: expected 0 to selected\.length = 0, received 4503599627370496/);
    const failures = run.cases.filter((c) => c.case.includes('leaves'));
    expect(failures).toHaveLength(5);
    for (const c of failures) expect(c.unchanged, `${c.case}: ${c.message}`).toBe(true);
  }, 120_000);
});

describe('worker termination during long sparse attends', () => {
  test('terminate() and process.exit() in a worker while Quest, block and TidalDecode attendAsync calls run: the process survives', () => {
    const run = runFixture('sparse-worker-teardown.mjs', ['1'], { timeoutMs: 400_000 });
    expectSurvived(run);
    expect(run.done?.workers).toBe(16);
    for (const method of ['quest', 'blocks', 'tidal-select', 'tidal-kept']) {
      for (const mode of ['terminate', 'exit']) expect(run.cases.map((c) => c.case)).toContain(`${method}: ${mode} after 10 ms`);
    }
  }, 420_000);
});
