/**
 * `tokenpress eval kv --dump-trace file.safetensors --model <name>`: a real
 * trace of the byte-level model over held-out text (lib/model/trace-dump.ts),
 * for `tokenpress eval kv --trace file.safetensors`.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ensureCorpus } from '../../bench/corpus.js';
import { ByteLm } from '../model/byte-lm.js';
import { describeLmTrace, dumpLmTrace, type LmTraceResult } from '../model/trace-dump.js';

export interface DumpTraceFlags {
  dumpTrace?: string;
  model?: string;
  context?: number;
  needle: boolean;
  text?: string;
  probes: number;
  seed: number;
}

/** Options that do not apply to --dump-trace (the camelCase names commander uses). */
const NOT_WITH_DUMP = ['trace', 'nKv', 'layers', 'heads', 'kvHeads', 'headDim', 'dtype', 'needles', 'window', 'budgets', 'policies', 'json', 'svg'] as const;
/** Options that only apply to --dump-trace. */
const DUMP_ONLY = ['context', 'needle', 'text'] as const;

const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * Registers --model, --text and --context on `eval kv` unless a command
 * already has them (the real-model evaluation, `eval kv --model`, defines
 * the same three with the same meaning: whichever registers first owns the
 * help text; --dump-trace reads --context only when given on the command line).
 */
export function addSharedModelOptions(kv: Command, positiveInt: (name: string, max: number) => (value: string) => number): Command {
  const has = (long: string) => kv.options.some((o) => o.long === long);
  if (!has('--model')) kv.option('--model <name>', 'the byte-level model: main, draft or a directory (models/lm/)');
  if (!has('--text')) kv.option('--text <file>', 'with --dump-trace: the text to run the model over (default: the held-out split, .corpus/heldout.txt)');
  if (!has('--context')) kv.option('--context <n>', 'with --dump-trace: bytes in the trace (default: the model\'s context)', positiveInt('--context', 1 << 20));
  return kv;
}

/** Refuses --no-needle without --dump-trace, and --context / --text without --dump-trace or --model (called by the eval path). */
export function checkNoDumpFlags(cmd: Command): void {
  const given = DUMP_ONLY.filter((k) => cmd.getOptionValueSource(k) === 'cli' && (k === 'needle' || cmd.getOptionValue('model') === undefined));
  if (given.length > 0) {
    throw new InvalidArgumentError(given[0] === 'needle' ? '--no-needle applies only with --dump-trace <file>' : `${flag(given[0]!)} applies only with --dump-trace <file> or --model`);
  }
}

/** Checks the flags, loads the model and the held-out text, writes the trace and prints what it wrote. */
export async function runDumpTrace(flags: DumpTraceFlags, cmd: Command): Promise<LmTraceResult> {
  const given = NOT_WITH_DUMP.filter((k) => cmd.getOptionValueSource(k) === 'cli');
  if (given.length > 0) throw new InvalidArgumentError(`${flag(given[0]!)} does not apply with --dump-trace (it writes a trace and stops)`);
  if (flags.model === undefined) throw new InvalidArgumentError('--dump-trace: expected --model <name> (main, draft or a model directory), received none');
  const model = await ByteLm.load(flags.model, { plain: false });
  try {
    // Another command's default --context (the real-model eval's) must not size the trace: only an explicit one does.
    const context = cmd.getOptionValueSource('context') === 'cli' ? flags.context : undefined;
    if (context !== undefined && context > model.config.context) {
      throw new InvalidArgumentError(`--context: expected at most the model's context ${model.config.context}, received ${context}`);
    }
    let source: Uint8Array;
    let sourceName: string;
    if (flags.text !== undefined) {
      try { source = new Uint8Array(readFileSync(flags.text)); } catch (e) {
        throw new InvalidArgumentError(`--text: expected a readable file, received "${flags.text}" (${(e as Error).message})`);
      }
      sourceName = basename(flags.text);
    } else {
      source = new Uint8Array(readFileSync((await ensureCorpus()).heldOutPath));
      sourceName = '.corpus/heldout.txt';
    }
    const r = await dumpLmTrace(model, flags.model, source, sourceName, flags.dumpTrace!, {
      ...(context !== undefined ? { context } : {}),
      seed: flags.seed, probes: flags.probes, needle: flags.needle,
    });
    console.log(describeLmTrace(r, model));
    return r;
  } finally {
    await model.release();
  }
}
