// KvCache's argument checks (lib/kv/cache.ts), each at its bounds and by
// its message: constructor options and their documented defaults, append,
// attend, compress and export. Stryker showed bounds and messages that
// could change with no test failing. A refused call changes nothing, so
// each refusal is also checked to leave the lengths as they were.
import { describe, expect, test } from 'vitest';
import { KvCache } from '../../lib/index.js';

const f32 = (shape: number[]) => ({ dtype: 'f32' as const, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(0.25) });
const base = { nLayers: 2, nKvHeads: 2, headDim: 4 };

describe('constructor', () => {
  test('documented defaults: capacity 2^31 - 1, dtype f16, device cpu', () => {
    const c = new KvCache(base);
    expect([c.nLayers, c.nKvHeads, c.headDim, c.capacity, c.dtype, c.device]).toEqual([2, 2, 4, 0x7fffffff, 'f16', 'cpu']);
  });
  test('bounds that are accepted', () => {
    // Each upper bound on its own (4096 x 4096 layer-heads at once cost 19 s of setup).
    expect(new KvCache({ nLayers: 4096, nKvHeads: 1, headDim: 1, capacity: 1 }).nLayers).toBe(4096);
    expect(new KvCache({ nLayers: 1, nKvHeads: 4096, headDim: 1, capacity: 1 }).nKvHeads).toBe(4096);
    expect(new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 65536, capacity: 0x7fffffff, dtype: 'int8', groupSize: 4096, residual: 0, window: 4096 }).dtype).toBe('int8');
    expect(new KvCache({ ...base, groupSize: 1, window: 1, dtype: 'int4' }).dtype).toBe('int4');
  });
  const cases: [unknown, ErrorConstructor, string][] = [
    [undefined, TypeError, 'options: expected { nLayers, nKvHeads, headDim, capacity?, dtype? }, received undefined'],
    [{ ...base, nLayers: 0 }, RangeError, 'options.nLayers: expected an integer in [1, 4096], received 0'],
    [{ ...base, nLayers: 4097 }, RangeError, 'options.nLayers: expected an integer in [1, 4096], received 4097'],
    [{ ...base, nKvHeads: 4097 }, RangeError, 'options.nKvHeads: expected an integer in [1, 4096], received 4097'],
    [{ ...base, nKvHeads: 0 }, RangeError, 'options.nKvHeads: expected an integer in [1, 4096], received 0'],
    [{ ...base, headDim: 65537 }, RangeError, 'options.headDim: expected an integer in [1, 65536], received 65537'],
    [{ ...base, headDim: 0 }, RangeError, 'options.headDim: expected an integer in [1, 65536], received 0'],
    [{ ...base, capacity: 0 }, RangeError, 'options.capacity: expected an integer in [1, 2147483647], received 0'],
    [{ ...base, capacity: 2 ** 31 }, RangeError, 'options.capacity: expected an integer in [1, 2147483647], received 2147483648'],
    [{ ...base, dtype: 'f64' }, TypeError, "options.dtype: expected 'f32' | 'f16' | 'bf16' | 'int8' | 'int4', received \"f64\""],
    [{ ...base, groupSize: 0 }, RangeError, 'options.groupSize: expected an integer in [1, 4096], received 0'],
    [{ ...base, groupSize: 4097 }, RangeError, 'options.groupSize: expected an integer in [1, 4096], received 4097'],
    [{ ...base, residual: -1 }, RangeError, 'options.residual: expected an integer in [0, 2147483647], received -1'],
    [{ ...base, window: 0 }, RangeError, 'options.window: expected an integer in [1, 4096], received 0'],
    [{ ...base, window: 4097 }, RangeError, 'options.window: expected an integer in [1, 4096], received 4097'],
    [{ ...base, device: 1 }, TypeError, "options.device: expected 'cpu' | 'cuda', received 1"],
    [{ ...base, device: 'gpu' }, RangeError, "options.device: expected 'cpu' | 'cuda', received \"gpu\""],
    [{ ...base, nLayer: 2 }, TypeError, 'options: unknown option "nLayer" (did you mean "nLayers"?)'],
    [{ ...base, capacity: 100, autoCompress: 5 }, TypeError, 'options.autoCompress: expected an options object, received 5'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm' } }, TypeError, 'options.autoCompress.budget: expected { keep: n }, received undefined'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 0 } } }, RangeError, 'options.autoCompress.budget.keep: expected an integer in [1, 99], received 0'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 100 } } }, RangeError, 'options.autoCompress.budget.keep: expected an integer in [1, 99], received 100'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 10 }, interval: 0 } }, RangeError, 'options.autoCompress.interval: expected an integer >= 1, received 0'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 10 }, interval: 91 } }, RangeError, 'options.autoCompress.interval: expected budget.keep + interval <= capacity = 100, received 91'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 50 } } }, RangeError, 'options.autoCompress.interval: expected budget.keep + interval <= capacity = 100, received 64'],
    [{ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 10, ratio: 1 } } }, TypeError, 'options.autoCompress.budget: unknown option "ratio"'],
  ];
  for (const [options, kind, message] of cases) {
    test(message, () => {
      expect(() => new KvCache(options as never)).toThrow(kind);
      expect(() => new KvCache(options as never)).toThrow(message);
    });
  }
  test('autoCompress: keep + interval = capacity is accepted (default interval 64)', () => {
    expect(() => new KvCache({ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 10 }, interval: 90 } })).not.toThrow();
    expect(() => new KvCache({ ...base, capacity: 100, autoCompress: { policy: 'knorm', budget: { keep: 36 } } })).not.toThrow();
  });
});

