// Pruning operators of group `select` (lib/vision/{divprune,vtc-cls,fastv,
// globalcom2,todre}.ts; native/reduce/) against the float64 JS references
// (lib/vision/reference/) on awkward sizes: n odd, n = 1, keep = 0 and
// keep = n, duplicate and zero tokens, [t, n, dim] inputs; the async forms;
// argument errors (argument, expected, received); inputs untouched after a
// failed call.
import { describe, expect, test } from 'vitest';
import { attention } from '../../lib/attention.js';
import { divPrune, divPruneAsync } from '../../lib/vision/divprune.js';
import { fastv, fastvSelect, fastvSelectAsync, fastvSelectFromQK, fastvSelectFromQKAsync } from '../../lib/vision/fastv.js';
import { globalCom2, globalCom2Async } from '../../lib/vision/globalcom2.js';
import { divPruneReference } from '../../lib/vision/reference/divprune.js';
import { fastvReference } from '../../lib/vision/reference/fastv.js';
import { bilinearReference, globalCom2Reference } from '../../lib/vision/reference/globalcom2.js';
import { topkReference } from '../../lib/vision/reference/topk.js';
import { vtcClsReference } from '../../lib/vision/reference/vtc-cls.js';
import { todreAttendIndices, todreAttendPositions, todreDiversity, todreRelevance } from '../../lib/vision/todre.js';
import { vtcCls, vtcClsAsync } from '../../lib/vision/vtc-cls.js';
import { mulberry32, type Rng } from '../reference/random.js';

function gaussian(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng() + rng() + rng() - 1.5;
  return out;
}

