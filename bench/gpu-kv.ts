/**
 * KV cache on the GPU (needs the CUDA build and a device; run by
 * bench/gpu-check.sh): eviction of a 32-layer cache at 32k tokens per head,
 * and one decode step through the cache, on the device; the CPU cache on the
 * same per-layer work in the same run.
 *
 * Workload: 32 layers x 8 KV heads x 32768 tokens x headDim 128, f16 (4 GiB
 * of K/V on the device), 32 query heads (GQA 4). Each layer gets one attend
 * of 32 queries (the observation window, with key mass), then compress to
 * half ({ keep: 16384 }) with each device scorer. Timing: the report's
 * planMs + applyMs (scores, selection, compaction, device synchronised),
 * per layer = total / 32; median over `--reps` rebuilds of the cache.
 * Decode step: cache.attend of one query row per head at 32k tokens (all
 * host<->device copies included), median over 50 calls, for an f16 cache and
 * a KIVI int4 cache (blocks read in place); effective bandwidth
 * = K + V bytes / time, against the device's cudaMemcpy device-to-device rate
 * measured in the same run (cudaBenchAttention).
 * CPU peer: the CPU KvCache, 2 layers of the same shape, same policies.
 * Goal (issue 5): eviction under 1 ms per layer at 32k tokens.
 *
 * Usage: node dist/bench/gpu-kv.js [--json out.json] [--md out.md] [--reps N] [--layers N]
 */
import { writeFileSync } from 'node:fs';
import { KvCache, type KvCompressionPolicy, type Tensor } from '../lib/index.js';
import { cudaAvailability } from '../lib/cuda.js';
import { native } from '../lib/native.js';
import { f32ToF16Bits } from '../lib/tensor.js';
import { argValue, median, randomBlock } from './common.js';

const N_KV_HEADS = 8, GROUP = 4, HEAD_DIM = 128, TOKENS = 32768, KEEP = 16384, WINDOW = 32;
const POLICIES: KvCompressionPolicy[] = ['streamingllm', 'knorm', { name: 'h2o', recent: 64 } as KvCompressionPolicy, 'tova', 'snapkv'];


function f16Block(n: number, seed: number): Uint16Array {
  const f = randomBlock(n, seed);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(f[i]!);
  return out;
}

const K: Tensor<'f16'> = { dtype: 'f16', shape: [N_KV_HEADS, TOKENS, HEAD_DIM], data: f16Block(N_KV_HEADS * TOKENS * HEAD_DIM, 1) };
const V: Tensor<'f16'> = { dtype: 'f16', shape: [N_KV_HEADS, TOKENS, HEAD_DIM], data: f16Block(N_KV_HEADS * TOKENS * HEAD_DIM, 2) };
const Q_WINDOW: Tensor<'f32'> = { dtype: 'f32', shape: [N_KV_HEADS * GROUP, WINDOW, HEAD_DIM], data: randomBlock(N_KV_HEADS * GROUP * WINDOW * HEAD_DIM, 3) };
const Q_STEP: Tensor<'f32'> = { dtype: 'f32', shape: [N_KV_HEADS * GROUP, 1, HEAD_DIM], data: randomBlock(N_KV_HEADS * GROUP * HEAD_DIM, 4) };

function filled(device: 'cpu' | 'cuda', layers: number, dtype: 'f16' | 'int4' = 'f16'): KvCache {
  const c = new KvCache({ nLayers: layers, nKvHeads: N_KV_HEADS, headDim: HEAD_DIM, capacity: TOKENS, dtype, window: WINDOW, device });
  for (let l = 0; l < layers; l++) {
    c.append(l, K, V);
    c.attend(l, Q_WINDOW, { accumulateMass: true });
  }
  return c;
}

