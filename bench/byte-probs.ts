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
 * Two masks: 'canonical' (exact; slow on a 100k vocabulary: one mask row of
 * vocab-size canonicality checks per new local encoding) on the first
 * --exact-bytes of the slice, and 'none' (the official fast_mode) on the whole
 * slice. Speed = bytes / wall time of the byte-level pass (one thread).
 *
 *   node dist/bench/byte-probs.js [--train-bytes 4000000] [--heldout-bytes 20000] [--exact-bytes 1500] [--offset 100000]
 *
 * Writes bench-results/byte-probs-<date>.json.
 */
import os from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadVocab } from '../lib/tokenizer/vocab.js';
import { TokenKnModel } from '../lib/tokenizer/token-kn.js';
import { TokenByteProbs, type ByteProbsMask } from '../lib/tokenizer/byte-probs.js';
import type { TokenVocab } from '../lib/tokenizer/types.js';
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
  bytes: number;
  tokens: number;
  tokenBitsPerByte: number;
  byteBitsPerByte: number;
  relativeDifference: number;
  seconds: number;
  bytesPerSecond: number;
  lmCalls: number;
  maskRows: number;
  maskHits: number;
  encodingMatches: boolean;
}

function pass(vocab: TokenVocab, kn: TokenKnModel, data: Uint8Array, mask: ByteProbsMask): Pass {
  const tokens = vocab.encodeBytes(data);
  const tokenBits = kn.bits(tokens);
  const probs = new TokenByteProbs(vocab, kn, { mask, maskMemo: 4096 });
  const t0 = performance.now();
  const s = probs.start();
  let bits = 0;
  for (let i = 0; i < data.length; i++) {
    bits -= Math.log2(s.probs()[data[i]!]!);
    s.push(data[i]!);
  }
  const seconds = (performance.now() - t0) / 1000;
  const enc = s.tokens;
  const tokenBpb = tokenBits / data.length, byteBpb = bits / data.length;
  return {
    mask,
    bytes: data.length,
    tokens: tokens.length,
    tokenBitsPerByte: tokenBpb,
    byteBitsPerByte: byteBpb,
    relativeDifference: (byteBpb - tokenBpb) / tokenBpb,
    seconds,
    bytesPerSecond: data.length / seconds,
    ...probs.stats,
    encodingMatches: enc.length === tokens.length && enc.every((v, i) => v === tokens[i]),
  };
}

async function main(): Promise<void> {
  const trainBytes = Number(argValue('train-bytes', '4000000'));
  const heldBytes = Number(argValue('heldout-bytes', '20000'));
  const exactBytes = Number(argValue('exact-bytes', '1500'));
  const offset = Number(argValue('offset', '100000'));
  const corpus = await ensureCorpus();
  const vocab = await loadVocab('cl100k');
  const train = readFileSync(corpus.trainPath).subarray(0, trainBytes);
  const held = slice(readFileSync(corpus.heldOutPath), offset, heldBytes);
  let t0 = performance.now();
  const trainTokens = Uint32Array.from(vocab.encodeBytes(train));
  const encodeSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const kn = TokenKnModel.train(trainTokens, vocab.size, { order: 3 });
  const trainSeconds = (performance.now() - t0) / 1000;
  console.log(`cl100k: ${train.length} training bytes -> ${trainTokens.length} tokens (${encodeSeconds.toFixed(1)} s), KN order 3 trained in ${trainSeconds.toFixed(2)} s`);
  const passes: Pass[] = [];
  for (const [mask, n] of [['none', held.length], ['canonical', Math.min(exactBytes, held.length)]] as const) {
    const p = pass(vocab, kn, held.subarray(0, n), mask);
    passes.push(p);
    console.log(
      `mask ${mask.padEnd(9)} ${String(p.bytes).padStart(6)} bytes  token-level ${p.tokenBitsPerByte.toFixed(4)} bits/byte  ` +
        `byte-level ${p.byteBitsPerByte.toFixed(4)} bits/byte  diff ${(100 * p.relativeDifference).toFixed(3)}%  ` +
        `${p.bytesPerSecond.toFixed(1)} bytes/s  (mask rows ${p.maskRows}, encoding ${p.encodingMatches ? 'matches' : 'DIFFERS'})`,
    );
  }
  const out = {
    bench: 'byte-probs',
    date: new Date().toISOString(),
    cpu: cpuModel(),
    command: `node dist/bench/byte-probs.js --train-bytes ${trainBytes} --heldout-bytes ${heldBytes} --exact-bytes ${exactBytes} --offset ${offset}`,
    vocab: 'cl100k',
    order: 3,
    trainBytes: train.length,
    trainTokens: trainTokens.length,
    trainSeconds,
    heldOutOffset: offset,
    passes,
  };
  mkdirSync('bench-results', { recursive: true });
  const file = `bench-results/byte-probs-${out.date.slice(0, 10)}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`wrote ${file}`);
}

await main();
