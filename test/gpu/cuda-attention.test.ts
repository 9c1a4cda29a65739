// CUDA attention (lib/cuda.ts -> native/cuda) against the CPU attention() on
// awkward sizes: headDim 64/128/256, nKv 0/1/17/4099/32768, GQA groups 1, 3,
// 4, 8 and 12 (group x nQ rows per KV head: 1 to 84, so 1, 2, 4 and 8-row
// slices and partial slices), causal and not, nQ 1/7 (decode), 100/300
// (prefill, partial 128-row and 64-key tiles), f16 and bf16, strided K/V,
// sparse decode over index lists (repeats, causal limits on positions), and
// the decode-only options softcap, treeMask (random, chain and flat trees,
// with causal, indices, nQ > 16 on path 'auto') and returnKeyMass (dense,
// sparse with repeats, 84-row groups split over slices, without returnLse).
//
// Without the CUDA build or a device every comparison SKIPS (the describe
// title and a console line give the reason) and one test checks that the
// binding refuses with code ERR_NO_CUDA instead.
//
// Tolerances (|gpu - cpu| <= TOL * max|v| on the output; |gpu - cpu| <=
// LSE_TOL * max(1, |lse|) on lse; rows that see no key: exactly 0 and -inf):
// - decode: f32 math on exactly converted K/V, like the CPU; both are within
//   ~2e-5 * max|v| of float64 (test/unit/helpers.ts), so DECODE_TOL = 1e-4.
// - prefill: tensor cores take q and the probabilities P in the K/V dtype.
//   The CPU reference gets the same rounded q, so what remains is P's
//   rounding: |sum (p~ - p) v| / l <= u * max|v| with unit roundoff u =
//   2^-11 (f16) or 2^-8 (bf16); tolerance 2u. lse comes from the f32 P sums:
//   f32-level (LSE_TOL = 1e-4).
// - keyMass (decode): |gpu - cpu| <= MASS_RTOL * cpu + MASS_ATOL. Each
//   probability is exp(logit - lse) on both sides with f32 logits and lse
//   (relative ~1e-5 apart at these logit sizes), summed over <= 84 rows in f32;
//   MASS_RTOL = 1e-4. A key no row sees is exactly 0 on both sides (masked
//   logits give exp(-inf) = 0, unlisted positions are never written).
import { describe, expect, test } from 'vitest';
import { attention, castTo, toF32, type AttentionResult, type Tensor } from '../../lib/index.js';
import { cudaAttention, cudaAvailability, type CudaAttentionPath } from '../../lib/cuda.js';
import { native } from '../../lib/native.js';
import { buildCase, type BuiltCase, type CaseSpec } from '../unit/helpers.js';

const DECODE_TOL = 1e-4;
const PREFILL_TOL: Record<'f16' | 'bf16', number> = { f16: 2 * 2 ** -11, bf16: 2 * 2 ** -8 };
const LSE_TOL = 1e-4;
const MASS_RTOL = 1e-4;
const MASS_ATOL = 1e-6;

const cuda = cudaAvailability();
if (!cuda.available) console.warn(`test/gpu: CUDA attention tests skipped: ${cuda.reason}`);
const title = cuda.available ? `CUDA attention on ${cuda.devices}` : `CUDA attention (skipped: ${cuda.reason})`;

interface GpuCase extends CaseSpec {
  path: CudaAttentionPath;
}

const kv = (dtype: 'f16' | 'bf16') => ({ kDtype: dtype, vDtype: dtype });

