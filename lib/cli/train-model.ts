/**
 * `tokenpress train-model`: trains a byte model (lib/coding/model.ts) on text
 * files or on the Debian corpus (bench/corpus.ts), writes it, prints its info
 * and, with --corpus debian, its bits per byte on the held-out split: with
 * full context, and with the context restarting every 8 and 16 bytes (as
 * after Equal-Info window resets).
 */
import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from './int-arg.js';
import { ByteModel, MAX_MODEL_ORDER, MODEL_TRAIN_DEFAULTS } from '../coding/model.js';
import { ensureCorpus } from '../../bench/corpus.js';


function corpusArg(value: string): 'debian' {
  if (value !== 'debian') throw new InvalidArgumentError(`--corpus: expected "debian", received "${value}"`);
  return value;
}

interface TrainModelFlags {
  out: string;
  maxOrder: number;
  maxBytes: number;
  corpus?: 'debian';
  progress: boolean;
  json?: boolean;
}

export interface HeldOutReport {
  corpus: string;
  heldOutBytes: number;
  /** Full context: byte i sees min(i, maxOrder) bytes. */
  bitsPerByte: number;
  /** Context restarting every 8 bytes: average bits at window positions 0..7, and their mean. */
  window8: { positionBits: number[]; bitsPerByte: number };
  /** Context restarting every 16 bytes. */
  window16: { positionBits: number[]; bitsPerByte: number };
}


export function heldOutReport(model: ByteModel, heldOut: Uint8Array, corpus: string): HeldOutReport {
  const w8 = model.evaluate(heldOut, { window: 8 });
  const w16 = model.evaluate(heldOut, { window: 16 });
  return {
    corpus,
    heldOutBytes: heldOut.length,
    bitsPerByte: model.evaluate(heldOut).bitsPerByte,
    window8: { positionBits: [...w8.positionBits], bitsPerByte: w8.bitsPerByte },
    window16: { positionBits: [...w16.positionBits], bitsPerByte: w16.bitsPerByte },
  };
}

async function runTrainModel(files: string[], f: TrainModelFlags): Promise<void> {
  const log = f.json ? () => {} : (m: string) => console.error(m);
  const parts: Uint8Array[] = [];
  let heldOut: Uint8Array | undefined;
  let description = '';
  if (f.corpus === 'debian') {
    const c = await ensureCorpus({ log });
    parts.push(readFileSync(c.trainPath));
    heldOut = readFileSync(c.heldOutPath);
    description = c.description;
  }
  for (const file of files) parts.push(readFileSync(file));
  if (parts.length === 0) throw new InvalidArgumentError('train-model: give text files to train on, or --corpus debian');
  const text = Buffer.concat(parts);
  const bar = new cliProgress.SingleBar(
    { format: 'train-model [{bar}] {percentage}% | {eta_buffer}s', etaBuffer: 20, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const showBar = f.progress && !f.json && process.stderr.isTTY;
  if (showBar) bar.start(100, 0);
  const t0 = performance.now();
  let model: ByteModel;
  try {
    model = await ByteModel.train(text, {
      maxOrder: f.maxOrder,
      maxBytes: f.maxBytes,
      ...(showBar ? { onProgress: (x: number) => bar.update(Math.round(x * 100)) } : {}),
    });
  } finally {
    if (showBar) bar.stop();
  }
  const trainSeconds = (performance.now() - t0) / 1000;
  await model.save(f.out);
  const info = model.info;
  const report = {
    out: f.out,
    trainSeconds,
    info,
    ...(heldOut ? { heldOut: heldOutReport(model, heldOut, description) } : {}),
  };
  if (f.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`wrote ${f.out}: ${info.bytes} bytes, order ${info.maxOrder}, identity ${info.identity}`);
  console.log(`trained on ${info.trainedBytes} bytes in ${trainSeconds.toFixed(1)} s`);
  console.log(`contexts per order: ${info.contexts.join(', ')}`);
  console.log(`entries per order:  ${info.entries.join(', ')}`);
  if (report.heldOut) {
    const h = report.heldOut;
    console.log(`held-out split: ${h.heldOutBytes} bytes (${h.corpus})`);
    console.log(`  full context:        ${h.bitsPerByte.toFixed(4)} bits/byte`);
    console.log(`  context reset every 8 bytes:  ${h.window8.bitsPerByte.toFixed(4)} bits/byte; positions 0..7: ${h.window8.positionBits.map((b) => b.toFixed(3)).join(' ')}`);
    console.log(`  context reset every 16 bytes: ${h.window16.bitsPerByte.toFixed(4)} bits/byte`);
  }
}

export function registerTrainModel(program: Command): void {
  program
    .command('train-model')
    .description(
      'Train the static byte model (interpolated Kneser-Ney over byte n-grams) on text files, or on the Debian corpus ' +
        '(dict-gcide + fortunes, with a held-out split it reports bits/byte on), and write it as a .tpm file.',
    )
    .argument('[files...]', 'text files to train on (concatenated in order)')
    .requiredOption('--out <file>', 'where to write the model')
    .option('--max-order <n>', `longest context in bytes (1..${MAX_MODEL_ORDER})`, intArg('--max-order', 1, MAX_MODEL_ORDER), MODEL_TRAIN_DEFAULTS.maxOrder)
    .option('--max-bytes <n>', 'size limit of the model file', intArg('--max-bytes', 4096, 2 ** 31), MODEL_TRAIN_DEFAULTS.maxBytes)
    .option('--corpus <name>', 'train on a public corpus\'s training split and report held-out bits/byte: debian', corpusArg)
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print a JSON report')
    .action(async (files: string[], f: TrainModelFlags) => runTrainModel(files, f));
}
