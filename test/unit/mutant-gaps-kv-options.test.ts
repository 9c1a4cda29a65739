// KV policy options as the native code receives them (lib/kv/policies.ts
// resolvePolicy / policyOptions / checkBudgetFits, lib/kv/compression.ts
// resolveCompression / checkAutoPolicyFits), pinned in full: Stryker showed
// that defaults, option checks and messages could change with no test
// failing, since the tests only checked that a bad option throws. Expected
// values come from the documented defaults (the interfaces' comments and
// docs), written out here, not from the code.
import { describe, expect, test } from 'vitest';
import { checkAutoPolicyFits, resolveCompression } from '../../lib/kv/compression.js';
import { checkBudgetFits, forcedKeep, policyOptions, resolvePolicy } from '../../lib/kv/policies.js';

const NAMES = 'streamingllm, knorm, random, tova, h2o, snapkv, expected_attention, speckv, ems';
const ALL = `${NAMES}, pyramidkv, adakv, razor`;
/** The fields every resolved policy has before its own defaults apply. */
const BASE = { sinks: 4, recent: 32, window: 32, kernel: 5, pooling: 'avg', seed: undefined, epsilon: 0, useCovariance: true, useVnorm: true, reduction: 'max' };

describe('resolvePolicy: every default', () => {
  const cases: [string, object][] = [
    ['streamingllm', {}], ['knorm', {}], ['random', {}], ['tova', {}], ['h2o', {}],
    ['snapkv', {}], ['expected_attention', { epsilon: 0 }],
    ['speckv', { kernel: 7, pooling: 'max' }], ['ems', { reduction: 'mean' }],
  ];
  for (const [name, own] of cases) {
    test(name, () => {
      expect(resolvePolicy(name)).toEqual({ ...BASE, name, ...own });
      expect(resolvePolicy({ name })).toEqual(resolvePolicy(name));
    });
  }
});

describe('resolvePolicy: given options are kept', () => {
  test('every field', () => {
    expect(resolvePolicy({ name: 'streamingllm', sinks: 0 }).sinks).toBe(0);
    expect(resolvePolicy({ name: 'h2o', recent: 0 }).recent).toBe(0);
    expect(resolvePolicy({ name: 'snapkv', window: 1, kernel: 1, pooling: 'max' })).toMatchObject({ window: 1, kernel: 1, pooling: 'max' });
    expect(resolvePolicy({ name: 'random', seed: 7 }).seed).toBe(7);
    expect(resolvePolicy({ name: 'expected_attention', sinks: 2, epsilon: 0.5, useCovariance: false, useVnorm: false }))
      .toMatchObject({ sinks: 2, epsilon: 0.5, useCovariance: false, useVnorm: false });
    expect(resolvePolicy({ name: 'speckv', reduction: 'mean' }).reduction).toBe('mean');
    expect(resolvePolicy({ name: 'ems', combine: 'mean' }).reduction).toBe('mean');
    expect(resolvePolicy({ name: 'ems', combine: 'max' }).reduction).toBe('max');
  });
});

