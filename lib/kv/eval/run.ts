/**
 * `tokenpress eval kv`: every policy x every budget over one EvalSource (the
 * synthetic needle workload or a trace), through compressLayerForEval.
 *
 * Budgets are fractions of nKv turned into { keep: max(1, round(fraction * nKv)) }
 * per KV head and layer. Every policy gets the same inputs per layer: k, v,
 * the observation window's queries (so h2o scores with the window's causal
 * key mass, not a whole-prefill accumulation) and the seed. A policy that
 * throws (e.g. needs an input the source lacks) is reported as skipped with
 * the error message as the reason.
 *
 * Metrics (means over layers, heads and queries; see metrics.ts):
 *   needleRate    synthetic: fraction of (needle, layer, retrieval head) cases
 *                 whose question row's output has cosine >= 0.9 to the needle
 *                 value; trace: fraction of needle tokens kept (over needles,
 *                 layers, KV heads); null without needles
 *   errQuestion   relative output error of the question rows (trace: window rows), all heads
 *   errProbes     relative output error of the probe queries
 *   massQuestion, massProbes   retained full-attention mass
 */
import { checkInteger, checkOptions } from '../../validate.js';
import { rangeError, typeError } from '../../errors.js';
import { KV_POLICY_NAMES } from '../policies.js';
import { KV_CACHE_POLICY_NAMES, resolveCompression, type KvCompressionPolicy } from '../compression.js';
import { compressLayerForEval, fullLayerCache, type EvalLayerCache } from './compress.js';
import { attendCache, cosine, fullProbabilities, mean, NEEDLE_COSINE, relativeErrors, retainedMass } from './metrics.js';
import type { EvalSource } from './source.js';
import type { EvalQueries } from './workload.js';
import { findSparseEvalMethod, runSparseQueries, selectedMass, sparseEvalMethodNames, type SparseEvalMethod } from './sparse.js';

/** A sparse method's name (SPARSE_EVAL_METHODS), e.g. 'quest'. */
export type SparseEvalMethodName = string;

export const DEFAULT_BUDGETS: readonly number[] = [0.01, 0.02, 0.05, 0.1, 0.25, 0.5];

