// scoreKv / selectKv / compressKv against the float64 references in
// test/reference/kv.ts: one row per policy, awkward sizes, GQA, f16 KV,
// budgets, ties, determinism, compaction bits, and a bad-input sweep.
import { describe, expect, test } from 'vitest';
import {
  attention, compressKv, scoreKv, selectKv,
  type FloatDType, type KvPolicy, type Tensor,
} from '../../lib/index.js';
import { referenceCompact, referenceScores, referenceSelect, type RefPolicy } from '../reference/kv.js';
import { mulberry32 } from '../reference/random.js';
import { randomTensor3 } from './helpers.js';

interface PolicyRow {
  label: string;
  policy: KvPolicy;
  ref: RefPolicy;
  queries: boolean;
  keyMass?: boolean;
  draft?: boolean;
}

// One row per policy (plus option variants).
const POLICIES: PolicyRow[] = [
  { label: 'streamingllm', policy: 'streamingllm', ref: { name: 'streamingllm' }, queries: false },
  { label: 'streamingllm sinks=2', policy: { name: 'streamingllm', sinks: 2 }, ref: { name: 'streamingllm', sinks: 2 }, queries: false },
  { label: 'knorm', policy: 'knorm', ref: { name: 'knorm' }, queries: false },
  { label: 'random', policy: 'random', ref: { name: 'random' }, queries: false },
  { label: 'random seed=7', policy: { name: 'random', seed: 7 }, ref: { name: 'random', seed: 7 }, queries: false },
  { label: 'tova', policy: 'tova', ref: { name: 'tova' }, queries: true },
  { label: 'h2o (queries)', policy: { name: 'h2o', recent: 3 }, ref: { name: 'h2o', recent: 3 }, queries: true },
  { label: 'h2o (keyMass)', policy: 'h2o', ref: { name: 'h2o' }, queries: false, keyMass: true },
  { label: 'snapkv', policy: 'snapkv', ref: { name: 'snapkv' }, queries: true },
  { label: 'snapkv max w=4 k=3', policy: { name: 'snapkv', window: 4, kernel: 3, pooling: 'max' }, ref: { name: 'snapkv', window: 4, kernel: 3, pooling: 'max' }, queries: true },
  { label: 'snapkv k=4', policy: { name: 'snapkv', window: 8, kernel: 4 }, ref: { name: 'snapkv', window: 8, kernel: 4 }, queries: true },
  { label: 'expected_attention', policy: 'expected_attention', ref: { name: 'expected_attention' }, queries: true },
  {
    label: 'expected_attention sinks=1 eps=0.01',
    policy: { name: 'expected_attention', sinks: 1, epsilon: 0.01 },
    ref: { name: 'expected_attention', sinks: 1, epsilon: 0.01 },
    queries: true,
  },
  {
    label: 'expected_attention no cov, no vnorm',
    policy: { name: 'expected_attention', useCovariance: false, useVnorm: false, sinks: 0 },
    ref: { name: 'expected_attention', useCovariance: false, useVnorm: false, sinks: 0 },
    queries: true,
  },
  { label: 'speckv (draft + queries)', policy: 'speckv', ref: { name: 'speckv' }, queries: true, draft: true },
  {
    label: 'speckv (draft only) mean avg k=4',
    policy: { name: 'speckv', reduction: 'mean', pooling: 'avg', kernel: 4 },
    ref: { name: 'speckv', reduction: 'mean', pooling: 'avg', kernel: 4 },
    queries: false,
    draft: true,
  },
  {
    label: 'speckv w=3 k=1',
    policy: { name: 'speckv', window: 3, kernel: 1 },
    ref: { name: 'speckv', window: 3, kernel: 1 },
    queries: true,
    draft: true,
  },
  { label: 'ems (queries)', policy: 'ems', ref: { name: 'ems' }, queries: true },
  {
    label: 'ems (keyMass) max w=4',
    policy: { name: 'ems', window: 4, combine: 'max' },
    ref: { name: 'ems', window: 4, combine: 'max' },
    queries: true,
    keyMass: true,
  },
];

