// Regressions of the hardening pass over the tokenizer tools' native entry
// points (native/binding/tokenizer_binding.cpp, token_kn_binding.cpp,
// dynamic_bpe_binding.cpp, omp_binding.cpp, tokenizer_super_binding.cpp),
// added to test/fixtures/hardening-entry-points.mjs so that the suites of
// test/unit/hardening/ cover them. What those suites found nothing wrong
// with is not repeated here; these are the fixes:
//   1. dynamicBpe: a negative or too large maxMerges, a negative targetTotal
//      or a minCount below 1 got one kernel message naming no argument
//      ("dynamic BPE: expected firstNewId >= 0, maxMerges >= 0 ..."); now a
//      RangeError naming the argument, from the binding.
//   2. tokCoreNew: bad offsets or out-of-range merge ids got "bpe: ..." from
//      the kernel (offsets "(id 4)" for a bad offsets[5]; merges not named);
//      now a RangeError naming offsets[i] / merges[i].
// And a sweep: every argument of every new entry point replaced by a value
// of the wrong type or size is a TypeError or RangeError, never a crash or
// another error, and the caller's other arrays are left as they were.
import { describe, expect, it } from 'vitest';
import { ENTRY_POINTS, entry, loadAddon } from '../fixtures/hardening-entry-points.mjs';

const addon = loadAddon();

const NEW = ['tokCoreNew', 'tokCoreEncode', 'tokCoreIdOf', 'tokCoreWithPrefix', 'tokCorePrefixOf', 'tokenKnTrain', 'tokenKnNext', 'dynamicBpe',
  'ompBatch', 'ompBatchAsync', 'bpeEncodePieces', 'countTokenPairs', 'trainSuperMerges', 'trainSuperMergesAsync'];