const CASES: GpuCase[] = ([
  // Decode: nQ 1 and 7, every slice size, chunk edges at 4099 and 32768.
  { name: 'dec-d128-kv1-g1-q1-f16', nHeads: 2, nKvHeads: 2, nQ: 1, nKv: 1, headDim: 128, ...kv('f16'), path: 'decode' },
  { name: 'dec-d64-kv17-g4-q1-bf16', nHeads: 8, nKvHeads: 2, nQ: 1, nKv: 17, headDim: 64, ...kv('bf16'), path: 'decode' },
  { name: 'dec-d128-kv4099-g3-q1-f16', nHeads: 6, nKvHeads: 2, nQ: 1, nKv: 4099, headDim: 128, ...kv('f16'), path: 'decode' },
  { name: 'dec-d128-kv32768-g4-q1-bf16', nHeads: 32, nKvHeads: 8, nQ: 1, nKv: 32768, headDim: 128, ...kv('bf16'), path: 'decode' },
  { name: 'dec-d128-kv32768-g4-q1-f16-peaky', nHeads: 8, nKvHeads: 2, nQ: 1, nKv: 32768, headDim: 128, ...kv('f16'), qAmp: 8, path: 'decode' },
  { name: 'dec-d64-kv4099-g8-q1-f16', nHeads: 8, nKvHeads: 1, nQ: 1, nKv: 4099, headDim: 64, ...kv('f16'), path: 'decode' },
  { name: 'dec-d128-kv17-g12-q7-bf16-causal', nHeads: 12, nKvHeads: 1, nQ: 7, nKv: 17, headDim: 128, ...kv('bf16'), causal: true, path: 'decode' },
  { name: 'dec-d64-kv4099-g2-q7-f16-causal', nHeads: 4, nKvHeads: 2, nQ: 7, nKv: 4099, headDim: 64, ...kv('f16'), causal: true, path: 'decode' },
  { name: 'dec-d256-kv517-g1-q1-bf16', nHeads: 3, nKvHeads: 3, nQ: 1, nKv: 517, headDim: 256, ...kv('bf16'), path: 'decode' },
  { name: 'dec-d128-kv4-g1-q7-f16-causal-short', nHeads: 2, nKvHeads: 2, nQ: 7, nKv: 4, headDim: 128, ...kv('f16'), causal: true, path: 'decode' },
  { name: 'dec-d128-kv300-g4-q1-f16-strided', nHeads: 8, nKvHeads: 2, nQ: 1, nKv: 300, headDim: 128, ...kv('f16'), kvLayout: { rowPad: 8, capacity: 310 }, path: 'auto' },
  // Prefill: causal 100x100, partial tiles, GQA, nKv < nQ (rows that see nothing).
  { name: 'pre-d128-kv100-g1-q100-f16-causal', nHeads: 2, nKvHeads: 2, nQ: 100, nKv: 100, headDim: 128, ...kv('f16'), causal: true, path: 'prefill' },
  { name: 'pre-d128-kv100-g1-q100-bf16-causal', nHeads: 2, nKvHeads: 2, nQ: 100, nKv: 100, headDim: 128, ...kv('bf16'), causal: true, path: 'prefill' },
  { name: 'pre-d64-kv17-g4-q100-f16', nHeads: 4, nKvHeads: 1, nQ: 100, nKv: 17, headDim: 64, ...kv('f16'), path: 'prefill' },
  { name: 'pre-d128-kv4099-g4-q300-bf16-causal', nHeads: 8, nKvHeads: 2, nQ: 300, nKv: 4099, headDim: 128, ...kv('bf16'), causal: true, path: 'auto' },
  { name: 'pre-d64-kv1-g1-q300-bf16', nHeads: 1, nKvHeads: 1, nQ: 300, nKv: 1, headDim: 64, ...kv('bf16'), path: 'prefill' },
  { name: 'pre-d128-kv150-g2-q200-f16-causal-blank', nHeads: 2, nKvHeads: 1, nQ: 200, nKv: 150, headDim: 128, ...kv('f16'), causal: true, path: 'prefill' },
  { name: 'pre-d64-kv4099-g1-q130-f16-peaky', nHeads: 1, nKvHeads: 1, nQ: 130, nKv: 4099, headDim: 64, ...kv('f16'), qAmp: 4, path: 'prefill' },
  // Sparse decode (indices; buildCase repeats one index per head): nSel 1, 17,
  // 300, 4099; causal limits on positions; rows that see nothing.
  { name: 'sparse-d128-kv100-g1-q1-sel1-bf16', nHeads: 2, nKvHeads: 2, nQ: 1, nKv: 100, headDim: 128, ...kv('bf16'), indices: { nSel: 1 }, path: 'auto' },
  { name: 'sparse-d128-kv4099-g4-q1-sel17-f16', nHeads: 8, nKvHeads: 2, nQ: 1, nKv: 4099, headDim: 128, ...kv('f16'), indices: { nSel: 17 }, path: 'decode' },
  { name: 'sparse-d64-kv32768-g8-q1-sel4099-bf16', nHeads: 16, nKvHeads: 2, nQ: 1, nKv: 32768, headDim: 64, ...kv('bf16'), indices: { nSel: 4099, strided: true }, path: 'decode' },
  { name: 'sparse-d128-kv517-g2-q7-sel300-f16-causal', nHeads: 4, nKvHeads: 2, nQ: 7, nKv: 517, headDim: 128, ...kv('f16'), indices: { nSel: 300 }, causal: true, path: 'decode' },
  { name: 'sparse-d256-kv50-g1-q7-sel9-bf16-causal-allmasked', nHeads: 1, nKvHeads: 1, nQ: 7, nKv: 50, headDim: 256, ...kv('bf16'), indices: { nSel: 9, allMasked: true }, causal: true, path: 'decode' },
  // Cross-paths: prefill on a decode shape, decode on a prefill shape.
  { name: 'pre-d128-kv4099-g1-q1-f16', nHeads: 2, nKvHeads: 2, nQ: 1, nKv: 4099, headDim: 128, ...kv('f16'), path: 'prefill' },
  { name: 'dec-d64-kv700-g1-q20-bf16-causal', nHeads: 2, nKvHeads: 2, nQ: 20, nKv: 700, headDim: 64, ...kv('bf16'), causal: true, path: 'decode' },
  // Decode-only options. softcap with peaky logits (qAmp: logits well past
  // the cap), alone and with trees; trees over the last nQ keys; key mass.
  { name: 'cap-d128-kv4099-g4-q1-f16-mass', nHeads: 8, nKvHeads: 2, nQ: 1, nKv: 4099, headDim: 128, ...kv('f16'), qAmp: 6, softcap: 2.5, returnKeyMass: true, path: 'decode' },
  { name: 'cap-d256-kv517-g1-q7-bf16-causal', nHeads: 2, nKvHeads: 2, nQ: 7, nKv: 517, headDim: 256, ...kv('bf16'), qAmp: 4, softcap: 1.5, causal: true, path: 'auto' },
  { name: 'tree-d128-kv517-g3-q7-bf16-random-mass', nHeads: 6, nKvHeads: 2, nQ: 7, nKv: 517, headDim: 128, ...kv('bf16'), tree: 'random', returnKeyMass: true, path: 'decode' },
  { name: 'tree-d64-kv300-g2-q16-f16-chain-causal-cap', nHeads: 4, nKvHeads: 2, nQ: 16, nKv: 300, headDim: 64, ...kv('f16'), tree: 'chain', causal: true, softcap: 3, qAmp: 4, returnKeyMass: true, path: 'decode' },
  { name: 'tree-d256-kv1000-g1-q40-bf16-flat-auto', nHeads: 1, nKvHeads: 1, nQ: 40, nKv: 1000, headDim: 256, ...kv('bf16'), tree: 'flat', returnKeyMass: true, path: 'auto' },
  { name: 'tree-d64-kv9-g4-q9-f16-random-alltree', nHeads: 4, nKvHeads: 1, nQ: 9, nKv: 9, headDim: 64, ...kv('f16'), tree: 'random', returnKeyMass: true, path: 'decode' },
  { name: 'tree-sparse-d128-kv60-g2-q5-sel40-f16-mass', nHeads: 4, nKvHeads: 2, nQ: 5, nKv: 60, headDim: 128, ...kv('f16'), tree: 'random', indices: { nSel: 40 }, returnKeyMass: true, path: 'decode' },
  { name: 'mass-d128-kv32768-g4-q1-bf16', nHeads: 32, nKvHeads: 8, nQ: 1, nKv: 32768, headDim: 128, ...kv('bf16'), returnKeyMass: true, path: 'decode' },
  { name: 'mass-d128-kv17-g12-q7-bf16-causal', nHeads: 12, nKvHeads: 1, nQ: 7, nKv: 17, headDim: 128, ...kv('bf16'), causal: true, returnKeyMass: true, path: 'decode' },
  { name: 'mass-d64-kv4099-g2-q3-f16-nolse-strided', nHeads: 4, nKvHeads: 2, nQ: 3, nKv: 4099, headDim: 64, ...kv('f16'), kvLayout: { rowPad: 8, capacity: 4110 }, returnKeyMass: true, returnLse: false, path: 'auto' },
  { name: 'mass-sparse-d128-kv517-g2-q7-sel300-f16-causal', nHeads: 4, nKvHeads: 2, nQ: 7, nKv: 517, headDim: 128, ...kv('f16'), indices: { nSel: 300 }, causal: true, returnKeyMass: true, path: 'decode' },
  { name: 'mass-sparse-d256-kv50-g1-q7-sel9-bf16-causal-allmasked', nHeads: 1, nKvHeads: 1, nQ: 7, nKv: 50, headDim: 256, ...kv('bf16'), indices: { nSel: 9, allMasked: true }, causal: true, returnKeyMass: true, path: 'decode' },
] as GpuCase[]).map((s) => ({ returnLse: true, ...s }));

