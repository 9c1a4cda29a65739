/**
 * `tokenpress eval prompt`: prompt-compression fidelity of every method
 * (lib/prompt/eval/methods.ts) at several rates, on dictionary-definition
 * questions built from the held-out corpus (lib/prompt/eval/dataset.ts).
 * Prints a markdown table; --json writes the whole report.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { makeProgressBar } from './progress-bar.js';
import { Command, InvalidArgumentError } from 'commander';
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200kCount } from 'gpt-tokenizer/encoding/o200k_base';
import { intArg } from './int-arg.js';
import { ensureCorpus, CORPUS_BLOCK } from '../../bench/corpus.js';
import { cpuModel } from '../../bench/limits.js';
import { buildPromptEvalDataset, PROMPT_EVAL_DATASET_DEFAULTS } from '../prompt/eval/dataset.js';
import { findPromptEvalMethod, promptEvalMethodNames, PROMPT_EVAL_METHODS, type PromptEvalMethod } from '../prompt/eval/methods.js';
import { DEFAULT_PROMPT_EVAL_RATES, formatPromptEvalTable, rateLabel, runPromptEval, type PromptEvalReport } from '../prompt/eval/run.js';
import type { CountTokens } from '../prompt/types.js';

/** Contexts of a --quick run (unless --contexts is given). */
export const QUICK_CONTEXTS = 6;

const TOKENIZERS: Record<string, CountTokens> = { cl100k: cl100kCount, o200k: o200kCount };

function rateList(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const out = parts.map((s) => {
    const frac = /^(\d+)\/(\d+)$/.exec(s);
    if (frac) return Number(frac[1]) / Number(frac[2]);
    if (s.endsWith('%')) return Number(s.slice(0, -1)) / 100;
    return s === '' ? NaN : Number(s);
  });
  if (out.some((r) => !(r > 0 && r <= 1))) {
    throw new InvalidArgumentError(`--rates: expected a comma-separated list of rates in (0, 1] (0.5, 1/3 or 20%), received "${value}"`);
  }
  return out;
}

function methodList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim());
  for (const name of list) {
    try {
      findPromptEvalMethod(name);
    } catch (e) {
      throw new InvalidArgumentError(`--methods: ${e instanceof Error ? e.message.replace(/^method: /, '') : String(e)}`);
    }
  }
  return list;
}

function tokenizerArg(value: string): string {
  if (!(value in TOKENIZERS)) throw new InvalidArgumentError(`--tokenizer: expected ${Object.keys(TOKENIZERS).join(' or ')}, received "${value}"`);
  return value;
}

export interface EvalPromptFlags {
  contexts?: number;
  contextBytes: number;
  questions: number;
  answerWords: number;
  rates: number[];
  methods?: string[];
  seed: number;
  tokenizer: string;
  text?: string;
  quick?: boolean;
  json?: string | true;
  progress: boolean;
}