/** Median ms per layer of compress(policy) over `reps` fresh caches. */
function evictionMsPerLayer(device: 'cpu' | 'cuda', layers: number, policy: KvCompressionPolicy, reps: number): number {
  const per: number[] = [];
  for (let r = 0; r < reps; r++) {
    const c = filled(device, layers);
    const rep = c.compress(policy, { keep: KEEP });
    if (rep.tokensAfter !== layers * N_KV_HEADS * KEEP) throw new Error(`${JSON.stringify(policy)}: kept ${rep.tokensAfter} tokens`);
    per.push((rep.planMs + rep.applyMs) / layers);
  }
  return median(per);
}

function main(): void {
  const cuda = cudaAvailability();
  if (!cuda.available) {
    console.error(`gpu-kv: no CUDA device (${cuda.reason})`);
    process.exit(2);
  }
  const reps = Number(argValue('reps', '3'));
  const layers = Number(argValue('layers', '32'));
  const limits = native().cudaBenchAttention({
    nHeads: 32, nKvHeads: 8, nQ: 1, nKv: TOKENS, headDim: HEAD_DIM, kvDtype: 1, causal: false, warmup: 2, iters: 10, bandwidthBytes: 1 << 30,
  });
  const rows: Record<string, unknown>[] = [];
  for (const policy of POLICIES) {
    const gpu = evictionMsPerLayer('cuda', layers, policy, reps);
    const cpu = evictionMsPerLayer('cpu', 2, policy, 1);
    rows.push({ policy: typeof policy === 'string' ? policy : policy.name, gpuMsPerLayer: gpu, cpuMsPerLayer: cpu, cpuOverGpu: cpu / gpu, goalMet: gpu < 1 });
    console.log(`${JSON.stringify(policy)}: gpu ${gpu.toFixed(3)} ms/layer, cpu ${cpu.toFixed(2)} ms/layer`);
  }
  // One decode step through the cache (copies included): f16, and KIVI int4 read in place.
  const stepOf = (dtype: 'f16' | 'int4'): number => {
    const c = filled('cuda', 1, dtype);
    const times: number[] = [];
    for (let i = 0; i < 55; i++) {
      const t0 = performance.now();
      c.attend(0, Q_STEP, { remember: false });
      if (i >= 5) times.push(performance.now() - t0);
    }
    return median(times);
  };
  const stepMs = stepOf('f16');
  const int4Ms = stepOf('int4');
  const kvBytes = 2 * N_KV_HEADS * TOKENS * HEAD_DIM * 2;
  const step = { ms: stepMs, gbPerS: kvBytes / (stepMs / 1e3) / 1e9, copyGbPerS: limits.copyBytesPerS / 1e9, kernelMs: limits.kernelMs, int4Ms };
  const result = { device: limits.device, layers, tokens: TOKENS, keep: KEEP, reps, eviction: rows, decodeStep: step };
  const md = [
    `Device: ${limits.device}; ${layers} layers x ${N_KV_HEADS} KV heads x ${TOKENS} tokens x headDim ${HEAD_DIM}, f16; compress to ${KEEP}`,
    '',
    '| policy | GPU ms/layer | CPU ms/layer | CPU / GPU | < 1 ms/layer |',
    '|---|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.policy} | ${(r.gpuMsPerLayer as number).toFixed(3)} | ${(r.cpuMsPerLayer as number).toFixed(2)} | ${(r.cpuOverGpu as number).toFixed(1)}x | ${r.goalMet ? 'yes' : 'no'} |`),
    '',
    `Decode step through the cache (1 query row x 32 heads at 32k, copies included): ${stepMs.toFixed(3)} ms median, ` +
      `${step.gbPerS.toFixed(0)} GB/s of K+V (bare kernel ${limits.kernelMs.toFixed(3)} ms; device copy rate ${step.copyGbPerS.toFixed(0)} GB/s); ` +
      `int4 (KIVI, group 32) cache: ${int4Ms.toFixed(3)} ms (${(stepMs / int4Ms).toFixed(2)}x the f16 step's speed)`,
  ].join('\n');
  console.log(md);
  const json = argValue('json', '');
  if (json) writeFileSync(json, JSON.stringify(result, null, 2));
  const mdPath = argValue('md', '');
  if (mdPath) writeFileSync(mdPath, md + '\n');
}

main();