/** Python's round (half to even), independent of lib/vision/select-util.ts. */
function pyRound(x: number): number {
  const f = Math.floor(x);
  if (x - f !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

const tok = (data: Float32Array, shape: number[]) => ({ dtype: 'f32' as const, shape, data });

describe('divPrune', () => {
  test.each([
    [1, 3, 1], [2, 2, 1], [7, 9, 3], [33, 17, 5], [33, 17, 33], [50, 8, 0], [65, 33, 12],
  ])('n=%i dim=%i keep=%i matches the reference', (n, dim, keep) => {
    const x = gaussian(mulberry32(n * 31 + dim), n * dim);
    const r = divPrune(tok(x, [n, dim]), { keep });
    expect(Array.from(r.indices.data)).toEqual(Array.from(divPruneReference(x, n, dim, keep)));
    expect(r.indices.shape).toEqual([keep]);
    expect(r.tokens.shape).toEqual([keep, dim]);
    for (let j = 0; j < keep; j++) {
      const i = r.indices.data[j]!;
      expect(Array.from(r.tokens.data.subarray(j * dim, (j + 1) * dim))).toEqual(Array.from(x.subarray(i * dim, (i + 1) * dim)));
    }
  });

  test('default budget round(0.098 n), Python rounding (half to even)', () => {
    const x = gaussian(mulberry32(5), 50 * 4);
    expect(divPrune(tok(x, [50, 4])).indices.data.length).toBe(5); // 4.9
    expect(divPrune(tok(x.subarray(0, 20), [5, 4]), { keepRatio: 0.5 }).indices.data.length).toBe(2); // round(2.5) = 2
    expect(divPrune(tok(x.subarray(0, 28), [7, 4]), { keepRatio: 0.5 }).indices.data.length).toBe(4); // round(3.5) = 4
  });

  test('duplicates and zero vectors: no index twice, same set as the reference', () => {
    const n = 21, dim = 6;
    const rng = mulberry32(9);
    const base = gaussian(rng, 5 * dim);
    const x = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      if (i % 7 === 3) continue; // zero rows
      x.set(base.subarray((i % 5) * dim, (i % 5 + 1) * dim), i * dim);
    }
    for (const keep of [3, 6, 10, n]) {
      const got = Array.from(divPrune(tok(x, [n, dim]), { keep }).indices.data);
      expect(new Set(got).size).toBe(keep);
      expect(got).toEqual([...got].sort((a, b) => a - b));
      if (keep <= 8) {
        // 5 distinct vectors + 3 zero rows: up to 8 picks are forced (no ties).
        expect(got).toEqual(Array.from(divPruneReference(x, n, dim, keep)));
      } else {
        // Past them every candidate is a duplicate at distance ~0: which one
        // wins is a float32 rounding tie; the distinct ones must all be in.
        for (const zero of [3, 10, 17]) expect(got).toContain(zero);
        expect(new Set(got.filter((i) => i % 7 !== 3).map((i) => i % 5)).size).toBe(5);
      }
    }
  });

  test('[t, n, dim] equals frame by frame; async equals sync', async () => {
    const t = 3, n = 19, dim = 10, keep = 4;
    const x = gaussian(mulberry32(77), t * n * dim);
    const r = divPrune(tok(x, [t, n, dim]), { keep });
    expect(r.indices.shape).toEqual([t, keep]);
    expect(r.tokens.shape).toEqual([t, keep, dim]);
    for (let f = 0; f < t; f++) {
      const one = divPrune(tok(x.slice(f * n * dim, (f + 1) * n * dim), [n, dim]), { keep });
      expect(Array.from(r.indices.data.subarray(f * keep, (f + 1) * keep))).toEqual(Array.from(one.indices.data));
    }
    const a = await divPruneAsync(tok(x, [t, n, dim]), { keep });
    expect(Array.from(a.indices.data)).toEqual(Array.from(r.indices.data));
    expect(Array.from(a.tokens.data)).toEqual(Array.from(r.tokens.data));
  });

  test('argument errors name the argument; inputs untouched', async () => {
    const x = gaussian(mulberry32(1), 12);
    const copy = x.slice();
    expect(() => divPrune(tok(x, [4, 3]), { keep: 5 })).toThrow(/options\.keep.*\[0, 4\].*5/);
    expect(() => divPrune(tok(x, [4, 3]), { keepRatio: 1.5 })).toThrow(/options\.keepRatio.*\[0, 1\].*1\.5/);
    expect(() => divPrune(tok(x, [4, 3]), { kep: 1 } as never)).toThrow(/kep/);
    expect(() => divPrune(tok(x, [12]), {})).toThrow(/tokens\.shape/);
    expect(() => divPrune(tok(x, [5, 3]), {})).toThrow(/tokens\.data\.length/);
    await expect(divPruneAsync(tok(x, [4, 3]), { keep: -1 })).rejects.toThrow(/options\.keep/);
    expect(Array.from(x)).toEqual(Array.from(copy));
  });

  test('metricDim (random projection, an approximation): one pick per well-separated cluster, deterministic', () => {
    const clusters = 5, per = 9, dim = 64, n = clusters * per;
    const rng = mulberry32(31);
    const centers = gaussian(rng, clusters * dim);
    const x = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) x[i * dim + d] = centers[(i % clusters) * dim + d]! + 0.02 * (rng() - 0.5);
    const a = divPrune(tok(x, [n, dim]), { keep: clusters, metricDim: 24 });
    expect(new Set(Array.from(a.indices.data, (i) => i % clusters)).size).toBe(clusters);
    const b = divPrune(tok(x, [n, dim]), { keep: clusters, metricDim: 24 });
    expect(Array.from(b.indices.data)).toEqual(Array.from(a.indices.data));
    const exact = divPrune(tok(x, [n, dim]), { keep: clusters, metricDim: 0 });
    expect(Array.from(exact.indices.data)).toEqual(Array.from(divPruneReference(x, n, dim, clusters)));
    expect(() => divPrune(tok(x, [n, dim]), { metricDim: -1 })).toThrow(/options\.metricDim/);
  });

  test('non-finite tokens are picked last, lowest index first; others ignore them', () => {
    const n = 13, dim = 5;
    const x = gaussian(mulberry32(44), n * dim);
    x[4 * dim + 2] = NaN;
    x[9 * dim] = Infinity;
    for (const keep of [1, 5, 11, 12, 13]) {
      const got = Array.from(divPrune(tok(x, [n, dim]), { keep }).indices.data);
      expect(got).toEqual(Array.from(divPruneReference(x, n, dim, keep)));
      if (keep <= 11) expect(got.includes(4) || got.includes(9)).toBe(false);
    }
    expect(Array.from(divPrune(tok(x, [n, dim]), { keep: 12 }).indices.data)).toContain(4);
  });

  test('empty frames and keep 0', () => {
    expect(divPrune(tok(new Float32Array(0), [0, 4])).indices.data.length).toBe(0);
    expect(divPrune(tok(new Float32Array(8), [2, 4]), { keep: 0 }).tokens.shape).toEqual([0, 4]);
  });
});

