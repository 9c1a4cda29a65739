// The public constants and helpers of lib/index.ts that no other test
// imports: each checked for its value and for the behaviour it names.
import { describe, expect, test } from 'vitest';
import {
  ADAPTIVE_DEFAULT_MEMORY_LOG2, ADAPTIVE_MAX_EXPANSION, ADAPTIVE_MAX_LENGTH, ADAPTIVE_MAX_MEMORY_LOG2, ADAPTIVE_MIN_MEMORY_LOG2,
  ByteModel, DEFAULT_BUDGETS, KV_POLICY_DEFAULTS, KV_POLICY_NAMES, KvCache, MAX_MODEL_ORDER, MODEL_TRAIN_DEFAULTS,
  PAST_NAMES, PRESENT_NAMES, adaptiveMaxOriginalLength, appendPresent, budgetToKeep, compressAdaptive, decompressAdaptive,
  pastKeyValues, scoreKv, type KvPolicy,
} from '../../lib/index.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';

/** A minimal onnxruntime-style Tensor class (toOrt builds these). */
class FakeTensor {
  constructor(readonly type: string, readonly data: unknown, readonly dims: readonly number[]) {}
}

describe('interop names', () => {
  test('PAST_NAMES / PRESENT_NAMES give the Hugging Face / Optimum names, and are the defaults', () => {
    expect(PAST_NAMES(0, 'key')).toBe('past_key_values.0.key');
    expect(PAST_NAMES(11, 'value')).toBe('past_key_values.11.value');
    expect(PRESENT_NAMES(3, 'key')).toBe('present.3.key');
    expect(PRESENT_NAMES(0, 'value')).toBe('present.0.value');
    const cache = new KvCache({ nLayers: 2, nKvHeads: 1, headDim: 4, dtype: 'f32' });
    const rng = mulberry32(1);
    const kv = (n: number) => {
      const t = randomTensor3(rng, 'f32', [1, n, 4], 1);
      return { dtype: 'f32' as const, shape: [1, 1, n, 4], data: t.data };
    };
    appendPresent(cache, { [PRESENT_NAMES(0, 'key')]: kv(3), [PRESENT_NAMES(0, 'value')]: kv(3), [PRESENT_NAMES(1, 'key')]: kv(3), [PRESENT_NAMES(1, 'value')]: kv(3) }, 3);
    expect(Array.from(cache.lengths().data)).toEqual([3, 3]);
    const feeds = pastKeyValues(cache, FakeTensor);
    expect(Object.keys(feeds).sort()).toEqual([PAST_NAMES(0, 'key'), PAST_NAMES(0, 'value'), PAST_NAMES(1, 'key'), PAST_NAMES(1, 'value')].sort());
  });
});

describe('KV budgets and policy defaults', () => {
  test('budgetToKeep: keep n, or n - floor(n * ratio); anything else is refused, naming the argument', () => {
    expect(budgetToKeep({ keep: 5 }, 10)).toBe(5);
    expect(budgetToKeep({ keep: 0 }, 10)).toBe(0);
    expect(budgetToKeep({ compressionRatio: 0.5 }, 33)).toBe(17);
    expect(budgetToKeep({ compressionRatio: 0 }, 33)).toBe(33);
    expect(() => budgetToKeep({ keep: 11 }, 10)).toThrow(RangeError);
    expect(() => budgetToKeep({ compressionRatio: 1 }, 10)).toThrow(/budget\.compressionRatio/);
    expect(() => budgetToKeep({ keep: 1, compressionRatio: 0.5 }, 10)).toThrow(/exactly one of keep or compressionRatio/);
    expect(() => budgetToKeep({}, 10)).toThrow(TypeError);
    expect(() => budgetToKeep(5, 10, 'opts.budget')).toThrow(/opts\.budget/);
    expect(() => budgetToKeep({ kep: 3 }, 10)).toThrow(/kep/);
  });

  test('KV_POLICY_DEFAULTS: one entry per policy, and spelling the defaults out changes no score', () => {
    expect(Object.keys(KV_POLICY_DEFAULTS).sort()).toEqual([...KV_POLICY_NAMES].sort());
    const rng = mulberry32(3);
    const k = randomTensor3(rng, 'f32', [2, 50, 8], 1);
    const v = randomTensor3(rng, 'f32', [2, 50, 8], 1);
    const queries = randomTensor3(rng, 'f32', [4, 40, 8], 1);
    const draftQueries = randomTensor3(rng, 'f32', [4, 3, 8], 1);
    for (const name of KV_POLICY_NAMES) {
      const inputs = { k, v, queries, ...(name === 'speckv' ? { draftQueries } : {}) };
      const bare = scoreKv(name, inputs);
      const spelled = scoreKv({ name, ...KV_POLICY_DEFAULTS[name] } as KvPolicy, inputs);
      expect(Array.from(spelled.data), name).toEqual(Array.from(bare.data));
    }
  });

  test('DEFAULT_BUDGETS: ascending fractions in (0, 1]', () => {
    expect(DEFAULT_BUDGETS.length).toBeGreaterThan(0);
    for (const [i, b] of DEFAULT_BUDGETS.entries()) {
      expect(b).toBeGreaterThan(0);
      expect(b).toBeLessThanOrEqual(1);
      if (i > 0) expect(b).toBeGreaterThan(DEFAULT_BUDGETS[i - 1]!);
    }
  });
});