interface Shape { nKv: number; nKvHeads: number; group: number; headDim: number; nQ: number; dtype: FloatDType; strided: boolean }
const SHAPES: Shape[] = [
  { nKv: 1, nKvHeads: 1, group: 1, headDim: 3, nQ: 1, dtype: 'f32', strided: false },
  { nKv: 17, nKvHeads: 2, group: 4, headDim: 5, nQ: 9, dtype: 'f16', strided: true },
  { nKv: 17, nKvHeads: 3, group: 1, headDim: 8, nQ: 17, dtype: 'f32', strided: false },
  { nKv: 4099, nKvHeads: 2, group: 4, headDim: 4, nQ: 40, dtype: 'f16', strided: false },
  { nKv: 4099, nKvHeads: 1, group: 1, headDim: 3, nQ: 33, dtype: 'f32', strided: true },
  { nKv: 33, nKvHeads: 2, group: 2, headDim: 7, nQ: 6, dtype: 'bf16', strided: true },
];

function makeInputs(s: Shape, seed: number) {
  const rng = mulberry32(seed);
  const layout = s.strided ? { rowPad: 3, capacity: s.nKv + 2, offset: 5 } : {};
  const k = randomTensor3(rng, s.dtype, [s.nKvHeads, s.nKv, s.headDim], 1, layout);
  const v = randomTensor3(rng, s.dtype, [s.nKvHeads, s.nKv, s.headDim], 1, layout);
  const queries = randomTensor3(rng, 'f32', [s.nKvHeads * s.group, s.nQ, s.headDim], 2, s.strided ? { rowPad: 1 } : {});
  const mass = Float32Array.from({ length: s.nKvHeads * s.nKv }, () => Math.floor(rng() * 50) / 8);
  const keyMass: Tensor<'f32'> = { dtype: 'f32', shape: [s.nKvHeads, s.nKv], data: mass };
  // Draft / lookahead queries (speckv): 1 to 7 rows.
  const nDraft = 1 + (s.nQ % 7);
  const draftQueries = randomTensor3(rng, 'f32', [s.nKvHeads * s.group, nDraft, s.headDim], 2, s.strided ? { rowPad: 2, offset: 1 } : {});
  return { k, v, queries, keyMass, draftQueries };
}

function expectClose(got: Float32Array, want: Float64Array, label: string): void {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (!Number.isFinite(w)) {
      if (g !== w) expect.fail(`${label}: [${i}] got ${g}, want ${w}`);
      continue;
    }
    if (Math.abs(g - w) > 2e-5 + 1e-4 * Math.abs(w)) expect.fail(`${label}: [${i}] got ${g}, want ${w}`);
  }
}

describe('scoreKv vs the float64 reference', () => {
  for (const row of POLICIES) {
    test.each(SHAPES.map((s, i) => [`nKv=${s.nKv} heads=${s.nKvHeads}x${s.group} d=${s.headDim} ${s.dtype}${s.strided ? ' strided' : ''}`, s, i] as const))(
      `${row.label}: %s`, (_label, s, i) => {
        const { k, v, queries, keyMass, draftQueries } = makeInputs(s, 1000 + i);
        const inputs = {
          k, v,
          ...(row.queries ? { queries } : {}),
          ...(row.keyMass ? { keyMass } : {}),
          ...(row.draft ? { draftQueries } : {}),
        };
        const got = scoreKv(row.policy, inputs);
        expect(got.dtype).toBe('f32');
        expect(got.shape).toEqual([s.nKvHeads, s.nKv]);
        expectClose(got.data, referenceScores(row.ref, inputs), row.label);
        // Selection of these very scores matches the reference selection exactly.
        const nKeep = Math.max(0, Math.min(s.nKv, Math.floor(s.nKv / 3) + 1));
        const sel = selectKv(got, { keep: nKeep });
        expect(sel.shape).toEqual([s.nKvHeads, nKeep]);
        expect([...sel.data]).toEqual(referenceSelect(got.data, s.nKvHeads, s.nKv, nKeep).flat());
      });
  }
});