/** q rounded to the K/V dtype and back: what the prefill tensor cores see. */
function roundedQ(q: Tensor<'f32'>, dtype: 'f16' | 'bf16'): Tensor<'f32'> {
  return toF32(castTo(q, dtype));
}

function compare(gpu: AttentionResult, cpu: AttentionResult, c: BuiltCase, tol: number): void {
  const { nQ, headDim } = c.spec;
  const where = `[${c.spec.name}]`;
  const out = gpu.output.data;
  const ref = cpu.output.data;
  let worst = 0;
  let worstAt = 0;
  for (let i = 0; i < out.length; i++) {
    const e = Math.abs(out[i]! - ref[i]!);
    if (!(e <= worst)) {
      worst = e;
      worstAt = i;
      if (Number.isNaN(e)) break;
    }
  }
  const at = `[h=${Math.floor(worstAt / (nQ * headDim))}, i=${Math.floor(worstAt / headDim) % nQ}, d=${worstAt % headDim}]`;
  expect(worst, `${where} output max abs error ${worst} at ${at}: cpu ${ref[worstAt]}, gpu ${out[worstAt]} (tolerance ${tol * c.vMax})`)
    .toBeLessThanOrEqual(tol * c.vMax);
  expect(gpu.lse === undefined, `${where} lse returned iff requested`).toBe(cpu.lse === undefined);
  if (cpu.lse) {
    const lse = gpu.lse!.data;
    const lref = cpu.lse.data;
    for (let r = 0; r < lse.length; r++) {
      const e = lref[r]!;
      const g = lse[r]!;
      const ok = e === -Infinity ? g === -Infinity : Math.abs(g - e) <= LSE_TOL * Math.max(1, Math.abs(e));
      if (!ok) expect(ok, `${where} lse[h=${Math.floor(r / nQ)}, i=${r % nQ}]: cpu ${e}, gpu ${g}`).toBe(true);
      if (e === -Infinity) {
        for (let d = 0; d < headDim; d++) {
          if (out[r * headDim + d] !== 0) expect(out[r * headDim + d], `${where} row ${r} sees no key: output must be 0`).toBe(0);
        }
      }
    }
  }
  expect(gpu.keyMass === undefined, `${where} keyMass returned iff requested`).toBe(cpu.keyMass === undefined);
  if (cpu.keyMass) compareKeyMass(gpu.keyMass!, cpu.keyMass, c);
}