describe('byte model limits', () => {
  const text = 'the cat sat on the mat; the dog sat on the log. '.repeat(20);
  test('MAX_MODEL_ORDER trains; one more is a RangeError naming maxOrder', async () => {
    const m = await ByteModel.train(text, { maxOrder: MAX_MODEL_ORDER, maxBytes: 1 << 20 });
    expect(m.info.maxOrder).toBe(MAX_MODEL_ORDER);
    await expect(ByteModel.train(text, { maxOrder: MAX_MODEL_ORDER + 1 })).rejects.toThrow(/maxOrder/);
  });

  test('MODEL_TRAIN_DEFAULTS: a model trained without options has the default order', async () => {
    const m = await ByteModel.train(text);
    expect(m.info.maxOrder).toBe(MODEL_TRAIN_DEFAULTS.maxOrder);
    expect(m.info.bytes).toBeLessThanOrEqual(MODEL_TRAIN_DEFAULTS.maxBytes);
  });
});

describe('adaptive coder limits', () => {
  const data = new TextEncoder().encode('adaptive context mixing, '.repeat(40));
  test('memoryLog2: MIN..MAX accepted, outside refused; the default is ADAPTIVE_DEFAULT_MEMORY_LOG2', () => {
    expect(ADAPTIVE_MIN_MEMORY_LOG2).toBeLessThanOrEqual(ADAPTIVE_DEFAULT_MEMORY_LOG2);
    expect(ADAPTIVE_DEFAULT_MEMORY_LOG2).toBeLessThanOrEqual(ADAPTIVE_MAX_MEMORY_LOG2);
    const small = compressAdaptive(data, { memoryLog2: ADAPTIVE_MIN_MEMORY_LOG2 });
    expect(Buffer.from(decompressAdaptive(small, data.length, { memoryLog2: ADAPTIVE_MIN_MEMORY_LOG2 })).equals(Buffer.from(data))).toBe(true);
    expect(() => compressAdaptive(data, { memoryLog2: ADAPTIVE_MIN_MEMORY_LOG2 - 1 })).toThrow(/opts\.memoryLog2/);
    expect(() => compressAdaptive(data, { memoryLog2: ADAPTIVE_MAX_MEMORY_LOG2 + 1 })).toThrow(/opts\.memoryLog2/);
    expect(Array.from(compressAdaptive(data, { memoryLog2: ADAPTIVE_DEFAULT_MEMORY_LOG2 }))).toEqual(Array.from(compressAdaptive(data)));
  });

  test('ADAPTIVE_MAX_EXPANSION / ADAPTIVE_MAX_LENGTH bound what a payload may claim, before any allocation', () => {
    expect(adaptiveMaxOriginalLength(3)).toBe(0);
    expect(adaptiveMaxOriginalLength(10)).toBe(10 * ADAPTIVE_MAX_EXPANSION);
    expect(adaptiveMaxOriginalLength(2 ** 20)).toBe(ADAPTIVE_MAX_LENGTH);
    expect(ADAPTIVE_MAX_LENGTH).toBe(2 ** 31 - 1);
    const payload = compressAdaptive(data);
    const limit = adaptiveMaxOriginalLength(payload.length);
    expect(() => decompressAdaptive(payload, limit + 1)).toThrow(RangeError);
    expect(() => decompressAdaptive(payload, ADAPTIVE_MAX_LENGTH + 1)).toThrow(RangeError);
    expect(() => compressAdaptive(data, { memoryLog2: 1.5 })).toThrow(/opts\.memoryLog2/);
  });
});

