/**
 * Does a cheap evaluation rank the KV policies the way the real model does?
 * (`tokenpress eval rank`.) Rank correlations and, per budget, how well each
 * predictor's policy ranking (the synthetic workload's, a real trace's
 * attention error) matches the truth's (the real model's loss change or
 * copy accuracy).
 *
 * Input contract (every report is a JSON file with at least this):
 *   { "rows": [ { "policy": string, "fraction": number in (0, 1] | null, <metric>: number | null, ... }, ... ] }
 * A metric is a field name or a dotted path into nested objects
 * ("loss.delta", "needle.accuracy": the real-model report's cells).
 * `tokenpress eval kv --json` reports (synthetic or --trace) and the
 * real-model report (`eval kv --model ... --json`) all have it. Rows with a
 * null fraction (the full cache, quantized caches) are left out; otherwise
 * one row per (policy, fraction); a null or missing metric leaves the row
 * out for that metric. Policies and budgets are matched by name and
 * fraction (within 1e-9); a budget is compared over the policies present in
 * both reports.
 *
 * Every metric has a direction: scores are the metric for "higher is
 * better" and its negation for "lower is better", so both rankings put the
 * best policy first. METRIC_DIRECTIONS knows the usual names; others need
 * an explicit "name:higher" or "name:lower".
 */
import { TokenpressError, rangeError, typeError } from '../../errors.js';

export type Direction = 'higher' | 'lower';

/** Directions of the metrics the eval reports use (and the usual names for the real model's). */
export const METRIC_DIRECTIONS: Readonly<Record<string, Direction>> = {
  // real-model reports (`eval kv --model`): cells per row, and flat names for other tools
  'loss.delta': 'lower',
  'needle.accuracy': 'higher',
  'needle.keyBits': 'lower',
  'loss.bitsPerByte': 'lower',
  lossDelta: 'lower',
  copyAccuracy: 'higher',
  accuracy: 'higher',
  loss: 'lower',
  bitsPerByte: 'lower',
  // eval kv reports (synthetic workload or trace)
  needleRate: 'higher',
  errQuestion: 'lower',
  errQuestionRetrieval: 'lower',
  errProbes: 'lower',
  massQuestion: 'higher',
  massProbes: 'higher',
};

/** Predictor metrics used when none are named (those present in the report). */
export const DEFAULT_PREDICTOR_METRICS: readonly string[] = ['errProbes', 'needleRate'];

function checkPair(x: ArrayLike<number>, y: ArrayLike<number>): number {
  for (const [arg, a] of [['x', x], ['y', y]] as const) {
    if (a === null || typeof a !== 'object' || typeof a.length !== 'number') throw typeError(arg, 'an array of finite numbers', a);
    for (let i = 0; i < a.length; i++) {
      if (typeof a[i] !== 'number' || !Number.isFinite(a[i])) throw rangeError(`${arg}[${i}]`, 'a finite number', a[i]);
    }
  }
  if (x.length !== y.length) throw rangeError('y', `an array of the same length as x (${x.length})`, `length ${y.length}`);
  return x.length;
}

/** 1-based ranks of x, ascending; tied values share the mean of their positions. f64 [n]. */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]! - x[b]!);
  const r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && x[order[j]!] === x[order[i]!]) j++;
    const mid = (i + 1 + j) / 2; // mean of positions i+1 .. j
    for (let k = i; k < j; k++) r[order[k]!] = mid;
    i = j;
  }
  return r;
}

/**
 * Spearman's rho of x and y ([n] each, finite): the Pearson correlation of
 * their average ranks (so ties are handled). NaN when n < 2 or either is
 * constant (a ranking with no order says nothing).
 */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkPair(x, y);
  if (n < 2) return NaN;
  const rx = averageRanks(x);
  const ry = averageRanks(y);
  const m = (n + 1) / 2; // mean rank, ties or not
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const a = rx[i]! - m;
    const b = ry[i]! - m;
    sxy += a * b;
    sxx += a * a;
    syy += b * b;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Pairs tied within runs of equal keys, for keys sorted so equal ones are adjacent. */
function tiedPairs(n: number, same: (i: number) => boolean): number {
  let t = 0;
  let run = 1;
  for (let i = 1; i <= n; i++) {
    if (i < n && same(i)) run++;
    else { t += (run * (run - 1)) / 2; run = 1; }
  }
  return t;
}