describe('top-k tie rule (native/reduce/topk.h)', () => {
  test('equal scores keep the lower index; NaN ranks last', () => {
    const att = Float32Array.of(1, 5, 5, 2, 5, NaN, 0);
    const n = att.length;
    const r = vtcCls(tok(new Float32Array(n * 2), [n, 2]), tok(att, [1, n]), { keep: 3, endLayer: 1 });
    expect(Array.from(r.indices.data)).toEqual([1, 2, 4]);
    expect(Array.from(topkReference(att, 3))).toEqual([1, 2, 4]);
    const r2 = vtcCls(tok(new Float32Array(n * 2), [n, 2]), tok(att, [1, n]), { keep: 7, endLayer: 1 });
    expect(Array.from(r2.indices.data)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const r3 = vtcCls(tok(new Float32Array(n * 2), [n, 2]), tok(att, [1, n]), { keep: 6, endLayer: 1 });
    expect(Array.from(r3.indices.data)).toEqual([0, 1, 2, 3, 4, 6]);
  });
});

describe('vtcCls', () => {
  test.each([[1, 1, 1], [3, 7, 2], [24, 33, 10], [5, 17, 17]])('layers=%i n=%i keep=%i matches the reference', (layers, n, keep) => {
    const rng = mulberry32(layers * 100 + n);
    const att = Float32Array.from({ length: layers * n }, () => rng());
    const x = gaussian(rng, n * 4);
    const r = vtcCls(tok(x, [n, 4]), tok(att, [layers, n]), { keep });
    const end = Math.max(1, layers - 1);
    const ref = vtcClsReference(att, layers, n, 0, end, keep);
    expect(Array.from(r.indices.data)).toEqual(Array.from(ref.indices));
    for (let i = 0; i < n; i++) expect(r.scores!.data[i]).toBeCloseTo(ref.scores[i]!, 5);
  });

  test('the last layer is left out by default (attentions[start:-1]); startLayer', () => {
    const layers = 4, n = 9;
    const rng = mulberry32(3);
    const att = Float32Array.from({ length: layers * n }, () => rng());
    const x = gaussian(rng, n * 2);
    const a = vtcCls(tok(x, [n, 2]), tok(att, [layers, n]), { keep: 3 });
    const att2 = att.slice();
    for (let i = 0; i < n; i++) att2[(layers - 1) * n + i] = i === 0 ? 100 : 0;
    const b = vtcCls(tok(x, [n, 2]), tok(att2, [layers, n]), { keep: 3 });
    expect(Array.from(b.indices.data)).toEqual(Array.from(a.indices.data));
    const c = vtcCls(tok(x, [n, 2]), tok(att, [layers, n]), { keep: 3, startLayer: 2 });
    expect(Array.from(c.indices.data)).toEqual(Array.from(vtcClsReference(att, layers, n, 2, 3, 3).indices));
  });

  test('[t, layers, n] frames; async; errors', async () => {
    const t = 3, layers = 2, n = 11, keep = 4;
    const rng = mulberry32(8);
    const att = Float32Array.from({ length: t * layers * n }, () => rng());
    const x = gaussian(rng, t * n * 3);
    const r = vtcCls(tok(x, [t, n, 3]), tok(att, [t, layers, n]), { keep });
    for (let f = 0; f < t; f++) {
      const ref = vtcClsReference(att.subarray(f * layers * n), layers, n, 0, 1, keep);
      expect(Array.from(r.indices.data.subarray(f * keep, (f + 1) * keep))).toEqual(Array.from(ref.indices));
    }
    const a = await vtcClsAsync(tok(x, [t, n, 3]), tok(att, [t, layers, n]), { keep });
    expect(Array.from(a.indices.data)).toEqual(Array.from(r.indices.data));
    expect(() => vtcCls(tok(x, [t, n, 3]), tok(att, [layers, t * n]), { keep })).toThrow(/clsAttention\.shape/);
    expect(() => vtcCls(tok(x, [t, n, 3]), tok(att, [t, layers, n]), {})).toThrow(/keep/);
    expect(() => vtcCls(tok(x, [t, n, 3]), tok(att, [t, layers, n]), { keep, startLayer: 2 })).toThrow(/options\.startLayer.*\[0, 1\].*2/);
  });
});

describe('fastv', () => {
  test.each([[1, 8, 0, 8, 0.5], [4, 40, 5, 29, 0.5], [3, 600, 5, 576, 0.75], [2, 10, 3, 7, 0], [2, 10, 3, 7, 1]])(
    'heads=%i nk=%i span [%i, +%i) r=%f matches the reference', (heads, nk, start, len, r) => {
      const rng = mulberry32(heads * nk + start);
      const probs = Float32Array.from({ length: heads * nk }, () => rng());
      const sel = fastvSelect(tok(probs, [heads, nk]), { imageStart: start, imageLength: len, r });
      const keep = Math.min(len, pyRound(len * (1 - r)));
      const ref = fastvReference(probs, heads, nk, start, len, keep);
      expect(Array.from(sel.imageKeep)).toEqual(Array.from(ref.imageKeep));
      expect(sel.keep.length).toBe(nk - len + keep);
      for (let i = 0; i < start; i++) expect(sel.keep[i]).toBe(i);
      expect(Array.from(sel.keep.subarray(sel.keep.length - (nk - start - len)))).toEqual(Array.from({ length: nk - start - len }, (_, i) => start + len + i));
      for (let i = 0; i < len; i++) expect(sel.scores[i]).toBeCloseTo(ref.scores[i]!, 6);
    });

  test('[heads, nq, nk] takes the last row; the hidden-state form; async', async () => {
    const heads = 2, nq = 3, nk = 13;
    const rng = mulberry32(12);
    const p3 = Float32Array.from({ length: heads * nq * nk }, () => rng());
    const last = new Float32Array(heads * nk);
    for (let h = 0; h < heads; h++) last.set(p3.subarray((h * nq + nq - 1) * nk, (h * nq + nq) * nk), h * nk);
    const opts = { imageStart: 2, imageLength: 9, r: 0.5 };
    const a = fastvSelect(tok(p3, [heads, nq, nk]), opts);
    const b = fastvSelect(tok(last, [heads, nk]), opts);
    expect(Array.from(a.keep)).toEqual(Array.from(b.keep));
    const c = await fastvSelectAsync(tok(last, [heads, nk]), opts);
    expect(Array.from(c.keep)).toEqual(Array.from(b.keep));
    const hidden = gaussian(rng, nk * 5);
    const k = fastv(tok(hidden, [nk, 5]), tok(last, [heads, nk]), opts);
    expect(Array.from(k.indices.data)).toEqual(Array.from(b.keep));
    const j = k.indices.data[3]!;
    expect(Array.from(k.tokens.data.subarray(15, 20))).toEqual(Array.from(hidden.subarray(j * 5, j * 5 + 5)));
    expect(k.scores!.data[0]).toBe(Infinity);
  });

  test('from q/k through tokenpress attention (GQA) equals ranking the explicit softmax', () => {
    const nHeads = 4, nKvHeads = 2, nQ = 3, nKv = 21, hd = 8;
    const rng = mulberry32(21);
    const q = gaussian(rng, nHeads * nQ * hd), k = gaussian(rng, nKvHeads * nKv * hd);
    const opts = { imageStart: 3, imageLength: 15, r: 0.6 };
    const sel = fastvSelectFromQK(tok(q, [nHeads, nQ, hd]), tok(k, [nKvHeads, nKv, hd]), opts);
    // float64 softmax of the last query row, per query head, then the head mean
    const probs = new Float32Array(nHeads * nKv);
    for (let h = 0; h < nHeads; h++) {
      const kv = Math.floor(h / (nHeads / nKvHeads));
      const logits = Array.from({ length: nKv }, (_, j) => {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[(h * nQ + nQ - 1) * hd + d]! * k[(kv * nKv + j) * hd + d]!;
        return s / Math.sqrt(hd);
      });
      const mx = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - mx));
      const z = e.reduce((x, y) => x + y, 0);
      e.forEach((v, j) => { probs[h * nKv + j] = v / z; });
    }
    const keep = Math.round(15 * 0.4);
    const ref = fastvReference(probs, nHeads, nKv, 3, 15, keep);
    expect(Array.from(sel.imageKeep)).toEqual(Array.from(ref.imageKeep));
    for (let i = 0; i < 15; i++) expect(sel.scores[i]).toBeCloseTo(ref.scores[i]!, 5);
    expect(attention).toBeTypeOf('function');
  });

  test('from q/k, async, equals sync; the q/k form with a bad span throws naming the option', async () => {
    const rng = mulberry32(5);
    const q = gaussian(rng, 2 * 2 * 4), k = gaussian(rng, 2 * 11 * 4);
    const opts = { imageStart: 1, imageLength: 8, r: 0.5 };
    const a = fastvSelectFromQK(tok(q, [2, 2, 4]), tok(k, [2, 11, 4]), opts);
    const b = await fastvSelectFromQKAsync(tok(q, [2, 2, 4]), tok(k, [2, 11, 4]), opts);
    expect(Array.from(b.keep)).toEqual(Array.from(a.keep));
    expect(() => fastvSelectFromQK(tok(q, [2, 2, 4]), tok(k, [2, 11, 4]), { imageStart: 12 })).toThrow(/options\.imageStart/);
  });

  test('errors', () => {
    const p = new Float32Array(20);
    expect(() => fastvSelect(tok(p, [2, 10]), { imageStart: 4, imageLength: 7 })).toThrow(/options\.imageLength.*\[0, 6\].*7/);
    expect(() => fastvSelect(tok(p, [2, 10]), { r: -0.1 })).toThrow(/options\.r/);
    expect(() => fastvSelect(tok(p, [20]), {})).toThrow(/attention\.shape/);
    expect(() => fastv(tok(new Float32Array(9 * 2), [9, 2]), tok(p, [2, 10]))).toThrow(/attention\.shape \(nk\).*9.*10/);
  });
});