/** The error a call throws or rejects with. */
async function failure(run: () => unknown): Promise<Error> {
  try {
    await run();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a failure');
}

/** Runs entry `name` on its sample params changed by `change`. */
function call(name: string, change: (p: Record<string, any>) => void): { p: Record<string, any>; run: () => unknown } {
  const e = entry(name)!;
  const state = e.setup ? e.setup(addon) : {};
  const p = e.params(state);
  change(p);
  return { p, run: () => e.call(addon, state, p) };
}

describe('the tokenizer entry points are in the hardening fixture', () => {
  it('every new native function, sync and async', () => {
    const names = ENTRY_POINTS.map((e) => e.name);
    for (const n of NEW) expect(names).toContain(n);
    for (const n of NEW) expect(typeof addon[n.replace(/ .*/, '')]).toBe('function');
  });

  it('every sample call works (so that the suites test refusals, not broken samples)', async () => {
    for (const n of NEW) {
      const { run } = call(n, () => {});
      const value = await run(); // throws (rejects) and fails the test when a sample is wrong
      // tokenKnNext and ompBatch(Async) write their outputs and return undefined.
      expect(value === undefined, n).toBe(['tokenKnNext', 'ompBatch', 'ompBatchAsync'].includes(n));
    }
  });
});

describe('dynamicBpe: scalar errors name the argument (fix 1)', () => {
  const cases: [string, number, RegExp][] = [
    ['maxMerges', -1, /^maxMerges: expected an integer in \[0, 2\^31 - 1 - firstNewId = 2147483644\], received -1$/],
    ['maxMerges', 2 ** 31, /^maxMerges: expected an integer in \[0, 2\^31 - 1 - firstNewId = 2147483644\], received 2147483648$/],
    ['targetTotal', -5, /^targetTotal: expected an integer >= 0, received -5$/],
    ['minCount', 0, /^minCount: expected an integer >= 1, received 0$/],
    ['minCount', -3, /^minCount: expected an integer >= 1, received -3$/],
  ];
  it.each(cases)('%s = %d', async (field, value, message) => {
    let calls = 0;
    const { p, run } = call('dynamicBpe', (q) => {
      q[field] = value;
      q.isValidPairs = (x: Int32Array) => { calls++; return new Uint8Array(x.length).fill(1); };
    });
    const e = await failure(run);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(message);
    expect(calls).toBe(0); // refused before any callback ran
    expect(Array.from(p.tokens)).toEqual([1, 2, 1, 2, 1]);
  });

  it('firstNewId + maxMerges = 2^31 - 1 is still accepted, one more is not', () => {
    const ok = call('dynamicBpe', (q) => { q.maxMerges = 2 ** 31 - 1 - 3; });
    expect(ok.run()).toMatchObject({ mergeA: Int32Array.of(2, 1) });
    const bad = call('dynamicBpe', (q) => { q.firstNewId = 4; q.maxMerges = 2 ** 31 - 1 - 3; });
    expect(bad.run).toThrow(/^maxMerges: expected an integer in \[0, 2\^31 - 1 - firstNewId = 2147483643\], received 2147483644$/);
  });
});

describe('tokCoreNew: offsets and merges errors name the entry (fix 2)', () => {
  it.each([
    ['offsets', 5, 1e9, /^offsets\[5\]: expected non-decreasing offsets from 0 to blob\.length = 261, received 1000000000$/],
    ['offsets', 5, -7, /^offsets\[5\]: expected non-decreasing offsets from 0 to blob\.length = 261, received -7$/],
    ['offsets', 0, 1, /^offsets\[0\]: expected non-decreasing offsets from 0 to blob\.length = 261, received 1$/],
    ['offsets', 258, 260, /^offsets\[258\]: expected non-decreasing offsets from 0 to blob\.length = 261, received 260$/],
    ['merges', 1, 9999, /^merges\[1\]: expected a token id in \[0, 258\), received 9999$/],
    ['merges', 0, -1, /^merges\[0\]: expected a token id in \[0, 258\), received -1$/],
  ] as [string, number, number, RegExp][])('%s[%d] = %d', (field, at, value, message) => {
    const { p, run } = call('tokCoreNew', (q) => { q[field][at] = value; });
    const before = { blob: Array.from(p.blob), ordinary: Array.from(p.ordinary) };
    expect(run).toThrow(RangeError);
    expect(run).toThrow(message);
    expect({ blob: Array.from(p.blob), ordinary: Array.from(p.ordinary) }).toEqual(before);
  });

  it('the sample vocabulary still encodes (ab + c -> abc)', () => {
    const { run } = call('tokCoreEncode', () => {});
    // 'abcab abc' in pieces [0, 5) and [5, 9): abc ab | ' ' abc.
    expect(Array.from(run() as Int32Array)).toEqual([257, 256, 32, 257]);
  });
});

describe('wrong types and sizes: a TypeError or RangeError, inputs untouched', () => {
  const WRONG: Record<string, unknown> = {
    undefined: undefined, null: null, string: '3', fraction: 1.5, negative: -1, NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY,
    '2^53': 2 ** 53, object: {}, array: [1, 2], symbol: Symbol('s'), bigint: 3n, function: () => {},
    Float32Array: new Float32Array(3), Int32Array: new Int32Array(3), Uint8Array: new Uint8Array(3), Float64Array: new Float64Array(3), Uint32Array: new Uint32Array(3),
  };
  it.each(NEW)('%s', async (name) => {
    const e = entry(name)!;
    const state = e.setup ? e.setup(addon) : {};
    let refused = 0;
    for (const field of Object.keys(e.params(state))) {
      for (const [what, value] of Object.entries(WRONG)) {
        const p = e.params(state);
        p[field] = value;
        const inputs = e.inputs.filter((f) => f !== field && p[f] !== undefined).map((f) => [f, Array.from(p[f] as ArrayLike<number>)]);
        try {
          await e.call(addon, state, p);
        } catch (err) {
          refused++;
          expect([TypeError, RangeError].some((k) => err instanceof k), `${field} = ${what}: ${String(err)}`).toBe(true);
        }
        for (const [f, before] of inputs) expect(Array.from(p[f as string] as ArrayLike<number>), `${field} = ${what}: ${f}`).toEqual(before);
      }
    }
    expect(refused).toBeGreaterThan(0);
  });
});
