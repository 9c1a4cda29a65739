/**
 * Byte-level probabilities from a token LM (lib/tokenizer/byte-probs.ts):
 * a Kneser-Ney token model (lib/tokenizer/token-kn.ts, order 3) over cl100k
 * tokens, trained on the first --train-bytes of the corpus's training split
 * (bench/corpus.ts), scored on a held-out slice two ways:
 *
 *   token level   sum of -log2 P(token | previous tokens) over the canonical
 *                 encoding of the slice, divided by the slice's bytes;
 *   byte level    sum of -log2 P(byte | previous bytes) from the exact
 *                 next-byte rows (the coders' adapter), divided by bytes.
 *
 * Passes: 'none' (the official fast_mode) on the whole slice; 'canonical'
 * (exact: canonical-prefix mask, one regex match per token per new local
 * encoding) on the first --exact-bytes, raw and with renormalize (the
 * masked, renormalized token model, whose token-level loss the chain then
 * telescopes to). Speed = bytes / wall time of the byte-level pass (one thread).
 *
 *   node dist/bench/byte-probs.js [--vocab cl100k] [--train-bytes 4000000] [--heldout-bytes 20000] [--exact-bytes 1500] [--offset 100000]
 *
 * (--heldout-bytes 0 or --exact-bytes 0 skips that pass.) Writes
 * bench-results/byte-probs-<vocab>-<date>.json.
 */
import os from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadVocab } from '../lib/tokenizer/vocab.js';
import { TokenKnModel } from '../lib/tokenizer/token-kn.js';
import { TokenByteProbs, type ByteProbsMask } from '../lib/tokenizer/byte-probs.js';
import type { TokenVocab, VocabName } from '../lib/tokenizer/types.js';
import { ensureCorpus } from './corpus.js';
import { argValue } from './common.js';

function cpuModel(): string {
  return os.cpus()[0]?.model ?? 'unknown';
}

/** The slice starting at the first line start at or after `offset`. */
function slice(text: Uint8Array, offset: number, n: number): Uint8Array {
  let s = offset;
  while (s < text.length && text[s - 1] !== 10) s++;
  return text.subarray(s, Math.min(text.length, s + n));
}

interface Pass {
  mask: ByteProbsMask;
  renormalize: boolean;
  bytes: number;
  tokens: number;
  tokenBitsPerByte: number;
  /** The masked model's token loss: each token's P renormalized over the masked-in tokens (what the byte rows telescope to). */
  maskedTokenBitsPerByte: number;
  maskedRelativeDifference: number;
  /** Byte-level bits + log2 of the canonical encoding's share of the final prefix probability: P(exactly E(x)) instead of P(starts with x). */
  byteBitsPerByteEnd: number;
  /** The unnormalized chain: sum of -log2(row[b] * lastMass) - log2(exactShare): telescopes to the token-level bits. */
  byteBitsPerByteChain: number;
  chainRelativeDifference: number;
  endRelativeDifference: number;
  byteBitsPerByte: number;
  relativeDifference: number;
  seconds: number;
  bytesPerSecond: number;
  lmCalls: number;
  maskRows: number;
  maskHits: number;
  slowChecks: number;
  /** Bytes after which more than one exact state carried weight (look-ahead boundaries). */
  multiExactBytes: number;
  /** Smallest probability the rows gave a byte of the text. */
  minByteProb: number;
  encodingMatches: boolean;
}

function pass(vocab: TokenVocab, kn: TokenKnModel, data: Uint8Array, mask: ByteProbsMask, renormalize: boolean): Pass {
  const tokens = vocab.encodeBytes(data);
  const tokenBits = kn.bits(tokens);
  const probs = new TokenByteProbs(vocab, kn, { mask, maskMemo: 4096, renormalize });
  const t0 = performance.now();
  const s = probs.start();
  // token starts (byte offsets) of the canonical encoding: where the masked mass is read
  // token starts of the canonical encoding -> tokens before them: where the masked mass is read
  // (after the prefix of E(slice), which at a look-ahead boundary is not E of the bytes so far)
  const starts = new Map<number, number>();
  let at = 0;
  tokens.forEach((t, j) => {
    starts.set(at, j);
    at += vocab.tokenBytes(t).length;
  });
  let bits = 0, logZ = 0, chain = 0, multi = 0, minP = 1;
  for (let i = 0; i < data.length; i++) {
    if (mask === 'canonical' && starts.has(i)) logZ += Math.log2(s.validMass(tokens.slice(0, starts.get(i))));
    const row = s.probs();
    minP = Math.min(minP, row[data[i]!]!);
    bits -= Math.log2(row[data[i]!]!);
    chain -= Math.log2(row[data[i]!]! * s.lastMass);
    s.push(data[i]!);
    if (s.exactStates > 1) multi++;
    if ((i + 1) % 200 === 0) process.stderr.write(`  ${mask}${renormalize ? ' renormalized' : ''}: ${i + 1}/${data.length} bytes, ${((i + 1) / ((performance.now() - t0) / 1000)).toFixed(1)} bytes/s\r`);
  }
  process.stderr.write('\n');
  const seconds = (performance.now() - t0) / 1000;
  const endBits = bits - Math.log2(s.exactShare);
  chain -= Math.log2(s.exactShare);
  const enc = s.tokens;
  const tokenBpb = tokenBits / data.length, byteBpb = bits / data.length;
  // With renormalize the chain telescopes to the renormalized (masked) token loss, not the raw one.
  const chainRef = renormalize ? tokenBits + logZ : tokenBits;
  return {
    mask,
    renormalize,
    multiExactBytes: multi,
    minByteProb: minP,
    bytes: data.length,
    tokens: tokens.length,
    tokenBitsPerByte: tokenBpb,
    maskedTokenBitsPerByte: (tokenBits + logZ) / data.length,
    byteBitsPerByteEnd: endBits / data.length,
    byteBitsPerByteChain: chain / data.length,
    chainRelativeDifference: (chain - chainRef) / chainRef,
    endRelativeDifference: (endBits - tokenBits - logZ) / (tokenBits + logZ),
    maskedRelativeDifference: (byteBpb - (tokenBits + logZ) / data.length) / ((tokenBits + logZ) / data.length),
    byteBitsPerByte: byteBpb,
    relativeDifference: (byteBpb - tokenBpb) / tokenBpb,
    seconds,
    bytesPerSecond: data.length / seconds,
    ...probs.stats,
    encodingMatches: enc.length === tokens.length && enc.every((v, i) => v === tokens[i]),
  };
}