/** keyMass f32 [nKvHeads, nKv]: MASS_RTOL relative, exact 0 where the CPU has 0. */
function compareKeyMass(gpu: Tensor<'f32'>, cpu: Tensor<'f32'>, c: BuiltCase): void {
  const { nKvHeads, nKv } = c.spec;
  const where = `[${c.spec.name}]`;
  expect([...gpu.shape], where).toEqual([nKvHeads, nKv]);
  let positive = 0;
  for (let x = 0; x < nKvHeads * nKv; x++) {
    const e = cpu.data[x]!;
    const g = gpu.data[x]!;
    if (e > 0) positive++;
    const ok = e === 0 ? g === 0 : Math.abs(g - e) <= MASS_RTOL * e + MASS_ATOL;
    if (!ok) {
      expect(ok, `${where} keyMass[kvHead=${Math.floor(x / nKv)}, p=${x % nKv}]: cpu ${e}, gpu ${g}${e === 0 ? ' (no row sees this key: must be exactly 0)' : ''}`).toBe(true);
    }
  }
  // Every case has some row that sees some key, except the all-masked one.
  if (!c.spec.indices?.allMasked) expect(positive, `${where} keyMass has positive entries`).toBeGreaterThan(0);
}

// Kernel variants each case runs on (lib/cuda.ts): decode 0 (register loads)
// and 1 (cp.async pipeline); prefill 0 (32 rows per warp, 32-key tiles), 1 (16
// rows per warp, 64-key tiles) and 2 (the same code at 1 block/SM).
const VARIANTS = { decode: [0, 1], prefill: [0, 1, 2] } as const;