describe('resolvePolicy: bad options, by message', () => {
  const cases: [unknown, ErrorConstructor, string][] = [
    [5, TypeError, `policy: expected a policy name (${NAMES}) or { name, ...options }, received 5`],
    [null, TypeError, `policy: expected a policy name (${NAMES}) or { name, ...options }, received null`],
    [['h2o'], TypeError, `policy: expected a policy name (${NAMES}) or { name, ...options }, received an array of length 1`],
    [{ name: 3 }, TypeError, `policy.name: expected one of ${NAMES}, received 3`],
    ['h2', TypeError, `policy: unknown policy "h2" (did you mean "h2o"?); known policies: ${NAMES}`],
    ['zzzzzzzzzzzz', TypeError, `policy: unknown policy "zzzzzzzzzzzz"; known policies: ${NAMES}`],
    [{ name: 'h2o', recnt: 3 }, TypeError, 'policy (h2o): unknown option "recnt" (did you mean "recent"?); known options: name, recent'],
    [{ name: 'knorm', sinks: 3 }, TypeError, 'policy (knorm): unknown option "sinks"; known options: name'],
    [{ name: 'streamingllm', sinks: -1 }, RangeError, 'policy.sinks: expected an integer >= 0, received -1'],
    [{ name: 'h2o', recent: 1.5 }, RangeError, 'policy.recent: expected an integer, received 1.5'],
    [{ name: 'snapkv', window: 0 }, RangeError, 'policy.window: expected an integer >= 1, received 0'],
    [{ name: 'snapkv', kernel: 0 }, RangeError, 'policy.kernel: expected an integer >= 1, received 0'],
    [{ name: 'snapkv', pooling: 'sum' }, TypeError, `policy.pooling: expected 'avg' | 'max', received "sum"`],
    [{ name: 'random', seed: -1 }, RangeError, 'policy.seed: expected an integer >= 0, received -1'],
    [{ name: 'expected_attention', epsilon: -0.5 }, RangeError, 'policy.epsilon: expected a finite number >= 0, received -0.5'],
    [{ name: 'expected_attention', epsilon: '1' }, TypeError, 'policy.epsilon: expected a number, received "1"'],
    [{ name: 'expected_attention', useCovariance: 1 }, TypeError, 'policy.useCovariance: expected a boolean, received 1'],
    [{ name: 'expected_attention', useVnorm: 'no' }, TypeError, 'policy.useVnorm: expected a boolean, received "no"'],
    [{ name: 'speckv', reduction: 'sum' }, TypeError, `policy.reduction: expected 'mean' | 'max', received "sum"`],
    [{ name: 'ems', combine: 'sum' }, TypeError, `policy.combine: expected 'mean' | 'max', received "sum"`],
  ];
  for (const [policy, kind, message] of cases) {
    test(message, () => {
      expect(() => resolvePolicy(policy)).toThrow(kind);
      expect(() => resolvePolicy(policy)).toThrow(message);
    });
  }
  test('epsilon 0 is accepted (the bound is >= 0)', () => {
    expect(resolvePolicy({ name: 'expected_attention', epsilon: 0 }).epsilon).toBe(0);
  });
});

describe('policyOptions: the native fields', () => {
  test('codes and the seed fallback', () => {
    expect(policyOptions(resolvePolicy('snapkv'))).toEqual({
      sinks: 4, recent: 32, window: 32, kernel: 5, pooling: 0, seed: 0, epsilon: 0, useCovariance: true, useVnorm: true, reduction: 1,
    });
    expect(policyOptions(resolvePolicy({ name: 'snapkv', pooling: 'max' })).pooling).toBe(1);
    expect(policyOptions(resolvePolicy({ name: 'speckv', reduction: 'mean' })).reduction).toBe(0);
    expect(policyOptions(resolvePolicy('knorm'), 9).seed).toBe(9); // no seed of its own: the caller's
    expect(policyOptions(resolvePolicy({ name: 'random', seed: 3 }), 9).seed).toBe(3);
    expect(policyOptions(resolvePolicy('random'), 9).seed).toBe(9); // documented: default inputs.seed
    expect(policyOptions(resolvePolicy('random')).seed).toBe(0); // else 0
  });
});

