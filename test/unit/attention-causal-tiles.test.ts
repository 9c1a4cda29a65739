// Causal masking at the kernels' tile boundaries, on every ISA path this CPU
// has, against the float64 reference (test/reference/attention.ts).
//
// Tiles (native/attention/attention_kernel.inl, ops_*.h):
//   prefill  BK = 64 keys per tile; BQ = QV * W query rows per task:
//            scalar 4, avx2 16, avx512 64. A tile is masked only when its
//            highest key position passes the first row's limit diag + i0
//            (diag = nKv - nQ), so an off-by-one there lets row i0 see the
//            key diag + i0 + 1. Sweeping diag over 0..BQ+1 and nQ across
//            1..2 key tiles puts that key at every tile edge on every path.
//   decode   group * nQ <= 32 rows; keys in chunks of 256.
// Two checks: the output matches the reference (within OUT_TOL * max|v|,
// see helpers.ts), and a value row hidden from a query by causality can be
// set to 1000 without moving that query's output.
import { describe, expect, test } from 'vitest';
import { attention, type Isa } from '../../lib/index.js';
import { buildCase, expectMatches, OUT_TOL, referenceFor, type BuiltCase, type CaseSpec } from './helpers.js';
import { isasOnThisCpu, withIsa } from './isa.js';

const PREFILL_NQ = [33, 63, 64, 65, 80, 129];
const DIAGS = [0, 1, 2, 3, 4, 5, 15, 16, 17, 31, 47, 61, 62, 63, 64, 65];
const DECODE = [
  { nQ: 1, nKv: [255, 256, 257, 512, 513] },
  { nQ: 3, nKv: [256, 257, 258, 259, 511, 512, 513] },
];

function prefillSpecs(): CaseSpec[] {
  const specs: CaseSpec[] = [];
  for (const nQ of PREFILL_NQ) {
    for (const diag of DIAGS) {
      specs.push({ name: `prefill-q${nQ}-diag${diag}`, nHeads: 2, nKvHeads: 1, nQ, nKv: nQ + diag, headDim: 8, causal: true, qAmp: 2, returnLse: true, returnKeyMass: true });
    }
  }
  return specs;
}

function decodeSpecs(): CaseSpec[] {
  return DECODE.flatMap(({ nQ, nKv }) => nKv.map((n) => ({
    name: `decode-q${nQ}-kv${n}`, nHeads: 4, nKvHeads: 2, nQ, nKv: n, headDim: 8, causal: true, qAmp: 2, returnLse: true, returnKeyMass: true,
  })));
}

const cases = new Map<string, BuiltCase>();
function get(spec: CaseSpec): BuiltCase {
  let c = cases.get(spec.name);
  if (!c) cases.set(spec.name, (c = buildCase(spec)));
  return c;
}

/**
 * Sets v[*, p, *] = 1000 for one key position p and checks that every query
 * row i with p > diag + i keeps the output the reference gives without the
 * change. Returns the number of rows checked.
 */
function hiddenKeyStaysHidden(c: BuiltCase, p: number, label: string): number {
  const { nHeads, nKvHeads, nQ, nKv, headDim } = c.spec;
  const diag = nKv - nQ;
  const ref = referenceFor(c).output;
  const v = c.v.data as Float32Array;
  const saved = new Float32Array(nKvHeads * headDim);
  for (let h = 0; h < nKvHeads; h++) {
    for (let d = 0; d < headDim; d++) {
      saved[h * headDim + d] = v[(h * nKv + p) * headDim + d]!;
      v[(h * nKv + p) * headDim + d] = 1000;
    }
  }
  let checked = 0;
  try {
    const out = attention(c.q, c.k, c.v, { causal: true }).output.data;
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < nQ && p > diag + i; i++) {
        for (let d = 0; d < headDim; d++) {
          const at = (h * nQ + i) * headDim + d;
          const err = Math.abs(out[at]! - ref[at]!);
          if (!(err <= OUT_TOL * c.vMax)) {
            expect.fail(`${label}: key ${p} is in the future of query ${i} (diag ${diag}) yet v[${p}] = 1000 moved output [h=${h}, i=${i}, d=${d}] by ${err}`);
          }
        }
        checked++;
      }
    }
  } finally {
    for (let h = 0; h < nKvHeads; h++) for (let d = 0; d < headDim; d++) v[(h * nKv + p) * headDim + d] = saved[h * headDim + d]!;
  }
  return checked;
}

describe.each(isasOnThisCpu().map((isa) => [isa] as [Isa]))('causal attention at tile edges (isa %s)', (isa) => {
  test('prefill: every nQ x diag case matches the float64 reference', () => {
    const specs = prefillSpecs();
    withIsa(isa, () => {
      for (const spec of specs) {
        const c = get(spec);
        expectMatches(attention(c.q, c.k, c.v, c.options), c, referenceFor(c), `isa=${isa}`);
      }
    });
    expect(specs.length).toBe(PREFILL_NQ.length * DIAGS.length);
  });

  test('prefill: a key hidden by causality moves no earlier query, at every tile edge', () => {
    let checked = 0;
    withIsa(isa, () => {
      for (const spec of prefillSpecs()) {
        const c = get(spec);
        const diag = spec.nKv - spec.nQ;
        // The first future key of every row (diag + i + 1) covers each edge of every row block.
        for (let i = 0; i + diag + 1 < spec.nKv; i++) checked += hiddenKeyStaysHidden(c, diag + i + 1, `isa=${isa} ${spec.name}`);
      }
    });
    expect(checked).toBeGreaterThan(0);
  });

  test('decode: chunk edges match the float64 reference', () => {
    const specs = decodeSpecs();
    withIsa(isa, () => {
      for (const spec of specs) {
        const c = get(spec);
        expectMatches(attention(c.q, c.k, c.v, c.options), c, referenceFor(c), `isa=${isa}`);
        for (let p = spec.nKv - spec.nQ + 1; p < spec.nKv; p++) hiddenKeyStaysHidden(c, p, `isa=${isa} ${spec.name}`);
      }
    });
    expect(specs.length).toBeGreaterThan(0);
  });
});
