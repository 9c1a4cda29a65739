// Every attention option, alone and combined, on decode shapes (nQ 1, 7) and
// prefill shapes (nQ 256), sync and async, against the float64 reference.
// Tolerances: helpers.ts.
import { describe, expect, test } from 'vitest';
import { attention, attentionAsync, type Tensor } from '../../lib/index.js';
import { buildCase, expectMatches, referenceFor, resetOut, type CaseSpec } from './helpers.js';

type Base = Omit<CaseSpec, 'name'>;

const BASES: Record<string, Base> = {
  'decode-q1': { nHeads: 8, nKvHeads: 1, nQ: 1, nKv: 1000, headDim: 111, kDtype: 'f16', vDtype: 'f16' },
  'decode-q7': { nHeads: 8, nKvHeads: 2, nQ: 7, nKv: 517, headDim: 80, kDtype: 'bf16', vDtype: 'bf16' },
  'prefill-q256': { nHeads: 4, nKvHeads: 1, nQ: 256, nKv: 300, headDim: 80, kDtype: 'f16', vDtype: 'f16' },
  // nQ == nKv: the tree / causal region covers every key (no prefix).
  'prefill-square': { nHeads: 2, nKvHeads: 2, nQ: 256, nKv: 256, headDim: 64 },
};

/** Each option alone, and the combinations that interact. Applied to every base. */
const OPTIONS: Record<string, (b: Base) => Partial<CaseSpec>> = {
  plain: () => ({}),
  causal: () => ({ causal: true }),
  scale: () => ({ scale: 0.37 }),
  'bool-mask': () => ({ mask: 'bool' }),
  'additive-mask': () => ({ mask: 'additive' }),
  'tree-random': () => ({ tree: 'random' }),
  'tree-chain': () => ({ tree: 'chain' }),
  'tree-flat': () => ({ tree: 'flat' }),
  indices: (b) => ({ indices: { nSel: Math.min(64, b.nKv) } }),
  'indices-strided': (b) => ({ indices: { nSel: Math.min(37, b.nKv), strided: true } }),
  'indices-more-than-nKv': (b) => ({ indices: { nSel: b.nKv + 9 } }),
  softcap: () => ({ softcap: 5, qAmp: 6 }),
  lse: () => ({ returnLse: true }),
  keyMass: () => ({ returnKeyMass: true }),
  out: () => ({ out: true }),
  'kv-view-cache': (b) => ({ kvLayout: { capacity: b.nKv + 100 } }),
  'kv-view-odd': (b) => ({ kvLayout: { rowPad: 3, capacity: b.nKv + 5, offset: 1 } }),
  'kv-head-stride-0': () => ({ kvLayout: { headStride0: true } }),
  'q-view': () => ({ qLayout: { rowPad: 5, offset: 1 } }),
  // Combinations.
  'causal+indices': (b) => ({ causal: true, indices: { nSel: Math.min(50, b.nKv) }, returnKeyMass: true, returnLse: true }),
  'tree+keyMass': () => ({ tree: 'random', returnKeyMass: true, returnLse: true }),
  'tree+causal': () => ({ tree: 'random', causal: true, returnLse: true }),
  'bool-mask+softcap': () => ({ mask: 'bool', softcap: 3, qAmp: 4, returnLse: true }),
  'additive-mask+softcap+keyMass': () => ({ mask: 'additive', softcap: 8, qAmp: 5, returnKeyMass: true }),
  'additive-mask+causal+lse+keyMass+out': () => ({ mask: 'additive', causal: true, returnLse: true, returnKeyMass: true, out: true }),
  'indices+bool-mask+views': (b) => ({
    mask: 'bool', indices: { nSel: Math.min(80, b.nKv), strided: true }, kvLayout: { rowPad: 8, capacity: b.nKv + 3 },
    returnKeyMass: true,
  }),
  everything: (b) => ({
    causal: true, scale: 0.2, softcap: 4, qAmp: 3, mask: 'additive', tree: 'random',
    indices: { nSel: Math.min(90, b.nKv), strided: true }, returnLse: true, returnKeyMass: true, out: true,
    kvLayout: { rowPad: 1, capacity: b.nKv + 7, offset: 2 }, qLayout: { rowPad: 2 },
  }),
};

