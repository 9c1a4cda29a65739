#!/usr/bin/env node
/**
 * The `tokenpress` command line: info, benchmarks, and the tour `npm start` runs.
 * Every command takes --json for machine-readable output.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runInfo } from './info.js';
import { runTour } from './tour.js';
import { registerEvalKv } from './eval-kv.js';
import { registerEvalRank } from './eval-rank.js';
import { registerEvalPrompt } from './eval-prompt.js';
import { registerVision } from './vision.js';
import { registerTrainModel } from './train-model.js';
import { registerGenerate } from './generate.js';
import { registerBenchLm } from '../../bench/lm-decode.js';
import { runAttentionBench, printAttentionTable } from '../../bench/attention.js';
import { runKvBench, printKvTable } from '../../bench/kv.js';
import { runSparseBench, printSparseTable, SPARSE_BENCH_METHODS } from '../../bench/sparse.js';
import { runSpecBench, printSpecTable, SPEC_DRAFTERS, SPEC_MODES, type SpecDrafterName, type SpecMode } from '../../bench/spec.js';
import { runCodingBench, printCodingTable } from '../../bench/coding.js';
import { runLmCodingBench, printLmCodingTable } from '../../bench/lm-coding.js';
import { registerZip } from './zip.js';
import { registerCompressPrompt } from './compress-prompt.js';
import { registerTokenizer } from './tokenizer.js';
import { runModelBench, printModelTable } from '../../bench/model.js';
import { runLimitsBench, printLimitsTable } from '../../bench/limits.js';
import { runOverheadBench, printOverheadTable } from '../../bench/call-overhead.js';

function threadList(value: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 1024)) {
    throw new InvalidArgumentError(`expected a comma-separated list of thread counts in [1, 1024], received "${value}"`);
  }
  return list;
}

const program = new Command()
  .name('tokenpress')
  .description('Token compression for LLM inference: fast attention over full, compacted or sparse KV caches.')
  .showHelpAfterError()
  .configureHelp({ sortSubcommands: false });

program
  .command('info')
  .description('Show the version, the CPU features and ISA the kernels use, the thread pool size and the CUDA status.')
  .option('--json', 'print JSON instead of text')
  .action((opts: { json?: boolean }) => {
    runInfo({ json: opts.json === true });
  });

const bench = program.command('bench').description('Benchmarks: each prints a table and writes a JSON report to bench-results/.');
bench
  .command('attention')
  .description(
    'Decode (nHeads 32, headDim 128, nKv 4k-64k, f32/f16 KV, GQA 32/8) and prefill (2k x 2k causal) attention, ' +
      'measured side by side with the machine\'s read bandwidth, its FP32 FMA peak and onnxruntime-node graphs.',
  )
  .option('--quick', 'a small subset (about a minute): the workload of `npm start`')
  .option('--threads <list>', 'thread counts to measure, e.g. 1,2 (default: 1 and all cores)', threadList)
  .option('--out <file>', 'where to write the JSON report (default bench-results/attention-<date>.json)')
  .option('--no-ort', 'skip the onnxruntime-node graphs (ours, the roofline peer and the limits only)')
  .option('--no-progress', 'no progress bar')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (opts: { quick?: boolean; threads?: number[]; out?: string; ort: boolean; progress: boolean; json?: boolean }) => {
    const report = await runAttentionBench({
      quick: opts.quick === true,
      json: opts.json === true,
      progress: opts.progress,
      ort: opts.ort,
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.out ? { outFile: opts.out } : {}),
    });
    if (opts.json !== true) printAttentionTable(report);
  });

bench
  .command('limits')
  .description(
    'The machine\'s own limits every benchmark divides by (bench/limits.ts): read and copy bandwidth over a 1 GiB array, ' +
      'FP32 FMA peak and bf16 dot-product peak, with 1 thread and all cores; and the CPU model.',
  )
  .option('--threads <list>', 'thread counts to measure, e.g. 1,2 (default: 1 and all cores)', threadList)
  .option('--reps <n>', 'repetitions per measurement, best kept (default 5)', (v: string) => positiveInt(v))
  .option('--out <file>', 'where to write the JSON report (default bench-results/limits-<date>.json)')
  .option('--json', 'print the JSON report instead of the table')
  .action((o: { threads?: number[]; reps?: number; out?: string; json?: boolean }) => {
    const report = runLimitsBench({
      json: o.json === true,
      ...(o.threads ? { threads: o.threads } : {}),
      ...(o.reps ? { reps: o.reps } : {}),
      ...(o.out ? { outFile: o.out } : {}),
    });
    if (o.json !== true) printLimitsTable(report);
  });

bench
  .command('overhead')
  .description(
    'Fixed cost of one small call (bench/call-overhead.ts): CPU time per attention() call with 16 keys, per GQA decode call ' +
      '(32 / 8 heads x 4096 f16 keys), per KvCache.attend on a 16-token cache, and per bare addon call (params object and positional forms), in a tight loop.',
  )
  .option('--calls <n>', 'calls per run of the small cases (default 200000; the GQA case runs calls / 20)', positiveInt)
  .option('--reps <n>', 'runs per case, median reported (default 7)', positiveInt)
  .option('--cases <list>', 'cases to run: native, args, tiny, gqa, attend (default all)', (v: string) => v.split(',').map((s) => s.trim()))
  .option('--out <file>', 'where to write the JSON report (default bench-results/overhead-<date>.json)')
  .option('--json', 'print the JSON report instead of the table')
  .action((o: { calls?: number; reps?: number; cases?: string[]; out?: string; json?: boolean }) => {
    const report = runOverheadBench({
      json: o.json === true,
      ...(o.calls ? { calls: o.calls } : {}),
      ...(o.reps ? { reps: o.reps } : {}),
      ...(o.cases ? { cases: o.cases } : {}),
      ...(o.out ? { outFile: o.out } : {}),
    });
    if (o.json !== true) printOverheadTable(report);
  });

function intList(value: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError(`expected a comma-separated list of positive integers, received "${value}"`);
  }
  return list;
}

/** A comma-separated list of names from `allowed`. */
function choiceList<T extends string>(allowed: readonly T[], what: string): (v: string) => T[] {
  return (v: string) => {
    const list = v.split(',').map((x) => x.trim());
    for (const x of list) if (!(allowed as readonly string[]).includes(x)) throw new InvalidArgumentError(`expected ${what} among ${allowed.join(', ')}, received "${x}"`);
    return list as T[];
  };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, received "${value}"`);
  return n;
}

bench
  .command('kv')
  .description(
    'KV cache: time to score, select and compact 32 layers x 8 KV heads x 32k tokens x headDim 128 (f16) down to 2k and 4k ' +
      'tokens for every policy; int8/int4 quantization, memory and decode time; all against the read bandwidth measured in the same run.',
  )
  .option('--tokens <n>', 'tokens per head (default 32768)', positiveInt)
  .option('--layers <n>', 'layers of the f16 cache (default 32)', positiveInt)
  .option('--measure-layers <n>', 'layers each policy compresses per repetition (default 2)', positiveInt)
  .option('--quant-layers <n>', 'layers of the int8/int4 caches (default 8)', positiveInt)
  .option('--budgets <list>', 'tokens per head to compress to (default 2048,4096)', intList)
  .option('--policies <list>', 'policies to measure (default all)', (v: string) => v.split(',').map((s) => s.trim()))
  .option('--reps <n>', 'repetitions (default 3)', positiveInt)
  .option('--out <file>', 'where to write the JSON report (default bench-results/kv-<date>.json)')
  .option('--no-progress', 'no progress bar')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (o: { tokens?: number; layers?: number; measureLayers?: number; quantLayers?: number; budgets?: number[]; policies?: string[]; reps?: number; out?: string; progress: boolean; json?: boolean }) => {
    const report = await runKvBench({
      ...(o.tokens ? { tokens: o.tokens } : {}),
      ...(o.layers ? { layers: o.layers } : {}),
      ...(o.measureLayers ? { measureLayers: o.measureLayers } : {}),
      ...(o.quantLayers ? { quantLayers: o.quantLayers } : {}),
      ...(o.budgets ? { budgets: o.budgets } : {}),
      ...(o.policies ? { policies: o.policies } : {}),
      ...(o.reps ? { reps: o.reps } : {}),
      ...(o.out ? { outFile: o.out } : {}),
      progress: o.progress,
      json: o.json === true,
    });
    if (o.json !== true) printKvTable(report);
  });

bench
  .command('sparse')
  .description(
    'Sparse decoding (issue 15): one decode step over 32 layers x 8 KV heads x headDim 128 (f16, 32 query heads) at 32k and 128k ' +
      'tokens, budget 2048: selection, gathered attention and the total per method against the dense step and the read bandwidth ' +
      'measured in the same run; summary upkeep on append and summary memory. Layers beyond --max-gib are modelled (per layer x layers).',
  )
  .option('--tokens <list>', 'context lengths, tokens per KV head (default 32768,131072)', intList)
  .option('--budgets <list>', 'tokens per KV head each sparse step attends (default 2048)', intList)
  .option('--layers <n>', 'layers of the modelled decode step (default 32)', positiveInt)
  .option('--kv-heads <n>', 'KV heads (default 8)', positiveInt)
  .option('--heads <n>', 'query heads, a multiple of --kv-heads (default 32)', positiveInt)
  .option('--head-dim <n>', 'head dimension (default 128)', positiveInt)
  .option('--methods <list>', `sparse methods (default all: ${SPARSE_BENCH_METHODS.map((m) => m.name).join(',')})`, (v: string) => v.split(',').map((s) => s.trim()))
  .option('--reps <n>', 'interleaved passes per measurement, medians reported (default 7)', positiveInt)
  .option('--max-gib <gib>', 'most GiB of K + V held at once; sets the layers measured per size (default 4)', (v: string) => {
    const n = Number(v);
    if (!(n > 0 && n <= 1024)) throw new InvalidArgumentError(`expected a number of GiB in (0, 1024], received "${v}"`);
    return n;
  })
  .option('--quick', 'a small workload for CI (8192 tokens, budget 512, 0.5 GiB, 3 reps)')
  .option('--out <file>', 'where to write the JSON report (default bench-results/sparse-<date>.json)')
  .option('--no-progress', 'no progress bar')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (o: { tokens?: number[]; budgets?: number[]; layers?: number; kvHeads?: number; heads?: number; headDim?: number; methods?: string[]; reps?: number; maxGib?: number; quick?: boolean; out?: string; progress: boolean; json?: boolean }) => {
    const report = await runSparseBench({
      tokens: o.tokens, budgets: o.budgets, layers: o.layers, kvHeads: o.kvHeads, heads: o.heads, headDim: o.headDim,
      methods: o.methods, reps: o.reps, maxGib: o.maxGib, quick: o.quick === true,
      ...(o.out ? { outFile: o.out } : {}),
      progress: o.progress,
      json: o.json === true,
    });
    if (o.json !== true) printSparseTable(report);
  });

bench
  .command('spec')
  .description(
    'Speculative decoding (issue 16) with the built-in byte model on held-out text: mean accepted tokens per target call and ' +
      'target calls per token for Token Recycling, prompt lookup and no speculation, greedy and sampled; the teacher-forced share ' +
      'of true next bytes in the drafted tree; the 81-node tree pass against a single-token step at 4k and 32k tokens; the ' +
      "drafter's cost per step.",
  )
  .option('--prompts <n>', 'held-out prompts (default 16)', positiveInt)
  .option('--prompt-bytes <n>', 'bytes per prompt (default 256)', positiveInt)
  .option('--tokens <n>', 'bytes generated per prompt (default 64)', positiveInt)
  .option('--drafters <list>', `drafters (default all: ${SPEC_DRAFTERS.join(',')})`, choiceList(SPEC_DRAFTERS, 'drafters'))
  .option('--modes <list>', `verification (default all: ${SPEC_MODES.join(',')})`, choiceList(SPEC_MODES, 'modes'))
  .option('--teacher-bytes <n>', 'bytes of the teacher-forced passage (default 8192)', positiveInt)
  .option('--tree-tokens <list>', 'cache sizes of the tree-pass cost (default 4096,32768)', intList)
  .option('--max-nodes <n>', 'most tree nodes per target call in generation, root included (default 81)', positiveInt)
  .option('--reps <n>', 'passes per timing, medians reported (default 7)', positiveInt)
  .option('--quick', 'a smoke run (2 prompts of 64 bytes, 16 generated, a 512-token tree pass)')
  .option('--out <file>', 'where to write the JSON report (default bench-results/spec-<date>.json)')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (o: { prompts?: number; promptBytes?: number; tokens?: number; drafters?: SpecDrafterName[]; modes?: SpecMode[]; teacherBytes?: number; treeTokens?: number[]; maxNodes?: number; reps?: number; quick?: boolean; out?: string; json?: boolean }) => {
    const report = await runSpecBench({
      maxNodes: o.maxNodes,
      prompts: o.prompts, promptBytes: o.promptBytes, tokens: o.tokens, drafters: o.drafters, modes: o.modes,
      teacherBytes: o.teacherBytes, treeTokens: o.treeTokens, reps: o.reps, quick: o.quick === true, json: o.json === true,
      ...(o.out ? { outFile: o.out } : {}),
    });
    if (o.json !== true) printSpecTable(report);
  });

bench
  .command('coding')
  .description(
    'Text coding on held-out English (Debian GCIDE + fortunes, fetched once): plain coding with the built-in model and with ' +
      'adaptive mixing, Equal-Info windows (b = 16..128, 8/16-bit tokens) beside the paper, the classical compressors, and the ' +
      'raw coder against @thi.ng/range-coder and memcpy.',
  )
  .option('--quick', 'the first 1 MiB of the held-out text, no classical compressors')
  .option('--no-classical', 'skip the classical compressors')
  .option('--out <file>', 'where to write the JSON report (default bench-results/coding-<date>.json)')
  .option('--no-progress', 'no progress bar')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (o: { quick?: boolean; classical: boolean; out?: string; progress: boolean; json?: boolean }) => {
    const report = await runCodingBench({
      quick: o.quick === true,
      classical: o.classical,
      progress: o.progress,
      json: o.json === true,
      ...(o.out ? { outFile: o.out } : {}),
    });
    if (o.json !== true) printCodingTable(report);
  });

function startByteArg(value: string): number | null {
  if (value === 'none') return null;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new InvalidArgumentError(`expected a byte value in [0, 255] or "none", received "${value}"`);
  return n;
}

bench
  .command('lm-coding')
  .description(
    'The trained byte LM (models/lm/main, draft) as the coders\' model vs the built-in n-gram model: Equal-Info windows ' +
      '(b = 16, 16-bit tokens, beside the paper\'s 5.31 bytes/token) and plain coding, bits/byte, encode/decode bytes/s and ' +
      'a round-trip check, on the held-out split and on a text from outside the training corpus (GPL-3).',
  )
  .option('--bytes <n>', 'bytes per text (default 16384)', positiveInt)
  .option('--slices <n>', 'evenly spaced documents per text (default 4)', positiveInt)
  .option('--models <list>', 'LMs: built-in names or directories (default main,draft)', (v: string) => v.split(',').map((s) => s.trim()))
  .option('--text <file>', 'the outside text (default /usr/share/common-licenses/GPL-3)')
  .option('--context-limit <n>', 'the LM context limit before it slides (default: the trained context)', positiveInt)
  .option('--start-byte <n|none>', 'a byte the LM sees before every window and document (default none: the first byte gets the model\'s stationary byte distribution)', startByteArg)
  .option('--out <file>', 'where to write the JSON report (default bench-results/lm-coding-<date>.json)')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (o: { bytes?: number; slices?: number; models?: string[]; text?: string; contextLimit?: number; startByte?: number | null; out?: string; json?: boolean }) => {
    const report = await runLmCodingBench({
      json: o.json === true,
      ...(o.bytes ? { bytes: o.bytes } : {}),
      ...(o.slices ? { slices: o.slices } : {}),
      ...(o.models ? { models: o.models } : {}),
      ...(o.text ? { textFile: o.text } : {}),
      ...(o.contextLimit ? { contextLimit: o.contextLimit } : {}),
      ...(o.startByte !== undefined ? { startByte: o.startByte } : {}),
      ...(o.out ? { outFile: o.out } : {}),
    });
    if (o.json !== true) printLmCodingTable(report);
  });

bench
  .command('model')
  .description(
    'Byte model: load time of a .tpm file (default: the embedded model), masses() ns per call and bits/byte on the ' +
      'held-out split of the Debian corpus, with full context and with the context restarting every 8 and 16 bytes.',
  )
  .option('--model <file>', 'model file (default models/default.tpm)')
  .option('--max-bytes <n>', 'use only the first n held-out bytes', positiveInt)
  .option('--out <file>', 'where to write the JSON report (default bench-results/model-<date>.json)')
  .option('--json', 'print the JSON report instead of the table')
  .action(async (o: { model?: string; maxBytes?: number; out?: string; json?: boolean }) => {
    const report = await runModelBench({
      ...(o.model ? { file: o.model } : {}),
      ...(o.maxBytes ? { maxBytes: o.maxBytes } : {}),
      ...(o.out ? { outFile: o.out } : {}),
    });
    if (o.json === true) console.log(JSON.stringify(report, null, 2));
    else printModelTable(report);
  });

registerZip(program);
registerCompressPrompt(program);

const evalCmd = program.command('eval').description('Quality evaluations: each prints a table; --json writes the report.');
registerEvalKv(evalCmd);
registerEvalRank(evalCmd);
registerEvalPrompt(evalCmd);
registerVision(evalCmd, bench);

registerTrainModel(program);

registerGenerate(program);
registerBenchLm(bench);
registerTokenizer(program);

program
  .command('tour', { isDefault: false })
  .description('The main job (`npm start`): backend info, then a quick attention benchmark with its table.')
  .option('--json', 'print JSON instead of text')
  .action(async (opts: { json?: boolean }) => runTour({ json: opts.json === true }));

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`tokenpress: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
