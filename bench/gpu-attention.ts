/**
 * GPU attention benchmark (needs the CUDA build and a device; run by
 * bench/gpu-check.sh): tokenpress's CUDA kernels vs the device's own limits
 * and vs torch scaled_dot_product_attention on the same shapes.
 *
 * Workloads (batch 1, headDim 128, scale 1/sqrt(headDim), K/V f16 and bf16):
 *   decode   nHeads 32, nKvHeads 8 (GQA 4), nQ 1, nKv 32k and 128k.
 *            Memory-bound: each timed call reads the next of several K/V
 *            copies (>= 1 GiB per rotation; L2 is 60 MB).
 *            Metrics: effective bandwidth = (K + V + q + out) bytes / median,
 *            as % of the cudaMemcpy device-to-device rate ((read + write) /
 *            time) and of a streaming read kernel, both measured in the same
 *            call.
 *   sparse   the decode shape at nKv 128k attending to 8192 random positions
 *            per KV head (indices): bandwidth of the gathered rows.
 *   prefill  nQ = nKv = 4096, nHeads 32, nKvHeads 32 and 8, causal and not.
 *            Compute-bound: TFLOP/s = 4 * headDim * visible pairs * nHeads /
 *            median.
 * Ratios vs torch: torch median / ours (> 1: ours is faster), against the
 * default SDPA backend and the fastest backend torch offers for the shape
 * (from bench/torch_sdpa.py's JSON, measured on the same device beforehand).
 *
 * Usage: node dist/bench/gpu-attention.js [--torch torch.json] [--json out.json] [--md out.md] [--iters N]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { native, type NativeCudaBenchResult } from '../lib/native.js';

export interface GpuShape {
  name: string;
  kind: 'decode' | 'prefill';
  nHeads: number;
  nKvHeads: number;
  nQ: number;
  nKv: number;
  headDim: number;
  dtype: 'f16' | 'bf16';
  causal: boolean;
  /** > 0: sparse decode over nSel random key positions per KV head (no torch peer). */
  nSel?: number;
}

/** The shapes, shared with bench/torch_sdpa.py through --shapes JSON. */
export function gpuShapes(): GpuShape[] {
  const shapes: GpuShape[] = [];
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const nKv of [32768, 131072]) {
      shapes.push({ name: `decode-${nKv / 1024}k-${dtype}`, kind: 'decode', nHeads: 32, nKvHeads: 8, nQ: 1, nKv, headDim: 128, dtype, causal: false });
    }
  }
  for (const dtype of ['f16', 'bf16'] as const) {
    shapes.push({ name: `sparse-128k-sel8k-${dtype}`, kind: 'decode', nHeads: 32, nKvHeads: 8, nQ: 1, nKv: 131072, headDim: 128, dtype, causal: false, nSel: 8192 });
  }
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const nKvHeads of [32, 8]) {
      for (const causal of [false, true]) {
        shapes.push({
          name: `prefill-4k-h32kv${nKvHeads}-${causal ? 'causal' : 'full'}-${dtype}`,
          kind: 'prefill', nHeads: 32, nKvHeads, nQ: 4096, nKv: 4096, headDim: 128, dtype, causal,
        });
      }
    }
  }
  return shapes;
}

interface TorchRow {
  name: string;
  backend: string;
  ms: number | null;
  error?: string;
}