/** Shapes where nothing or everything is masked, and empty inputs. */
const EDGES: CaseSpec[] = [
  // Causal with nQ > nKv: the first nQ - nKv queries see no key.
  { name: 'causal nQ 7 > nKv 3', nHeads: 4, nKvHeads: 2, nQ: 7, nKv: 3, headDim: 80, causal: true, returnLse: true, returnKeyMass: true, out: true },
  { name: 'causal nQ 256 > nKv 17', nHeads: 2, nKvHeads: 1, nQ: 256, nKv: 17, headDim: 111, kDtype: 'bf16', vDtype: 'bf16', causal: true, returnLse: true, returnKeyMass: true, out: true },
  // Indices that only name keys the causal rule hides from most queries.
  { name: 'indices all hidden by causal (q7)', nHeads: 8, nKvHeads: 2, nQ: 7, nKv: 517, headDim: 80, causal: true, indices: { nSel: 6, allMasked: true }, returnLse: true, returnKeyMass: true, out: true },
  { name: 'indices all hidden by causal (q256)', nHeads: 4, nKvHeads: 1, nQ: 256, nKv: 300, headDim: 64, causal: true, indices: { nSel: 4, allMasked: true }, returnLse: true, returnKeyMass: true, out: true },
  { name: 'nSel 0 (q1)', nHeads: 4, nKvHeads: 1, nQ: 1, nKv: 50, headDim: 64, indices: { nSel: 0 }, returnLse: true, returnKeyMass: true, out: true },
  { name: 'nSel 0 (q256)', nHeads: 2, nKvHeads: 2, nQ: 256, nKv: 50, headDim: 80, indices: { nSel: 0 }, returnLse: true, returnKeyMass: true, out: true },
  { name: 'nSel 1', nHeads: 4, nKvHeads: 2, nQ: 7, nKv: 50, headDim: 111, indices: { nSel: 1 }, returnLse: true, returnKeyMass: true },
  { name: 'nKv 0', nHeads: 2, nKvHeads: 1, nQ: 1, nKv: 0, headDim: 64, returnLse: true, returnKeyMass: true, out: true },
  { name: 'nQ 0', nHeads: 2, nKvHeads: 1, nQ: 0, nKv: 17, headDim: 64, returnLse: true, returnKeyMass: true },
  // A speculative step: an 81-node tree behind 1000 committed keys (tiles and chunks before the tree skip the tree check).
  { name: 'spec tree of 81 nodes behind 1000 keys (GQA 4, f16)', nHeads: 8, nKvHeads: 2, nQ: 81, nKv: 1081, headDim: 128, kDtype: 'f16', vDtype: 'f16', tree: 'random', returnLse: true },
  { name: 'spec tree of 5 nodes behind 1000 keys (decode path)', nHeads: 8, nKvHeads: 2, nQ: 5, nKv: 1005, headDim: 64, kDtype: 'f16', vDtype: 'f16', tree: 'chain', returnLse: true },
  { name: 'tree of nQ = nKv nodes, causal, bool mask', nHeads: 2, nKvHeads: 1, nQ: 17, nKv: 17, headDim: 80, tree: 'random', causal: true, mask: 'bool', returnLse: true, returnKeyMass: true },
];

function specsFor(): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const [opt, make] of Object.entries(OPTIONS)) {
    for (const [baseName, base] of Object.entries(BASES)) {
      out.push({ ...base, ...make(base), name: `${opt} / ${baseName}` });
    }
  }
  return out;
}

async function runBoth(spec: CaseSpec): Promise<void> {
  const c = buildCase(spec);
  const ref = referenceFor(c);
  resetOut(c);
  expectMatches(attention(c.q, c.k, c.v, c.options), c, ref, 'sync');
  resetOut(c);
  expectMatches(await attentionAsync(c.q, c.k, c.v, c.options), c, ref, 'async');
}

describe('attention options vs the reference', () => {
  for (const spec of specsFor()) test(spec.name, () => runBoth(spec));
});

describe('attention edge cases vs the reference', () => {
  for (const spec of EDGES) test(spec.name, () => runBoth(spec));
});

describe('attention leaves its inputs untouched', () => {
  test('q, k, v, mask, tree and indices are not written', async () => {
    const base = BASES['decode-q7']!;
    const c = buildCase({ ...base, ...OPTIONS.everything!(base), name: 'inputs untouched' });
    // Byte copies of every input (Buffer.equals: toEqual on big typed arrays is slow).
    const views: ArrayBufferView[] = [c.q.data, c.k.data, c.v.data, (c.options.mask as Tensor<'bool' | 'f32'>).data, c.options.treeMask as Int32Array, (c.options.indices as Tensor<'i32'>).data];
    const bytes = (x: ArrayBufferView) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    const before = views.map((x) => Buffer.from(bytes(x)));
    attention(c.q, c.k, c.v, c.options);
    await attentionAsync(c.q, c.k, c.v, c.options);
    views.forEach((x, j) => expect(bytes(x).equals(before[j]!), `input ${j} unchanged`).toBe(true));
  });

  test('a tree given as a plain number[] works like an Int32Array', () => {
    const base = BASES['decode-q7']!;
    const c = buildCase({ ...base, tree: 'random', returnLse: true, name: 'tree as array' });
    const asArray = { ...c.options, treeMask: Array.from(c.options.treeMask!) };
    const a = attention(c.q, c.k, c.v, c.options);
    const b = attention(c.q, c.k, c.v, asArray);
    expect(b.output.data).toEqual(a.output.data);
    expect(b.lse!.data).toEqual(a.lse!.data);
  });
});
