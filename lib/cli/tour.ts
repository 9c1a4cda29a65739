/**
 * The main job, `npm start`: a short tour on built-in defaults: backend info,
 * the quick attention benchmark with its table, then the KV-cache demo (a
 * decode loop under a memory budget vs a full cache), then the coding demo
 * (a sample text as Equal-Info tokens and back), then the built-in byte-level
 * transformer generating with tokenpress attention under a KV budget.
 */
import { backendInfo } from '../backend.js';
import { formatInfo } from './info.js';
import { runAttentionBench, printAttentionTable } from '../../bench/attention.js';
import { formatKvDemo, runKvDemo } from '../kv/demo.js';
import { formatCodingDemo, runCodingDemo } from '../coding/demo.js';
import { formatLmDemo, runLmDemo } from '../model/demo.js';

export async function runTour(opts: { json: boolean }): Promise<void> {
  const info = backendInfo();
  if (!opts.json) {
    console.log(formatInfo(info));
    console.log('\nQuick attention benchmark (`tokenpress bench attention` runs the full one):\n');
  }
  const attention = await runAttentionBench({ quick: true, json: false, progress: !opts.json });
  if (!opts.json) {
    printAttentionTable(attention);
    console.log('\nKV cache under a memory budget (`tokenpress eval kv` and `bench kv` measure every policy):\n');
  }
  const kv = runKvDemo();
  if (!opts.json) {
    console.log(formatKvDemo(kv));
    console.log('\nText as Equal-Info tokens with the embedded model (`tokenpress bench coding` measures every setting):\n');
  }
  const coding = runCodingDemo();
  if (!opts.json) {
    console.log(formatCodingDemo(coding));
    console.log('\nThe built-in transformer with tokenpress attention (`tokenpress generate` and `bench lm` do more):\n');
  }
  const lm = await runLmDemo();
  if (opts.json) console.log(JSON.stringify({ info, attention, kv, coding, lm: { ...lm, tokens: 'tokens' in lm ? Array.from(lm.tokens) : undefined } }, null, 2));
  else console.log(formatLmDemo(lm));
}
