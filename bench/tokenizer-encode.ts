/**
 * Encode speed of the tokenizer core (lib/tokenizer/) against gpt-tokenizer's
 * own encode and the TypeScript reference engine, same run, same text:
 * the first --mb MiB of the held-out corpus (bench/corpus.ts), cl100k and
 * o200k. Median of --reps runs each; MB/s = bytes / median seconds.
 *   node dist/bench/tokenizer-encode.js --mb 1 --reps 5
 */
import { readFileSync } from 'node:fs';
import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import { ByteBpeVocab } from '../lib/tokenizer/byte-bpe-vocab.js';
import { tiktokenSpec } from '../lib/tokenizer/vocab.js';
import { argValue, median } from './common.js';
import { ensureCorpus } from './corpus.js';

const AS_TEXT = { disallowedSpecial: new Set<string>() };

function time(fn: () => unknown, reps: number): number {
  fn(); // warmup
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    fn();
    ts.push((performance.now() - t0) / 1000);
  }
  return median(ts);
}

async function main(): Promise<void> {
  const mb = Number(argValue('mb', '1'));
  const reps = Number(argValue('reps', '5'));
  const corpus = await ensureCorpus();
  const all = readFileSync(corpus.heldOutPath);
  let text = all.subarray(0, Math.floor(mb * 1024 * 1024)).toString('utf8');
  text = text.replace(/\uFFFD+$/, ''); // a cut character at the end
  const bytes = new TextEncoder().encode(text);
  const rows: string[] = [];
  const json: Record<string, unknown> = { bytes: bytes.length, reps };
  for (const [name, peer] of [['cl100k', cl100k], ['o200k', o200k]] as const) {
    const spec = await tiktokenSpec(name);
    const nat = new ByteBpeVocab(spec);
    const ts = new ByteBpeVocab({ ...spec, engine: 'ts' });
    const ref = peer.encode(text, AS_TEXT);
    const a = nat.encode(text);
    if (a.length !== ref.length || a.some((v, i) => v !== ref[i])) console.log(`${name}: note: ids differ from gpt-tokenizer (expected only on U+FEFF / U+0085 / U+017F text)`);
    const tPeer = time(() => peer.encode(text, AS_TEXT), reps);
    const tNat = time(() => nat.encode(text), reps);
    const tTs = time(() => ts.encode(text), reps);
    const mbps = (t: number): string => (bytes.length / t / 1e6).toFixed(2);
    rows.push(`| ${name} | ${mbps(tNat)} | ${mbps(tTs)} | ${mbps(tPeer)} | ${(tPeer / tNat).toFixed(2)} |`);
    json[name] = { nativeS: tNat, tsS: tTs, gptTokenizerS: tPeer, tokens: a.length };
  }
  console.log(`text: ${bytes.length} bytes of ${corpus.heldOutPath}, median of ${reps}`);
  console.log('| vocab | tokenpress native MB/s | tokenpress TS MB/s | gpt-tokenizer MB/s | native / gpt-tokenizer |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  console.log(JSON.stringify(json));
}

await main();
