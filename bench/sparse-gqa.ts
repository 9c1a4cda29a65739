/**
 * Quest GQA combine: 'max' vs 'sum' of the group's per-head page bounds
 * (docs/sparse.md, "GQA: max or sum"). A fidelity measurement, not a timing:
 *
 *   node dist/bench/sparse-gqa.js [trace.safetensors]
 *
 * real     a real-model trace (`tokenpress eval kv --dump-trace`; the
 *          byte-level model has 4 query heads per KV head): the probe rows
 *          (the rows after the prompt; with a copy-task needle, the answer)
 *          attend the prompt's keys, densely and through Quest's selection
 *          at each budget. Per layer >= 2 (Quest keeps the first two layers
 *          dense) and query head: the output's relative L2 error vs dense,
 *          the dense softmax mass on the selected tokens (recall), and the
 *          share of needle tokens selected.
 * synthetic  8 query heads over 2 KV heads, headDim 64, 8192 tokens,
 *          uniform random keys; each query head has its own needle key
 *          (aligned with its query, logit margin `strength`) at its own
 *          position; half the heads have none (diffuse attention). Needle
 *          recall and output error at budget 512.
 * Prints a table and writes JSON (bench-results/sparse-gqa-<date>.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { attention, loadKvTrace, questPageSummaries, questSelect, toF32, type QuestGqa, type Tensor } from '../lib/index.js';

interface Row { workload: string; gqa: QuestGqa; budget: number; relError: number; massRecall: number; needleRecall: number | null; cases: number }

const MODES: QuestGqa[] = ['max', 'sum'];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rows [first, first + n) of [H, N, d] as a contiguous [H, n, d] f32 tensor. */
function slice(t: Tensor<'f32'>, first: number, n: number): Tensor<'f32'> {
  const [H, N, d] = t.shape as [number, number, number];
  const out = new Float32Array(H * n * d);
  for (let h = 0; h < H; h++) out.set(t.data.subarray((h * N + first) * d, (h * N + first + n) * d), h * n * d);
  return { dtype: 'f32', shape: [H, n, d], data: out };
}

/** Dense softmax probabilities of query head hq (one row) over KV head kh's keys, float64. */
function probs(q: Tensor<'f32'>, hq: number, k: Tensor<'f32'>, kh: number): Float64Array {
  const [, n, d] = k.shape as [number, number, number];
  const s = new Float64Array(n);
  let m = -Infinity;
  for (let t = 0; t < n; t++) {
    let x = 0;
    for (let c = 0; c < d; c++) x += q.data[hq * d + c]! * k.data[(kh * n + t) * d + c]!;
    s[t] = x / Math.sqrt(d);
    m = Math.max(m, s[t]!);
  }
  let z = 0;
  for (let t = 0; t < n; t++) z += (s[t] = Math.exp(s[t]! - m));
  for (let t = 0; t < n; t++) s[t]! /= z;
  return s;
}

interface Acc { err: number; mass: number; needleHit: number; needleAll: number; cases: number }

/** One probe (q [nHeads, 1, d]) over k, v [H, n, d]: adds its per-head figures to acc. */
function probe(q: Tensor<'f32'>, k: Tensor<'f32'>, v: Tensor<'f32'>, budget: number, gqa: QuestGqa, needles: number[][], acc: Acc): void {
  const [nHeads, , d] = q.shape as [number, number, number];
  const H = k.shape[0]!, group = nHeads / H;
  const dense = attention(q, k, v).output.data;
  const indices = questSelect(q, questPageSummaries(k, { pageSize: 16 }), { budget, gqa });
  const sparse = attention(q, k, v, { indices }).output.data;
  const nSel = indices.shape[1]!;
  for (let hq = 0; hq < nHeads; hq++) {
    const kh = Math.floor(hq / group);
    let num = 0, den = 0;
    for (let c = 0; c < d; c++) {
      num += (sparse[hq * d + c]! - dense[hq * d + c]!) ** 2;
      den += dense[hq * d + c]! ** 2;
    }
    acc.err += Math.sqrt(num / Math.max(den, 1e-30));
    const p = probs(q, hq, k, kh);
    const sel = new Set(indices.data.subarray(kh * nSel, (kh + 1) * nSel));
    let mass = 0;
    for (const t of sel) mass += p[t]!;
    acc.mass += mass;
    for (const t of needles[hq] ?? []) {
      acc.needleAll++;
      if (sel.has(t)) acc.needleHit++;
    }
    acc.cases++;
  }
}

