/**
 * Shared helpers for the attention tests: a declarative case spec, a builder
 * that turns it into seeded tensors + options, a cached float64 reference,
 * and comparisons whose failure messages name the case and the worst element.
 */
import { expect } from 'vitest';
import {
  castTo,
  type AttentionOptions,
  type AttentionResult,
  type FloatDType,
  type Tensor,
} from '../../lib/index.js';
import { decode3, referenceAttention, type ReferenceResult } from '../reference/attention.js';
import { mulberry32, randomF32, randomInt, type Rng } from '../reference/random.js';

/*
 * Tolerances (kernel computes in f32, the reference in float64 on the same
 * decoded inputs, so the difference is f32 rounding only):
 *
 * - output: max abs error <= OUT_TOL * max|v|. An output row is a convex
 *   combination of v rows, so max|v| is its natural scale. Errors come from
 *   the f32 logits (headDim <= 128 products, relative ~1e-6), f32 exp, and the
 *   f32 running sums over up to 4099 keys (random-walk error ~sqrt(n) * 6e-8
 *   ~ 4e-6 relative; the numerator and denominator errors partly cancel).
 *   2e-5 leaves ~5x headroom over what a correct f32 kernel produces and is
 *   still far below what any semantic slip (a missed key, a wrong head, a
 *   mask off by one: all >= 1e-4 here) would cause.
 * - lse: abs error <= LSE_TOL * max(1, |lse|): lse = max + log(sum); the sum
 *   carries the same ~1e-5 relative error, log turns it into ~1e-5 absolute;
 *   large logits add f32 relative rounding of the max itself.
 * - keyMass: |err| <= MASS_RTOL * ref + MASS_ATOL. Each probability carries
 *   ~1e-6..1e-5 relative error (logit rounding times logit magnitude, exp, the
 *   row's sum); summing them over <= 2048 (query, head) pairs in f32 keeps it
 *   relative. MASS_ATOL covers probabilities that underflow f32 in the kernel.
 *   A key no query may see has reference mass exactly 0 and must get exactly 0.
 * - A query that sees no key must give an exact zero row and lse = -Infinity.
 */
export const OUT_TOL = 2e-5;
export const LSE_TOL = 3e-5;
export const MASS_RTOL = 3e-5;
export const MASS_ATOL = 1e-6;

export interface Layout {
  /** Extra elements at the end of each row (row stride = headDim + rowPad). */
  rowPad?: number;
  /** Rows allocated per head (>= the used rows): a view into a larger cache. */
  capacity?: number;
  /** Elements before the first one (an unaligned start). */
  offset?: number;
  /** Head stride 0: every head reads the same rows (broadcast). */
  headStride0?: boolean;
}

export interface CaseSpec {
  name: string;
  nHeads: number;
  nKvHeads: number;
  nQ: number;
  nKv: number;
  headDim: number;
  kDtype?: FloatDType;
  vDtype?: FloatDType;
  seed?: number;
  /** Amplitude of q (larger: peakier softmax, larger logits). */
  qAmp?: number;
  qLayout?: Layout;
  kvLayout?: Layout;
  causal?: boolean;
  scale?: number;
  softcap?: number;
  mask?: 'bool' | 'additive';
  tree?: 'random' | 'chain' | 'flat';
  indices?: { nSel: number; strided?: boolean; allMasked?: boolean };
  returnLse?: boolean;
  returnKeyMass?: boolean;
  out?: boolean;
}

export interface BuiltCase {
  spec: CaseSpec;
  q: Tensor<'f32'>;
  k: Tensor<FloatDType>;
  v: Tensor<FloatDType>;
  options: AttentionOptions;
  /** max |v| over the viewed elements (the output's scale). */
  vMax: number;
}

function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** A [d0, d1, d2] tensor of random values, laid out as `layout` says. */
export function randomTensor3<D extends FloatDType>(
  rng: Rng,
  dtype: D,
  shape: [number, number, number],
  amp: number,
  layout: Layout = {},
): Tensor<D> {
  const [d0, d1, d2] = shape;
  const rowStride = d2 + (layout.rowPad ?? 0);
  const capacity = Math.max(layout.capacity ?? d1, d1);
  const headStride = layout.headStride0 ? 0 : capacity * rowStride;
  const offset = layout.offset ?? 0;
  const total = offset + (layout.headStride0 ? 1 : d0) * capacity * rowStride;
  // Fill everything (padding too) with random values: padding that leaks into
  // a result shows up as an error rather than as a harmless zero.
  const f = randomF32(rng, total, amp);
  const full = castTo({ dtype: 'f32', shape: [total], data: f }, dtype);
  const plain = !layout.rowPad && capacity === d1 && !offset && !layout.headStride0;
  if (plain) return { dtype, shape: [d0, d1, d2], data: full.data } as Tensor<D>;
  const data = (full.data as Float32Array | Uint16Array).subarray(offset);
  return { dtype, shape: [d0, d1, d2], data, strides: [headStride, rowStride, 1] } as unknown as Tensor<D>;
}