describe.skipIf(!cuda.available)(title, () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, spec) => {
    const c = buildCase(spec);
    const dtype = spec.kDtype as 'f16' | 'bf16';
    // 'auto' takes decode for nQ <= 16 or any decode-only option (lib/cuda.ts).
    const decodeOnly = spec.indices || spec.tree || spec.softcap !== undefined || spec.returnKeyMass;
    const prefill = spec.path === 'prefill' || (spec.path === 'auto' && spec.nQ > 16 && !decodeOnly);
    const q = prefill ? roundedQ(c.q, dtype) : c.q;
    const cpu = attention(q, c.k, c.v, c.options);
    for (const variant of VARIANTS[prefill ? 'prefill' : 'decode']) {
      const gpu = cudaAttention(c.q, c.k, c.v, c.options, spec.path, variant);
      compare(gpu, cpu, { ...c, spec: { ...c.spec, name: `${c.spec.name} variant ${variant}` } }, prefill ? PREFILL_TOL[dtype] : DECODE_TOL);
    }
  });

  test('a bad variant is a RangeError', () => {
    const c = buildCase({ name: 'bad-variant', nHeads: 1, nKvHeads: 1, nQ: 1, nKv: 9, headDim: 64, ...kv('f16') });
    expect(() => cudaAttention(c.q, c.k, c.v, {}, 'decode', 2)).toThrow(/variant: expected 0 or 1 \(decode\)/);
    expect(() => cudaAttention(c.q, c.k, c.v, {}, 'prefill', 3)).toThrow(RangeError);
  });

  test('indices with nSel = 0: zero rows and lse -Infinity', () => {
    const c = buildCase({ name: 'sel0', nHeads: 2, nKvHeads: 1, nQ: 1, nKv: 9, headDim: 64, ...kv('f16') });
    const r = cudaAttention(c.q, c.k, c.v, { returnLse: true, indices: { dtype: 'i32', shape: [1, 0], data: new Int32Array(0) } });
    expect([...r.output.data].every((x) => x === 0)).toBe(true);
    expect([...r.lse!.data].every((x) => x === -Infinity)).toBe(true);
  });

  test('nKv = 0: zero rows and lse -Infinity on both paths', () => {
    for (const path of ['decode', 'prefill'] as const) {
      const q: Tensor<'f32'> = { dtype: 'f32', shape: [2, 3, 64], data: new Float32Array(2 * 3 * 64).fill(0.5) };
      const k: Tensor<'f16'> = { dtype: 'f16', shape: [1, 0, 64], data: new Uint16Array(0) };
      const out = new Float32Array(2 * 3 * 64).fill(NaN);
      const r = cudaAttention(q, k, k, { returnLse: true, out }, path);
      expect([...r.output.data].every((x) => x === 0), path).toBe(true);
      expect([...r.lse!.data].every((x) => x === -Infinity), path).toBe(true);
    }
  });

  test('unsupported inputs throw RangeError and leave out untouched', () => {
    const c = buildCase({ name: 'bad-d80', nHeads: 2, nKvHeads: 1, nQ: 1, nKv: 9, headDim: 80, ...kv('f16') });
    const out = new Float32Array(2 * 80).fill(7);
    expect(() => cudaAttention(c.q, c.k, c.v, { out }, 'decode')).toThrow(/headDim: expected 64, 128 or 256/);
    expect(out.every((x) => x === 7)).toBe(true);
    const d = buildCase({ name: 'bad-mask', nHeads: 1, nKvHeads: 1, nQ: 2, nKv: 5, headDim: 64, ...kv('bf16'), mask: 'bool' });
    expect(() => cudaAttention(d.q, d.k, d.v, d.options)).toThrow(RangeError);
    const f = buildCase({ name: 'bad-f32', nHeads: 1, nKvHeads: 1, nQ: 1, nKv: 5, headDim: 64 });
    expect(() => cudaAttention(f.q, f.k, f.v)).toThrow(/expected f16 or bf16/);
    const s = buildCase({ name: 'bad-sparse-prefill', nHeads: 1, nKvHeads: 1, nQ: 20, nKv: 30, headDim: 64, ...kv('f16'), indices: { nSel: 5 } });
    expect(() => cudaAttention(s.q, s.k, s.v, s.options, 'prefill')).toThrow(/indices: supported on the CUDA decode path only/);
    expect(() => cudaAttention(d.q, d.k, d.v, d.options)).toThrow(/mask: bool and additive masks are not supported on CUDA/);
  });

  test('softcap, treeMask and returnKeyMass on the prefill path: RangeError naming the option, out and keyMass untouched', () => {
    const c = buildCase({ name: 'bad-prefill-opts', nHeads: 2, nKvHeads: 1, nQ: 20, nKv: 30, headDim: 64, ...kv('f16') });
    const out = new Float32Array(2 * 20 * 64).fill(7);
    expect(() => cudaAttention(c.q, c.k, c.v, { out, softcap: 5 }, 'prefill')).toThrow(/softcap: supported on the CUDA decode path only/);
    expect(() => cudaAttention(c.q, c.k, c.v, { out, treeMask: new Int32Array(20).fill(-1) }, 'prefill')).toThrow(/treeMask: supported on the CUDA decode path only/);
    expect(() => cudaAttention(c.q, c.k, c.v, { out, returnKeyMass: true }, 'prefill')).toThrow(RangeError);
    expect(() => cudaAttention(c.q, c.k, c.v, { out, returnKeyMass: true }, 'prefill')).toThrow(/returnKeyMass: supported on the CUDA decode path only/);
    expect(out.every((x) => x === 7)).toBe(true);
  });

  test('returnKeyMass with nQ = 0, nKv = 0 and nSel = 0: zero mass (as the CPU)', () => {
    const k: Tensor<'f16'> = { dtype: 'f16', shape: [2, 5, 64], data: new Uint16Array(2 * 5 * 64).fill(0x3c00) };
    const q0: Tensor<'f32'> = { dtype: 'f32', shape: [4, 0, 64], data: new Float32Array(0) };
    const r0 = cudaAttention(q0, k, k, { returnKeyMass: true }, 'decode');
    expect([...r0.keyMass!.shape]).toEqual([2, 5]);
    expect([...r0.keyMass!.data].every((x) => x === 0)).toBe(true);
    const q1: Tensor<'f32'> = { dtype: 'f32', shape: [4, 1, 64], data: new Float32Array(4 * 64).fill(0.25) };
    const none: Tensor<'i32'> = { dtype: 'i32', shape: [2, 0], data: new Int32Array(0) };
    const r1 = cudaAttention(q1, k, k, { returnKeyMass: true, indices: none });
    expect([...r1.keyMass!.data].every((x) => x === 0)).toBe(true);
    expect([...r1.output.data].every((x) => x === 0)).toBe(true);
    const k0: Tensor<'f16'> = { dtype: 'f16', shape: [2, 0, 64], data: new Uint16Array(0) };
    const r2 = cudaAttention(q1, k0, k0, { returnKeyMass: true, returnLse: true });
    expect(r2.keyMass!.data.length).toBe(0);
    expect([...r2.lse!.data].every((x) => x === -Infinity)).toBe(true);
    // Equal keys: every key gets 1 / nKv of each of the group's 2 rows.
    const r3 = cudaAttention(q1, k, k, { returnKeyMass: true });
    for (const x of r3.keyMass!.data) expect(Math.abs(x - 2 / 5)).toBeLessThanOrEqual(1e-6);
  });
});

