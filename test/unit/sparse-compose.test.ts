// Sparse selection composed with the attention masks (issue 15: "causal masks
// and tree masks still compose with the selection"): a speculative tree of
// nQ nodes at the end of the keys, Quest / block selection over the
// summaries, then attention over the selected rows with the tree mask and
// with causal rows. Reference: float64 attention written in
// test/reference/attention.ts over the same indices and masks.
//
// Tolerance: OUT_TOL * max|v| (helpers.ts), as every attention test.
import { describe, expect, test } from 'vitest';
import { attention, blockSelect, blockSummaries, questPageSummaries, questSelect, type Tensor } from '../../lib/index.js';
import { decode3, referenceAttention } from '../reference/attention.js';
import { mulberry32 } from '../reference/random.js';
import { maxAbsDiff, OUT_TOL, randomTensor3 } from './helpers.js';

function vMax(v: Tensor<'f16' | 'f32'>): number {
  return decode3(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
}

describe('sparse selection with tree and causal masks', () => {
  // A tree of 6 nodes: two branches off the root, one of depth 3.
  const tree = [-1, 0, 0, 1, 3, 2];
  const H = 2, GROUP = 3, d = 40, nKv = 530, nQ = tree.length;

  for (const dtype of ['f32', 'f16'] as const) {
    test(`${dtype}: Quest and block selections attended with a tree mask, and causally, match float64 over the same rows`, () => {
      const rng = mulberry32(404);
      const k = randomTensor3(rng, dtype, [H, nKv, d], 2);
      const v = randomTensor3(rng, dtype, [H, nKv, d], 1);
      const q = randomTensor3(rng, 'f32', [H * GROUP, nQ, d], 1);
      const selections = [
        questSelect(q, questPageSummaries(k, { pageSize: 16 }), { budget: 96, recent: nQ }),
        blockSelect(q, blockSummaries(k, { blockSize: 32 }), { budget: 128 }),
      ];
      for (const indices of selections) {
        // The tree's own keys (the last nQ positions) are all selected.
        for (let h = 0; h < H; h++) {
          const row = Array.from(indices.data.subarray(h * indices.shape[1]!, (h + 1) * indices.shape[1]!));
          for (let t = nKv - nQ; t < nKv; t++) expect(row).toContain(t);
          expect(row.length).toBeLessThan(nKv);
        }
        for (const options of [{ indices, treeMask: tree }, { indices, causal: true }, { indices, treeMask: tree, causal: true }]) {
          const got = attention(q, k, v, options);
          const ref = referenceAttention(q, k, v, options);
          expect(maxAbsDiff(got.output.data, ref.output)).toBeLessThanOrEqual(OUT_TOL * vMax(v));
        }
        // The tree mask changes the result (a sibling's key is hidden).
        const plain = attention(q, k, v, { indices });
        const masked = attention(q, k, v, { indices, treeMask: tree });
        expect(maxAbsDiff(plain.output.data, masked.output.data)).toBeGreaterThan(1e-3);
      }
    });
  }
});
