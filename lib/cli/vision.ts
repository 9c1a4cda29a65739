/**
 * `tokenpress eval vision` (quality: PSNR of the rebuilt photos and region
 * retention, lib/vision/eval/run.ts) and `tokenpress bench vision` (speed:
 * native vs JS reference vs one pass over the tokens, bench/vision.ts), over
 * every method of lib/vision/eval/methods.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from './int-arg.js';
import { makeProgressBar } from './progress-bar.js';
import { selectVisionMethods, visionMethodNames } from '../vision/eval/methods.js';
import { DEFAULT_VISION_RATIOS, formatVisionEvalTable, runVisionEval } from '../vision/eval/run.js';
import { renderVisionEvalSvg } from '../vision/eval/plot-svg.js';
import { VISION_LAYOUTS, type VisionLayout } from '../vision/eval/patches.js';
import { DEFAULT_VISION_DIMS, DEFAULT_VISION_SHAPES, formatVisionBenchTable, runVisionBench, type VisionBenchShape } from '../../bench/vision.js';
import { cpuModel } from '../../bench/limits.js';

function methodList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim());
  const known = visionMethodNames();
  for (const m of list) if (!known.includes(m)) throw new InvalidArgumentError(`--methods: unknown method "${m}"; known: ${known.join(', ')}`);
  return list;
}

function ratioList(value: string): number[] {
  const list = value.split(',').map((s) => s.trim());
  const out = list.map((s) => (s.endsWith('%') ? Number(s.slice(0, -1)) / 100 : Number(s)));
  if (list.some((s) => s === '') || out.some((f) => !(f > 0 && f <= 1))) {
    throw new InvalidArgumentError(`--ratios: expected a comma-separated list of fractions in (0, 1] (or percentages like 10%), received "${value}"`);
  }
  return out;
}

function layoutList(value: string): VisionLayout[] {
  const list = value.split(',').map((s) => s.trim());
  for (const l of list) if (!(VISION_LAYOUTS as readonly string[]).includes(l)) throw new InvalidArgumentError(`--layouts: expected base and/or anyres, received "${l}"`);
  return list as VisionLayout[];
}

function shapeList(value: string): VisionBenchShape[] {
  return value.split(',').map((s) => {
    const m = /^(?:(\d+)x)?(\d+)$/.exec(s.trim());
    const frames = m ? Number(m[1] ?? 1) : NaN;
    const n = m ? Number(m[2]) : NaN;
    if (!m || !(frames >= 1 && frames <= 4096 && n >= 1 && n <= 1 << 20)) {
      throw new InvalidArgumentError(`--tokens: expected a comma-separated list of n or FRAMESxn (e.g. 576,2880,16x576), received "${value}"`);
    }
    return { frames, n };
  });
}

function dimList(value: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.some((d) => !Number.isInteger(d) || d < 1 || d > 65536)) throw new InvalidArgumentError(`--dims: expected a comma-separated list of integers in [1, 65536], received "${value}"`);
  return list;
}

function fractionArg(value: string): number {
  const f = value.endsWith('%') ? Number(value.slice(0, -1)) / 100 : Number(value);
  if (!(f > 0 && f <= 1)) throw new InvalidArgumentError(`--keep-ratio: expected a fraction in (0, 1] (or a percentage), received "${value}"`);
  return f;
}

function writeJson(file: string, value: unknown): string {
  const path = resolve(file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2) + '\n');
  return path;
}

interface EvalVisionFlags {
  images?: number; methods?: string[]; layouts: VisionLayout[]; ratios: number[]; seed: number;
  out?: string; svg?: string; json?: boolean; progress: boolean;
}

interface BenchVisionFlags {
  methods?: string[]; tokens?: VisionBenchShape[]; dims?: number[]; keepRatio: number; reps: number; refReps: number;
  refBudgetMs: number; reference: boolean; threads?: number; out?: string; json?: boolean; progress: boolean;
}

/** Adds `vision` to the `eval` and `bench` command groups. */
export function registerVision(evalCmd: Command, bench: Command): void {
  evalCmd
    .command('vision')
    .description(
      'Visual-token reduction quality (issue 19): every method at each keep ratio on real photos (Debian mate-backgrounds, ' +
        'fetched once into .corpus/vision): PSNR of the image rebuilt from the kept or merged 16x16 patches (576 tokens; AnyRes 2,880), ' +
        'and for the methods that read attention / text inputs, the share of a synthetic object region retained.',
    )
    .option('--images <n>', 'photos used, the first by name (default all 12)', intArg('--images', 1, 1000))
    .option('--methods <list>', `methods (default all: ${visionMethodNames().join(',')})`, methodList)
    .option('--layouts <list>', 'base (576 tokens) and/or anyres (2,880)', layoutList, [...VISION_LAYOUTS])
    .option('--ratios <list>', 'keep ratios, e.g. 50%,25%,10%', ratioList, [...DEFAULT_VISION_RATIOS])
    .option('--seed <n>', 'seed of the synthetic side inputs and the random floor', intArg('--seed', 0, 0xffffffff), 0)
    .option('--out <file>', 'write the JSON report to <file>')
    .option('--svg <file>', 'write the plot (PSNR vs keep ratio per method) to <file>')
    .option('--json', 'print the JSON report instead of the tables')
    .option('--no-progress', 'no progress bar (off anyway with --json or when stderr is not a TTY)')
    .action((o: EvalVisionFlags) => {
      const bar = makeProgressBar('eval vision', o.progress && o.json !== true);
      let report;
      try {
        report = runVisionEval({
          methods: selectVisionMethods(o.methods), layouts: o.layouts, ratios: o.ratios, seed: o.seed,
          ...(o.images ? { images: o.images } : {}),
          log: (m) => { if (o.json !== true) console.error(m); },
          onProgress: bar.tick,
        });
      } finally {
        bar.stop();
      }
      const full = { date: new Date().toISOString(), cpuModel: cpuModel(), ...report };
      if (o.out) writeJson(o.out, full);
      if (o.svg) writeFileSync(o.svg, renderVisionEvalSvg(report));
      console.log(o.json === true ? JSON.stringify(full, null, 2) : formatVisionEvalTable(report));
    });

  bench
    .command('vision')
    .description(
      'Visual-token reduction speed (issue 19): each operator\'s native form and its typed-array JS reference on random tokens ' +
        '(576, 2,880 and 16x576 tokens at D = 1024 and 4096) against one read pass over the same bytes, measured in the same run.',
    )
    .option('--methods <list>', 'methods (default all that have an operator)', methodList)
    .option('--tokens <list>', `shapes, n or FRAMESxn (default ${DEFAULT_VISION_SHAPES.map((s) => (s.frames > 1 ? `${s.frames}x${s.n}` : s.n)).join(',')})`, shapeList)
    .option('--dims <list>', `token widths (default ${DEFAULT_VISION_DIMS.join(',')})`, dimList)
    .option('--keep-ratio <f>', 'keep ratio every operator runs at', fractionArg, 0.25)
    .option('--reps <n>', 'native reps, median reported', intArg('--reps', 1, 1000), 7)
    .option('--ref-reps <n>', 'JS reference reps, median reported', intArg('--ref-reps', 1, 1000), 3)
    .option('--ref-budget-ms <ms>', 'a reference whose first call takes longer is timed once', intArg('--ref-budget-ms', 1, 1e7), 20000)
    .option('--no-reference', 'skip the JS references')
    .option('--threads <n>', 'thread pool size while measuring (default: the current pool)', intArg('--threads', 1, 1024))
    .option('--out <file>', 'where to write the JSON report (default bench-results/vision-<date>.json)')
    .option('--json', 'print the JSON report instead of the table')
    .option('--no-progress', 'no progress bar')
    .action(async (o: BenchVisionFlags) => {
      const report = await runVisionBench({
        methods: selectVisionMethods(o.methods), keepRatio: o.keepRatio, reps: o.reps, refReps: o.refReps,
        refBudgetMs: o.refBudgetMs, reference: o.reference, progress: o.progress, json: o.json === true,
        ...(o.tokens ? { shapes: o.tokens } : {}), ...(o.dims ? { dims: o.dims } : {}),
        ...(o.threads ? { threads: o.threads } : {}), ...(o.out ? { outFile: o.out } : {}),
      });
      if (o.json !== true) console.log(formatVisionBenchTable(report));
    });
}
