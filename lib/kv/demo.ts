/**
 * The KV demo of `npm start`: a decode loop on a generated workload (the
 * needle haystack of `tokenpress eval kv`), once over a full cache and once
 * over a cache that keeps itself under a memory budget (autoCompress), side
 * by side: memory, time per decode step, and how far the budgeted cache's
 * attention output is from the full one's.
 */
import { KvCache } from './cache.js';
import { makeNeedleWorkload } from './eval/workload.js';
import type { KvCompressionPolicy } from './compression.js';
import type { Tensor } from '../tensor.js';

export interface KvDemoOptions {
  /** Prompt tokens before decoding; default 8192. */ prompt?: number;
  /** Decode steps; default 128. */ steps?: number;
  /** Tokens per head the budgeted cache keeps; default 10% of the prompt. */ keep?: number;
  policy?: KvCompressionPolicy;
}

export interface KvDemoReport {
  config: { nLayers: number; nHeads: number; nKvHeads: number; headDim: number; prompt: number; steps: number; keep: number; interval: number; policy: string; dtype: string };
  full: { memoryBytes: number; msPerStep: number };
  budget: { memoryBytes: number; msPerStep: number; compressions: number };
  /** ||o_budget - o_full|| / ||o_full|| over the decode steps' attention outputs. */
  relError: { mean: number; p95: number; max: number };
  memorySaved: number;
}

/** Rows [from, from + n) of a [heads, tokens, headDim] tensor, as a contiguous copy. */
function rows(t: Tensor<'f32' | 'f16'>, from: number, n: number): Tensor<'f32' | 'f16'> {
  const [h, total, d] = t.shape as [number, number, number];
  const out = t.dtype === 'f32' ? new Float32Array(h * n * d) : new Uint16Array(h * n * d);
  for (let i = 0; i < h; i++) out.set(t.data.subarray((i * total + from) * d, (i * total + from + n) * d), i * n * d);
  return { dtype: t.dtype, shape: [h, n, d], data: out } as Tensor<'f32' | 'f16'>;
}

function relError(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function runKvDemo(opts: KvDemoOptions = {}): KvDemoReport {
  const prompt = opts.prompt ?? 8192;
  const steps = opts.steps ?? 128;
  const keep = opts.keep ?? Math.round(prompt / 10);
  const interval = 32;
  const policy = opts.policy ?? 'h2o';
  const nLayers = 2, nHeads = 16, nKvHeads = 4, headDim = 128;
  // The workload's last `steps` tokens are the decoded ones; its probe queries
  // (haystack-like queries after the prompt) are the decode steps' queries.
  const w = makeNeedleWorkload({ nLayers, nHeads, nKvHeads, headDim, nKv: prompt + steps, dtype: 'f16', nProbes: 32, seed: 1 });
  const full = new KvCache({ nLayers, nKvHeads, headDim, capacity: prompt + steps, dtype: 'f16' });
  const budget = new KvCache({
    nLayers, nKvHeads, headDim, capacity: prompt + steps, dtype: 'f16',
    autoCompress: { policy, budget: { keep }, interval },
  });
  // Prefill, then the prompt's observation window (queries the policy scores with).
  for (const cache of [full, budget]) {
    w.layers.forEach((layer, l) => {
      cache.append(l, rows(layer.k, 0, prompt), rows(layer.v, 0, prompt));
      cache.attend(l, layer.window, { accumulateMass: true });
    });
  }
  const errors: number[] = [];
  const time = { full: 0, budget: 0 };
  let compressions = 0;
  for (let s = 0; s < steps; s++) {
    for (let l = 0; l < nLayers; l++) {
      const layer = w.layers[l]!;
      const k = rows(layer.k, prompt + s, 1), v = rows(layer.v, prompt + s, 1);
      const probe = s % layer.probes.q.shape[1]!;
      const q: Tensor<'f32'> = { dtype: 'f32', shape: [nHeads, 1, headDim], data: new Float32Array(nHeads * headDim) };
      for (let h = 0; h < nHeads; h++) q.data.set(layer.probes.q.data.subarray((h * layer.probes.q.shape[1]! + probe) * headDim, (h * layer.probes.q.shape[1]! + probe + 1) * headDim), h * headDim);
      let t0 = performance.now();
      full.append(l, k, v);
      const of = full.attend(l, q, { accumulateMass: true }).output.data;
      time.full += performance.now() - t0;
      const before = budget.lengths().data[l * nKvHeads]!;
      t0 = performance.now();
      budget.append(l, k, v);
      const ob = budget.attend(l, q, { accumulateMass: true }).output.data;
      time.budget += performance.now() - t0;
      if (budget.lengths().data[l * nKvHeads]! < before) compressions++;
      errors.push(relError(ob, of));
    }
  }
  errors.sort((a, b) => a - b);
  const report: KvDemoReport = {
    config: { nLayers, nHeads, nKvHeads, headDim, prompt, steps, keep, interval, policy: typeof policy === 'string' ? policy : policy.name, dtype: 'f16' },
    full: { memoryBytes: full.memoryBytes, msPerStep: time.full / steps },
    budget: { memoryBytes: budget.memoryBytes, msPerStep: time.budget / steps, compressions },
    relError: {
      mean: errors.reduce((a, b) => a + b, 0) / errors.length,
      p95: errors[Math.min(errors.length - 1, Math.floor(errors.length * 0.95))]!,
      max: errors[errors.length - 1]!,
    },
    memorySaved: 1 - budget.memoryBytes / full.memoryBytes,
  };
  return report;
}

export function formatKvDemo(r: KvDemoReport): string {
  const c = r.config;
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  return [
    `KV demo: ${c.nLayers} layers, ${c.nHeads} query / ${c.nKvHeads} KV heads, headDim ${c.headDim}, ${c.dtype}; prompt ${c.prompt} tokens, then ${c.steps} decode steps`,
    `budgeted cache: autoCompress ${c.policy}, keep ${c.keep} tokens per head (compress every ${c.interval} new tokens)`,
    '',
    '                 memory        ms / decode step (append + attend, all layers)',
    `full cache       ${mib(r.full.memoryBytes).padStart(10)}    ${r.full.msPerStep.toFixed(2)}`,
    `budgeted cache   ${mib(r.budget.memoryBytes).padStart(10)}    ${r.budget.msPerStep.toFixed(2)}   (${r.budget.compressions} compressions included)`,
    '',
    `memory saved: ${(100 * r.memorySaved).toFixed(1)}%; speedup per step: ${(r.full.msPerStep / r.budget.msPerStep).toFixed(2)}x`,
    `attention output vs the full cache (relative error over ${c.steps * c.nLayers} steps x layers): mean ${(100 * r.relError.mean).toFixed(2)}%, p95 ${(100 * r.relError.p95).toFixed(2)}%, max ${(100 * r.relError.max).toFixed(2)}%`,
  ].join('\n');
}
