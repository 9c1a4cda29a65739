/**
 * `tokenpress tokenizer ...`: the tokenizer tools' command group.
 * registerTokenizer(program) adds the group with every verb; another verb is
 * one more `registerXxx(tokenizerGroup(program))` call (tokenizerGroup
 * returns the existing group when there is one).
 *
 *   tokenpress tokenizer train-supertokens --base cl100k --tokens 10000 --corpus train.txt --out super.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { intArg } from './int-arg.js';
import { makeProgressBar } from './progress-bar.js';
import { addTransplantCommand } from './tokenizer-transplant.js';
import { addByteProbsCommand } from './tokenizer-byte-probs.js';
import { trainSupertokensAsync } from '../tokenizer/supertokens.js';
import { loadVocab } from '../tokenizer/vocab.js';
import type { VocabName } from '../tokenizer/types.js';

/** The `tokenizer` group of program, created on first use. */
export function tokenizerGroup(program: Command): Command {
  const existing = program.commands.find((c) => c.name() === 'tokenizer');
  if (existing) return existing;
  return program.command('tokenizer').description('Tokenizer tools: supertokens (SuperBPE) training, embedding transplantation (OMP, TokenAdapt).');
}

/** Bases whose ids are their merge ranks (tiktoken files): the merge list is derived from the ranks (merges-from-ranks.ts). */
const SUPERTOKEN_BASES: readonly VocabName[] = ['r50k', 'p50k', 'cl100k', 'o200k'];

function vocabArg(value: string): VocabName {
  if (!(SUPERTOKEN_BASES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--base: expected one of ${SUPERTOKEN_BASES.join(', ')}, received "${value}"`);
  }
  return value as VocabName;
}

interface TrainSupertokensFlags {
  base: VocabName;
  tokens: number;
  corpus: string;
  out: string;
  maxBytes?: number;
  maxWords: number;
  minCount: number;
  progress: boolean;
  json?: boolean;
}

/** Reads at most maxBytes of a UTF-8 file, cut back to a whole character. */
function readCorpus(file: string, maxBytes: number | undefined): string {
  let bytes: Uint8Array = readFileSync(file);
  if (maxBytes !== undefined && bytes.length > maxBytes) {
    let end = maxBytes;
    while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
    bytes = bytes.subarray(0, end);
  }
  return new TextDecoder().decode(bytes);
}

async function runTrainSupertokens(f: TrainSupertokensFlags): Promise<void> {
  const base = await loadVocab(f.base);
  const text = readCorpus(f.corpus, f.maxBytes);
  const bar = makeProgressBar('train-supertokens', f.progress && f.json !== true);
  const t0 = performance.now();
  const { tokenizer, stats } = await trainSupertokensAsync(base, text, {
    tokens: f.tokens, maxWords: f.maxWords, minCount: f.minCount, onProgress: (done, total) => bar.tick(done, total, 'merges'),
  });
  const seconds = (performance.now() - t0) / 1000;
  bar.stop();
  writeFileSync(f.out, JSON.stringify(tokenizer.toTokenizerJson()));
  const after = tokenizer.encode(text).length;
  const baseTokens = base.encode(text).length;
  const report = {
    base: f.base, corpus: f.corpus, out: f.out, textBytes: stats.textBytes, learned: stats.learned, vocabSize: tokenizer.size,
    trainSeconds: seconds, baseTokens, superTokens: after, bytesPerTokenBase: stats.textBytes / baseTokens, bytesPerTokenSuper: stats.textBytes / after,
    tokenReduction: 1 - after / baseTokens,
  };
  if (f.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(`${stats.learned} supertokens over ${f.base} learned on ${stats.textBytes} bytes in ${seconds.toFixed(1)} s -> ${f.out} (${tokenizer.size} ids)`);
  console.log(`training text: ${baseTokens} ${f.base} tokens (${report.bytesPerTokenBase.toFixed(3)} B/token) -> ${after} (${report.bytesPerTokenSuper.toFixed(3)} B/token), ${(100 * report.tokenReduction).toFixed(1)}% fewer`);
}

export function registerTrainSupertokens(group: Command): void {
  group
    .command('train-supertokens')
    .description(
      'Learn SuperBPE-style supertokens (merges across whitespace) on top of a built-in byte-level vocabulary and write a ' +
        'Hugging Face tokenizer.json (base vocabulary and merges + the new ones, stage-2 Split + ByteLevel pre-tokenizer).',
    )
    .option('--base <name>', `base vocabulary (${SUPERTOKEN_BASES.join(', ')})`, vocabArg, 'cl100k' as VocabName)
    .requiredOption('--tokens <n>', 'number of new tokens to learn', intArg('--tokens', 1, 1_000_000))
    .requiredOption('--corpus <file>', 'UTF-8 training text')
    .requiredOption('--out <file>', 'where to write the tokenizer.json')
    .option('--max-bytes <n>', 'train on the first n bytes of the corpus only', intArg('--max-bytes', 1, 2 ** 31 - 1))
    .option('--max-words <n>', 'most whitespace-separated words in one new token (0 = no limit)', intArg('--max-words', 0, 1_000_000), 4)
    .option('--min-count <n>', 'stop when the best pair occurs fewer times', intArg('--min-count', 1, 2 ** 31 - 1), 2)
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print a JSON report')
    .action(async (opts: TrainSupertokensFlags) => {
      await runTrainSupertokens(opts);
    });
}

/** Adds the `tokenizer` group and its verbs to program. */
export function registerTokenizer(program: Command): Command {
  const group = tokenizerGroup(program);
  registerTrainSupertokens(group);
  addTransplantCommand(group);
  addByteProbsCommand(group);
  return group;
}