function row(workload: string, gqa: QuestGqa, budget: number, a: Acc): Row {
  return {
    workload, gqa, budget, relError: a.err / a.cases, massRecall: a.mass / a.cases,
    needleRecall: a.needleAll > 0 ? a.needleHit / a.needleAll : null, cases: a.cases,
  };
}

function realTrace(file: string, budgets: number[]): Row[] {
  const trace = loadKvTrace(file);
  const nProbes = trace.probes ?? 64;
  const nKv = trace.n - nProbes;
  const needleTokens: number[] = [];
  for (const r of trace.needles ?? []) for (let t = r.start; t < Math.min(r.end, nKv); t++) needleTokens.push(t);
  const rows: Row[] = [];
  for (const budget of budgets) {
    for (const gqa of MODES) {
      const a: Acc = { err: 0, mass: 0, needleHit: 0, needleAll: 0, cases: 0 };
      for (let l = Math.min(2, trace.nLayers - 1); l < trace.nLayers; l++) {
        const L = trace.layers[l]!;
        const k = slice(toF32(L.k) as Tensor<'f32'>, 0, nKv);
        const v = slice(toF32(L.v) as Tensor<'f32'>, 0, nKv);
        const q = L.q;
        for (let i = 0; i < nProbes; i++) {
          // Attention of the probe over the prompt only (as eval kv's probes); logits are q.k/sqrt(d).
          probe(slice(q, nKv + i, 1), k, v, budget, gqa, Array.from({ length: trace.nHeads }, () => needleTokens), a);
        }
      }
      rows.push(row(`real ${trace.metadata.model ?? ''} n=${nKv}`, gqa, budget, a));
    }
  }
  return rows;
}

function synthetic(budget: number, strength: number, trials: number): Row[] {
  const H = 2, group = 4, nHeads = H * group, d = 64, n = 8192;
  const rows: Row[] = [];
  for (const gqa of MODES) {
    const a: Acc = { err: 0, mass: 0, needleHit: 0, needleAll: 0, cases: 0 };
    for (let trial = 0; trial < trials; trial++) {
      const r = rng(1000 + trial);
      const k = new Float32Array(H * n * d).map(() => r() * 2 - 1);
      const v = new Float32Array(H * n * d).map(() => r() * 2 - 1);
      const q = new Float32Array(nHeads * d).map(() => r() * 2 - 1);
      const needles: number[][] = [];
      for (let hq = 0; hq < nHeads; hq++) {
        needles.push([]);
        if (hq % 2 === 1) continue;  // diffuse heads: no needle
        const kh = Math.floor(hq / group);
        const t = Math.floor(r() * (n - 64));
        let norm = 0;
        for (let c = 0; c < d; c++) norm += q[hq * d + c]! ** 2;
        // A key along q with logit q.k / sqrt(d) = strength.
        for (let c = 0; c < d; c++) k[(kh * n + t) * d + c] = (q[hq * d + c]! / norm) * strength * Math.sqrt(d);
        needles[hq]!.push(t);
      }
      probe({ dtype: 'f32', shape: [nHeads, 1, d], data: q }, { dtype: 'f32', shape: [H, n, d], data: k }, { dtype: 'f32', shape: [H, n, d], data: v },
        budget, gqa, needles, a);
    }
    rows.push(row(`synthetic strength ${strength}`, gqa, budget, a));
  }
  return rows;
}

function main(): void {
  const file = process.argv[2];
  const rows: Row[] = [];
  if (file) rows.push(...realTrace(file, [128, 256, 512]));
  for (const s of [4, 8]) rows.push(...synthetic(512, s, 4));
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(`Quest GQA combine (fidelity; ${cpu})`);
  console.log('workload                          gqa  budget  rel.err  mass  needles  cases');
  for (const r of rows) {
    console.log(`${r.workload.padEnd(33)} ${r.gqa.padEnd(4)} ${String(r.budget).padStart(6)}  ${r.relError.toFixed(4)}  ${r.massRecall.toFixed(3)}  ${r.needleRecall === null ? '   -  ' : r.needleRecall.toFixed(3).padStart(6)}  ${r.cases}`);
  }
  const out = resolve('bench-results', `sparse-gqa-${new Date().toISOString().slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ cpu, trace: file ?? null, rows }, null, 2));
  console.log(`wrote ${out}`);
}

main();
