/**
 * `tokenpress eval rank <truth.json> <predictor.json...>`: does a cheap
 * evaluation rank the KV policies as the real model does? Per budget, the
 * Spearman rho, Kendall tau-b and top-1 agreement of each predictor's policy
 * ranking (e.g. `eval kv --json` on the synthetic workload, or on a real
 * --trace) with the truth's (the real model's loss change or copy accuracy),
 * one table per truth metric (lib/kv/eval/ranking.ts has the input contract).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { TokenpressError } from '../errors.js';
import {
  compareRankings, defaultPredictorMetrics, defaultTruthMetrics, formatRankingBrief, formatRankingTable, hasMetric, meanReport, parseMetric,
  rankingReportFrom,
  type MetricChoice, type RankingComparison, type RankingReport,
} from '../kv/eval/ranking.js';

interface EvalRankFlags { truthMetric?: MetricChoice[]; metric?: MetricChoice[]; json?: string | true; brief?: boolean }

function metricList(flag: string) {
  return (value: string): MetricChoice[] => {
    const list = value.split(',').map((s) => s.trim());
    try {
      if (list.some((s) => s === '')) throw new RangeError(`${flag}: expected a comma-separated list of metrics, received "${value}"`);
      return list.map((s) => parseMetric(s, flag));
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

function readReport(file: string): RankingReport {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    throw new TokenpressError('ERR_BAD_FILE', `${file}: cannot read it (${(e as Error).message})`);
  }
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw new TokenpressError('ERR_BAD_FILE', `${file}: not JSON`); }
  return rankingReportFrom(json, basename(file));
}

/** Reads the reports, compares, prints the tables (and writes --json); returns one comparison per truth metric. */
export function runEvalRank(truthFile: string, predictorFiles: string[], flags: EvalRankFlags): RankingComparison[] {
  const truths = truthFile.split('+').map(readReport); // a+b: the mean of each truth metric over the files
  const truth = truths[0]!;
  // "a.json+b.json+c.json": one predictor, the mean of the metric over the files (e.g. traces of several seeds).
  const predictors = predictorFiles.map((arg) => arg.split('+').map(readReport));
  const truthMetrics = flags.truthMetric ?? defaultTruthMetrics(truth);
  if (truthMetrics.length === 0) {
    throw new InvalidArgumentError(`${truthFile}: no real-model metric found (known: loss.delta, needle.accuracy, lossDelta, copyAccuracy, ...); name it with --truth-metric <name[:higher|lower]>`);
  }
  for (const m of truthMetrics) {
    truths.forEach((t, j) => {
      if (!hasMetric(t, m.metric)) throw new InvalidArgumentError(`--truth-metric: ${truthFile.split('+')[j]} has no numeric "${m.metric}" in its rows`);
    });
  }
  const pairs = predictors.flatMap((reports, i) => {
    const metrics = flags.metric ?? defaultPredictorMetrics(reports[0]!);
    if (metrics.length === 0) throw new InvalidArgumentError(`${predictorFiles[i]}: none of errProbes, needleRate in its rows; name a metric with --metric <name[:higher|lower]>`);
    for (const m of metrics) {
      reports.forEach((report, j) => {
        if (!hasMetric(report, m.metric)) throw new InvalidArgumentError(`--metric: ${predictorFiles[i]!.split('+')[j]} has no numeric "${m.metric}" in its rows`);
      });
    }
    if (reports.length === 1) return metrics.map((metric) => ({ report: reports[0]!, metric }));
    const label = `mean(${reports.map((r) => r.label).join('+')})`;
    return metrics.map((metric) => ({ report: meanReport(reports, metric.metric, label), metric }));
  });
  const truthLabel = `mean(${truths.map((t) => t.label).join('+')})`;
  const out = truthMetrics.map((m) => compareRankings(truths.length === 1 ? truth : meanReport(truths, m.metric, truthLabel), m, pairs));
  const json = JSON.stringify(out, (_k, v: unknown) => (typeof v === 'number' && Number.isNaN(v) ? null : v), 2);
  if (typeof flags.json === 'string') writeFileSync(flags.json, json + '\n');
  console.log(flags.json === true ? json : flags.brief ? formatRankingBrief(out) : out.map(formatRankingTable).join('\n\n'));
  return out;
}

/** Adds `rank` to the `eval` command group. */
export function registerEvalRank(evalCmd: Command): void {
  evalCmd
    .command('rank')
    .description(
      'How well cheap evaluations predict the real model\'s ranking of KV policies: per budget, Spearman rho, Kendall tau-b ' +
        'and top-1 agreement of each predictor report (eval kv --json: synthetic or --trace) with the truth report ' +
        '(the real model\'s; any JSON with rows: [{ policy, fraction, <metric> }]).',
    )
    .argument('<truth>', 'the real model\'s report (JSON); a+b: the mean of the metric over those reports')
    .argument('<predictors...>', 'reports whose rankings should predict it (JSON); a+b+c: the mean of the metric over those reports')
    .option('--truth-metric <list>', 'truth metrics, e.g. loss.delta,needle.accuracy (name:higher|lower for others); default loss.delta and needle.accuracy (or lossDelta, copyAccuracy) where present', metricList('--truth-metric'))
    .option('--metric <list>', 'predictor metrics (default errProbes,needleRate where present)', metricList('--metric'))
    .option('--brief', 'one line per predictor: rho (tau-b) per budget, means, top-1 agreements')
    .option('--json [file]', 'write the comparisons as JSON to <file>; without <file>, print them instead of the tables')
    .action((truth: string, predictors: string[], opts: EvalRankFlags) => {
      runEvalRank(truth, predictors, opts);
    });
}