describe('forcedKeep / checkBudgetFits', () => {
  test('what each policy always keeps', () => {
    expect(forcedKeep(resolvePolicy('streamingllm'), 10)).toEqual({ count: 4, what: 'its 4 sink tokens' });
    expect(forcedKeep(resolvePolicy('expected_attention'), 10)).toEqual({ count: 4, what: 'its 4 sink tokens' });
    expect(forcedKeep(resolvePolicy({ name: 'h2o', recent: 6 }), 10)).toEqual({ count: 6, what: 'its 6 recent tokens' });
    for (const name of ['snapkv', 'speckv', 'ems']) {
      expect(forcedKeep(resolvePolicy(name), 10)).toEqual({ count: 10, what: "its observation window of 10 queries' tokens" });
      expect(forcedKeep(resolvePolicy(name), 40)).toEqual({ count: 32, what: "its observation window of 32 queries' tokens" });
    }
    for (const name of ['knorm', 'random', 'tova']) expect(forcedKeep(resolvePolicy(name), 10)).toEqual({ count: 0, what: '' });
  });
  test('a budget below it is refused, equal to it (or to nKv) is not', () => {
    const p = resolvePolicy({ name: 'h2o', recent: 6 });
    expect(() => checkBudgetFits(p, 5, 1, 100)).toThrow(new RangeError('budget: expected at least 6 tokens per head (policy "h2o" always keeps its 6 recent tokens), received 5'));
    expect(() => checkBudgetFits(p, 5, 1, 100, 'opts.budget')).toThrow(/^opts\.budget: /);
    expect(() => checkBudgetFits(p, 6, 1, 100)).not.toThrow();
    expect(() => checkBudgetFits(p, 3, 1, 3)).not.toThrow(); // only 3 tokens exist
    expect(() => checkBudgetFits(p, 2, 1, 3)).toThrow('expected at least 3 tokens per head');
  });
});

/** The defaults resolveCompression adds to the scorer's fields. */
const CBASE = { allocation: 0, beta: 20, pyramidWindow: 64, alpha: 0.2, razorSinks: 4, razorRecent: 0, merge: false, mergeThreshold: -2 };
const scorer = (p: unknown) => {
  const r = resolvePolicy(p);
  return { policy: r.name, ...policyOptions(r) };
};

describe('resolveCompression: resolved parameters', () => {
  test('a scoring policy, with and without merge', () => {
    expect(resolveCompression('h2o', 2, 2)).toEqual({ ...scorer('h2o'), ...CBASE });
    expect(resolveCompression({ name: 'h2o', recent: 3, merge: true }, 2, 2)).toEqual({ ...scorer({ name: 'h2o', recent: 3 }), ...CBASE, merge: true });
  });
  test('pyramidkv: snapkv scores, window 64, beta 20', () => {
    expect(resolveCompression('pyramidkv', 2, 2)).toEqual({ ...scorer({ name: 'snapkv', window: 64 }), ...CBASE, allocation: 1 });
    expect(resolveCompression({ name: 'pyramidkv', window: 8, kernel: 3, pooling: 'max', beta: 1, merge: true }, 2, 2))
      .toEqual({ ...scorer({ name: 'snapkv', window: 8, kernel: 3, pooling: 'max' }), ...CBASE, allocation: 1, beta: 1, pyramidWindow: 8, merge: true });
  });
  test('adakv: snapkv scorer by default, alpha 0.2', () => {
    expect(resolveCompression('adakv', 2, 2)).toEqual({ ...scorer('snapkv'), ...CBASE, allocation: 2 });
    expect(resolveCompression({ name: 'adakv', scorer: 'knorm', alpha: 0, merge: true }, 2, 2)).toEqual({ ...scorer('knorm'), ...CBASE, allocation: 2, alpha: 0, merge: true });
    expect(resolveCompression({ name: 'adakv', alpha: 1 }, 2, 2).alpha).toBe(1);
  });
  test('razor: streamingllm fields, merge on, sinks 4, recent 0 (budget-derived)', () => {
    expect(resolveCompression('razor', 2, 2)).toEqual({ ...scorer('streamingllm'), ...CBASE, allocation: 3, merge: true });
    const r = resolveCompression({ name: 'razor', sinks: 0, recent: 1, retrievalHeads: [[true, false], [false, true]] }, 2, 2);
    expect(r).toMatchObject({ razorSinks: 0, razorRecent: 1 });
    expect(Array.from(r.retrieval!)).toEqual([1, 0, 0, 1]);
    const flags = Uint8Array.of(0, 1, 1, 0);
    const r2 = resolveCompression({ name: 'razor', retrievalHeads: flags }, 2, 2);
    expect(Array.from(r2.retrieval!)).toEqual([0, 1, 1, 0]);
    expect(r2.retrieval).not.toBe(flags); // a copy
  });
  test('ems: merge on, similarity 0.5', () => {
    expect(resolveCompression('ems', 2, 2)).toEqual({ ...scorer('ems'), ...CBASE, merge: true, mergeThreshold: 0.5 });
    expect(resolveCompression({ name: 'ems', similarity: -1, merge: false, window: 4 }, 2, 2))
      .toEqual({ ...scorer({ name: 'ems', window: 4 }), ...CBASE, merge: false, mergeThreshold: -1 });
    expect(resolveCompression({ name: 'ems', similarity: 1 }, 2, 2).mergeThreshold).toBe(1);
  });
});

