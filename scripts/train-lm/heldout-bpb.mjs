#!/usr/bin/env node
/**
 * Held-out bits/byte of an exported model (models/lm/<name>) through
 * onnxruntime-node (f16 weights, float32 arithmetic: the artifact users run),
 * beside the built-in n-gram model (models/default.tpm) on the same bytes.
 *
 *   node scripts/train-lm/heldout-bpb.mjs --model main [--every 4] [--context 2048] [--stride 1024] [--out file.json]
 *
 * Bytes: every `every`-th 64 KiB block of the held-out split (.corpus/heldout.txt;
 * block 0, every, 2*every, ...), each block scored on its own. The model reads
 * windows of `context` bytes advancing by `stride` (the first window scores all
 * its bytes, later ones their last `stride`), so every scored byte past the
 * first context - stride of a block has at least context - stride bytes before
 * it. The n-gram model reads each block from its start with its full order.
 * Byte 0 of each block is scored by neither (no context).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ByteLm } from '../../dist/lib/model/byte-lm.js';
import { ByteModel } from '../../dist/lib/coding/model.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'main' },
    every: { type: 'string', default: '4' },
    context: { type: 'string', default: '2048' },
    stride: { type: 'string', default: '1024' },
    threads: { type: 'string', default: '2' },
    out: { type: 'string' },
  },
});
const every = Number(a.every);
const context = Number(a.context);
const stride = Number(a.stride);
const BLOCK = 64 * 1024;
const held = new Uint8Array(readFileSync(new URL('../../.corpus/heldout.txt', import.meta.url)));
const lm = await ByteLm.load(a.model, { threads: Number(a.threads), stages: false });
const ngram = ByteModel.loadDefault();

function logSoftmaxAt(logits, row, target) {
  let max = -Infinity;
  for (let j = 0; j < 256; j++) max = Math.max(max, logits[row * 256 + j]);
  let sum = 0;
  for (let j = 0; j < 256; j++) sum += Math.exp(logits[row * 256 + j] - max);
  return logits[row * 256 + target] - max - Math.log(sum);
}

let lmBits = 0;
let ngBits = 0;
let count = 0;
const t0 = Date.now();
const nBlocks = Math.ceil(held.length / BLOCK);
for (let b = 0; b < nBlocks; b += every) {
  const block = held.subarray(b * BLOCK, Math.min(held.length, (b + 1) * BLOCK));
  let scoredTo = 1;
  let start = 0;
  while (scoredTo < block.length) {
    const end = Math.min(block.length, start + context);
    const logits = await lm.plainSession().forward(block.subarray(start, end - 1)); // predicts bytes start+1 .. end-1
    for (let i = scoredTo; i < end; i++) lmBits -= logSoftmaxAt(logits, i - start - 1, block[i]) / Math.LN2;
    scoredTo = end;
    start = end - (context - stride);
  }
  // The n-gram's cost of bytes 1.. = all bytes minus byte 0 alone (context-free).
  ngBits += ngram.evaluate(block).bitsPerByte * block.length - ngram.evaluate(block.subarray(0, 1)).bitsPerByte;
  count += block.length - 1;
  process.stderr.write(`block ${b}: ${(lmBits / count).toFixed(4)} vs n-gram ${(ngBits / count).toFixed(4)} bits/byte (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}
const report = {
  model: lm.config.name,
  bytes: count,
  blocks: `every ${every}th 64 KiB block of the held-out split`,
  context,
  stride,
  modelBitsPerByte: lmBits / count,
  ngramBitsPerByte: ngBits / count,
  seconds: (Date.now() - t0) / 1000,
  ort: lm.ortVersion,
};
console.log(JSON.stringify(report, null, 1));
if (a.out) writeFileSync(a.out, JSON.stringify(report, null, 1) + '\n');
await lm.release();