interface Row extends GpuShape {
  ms: number;
  minMs: number;
  splits: number;
  gbPerS: number;
  pctCopy: number;
  pctRead: number;
  tflops: number;
  copyGbPerS: number;
  readGbPerS: number;
  torchDefaultMs: number | null;
  torchBestMs: number | null;
  torchBestBackend: string | null;
  vsTorchDefault: number | null; // torch ms / ours ms
  vsTorchBest: number | null;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function fmt(x: number | null, digits = 2): string {
  return x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

export function runGpuBench(): Row[] {
  const iters = Number(arg('--iters') ?? 30);
  const torchPath = arg('--torch');
  let torch: TorchRow[] = [];
  if (torchPath && existsSync(torchPath)) torch = (JSON.parse(readFileSync(torchPath, 'utf8')) as { rows: TorchRow[] }).rows;
  else if (torchPath) console.warn(`no torch timings at ${torchPath}: torch columns stay empty`);
  const rows: Row[] = [];
  let device = '';
  for (const s of gpuShapes()) {
    const r: NativeCudaBenchResult = native().cudaBenchAttention({
      nHeads: s.nHeads, nKvHeads: s.nKvHeads, nQ: s.nQ, nKv: s.nKv, headDim: s.headDim,
      kvDtype: s.dtype === 'f16' ? 1 : 2, causal: s.causal, path: s.kind === 'decode' ? 1 : 2,
      warmup: 3, iters, bandwidthBytes: 2 ** 30, nSel: s.nSel ?? 0,
    });
    device = r.device;
    const mine = torch.filter((t) => t.name === s.name && t.ms !== null && t.ms > 0);
    const def = mine.find((t) => t.backend === 'default') ?? null;
    const best = mine.reduce<TorchRow | null>((b, t) => (b === null || t.ms! < b.ms! ? t : b), null);
    const sec = r.kernelMs * 1e-3;
    rows.push({
      ...s,
      ms: r.kernelMs, minMs: r.kernelMinMs, splits: r.splits,
      gbPerS: r.bytes / sec / 1e9,
      pctCopy: (100 * r.bytes) / sec / r.copyBytesPerS,
      pctRead: (100 * r.bytes) / sec / r.readBytesPerS,
      tflops: r.flops / sec / 1e12,
      copyGbPerS: r.copyBytesPerS / 1e9,
      readGbPerS: r.readBytesPerS / 1e9,
      torchDefaultMs: def?.ms ?? null,
      torchBestMs: best?.ms ?? null,
      torchBestBackend: best?.backend ?? null,
      vsTorchDefault: def ? def.ms! / r.kernelMs : null,
      vsTorchBest: best ? best.ms! / r.kernelMs : null,
    });
  }
  // Split-count sweep on the f16 decode shapes (automatic = one full wave).
  const sweep: string[] = [];
  for (const r of rows.filter((x) => x.kind === 'decode' && x.dtype === 'f16' && !x.nSel)) {
    for (const splits of [Math.max(1, Math.round(r.splits / 2)), r.splits * 2, r.splits * 4]) {
      const t = native().cudaBenchAttention({
        nHeads: r.nHeads, nKvHeads: r.nKvHeads, nQ: r.nQ, nKv: r.nKv, headDim: r.headDim,
        kvDtype: 1, causal: false, path: 1, splits, warmup: 3, iters, bandwidthBytes: 2 ** 26,
      });
      const sec = t.kernelMs * 1e-3;
      sweep.push(`${r.name} variant 0 (register loads) splits ${t.splits}: ${fmt(t.kernelMs, 4)} ms, ${fmt(t.bytes / sec / 1e9, 0)} GB/s, ${fmt((100 * t.bytes) / sec / r.copyGbPerS / 1e9, 1)}% of copy BW (auto: ${r.splits} splits, ${fmt(r.ms, 4)} ms)`);
    }
  }
  // Decode variant 1 (cp.async pipeline) at the automatic split count.
  for (const r of rows.filter((x) => x.kind === 'decode')) {
    const t = native().cudaBenchAttention({
      nHeads: r.nHeads, nKvHeads: r.nKvHeads, nQ: r.nQ, nKv: r.nKv, headDim: r.headDim, nSel: r.nSel ?? 0,
      kvDtype: r.dtype === 'f16' ? 1 : 2, causal: false, path: 1, variant: 1, warmup: 3, iters, bandwidthBytes: 2 ** 26,
    });
    const sec = t.kernelMs * 1e-3;
    sweep.push(`${r.name} variant 1 (cp.async pipeline), splits ${t.splits}: ${fmt(t.kernelMs, 4)} ms, ${fmt(t.bytes / sec / 1e9, 0)} GB/s, ${fmt((100 * t.bytes) / sec / r.copyGbPerS / 1e9, 1)}% of copy BW (variant 0: ${fmt(r.ms, 4)} ms)`);
  }
  // Prefill variants: 1 = 16 rows per warp, 64-key tiles (2 blocks/SM), 2 = the same at 1 block/SM.
  for (const r of rows.filter((x) => x.kind === 'prefill')) {
    for (const variant of [1, 2]) {
      const t = native().cudaBenchAttention({
        nHeads: r.nHeads, nKvHeads: r.nKvHeads, nQ: r.nQ, nKv: r.nKv, headDim: r.headDim,
        kvDtype: r.dtype === 'f16' ? 1 : 2, causal: r.causal, path: 2, variant, warmup: 3, iters, bandwidthBytes: 2 ** 26,
      });
      const ratio = r.torchBestMs === null ? '' : `, x torch best ${fmt(r.torchBestMs / t.kernelMs)}`;
      sweep.push(`${r.name} variant ${variant}: ${fmt(t.kernelMs, 4)} ms, ${fmt(t.flops / (t.kernelMs * 1e-3) / 1e12, 1)} TFLOP/s${ratio} (variant 0: ${fmt(r.ms, 4)} ms, ${fmt(r.tflops, 1)} TFLOP/s)`);
    }
  }
  const lines: string[] = [];
  lines.push(`device: ${device}; median of ${iters} calls (CUDA events); torch ratios = torch ms / ours ms (> 1: ours faster)`);
  lines.push('');
  lines.push('| shape | ours ms | GB/s | % copy BW | % read BW | TFLOP/s | splits | torch default ms | x default | torch best (backend) ms | x best |');
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const dec = r.kind === 'decode';
    lines.push(
      `| ${r.name} | ${fmt(r.ms, 4)} | ${dec ? fmt(r.gbPerS, 0) : '-'} | ${dec ? fmt(r.pctCopy, 1) : '-'} | ${dec ? fmt(r.pctRead, 1) : '-'} | ` +
        `${dec ? '-' : fmt(r.tflops, 1)} | ${dec ? r.splits : '-'} | ${fmt(r.torchDefaultMs, 4)} | ${fmt(r.vsTorchDefault)} | ` +
        `${r.torchBestMs === null ? '-' : `${fmt(r.torchBestMs, 4)} (${r.torchBestBackend})`} | ${fmt(r.vsTorchBest)} |`,
    );
  }
  const limits = rows.filter((r) => r.kind === 'decode').map((r) => `${r.name}: copy ${fmt(r.copyGbPerS, 0)} GB/s, read ${fmt(r.readGbPerS, 0)} GB/s`);
  lines.push('');
  lines.push(`measured limits (same calls): ${limits.join('; ')}`);
  lines.push('');
  lines.push('tuning sweeps (decode splits and variant 1; prefill variants 1 and 2):');
  for (const s of sweep) lines.push(`  ${s}`);
  const text = lines.join('\n');
  console.log(text);
  const json = arg('--json');
  if (json) writeFileSync(json, JSON.stringify({ device, iters, rows, torch }, null, 2));
  const md = arg('--md');
  if (md) writeFileSync(md, text + '\n');
  return rows;
}

if (process.argv[1] && /gpu-attention\.js$/.test(process.argv[1])) {
  if (process.argv.includes('--shapes')) console.log(JSON.stringify(gpuShapes()));
  else runGpuBench();
}