describe('resolveCompression: bad options, by message', () => {
  const cases: [unknown, ErrorConstructor, string][] = [
    [7, TypeError, `policy: expected a policy name (${ALL}) or { name, ...options }, received 7`],
    [null, TypeError, `policy: expected a policy name (${ALL}) or { name, ...options }, received null`],
    [[], TypeError, `policy: expected a policy name (${ALL}) or { name, ...options }, received an array of length 0`],
    ['adkv', TypeError, `policy: unknown policy "adkv" (did you mean "adakv"?); known policies: ${ALL}`],
    ['qqqqqqqqqqqq', TypeError, `policy: unknown policy "qqqqqqqqqqqq"; known policies: ${ALL}`],
    [{ name: 'pyramidkv', beta: 0.5 }, RangeError, 'policy.beta: expected a number >= 1, received 0.5'],
    [{ name: 'pyramidkv', window: 0 }, RangeError, 'policy.window: expected an integer >= 1, received 0'],
    [{ name: 'pyramidkv', beta: 'x' }, TypeError, 'policy.beta: expected a number, received "x"'],
    [{ name: 'pyramidkv', merge: 1 }, TypeError, 'policy.merge: expected a boolean, received 1'],
    [{ name: 'pyramidkv', recent: 1 }, TypeError, 'policy (pyramidkv): unknown option "recent"'],
    [{ name: 'adakv', alpha: 1.5 }, RangeError, 'policy.alpha: expected a fraction in [0, 1], received 1.5'],
    [{ name: 'adakv', alpha: -0.1 }, RangeError, 'policy.alpha: expected a fraction in [0, 1], received -0.1'],
    [{ name: 'adakv', alpha: 'a' }, TypeError, 'policy.alpha: expected a number, received "a"'],
    [{ name: 'adakv', merge: 'yes' }, TypeError, 'policy.merge: expected a boolean, received "yes"'],
    [{ name: 'adakv', window: 3 }, TypeError, 'policy (adakv): unknown option "window"'],
    [{ name: 'razor', sinks: -1 }, RangeError, 'policy.sinks: expected an integer >= 0, received -1'],
    [{ name: 'razor', recent: 0 }, RangeError, 'policy.recent: expected an integer >= 1, received 0'],
    [{ name: 'razor', merge: true }, TypeError, 'policy (razor): unknown option "merge"'],
    [{ name: 'razor', retrievalHeads: Uint8Array.of(1) }, RangeError, 'policy.retrievalHeads.length: expected nLayers * nKvHeads = 4, received 1'],
    [{ name: 'razor', retrievalHeads: [[true, true]] }, TypeError, 'policy.retrievalHeads: expected booleans [nLayers = 2][nKvHeads = 2] or a Uint8Array(4), received an array of length 1'],
    [{ name: 'razor', retrievalHeads: 'all' }, TypeError, 'policy.retrievalHeads: expected booleans [nLayers = 2][nKvHeads = 2] or a Uint8Array(4), received "all"'],
    [{ name: 'razor', retrievalHeads: [[true, true], [true]] }, TypeError, 'policy.retrievalHeads[1]: expected 2 booleans, received an array of length 1'],
    [{ name: 'razor', retrievalHeads: [[true, true], 5] }, TypeError, 'policy.retrievalHeads[1]: expected 2 booleans, received 5'],
    [{ name: 'razor', retrievalHeads: [[true, 1], [true, true]] }, TypeError, 'policy.retrievalHeads[0][1]: expected a boolean, received 1'],
    [{ name: 'ems', similarity: 1.5 }, RangeError, 'policy.similarity: expected a cosine similarity in [-1, 1], received 1.5'],
    [{ name: 'ems', similarity: -1.5 }, RangeError, 'policy.similarity: expected a cosine similarity in [-1, 1], received -1.5'],
    [{ name: 'ems', similarity: 'high' }, TypeError, 'policy.similarity: expected a number, received "high"'],
    [{ name: 'ems', merge: 0 }, TypeError, 'policy.merge: expected a boolean, received 0'],
    [{ name: 'h2o', merge: 'no' }, TypeError, 'policy.merge: expected a boolean, received "no"'],
    [{ name: 'h2o', recent: -2 }, RangeError, 'policy.recent: expected an integer >= 0, received -2'],
  ];
  for (const [policy, kind, message] of cases) {
    test(message, () => {
      expect(() => resolveCompression(policy, 2, 2)).toThrow(kind);
      expect(() => resolveCompression(policy, 2, 2)).toThrow(message);
    });
  }
});

