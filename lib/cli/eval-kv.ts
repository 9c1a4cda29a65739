/**
 * `tokenpress eval kv`: KV-compression quality of every policy at several
 * budgets, on the synthetic needle workload or on a captured trace
 * (lib/kv/eval/). Prints a table; --json writes the whole report, --svg a plot.
 */
import { writeFileSync } from 'node:fs';
import { makeProgressBar } from './progress-bar.js';
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from './int-arg.js';
import { KV_POLICY_NAMES } from '../kv/policies.js';
import { KV_CACHE_POLICY_NAMES, type KvCompressionPolicy } from '../kv/compression.js';
import { makeNeedleWorkload, type NeedleWorkloadOptions } from '../kv/eval/workload.js';
import { syntheticSource, type EvalSource } from '../kv/eval/source.js';
import { loadKvTrace, traceSource } from '../kv/eval/traces.js';
import { DEFAULT_BUDGETS, formatKvEvalTable, runKvEval, type KvEvalReport } from '../kv/eval/run.js';
import { renderKvEvalSvg } from '../kv/eval/plot-svg.js';
import { findSparseEvalMethod, sparseEvalMethodNames } from '../kv/eval/sparse.js';
import { addModelOptions, MODEL_ONLY, runEvalKvModel, type EvalKvModelFlags } from '../model/fidelity/cli.js';
import type { RealKvEvalReport } from '../model/fidelity/run.js';
import { REAL_VARIANT_NAMES } from '../model/fidelity/variants.js';
import { addSharedModelOptions, checkNoDumpFlags, runDumpTrace, type DumpTraceFlags } from './dump-trace.js';

const positiveInt = (name: string, max: number) => intArg(name, 1, max);

function seedArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 0xffffffff) throw new InvalidArgumentError(`--seed: expected an integer in [0, 4294967295], received "${value}"`);
  return n;
}

function budgetList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  const out = list.map((s) => (s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : Number(s)));
  if (list.length === 0 || list.some((s) => s === '') || out.some((f) => !(f > 0 && f <= 1))) {
    throw new InvalidArgumentError(`--budgets: expected a comma-separated list of fractions in (0, 1] (or percentages like 5%), received "${value}"`);
  }
  return out;
}

const SPARSE_NAMES: readonly string[] = sparseEvalMethodNames();
const ALL_POLICIES: readonly string[] = [...KV_POLICY_NAMES, ...KV_CACHE_POLICY_NAMES, ...SPARSE_NAMES];

function policyList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim());
  for (const p of list) {
    if (p.includes(':') && SPARSE_NAMES.includes(p.slice(0, p.indexOf(':')))) {
      try {
        findSparseEvalMethod(p); // a sparse method with options, e.g. quest:pageSize=8
      } catch (e) {
        throw new InvalidArgumentError(`--policies: ${e instanceof Error ? e.message : String(e)}`);
      }
      continue;
    }
    if (!ALL_POLICIES.includes(p) && !REAL_VARIANT_NAMES.includes(p)) {
      throw new InvalidArgumentError(`--policies: unknown policy "${p}"; known policies: ${ALL_POLICIES.join(', ')} (sparse methods: ${SPARSE_NAMES.join(', ')}, with options as quest:pageSize=8:sinks=16; with --model also <policy>+merge, int8, int4)`);
    }
  }
  return list;
}

function dtypeArg(value: string): 'f32' | 'f16' {
  if (value !== 'f32' && value !== 'f16') throw new InvalidArgumentError(`--dtype: expected f32 or f16, received "${value}"`);
  return value;
}

interface EvalKvFlags {
  nKv: number; layers: number; heads: number; kvHeads: number; headDim: number; dtype: 'f32' | 'f16';
  needles: number; window: number; probes: number; seed: number;
  workload: 'classic' | 'multi'; questionsAfter?: number;
  budgets: number[]; policies?: KvCompressionPolicy[]; trace?: string;
  json?: string | true; svg?: string; progress: boolean;
  model?: string;
}

/** Options that only shape the synthetic workload (rejected with --trace). */
const SYNTHETIC_ONLY = ['nKv', 'layers', 'heads', 'kvHeads', 'headDim', 'dtype', 'needles', 'workload', 'questionsAfter'] as const;

function workloadArg(value: string): 'classic' | 'multi' {
  if (value !== 'classic' && value !== 'multi') throw new InvalidArgumentError(`--workload: expected classic or multi, received "${value}"`);
  return value;
}

/** Questions asked after the prompt: --questions-after, else all but the first with --workload multi, else 0. */
export function questionsAfterFor(flags: { workload: 'classic' | 'multi'; questionsAfter?: number; needles: number }): number {
  if (flags.questionsAfter !== undefined) {
    if (flags.workload !== 'multi') throw new InvalidArgumentError('--questions-after applies only with --workload multi');
    if (flags.questionsAfter > flags.needles) throw new InvalidArgumentError(`--questions-after: expected at most --needles = ${flags.needles}, received ${flags.questionsAfter}`);
    return flags.questionsAfter;
  }
  return flags.workload === 'multi' ? flags.needles - 1 : 0;
}