/**
 * Kendall's tau-b of x and y ([n] each, finite), with ties:
 *   (concordant - discordant) / sqrt((n0 - tx) (n0 - ty)),
 * n0 = n(n-1)/2, tx (ty) the pairs tied in x (y). Knight's O(n log n)
 * algorithm: sort by (x, y), count the swaps a merge sort by y needs
 * (the discordant pairs). NaN when n < 2 or either is constant.
 */
export function kendallTauB(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = checkPair(x, y);
  if (n < 2) return NaN;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]! - x[b]! || y[a]! - y[b]!);
  const xs = idx.map((i) => x[i]!);
  const ys = idx.map((i) => y[i]!);
  const n0 = (n * (n - 1)) / 2;
  const tx = tiedPairs(n, (i) => xs[i] === xs[i - 1]);
  const txy = tiedPairs(n, (i) => xs[i] === xs[i - 1] && ys[i] === ys[i - 1]);
  const swaps = mergeSortSwaps(ys);
  const ty = tiedPairs(n, (i) => ys[i] === ys[i - 1]); // ys is sorted now
  // Pairs not tied in x: concordant + discordant + tied in y only = n0 - tx;
  // tied in y only = ty - txy; discordant = swaps.
  const concordantMinusDiscordant = n0 - tx - (ty - txy) - 2 * swaps;
  const denom = Math.sqrt((n0 - tx) * (n0 - ty));
  if (denom === 0) return NaN;
  return Math.max(-1, Math.min(1, concordantMinusDiscordant / denom));
}

/** Sorts a in place (ascending) and returns the inversions (pairs i < j with a[i] > a[j]). */
function mergeSortSwaps(a: number[]): number {
  const buf = new Array<number>(a.length);
  let swaps = 0;
  for (let width = 1; width < a.length; width *= 2) {
    for (let lo = 0; lo < a.length; lo += 2 * width) {
      const mid = Math.min(lo + width, a.length);
      const hi = Math.min(lo + 2 * width, a.length);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        if (a[j]! < a[i]!) { swaps += mid - i; buf[k++] = a[j++]!; } else buf[k++] = a[i++]!;
      }
      while (i < mid) buf[k++] = a[i++]!;
      while (j < hi) buf[k++] = a[j++]!;
      for (let t = lo; t < hi; t++) a[t] = buf[t]!;
    }
  }
  return swaps;
}

// ---------------------------------------------------------------------------
// Reports

export interface RankingRow {
  policy: string;
  fraction: number;
  [metric: string]: unknown;
}

/** row[path] for a field name or a dotted path ("loss.delta"); undefined where any step is missing. */
export function metricValue(row: Record<string, unknown>, path: string): unknown {
  if (Object.prototype.hasOwnProperty.call(row, path)) return row[path]; // a flat name with dots (meanReport's rows)
  let v: unknown = row;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || !Object.prototype.hasOwnProperty.call(v, part)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export interface RankingReport {
  /** What the tables call it (the file name). */
  label: string;
  rows: RankingRow[];
}

function bad(file: string, what: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `${file}: not a ranking input ({ rows: [{ policy, fraction, <metric> }] }): ${what}`);
}

/** Checks parsed JSON against the input contract (see the module comment). */
export function rankingReportFrom(json: unknown, label: string): RankingReport {
  const rows = (json as { rows?: unknown } | null)?.rows;
  if (json === null || typeof json !== 'object' || !Array.isArray(rows)) throw bad(label, 'expected an object with a "rows" array');
  const seen = new Set<string>();
  rows.forEach((r: unknown, i) => {
    const o = r as { policy?: unknown; fraction?: unknown } | null;
    if (o === null || typeof o !== 'object' || typeof o.policy !== 'string' || o.policy === '') {
      throw bad(label, `rows[${i}].policy: expected a policy name, received ${o === null || typeof o !== 'object' ? String(o) : JSON.stringify(o.policy)}`);
    }
    if (o.fraction === null) return; // no budget (full or quantized cache)
    if (typeof o.fraction !== 'number' || !(o.fraction > 0 && o.fraction <= 1)) {
      throw bad(label, `rows[${i}].fraction: expected a number in (0, 1] or null, received ${JSON.stringify(o.fraction)}`);
    }
    const key = `${o.policy}@${o.fraction}`;
    if (seen.has(key)) throw bad(label, `rows[${i}]: a second row for policy "${o.policy}" at fraction ${o.fraction}`);
    seen.add(key);
  });
  return { label, rows: (rows as { fraction: unknown }[]).filter((r) => r.fraction !== null) as RankingRow[] };
}

export interface MetricChoice {
  metric: string;
  direction: Direction;
}