describe.runIf(!cuda.available)('CUDA attention without a device', () => {
  test('cudaAttention and cudaBenchAttention throw code ERR_NO_CUDA with the reason', () => {
    const c = buildCase({ name: 'no-cuda', nHeads: 2, nKvHeads: 1, nQ: 1, nKv: 17, headDim: 64, ...kv('f16') });
    let err: unknown;
    try {
      cudaAttention(c.q, c.k, c.v);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('ERR_NO_CUDA');
    expect((err as Error).message).toMatch(/no CUDA device available/);
    // The decode-only options reach the same check (no argument error first).
    const t = buildCase({ name: 'no-cuda-opts', nHeads: 2, nKvHeads: 1, nQ: 3, nKv: 17, headDim: 64, ...kv('f16'), tree: 'random', softcap: 4, returnKeyMass: true });
    expect(() => cudaAttention(t.q, t.k, t.v, t.options)).toThrow(expect.objectContaining({ code: 'ERR_NO_CUDA' }));
    expect(() =>
      native().cudaBenchAttention({
        nHeads: 32, nKvHeads: 8, nQ: 1, nKv: 1024, headDim: 128, kvDtype: 1, causal: false,
        warmup: 1, iters: 1, bandwidthBytes: 1 << 20,
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_NO_CUDA' }));
  });

  test('argument errors still come first (TypeError naming the field)', () => {
    expect(() => native().cudaAttention({} as never)).toThrow(TypeError);
  });
});