function randomTree(rng: Rng, nQ: number, kind: 'random' | 'chain' | 'flat'): Int32Array {
  const parents = new Int32Array(nQ);
  for (let i = 0; i < nQ; i++) {
    if (i === 0) parents[i] = -1;
    else if (kind === 'chain') parents[i] = i - 1;
    else if (kind === 'flat') parents[i] = i % 5 === 0 ? -1 : 0;
    else parents[i] = rng() < 0.1 ? -1 : randomInt(rng, Math.max(0, i - 8), i - 1);
  }
  return parents;
}

export function buildCase(spec: CaseSpec): BuiltCase {
  const rng = mulberry32(spec.seed ?? hashName(spec.name));
  const { nHeads, nKvHeads, nQ, nKv, headDim } = spec;
  const q = randomTensor3(rng, 'f32', [nHeads, nQ, headDim], spec.qAmp ?? 1, spec.qLayout);
  const k = randomTensor3(rng, spec.kDtype ?? 'f32', [nKvHeads, nKv, headDim], 1, spec.kvLayout);
  const v = randomTensor3(rng, spec.vDtype ?? 'f32', [nKvHeads, nKv, headDim], 1, spec.kvLayout);
  const options: AttentionOptions = {};
  if (spec.causal) options.causal = true;
  if (spec.scale !== undefined) options.scale = spec.scale;
  if (spec.softcap !== undefined) options.softcap = spec.softcap;
  // A row that masks every key, when there are enough rows to spare one.
  const blankRow = nQ >= 3 ? 1 : -1;
  if (spec.mask === 'bool') {
    const m = new Uint8Array(nQ * nKv);
    for (let i = 0; i < m.length; i++) m[i] = rng() < 0.7 ? 1 : 0;
    if (blankRow >= 0) m.fill(0, blankRow * nKv, (blankRow + 1) * nKv);
    // Any non-zero byte means "may attend".
    for (let i = 0; i < m.length; i += 11) if (m[i]) m[i] = 1 + (i % 255);
    options.mask = { dtype: 'bool', shape: [nQ, nKv], data: m };
  } else if (spec.mask === 'additive') {
    const m = new Float32Array(nQ * nKv);
    for (let i = 0; i < m.length; i++) {
      const r = rng();
      // -Infinity masks; large positive values test that the row max includes the mask.
      m[i] = r < 0.2 ? -Infinity : r < 0.25 ? 20 : r < 0.3 ? -60 : (rng() * 6 - 4);
    }
    if (blankRow >= 0) m.fill(-Infinity, blankRow * nKv, (blankRow + 1) * nKv);
    options.mask = { dtype: 'f32', shape: [nQ, nKv], data: m };
  }
  if (spec.tree) options.treeMask = randomTree(rng, nQ, spec.tree);
  if (spec.indices) {
    const { nSel, strided, allMasked } = spec.indices;
    const rowStride = strided ? nSel + 3 : nSel;
    const data = new Int32Array(Math.max(0, (nKvHeads - 1) * rowStride + nSel));
    data.fill(-7); // padding: never read
    for (let h = 0; h < nKvHeads; h++) {
      for (let s = 0; s < nSel; s++) data[h * rowStride + s] = randomInt(rng, 0, nKv - 1);
      // A repeated index is its own softmax term; its mass is summed.
      if (nSel >= 3) data[h * rowStride + 2] = data[h * rowStride]!;
      if (allMasked) for (let s = 0; s < nSel; s++) data[h * rowStride + s] = nKv - 1 - (s % 2);
    }
    options.indices = strided
      ? { dtype: 'i32', shape: [nKvHeads, nSel], data, strides: [rowStride, 1] }
      : { dtype: 'i32', shape: [nKvHeads, nSel], data };
  }
  if (spec.returnLse) options.returnLse = true;
  if (spec.returnKeyMass) options.returnKeyMass = true;
  if (spec.out) options.out = new Float32Array(nHeads * nQ * headDim).fill(NaN);
  let vMax = 0;
  for (const x of decode3(v)) vMax = Math.max(vMax, Math.abs(x));
  return { spec, q, k, v, options, vMax: vMax || 1 };
}

const refCache = new Map<string, ReferenceResult>();

/** The float64 reference for a built case, computed once per case name. */
export function referenceFor(c: BuiltCase): ReferenceResult {
  let r = refCache.get(c.spec.name);
  if (!r) {
    r = referenceAttention(c.q, c.k, c.v, c.options);
    refCache.set(c.spec.name, r);
  }
  return r;
}

/** Resets a caller-provided `out` to NaN so each run must overwrite every element. */
export function resetOut(c: BuiltCase): void {
  c.options.out?.fill(NaN);
}