/** "name" (direction from METRIC_DIRECTIONS) or "name:higher" / "name:lower". */
export function parseMetric(spec: string, arg = 'metric'): MetricChoice {
  if (typeof spec !== 'string') throw typeError(arg, 'a metric name, optionally with :higher or :lower', spec);
  const m = /^([A-Za-z_$][\w$.-]*)(?::(higher|lower))?$/.exec(spec.trim());
  if (!m) throw rangeError(arg, 'a metric name, optionally with :higher or :lower (which way is better)', spec);
  const direction = (m[2] as Direction | undefined) ?? METRIC_DIRECTIONS[m[1]!];
  if (direction === undefined) {
    throw rangeError(arg, `a known metric (${Object.keys(METRIC_DIRECTIONS).join(', ')}) or one with :higher or :lower`, spec);
  }
  return { metric: m[1]!, direction };
}

/** Whether some row has a finite value of the metric. */
export function hasMetric(r: RankingReport, metric: string): boolean {
  return r.rows.some((row) => { const v = metricValue(row, metric); return typeof v === 'number' && Number.isFinite(v); });
}

/** Default truth metrics: per kind (loss, copy accuracy), the first of its names the report has. */
const TRUTH_DEFAULTS: readonly (readonly string[])[] = [
  ['loss.delta', 'lossDelta', 'loss.bitsPerByte', 'loss', 'bitsPerByte'],
  ['needle.accuracy', 'copyAccuracy', 'accuracy'],
  ['needle.keyBits'], // bits per key digit, teacher-forced: ranks policies even where no cache copies the whole key
];

/** Default truth metrics: per kind (loss change, copy accuracy, key bits), the first known name the report has. */
export function defaultTruthMetrics(r: RankingReport): MetricChoice[] {
  return TRUTH_DEFAULTS.flatMap((names) => names.filter((m) => hasMetric(r, m)).slice(0, 1)).map((m) => ({ metric: m, direction: METRIC_DIRECTIONS[m]! }));
}

/** Default predictor metrics: those of DEFAULT_PREDICTOR_METRICS the report has. */
export function defaultPredictorMetrics(r: RankingReport): MetricChoice[] {
  return DEFAULT_PREDICTOR_METRICS.filter((m) => hasMetric(r, m)).map((m) => ({ metric: m, direction: METRIC_DIRECTIONS[m]! }));
}

/**
 * One report whose rows hold the mean of `metric` over `reports` (e.g. the
 * traces of several seeds), for each (policy, fraction) that every report
 * has a finite value for; the others are left out.
 */
export function meanReport(reports: readonly RankingReport[], metric: string, label: string): RankingReport {
  if (reports.length === 0) throw rangeError('reports', 'at least one report', 0);
  const key = (r: RankingRow) => `${r.policy}\u0000${Math.round(r.fraction * 1e9)}`; // fractions match within 1e-9
  const sums = new Map<string, { row: RankingRow; sum: number; count: number }>();
  reports.forEach((rep, i) => {
    for (const row of rep.rows) {
      const v = metricValue(row, metric);
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      const k = key(row);
      const e = sums.get(k);
      if (i === 0) sums.set(k, { row, sum: v, count: 1 });
      else if (e && e.count === i) { e.sum += v; e.count++; }
    }
  });
  const rows: RankingRow[] = [];
  for (const { row, sum, count } of sums.values()) {
    if (count === reports.length) rows.push({ policy: row.policy, fraction: row.fraction, [metric]: sum / count });
  }
  return { label, rows };
}

/** Scores (higher = better) per policy at one budget; missing, null or non-finite values are left out. */
function scoresAt(r: RankingReport, m: MetricChoice, fraction: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const row of r.rows) {
    if (Math.abs(row.fraction - fraction) > 1e-9) continue;
    const v = metricValue(row, m.metric);
    if (typeof v !== 'number' || !Number.isFinite(v)) continue;
    out.set(row.policy, m.direction === 'higher' ? v : -v);
  }
  return out;
}

/** The best-scoring policies (all of them when tied; none of none). */
function best(policies: string[], score: (p: string) => number): string[] {
  const top = Math.max(...policies.map(score));
  return policies.filter((p) => score(p) === top);
}

export interface RankingCell {
  /** Policies compared (present in both, with finite metrics), sorted by name. */
  policies: string[];
  rho: number;
  tau: number;
  /**
   * Best policies by the predictor and by the truth (several when tied), and
   * whether the two sets meet; null when either side has every policy tied
   * for first (or fewer than 2 policies): no verdict.
   */
  top1: { predicted: string[]; truth: string[]; agree: boolean } | null;
}

