// An onnxruntime-node decode loop over a small ONNX decoder built here
// (test/fixtures/ort-decoder.ts: 2 layers, GQA 4 query / 2 KV heads), the way
// a user writes it:
//
//   out = session.run({ hidden, ...pastKeyValues(cache, ort.Tensor) })
//   appendPresent(cache, out, 1)        // the new row of every present.*
//   cache.compress(policy, { keep })    // when a layer is over the budget
//
// Checked at every step: ORT's own attention output per layer equals
// cache.attend over the same cache (within an f32 rounding bound); without
// compression the cache reproduces ORT's present.* exactly; with it, the
// export ORT receives holds exactly `budget` rows per head.
import { beforeAll, describe, expect, test } from 'vitest';
import * as ort from 'onnxruntime-node';
import { appendPresent, KvCache, pastKeyValues } from '../../lib/index.js';
import { decoderModel, decoderScale, type DecoderShape } from '../fixtures/ort-decoder.js';
import { mulberry32, randomF32 } from '../reference/random.js';
import { bits } from '../fixtures/interop-tensors.js';

const S: DecoderShape = { nLayers: 2, dModel: 32, nHeads: 4, nKvHeads: 2, headDim: 8 };
const STEPS = 24;
const BUDGET = 8;
const INTERVAL = 4; // compress once a layer holds BUDGET + INTERVAL rows
const SCALE = decoderScale(S);
const U = 2 ** -24; // f32 unit roundoff

/**
 * How far two correct f32 evaluations of one attention row may differ, for
 * query head h of q [nHeads, 1, headDim] over k, v [nKvHeads, nKv, headDim]:
 * a logit s_j = scale * q.k_j summed in any order is off by at most
 * headDim * U * scale * sum_d |q_d k_jd|; that error e (plus a few U from
 * exp and the max) scales each probability by (1 + e), moving the output by
 * at most max|v| * 2e; the normalising sum and the weighted sum of nKv rows
 * add nKv * U relative each. Both sides err, hence the factor 2.
 */
function attentionBound(q: Float32Array, k: Float32Array, v: Float32Array, nKv: number): number {
  const { nHeads, nKvHeads, headDim: d } = S;
  const group = nHeads / nKvHeads;
  let maxDot = 0;
  let maxV = 0;
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let j = 0; j < nKv; j++) {
      let dot = 0;
      for (let i = 0; i < d; i++) dot += Math.abs(q[h * d + i]! * k[(g * nKv + j) * d + i]!);
      maxDot = Math.max(maxDot, dot);
    }
  }
  for (const x of v) maxV = Math.max(maxV, Math.abs(x));
  const logitErr = d * U * SCALE * maxDot + 4 * U;
  return 2 * maxV * (2 * logitErr + 2 * nKv * U + 4 * U);
}

interface StepLog {
  /** ORT's attention output per layer, f32 [nHeads * headDim]. */
  attn: Float32Array[];
  /** The largest |ORT - cache.attend| over the bound, per layer (must be <= 1). */
  ratio: number[];
}

