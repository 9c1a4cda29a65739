/**
 * `tokenpress tokenizer byte-probs`: bits/byte of a text file under a
 * Kneser-Ney token model (lib/tokenizer/token-kn.ts) read byte by byte
 * through the exact byte-level probabilities (lib/tokenizer/byte-probs.ts),
 * against the same model's token-level bits/byte. Registered by the
 * `tokenizer` command group: addByteProbsCommand(group).
 *
 *   tokenpress tokenizer byte-probs --vocab cl100k --train train.txt --text heldout.txt --bytes 500
 *
 * token level   sum of -log2 P(token | previous tokens) over the canonical
 *               encoding, divided by the bytes (with --renormalize: each P
 *               divided by the LM mass on canonical-prefix continuations);
 * byte level    sum of -log2 P(byte | previous bytes) from the adapter's rows.
 */
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { intArg } from './int-arg.js';
import { makeProgressBar } from './progress-bar.js';
import { TokenByteProbs, type ByteProbsMask } from '../tokenizer/byte-probs.js';
import { TokenKnModel } from '../tokenizer/token-kn.js';
import type { VocabName } from '../tokenizer/types.js';
import { loadVocab, VOCAB_NAMES } from '../tokenizer/vocab.js';

interface ByteProbsFlags {
  vocab: VocabName;
  train: string;
  trainBytes: number;
  text: string;
  offset: number;
  bytes: number;
  order: number;
  mask: ByteProbsMask;
  renormalize?: boolean;
  progress: boolean;
  json?: boolean;
}

/** The bytes of `file` from `offset`, at most n, cut back to a whole UTF-8 character. */
function readSlice(file: string, offset: number, n: number): Uint8Array {
  const all = readFileSync(file);
  let end = Math.min(all.length, offset + n);
  while (end > offset && end < all.length && (all[end]! & 0xc0) === 0x80) end--;
  return all.subarray(Math.min(offset, all.length), end);
}

async function runByteProbs(f: ByteProbsFlags): Promise<void> {
  const vocab = await loadVocab(f.vocab);
  const train = readSlice(f.train, 0, f.trainBytes);
  const data = readSlice(f.text, f.offset, f.bytes);
  const kn = TokenKnModel.train(Uint32Array.from(vocab.encodeBytes(train)), vocab.size, { order: f.order });
  const probs = new TokenByteProbs(vocab, kn, { mask: f.mask, renormalize: f.renormalize === true, maskMemo: 4096 });
  const tokens = vocab.encodeBytes(data);
  const tokenStarts = new Map<number, number>(); // byte offset of a token of the canonical encoding -> its index
  let at = 0;
  tokens.forEach((t, j) => {
    tokenStarts.set(at, j);
    at += vocab.tokenBytes(t).length;
  });
  const bar = makeProgressBar('byte-probs', f.progress && f.json !== true);
  const t0 = performance.now();
  const s = probs.start();
  let byteBits = 0, logValid = 0;
  for (let i = 0; i < data.length; i++) {
    if (f.renormalize && tokenStarts.has(i)) logValid += Math.log2(s.validMass(tokens.slice(0, tokenStarts.get(i))));
    byteBits -= Math.log2(s.probs()[data[i]!]!);
    s.push(data[i]!);
    bar.tick(i + 1, data.length, 'bytes');
  }
  bar.stop();
  const seconds = (performance.now() - t0) / 1000;
  const tokenBits = kn.bits(tokens) + logValid;
  const n = Math.max(1, data.length);
  const report = {
    vocab: f.vocab, text: f.text, offset: f.offset, bytes: data.length, tokens: tokens.length, order: f.order,
    trainBytes: train.length, mask: f.mask, renormalize: f.renormalize === true,
    tokenBitsPerByte: tokenBits / n, byteBitsPerByte: byteBits / n,
    relativeDifference: tokenBits > 0 ? (byteBits - tokenBits) / tokenBits : 0,
    seconds, bytesPerSecond: data.length / seconds, ...probs.stats,
  };
  if (f.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(
    `${f.vocab}, KN order ${f.order} on ${train.length} bytes; ${data.length} bytes of ${f.text} (${tokens.length} tokens), mask ${f.mask}${report.renormalize ? ', renormalized' : ''}\n` +
      `  token level ${report.tokenBitsPerByte.toFixed(4)} bits/byte, byte level ${report.byteBitsPerByte.toFixed(4)} bits/byte ` +
      `(${(100 * report.relativeDifference).toFixed(3)}%), ${report.bytesPerSecond.toFixed(2)} bytes/s`,
  );
}

export function addByteProbsCommand(group: Command): void {
  group
    .command('byte-probs')
    .description('Bits/byte of a text under a Kneser-Ney token model read byte by byte through the exact byte-level probabilities, ' +
      'against the token-level bits/byte of the same model.')
    .addOption(new Option('--vocab <name>', 'tokenizer').choices([...VOCAB_NAMES]).default('cl100k'))
    .requiredOption('--train <file>', 'training text for the token model')
    .option('--train-bytes <n>', 'bytes of --train used', intArg('--train-bytes', 1, 2 ** 31 - 1), 4_000_000)
    .requiredOption('--text <file>', 'text to score')
    .option('--offset <n>', 'first byte of --text scored', intArg('--offset', 0, 2 ** 31 - 1), 0)
    .option('--bytes <n>', 'bytes scored (exact mode runs at about 1 byte/s on a 100k vocabulary)', intArg('--bytes', 1, 2 ** 31 - 1), 500)
    .option('--order <n>', 'Kneser-Ney order', intArg('--order', 1, 8), 3)
    .addOption(new Option('--mask <mask>', "'canonical' (exact) or 'none' (fast, not exact)").choices(['canonical', 'none']).default('canonical'))
    .option('--renormalize', 'renormalize the token model over canonical-prefix continuations (then the two numbers agree)')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print a JSON report')
    .action(async (opts: ByteProbsFlags) => {
      await runByteProbs(opts);
    });
}
