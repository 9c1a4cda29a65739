/**
 * `tokenpress zip <in> <out>` and `tokenpress unzip <in> <out>`: whole files
 * through the .tpz container (lib/coding/zip.ts), with a progress bar and a
 * one-line summary (or --json).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ByteModel } from '../coding/model.js';
import { ZIP_MODES, unzipBytes, zipBytes, type ZipMode } from '../coding/zip.js';

function windowBitsArg(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 16 || n > 2048) {
    throw new InvalidArgumentError(`--window-bits: expected an integer in [16, 2048], received "${value}"`);
  }
  return n;
}

function tokenBitsArg(value: string): 8 | 16 {
  if (value.trim() !== '8' && value.trim() !== '16') throw new InvalidArgumentError(`--token-bits: expected 8 or 16, received "${value}"`);
  return Number(value) as 8 | 16;
}

function bar(enabled: boolean): { update(done: number, total: number): void; stop(): void } {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const b = new cliProgress.SingleBar({ format: '{bar} {percentage}% | {value}/{total} bytes', stream: process.stderr }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update(done, total) {
      if (!started) b.start(total, 0);
      started = true;
      b.update(done);
    },
    stop() {
      if (started) b.stop();
    },
  };
}

function mbs(bytes: number, ms: number): string {
  return ms > 0 ? `${(bytes / 1e6 / (ms / 1000)).toFixed(2)} MB/s` : '-';
}

export function registerZip(program: Command): void {
  program
    .command('zip')
    .description('Compress a file into a .tpz container (adaptive context mixing, a static model, or Equal-Info tokens).')
    .argument('<in>', 'input file')
    .argument('<out>', 'output .tpz file')
    .addOption(new Option('--mode <mode>', 'how to code the bytes').choices([...ZIP_MODES]).default('adaptive'))
    .option('--model <file>', 'a model from `tokenpress train-model` (static, equal-info; default: the embedded model)')
    .option('--window-bits <n>', 'equal-info: bits per window (default 16)', windowBitsArg)
    .option('--token-bits <n>', 'equal-info: 8 or 16 bits per token (default 16)', tokenBitsArg)
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print a JSON summary')
    .action(async (input: string, output: string, o: { mode: ZipMode; model?: string; windowBits?: number; tokenBits?: 8 | 16; progress: boolean; json?: boolean }) => {
      const data = readFileSync(input);
      const progress = bar(o.progress && o.json !== true);
      const t0 = performance.now();
      const file = await zipBytes(new Uint8Array(data.buffer, data.byteOffset, data.length), {
        mode: o.mode,
        ...(o.model !== undefined ? { model: ByteModel.loadSync(o.model) } : {}),
        ...(o.windowBits !== undefined ? { windowBits: o.windowBits } : {}),
        ...(o.tokenBits !== undefined ? { tokenBits: o.tokenBits } : {}),
        onProgress: (d, t) => progress.update(d, t),
      });
      const ms = performance.now() - t0;
      progress.stop();
      writeFileSync(output, file);
      const summary = {
        mode: o.mode, inputBytes: data.length, outputBytes: file.length,
        bitsPerByte: data.length > 0 ? (file.length * 8) / data.length : 0, ms, MBs: data.length / 1e6 / (ms / 1000),
      };
      if (o.json) console.log(JSON.stringify(summary));
      else console.log(`${input} -> ${output}: ${data.length} -> ${file.length} bytes (${summary.bitsPerByte.toFixed(3)} bits/byte, ${o.mode}, ${mbs(data.length, ms)})`);
    });

  program
    .command('unzip')
    .description('Decompress a .tpz container (its CRC-32 is checked).')
    .argument('<in>', 'input .tpz file')
    .argument('<out>', 'output file')
    .option('--model <file>', 'the model the file was made with (default: the embedded model)')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print a JSON summary')
    .action(async (input: string, output: string, o: { model?: string; progress: boolean; json?: boolean }) => {
      const file = readFileSync(input);
      const progress = bar(o.progress && o.json !== true);
      const t0 = performance.now();
      const data = await unzipBytes(new Uint8Array(file.buffer, file.byteOffset, file.length), {
        ...(o.model !== undefined ? { model: ByteModel.loadSync(o.model) } : {}),
        onProgress: (d, t) => progress.update(d, t),
      });
      const ms = performance.now() - t0;
      progress.stop();
      writeFileSync(output, data);
      if (o.json) console.log(JSON.stringify({ inputBytes: file.length, outputBytes: data.length, ms }));
      else console.log(`${input} -> ${output}: ${file.length} -> ${data.length} bytes (${mbs(data.length, ms)})`);
    });
}
