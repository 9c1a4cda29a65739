// The decode path (group * nQ <= 32 query rows per KV head) cuts every KV
// head into fixed chunks whatever the thread count, and a task only decides
// which worker computes a run of chunks, never how: its results (output, lse,
// key mass) must be bit-identical for 1 and 2 threads, on every ISA path this
// CPU has. Sizes cross chunk (256 or 1024 keys) and sub-block (64 keys) edges, and
// cover strided rows, sparse indices, masks and GQA groups of 1/4/8.
import { afterAll, describe, expect, test } from 'vitest';
import { attention, backendInfo, setThreads } from '../../lib/index.js';
import { buildCase, type CaseSpec } from './helpers.js';
import { isasOnThisCpu, withIsa } from './isa.js';

const CASES: CaseSpec[] = ([
  { name: 'dec-d128-kv4099-g1-f32', nHeads: 4, nKvHeads: 4, nQ: 1, nKv: 4099, headDim: 128 },
  { name: 'dec-d128-kv3001-g4-f16', nHeads: 8, nKvHeads: 2, nQ: 1, nKv: 3001, headDim: 128, kDtype: 'f16', vDtype: 'f16' },
  { name: 'dec-d80-kv1100-g8-q3-bf16', nHeads: 8, nKvHeads: 1, nQ: 3, nKv: 1100, headDim: 80, kDtype: 'bf16', vDtype: 'bf16' },
  { name: 'dec-d64-kv2000-g2-f16-sparse', nHeads: 4, nKvHeads: 2, nQ: 1, nKv: 2000, headDim: 64, kDtype: 'f16', vDtype: 'f16', indices: { nSel: 777 } },
  { name: 'dec-d96-kv4100-g1-f32-longchunks', nHeads: 8, nKvHeads: 8, nQ: 1, nKv: 4100, headDim: 96 },
  { name: 'dec-d111-kv900-g4-q2-f32-causal-mask', nHeads: 4, nKvHeads: 1, nQ: 2, nKv: 900, headDim: 111, causal: true, mask: 'bool' },
] as CaseSpec[]).map((s) => ({ returnLse: true, returnKeyMass: true, ...s }));

const initialThreads = backendInfo().threads;
afterAll(() => setThreads(initialThreads));

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Index of the first element whose bits differ, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  const x = bitsOf(a), y = bitsOf(b);
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

describe('decode results are bit-identical across thread counts', () => {
  for (const isa of isasOnThisCpu()) {
    for (const spec of CASES) {
      test(`${isa}: ${spec.name}`, () => {
        const c = buildCase(spec);
        withIsa(isa, () => {
          setThreads(1);
          const one = attention(c.q, c.k, c.v, c.options);
          setThreads(2);
          const two = attention(c.q, c.k, c.v, c.options);
          expect(firstBitDifference(one.output.data, two.output.data), 'output').toBe(-1);
          expect(firstBitDifference(one.lse!.data, two.lse!.data), 'lse').toBe(-1);
          expect(firstBitDifference(one.keyMass!.data, two.keyMass!.data), 'keyMass').toBe(-1);
          // Not vacuous: the outputs carry values.
          expect(one.output.data.some((x) => x !== 0)).toBe(true);
        });
      });
    }
  }
});
