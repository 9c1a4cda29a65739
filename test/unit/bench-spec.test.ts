// `tokenpress bench spec` (bench/spec.ts): a quick run on the repository's
// README as the held-out text, checking the report's internal consistency
// and that speculative output equals plain decoding on the real byte model
// (greedy and seeded sampling, every drafter). No timing thresholds.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { containedDepth, novelShare, runSpecBench, type SpecBenchReport } from '../../bench/spec.js';

test('containedDepth follows one path of the tree', () => {
  const text = Uint8Array.from([1, 2, 3, 4, 5]);
  // root (text[0] = 1) -> 9 | 2 -> 7 | 3 -> 4
  const tree = { tokens: Int32Array.of(1, 9, 2, 7, 3, 4), parents: Int32Array.of(-1, 0, 0, 2, 2, 4) };
  expect(containedDepth(tree, text, 1)).toBe(3);
  expect(containedDepth({ tokens: Int32Array.of(1), parents: Int32Array.of(-1) }, text, 1)).toBe(0);
  expect(containedDepth(tree, text, 4)).toBe(0);
});

test('novelShare counts the continuation bytes that end an unseen 4-gram', () => {
  const enc = (t: string) => new TextEncoder().encode(t);
  expect(novelShare(enc('abcdabcd'), enc('abcd'))).toBe(0);       // every 4-gram seen before
  expect(novelShare(enc('abcd'), enc('wxyz'))).toBe(1);           // bcdw, cdwx, dwxy, wxyz: all new
  // 4-grams ending at e f g h X Y: fghe, ghef, hefg new; efgh seen; fghX, ghXY new.
  expect(novelShare(enc('abcdefgh'), enc('efghXY'))).toBeCloseTo(5 / 6, 12);
});

test('quick run: exact outputs, consistent figures', async () => {
  const dir = mkdtempSync(join(os.tmpdir(), 'tp-bench-spec-'));
  const text = new Uint8Array(readFileSync(new URL('../../README.md', import.meta.url)));
  const outFile = join(dir, 'spec.json');
  await runSpecBench({ quick: true, text, outFile, reps: 2, maxNodes: 9 });
  const r = JSON.parse(readFileSync(outFile, 'utf8')) as SpecBenchReport;
  expect(r.config.maxNodes).toBe(9);
  expect(r.generation.map((g) => [g.drafter, g.mode])).toEqual([
    ['none', 'greedy'], ['prompt-lookup', 'greedy'], ['token-recycling', 'greedy'],
    ['none', 'sampled'], ['prompt-lookup', 'sampled'], ['token-recycling', 'sampled'],
  ]);
  for (const g of r.generation) {
    expect(g.identicalToNone, `${g.drafter} ${g.mode}`).toBe(true);
    expect(g.tokens).toBe(r.config.prompts * r.config.tokens);
    expect(g.meanAcceptedPerCall).toBeCloseTo(g.tokens / g.targetCalls, 12);
    expect(g.callsPerToken).toBeCloseTo(g.targetCalls / g.tokens, 12);
    expect(g.accepted).toBeLessThanOrEqual(g.drafted);
    expect(g.drafted).toBeLessThanOrEqual(8 * g.targetCalls);  // maxNodes 9: at most 8 drafts per call
    // Each call emits its accepted drafts plus at most one new token.
    expect(g.tokens).toBeLessThanOrEqual(g.accepted + g.targetCalls);
    expect(g.novel.prompts).toBeLessThanOrEqual(g.prompts);
    expect(g.novel.tokens).toBeLessThanOrEqual(g.tokens);
    if (g.novel.targetCalls > 0) expect(g.novel.meanAcceptedPerCall).toBeCloseTo(g.novel.tokens / g.novel.targetCalls, 12);
    if (g.drafter === 'none') {
      expect(g.drafted).toBe(0);
      expect(g.targetCalls).toBe(g.tokens);
    }
  }
  expect(r.teacherForced.map((t) => t.drafter)).toEqual(['prompt-lookup', 'token-recycling']);
  for (const t of r.teacherForced) {
    expect(t.positions).toBe(r.config.teacherBytes - 1);
    expect(t.firstHit).toBeGreaterThanOrEqual(0);
    expect(t.meanContained).toBeGreaterThanOrEqual(t.firstHit);
    expect(t.novel.positions).toBeLessThanOrEqual(t.positions);
  }
  for (const c of r.treeCost) {
    expect(c.nodes).toBe(81);
    expect(c.ratio).toBeCloseTo(c.treeMs / c.stepMs, 12);
    expect(c.treeRoofMs).toBeGreaterThan(c.stepRoofMs);
  }
  for (const d of r.drafterCost) {
    expect(d.nodes).toBe(81);
    expect(d.shareOfTreePassTopK).toBeCloseTo((d.draftUs + d.updateTopKUs) / 1e3 / r.treeCost[0]!.treeMs, 12);
  }
}, 120_000);