/** Runs the eval for parsed flags: prints the table (or the JSON with bare --json), writes --json <file>. */
export async function runEvalPromptCommand(flags: EvalPromptFlags): Promise<PromptEvalReport> {
  const methods: PromptEvalMethod[] = flags.methods ? flags.methods.map(findPromptEvalMethod) : [...PROMPT_EVAL_METHODS];
  let text: string;
  let source: string;
  let blockBytes: number;
  if (flags.text !== undefined) {
    text = readFileSync(flags.text, 'utf8');
    source = flags.text;
    blockBytes = 0;
  } else {
    const corpus = await ensureCorpus();
    text = readFileSync(corpus.heldOutPath, 'utf8');
    source = `held-out split: ${corpus.description}`;
    blockBytes = CORPUS_BLOCK;
  }
  const dataset = buildPromptEvalDataset(text, {
    seed: flags.seed,
    contexts: flags.contexts ?? (flags.quick ? QUICK_CONTEXTS : PROMPT_EVAL_DATASET_DEFAULTS.contexts),
    contextBytes: flags.contextBytes,
    questionsPerContext: flags.questions,
    maxAnswerWords: flags.answerWords,
    minAnswerWords: Math.min(PROMPT_EVAL_DATASET_DEFAULTS.minAnswerWords, flags.answerWords),
    blockBytes,
  });
  const bar = makeProgressBar('eval prompt', flags.progress && flags.json !== true);
  let report: PromptEvalReport;
  try {
    report = await runPromptEval(dataset, {
      methods,
      rates: flags.rates,
      countTokens: TOKENIZERS[flags.tokenizer]!,
      tokenizer: `${flags.tokenizer}_base (gpt-tokenizer)`,
      seed: flags.seed,
      onProgress: bar.tick,
    });
  } finally {
    bar.stop();
  }
  report.machine = { cpu: cpuModel(), node: process.version };
  report.dataset.source = source;
  report.command =
    `tokenpress eval prompt --contexts ${dataset.options.contexts} --context-bytes ${flags.contextBytes} --questions ${flags.questions} ` +
    `--answer-words ${flags.answerWords} --rates ${flags.rates.map(rateLabel).join(',')} --methods ${methods.map((m) => m.name).join(',')} ` +
    `--seed ${flags.seed} --tokenizer ${flags.tokenizer}${flags.text !== undefined ? ` --text ${flags.text}` : ''}`;
  const json = JSON.stringify(report, null, 2);
  if (typeof flags.json === 'string') writeFileSync(flags.json, json + '\n');
  console.log(flags.json === true ? json : formatPromptEvalTable(report));
  return report;
}

/** Adds `prompt` to the `eval` command group. */
export function registerEvalPrompt(evalCmd: Command): void {
  const d = PROMPT_EVAL_DATASET_DEFAULTS;
  evalCmd
    .command('prompt')
    .description(
      'Prompt-compression fidelity of every method at several rates: the share of answer spans kept whole (questions ' +
        '"What does <headword> mean?" over contexts of consecutive GCIDE entries from the held-out corpus), the achieved ' +
        'rate in target-LLM tokens against the target, and the throughput. Random and first/last words are the floors.',
    )
    .option('--contexts <n>', `contexts (default ${d.contexts}; ${QUICK_CONTEXTS} with --quick)`, intArg('--contexts', 1, 1_000_000))
    .option('--context-bytes <n>', 'most UTF-8 bytes per context', intArg('--context-bytes', 64, 1 << 24), d.contextBytes)
    .option('--questions <n>', 'most questions per context', intArg('--questions', 1, 1000), d.questionsPerContext)
    .option('--answer-words <n>', 'most words per answer span', intArg('--answer-words', 1, 1000), d.maxAnswerWords)
    .option('--rates <list>', `target rates, e.g. 1/2,1/3,1/5 or 0.5,20% (default ${DEFAULT_PROMPT_EVAL_RATES.map(rateLabel).join(',')})`, rateList, [...DEFAULT_PROMPT_EVAL_RATES])
    .option('--methods <list>', `methods (default all: ${promptEvalMethodNames().join(',')})`, methodList)
    .option('--seed <n>', 'seed of the contexts, the questions and the random floor', intArg('--seed', 0, 0xffffffff), 0)
    .option('--tokenizer <name>', 'target tokenizer the budgets and rates count: cl100k or o200k', tokenizerArg, 'cl100k')
    .option('--text <file>', 'GCIDE-format dictionary text (UTF-8) instead of the held-out corpus')
    .option('--quick', `a small run (${QUICK_CONTEXTS} contexts)`)
    .option('--json [file]', 'write the full report as JSON to <file>; without <file>, print it instead of the table')
    .option('--no-progress', 'no progress bar (it is off anyway with --json or when stderr is not a TTY)')
    .action(async (opts: EvalPromptFlags) => {
      await runEvalPromptCommand(opts);
    });
}