describe('checkAutoPolicyFits', () => {
  const fits = (p: unknown, keep: number, window = 32) => () => checkAutoPolicyFits(resolveCompression(p, 1, 1), keep, window);
  test('speckv is refused (no draft queries in an append)', () => {
    expect(fits('speckv', 100)).toThrow(new TypeError('options.autoCompress.policy: "speckv" scores with draft queries, which autoCompress cannot pass; call compress(policy, budget, { draftQueries }) instead'));
  });
  test('sinks, recent tokens and the observation window', () => {
    expect(fits({ name: 'streamingllm', sinks: 5 }, 4)).toThrow(new RangeError('options.autoCompress.budget: expected at least 5 tokens per head (policy "streamingllm" always keeps its 5 sink tokens), received 4'));
    expect(fits({ name: 'streamingllm', sinks: 5 }, 5)).not.toThrow();
    expect(fits({ name: 'expected_attention', sinks: 3 }, 2)).toThrow('expected at least 3 tokens per head (policy "expected_attention" always keeps its 3 sink tokens), received 2');
    expect(fits({ name: 'h2o', recent: 8 }, 7)).toThrow('expected at least 8 tokens per head (policy "h2o" always keeps its 8 recent tokens), received 7');
    expect(fits({ name: 'h2o', recent: 8 }, 8)).not.toThrow();
    expect(fits({ name: 'snapkv', window: 16 }, 15)).toThrow("expected at least 16 tokens per head (policy \"snapkv\" always keeps its observation window of up to 16 queries' tokens (policy window 16, cache window 32)), received 15");
    expect(fits({ name: 'snapkv', window: 16 }, 8, 8)).not.toThrow(); // the cache remembers 8 queries only
    expect(fits({ name: 'snapkv', window: 16 }, 7, 8)).toThrow('expected at least 8 tokens per head');
    expect(fits({ name: 'ems', window: 4 }, 3)).toThrow('policy "ems" always keeps its observation window of up to 4 queries');
  });
  test('policies without forced tokens, adakv and razor pass any budget', () => {
    for (const p of ['knorm', 'random', 'tova', 'adakv', 'razor']) expect(fits(p, 0)).not.toThrow();
  });
});
