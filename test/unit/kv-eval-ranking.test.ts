// Rank correlations (lib/kv/eval/ranking.ts) against the slow float64
// references of test/reference/ranking.ts, ties and degenerate inputs
// included; the per-budget comparison of reports; `tokenpress eval rank`
// through commander, in process (lib/cli/eval-rank.ts).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test, vi } from 'vitest';
import { Command } from 'commander';
import {
  averageRanks, compareRankings, defaultPredictorMetrics, defaultTruthMetrics, formatRankingBrief, formatRankingTable, kendallTauB,
  meanReport, parseMetric, rankingReportFrom, spearman, truthStandardError, type RankingComparison,
} from '../../lib/kv/eval/ranking.js';
import { registerEvalRank } from '../../lib/cli/eval-rank.js';
import { kendallTauBRef, ranksRef, spearmanRef } from '../reference/ranking.js';
import { mulberry32, randomInt } from '../reference/random.js';

const dir = mkdtempSync(join(tmpdir(), 'tokenpress-rank-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('rank correlations', () => {
  test('documented values (scipy.stats examples)', () => {
    // scipy.stats.kendalltau([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) -> -0.47140452079103173 (tau-b, ties in both)
    expect(kendallTauB([12, 2, 1, 12, 2], [1, 4, 7, 1, 0])).toBeCloseTo(-0.47140452079103173, 14);
    // scipy.stats.spearmanr([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) -> 0.8207826816681233 (a tie in y)
    expect(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7])).toBeCloseTo(0.8207826816681233, 14);
    expect(spearman([1, 2, 3], [10, 20, 30])).toBe(1);
    expect(kendallTauB([1, 2, 3, 4], [9, 7, 5, 1])).toBe(-1);
    expect(Array.from(averageRanks([3, 1, 3, 2, 3]))).toEqual([4, 1, 4, 2, 4]);
  });

  test('match the float64 references on random inputs with many ties (n 2..60, and 2000)', () => {
    const rng = mulberry32(77);
    let checked = 0;
    for (let c = 0; c < 300; c++) {
      const n = c === 299 ? 2000 : randomInt(rng, 2, 60);
      const levels = randomInt(rng, 1, 8); // few distinct values: ties everywhere; 1 level: constant
      const x = Array.from({ length: n }, () => randomInt(rng, 0, levels - 1) * 0.25);
      const y = Array.from({ length: n }, (_, i) => (rng() < 0.5 ? x[i]! + randomInt(rng, -1, 1) : randomInt(rng, 0, levels)));
      expect(Array.from(averageRanks(x))).toEqual(ranksRef(x));
      const [rho, rhoRef] = [spearman(x, y), spearmanRef(x, y)];
      const [tau, tauRef] = [kendallTauB(x, y), kendallTauBRef(x, y)];
      if (Number.isNaN(rhoRef)) expect(rho).toBeNaN(); else expect(Math.abs(rho - rhoRef)).toBeLessThan(1e-12);
      if (Number.isNaN(tauRef)) expect(tau).toBeNaN(); else expect(Math.abs(tau - tauRef)).toBeLessThan(1e-12);
      if (!Number.isNaN(tauRef)) checked++;
    }
    expect(checked).toBeGreaterThan(200); // most cases are not degenerate
  });

  test('symmetric, and unchanged by monotone maps', () => {
    const x = [0.3, 0.1, 0.1, 0.9, 0.5, 0.5, 0.2];
    const y = [2, 1, 3, 3, 0, 5, 1];
    expect(kendallTauB(y, x)).toBeCloseTo(kendallTauB(x, y), 15);
    expect(spearman(y, x)).toBeCloseTo(spearman(x, y), 15);
    expect(kendallTauB(x.map((v) => Math.exp(v)), y)).toBeCloseTo(kendallTauB(x, y), 15);
    expect(spearman(x.map((v) => -v), y)).toBeCloseTo(-spearman(x, y), 15);
  });

  test('degenerate inputs: NaN for n < 2 or a constant side; errors name the argument', () => {
    expect(spearman([], [])).toBeNaN();
    expect(kendallTauB([1], [2])).toBeNaN();
    expect(spearman([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(kendallTauB([1, 2, 3], [4, 4, 4])).toBeNaN();
    expect(kendallTauB([1, 2], [1, 2])).toBe(1);
    expect(() => spearman([1, 2], [1])).toThrow(/^y: expected an array of the same length as x \(2\), received "length 1"$/);
    expect(() => kendallTauB([1, NaN], [1, 2])).toThrow(RangeError);
    expect(() => kendallTauB([1, NaN], [1, 2])).toThrow(/^x\[1\]: expected a finite number, received NaN$/);
    expect(() => spearman([1, 2], [1, Infinity])).toThrow(/^y\[1\]: expected a finite number/);
    expect(() => spearman(null as never, [1])).toThrow(TypeError);
  });
});

const row = (policy: string, fraction: number, m: Record<string, number | null>) => ({ policy, fraction, ...m });

describe('compareRankings', () => {
  const truth = rankingReportFrom({ rows: [
    row('a', 0.1, { lossDelta: 0.1, copyAccuracy: 1 }), row('b', 0.1, { lossDelta: 0.2, copyAccuracy: 0.5 }),
    row('c', 0.1, { lossDelta: 0.3, copyAccuracy: 0.5 }), row('d', 0.1, { lossDelta: 0.4, copyAccuracy: 0 }),
    row('a', 0.5, { lossDelta: 0.01, copyAccuracy: 1 }), row('b', 0.5, { lossDelta: 0.01, copyAccuracy: 1 }),
    row('c', 0.5, { lossDelta: 0.01, copyAccuracy: 1 }),
  ] }, 'real.json');
  // Predictor: the same order at 10% (errProbes lower is better), reversed needleRate; at 50% a value is null.
  const pred = rankingReportFrom({ rows: [
    row('a', 0.1 + 1e-12, { errProbes: 0.01, needleRate: 0 }), row('b', 0.1, { errProbes: 0.02, needleRate: 0.2 }),
    row('c', 0.1, { errProbes: 0.05, needleRate: 0.4 }), row('d', 0.1, { errProbes: 0.08, needleRate: 0.9 }),
    row('e', 0.1, { errProbes: 0.0, needleRate: 1 }), // not in the truth: left out
    row('a', 0.5, { errProbes: 0.3, needleRate: null }), row('b', 0.5, { errProbes: 0.1, needleRate: 1 }),
    row('c', 0.5, { errProbes: 0.2, needleRate: 1 }),
  ] }, 'syn.json');

  test('per budget rho, tau-b and top-1 over the shared policies', () => {
    const c = compareRankings(truth, parseMetric('lossDelta'), [
      { report: pred, metric: parseMetric('errProbes') }, { report: pred, metric: parseMetric('needleRate') },
    ]);
    expect(c.budgets).toEqual([0.1, 0.5]);
    const [err10, needle10] = c.cells[0]!;
    expect(err10!.policies).toEqual(['a', 'b', 'c', 'd']);
    expect(err10!.rho).toBe(1);
    expect(err10!.tau).toBe(1);
    expect(err10!.top1).toEqual({ predicted: ['a'], truth: ['a'], agree: true });
    expect(needle10!.rho).toBe(-1);
    expect(needle10!.top1).toEqual({ predicted: ['d'], truth: ['a'], agree: false });
    // 50%: the truth ties every policy: no correlation, no top-1 verdict; needleRate has a null row
    const [err50, needle50] = c.cells[1]!;
    expect(err50!.rho).toBeNaN();
    expect(err50!.top1).toBeNull();
    expect(needle50!.policies).toEqual(['b', 'c']);
    expect(c.summary[0]).toEqual({ meanRho: 1, meanTau: 1, top1Agree: 1, top1Budgets: 1 });
    expect(c.summary[1]).toEqual({ meanRho: -1, meanTau: -1, top1Agree: 0, top1Budgets: 1 });
  });

  test('copy accuracy with ties in the truth: tau-b and top-1 sets', () => {
    const c = compareRankings(truth, parseMetric('copyAccuracy'), [{ report: pred, metric: parseMetric('errProbes') }]);
    const cell = c.cells[0]![0]!;
    const x = [-0.01, -0.02, -0.05, -0.08];
    const y = [1, 0.5, 0.5, 0];
    expect(cell.tau).toBeCloseTo(kendallTauBRef(x, y), 14);
    expect(cell.rho).toBeCloseTo(spearmanRef(x, y), 14);
    expect(cell.top1!.agree).toBe(true);
    const table = formatRankingTable(c);
    expect(table).toMatch(/^truth: real\.json copyAccuracy \(higher is better\)$/m);
    expect(table).toMatch(/^10%\s+syn\.json errProbes\s+4\s+0\.95\s+0\.91\s+a \/ a\s+yes$/m);
    expect(table).toMatch(/^50%\s+syn\.json errProbes\s+3\s+-\s+-\s+no order\s+-$/m);
    expect(table).toMatch(/^mean\s+syn\.json errProbes\s+0\.95\s+0\.91\s+1\/1$/m);
  });

  test('the real-model report shape: nested cells by dotted path, rows without a budget left out', () => {
    const real = rankingReportFrom({ rows: [
      { policy: 'full', kind: 'full', fraction: null, loss: { delta: 0 }, needle: { accuracy: 1 } },
      { policy: 'a', kind: 'evict', fraction: 0.1, loss: { delta: 0.05, bitsPerByte: 2 }, needle: { accuracy: 0.5 } },
      { policy: 'b', kind: 'evict', fraction: 0.1, loss: { delta: 0.01, bitsPerByte: 2 }, needle: { accuracy: 0.75 } },
      { policy: 'c', kind: 'evict', fraction: 0.1, loss: { delta: 0.2 } }, // no needle cell: left out of needle.accuracy
      { policy: 'int8', kind: 'quant', fraction: null, loss: { delta: 0.001 } },
    ] }, 'model.json');
    expect(real.rows.map((r) => r.policy)).toEqual(['a', 'b', 'c']);
    expect(defaultTruthMetrics(real).map((m) => m.metric)).toEqual(['loss.delta', 'needle.accuracy']); // loss.bitsPerByte ranks as loss.delta does
    const loss = compareRankings(real, parseMetric('loss.delta'), [{ report: pred, metric: parseMetric('errProbes') }]);
    expect(loss.cells[0]![0]!.policies).toEqual(['a', 'b', 'c']);
    expect(loss.cells[0]![0]!.rho).toBeCloseTo(spearmanRef([-0.01, -0.02, -0.05], [-0.05, -0.01, -0.2]), 14);
    expect(loss.cells[0]![0]!.top1).toEqual({ predicted: ['a'], truth: ['b'], agree: false });
    const needle = compareRankings(real, parseMetric('needle.accuracy'), [{ report: pred, metric: parseMetric('needleRate') }]);
    expect(needle.cells[0]![0]!.policies).toEqual(['a', 'b']);
    expect(needle.cells[0]![0]!.tau).toBe(1);
    expect(needle.budgets).toEqual([0.1]);
  });

  test('meanReport: the mean over reports of the rows all of them have', () => {
    const other = rankingReportFrom({ rows: [
      row('a', 0.1, { errProbes: 0.03 }), row('b', 0.1, { errProbes: 0.0 }), row('c', 0.1, { errProbes: null }),
      { policy: 'd', fraction: 0.1, loss: { delta: 1 } }, // no errProbes: d is left out
    ] }, 'other.json');
    const m = meanReport([pred, other], 'errProbes', 'mean');
    expect(m.rows.map((r) => [r.policy, r.fraction])).toEqual([['a', 0.1 + 1e-12], ['b', 0.1]]); // fractions match within 1e-9
    expect(m.rows.map((r) => r.errProbes)).toEqual([(0.01 + 0.03) / 2, (0.02 + 0) / 2]);
    const nested = meanReport([rankingReportFrom({ rows: [{ policy: 'x', fraction: 0.5, loss: { delta: 2 } }] }, 'n'),
      rankingReportFrom({ rows: [{ policy: 'x', fraction: 0.5, loss: { delta: 4 } }] }, 'n2')], 'loss.delta', 'nm');
    expect(nested.rows).toEqual([{ policy: 'x', fraction: 0.5, 'loss.delta': 3 }]);
    expect(compareRankings(nested, parseMetric('loss.delta'), [{ report: nested, metric: parseMetric('loss.delta') }]).cells[0]![0]!.policies).toEqual(['x']);
    expect(() => meanReport([], 'errProbes', 'x')).toThrow(/^reports: expected at least one report, received 0$/);
  });

  test('formatRankingBrief: one line per predictor', () => {
    const c = compareRankings(truth, parseMetric('lossDelta'), [{ report: pred, metric: parseMetric('errProbes') }]);
    const text = formatRankingBrief([c]);
    expect(text).toMatch(/^truth: real\.json lossDelta \(lower is better\); Spearman rho \(Kendall tau-b\) per budget$/m);
    expect(text).toMatch(/^predictor\s+10%\s+50%\s+mean\s+top-1$/m);
    expect(text).toMatch(/^syn\.json errProbes\s+1\.00 \(1\.00\)\s+- \(-\)\s+1\.00 \(1\.00\)\s+1\/1$/m);
  });

  test('truth noise: standard errors and the pairs they resolve', () => {
    expect(truthStandardError({ loss: { delta: 0.1, deltaSe: 0.02 } }, 'loss.delta')).toBe(0.02);
    expect(truthStandardError({ needle: { accuracy: 0.2, trials: 25 } }, 'needle.accuracy')).toBeCloseTo(0.08, 15);
    expect(truthStandardError({ copyAccuracy: 0.5, trials: 4 }, 'copyAccuracy')).toBe(0.25);
    expect(truthStandardError({ lossDelta: 0.1 }, 'lossDelta')).toBeUndefined();
    expect(truthStandardError({ loss: { delta: 0.1, deltaSe: -1 } }, 'loss.delta')).toBeUndefined();
    const noisy = rankingReportFrom({ rows: [
      { policy: 'a', fraction: 0.1, loss: { delta: 0.0, deltaSe: 0.01 } },
      { policy: 'b', fraction: 0.1, loss: { delta: 0.02, deltaSe: 0.01 } }, // a-b: 0.02 < 2 * 0.0141: not resolved
      { policy: 'c', fraction: 0.1, loss: { delta: 0.1, deltaSe: 0.01 } }, // resolved from a and b
      { policy: 'a', fraction: 0.5, loss: { delta: 0.0 } },
    ] }, 'noisy.json');
    const c = compareRankings(noisy, parseMetric('loss.delta'), [{ report: noisy, metric: parseMetric('loss.delta') }]);
    expect(c.truthResolved).toEqual([{ resolved: 2, pairs: 3 }, null]);
    expect(formatRankingTable(c)).toMatch(/^\s+truth: 2\/3 pairs of its policies differ by more than 2 standard errors$/m);
    expect(formatRankingBrief([c])).toMatch(/^truth: pairs > 2 SE apart\s+2\/3\s+-$/m);
    expect(compareRankings(truth, parseMetric('lossDelta'), []).truthResolved).toEqual([null, null]);
  });

  test('default metrics, metric specs and the input contract', () => {
    expect(defaultTruthMetrics(truth).map((m) => m.metric)).toEqual(['lossDelta', 'copyAccuracy']);
    expect(defaultPredictorMetrics(pred).map((m) => m.metric)).toEqual(['errProbes', 'needleRate']);
    expect(defaultTruthMetrics(pred)).toEqual([]);
    expect(parseMetric('score:higher')).toEqual({ metric: 'score', direction: 'higher' });
    expect(parseMetric('errProbes:higher').direction).toBe('higher');
    expect(() => parseMetric('score', '--metric')).toThrow(/^--metric: expected a known metric .* or one with :higher or :lower, received "score"$/);
    expect(() => parseMetric('a:up')).toThrow(RangeError);
    const bad = (json: unknown) => () => rankingReportFrom(json, 'x.json');
    expect(bad([])).toThrow(/x\.json: not a ranking input .*expected an object with a "rows" array/);
    expect(bad({ rows: [{ fraction: 0.1 }] })).toThrow(/rows\[0\]\.policy: expected a policy name, received undefined/);
    expect(bad({ rows: [{ policy: 'a', fraction: 0 }] })).toThrow(/rows\[0\]\.fraction: expected a number in \(0, 1\] or null, received 0/);
    expect(bad({ rows: [{ policy: 'a', fraction: 0.1 }, { policy: 'a', fraction: 0.1 }] })).toThrow(/rows\[1\]: a second row for policy "a" at fraction 0\.1/);
    expect(bad({ rows: [null] })).toThrow(expect.objectContaining({ code: 'ERR_BAD_FILE' }));
  });
});

async function cli(args: string[]): Promise<string> {
  const logs: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => { logs.push(a.join(' ')); });
  const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: (s) => logs.push(s) });
  registerEvalRank(program.command('eval').exitOverride());
  for (const c of program.commands) for (const sub of c.commands) sub.exitOverride().configureOutput({ writeErr: () => undefined });
  await program.parseAsync(['node', 'tokenpress', 'eval', 'rank', ...args]);
  return logs.join('\n');
}