describe('selectKv', () => {
  const scores: Tensor<'f32'> = { dtype: 'f32', shape: [2, 6], data: Float32Array.from([1, 3, 3, 0, 3, 2, 5, 5, 5, 5, 5, 5]) };
  test('ties: the earlier position wins; output ascending', () => {
    expect([...selectKv(scores, { keep: 2 }).data]).toEqual([1, 2, 0, 1]);
    expect([...selectKv(scores, { keep: 4 }).data]).toEqual([1, 2, 4, 5, 0, 1, 2, 3]);
    expect([...selectKv(scores, { keep: 0 }).data]).toEqual([]);
    expect([...selectKv(scores, { keep: 6 }).data]).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
  });
  test('compressionRatio: nKeep = nKv - floor(nKv * r)', () => {
    const s: Tensor<'f32'> = { dtype: 'f32', shape: [1, 17], data: Float32Array.from({ length: 17 }, (_, i) => i) };
    expect(selectKv(s, { compressionRatio: 0 }).shape).toEqual([1, 17]);
    expect(selectKv(s, { compressionRatio: 0.5 }).shape).toEqual([1, 9]);
    expect([...selectKv(s, { compressionRatio: 0.9 }).data]).toEqual([15, 16]);
    expect(selectKv(s, { compressionRatio: 0.999 }).shape).toEqual([1, 1]);
    const one: Tensor<'f32'> = { dtype: 'f32', shape: [1, 1], data: Float32Array.of(0) };
    expect([...selectKv(one, { compressionRatio: 0.5 }).data]).toEqual([0]);
  });
  test('strided scores, infinities, out option, inputs untouched', () => {
    const data = Float32Array.from([4, -Infinity, 9, 9, Infinity, 0, 9, 9]);
    const copy = data.slice();
    const t: Tensor<'f32'> = { dtype: 'f32', shape: [2, 3], data, strides: [4, 1] };
    const out = new Int32Array(4);
    const r = selectKv(t, { keep: 2 }, { out });
    expect(r.data).toBe(out);
    expect([...out]).toEqual([0, 2, 0, 2]);
    expect(data).toEqual(copy);
  });
  test('random is deterministic per seed and differs across seeds', () => {
    const { k, v } = makeInputs(SHAPES[2]!, 5);
    const a = scoreKv('random', { k, v }).data;
    expect(scoreKv('random', { k, v }).data).toEqual(a);
    expect(scoreKv({ name: 'random', seed: 0 }, { k, v }).data).toEqual(a);
    const b = scoreKv({ name: 'random', seed: 1 }, { k, v }).data;
    expect(b).not.toEqual(a);
    expect(scoreKv('random', { k, v, seed: 1 }).data).toEqual(b);
    for (const x of a) expect(x >= 0 && x < 1).toBe(true);
  });
  test('h2o without keyMass equals h2o with attention()’s causal keyMass', () => {
    const { k, v, queries } = makeInputs(SHAPES[1]!, 9);
    const { keyMass } = attention(queries, k, v, { causal: true, returnKeyMass: true });
    expect(scoreKv('h2o', { k, v, queries }).data).toEqual(scoreKv('h2o', { k, v, keyMass: keyMass! }).data);
  });
});

describe('compressKv', () => {
  const cases: [string, Shape][] = [
    ['f32 strided', { ...SHAPES[1]!, dtype: 'f32' }],
    ['f16 strided', SHAPES[1]!],
    ['bf16', { ...SHAPES[2]!, dtype: 'bf16' }],
    ['f16 4099', SHAPES[3]!],
  ];
  test.each(cases)('%s: gathered rows bit for bit, dtype kept, inputs untouched', (_l, s) => {
    const { k, v, queries } = makeInputs(s, 77);
    const kCopy = k.data.slice();
    const vCopy = v.data.slice();
    for (const [policy, budget] of [['knorm', { keep: 5 }], ['snapkv', { compressionRatio: 0.5 }]] as const) {
      const r = compressKv({ k, v, queries }, policy, budget);
      const nKeep = 'keep' in budget ? budget.keep : s.nKv - Math.floor(s.nKv * budget.compressionRatio);
      expect(r.indices.shape).toEqual([s.nKvHeads, nKeep]);
      expect(r.k.dtype).toBe(s.dtype);
      expect(r.v.dtype).toBe(s.dtype);
      expect(r.k.shape).toEqual([s.nKvHeads, nKeep, s.headDim]);
      expect(r.k.strides).toBeUndefined();
      const scores = scoreKv(policy, { k, v, queries });
      const kept = referenceSelect(scores.data, s.nKvHeads, s.nKv, nKeep);
      expect([...r.indices.data]).toEqual(kept.flat());
      const bits = (t: Tensor<FloatDType>, x: number[]) =>
        t.dtype === 'f32' ? [...new Uint32Array(Float32Array.from(x).buffer)] : x;
      const raw = (t: Tensor<FloatDType>) =>
        t.dtype === 'f32' ? [...new Uint32Array((t.data as Float32Array).slice().buffer)] : [...t.data];
      expect(raw(r.k)).toEqual(bits(k, referenceCompact(k, kept)));
      expect(raw(r.v)).toEqual(bits(v, referenceCompact(v, kept)));
    }
    expect(k.data).toEqual(kCopy);
    expect(v.data).toEqual(vCopy);
  });
});