export async function runEvalKvCommand(flags: EvalKvFlags, cmd: Command): Promise<KvEvalReport | RealKvEvalReport> {
  if (flags.model !== undefined) {
    return runEvalKvModel(flags as unknown as EvalKvModelFlags, cmd, makeProgressBar('eval kv', flags.progress && flags.json === undefined));
  }
  const modelOnly = MODEL_ONLY.filter((k) => cmd.getOptionValueSource(k) === 'cli');
  if (modelOnly.length > 0) throw new InvalidArgumentError(`--${modelOnly[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies only with --model`);
  const realOnly = (flags.policies as string[] | undefined)?.find((p) => !ALL_POLICIES.includes(p) && findSparseEvalMethod(p) === undefined);
  if (realOnly !== undefined) throw new InvalidArgumentError(`--policies: "${realOnly}" applies only with --model`);
  let source: EvalSource;
  if (flags.trace !== undefined) {
    const given = SYNTHETIC_ONLY.filter((k) => cmd.getOptionValueSource(k) === 'cli');
    if (given.length > 0) throw new InvalidArgumentError(`--${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} shapes the synthetic workload and does not apply with --trace`);
    const trace = loadKvTrace(flags.trace);
    const nProbes = cmd.getOptionValueSource('probes') !== 'cli' && trace.probes !== undefined ? trace.probes : flags.probes;
    source = traceSource(trace, { window: flags.window, nProbes }, flags.seed);
  } else {
    const w: NeedleWorkloadOptions = {
      seed: flags.seed, nLayers: flags.layers, nHeads: flags.heads, nKvHeads: flags.kvHeads, headDim: flags.headDim,
      nKv: flags.nKv, dtype: flags.dtype, nNeedles: flags.needles, window: flags.window, nProbes: flags.probes,
      questionsAfter: questionsAfterFor(flags),
    };
    source = syntheticSource(makeNeedleWorkload(w));
  }
  const bar = makeProgressBar('eval kv', flags.progress && flags.json === undefined);
  let report: KvEvalReport;
  try {
    report = await runKvEval(source, {
      budgets: flags.budgets,
      ...(flags.policies ? { policies: flags.policies } : {}),
      onProgress: bar.tick,
    });
  } finally {
    bar.stop();
  }
  const json = JSON.stringify(report, null, 2);
  if (typeof flags.json === 'string') writeFileSync(flags.json, json + '\n');
  if (flags.svg !== undefined) writeFileSync(flags.svg, renderKvEvalSvg(report));
  console.log(flags.json === true ? json : formatKvEvalTable(report));
  return report;
}

/** Adds `kv` to the `eval` command group. */
export function registerEvalKv(evalCmd: Command): void {
  const kv = evalCmd
    .command('kv')
    .description(
      'KV-cache compression quality of every policy at several budgets: needle retrieval, attention output error and ' +
        'retained attention mass, on a synthetic needle-in-a-haystack workload (RoPE, sink, local bias, topics, outlier ' +
        'channels), on a real Q/K/V trace (--trace file.safetensors), or on a real model (--model main).',
    )
    .option('--n-kv <n>', 'prompt length of the synthetic workload', positiveInt('--n-kv', 1 << 22), 8192)
    .option('--layers <n>', 'layers of the synthetic workload', positiveInt('--layers', 1024), 2)
    .option('--heads <n>', 'query heads (nHeads)', positiveInt('--heads', 1024), 8)
    .option('--kv-heads <n>', 'KV heads (nKvHeads, GQA)', positiveInt('--kv-heads', 1024), 2)
    .option('--head-dim <n>', 'head dimension (even)', positiveInt('--head-dim', 4096), 128)
    .option('--dtype <dtype>', 'k/v dtype of the synthetic workload: f32 or f16', dtypeArg, 'f32')
    .option('--needles <n>', 'needles planted in the synthetic workload', positiveInt('--needles', 4096), 8)
    .option('--workload <kind>', 'classic (every question closes the observation window) or multi (the first question closes it, the others are asked one after another after the prompt: eviction compresses once, sparse methods select per question)', workloadArg, 'classic')
    .option('--questions-after <n>', '--workload multi: questions asked after the prompt (default needles - 1)', intArg('--questions-after', 0, 4096))
    .option('--window <n>', 'observation window: the prompt\'s last queries the policies read', positiveInt('--window', 4096), 32)
    .option('--probes <n>', 'probe queries after the prompt (trace: its last rows)', positiveInt('--probes', 4096), 32)
    .option('--seed <n>', 'seed of the workload and of the random policy', seedArg, 0)
    .option('--budgets <list>', 'fractions of nKv to keep, e.g. 0.01,0.1 or 1%,10%', budgetList, [...DEFAULT_BUDGETS])
    .option('--policies <list>', `policies to evaluate (default all: ${ALL_POLICIES.join(',')})`, policyList)
    .option('--trace <file>', 'evaluate a captured trace (safetensors: layers.<i>.q/k/v) instead of the synthetic workload')
    .option('--json [file]', 'write the full report as JSON to <file>; without <file>, print it instead of the table')
    .option('--svg <file>', 'write an SVG plot: needle retrieval and output error against the budget, per policy')
    .option('--no-progress', 'no progress bar (it is off anyway with --json or when stderr is not a TTY)')
    .option('--dump-trace <file>', 'write a trace of --model over held-out text (with a copy-task needle) for --trace, and stop')
    .option('--no-needle', '--dump-trace: plain held-out text, without the copy-task needle')
    .action(async (opts: EvalKvFlags & DumpTraceFlags, cmd: Command) => {
      if (opts.dumpTrace !== undefined) return void (await runDumpTrace(opts, cmd));
      checkNoDumpFlags(cmd);
      await runEvalKvCommand(opts, cmd);
    });
  addModelOptions(kv, positiveInt); // --model and the real-model eval's flags (lib/model/fidelity/cli.ts)
  addSharedModelOptions(kv, positiveInt); // adds only what is still missing (--dump-trace shares --model, --text, --context)
}
