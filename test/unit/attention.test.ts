// attention / attentionAsync vs the float64 reference on awkward sizes, every
// ISA path this CPU has, and 1 vs 2 threads. Options: attention-options.test.ts.
//
// Sizes form a covering set rather than a cartesian product: every value of
// every axis appears (headDim 64/80/111/128, nKv 1/17/4099, GQA 1/4/8,
// nQ 1/7/256, k/v dtype f32/f16/bf16), with the combinations that stress
// kernel paths: nQ 1 and 7 are decode shapes, 256 the tiled prefill path;
// nKv 4099 appears with prefill (twice: f32 d128, f16 d111 causal); headDim 80
// and 111 are not multiples of 16 (vector tails). Tolerances: helpers.ts.
// The two nQ 256 x nKv 4099 cases cost ~2 s each in the reference, computed
// once and cached across the ISA and thread checks.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { attention, attentionAsync, backendInfo, setIsa, setThreads, type Isa } from '../../lib/index.js';
import { buildCase, expectMatches, MASS_RTOL, maxAbsDiff, maxRelDiff, OUT_TOL, referenceFor, resetOut, type BuiltCase, type CaseSpec } from './helpers.js';

const SIZES: CaseSpec[] = ([
  // Decode (nQ 1 / 7).
  { name: 'd64-kv17-g1-q1-f32', nHeads: 2, nKvHeads: 2, nQ: 1, nKv: 17, headDim: 64 },
  { name: 'd80-kv4099-g4-q1-f16', nHeads: 4, nKvHeads: 1, nQ: 1, nKv: 4099, headDim: 80, kDtype: 'f16', vDtype: 'f16' },
  { name: 'd111-kv4099-g8-q7-bf16', nHeads: 8, nKvHeads: 1, nQ: 7, nKv: 4099, headDim: 111, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'd128-kv1-g4-q7-f32', nHeads: 8, nKvHeads: 2, nQ: 7, nKv: 1, headDim: 128 },
  { name: 'd64-kv4099-g1-q7-bf16', nHeads: 2, nKvHeads: 2, nQ: 7, nKv: 4099, headDim: 64, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'd64-kv17-g8-q7-f16', nHeads: 8, nKvHeads: 1, nQ: 7, nKv: 17, headDim: 64, kDtype: 'f16', vDtype: 'f16' },
  { name: 'd111-kv1-g1-q1-bf16', nHeads: 3, nKvHeads: 3, nQ: 1, nKv: 1, headDim: 111, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'd80-kv17-g4-q7-f32', nHeads: 8, nKvHeads: 2, nQ: 7, nKv: 17, headDim: 80 },
  { name: 'd128-kv17-g8-q1-bf16', nHeads: 8, nKvHeads: 1, nQ: 1, nKv: 17, headDim: 128, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'd128-kv4099-g8-q7-f16', nHeads: 8, nKvHeads: 1, nQ: 7, nKv: 4099, headDim: 128, kDtype: 'f16', vDtype: 'f16' },
  { name: 'd80-kv4099-g1-q1-f32-peaky', nHeads: 1, nKvHeads: 1, nQ: 1, nKv: 4099, headDim: 80, qAmp: 8 },
  { name: 'd80-kv517-g4-q1-kf16-vbf16', nHeads: 4, nKvHeads: 1, nQ: 1, nKv: 517, headDim: 80, kDtype: 'f16', vDtype: 'bf16' },
  // 8 KV heads x 4099 keys: >= 32 chunks of 1024, so decode takes its long chunks.
  { name: 'd128-kv4099-g2-q1-f16-longchunks', nHeads: 16, nKvHeads: 8, nQ: 1, nKv: 4099, headDim: 128, kDtype: 'f16', vDtype: 'f16' },
  // Prefill (nQ 256).
  { name: 'd128-kv4099-g1-q256-f32', nHeads: 1, nKvHeads: 1, nQ: 256, nKv: 4099, headDim: 128 },
  { name: 'd111-kv4099-g1-q256-f16-causal', nHeads: 1, nKvHeads: 1, nQ: 256, nKv: 4099, headDim: 111, kDtype: 'f16', vDtype: 'f16', causal: true },
  { name: 'd111-kv17-g1-q256-f16', nHeads: 2, nKvHeads: 2, nQ: 256, nKv: 17, headDim: 111, kDtype: 'f16', vDtype: 'f16' },
  { name: 'd80-kv1-g8-q256-bf16', nHeads: 8, nKvHeads: 1, nQ: 256, nKv: 1, headDim: 80, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'd64-kv17-g8-q256-f16', nHeads: 8, nKvHeads: 1, nQ: 256, nKv: 17, headDim: 64, kDtype: 'f16', vDtype: 'f16' },
  { name: 'd80-kv300-g4-q256-kbf16-vf32', nHeads: 4, nKvHeads: 1, nQ: 256, nKv: 300, headDim: 80, kDtype: 'bf16', vDtype: 'f32' },
  { name: 'd128-kv600-g4-q256-bf16-peaky', nHeads: 4, nKvHeads: 1, nQ: 256, nKv: 600, headDim: 128, kDtype: 'bf16', vDtype: 'bf16', qAmp: 6 },
  // Head dims beyond the required four: 1 and 3 (all tail), 33, 200.
  { name: 'd1-kv17-g4-q7-f32', nHeads: 4, nKvHeads: 1, nQ: 7, nKv: 17, headDim: 1 },
  { name: 'd3-kv40-g1-q256-f16', nHeads: 1, nKvHeads: 1, nQ: 256, nKv: 40, headDim: 3, kDtype: 'f16', vDtype: 'f16' },
  { name: 'd33-kv129-g2-q7-bf16', nHeads: 4, nKvHeads: 2, nQ: 7, nKv: 129, headDim: 33, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'd200-kv100-g1-q64-f32', nHeads: 1, nKvHeads: 1, nQ: 64, nKv: 100, headDim: 200 },
] as CaseSpec[]).map((s) => ({ returnLse: true, returnKeyMass: true, ...s }));

