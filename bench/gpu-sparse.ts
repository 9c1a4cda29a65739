/**
 * Quest on the device KV cache (needs the CUDA build and a device; run by
 * bench/gpu-check.sh): one decode step of one layer through the cache,
 * dense against Quest (budget 2048, pageSize 16, gqa 'sum'), at 32k and 128k
 * tokens per head, and the summary upkeep.
 *
 * Workload: 8 KV heads x headDim 128, f16, 32 query heads (GQA 4), one query
 * row. Each step is cache.attend with all host<->device copies included;
 * median over 50 calls after 5 warm-up calls, the query cycling over 8 random
 * rows so the selected pages change. Bytes model: dense reads K + V of every
 * token; Quest reads the summaries (2 rows per 16 keys: 1/16 of K + V) and
 * the 2048 selected rows of K + V, so the bandwidth-ideal speedup is 8.0x at
 * 32k and 12.8x at 128k. Summary build: the first sparse attend of a filled
 * layer minus a later one. Upkeep: 200 single-token appends to a layer with
 * summaries against one without (median per append).
 *
 * Usage: node dist/bench/gpu-sparse.js [--json out.json] [--md out.md] [--tokens 32768,131072]
 */
import { writeFileSync } from 'node:fs';
import { KvCache, type Tensor } from '../lib/index.js';
import { cudaAvailability } from '../lib/cuda.js';
import { f32ToF16Bits } from '../lib/tensor.js';
import { argValue, median, randomBlock } from './common.js';

const N_KV_HEADS = 8, GROUP = 4, HEAD_DIM = 128, BUDGET = 2048, PAGE = 16;
const SPARSE = { method: 'quest', budget: BUDGET, pageSize: PAGE } as const;


function f16(shape: [number, number, number], seed: number): Tensor<'f16'> {
  const n = shape[0] * shape[1] * shape[2];
  const f = randomBlock(n, seed);
  const data = new Uint16Array(n);
  for (let i = 0; i < n; i++) data[i] = f32ToF16Bits(f[i]!);
  return { dtype: 'f16', shape, data };
}

const QUERIES: Tensor<'f32'>[] = Array.from({ length: 8 }, (_, i) => ({
  dtype: 'f32', shape: [N_KV_HEADS * GROUP, 1, HEAD_DIM], data: randomBlock(N_KV_HEADS * GROUP * HEAD_DIM, 100 + i),
}));

function filled(tokens: number): KvCache {
  const c = new KvCache({ nLayers: 1, nKvHeads: N_KV_HEADS, headDim: HEAD_DIM, capacity: tokens + 1024, dtype: 'f16', device: 'cuda' });
  c.append(0, f16([N_KV_HEADS, tokens, HEAD_DIM], 1), f16([N_KV_HEADS, tokens, HEAD_DIM], 2));
  return c;
}

function stepMs(c: KvCache, sparse: boolean): number {
  const times: number[] = [];
  for (let i = 0; i < 55; i++) {
    const q = QUERIES[i % QUERIES.length]!;
    const t0 = performance.now();
    c.attend(0, q, sparse ? { sparse: SPARSE, remember: false } : { remember: false });
    if (i >= 5) times.push(performance.now() - t0);
  }
  return median(times);
}

function appendMs(c: KvCache): number {
  const k = f16([N_KV_HEADS, 1, HEAD_DIM], 7), v = f16([N_KV_HEADS, 1, HEAD_DIM], 8);
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    c.append(0, k, v);
    times.push(performance.now() - t0);
  }
  return median(times);
}

function main(): void {
  const cuda = cudaAvailability();
  if (!cuda.available) {
    console.error(`gpu-sparse: no CUDA device (${cuda.reason})`);
    process.exit(2);
  }
  const sizes = argValue('tokens', '32768,131072').split(',').map(Number);
  const rows: Record<string, number>[] = [];
  for (const tokens of sizes) {
    const c = filled(tokens);
    const t0 = performance.now();
    c.attend(0, QUERIES[0]!, { sparse: SPARSE, remember: false });
    const firstMs = performance.now() - t0;
    const dense = stepMs(c, false), quest = stepMs(c, true);
    const plain = filled(tokens);
    const upkeep = { withMs: appendMs(c), withoutMs: appendMs(plain) };
    const ideal = tokens / (tokens / PAGE * 2 / 2 + BUDGET);  // K + V rows read: all vs summaries (2 rows / 16 of K) + selected
    rows.push({ tokens, denseMs: dense, questMs: quest, speedup: dense / quest, ideal, buildMs: firstMs - quest, appendWithMs: upkeep.withMs, appendWithoutMs: upkeep.withoutMs });
    console.log(`${tokens}: dense ${dense.toFixed(3)} ms, quest ${quest.toFixed(3)} ms (${(dense / quest).toFixed(2)}x, ideal ${ideal.toFixed(1)}x)`);
  }
  const md = [
    `Device: ${cuda.devices}; 1 layer x ${N_KV_HEADS} KV heads x headDim ${HEAD_DIM}, f16, 32 query heads, 1 query row; Quest budget ${BUDGET}, pageSize ${PAGE}, gqa sum`,
    '',
    '| tokens | dense step ms | Quest step ms | speedup | ideal | summary build ms | append with / without summaries ms |',
    '|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.tokens} | ${r.denseMs!.toFixed(3)} | ${r.questMs!.toFixed(3)} | ${r.speedup!.toFixed(2)}x | ${r.ideal!.toFixed(1)}x | ${r.buildMs!.toFixed(3)} | ${r.appendWithMs!.toFixed(3)} / ${r.appendWithoutMs!.toFixed(3)} |`),
  ].join('\n');
  console.log(md);
  const json = argValue('json', '');
  if (json) writeFileSync(json, JSON.stringify({ device: cuda.devices, rows }, null, 2));
  const mdPath = argValue('md', '');
  if (mdPath) writeFileSync(mdPath, md + '\n');
}

main();