describe('tokenpress eval rank', () => {
  const write = (name: string, json: unknown) => { const f = join(dir, name); writeFileSync(f, typeof json === 'string' ? json : JSON.stringify(json)); return f; };
  const real = write('real.json', { rows: [row('h2o', 0.1, { lossDelta: 0.1 }), row('snapkv', 0.1, { lossDelta: 0.3 }), row('random', 0.1, { lossDelta: 0.9 })] });
  const syn = write('syn.json', { rows: [
    row('h2o', 0.1, { errProbes: 0.2, needleRate: 1, keep: 5 }), row('snapkv', 0.1, { errProbes: 0.1, needleRate: 1, keep: 5 }),
    row('random', 0.1, { errProbes: 0.5, needleRate: 0, keep: 5 }),
  ] });

  test('prints one table per truth metric; --json writes the comparisons (NaN as null)', async () => {
    const out = await cli([real, syn]);
    expect(out).toMatch(/^truth: real\.json lossDelta \(lower is better\)$/m);
    expect(out).toMatch(/^10%\s+syn\.json errProbes\s+3\s+0\.50\s+0\.33\s+snapkv \/ h2o\s+no$/m);
    expect(out).toMatch(/^\s+syn\.json needleRate\s+3\s+0\.87\s+0\.82\s+h2o=snapkv \/ h2o\s+yes$/m);
    const file = join(dir, 'cmp.json');
    await cli([real, syn, '--metric', 'keep:lower', '--json', file]);
    const cmp = JSON.parse((await import('node:fs')).readFileSync(file, 'utf8')) as RankingComparison[];
    expect(cmp).toHaveLength(1);
    expect(cmp[0]!.predictors).toEqual([{ label: 'syn.json', metric: 'keep', direction: 'lower' }]);
    expect(cmp[0]!.cells[0]![0]!.rho).toBeNull(); // every policy keeps 5: no order
    const printed = JSON.parse(await cli([real, syn, '--truth-metric', 'lossDelta', '--json'])) as RankingComparison[];
    expect(printed[0]!.cells[0]![0]!.tau).toBeCloseTo(1 / 3, 12);
  });

  test('a+b averages a predictor over reports; --brief prints one line per predictor', async () => {
    const syn2 = write('syn2.json', { rows: [
      row('h2o', 0.1, { errProbes: 0.0 }), row('snapkv', 0.1, { errProbes: 0.3 }), row('random', 0.1, { errProbes: 0.5 }),
    ] });
    // mean errProbes: h2o 0.1, snapkv 0.2, random 0.5: the truth's order exactly
    const out = await cli([real, `${syn}+${syn2}`, '--metric', 'errProbes', '--brief']);
    expect(out).toMatch(/^mean\(syn\.json\+syn2\.json\) errProbes\s+1\.00 \(1\.00\)\s+1\.00 \(1\.00\)\s+1\/1$/m);
    // ... and so does a truth given as a+b (its standard errors are dropped: no resolved-pairs line)
    const flipped = write('flipped.json', { rows: [row('h2o', 0.1, { lossDelta: 0.1 }), row('snapkv', 0.1, { lossDelta: 0.9 }), row('random', 0.1, { lossDelta: 1.1 })] });
    const both = await cli([`${real}+${flipped}`, syn, '--metric', 'errProbes', '--brief']);
    expect(both).toMatch(/^truth: mean\(real\.json\+flipped\.json\) lossDelta \(lower is better\)/m); // h2o 0.1, snapkv 0.6, random 1.0
    expect(both).toMatch(/^syn\.json errProbes\s+0\.50 \(0\.33\)\s+0\.50 \(0\.33\)\s+0\/1$/m);
    await expect(cli([`${real}+${syn}`, syn])).rejects.toThrow(/--truth-metric: .*syn\.json has no numeric "lossDelta"/);
    await expect(cli([real, `${syn}+${join(dir, 'gone.json')}`])).rejects.toThrow(/gone\.json: cannot read it/);
    await expect(cli([real, `${syn}+${real}`, '--metric', 'errProbes'])).rejects.toThrow(/--metric: .*real\.json has no numeric "errProbes"/);
  });

  test('errors name the file or flag, what was expected and what was received', async () => {
    await expect(cli([join(dir, 'missing.json'), syn])).rejects.toThrow(/missing\.json: cannot read it/);
    await expect(cli([write('bad.json', '{rows'), syn])).rejects.toThrow(/bad\.json: not JSON/);
    await expect(cli([syn, syn])).rejects.toThrow(/syn\.json: no real-model metric found .*--truth-metric/);
    await expect(cli([real, syn, '--truth-metric', 'copyAccuracy'])).rejects.toThrow(/--truth-metric: .*real\.json has no numeric "copyAccuracy"/);
    await expect(cli([real, syn, '--metric', 'mystery'])).rejects.toThrow(/--metric: expected a known metric/);
    await expect(cli([real, real])).rejects.toThrow(/real\.json: none of errProbes, needleRate/);
    await expect(cli([real])).rejects.toThrow(/missing required argument 'predictors'/);
  });
});