describe('globalCom2', () => {
  test('bilinear reference = PyTorch F.interpolate(align_corners=False) on a known case', () => {
    const up = bilinearReference([0, 1, 2, 3], 2, 2, 4, 4);
    expect(Array.from(up)).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  });

  test.each([[4, 2, 2, 3, 3], [5, 1, 3, 3, 4], [6, 2, 2, 6, 6], [1, 1, 1, 1, 1], [24, 2, 2, 24, 24]])(
    'side=%i grid %ix%i crop %ix%i matches the reference', (side, nph, npw, h, w) => {
      const rng = mulberry32(side * 7 + nph * 3 + w);
      const c = nph * npw, dim = 3;
      const thumbScores = Float32Array.from({ length: side * side }, () => rng() * 0.01);
      thumbScores[0] = 0.9; // a peak: unequal crop ratios
      const cropScores = Float32Array.from({ length: c * h * w }, () => rng());
      const thumbnail = tok(gaussian(rng, side * side * dim), [side * side, dim]);
      const crops = tok(gaussian(rng, c * h * w * dim), [c, h * w, dim]);
      const input = { thumbnail, thumbnailScores: thumbScores, crops, cropScores, cropGrid: [nph, npw] as const, cropSize: [h, w] as const };
      const r = globalCom2(input);
      const ref = globalCom2Reference(thumbScores, side, cropScores, nph, npw, h, w, 0.25, 10);
      expect(Array.from(r.thumbnail.indices.data)).toEqual(Array.from(ref.thumbKeep));
      for (let k = 0; k < c; k++) expect(r.ratios[k]).toBeCloseTo(ref.ratios[k]!, 12);
      const flat = ref.cropKeep.flatMap((keep, k) => Array.from(keep, (p) => k * h * w + p));
      expect(Array.from(r.crops.indices.data)).toEqual(flat);
      for (let i = 0; i < ref.cropScores.length; i++) expect(r.crops.scores!.data[i]).toBeCloseTo(ref.cropScores[i]!, 5);
    });

  test('async; errors', async () => {
    const rng = mulberry32(2);
    const input = {
      thumbnail: tok(gaussian(rng, 16 * 2), [16, 2]), thumbnailScores: Float32Array.from({ length: 16 }, () => rng()),
      crops: tok(gaussian(rng, 4 * 9 * 2), [4, 9, 2]), cropScores: Float32Array.from({ length: 36 }, () => rng()), cropGrid: [2, 2] as const,
    };
    const a = globalCom2(input), b = await globalCom2Async(input);
    expect(Array.from(b.crops.indices.data)).toEqual(Array.from(a.crops.indices.data));
    expect(() => globalCom2({ ...input, cropGrid: [1, 3] })).toThrow(/input\.cropGrid/);
    expect(() => globalCom2({ ...input, thumbnail: tok(new Float32Array(30), [15, 2]) })).toThrow(/input\.thumbnail\.shape\[0\]/);
    expect(() => globalCom2(input, { temperature: 0 })).toThrow(/options\.temperature/);
    expect(() => globalCom2({ ...input, cropScores: new Float32Array(35) })).toThrow(/input\.cropScores\.length.*36.*35/);
  });
});