export interface RankingComparison {
  truth: { label: string } & MetricChoice;
  predictors: ({ label: string } & MetricChoice)[];
  /** Fractions present in the truth, ascending. */
  budgets: number[];
  /**
   * Per budget: pairs of the truth's policies whose difference exceeds twice
   * its standard error (resolved) out of all pairs with standard errors;
   * null where the truth gives none (see truthStandardError). Orders within
   * the noise are a coin toss, so they cap the correlation any predictor can reach.
   */
  truthResolved: ({ resolved: number; pairs: number } | null)[];
  /** cells[b][p]: budget b, predictor p. */
  cells: RankingCell[][];
  /** Per predictor: mean rho and tau over budgets where defined, top-1 agreements / budgets with a verdict. */
  summary: { meanRho: number; meanTau: number; top1Agree: number; top1Budgets: number }[];
}

/**
 * The standard error of a row's metric, if the report gives one: a sibling
 * "<name>Se" field (the real-model report's loss.deltaSe), or for an
 * "...accuracy" proportion p with a sibling "trials" count t, the binomial
 * sqrt(p (1 - p) / t). Undefined otherwise.
 */
export function truthStandardError(row: Record<string, unknown>, metric: string): number | undefined {
  const se = metricValue(row, `${metric}Se`);
  if (typeof se === 'number' && Number.isFinite(se) && se >= 0) return se;
  const dot = metric.lastIndexOf('.');
  const name = metric.slice(dot + 1);
  const trials = metricValue(row, dot >= 0 ? `${metric.slice(0, dot)}.trials` : 'trials');
  const p = metricValue(row, metric);
  if (/accuracy$/i.test(name) && typeof trials === 'number' && trials >= 1 && typeof p === 'number' && p >= 0 && p <= 1) {
    return Math.sqrt((p * (1 - p)) / trials);
  }
  return undefined;
}

function resolvedPairs(truth: RankingReport, metric: string, fraction: number): { resolved: number; pairs: number } | null {
  const vals: [number, number][] = [];
  for (const row of truth.rows) {
    if (Math.abs(row.fraction - fraction) > 1e-9) continue;
    const v = metricValue(row, metric);
    const se = truthStandardError(row, metric);
    if (typeof v === 'number' && Number.isFinite(v) && se !== undefined) vals.push([v, se]);
  }
  if (vals.length < 2) return null;
  let resolved = 0;
  let pairs = 0;
  for (let i = 0; i < vals.length; i++) {
    for (let j = i + 1; j < vals.length; j++) {
      pairs++;
      if (Math.abs(vals[i]![0] - vals[j]![0]) > 2 * Math.hypot(vals[i]![1], vals[j]![1])) resolved++;
    }
  }
  return { resolved, pairs };
}

/**
 * Compares each predictor's policy ranking with the truth's at every budget
 * of the truth (see the module comment): Spearman rho, Kendall tau-b and
 * top-1 agreement over the policies both have.
 */
export function compareRankings(
  truth: RankingReport, truthMetric: MetricChoice, predictors: { report: RankingReport; metric: MetricChoice }[],
): RankingComparison {
  const budgets = [...new Set(truth.rows.map((r) => r.fraction))].sort((a, b) => a - b);
  const cells = budgets.map((f) => {
    const ts = scoresAt(truth, truthMetric, f);
    return predictors.map(({ report, metric }) => {
      const ps = scoresAt(report, metric, f);
      const policies = [...ts.keys()].filter((p) => ps.has(p)).sort();
      const x = policies.map((p) => ps.get(p)!);
      const y = policies.map((p) => ts.get(p)!);
      const predicted = best(policies, (p) => ps.get(p)!);
      const t = best(policies, (p) => ts.get(p)!);
      // No verdict when either side ranks nothing (every policy ties for first).
      const top1 = predicted.length < policies.length && t.length < policies.length
        ? { predicted, truth: t, agree: predicted.some((p) => t.includes(p)) }
        : null;
      return { policies, rho: spearman(x, y), tau: kendallTauB(x, y), top1 };
    });
  });
  const meanOf = (xs: number[]) => { const d = xs.filter((v) => !Number.isNaN(v)); return d.length ? d.reduce((a, b) => a + b, 0) / d.length : NaN; };
  const summary = predictors.map((_, p) => {
    const col = cells.map((row) => row[p]!);
    const verdicts = col.filter((c) => c.top1 !== null);
    return {
      meanRho: meanOf(col.map((c) => c.rho)),
      meanTau: meanOf(col.map((c) => c.tau)),
      top1Agree: verdicts.filter((c) => c.top1!.agree).length,
      top1Budgets: verdicts.length,
    };
  });
  return {
    truth: { label: truth.label, ...truthMetric },
    predictors: predictors.map(({ report, metric }) => ({ label: report.label, ...metric })),
    budgets,
    truthResolved: budgets.map((f) => resolvedPairs(truth, truthMetric.metric, f)),
    cells,
    summary,
  };
}