const built = new Map<string, BuiltCase>();
function get(name: string): BuiltCase {
  let c = built.get(name);
  if (!c) {
    const spec = SIZES.find((s) => s.name === name);
    if (!spec) throw new Error(`no case ${name}`);
    c = buildCase(spec);
    built.set(name, c);
  }
  return c;
}

function isasToTest(): Isa[] {
  const order: Isa[] = ['scalar', 'avx2', 'avx512'];
  return order.slice(0, order.indexOf(backendInfo().detectedIsa) + 1);
}

let initial: { isa: Isa; threads: number };
beforeAll(() => {
  const info = backendInfo();
  initial = { isa: info.isa, threads: info.threads };
});
afterAll(() => {
  setIsa(initial.isa);
  setThreads(initial.threads);
});

describe('attention matches the float64 reference (default ISA and threads)', () => {
  for (const spec of SIZES) {
    test(spec.name, async () => {
      const c = get(spec.name);
      const ref = referenceFor(c);
      resetOut(c);
      expectMatches(attention(c.q, c.k, c.v, c.options), c, ref, 'sync');
      resetOut(c);
      expectMatches(await attentionAsync(c.q, c.k, c.v, c.options), c, ref, 'async');
    });
  }
});

describe('every ISA path on this CPU matches the reference', () => {
  for (const isa of ['scalar', 'avx2', 'avx512'] as Isa[]) {
    test(isa, async (ctx) => {
      if (!isasToTest().includes(isa)) ctx.skip(`CPU lacks ${isa} (detected ${backendInfo().detectedIsa})`);
      setIsa(isa);
      try {
        expect(backendInfo().isa).toBe(isa);
        for (const spec of SIZES) {
          const c = get(spec.name);
          const ref = referenceFor(c);
          expectMatches(attention(c.q, c.k, c.v, c.options), c, ref, `isa=${isa} sync`);
          expectMatches(await attentionAsync(c.q, c.k, c.v, c.options), c, ref, `isa=${isa} async`);
        }
      } finally {
        setIsa(initial.isa);
      }
    });
  }

  test('setIsa above the detected level throws and leaves the ISA unchanged', () => {
    const order: Isa[] = ['scalar', 'avx2', 'avx512'];
    const detected = backendInfo().detectedIsa;
    const above = order.slice(order.indexOf(detected) + 1);
    for (const isa of above) {
      expect(() => setIsa(isa)).toThrow(RangeError);
      expect(backendInfo().isa).toBe(initial.isa);
    }
    expect(() => setIsa('sse2' as Isa)).toThrow(RangeError);
  });
});

describe('results do not depend on the thread count beyond rounding', () => {
  const names = [
    'd128-kv4099-g1-q256-f32',
    'd111-kv4099-g1-q256-f16-causal',
    'd111-kv4099-g8-q7-bf16',
    'd128-kv4099-g8-q7-f16',
    'd64-kv17-g8-q256-f16',
  ];
  test('1 vs 2 threads', async () => {
    try {
      for (const name of names) {
        const c = get(name);
        const ref = referenceFor(c);
        setThreads(1);
        expect(backendInfo().threads).toBe(1);
        const one = attention(c.q, c.k, c.v, c.options);
        const oneAsync = await attentionAsync(c.q, c.k, c.v, c.options);
        setThreads(2);
        expect(backendInfo().threads).toBe(2);
        const two = attention(c.q, c.k, c.v, c.options);
        const twoAsync = await attentionAsync(c.q, c.k, c.v, c.options);
        for (const [label, r] of [['1 thread', one], ['1 thread async', oneAsync], ['2 threads', two], ['2 threads async', twoAsync]] as const) {
          expectMatches(r, c, ref, label);
        }
        // Against each other: rounding-level only (a tenth of the reference tolerance).
        const tol = 0.1 * OUT_TOL * c.vMax;
        expect(maxAbsDiff(one.output.data, two.output.data), `${name}: output 1 vs 2 threads`).toBeLessThanOrEqual(tol);
        expect(maxAbsDiff(one.lse!.data, two.lse!.data), `${name}: lse 1 vs 2 threads`).toBeLessThanOrEqual(1e-5);
        expect(maxRelDiff(one.keyMass!.data, two.keyMass!.data), `${name}: keyMass 1 vs 2 threads`).toBeLessThanOrEqual(MASS_RTOL);
      }
    } finally {
      setThreads(initial.threads);
    }
    expect(backendInfo().threads).toBe(initial.threads);
  });
});