describe('ToDRE', () => {
  test('stage 1 is DivPrune at 10%; stage 2 ranks like FastV; the attend positions per layer', () => {
    const n = 40, dim = 6;
    const x = gaussian(mulberry32(4), n * dim);
    expect(Array.from(todreDiversity(tok(x, [n, dim])).indices.data)).toEqual(Array.from(divPruneReference(x, n, dim, 4)));
    const probs = Float32Array.from({ length: 2 * 12 }, (_, i) => (i * 7919) % 13);
    const sel = todreRelevance(tok(probs, [2, 12]), { imageStart: 2, imageLength: 6, r: 0.5 });
    expect(sel.imageKeep.length).toBe(3);
    const schedule = { seqLen: 12, imageStart: 2, imageLength: 6, imageKeep: sel.imageKeep, relevanceLayer: 2, dropLayer: 5 };
    expect(todreAttendPositions(schedule, 1).length).toBe(12);
    expect(Array.from(todreAttendPositions(schedule, 2))).toEqual([0, 1, ...Array.from(sel.imageKeep), 8, 9, 10, 11]);
    expect(Array.from(todreAttendPositions(schedule, 5))).toEqual([0, 1, 8, 9, 10, 11]);
    const idx = todreAttendIndices(schedule, 5, 2);
    expect(idx.shape).toEqual([2, 6]);
    expect(() => todreAttendPositions({ ...schedule, imageKeep: Int32Array.of(9) }, 3)).toThrow(/schedule\.imageKeep\[0\]/);
    expect(() => todreAttendPositions({ ...schedule, dropLayer: 1 }, 3)).toThrow(/schedule\.dropLayer/);
  });
});