describe('bad input', () => {
  const { k, v, queries, keyMass, draftQueries } = makeInputs(SHAPES[1]!, 3);
  const scores = scoreKv('knorm', { k, v });
  const draftOf = (shape: number[]): Tensor<'f32'> => ({ dtype: 'f32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['unknown policy', () => scoreKv('snapvk' as never, { k, v }), TypeError, /policy: unknown policy "snapvk" \(did you mean "snapkv"\?\)/],
    ['unknown policy object', () => scoreKv({ name: 'h20' } as never, { k, v }), TypeError, /did you mean "h2o"/],
    ['misspelled option', () => scoreKv({ name: 'snapkv', windw: 3 } as never, { k, v, queries }), TypeError, /unknown option "windw" \(did you mean "window"\?\)/],
    ['option of another policy', () => scoreKv({ name: 'knorm', sinks: 3 } as never, { k, v }), TypeError, /unknown option "sinks"/],
    ['bad option value', () => scoreKv({ name: 'snapkv', kernel: 0 }, { k, v, queries }), RangeError, /policy\.kernel/],
    ['bad pooling', () => scoreKv({ name: 'snapkv', pooling: 'mean' } as never, { k, v, queries }), TypeError, /policy\.pooling/],
    ['policy not a string', () => scoreKv(3 as never, { k, v }), TypeError, /^policy: expected/],
    ['misspelled input', () => scoreKv('knorm', { k, v, querys: queries } as never), TypeError, /did you mean "queries"/],
    ['tova without queries', () => scoreKv('tova', { k, v }), TypeError, /inputs\.queries.*tova/],
    ['snapkv without queries', () => compressKv({ k, v }, 'snapkv', { keep: 3 }), TypeError, /inputs\.queries.*snapkv/],
    ['h2o without queries or keyMass', () => scoreKv('h2o', { k, v }), TypeError, /inputs\.queries.*keyMass/],
    ['expected_attention without queries', () => scoreKv('expected_attention', { k, v }), TypeError, /inputs\.queries.*expected_attention/],
    ['ems without queries', () => scoreKv('ems', { k, v, keyMass }), TypeError, /inputs\.queries.*ems/],
    ['speckv without draftQueries', () => scoreKv('speckv', { k, v, queries }), TypeError, /inputs\.draftQueries.*speckv/],
    ['speckv compressKv without draftQueries', () => compressKv({ k, v }, 'speckv', { keep: 3 }), TypeError, /inputs\.draftQueries/],
    ['misspelled speckv option', () => scoreKv({ name: 'speckv', kernal: 3 } as never, { k, v, draftQueries }), TypeError, /unknown option "kernal" \(did you mean "kernel"\?\)/],
    ['misspelled expected_attention option', () => scoreKv({ name: 'expected_attention', useCovarience: false } as never, { k, v, queries }), TypeError, /did you mean "useCovariance"/],
    ['misspelled ems option', () => scoreKv({ name: 'ems', combin: 'max' } as never, { k, v, queries }), TypeError, /did you mean "combine"/],
    ['misspelled policy name', () => scoreKv('expected_atention' as never, { k, v, queries }), TypeError, /did you mean "expected_attention"/],
    ['speckv option on ems', () => scoreKv({ name: 'ems', reduction: 'max' } as never, { k, v, queries }), TypeError, /unknown option "reduction"/],
    ['bad reduction', () => scoreKv({ name: 'speckv', reduction: 'sum' } as never, { k, v, draftQueries }), TypeError, /policy\.reduction/],
    ['bad combine', () => scoreKv({ name: 'ems', combine: 'avg' } as never, { k, v, queries }), TypeError, /policy\.combine/],
    ['negative epsilon', () => scoreKv({ name: 'expected_attention', epsilon: -1 }, { k, v, queries }), RangeError, /policy\.epsilon/],
    ['epsilon NaN', () => scoreKv({ name: 'expected_attention', epsilon: NaN }, { k, v, queries }), RangeError, /policy\.epsilon/],
    ['useVnorm not boolean', () => scoreKv({ name: 'expected_attention', useVnorm: 1 } as never, { k, v, queries }), TypeError, /policy\.useVnorm/],
    ['misspelled draftQueries input', () => scoreKv('speckv', { k, v, draftQuery: draftQueries } as never), TypeError, /did you mean "draftQueries"/],
    ['draftQueries headDim', () => scoreKv('speckv', { k, v, draftQueries: draftOf([8, 2, 4]) }), RangeError, /inputs\.draftQueries\.shape\[2\]/],
    ['draftQueries GQA', () => scoreKv('speckv', { k, v, draftQueries: draftOf([3, 2, 5]) }), RangeError, /inputs\.draftQueries\.shape\[0\]/],
    ['draftQueries nHeads != queries', () => scoreKv('speckv', { k, v, queries, draftQueries: draftOf([4, 2, 5]) }), RangeError, /inputs\.draftQueries\.shape\[0\].*queries/],
    ['draftQueries nDraft 0', () => scoreKv('speckv', { k, v, draftQueries: draftOf([8, 0, 5]) }), RangeError, /inputs\.draftQueries\.shape\[1\]/],
    ['draftQueries dtype', () => scoreKv('speckv', { k, v, draftQueries: { dtype: 'f16', shape: [8, 1, 5], data: new Uint16Array(40) } as never }), TypeError, /inputs\.draftQueries\.dtype/],
    ['k missing', () => scoreKv('knorm', { v } as never), TypeError, /inputs\.k/],
    ['v shape', () => scoreKv('knorm', { k, v: { ...v, shape: [2, 16, 5] } as never }), RangeError, /inputs\.v/],
    ['queries headDim', () => scoreKv('tova', { k, v, queries: { dtype: 'f32', shape: [8, 1, 4], data: new Float32Array(32) } }), RangeError, /inputs\.queries\.shape\[2\]/],
    ['queries GQA', () => scoreKv('tova', { k, v, queries: { dtype: 'f32', shape: [3, 1, 5], data: new Float32Array(15) } }), RangeError, /inputs\.queries\.shape\[0\]/],
    ['queries nQ > nKv', () => scoreKv('tova', { k, v, queries: { dtype: 'f32', shape: [2, 18, 5], data: new Float32Array(180) } }), RangeError, /inputs\.queries\.shape\[1\]/],
    ['keyMass shape', () => scoreKv('h2o', { k, v, keyMass: { ...keyMass, shape: [2, 16] } }), RangeError, /inputs\.keyMass/],
    ['seed', () => scoreKv('random', { k, v, seed: -1 }), RangeError, /inputs\.seed/],
    ['policy seed', () => scoreKv({ name: 'random', seed: 1.5 }, { k, v }), RangeError, /policy\.seed/],
    ['keep < 0', () => selectKv(scores, { keep: -1 }), RangeError, /budget\.keep/],
    ['keep > nKv', () => selectKv(scores, { keep: 18 }), RangeError, /budget\.keep/],
    ['keep not integer', () => selectKv(scores, { keep: 1.5 }), RangeError, /budget\.keep/],
    ['ratio 1', () => selectKv(scores, { compressionRatio: 1 }), RangeError, /budget\.compressionRatio/],
    ['ratio < 0', () => selectKv(scores, { compressionRatio: -0.1 }), RangeError, /budget\.compressionRatio/],
    ['ratio NaN', () => selectKv(scores, { compressionRatio: NaN }), RangeError, /budget\.compressionRatio/],
    ['both budgets', () => selectKv(scores, { keep: 1, compressionRatio: 0.5 } as never), TypeError, /^budget/],
    ['misspelled budget', () => selectKv(scores, { kep: 1 } as never), TypeError, /did you mean "keep"/],
    ['budget missing', () => selectKv(scores, undefined as never), TypeError, /^budget/],
    ['compressKv bad budget', () => compressKv({ k, v }, 'knorm', { keep: 99 }), RangeError, /budget\.keep/],
    ['NaN score', () => selectKv({ dtype: 'f32', shape: [2, 3], data: Float32Array.from([0, 1, 2, 3, NaN, NaN]) }, { keep: 1 }), RangeError, /scores\[1\]\[1\].*NaN/],
    ['scores dtype', () => selectKv({ dtype: 'f16', shape: [1, 1], data: new Uint16Array(1) } as never, { keep: 1 }), TypeError, /scores\.dtype/],
    ['scores rank', () => selectKv({ dtype: 'f32', shape: [4], data: new Float32Array(4) } as never, { keep: 1 }), TypeError, /scores\.shape/],
    ['scores length', () => selectKv({ dtype: 'f32', shape: [2, 3], data: new Float32Array(5) }, { keep: 1 }), RangeError, /scores\.data\.length/],
    ['select out length', () => selectKv(scores, { keep: 2 }, { out: new Int32Array(3) }), RangeError, /opts\.out/],
    ['select misspelled opt', () => selectKv(scores, { keep: 2 }, { ot: 1 } as never), TypeError, /did you mean "out"/],
  ];
  test.each(cases)('%s', (_l, fn, type, message) => {
    let err: unknown;
    try { fn(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(message);
  });
  test('the binding re-checks what memory safety depends on', async () => {
    const { native } = await import('../../lib/native.js');
    const n = native();
    const base = {
      policy: 'knorm', nHeads: 0, nKvHeads: 1, nQ: 0, nKv: 4, headDim: 2,
      k: new Float32Array(8), kDtype: 0, kStrides: [8, 2] as [number, number],
      v: new Float32Array(8), vDtype: 0, vStrides: [8, 2] as [number, number],
      sinks: 4, recent: 0, window: 1, kernel: 1, pooling: 0, seed: 0, scores: new Float32Array(4),
    };
    expect(() => n.kvScore(base)).not.toThrow();
    expect(() => n.kvScore({ ...base, nKv: 5 })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, policy: 'nope' })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, policy: 'tova' })).toThrow(/queries/);
    expect(() => n.kvScore({ ...base, kStrides: [8, 3] })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, scores: new Float32Array(3) })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, scores: base.k })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, kDtype: 1 })).toThrow(TypeError);
    // Draft queries (speckv): lengths, counts and presence re-checked.
    const draft = { draftQ: new Float32Array(6), draftQStrides: [6, 2] as [number, number], nDraft: 3, nHeads: 1 };
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv' })).not.toThrow();
    expect(() => n.kvScore({ ...base, policy: 'speckv' })).toThrow(/draftQueries/);
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv', nDraft: 4 })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv', nDraft: 0 })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv', draftQStrides: [6, 3] })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv', nHeads: 0 })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv', draftQ: base.scores })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, ...draft, policy: 'speckv', reduction: 2 })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, policy: 'expected_attention' })).toThrow(/queries/);
    expect(() => n.kvScore({ ...base, epsilon: -1 })).toThrow(RangeError);
    expect(() => n.kvScore({ ...base, epsilon: NaN })).toThrow(RangeError);
    // Products that wrap around 2^64 must not pass a length check: head
    // stride 0 lets a tiny buffer claim 2^40 heads, and 2^40 * 2^24 wraps to 0.
    expect(() => n.kvScore({ ...base, nKvHeads: 2 ** 40, nKv: 2 ** 24, headDim: 1, kStrides: [0, 0], vStrides: [0, 0], scores: new Float32Array(0) })).toThrow(RangeError);
    const sel = { nKvHeads: 1, nKv: 4, nKeep: 2, scores: new Float32Array(4), out: new Int32Array(2) };
    expect(() => n.kvSelect(sel)).not.toThrow();
    expect(() => n.kvSelect({ ...sel, nKeep: 5 })).toThrow(RangeError);
    expect(() => n.kvSelect({ ...sel, out: new Int32Array(1) })).toThrow(RangeError);
    expect(() => n.kvSelect({ ...sel, scores: Float32Array.of(0, NaN, 0, 0) })).toThrow(/scores\[0\]\[1\]/);
    expect(() => n.kvSelect({ ...sel, nKvHeads: 2 ** 40, nKv: 2 ** 24, nKeep: 0, scores: new Float32Array(0), out: new Int32Array(0) })).toThrow(RangeError);
    const cmp = {
      nKvHeads: 1, nKv: 4, headDim: 2, nKeep: 2, dtype: 0, src: new Float32Array(8), strides: [8, 2] as [number, number],
      indices: Int32Array.of(0, 3), dst: new Float32Array(4),
    };
    expect(() => n.kvCompact(cmp)).not.toThrow();
    expect(() => n.kvCompact({ ...cmp, indices: Int32Array.of(0, 4) })).toThrow(/indices\[0\]\[1\]/);
    expect(() => n.kvCompact({ ...cmp, indices: Int32Array.of(-1, 0) })).toThrow(RangeError);
    expect(() => n.kvCompact({ ...cmp, dst: new Float32Array(3) })).toThrow(RangeError);
    expect(() => n.kvCompact({ ...cmp, src: new Float32Array(7) })).toThrow(RangeError);
    expect(() => n.kvCompact({ ...cmp, dst: cmp.src })).toThrow(RangeError);
    expect(() => n.kvCompact({ ...cmp, nKvHeads: 2 ** 40, nKeep: 2 ** 24, headDim: 1, strides: [0, 0], indices: new Int32Array(0), dst: new Float32Array(0) })).toThrow(RangeError);
  });
});