async function main(): Promise<void> {
  const vocabName = argValue('vocab', 'cl100k') as VocabName;
  const trainBytes = Number(argValue('train-bytes', '4000000'));
  const heldBytes = Number(argValue('heldout-bytes', '20000'));
  const exactBytes = Number(argValue('exact-bytes', '1500'));
  const offset = Number(argValue('offset', '100000'));
  const corpus = await ensureCorpus();
  const vocab = await loadVocab(vocabName);
  const train = readFileSync(corpus.trainPath).subarray(0, trainBytes);
  const held = slice(readFileSync(corpus.heldOutPath), offset, Math.max(heldBytes, exactBytes));
  let t0 = performance.now();
  const trainTokens = Uint32Array.from(vocab.encodeBytes(train));
  const encodeSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const kn = TokenKnModel.train(trainTokens, vocab.size, { order: 3 });
  const trainSeconds = (performance.now() - t0) / 1000;
  console.log(`${vocabName}: ${train.length} training bytes -> ${trainTokens.length} tokens (${encodeSeconds.toFixed(1)} s), KN order 3 trained in ${trainSeconds.toFixed(2)} s`);
  const passes: Pass[] = [];
  const plan = [
    ['none', Math.min(heldBytes, held.length), false],
    ['canonical', Math.min(exactBytes, held.length), false],
    ['canonical', Math.min(exactBytes, held.length), true],
  ] as const;
  for (const [mask, n, renormalize] of plan) {
    if (n === 0) continue;
    const p = pass(vocab, kn, held.subarray(0, n), mask, renormalize);
    passes.push(p);
    console.log(
      `mask ${mask.padEnd(9)}${renormalize ? ' renormalized' : ''} ${String(p.bytes).padStart(6)} bytes  token-level ${p.tokenBitsPerByte.toFixed(4)} bits/byte  ` +
        `byte-level ${p.byteBitsPerByte.toFixed(4)} bits/byte  diff ${(100 * p.relativeDifference).toFixed(3)}%  ` +
        `masked token-level ${p.maskedTokenBitsPerByte.toFixed(4)} (diff ${(100 * p.maskedRelativeDifference).toFixed(3)}%; ` +
        `byte-level ending exactly at E(x) ${p.byteBitsPerByteEnd.toFixed(4)}, diff ${(100 * p.endRelativeDifference).toFixed(3)}%; ` +
        `unnormalized chain ${p.byteBitsPerByteChain.toFixed(6)} vs token-level ${p.tokenBitsPerByte.toFixed(6)}, diff ${(100 * p.chainRelativeDifference).toFixed(4)}%)  ` +
        `${p.bytesPerSecond.toFixed(1)} bytes/s  (mask rows ${p.maskRows}, memo hits ${p.maskHits}, full checks ${p.slowChecks}, ` +
        `bytes with 2+ exact states ${p.multiExactBytes}, min P(byte) ${p.minByteProb.toExponential(2)}, encoding ${p.encodingMatches ? 'matches' : 'DIFFERS'})`,
    );
  }
  const out = {
    bench: 'byte-probs',
    date: new Date().toISOString(),
    cpu: cpuModel(),
    command: `node dist/bench/byte-probs.js --vocab ${vocabName} --train-bytes ${trainBytes} --heldout-bytes ${heldBytes} --exact-bytes ${exactBytes} --offset ${offset}`,
    vocab: vocabName,
    order: 3,
    trainBytes: train.length,
    trainTokens: trainTokens.length,
    trainSeconds,
    heldOutOffset: offset,
    passes,
  };
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/byte-probs-${vocabName}-${out.date.slice(0, 10)}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

await main();