/** Runs the loop; `budget` undefined = never compress. `check` runs after each step's append. */
async function decodeLoop(
  session: ort.InferenceSession,
  budget: number | undefined,
  check: (step: number, out: ort.InferenceSession.OnnxValueMapType, cache: KvCache, past: number) => void,
): Promise<StepLog[]> {
  const cache = new KvCache({ nLayers: S.nLayers, nKvHeads: S.nKvHeads, headDim: S.headDim, capacity: 64, dtype: 'f32' });
  const rng = mulberry32(99);
  const log: StepLog[] = [];
  for (let step = 0; step < STEPS; step++) {
    const hidden = new ort.Tensor('float32', randomF32(rng, S.dModel), [1, 1, S.dModel]);
    const feeds = pastKeyValues(cache, ort.Tensor);
    const past = (feeds['past_key_values.0.key']!.dims[2])!;
    const out = await session.run({ hidden, ...feeds });
    appendPresent(cache, out, 1);
    const entry: StepLog = { attn: [], ratio: [] };
    for (let l = 0; l < S.nLayers; l++) {
      const ours = cache.attend(l, out[`q.${l}`] as ort.Tensor, { scale: SCALE }).output.data;
      const theirs = out[`attn.${l}`]!.data as Float32Array;
      const e = cache.export(l, { dtype: 'f32' });
      const bound = attentionBound(out[`q.${l}`]!.data as Float32Array, e.k.data as Float32Array, e.v.data as Float32Array, e.k.shape[1]!);
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
      entry.attn.push(theirs);
      entry.ratio.push(worst / bound);
    }
    check(step, out, cache, past);
    log.push(entry);
    if (budget !== undefined && Math.max(...cache.lengths().data) >= budget + INTERVAL) {
      cache.compress('knorm', { keep: budget });
      for (let l = 0; l < S.nLayers; l++) {
        const e = cache.export(l);
        expect(e.k.shape[1], `step ${step} layer ${l}`).toBe(budget);
        expect(Array.from(e.lengths)).toEqual(new Array(S.nKvHeads).fill(budget));
        // The kept rows are original positions in order, all from the tokens seen.
        for (let h = 0; h < S.nKvHeads; h++) {
          const pos = Array.from(e.positions.data.subarray(h * budget, (h + 1) * budget));
          expect(pos.every((p, i) => p >= 0 && p <= step && (i === 0 || p > pos[i - 1]!))).toBe(true);
        }
      }
    }
  }
  return log;
}

describe('an onnxruntime-node decode loop through a KvCache', () => {
  let session: ort.InferenceSession;
  let full: StepLog[] | undefined;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(decoderModel(S, 7), { executionProviders: ['cpu'] });
  });

  test('without compression: the cache reproduces ORT\'s present.* bit for bit, and attend matches ORT', async () => {
    full = await decodeLoop(session, undefined, (step, out, cache, past) => {
      expect(past).toBe(step);
      for (let l = 0; l < S.nLayers; l++) {
        const e = cache.export(l, { dtype: 'f32' });
        expect(out[`present.${l}.key`]!.dims).toEqual([1, S.nKvHeads, step + 1, S.headDim]);
        expect(bits(e.k.data), `step ${step} layer ${l} key`).toEqual(bits(out[`present.${l}.key`]!.data as Float32Array));
        expect(bits(e.v.data), `step ${step} layer ${l} value`).toEqual(bits(out[`present.${l}.value`]!.data as Float32Array));
      }
    });
    for (const [step, s] of full.entries()) expect(Math.max(...s.ratio), `step ${step}`).toBeLessThanOrEqual(1);
  });

  test('compressing to a budget: ORT attends over the compressed export, and attend still matches it', async () => {
    const pasts: number[] = [];
    const log = await decodeLoop(session, BUDGET, (step, out, _cache, past) => {
      pasts.push(past);
      // ORT concatenated the new row after exactly the rows we fed it.
      expect(out['present.1.value']!.dims[2]).toBe(past + 1);
    });
    for (const [step, s] of log.entries()) expect(Math.max(...s.ratio), `step ${step}`).toBeLessThanOrEqual(1);
    // The cache never fed more than budget + interval - 1 rows, and did compress.
    expect(Math.max(...pasts)).toBe(BUDGET + INTERVAL - 1);
    expect(pasts.filter((p) => p === BUDGET).length).toBeGreaterThan(2);
    // Compression changed what ORT computed once tokens were evicted
    // (identical inputs per step, so any difference comes from the cache).
    full ??= await decodeLoop(session, undefined, () => {});
    const last = STEPS - 1;
    let diff = 0;
    for (let l = 0; l < S.nLayers; l++) {
      for (let i = 0; i < log[last]!.attn[l]!.length; i++) diff = Math.max(diff, Math.abs(log[last]!.attn[l]![i]! - full[last]!.attn[l]![i]!));
    }
    expect(diff).toBeGreaterThan(1e-3);
  });
});
