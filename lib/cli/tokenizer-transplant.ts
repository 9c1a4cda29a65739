/**
 * `tokenpress tokenizer transplant`: builds a base model's embedding matrix
 * for another tokenizer (lib/tokenizer/transplant.ts). Matrices are .npy
 * ('<f4', 2-D) or raw f32 (then --base-dim / --donor-dim give the width).
 * Registered by the `tokenizer` command group: addTransplantCommand(group).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { intArg } from './int-arg.js';
import { encodeNpy, parseNpy, parseRawF32, type F32Matrix } from '../tokenizer/npy.js';
import { TRANSPLANT_METHODS, transplantEmbeddingsAsync, type TransplantMethod } from '../tokenizer/transplant.js';
import type { VocabName } from '../tokenizer/types.js';
import { loadVocab, VOCAB_NAMES } from '../tokenizer/vocab.js';

function readMatrix(path: string, dim: number | undefined, what: string): F32Matrix {
  const bytes = readFileSync(path);
  if (path.endsWith('.npy')) return parseNpy(bytes, what);
  if (dim === undefined) throw new InvalidArgumentError(`${what}: a raw f32 file needs its width (--${what}-dim), or use a .npy file`);
  return parseRawF32(bytes, dim, what);
}

interface TransplantCliOptions {
  baseVocab: VocabName;
  newVocab: VocabName;
  base: string;
  baseDim?: number;
  donor?: string;
  donorDim?: number;
  method: TransplantMethod;
  k: number;
  out: string;
  json?: boolean;
}

export function addTransplantCommand(group: Command): void {
  group
    .command('transplant')
    .description('Give a model the vocabulary of another tokenizer without training: copy shared tokens, approximate the others ' +
      '(OMP over shared anchors in a donor model\'s embedding space, TokenAdapt\'s hybrid, or the mean of the old pieces).')
    .addOption(new Option('--base-vocab <name>', 'the model\'s tokenizer (rows of --base)').choices([...VOCAB_NAMES]).makeOptionMandatory())
    .addOption(new Option('--new-vocab <name>', 'the tokenizer to transplant (rows of the output and of --donor)').choices([...VOCAB_NAMES]).makeOptionMandatory())
    .requiredOption('--base <file>', 'the model\'s embeddings [base vocab size, width] (.npy <f4, or raw f32 with --base-dim)')
    .option('--base-dim <n>', 'width of a raw f32 --base', intArg('--base-dim', 1, 1 << 24))
    .option('--donor <file>', 'omp, tokenadapt: a donor model\'s embeddings for the new vocabulary [new vocab size, width]')
    .option('--donor-dim <n>', 'width of a raw f32 --donor', intArg('--donor-dim', 1, 1 << 24))
    .addOption(new Option('--method <method>', 'how to approximate new tokens').choices([...TRANSPLANT_METHODS]).default('omp'))
    .option('--k <n>', 'omp: atoms per token', intArg('--k', 1, 1024), 64)
    .requiredOption('--out <file>', 'the new embedding matrix [new vocab size, width] (.npy, else raw f32)')
    .option('--json', 'print a JSON summary')
    .action(async (o: TransplantCliOptions) => {
      const [oldVocab, newVocab] = await Promise.all([loadVocab(o.baseVocab), loadVocab(o.newVocab)]);
      const base = readMatrix(o.base, o.baseDim, 'base');
      if (o.method !== 'mean-of-pieces' && o.donor === undefined) throw new InvalidArgumentError(`--donor: required by --method ${o.method}`);
      const donor = o.donor !== undefined ? readMatrix(o.donor, o.donorDim, 'donor') : undefined;
      // tokenadapt's embedder here: the donor embedding of a byte string that is one new-vocabulary token.
      const embed = donor === undefined ? undefined : (bytes: Uint8Array): Float32Array | null => {
        const id = newVocab.idOf(bytes);
        return id >= 0 && id < donor.rows ? donor.data.subarray(id * donor.cols, (id + 1) * donor.cols) : null;
      };
      const t0 = performance.now();
      const r = await transplantEmbeddingsAsync({
        oldVocab, newVocab, base: base.data, baseDim: base.cols, method: o.method, k: o.k,
        ...(donor ? { donor: donor.data, donorDim: donor.cols, embed, embedDim: donor.cols } : {}),
        onProgress: process.stderr.isTTY && o.json !== true ? (done, total) => process.stderr.write(`\rOMP ${done}/${total} tokens`) : undefined,
      });
      if (process.stderr.isTTY && o.json !== true && o.method === 'omp') process.stderr.write('\n');
      const m = { data: r.embeddings, rows: newVocab.size, cols: base.cols };
      writeFileSync(o.out, o.out.endsWith('.npy') ? encodeNpy(m) : new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength));
      const summary = {
        method: o.method, baseVocab: o.baseVocab, newVocab: o.newVocab, rows: m.rows, width: m.cols,
        copied: r.anchorsNew.length, approximated: r.approximated.length, fallbacks: r.fallbacks, seconds: (performance.now() - t0) / 1000, out: o.out,
      };
      if (o.json) console.log(JSON.stringify(summary));
      else console.log(`${o.out}: ${m.rows} x ${m.cols}; ${summary.copied} copied, ${summary.approximated} approximated (${o.method}), ` +
        `${summary.fallbacks} fell back to mean-of-pieces, ${summary.seconds.toFixed(1)} s`);
    });
}