export interface KvEvalOptions {
  /** Fractions of nKv in (0, 1]; default DEFAULT_BUDGETS. */
  budgets?: readonly number[];
  /** Policies (names or configs) and sparse methods (names in SPARSE_EVAL_METHODS); default every one of them. */
  policies?: readonly (KvCompressionPolicy | SparseEvalMethodName)[];
  /** Called after each step (the full-cache reference, then each policy x budget). */
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface KvEvalMetrics {
  needleRate: number | null;
  errQuestion: number;
  errProbes: number;
  massQuestion: number;
  massProbes: number;
  /** Synthetic only: errQuestion over the retrieval heads alone. */
  errQuestionRetrieval?: number;
}

export interface KvEvalRow extends KvEvalMetrics {
  policy: string;
  /** 'sparse': a method that keeps every token and selects `keep` per KV head per query (sparse.ts); absent: eviction. */
  kind?: 'sparse';
  fraction: number;
  keep: number;
  /** Per layer, same fields. */
  layers: KvEvalMetrics[];
}

export interface KvEvalReport {
  source: { kind: EvalSource['kind']; description: string; nLayers: number; nHeads: number; nKvHeads: number; nKv: number; headDim: number };
  questionLabel: string;
  budgetRule: string;
  inputsRule: string;
  budgets: number[];
  policies: string[];
  /** The full cache's own needle rate (the ceiling; 1 on the synthetic workload). */
  fullNeedleRate: number | null;
  rows: KvEvalRow[];
  skipped: { policy: string; reason: string }[];
}

/** keep = max(1, round(fraction * nKv)). */
export function keepFor(fraction: number, nKv: number): number {
  return Math.min(nKv, Math.max(1, Math.round(fraction * nKv)));
}

function policyLabel(p: KvCompressionPolicy): string {
  if (typeof p === 'string') return p;
  const { name, ...rest } = p as { name: string } & Record<string, unknown>;
  const opts = Object.entries(rest).map(([k, v]) => `${k}=${String(v)}`);
  return opts.length ? `${name}(${opts.join(',')})` : name;
}

function checkBudgets(value: unknown): number[] {
  if (!Array.isArray(value) || value.length === 0) throw typeError('options.budgets', 'a non-empty array of fractions in (0, 1]', value);
  return value.map((f, i) => {
    if (typeof f !== 'number' || !(f > 0 && f <= 1)) throw rangeError(`options.budgets[${i}]`, 'a fraction in (0, 1]', f);
    return f;
  });
}

/** Per layer: what the full cache gives, computed once. */
interface Reference {
  full: EvalLayerCache;
  outQuestion: Float32Array;
  outProbes: Float32Array;
  probQuestion: Float32Array;
  probProbes: Float32Array;
}

function reference(source: EvalSource, l: number): Reference {
  const full = fullLayerCache(source.layers[l]!);
  return {
    full,
    outQuestion: attendCache(source.question[l]!, full),
    outProbes: attendCache(source.probes[l]!, full),
    probQuestion: fullProbabilities(source.question[l]!, full),
    probProbes: fullProbabilities(source.probes[l]!, full),
  };
}

/** Needle cases of one layer: [hits, cases]. */
function needleCases(source: EvalSource, l: number, cache: EvalLayerCache, outQuestion: Float32Array): [number, number] {
  const nd = source.needles;
  if (!nd) return [0, 0];
  let hits = 0;
  let cases = 0;
  if (nd.kind === 'retrieval') {
    const qs: EvalQueries = source.question[l]!;
    const [, nQ, headDim] = qs.q.shape as [number, number, number];
    const group = source.nHeads / source.nKvHeads;
    for (const h of nd.retrievalHeads[l]!) {
      const g = Math.floor(h / group);
      nd.values[l]![g]!.forEach((value, j) => {
        cases++;
        if (cosine(outQuestion, (h * nQ + j) * headDim, value, 0, headDim) >= NEEDLE_COSINE) hits++;
      });
    }
  } else {
    for (const positions of cache.positions) {
      const kept = new Set(positions);
      for (const r of nd.ranges) {
        let k = 0;
        for (let p = r.start; p < r.end; p++) if (kept.has(p)) k++;
        hits += k / (r.end - r.start);
        cases++;
      }
    }
  }
  return [hits, cases];
}

function layerMetrics(source: EvalSource, l: number, ref: Reference, cache: EvalLayerCache): KvEvalMetrics & { hits: number; cases: number } {
  const qs = source.question[l]!;
  const ps = source.probes[l]!;
  return metricsFrom(source, l, ref, {
    outQ: attendCache(qs, cache),
    outP: attendCache(ps, cache),
    massQ: retainedMass(ref.probQuestion, qs, cache, source.nKv),
    massP: retainedMass(ref.probProbes, ps, cache, source.nKv),
    kept: cache,
  });
}

/** Outputs and masses of one layer (evicted cache or sparse selection) against the full cache. */
interface LayerOutputs {
  outQ: Float32Array;
  outP: Float32Array;
  massQ: Float64Array;
  massP: Float64Array;
  /** For trace needles ('kept'): the positions kept per KV head. */
  kept: EvalLayerCache;
}

function metricsFrom(source: EvalSource, l: number, ref: Reference, o: LayerOutputs): KvEvalMetrics & { hits: number; cases: number } {
  const qs = source.question[l]!;
  const headDim = source.headDim;
  const errQ = relativeErrors(ref.outQuestion, o.outQ, headDim);
  const [hits, cases] = needleCases(source, l, o.kept, o.outQ);
  const m: KvEvalMetrics & { hits: number; cases: number } = {
    needleRate: cases > 0 ? hits / cases : null,
    errQuestion: mean(errQ),
    errProbes: mean(relativeErrors(ref.outProbes, o.outP, headDim)),
    massQuestion: mean(o.massQ),
    massProbes: mean(o.massP),
    hits,
    cases,
  };
  if (source.needles?.kind === 'retrieval') {
    const nQ = qs.q.shape[1]!;
    const rows: number[] = [];
    for (const h of source.needles.retrievalHeads[l]!) for (let i = 0; i < nQ; i++) rows.push(errQ[h * nQ + i]!);
    m.errQuestionRetrieval = mean(rows);
  }
  return m;
}

/**
 * A sparse method at a budget: every question and probe row is one decode
 * step over the layers (sparse.ts). For trace needles, 'kept' counts the
 * needle tokens the last question row (the end of the window) selected.
 */
function sparseLayerMetrics(source: EvalSource, refs: Reference[], method: SparseEvalMethod, keep: number, memo: <T>(key: string, make: () => T) => T): (KvEvalMetrics & { hits: number; cases: number })[] {
  const q = runSparseQueries(method, source.layers, source.question, keep, memo);
  const p = runSparseQueries(method, source.layers, source.probes, keep, memo);
  return refs.map((ref, l) => {
    const [nHeads, nQ] = source.question[l]!.q.shape as [number, number, number];
    const nP = source.probes[l]!.q.shape[1]!;
    const last = q.selected[l]![nQ - 1]!;
    return metricsFrom(source, l, ref, {
      outQ: q.out[l]!,
      outP: p.out[l]!,
      massQ: selectedMass(ref.probQuestion, nHeads, nQ, source.nKv, q.selected[l]!),
      massP: selectedMass(ref.probProbes, nHeads, nP, source.nKv, p.selected[l]!),
      kept: { k: [], v: [], positions: last },
    });
  });
}

function combine(per: (KvEvalMetrics & { hits: number; cases: number })[]): KvEvalMetrics {
  const hits = per.reduce((s, m) => s + m.hits, 0);
  const cases = per.reduce((s, m) => s + m.cases, 0);
  const out: KvEvalMetrics = {
    needleRate: cases > 0 ? hits / cases : null,
    errQuestion: mean(per.map((m) => m.errQuestion)),
    errProbes: mean(per.map((m) => m.errProbes)),
    massQuestion: mean(per.map((m) => m.massQuestion)),
    massProbes: mean(per.map((m) => m.massProbes)),
  };
  if (per[0]?.errQuestionRetrieval !== undefined) out.errQuestionRetrieval = mean(per.map((m) => m.errQuestionRetrieval!));
  return out;
}

function strip(m: KvEvalMetrics & { hits?: number; cases?: number }): KvEvalMetrics {
  const { hits: _h, cases: _c, ...rest } = m;
  return rest;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs every policy x budget over the source (see the module comment). */
export async function runKvEval(source: EvalSource, options?: KvEvalOptions): Promise<KvEvalReport> {
  const o = checkOptions('options', options, ['budgets', 'policies', 'onProgress']) as KvEvalOptions;
  const budgets = o.budgets === undefined ? [...DEFAULT_BUDGETS] : checkBudgets(o.budgets);
  const policies = (o.policies === undefined
    ? [...KV_POLICY_NAMES, ...KV_CACHE_POLICY_NAMES, ...sparseEvalMethodNames()]
    : [...o.policies]) as KvCompressionPolicy[];
  if (policies.length === 0) throw typeError('options.policies', 'a non-empty array of policies', policies);
  policies.forEach((p) => findSparseEvalMethod(p) ?? resolveCompression(p, 1, 1)); // bad names fail before any work
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  checkInteger('source.nKv', source.nKv, 1);

  const total = 1 + policies.length * budgets.length;
  let done = 0;
  const progress = (label: string) => o.onProgress?.(++done, total, label);

  const refs: Reference[] = [];
  for (let l = 0; l < source.nLayers; l++) refs.push(reference(source, l));
  const fullPer = refs.map((r, l) => layerMetrics(source, l, r, r.full));
  const fullNeedleRate = combine(fullPer).needleRate;
  progress('full cache');
  await tick();

  const rows: KvEvalRow[] = [];
  const skipped: KvEvalReport['skipped'] = [];
  for (const policy of policies) {
    const label = policyLabel(policy);
    const sparse = findSparseEvalMethod(policy);
    if (sparse) {
      const memoMap = new Map<string, unknown>();
      const memo = <T>(key: string, make: () => T): T => {
        if (!memoMap.has(key)) memoMap.set(key, make());
        return memoMap.get(key) as T;
      };
      for (const fraction of budgets) {
        const keep = keepFor(fraction, source.nKv);
        const per = sparseLayerMetrics(source, refs, sparse, keep, memo);
        rows.push({ policy: label, kind: 'sparse', fraction, keep, ...combine(per), layers: per.map(strip) });
        progress(`${label} ${(fraction * 100).toPrecision(3)}%`);
        await tick();
      }
      continue;
    }
    for (const fraction of budgets) {
      const keep = keepFor(fraction, source.nKv);
      let caches: EvalLayerCache[];
      try {
        caches = compressLayerForEval(policy, source.layers, { keep });
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        if (/^budget: expected at least/.test(reason)) {
          // This budget is below what the policy always keeps: skip the budget only.
          skipped.push({ policy: `${label} at ${(fraction * 100).toPrecision(3)}%`, reason });
          progress(`${label} ${(fraction * 100).toPrecision(3)}% skipped`);
          continue;
        }
        skipped.push({ policy: label, reason });
        done += budgets.length - budgets.indexOf(fraction) - 1;
        progress(`${label} skipped`);
        break;
      }
      const per = caches.map((c, l) => layerMetrics(source, l, refs[l]!, c));
      rows.push({ policy: label, fraction, keep, ...combine(per), layers: per.map(strip) });
      progress(`${label} ${(fraction * 100).toPrecision(3)}%`);
      await tick();
    }
  }
  return {
    source: {
      kind: source.kind, description: source.description, nLayers: source.nLayers, nHeads: source.nHeads,
      nKvHeads: source.nKvHeads, nKv: source.nKv, headDim: source.headDim,
    },
    questionLabel: source.questionLabel,
    budgetRule: 'keep = max(1, round(fraction * nKv)) tokens per KV head and layer ({ keep } budgets); sparse methods attend keep tokens per KV head per query',
    inputsRule: 'each policy reads k, v, the observation window queries (h2o: their causal key mass) and the seed, and compresses once; sparse methods keep every token and select per query row',
    budgets,
    policies: policies.map(policyLabel),
    fullNeedleRate,
    rows,
    skipped,
  };
}

function pct(x: number | null, digits = 1): string {
  return x === null || Number.isNaN(x) ? '-' : `${(x * 100).toFixed(digits)}%`;
}

/** The report as a text table: one row per policy x budget, then skipped policies. */
export function formatKvEvalTable(report: KvEvalReport): string {
  const q = report.questionLabel;
  const header = ['policy', 'budget', 'keep', report.source.kind === 'trace' ? 'needle kept' : 'needle', `err ${q}`, 'err probe', `mass ${q}`, 'mass probe'];
  const body = report.rows.map((r) => [
    r.policy, `${+(r.fraction * 100).toPrecision(3)}%`, String(r.keep), pct(r.needleRate, 0),
    pct(r.errQuestion), pct(r.errProbes), pct(r.massQuestion), pct(r.massProbes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [report.source.description, `budgets: ${report.budgetRule}`, `inputs: ${report.inputsRule}`];
  if (report.fullNeedleRate !== null) out.push(`full cache needle rate: ${pct(report.fullNeedleRate)}`);
  const sparse = [...new Set(report.rows.filter((r) => r.kind === 'sparse').map((r) => r.policy))];
  if (sparse.length > 0) out.push(`sparse methods (every token kept; keep = tokens attended per KV head per query): ${sparse.join(', ')}`);
  out.push('', line(header), line(widths.map((w) => '-'.repeat(w))));
  let prev = '';
  for (let i = 0; i < body.length; i++) {
    if (prev && report.rows[i]!.policy !== prev) out.push('');
    prev = report.rows[i]!.policy;
    out.push(line(body[i]!));
  }
  for (const s of report.skipped) out.push('', `skipped ${s.policy}: ${s.reason}`);
  return out.join('\n');
}
