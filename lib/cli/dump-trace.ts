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

/** Refuses --context / --no-needle without --dump-trace (called by the eval path). */
export function checkNoDumpFlags(cmd: Command): void {
  const given = DUMP_ONLY.filter((k) => cmd.getOptionValueSource(k) === 'cli');
  if (given.length > 0) throw new InvalidArgumentError(`${given[0] === 'needle' ? '--no-needle' : flag(given[0]!)} applies only with --dump-trace <file>`);
}

/** Checks the flags, loads the model and the held-out text, writes the trace and prints what it wrote. */
export async function runDumpTrace(flags: DumpTraceFlags, cmd: Command): Promise<LmTraceResult> {
  const given = NOT_WITH_DUMP.filter((k) => cmd.getOptionValueSource(k) === 'cli');
  if (given.length > 0) throw new InvalidArgumentError(`${flag(given[0]!)} does not apply with --dump-trace (it writes a trace and stops)`);
  if (flags.model === undefined) throw new InvalidArgumentError('--dump-trace: expected --model <name> (main, draft or a model directory), received none');
  const model = await ByteLm.load(flags.model, { plain: false });
  try {
    if (flags.context !== undefined && flags.context > model.config.context) {
      throw new InvalidArgumentError(`--context: expected at most the model's context ${model.config.context}, received ${flags.context}`);
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
      ...(flags.context !== undefined ? { context: flags.context } : {}),
      seed: flags.seed, probes: flags.probes, needle: flags.needle,
    });
    console.log(describeLmTrace(r, model));
    return r;
  } finally {
    await model.release();
  }
}