const num = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));
const names = (ps: string[]) => (ps.length <= 2 ? ps.join('=') : `${ps.slice(0, 2).join('=')}+${ps.length - 2}`);

/** A text table: per budget, one line per predictor (n, rho, tau-b, top-1), then the means. */
export function formatRankingTable(c: RankingComparison): string {
  const header = ['budget', 'predictor', 'n', 'rho', 'tau-b', 'top-1 predicted / true', 'agree'];
  const label = (p: RankingComparison['predictors'][number]) => `${p.label} ${p.metric}`;
  const body: string[][] = [];
  c.budgets.forEach((f, b) => {
    c.predictors.forEach((p, i) => {
      const cell = c.cells[b]![i]!;
      const t = cell.top1;
      body.push([
        i === 0 ? `${+(f * 100).toPrecision(3)}%` : '', label(p), String(cell.policies.length), num(cell.rho), num(cell.tau),
        t ? `${names(t.predicted)} / ${names(t.truth)}` : 'no order', t ? (t.agree ? 'yes' : 'no') : '-',
      ]);
    });
  });
  c.predictors.forEach((p, i) => {
    const s = c.summary[i]!;
    body.push([i === 0 ? 'mean' : '', label(p), '', num(s.meanRho), num(s.meanTau), '', `${s.top1Agree}/${s.top1Budgets}`]);
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((s, i) => (i === 2 || i === 3 || i === 4 ? s.padStart(widths[i]!) : s.padEnd(widths[i]!))).join('  ').trimEnd();
  const dir = (d: Direction) => (d === 'higher' ? 'higher is better' : 'lower is better');
  const out = [
    `truth: ${c.truth.label} ${c.truth.metric} (${dir(c.truth.direction)})`,
    ...c.predictors.map((p) => `predictor: ${label(p)} (${dir(p.direction)})`),
    'rho: Spearman, tau-b: Kendall (ties), over the policies both rank at that budget; top-1 agrees when a best policy of the predictor is a best of the truth',
    '',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
  ];
  const perBudget = c.predictors.length;
  body.forEach((r, i) => {
    if (i > 0 && i % perBudget === 0) {
      const b = i / perBudget - 1;
      const tr = c.truthResolved[b];
      if (tr) out.push(`        truth: ${tr.resolved}/${tr.pairs} pairs of its policies differ by more than 2 standard errors`);
      out.push(''); // a blank line between budgets, and before the means
    }
    out.push(line(r));
  });
  return out.join('\n');
}

/**
 * The comparisons in brief: per truth metric, one line per predictor with
 * rho (tau-b) at each budget, the means and the top-1 agreements.
 */
export function formatRankingBrief(cs: readonly RankingComparison[]): string {
  const out: string[] = [];
  for (const c of cs) {
    const header = ['predictor', ...c.budgets.map((f) => `${+(f * 100).toPrecision(3)}%`), 'mean', 'top-1'];
    const body = c.predictors.map((p, i) => [
      `${p.label} ${p.metric}`,
      ...c.budgets.map((_, b) => { const cell = c.cells[b]![i]!; return `${num(cell.rho)} (${num(cell.tau)})`; }),
      `${num(c.summary[i]!.meanRho)} (${num(c.summary[i]!.meanTau)})`,
      `${c.summary[i]!.top1Agree}/${c.summary[i]!.top1Budgets}`,
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((s, i) => (i === 0 ? s.padEnd(widths[i]!) : s.padStart(widths[i]!))).join('  ').trimEnd();
    if (out.length) out.push('');
    out.push(`truth: ${c.truth.label} ${c.truth.metric} (${c.truth.direction} is better); Spearman rho (Kendall tau-b) per budget`);
    out.push(line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line));
    if (c.truthResolved.some((t) => t !== null)) {
      const cells = c.budgets.map((_, b) => { const t = c.truthResolved[b]; return t ? `${t.resolved}/${t.pairs}` : '-'; });
      out.push(line(['truth: pairs > 2 SE apart', ...cells, '', '']));
    }
  }
  return out.join('\n');
}
