/**
 * The `--model <name>` branch of `tokenpress eval kv` (lib/cli/eval-kv.ts
 * registers the flags and calls runEvalKvModel): loads the model (and the
 * draft model for speckv), reads the held-out text, runs runRealKvEval, and
 * prints the table / writes --json and --svg.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { intArg } from '../../cli/int-arg.js';
import { ByteLm, modelDir } from '../byte-lm.js';
import { DEFAULT_REAL_BUDGETS, REAL_EVAL_DEFAULTS, runRealKvEval, type RealKvEvalOptions, type RealKvEvalReport } from './run.js';
import { formatRealKvEvalTable, renderRealKvEvalSvg } from './format.js';
import { DEFAULT_REAL_VARIANTS } from './variants.js';

export interface EvalKvModelFlags {
  model: string;
  draft?: string;
  text?: string;
  passages: number;
  context: number;
  continuation: number;
  trials: number;
  needleContext: number;
  digits: number;
  seed: number;
  window: number;
  budgets: number[];
  policies?: string[];
  json?: string | true;
  svg?: string;
  progress: boolean;
}

/** Flags that only shape the synthetic workload or a trace (rejected with --model). */
const NOT_WITH_MODEL = ['nKv', 'layers', 'heads', 'kvHeads', 'headDim', 'dtype', 'needles', 'probes', 'trace'] as const;
/** Flags that only apply with --model. */
export const MODEL_ONLY = ['draft', 'text', 'passages', 'context', 'continuation', 'trials', 'needleContext', 'digits'] as const;

const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A non-negative integer flag parser (0 allowed: --passages 0 / --trials 0 skip a task). */
export const countArg = (name: string, max: number) => intArg(name, 0, max);

/** The held-out text: --text, else .corpus/heldout.txt in the working directory or the package root. */
function heldOutPath(given: string | undefined): string {
  if (given !== undefined) {
    if (!existsSync(given)) throw new InvalidArgumentError(`--text: expected a readable text file, received "${given}" (not found)`);
    return given;
  }
  const root = dirname(dirname(dirname(modelDir('main'))));
  const candidates = [resolve('.corpus', 'heldout.txt'), join(root, '.corpus', 'heldout.txt')];
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new InvalidArgumentError(`--text: no held-out text given and none found at ${candidates.join(' or ')}; pass --text <file> (text the model was not trained on)`);
  }
  return found;
}

/** Checks the flag combination, then runs the evaluation (see the module comment). */
export async function runEvalKvModel(
  flags: EvalKvModelFlags,
  cmd: Command,
  bar: { tick: (done: number, total: number, label: string) => void; stop: () => void },
): Promise<RealKvEvalReport> {
  const bad = NOT_WITH_MODEL.filter((k) => cmd.getOptionValueSource(k) === 'cli');
  if (bad.length > 0) {
    throw new InvalidArgumentError(`${flagName(bad[0]!)} shapes the synthetic workload or a trace and does not apply with --model`);
  }
  if (flags.passages === 0 && flags.trials === 0) {
    throw new InvalidArgumentError('--passages / --trials: expected at least one task (--passages or --trials >= 1), received 0 and 0');
  }
  const text = new Uint8Array(readFileSync(heldOutPath(flags.text)));
  const budgets = cmd.getOptionValueSource('budgets') === 'cli' ? flags.budgets : [...DEFAULT_REAL_BUDGETS];
  const policies = flags.policies ?? [...DEFAULT_REAL_VARIANTS];
  const model = await ByteLm.load(flags.model, { plain: false });
  let draft: ByteLm | undefined;
  const wantsSpec = policies.some((p) => p.startsWith('speckv'));
  if (wantsSpec && flags.draft !== 'none') {
    try {
      draft = await ByteLm.load(flags.draft ?? 'draft', { plain: false });
    } catch (e) {
      if (cmd.getOptionValueSource('draft') === 'cli') throw e;
      draft = undefined; // speckv is reported as skipped
    }
  }
  const options: RealKvEvalOptions = {
    text, budgets, policies,
    passages: flags.passages, context: flags.context, continuation: flags.continuation,
    trials: flags.trials, needleContext: flags.needleContext, digits: flags.digits,
    seed: flags.seed, window: flags.window, onProgress: bar.tick,
    ...(draft ? { draft } : {}),
  };
  let report: RealKvEvalReport;
  try {
    report = await runRealKvEval(model, options);
  } finally {
    bar.stop();
    await model.release();
    await draft?.release();
  }
  const json = JSON.stringify(report, null, 2);
  if (typeof flags.json === 'string') writeFileSync(flags.json, json + '\n');
  if (flags.svg !== undefined) writeFileSync(flags.svg, renderRealKvEvalSvg(report));
  console.log(flags.json === true ? json : formatRealKvEvalTable(report));
  return report;
}

/** Registers the --model flags on `eval kv` (defaults: REAL_EVAL_DEFAULTS). */
export function addModelOptions(cmd: Command, positiveInt: (name: string, max: number) => (v: string) => number): Command {
  const D = REAL_EVAL_DEFAULTS;
  return cmd
    .option('--model <name>', 'evaluate on a real model instead: a built-in byte LM (main, draft) or a model directory; loss after compression and a needle copy test on held-out text (budgets default 5%,10%,25%,50%)')
    .option('--draft <name>', 'with --model: draft model for speckv\'s lookahead queries (default draft; none: skip speckv)')
    .option('--text <file>', 'with --model: held-out text (default .corpus/heldout.txt)')
    .option('--passages <n>', 'with --model: held-out passages for the loss (0: skip)', countArg('--passages', 100000), D.passages)
    .option('--context <n>', 'with --model: context bytes compressed before the scored continuation', positiveInt('--context', 1 << 20), D.context)
    .option('--continuation <n>', 'with --model: bytes scored after the compressed context', positiveInt('--continuation', 1 << 20), D.continuation)
    .option('--trials <n>', 'with --model: needle (copy test) trials (0: skip)', countArg('--trials', 100000), D.trials)
    .option('--needle-context <n>', 'with --model: needle context bytes', positiveInt('--needle-context', 1 << 20), D.needleContext)
    .option('--digits <n>', 'with --model: key digits of the needle', positiveInt('--digits', 32), D.digits);
}
