/**
 * `tokenpress eval vision`: for each photo, layout, method and keep ratio,
 * reduce the scene, rebuild the image (reconstruct.ts) and report PSNR
 * (mean over photos); for the methods that read side inputs (and the random
 * floor as the reference), the share of the object region's tokens retained.
 */
import type { PatchScene, ReducedScene, VisionEvalMethod } from '../types.js';
import { ensureVisionImages, loadSquarePhoto } from './images.js';
import { ANYRES_SIDE, BASE_SIDE, layoutTokens, PATCH_DIM, type VisionLayout } from './patches.js';
import { patchPsnr, reconstructTokens } from './reconstruct.js';
import { makeScene } from './scene.js';
import { mixSeed } from './rng.js';

export const DEFAULT_VISION_RATIOS: readonly number[] = [0.5, 0.25, 0.1];

export interface VisionEvalOptions {
  methods: readonly VisionEvalMethod[];
  /** Photos used, the first by name (default all 12). */
  images?: number;
  layouts?: readonly VisionLayout[];
  ratios?: readonly number[];
  /** Seed of the synthetic side inputs (mixed with the photo index). */
  seed?: number;
  cacheDir?: string;
  log?: (message: string) => void;
  onProgress?: (done: number, total: number, label: string) => void;
}

export interface VisionPsnrRow {
  layout: VisionLayout;
  method: string;
  family: VisionEvalMethod['family'];
  ratio: number;
  /** Tokens asked for: round(ratio * n), at least 1. */
  keep: number;
  /** Output tokens, mean over photos. */
  meanM: number;
  /** PSNR (dB), mean over photos; dropped patches filled by their feature-nearest output row (the issue's reading). */
  psnrDb: number;
  psnrPerImage: number[];
  /** The same with the spatial fill (nearest output row by patch position: no oracle; reconstruct.ts). */
  psnrSpatialDb: number;
  /** Wall time of run() (ms), mean over photos: informative only (the speed table is `bench vision`). */
  meanMs: number;
}

export interface VisionRegionRow {
  layout: VisionLayout;
  method: string;
  ratio: number;
  keep: number;
  /** Region tokens that survive as their own output row (assignment >= 0, alone in it), share of the region, mean over photos. */
  retained: number;
  retainedPerImage: number[];
}

export interface VisionEvalReport {
  source: { description: string; images: string[] };
  layouts: VisionLayout[];
  ratios: number[];
  seed: number;
  rows: VisionPsnrRow[];
  region: VisionRegionRow[];
  skipped: Array<{ method: string; layout: VisionLayout; ratio: number; error: string }>;
}

/** Share of region tokens kept alone in an output row (see VisionRegionRow.retained). */
export function regionRetained(scene: PatchScene, reduced: ReducedScene): number {
  const count = new Int32Array(reduced.m);
  for (const a of reduced.assignment) if (a >= 0 && a < reduced.m) count[a] = count[a]! + 1;
  let inRegion = 0;
  let kept = 0;
  for (let i = 0; i < scene.n; i++) {
    if (!scene.region[i]) continue;
    inRegion++;
    const a = reduced.assignment[i]!;
    if (a >= 0 && a < reduced.m && count[a] === 1) kept++;
  }
  return inRegion === 0 ? 0 : kept / inRegion;
}

const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((s, x) => s + x, 0) / xs.length);