describe('append / attend / compress / export refusals change nothing', () => {
  const make = () => {
    const c = new KvCache({ ...base, capacity: 8, dtype: 'f32' });
    c.append(0, f32([2, 3, 4]), f32([2, 3, 4]));
    return c;
  };
  const cases: [string, (c: KvCache) => unknown, ErrorConstructor, string][] = [
    ['layer', (c) => c.append(2, f32([2, 1, 4]), f32([2, 1, 4])), RangeError, 'layer: expected an integer in [0, 1], received 2'],
    ['layer -1', (c) => c.append(-1, f32([2, 1, 4]), f32([2, 1, 4])), RangeError, 'layer: expected an integer in [0, 1], received -1'],
    ['heads', (c) => c.append(0, f32([1, 1, 4]), f32([1, 1, 4])), RangeError, "k.shape[0] (nKvHeads): expected the cache's nKvHeads = 2, received 1"],
    ['headDim', (c) => c.append(0, f32([2, 1, 3]), f32([2, 1, 3])), RangeError, "k.shape[2] (headDim): expected the cache's headDim = 4, received 3"],
    ['v shape', (c) => c.append(0, f32([2, 1, 4]), f32([2, 2, 4])), RangeError, 'v.shape: expected [2, 1, 4] (the shape of k), received "[2, 2, 4]"'],
    ['positions type', (c) => c.append(0, f32([2, 1, 4]), f32([2, 1, 4]), { positions: [5] as never }), TypeError, 'opts.positions: expected an Int32Array of 1 positions, received an array of length 1'],
    ['positions length', (c) => c.append(0, f32([2, 2, 4]), f32([2, 2, 4]), { positions: Int32Array.of(5) }), RangeError, 'opts.positions.length: expected n = 2, received 1'],
    ['capacity', (c) => c.append(0, f32([2, 6, 4]), f32([2, 6, 4])), RangeError, 'k.shape[1] (n): expected at most 5 tokens (layer 0 holds 3 of capacity 8), received 6'],
    ['attend headDim', (c) => c.attend(0, f32([2, 1, 3])), RangeError, "q.shape[2] (headDim): expected the cache's headDim = 4, received 3"],
    ['attend heads', (c) => c.attend(0, f32([3, 1, 4])), RangeError, 'q.shape[0] (nHeads): expected a multiple of nKvHeads = 2, received 3'],
    ['attend no query', (c) => c.attend(0, f32([2, 0, 4])), RangeError, 'q.shape[1] (nQ): expected at least 1 query, received 0'],
    ['attend out', (c) => c.attend(0, f32([2, 1, 4]), { out: new Float32Array(7) }), RangeError, 'opts.out.length: expected 8 (nHeads * nQ * headDim), received 7'],
    ['attend out type', (c) => c.attend(0, f32([2, 1, 4]), { out: [] as never }), TypeError, 'opts.out: expected a Float32Array of 8 elements, received an array of length 0'],
    ['attend scale', (c) => c.attend(0, f32([2, 1, 4]), { scale: 0 }), RangeError, 'opts.scale: expected a positive number, received 0'],
    ['attend softcap', (c) => c.attend(0, f32([2, 1, 4]), { softcap: -1 }), RangeError, 'opts.softcap: expected a number >= 0 (0 = off), received -1'],
    ['attend causal', (c) => c.attend(0, f32([2, 1, 4]), { causal: 1 as never }), TypeError, 'opts.causal: expected a boolean, received 1'],
    ['attend accumulateMass', (c) => c.attend(0, f32([2, 1, 4]), { accumulateMass: 1 as never }), TypeError, 'opts.accumulateMass: expected a boolean, received 1'],
    ['attend remember', (c) => c.attend(0, f32([2, 1, 4]), { remember: 1 as never }), TypeError, 'opts.remember: expected a boolean, received 1'],
    ['attend returnLse', (c) => c.attend(0, f32([2, 1, 4]), { returnLse: 1 as never }), TypeError, 'opts.returnLse: expected a boolean, received 1'],
    ['compress layers type', (c) => c.compress('knorm', { keep: 2 }, { layers: 0 as never }), TypeError, 'opts.layers: expected an array of layer indices, received 0'],
    ['compress layers range', (c) => c.compress('knorm', { keep: 2 }, { layers: [2] }), RangeError, 'opts.layers[0]: expected an integer in [0, 1], received 2'],
    ['compress layers twice', (c) => c.compress('knorm', { keep: 2 }, { layers: [0, 1, 0] }), RangeError, 'opts.layers[2]: expected distinct layer indices, received 0'],
    ['compress drafts', (c) => c.compress('speckv', { keep: 2 }, { draftQueries: f32([2, 1, 4]) as never }), TypeError, 'opts.draftQueries: expected an array of nLayers = 2 tensors (or undefined entries), received an object'],
    ['compress draft headDim', (c) => c.compress('speckv', { keep: 2 }, { draftQueries: [f32([2, 1, 3]), undefined] }), RangeError, "opts.draftQueries[0].shape[2] (headDim): expected the cache's headDim = 4, received 3"],
    ['compress draft heads', (c) => c.compress('speckv', { keep: 2 }, { draftQueries: [f32([3, 1, 4]), undefined] }), RangeError, 'opts.draftQueries[0].shape[0] (nHeads): expected a multiple of nKvHeads = 2, received 3'],
    ['compress draft none', (c) => c.compress('speckv', { keep: 2 }, { draftQueries: [f32([2, 0, 4]), undefined] }), RangeError, 'opts.draftQueries[0].shape[1] (nDraft): expected at least 1 draft query, received 0'],
    ['export layer', (c) => c.export(2), RangeError, 'layer: expected an integer in [0, 1], received 2'],
    ['export dtype', (c) => c.export(0, { dtype: 'int8' as never }), TypeError, "opts.dtype: expected 'f32' | 'f16' | 'bf16', received \"int8\""],
  ];
  for (const [name, run, kind, message] of cases) {
    test(`${name}: ${message}`, () => {
      const c = make();
      const before = JSON.stringify([Array.from(c.lengths().data), Array.from(c.export(0, { dtype: 'f32' }).k.data)]);
      expect(() => run(c)).toThrow(kind);
      expect(() => run(c)).toThrow(message);
      expect(JSON.stringify([Array.from(c.lengths().data), Array.from(c.export(0, { dtype: 'f32' }).k.data)])).toBe(before);
    });
  }
  test('the capacity exactly filled is accepted', () => {
    const c = make();
    c.append(0, f32([2, 5, 4]), f32([2, 5, 4]));
    expect(Array.from(c.lengths().data)).toEqual([8, 8, 0, 0]);
    expect(c.lengths().shape).toEqual([2, 2]);
  });
  test('export: default dtype is the cache\'s (f16 for int caches), shapes and padding', () => {
    const c = new KvCache({ ...base, capacity: 8, dtype: 'int8' });
    c.append(1, f32([2, 3, 4]), f32([2, 3, 4]));
    const e = c.export(1);
    expect(e.k.dtype).toBe('f16');
    expect(e.k.shape).toEqual([2, 3, 4]);
    expect(e.positions).toMatchObject({ dtype: 'i32', shape: [2, 3] });
    expect(Array.from(e.positions.data)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Array.from(e.lengths)).toEqual([3, 3]);
    expect(e.counts).toMatchObject({ dtype: 'f32', shape: [2, 3] });
    expect(Array.from(e.counts.data)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(new KvCache({ ...base, dtype: 'bf16' }).export(0).k.dtype).toBe('bf16');
  });
});

describe('razor budgets, the busy check, lse, remembered queries, clear', () => {
  const make = () => {
    const c = new KvCache({ ...base, capacity: 16, dtype: 'f32' });
    for (let l = 0; l < 2; l++) c.append(l, f32([2, 8, 4]), f32([2, 8, 4]));
    return c;
  };
  test('razor needs sinks + 1 (+ recent): one less is refused by message, exactly that passes', () => {
    const c = make();
    expect(() => c.compress({ name: 'razor', sinks: 2 }, { keep: 2 })).toThrow(new RangeError('budget: expected at least 3 tokens per head (razor keeps 2 sinks, and a compensation token), received 2'));
    expect(() => c.compress({ name: 'razor', sinks: 2, recent: 2 }, { keep: 4 })).toThrow(new RangeError('budget: expected at least 5 tokens per head (razor keeps 2 sinks, 2 recent tokens, and a compensation token), received 4'));
    expect(Array.from(c.lengths().data)).toEqual([8, 8, 8, 8]);
    c.compress({ name: 'razor', sinks: 2, recent: 2 }, { keep: 5 });
    expect(Array.from(c.lengths().data)).toEqual([5, 5, 5, 5]);
    expect(() => new KvCache({ ...base, capacity: 100, autoCompress: { policy: { name: 'razor', sinks: 3 }, budget: { keep: 3 } } })).toThrow(
      new RangeError('options.autoCompress.budget: expected at least 4 tokens per head (razor keeps 3 sinks, and a compensation token), received 3'));
    expect(() => new KvCache({ ...base, capacity: 100, autoCompress: { policy: { name: 'razor', sinks: 3 }, budget: { keep: 4 } } })).not.toThrow();
  });
  test('a sync call while an async one is pending is ERR_CACHE_BUSY', async () => {
    const c = make();
    const p = c.attendAsync(0, f32([2, 1, 4]));
    expect(() => c.append(0, f32([2, 1, 4]), f32([2, 1, 4]))).toThrow('KvCache: async operations on this cache are pending; await them before a sync call');
    expect(() => c.clear()).toThrow(expect.objectContaining({ code: 'ERR_CACHE_BUSY' }));
    await p;
    expect(() => c.append(0, f32([2, 1, 4]), f32([2, 1, 4]))).not.toThrow();
  });
  test('attend: lse [nHeads, nQ] only when asked; v with other heads is refused', () => {
    const c = make();
    const r = c.attend(0, f32([4, 2, 4]), { returnLse: true });
    expect(r.output.shape).toEqual([4, 2, 4]);
    expect(r.lse!.shape).toEqual([4, 2]);
    expect(r.lse!.dtype).toBe('f32');
    expect(r.lse!.data).toHaveLength(8);
    expect(c.attend(0, f32([2, 1, 4]))).not.toHaveProperty('lse');
    expect(() => c.attend(0, f32([0, 1, 4]))).toThrow('q.shape[0] (nHeads): expected a multiple of nKvHeads = 2, received 0');
    expect(() => c.append(0, f32([2, 1, 4]), f32([1, 1, 4]))).toThrow('v.shape: expected [2, 1, 4] (the shape of k), received "[1, 1, 4]"');
    expect(() => c.append(0, f32([2, 1, 4]), f32([2, 1, 5]))).toThrow('v.shape: expected [2, 1, 4] (the shape of k), received "[2, 1, 5]"');
    expect(c.lengths()).toMatchObject({ dtype: 'i32', shape: [2, 2] });
  });
  test('autoCompress with a query-scored policy waits for remembered queries; clear(layer) forgets them', () => {
    const c = new KvCache({ nLayers: 2, nKvHeads: 1, headDim: 4, capacity: 64, dtype: 'f32', autoCompress: { policy: { name: 'snapkv', window: 2 }, budget: { keep: 4 }, interval: 4 } });
    const row = (n: number) => ({ dtype: 'f32' as const, shape: [1, n, 4], data: Float32Array.from({ length: n * 4 }, (_, i) => Math.cos(i)) });
    c.append(0, row(10), row(10));
    expect(c.lengths().data[0]).toBe(10); // no queries yet: nothing to score with
    c.attend(0, row(1), { remember: false });
    c.append(0, row(1), row(1));
    expect(c.lengths().data[0]).toBe(11); // queries not remembered: still waits
    c.attend(0, row(2));
    c.append(0, row(1), row(1));
    expect(c.lengths().data[0]).toBeLessThanOrEqual(8); // compressed to keep (4), below keep + interval
    c.clear(0);
    c.append(0, row(10), row(10));
    expect(c.lengths().data[0]).toBe(10); // clear forgot the queries
    expect(() => c.clear(2)).toThrow(new RangeError('layer: expected an integer in [0, 1], received 2'));
    c.clear();
    expect(Array.from(c.lengths().data)).toEqual([0, 0]);
    // knorm needs no queries: it compresses at once.
    const k = new KvCache({ nLayers: 1, nKvHeads: 1, headDim: 4, capacity: 64, dtype: 'f32', autoCompress: { policy: 'knorm', budget: { keep: 4 }, interval: 4 } });
    k.append(0, row(10), row(10));
    expect(k.lengths().data[0]).toBe(4);
  });
});
