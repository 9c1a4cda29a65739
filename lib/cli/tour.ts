/**
 * The main job, `npm start`: a short tour on built-in defaults. For now:
 * backend info, then the quick attention benchmark with its table. Later
 * areas (KV compression, text coding) add their demos here.
 */
import { backendInfo } from '../backend.js';
import { formatInfo } from './info.js';
import { runAttentionBench, printAttentionTable } from '../../bench/attention.js';

export async function runTour(opts: { json: boolean }): Promise<void> {
  const info = backendInfo();
  if (!opts.json) {
    console.log(formatInfo(info));
    console.log('\nQuick attention benchmark (`tokenpress bench attention` runs the full one):\n');
  }
  const attention = await runAttentionBench({ quick: true, json: false, progress: !opts.json });
  if (opts.json) console.log(JSON.stringify({ info, attention }, null, 2));
  else printAttentionTable(attention);
}