export function runVisionEval(opts: VisionEvalOptions): VisionEvalReport {
  const layouts = [...(opts.layouts ?? ['base', 'anyres'])];
  const ratios = [...(opts.ratios ?? DEFAULT_VISION_RATIOS)];
  const seed = opts.seed ?? 0;
  for (const r of ratios) if (!(r > 0 && r <= 1)) throw new RangeError(`ratios: expected fractions in (0, 1], received ${String(r)}`);
  const set = ensureVisionImages({ ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(opts.log ? { log: opts.log } : {}) });
  const nImages = Math.min(opts.images ?? set.paths.length, set.paths.length);
  const paths = set.paths.slice(0, nImages);
  const sides = layouts.includes('anyres') ? [BASE_SIDE, ANYRES_SIDE] : [BASE_SIDE];
  type Acc = { m: number[]; psnr: number[]; psnrSpatial: number[]; ms: number[]; region: number[]; keep: number };
  const acc = new Map<string, Acc>();
  const skipped: VisionEvalReport['skipped'] = [];
  const total = paths.length * layouts.length * opts.methods.length * ratios.length;
  let done = 0;
  paths.forEach((path, imageIndex) => {
    const [imgBase, imgAnyres] = loadSquarePhoto(path, sides, set.cacheDir);
    for (const layout of layouts) {
      const grid = layoutTokens(layout, imgBase!, imgAnyres);
      const scene = makeScene(grid, mixSeed(seed, imageIndex));
      for (const method of opts.methods) {
        for (const ratio of ratios) {
          const key = `${layout}\u0000${method.name}\u0000${ratio}`;
          const keep = Math.max(1, Math.round(ratio * scene.n));
          opts.onProgress?.(done, total, `${layout} ${method.name} ${ratio}`);
          done++;
          if (skipped.some((s) => s.method === method.name && s.layout === layout && s.ratio === ratio)) continue;
          let reduced: ReducedScene;
          const t0 = performance.now();
          try {
            reduced = method.run(scene, keep);
          } catch (e) {
            skipped.push({ method: method.name, layout, ratio, error: e instanceof Error ? e.message : String(e) });
            continue;
          }
          const ms = performance.now() - t0;
          const rebuilt = reconstructTokens(scene.tokens, scene.n, PATCH_DIM, reduced);
          const spatial = reconstructTokens(scene.tokens, scene.n, PATCH_DIM, reduced, { kind: 'spatial', centres: grid.centres });
          const a = acc.get(key) ?? { m: [], psnr: [], psnrSpatial: [], ms: [], region: [], keep };
          a.m.push(reduced.m);
          a.psnr.push(patchPsnr(scene.tokens, rebuilt, scene.n));
          a.psnrSpatial.push(patchPsnr(scene.tokens, spatial, scene.n));
          a.ms.push(ms);
          if (method.usesSideInputs || method.name === 'random') a.region.push(regionRetained(scene, reduced));
          acc.set(key, a);
        }
      }
    }
  });
  opts.onProgress?.(total, total, 'done');
  const rows: VisionPsnrRow[] = [];
  const region: VisionRegionRow[] = [];
  for (const layout of layouts) {
    for (const method of opts.methods) {
      for (const ratio of ratios) {
        const a = acc.get(`${layout}\u0000${method.name}\u0000${ratio}`);
        if (!a) continue;
        rows.push({
          layout, method: method.name, family: method.family, ratio, keep: a.keep,
          meanM: mean(a.m), psnrDb: mean(a.psnr), psnrPerImage: a.psnr, psnrSpatialDb: mean(a.psnrSpatial), meanMs: mean(a.ms),
        });
        if (a.region.length > 0) region.push({ layout, method: method.name, ratio, keep: a.keep, retained: mean(a.region), retainedPerImage: a.region });
      }
    }
  }
  return {
    source: { description: `${set.description}; used the first ${paths.length} by name`, images: paths.map((p) => p.slice(p.lastIndexOf('/') + 1)) },
    layouts, ratios, seed, rows, region, skipped,
  };
}

const pct = (r: number) => `${+(r * 100).toPrecision(3)}%`;

/** The PSNR and region tables as text (markdown). */
export function formatVisionEvalTable(report: VisionEvalReport): string {
  const out: string[] = [`Photos: ${report.source.description}`];
  for (const layout of report.layouts) {
    const rows = report.rows.filter((r) => r.layout === layout);
    if (rows.length === 0) continue;
    const n = layout === 'base' ? 576 : 2880;
    for (const [label, value] of [
      ['dropped patches take their feature-nearest output row', (r: VisionPsnrRow) => r.psnrDb],
      ['dropped patches take their spatially nearest output row', (r: VisionPsnrRow) => r.psnrSpatialDb],
    ] as const) {
      out.push('', `PSNR (dB, mean over photos), ${layout} (${n} tokens), ${label}; keep = ratio x ${n}`, '');
      out.push(`| method | family | ${report.ratios.map(pct).join(' | ')} |`);
      out.push(`| --- | --- | ${report.ratios.map(() => '---:').join(' | ')} |`);
      for (const name of [...new Set(rows.map((r) => r.method))]) {
        const cells = report.ratios.map((ratio) => {
          const r = rows.find((x) => x.method === name && x.ratio === ratio);
          return r ? `${value(r).toFixed(2)}${Math.abs(r.meanM - r.keep) > 0.5 ? ` (m ${r.meanM.toFixed(0)})` : ''}` : '-';
        });
        out.push(`| ${name} | ${rows.find((r) => r.method === name)!.family} | ${cells.join(' | ')} |`);
      }
    }
    const reg = report.region.filter((r) => r.layout === layout);
    if (reg.length > 0) {
      out.push('', `Region tokens retained (share of the object region kept as their own token), ${layout}`, '');
      out.push(`| method | ${report.ratios.map(pct).join(' | ')} |`);
      out.push(`| --- | ${report.ratios.map(() => '---:').join(' | ')} |`);
      for (const name of [...new Set(reg.map((r) => r.method))]) {
        const cells = report.ratios.map((ratio) => {
          const r = reg.find((x) => x.method === name && x.ratio === ratio);
          return r ? pct(r.retained) : '-';
        });
        out.push(`| ${name} | ${cells.join(' | ')} |`);
      }
    }
  }
  for (const s of report.skipped) out.push(`skipped ${s.method} (${s.layout}, ${pct(s.ratio)}): ${s.error}`);
  return out.join('\n');
}