function describeCase(c: BuiltCase): string {
  const s = c.spec;
  const opts = Object.entries(s)
    .filter(([k]) => !['name', 'nHeads', 'nKvHeads', 'nQ', 'nKv', 'headDim'].includes(k))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(' ');
  return `[${s.name}] nHeads=${s.nHeads} nKvHeads=${s.nKvHeads} nQ=${s.nQ} nKv=${s.nKv} headDim=${s.headDim} ${opts}`;
}

/** Asserts a kernel result matches the reference within the stated tolerances. */
export function expectMatches(got: AttentionResult, c: BuiltCase, ref: ReferenceResult, label = ''): void {
  const { nHeads, nKvHeads, nQ, nKv, headDim } = c.spec;
  const where = `${label} ${describeCase(c)}`;
  expect(got.output.dtype, where).toBe('f32');
  expect([...got.output.shape], where).toEqual([nHeads, nQ, headDim]);
  expect(got.output.data.length, where).toBe(nHeads * nQ * headDim);
  if (c.options.out) expect(got.output.data === c.options.out, `${where}: output.data is options.out`).toBe(true);

  // Output: max abs error, and exact zero rows for queries that see nothing.
  const out = got.output.data;
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < out.length; i++) {
    const e = Math.abs(out[i]! - ref.output[i]!);
    if (!(e <= worst)) {
      worst = e;
      worstAt = i;
      if (Number.isNaN(e)) break;
    }
  }
  if (worstAt >= 0) {
    const h = Math.floor(worstAt / (nQ * headDim));
    const i = Math.floor(worstAt / headDim) % nQ;
    const d = worstAt % headDim;
    const msg = `${where}: output max abs error ${worst} at [h=${h}, i=${i}, d=${d}]: expected ${ref.output[worstAt]}, got ${out[worstAt]} (tolerance ${OUT_TOL * c.vMax})`;
    expect(worst, msg).toBeLessThanOrEqual(OUT_TOL * c.vMax);
  }
  for (let r = 0; r < nHeads * nQ; r++) {
    if (ref.lse[r] !== -Infinity) continue;
    for (let d = 0; d < headDim; d++) {
      const x = out[r * headDim + d]!;
      if (x !== 0) {
        expect(x, `${where}: row [h=${Math.floor(r / nQ)}, i=${r % nQ}] sees no key, so output must be 0 (d=${d})`).toBe(0);
      }
    }
  }

  // lse and keyMass: find the first violation, then assert once (per-element
  // expect calls would dominate the run time).
  if (c.options.returnLse) {
    expect(got.lse, `${where}: lse requested`).toBeDefined();
    const lse = got.lse!;
    expect([...lse.shape], where).toEqual([nHeads, nQ]);
    expect(lse.data.length, where).toBe(nHeads * nQ);
    for (let r = 0; r < nHeads * nQ; r++) {
      const e = ref.lse[r]!;
      const g = lse.data[r]!;
      const ok = e === -Infinity ? g === -Infinity : Math.abs(g - e) <= LSE_TOL * Math.max(1, Math.abs(e));
      if (!ok) {
        expect(ok, `${where}: lse[h=${Math.floor(r / nQ)}, i=${r % nQ}] expected ${e}, got ${g} (tolerance ${LSE_TOL} * max(1, |lse|))`).toBe(true);
      }
    }
  } else {
    expect(got.lse, `${where}: lse not requested`).toBeUndefined();
  }

  if (c.options.returnKeyMass) {
    expect(got.keyMass, `${where}: keyMass requested`).toBeDefined();
    const km = got.keyMass!;
    expect([...km.shape], where).toEqual([nKvHeads, nKv]);
    expect(km.data.length, where).toBe(nKvHeads * nKv);
    for (let r = 0; r < nKvHeads * nKv; r++) {
      const e = ref.keyMass[r]!;
      const g = km.data[r]!;
      const ok = e === 0 ? g === 0 : Math.abs(g - e) <= MASS_RTOL * e + MASS_ATOL;
      if (!ok) {
        expect(ok, `${where}: keyMass[kvHead=${Math.floor(r / nKv)}, p=${r % nKv}] expected ${e}, got ${g}${e === 0 ? ' (no query sees this key: must be exactly 0)' : ` (tolerance ${MASS_RTOL} * ref + ${MASS_ATOL})`}`).toBe(true);
      }
    }
  } else {
    expect(got.keyMass, `${where}: keyMass not requested`).toBeUndefined();
  }
}

/** Largest abs difference between two same-length arrays (NaN counts as Infinity). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(e)) {
      if (Number.isNaN(a[i]!) && Number.isNaN(b[i]!)) continue;
      if (a[i] === b[i]) continue; // equal infinities
      return Infinity;
    }
    if (e > m) m = e;
  }
  return m;
}

/** Largest |a - b| / max(|a|, |b|, floor) (NaN counts as Infinity). */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const e = Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(a[i]!), Math.abs(b[i]!), floor);
    if (!(e <= m)) m = Number.isNaN(e) ? Infinity : e;
  }
  return m;
}
