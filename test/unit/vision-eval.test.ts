// `tokenpress eval vision` harness (lib/vision/eval/): patch extraction and
// its exact inverse, the rebuild / nearest-kept mapping / PSNR against an
// independent float64 computation, the floors, the JPEG decode of a golden
// image, the synthetic scenes' determinism, the plot, and the whole run on a
// locally built stand-in .deb (no network).
//
// test/fixtures/vision/tiny.jpg: a 24x16 pattern encoded with libjpeg-turbo
// 2.1.5 (`cjpeg -quality 95 -sample 2x2 -dct int`); tiny.rgb: the same file
// decoded by libjpeg-turbo (`djpeg -dct int -nosmooth`), 24*16*3 bytes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { describe, expect, test } from 'vitest';
import { decodeJpeg, squareResize, type RgbImage } from '../../lib/vision/eval/images.js';
import { CLIP_MEAN, CLIP_STD, imageToPatches, layoutTokens, PATCH_DIM, patchesToImage } from '../../lib/vision/eval/patches.js';
import { patchPsnr, reconstructTokens, resolveAssignment } from '../../lib/vision/eval/reconstruct.js';
import { makeScene, SCENE_LAYERS } from '../../lib/vision/eval/scene.js';
import { floorMethods, gridPool, poolWindow, randomKeep } from '../../lib/vision/eval/methods-floor.js';
import { selectVisionMethods, VISION_EVAL_METHODS } from '../../lib/vision/eval/methods.js';
import { regionRetained, runVisionEval, formatVisionEvalTable } from '../../lib/vision/eval/run.js';
import { renderVisionEvalSvg } from '../../lib/vision/eval/plot-svg.js';
import { mulberry32 } from '../../lib/vision/eval/rng.js';
import type { PatchScene, ReducedScene } from '../../lib/vision/types.js';

const FIX = join(import.meta.dirname, '..', 'fixtures', 'vision');

function randomImage(width: number, height: number, seed: number): RgbImage {
  const u = mulberry32(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (u() * 256) | 0;
  return { width, height, data };
}

const same = (a: ArrayBufferView, b: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** A scene of random tokens (dim 768) on a gridH x gridW grid, side inputs empty. */
function plainScene(gridH: number, gridW: number, seed: number, dup = false): PatchScene {
  const n = gridH * gridW;
  const u = mulberry32(seed);
  const tokens = new Float32Array(n * PATCH_DIM);
  for (let i = 0; i < tokens.length; i++) tokens[i] = u() * 4 - 2;
  if (dup && n > 2) tokens.copyWithin(PATCH_DIM, 0, PATCH_DIM); // token 1 = token 0
  return {
    tokens, n, dim: PATCH_DIM, gridH, gridW, clsAttention: new Float32Array(0), layers: 0,
    textEmbedding: new Float32Array(PATCH_DIM), lastTokenAttention: new Float32Array(n), region: new Uint8Array(n),
  };
}

// ---- independent float64 references -------------------------------------------------

/** Pixel value (0..255, float64) of token value v in channel c. */
const toPixel = (v: number, c: number) => (v * CLIP_STD[c]! + CLIP_MEAN[c]!) * 255;

function refPsnr(orig: Float32Array, out: Float32Array, rows: number[], n: number): number {
  let se = 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < PATCH_DIM; k++) {
      const c = k >> 8; // 256 values per channel
      const a = Math.min(255, Math.max(0, toPixel(orig[i * PATCH_DIM + k]!, c)));
      const b = rows[i]! < 0 ? toPixel(0, c) : toPixel(out[rows[i]! * PATCH_DIM + k]!, c);
      const e = a - Math.min(255, Math.max(0, b));
      se += e * e;
    }
  }
  return 10 * Math.log10((255 * 255) / (se / (n * PATCH_DIM)));
}

function refRows(orig: Float32Array, r: ReducedScene, n: number): number[] {
  const rows: number[] = [];
  for (let i = 0; i < n; i++) {
    if (r.assignment[i]! >= 0 || r.m === 0) {
      rows.push(r.assignment[i]!);
      continue;
    }
    const d = Array.from({ length: r.m }, (_, j) => {
      let s = 0;
      for (let k = 0; k < PATCH_DIM; k++) s += (orig[i * PATCH_DIM + k]! - r.tokens[j * PATCH_DIM + k]!) ** 2;
      return s;
    });
    rows.push(d.indexOf(Math.min(...d))); // first minimum = lowest row on ties
  }
  return rows;
}

describe('patches', () => {
  test('image -> patches -> image is exact; layout (channel, row, column); centres', () => {
    const img = randomImage(48, 32, 3);
    const g = imageToPatches(img);
    expect([g.n, g.gridH, g.gridW]).toEqual([6, 2, 3]);
    // token 4 = grid (1, 1): pixel (x 16+5, y 16+7), channel 2
    const v = img.data[((16 + 7) * 48 + 16 + 5) * 3 + 2]!;
    expect(g.tokens[4 * PATCH_DIM + 2 * 256 + 7 * 16 + 5]).toBeCloseTo((v / 255 - CLIP_MEAN[2]) / CLIP_STD[2], 5);
    expect([g.centres[8], g.centres[9]]).toEqual([1.5 / 3, 0.75]);
    const back = patchesToImage(g.tokens, g.gridH, g.gridW);
    expect(back.width).toBe(48);
    expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
    expect(() => imageToPatches(randomImage(20, 16, 1))).toThrow(/img: expected width and height positive multiples of 16, received 20x16/);
  });

  test('anyres: thumbnail then the four crops, 2,880 tokens on a 120 x 24 grid', () => {
    const base = randomImage(384, 384, 5);
    const big = randomImage(768, 768, 6);
    const a = layoutTokens('anyres', base, big);
    expect([a.n, a.gridH, a.gridW]).toEqual([2880, 120, 24]);
    expect(same(a.tokens.subarray(0, 576 * PATCH_DIM), layoutTokens('base', base).tokens)).toBe(true);
    // crop 3 (bottom-right), its first token = pixel block at (384, 384) of the big image
    const c3 = imageToPatches({ width: 16, height: 16, data: Uint8Array.from({ length: 768 }, (_, k) => {
      const p = k / 3 | 0, c = k % 3;
      return big.data[((384 + (p / 16 | 0)) * 768 + 384 + (p % 16)) * 3 + c]!;
    }) });
    const at = (576 * 4) * PATCH_DIM;
    expect(same(a.tokens.subarray(at, at + PATCH_DIM), c3.tokens)).toBe(true);
    expect([a.centres[2 * 2304], a.centres[2 * 2304 + 1]]).toEqual([0.5 + 0.5 / 48, 0.5 + 0.5 / 48]);
    expect(() => layoutTokens('anyres', base)).toThrow(/imgAnyres: expected 768x768/);
  });
});

describe('rebuild and PSNR against float64 references', () => {
  const scene = plainScene(3, 3, 11, true); // n = 9, token 1 duplicates token 0
  const orig = scene.tokens;
  const cases: Array<[string, ReducedScene]> = [
    ['pruned, odd m, duplicate kept tokens (tie -> lowest row)', (() => {
      const kept = [0, 1, 5]; // 0 and 1 are equal
      const tokens = new Float32Array(3 * PATCH_DIM);
      kept.forEach((s, r) => tokens.set(orig.subarray(s * PATCH_DIM, (s + 1) * PATCH_DIM), r * PATCH_DIM));
      const assignment = new Int32Array(9).fill(-1);
      kept.forEach((s, r) => { assignment[s] = r; });
      return { tokens, m: 3, assignment };
    })()],
    ['merged (sizes from assignment), one dropped', (() => {
      const tokens = Float32Array.from({ length: 2 * PATCH_DIM }, (_, k) => Math.sin(k));
      return { tokens, m: 2, assignment: Int32Array.from([0, 0, 1, 1, -1, 0, 1, 1, 0]) };
    })()],
    ['a single output row', { tokens: orig.slice(4 * PATCH_DIM, 5 * PATCH_DIM), m: 1, assignment: Int32Array.from([-1, -1, -1, -1, 0, -1, -1, -1, -1]) }],
    ['nothing kept: the zero token', { tokens: new Float32Array(0), m: 0, assignment: new Int32Array(9).fill(-1) }],
  ];
  test.each(cases)('%s', (_, r) => {
    const rows = refRows(orig, r, 9);
    expect(Array.from(resolveAssignment(orig, 9, PATCH_DIM, r))).toEqual(rows);
    const rebuilt = reconstructTokens(orig, 9, PATCH_DIM, r);
    expect(patchPsnr(orig, rebuilt, 9)).toBeCloseTo(refPsnr(orig, r.tokens, rows, 9), 9);
  });

  test('spatial fill: nearest row position (mean centre of its sources), against a float64 reference', () => {
    const centres = new Float64Array(18);
    for (let i = 0; i < 9; i++) { centres[2 * i] = ((i % 3) + 0.5) / 3; centres[2 * i + 1] = (Math.floor(i / 3) + 0.5) / 3; }
    for (const [, r] of cases) {
      const got = resolveAssignment(orig, 9, PATCH_DIM, r, { kind: 'spatial', centres });
      for (let i = 0; i < 9; i++) {
        if (r.assignment[i]! >= 0) { expect(got[i]).toBe(r.assignment[i]); continue; }
        const d = Array.from({ length: r.m }, (_, j) => {
          const members = [...r.assignment.keys()].filter((s) => r.assignment[s] === j);
          if (members.length === 0) return Infinity;
          const cx = members.reduce((s, q) => s + centres[2 * q]!, 0) / members.length;
          const cy = members.reduce((s, q) => s + centres[2 * q + 1]!, 0) / members.length;
          return (cx - centres[2 * i]!) ** 2 + (cy - centres[2 * i + 1]!) ** 2;
        });
        expect(got[i]).toBe(r.m === 0 ? -1 : d.indexOf(Math.min(...d)));
      }
    }
    expect(() => resolveAssignment(orig, 9, PATCH_DIM, cases[0]![1], { kind: 'spatial', centres: new Float64Array(4) })).toThrow(/fill.centres: expected 2 x n = 18 values, received 4/);
  });

  test('ties go to the lowest row; identical rebuild is Infinity; bad assignments throw', () => {
    const r = cases[0]![1];
    const rows = resolveAssignment(orig, 9, PATCH_DIM, { ...r, assignment: Int32Array.from([-1, 1, -1, -1, -1, 2, -1, -1, -1]) });
    expect(rows[0]).toBe(0); // equal to rows 0 and 1: the lowest
    expect(patchPsnr(orig, orig.slice(), 9)).toBe(Infinity);
    expect(() => resolveAssignment(orig, 9, PATCH_DIM, { ...r, assignment: new Int32Array(9).fill(3) })).toThrow(/reduced.assignment\[0\]: expected -1 or a row in \[0, 3\), received 3/);
    expect(() => resolveAssignment(orig, 9, PATCH_DIM, { ...r, assignment: new Int32Array(8) })).toThrow(/reduced.assignment: expected 9 entries, received 8/);
    expect(() => resolveAssignment(orig, 9, PATCH_DIM, { ...r, m: 4 })).toThrow(/reduced.tokens: expected m x dim = 4 x 768/);
  });
});

describe('floors', () => {
  test('random: k distinct ascending rows, consistent assignment, deterministic, k clipped to n', () => {
    const s = plainScene(5, 7, 2); // n = 35
    for (const k of [0, 1, 12, 35, 40]) {
      const r = randomKeep(s, k, 0);
      const kept = [...r.assignment].map((a, i) => [a, i] as const).filter(([a]) => a >= 0);
      expect(r.m).toBe(Math.min(k, 35));
      expect(kept.map(([a]) => a)).toEqual([...Array(r.m).keys()]); // rows ascending with the source index
      for (const [a, i] of kept) expect(same(r.tokens.subarray(a * PATCH_DIM, (a + 1) * PATCH_DIM), s.tokens.subarray(i * PATCH_DIM, (i + 1) * PATCH_DIM))).toBe(true);
      expect(same(randomKeep(s, k, 0).assignment, r.assignment)).toBe(true);
    }
    expect(randomKeep(s, 12, 1).assignment).not.toEqual(randomKeep(s, 12, 0).assignment);
    expect(() => randomKeep(s, 1.5)).toThrow(/keep: expected a non-negative integer, received 1.5/);
  });

  test('pool: windows and means against a float64 reference on odd grids', () => {
    expect(poolWindow(24, 24, 144)).toEqual({ sh: 2, sw: 2 });
    expect(poolWindow(24, 24, 288)).toEqual({ sh: 1, sw: 2 });
    expect(poolWindow(24, 24, 58)).toEqual({ sh: 3, sw: 3 });
    for (const [h, w, keep] of [[5, 7, 6], [1, 1, 1], [3, 5, 15], [24, 24, 58], [1, 9, 2]] as const) {
      const s = plainScene(h, w, h * 10 + w);
      const r = gridPool(s, keep);
      const { sh, sw } = poolWindow(h, w, keep);
      const ww = Math.ceil(w / sw);
      expect(r.m).toBe(Math.ceil(h / sh) * ww);
      for (let row = 0; row < r.m; row++) {
        const members: number[] = [];
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (Math.floor(y / sh) * ww + Math.floor(x / sw) === row) members.push(y * w + x);
        for (const i of members) expect(r.assignment[i]).toBe(row);
        for (const k of [0, 300, 767]) {
          const want = members.reduce((acc, i) => acc + s.tokens[i * PATCH_DIM + k]!, 0) / members.length;
          expect(r.tokens[row * PATCH_DIM + k]).toBeCloseTo(want, 5);
        }
      }
    }
  });

  test('the method list: floors now, unknown names throw', () => {
    expect(VISION_EVAL_METHODS.slice(0, 2).map((m) => m.name)).toEqual(['random', 'pool']);
    expect(floorMethods.every((m) => m.family === 'floor' && m.bench === undefined)).toBe(true);
    expect(selectVisionMethods(['pool']).map((m) => m.name)).toEqual(['pool']);
    expect(() => selectVisionMethods(['nope'])).toThrow(/methods: unknown method "nope"/);
  });
});

describe('images', () => {
  test('jpeg-js decodes the golden JPEG within 2 of libjpeg-turbo', () => {
    const img = decodeJpeg(readFileSync(join(FIX, 'tiny.jpg')));
    const want = readFileSync(join(FIX, 'tiny.rgb'));
    expect([img.width, img.height, img.data.length]).toEqual([24, 16, want.length]);
    let max = 0;
    for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(img.data[i]! - want[i]!));
    expect(max).toBeLessThanOrEqual(2);
  });

  test('squareResize: centre crop and exact area average against a float64 reference', () => {
    const img = randomImage(7, 4, 9); // crop x0 = 1, 4x4 -> 3x3 (scale 4/3)
    const out = squareResize(img, 3);
    const cover = (o: number, p: number) => Math.max(0, Math.min((o + 1) * 4 / 3, p + 1) - Math.max(o * 4 / 3, p));
    for (let oy = 0; oy < 3; oy++) for (let ox = 0; ox < 3; ox++) for (let c = 0; c < 3; c++) {
      let s = 0;
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) s += cover(oy, y) * cover(ox, x) * img.data[(y * 7 + 1 + x) * 3 + c]!;
      expect(out.data[(oy * 3 + ox) * 3 + c]).toBe(Math.round(s / (16 / 9)));
    }
    expect(squareResize(img, 4).data).toEqual(Uint8Array.from({ length: 48 }, (_, k) => img.data[((k / 12 | 0) * 7 + 1) * 3 + (k % 12)]!));
    expect(() => squareResize(img, 5)).toThrow(/side: expected an integer in \[1, 4\]/);
  });
});

describe('synthetic scenes', () => {
  const grid = layoutTokens('base', randomImage(384, 384, 21));
  test('deterministic per seed; attention rows sum to 1; sinks outside the region; text near the region', () => {
    const a = makeScene(grid, 7);
    const a2 = makeScene(grid, 7);
    for (const k of ['clsAttention', 'textEmbedding', 'lastTokenAttention', 'region'] as const) expect(same(a2[k], a[k])).toBe(true);
    const b = makeScene(grid, 8);
    expect(same(b.region, a.region)).toBe(false);
    expect(same(b.clsAttention, a.clsAttention)).toBe(false);
    // text embedding = unit(mean of region tokens) + 0.5 unit(noise): cosine to that mean is 1 / sqrt(1.25) up to the noise's overlap
    const mean = new Float64Array(PATCH_DIM);
    for (let i = 0; i < 576; i++) if (a.region[i]) for (let k = 0; k < PATCH_DIM; k++) mean[k] = mean[k]! + grid.tokens[i * PATCH_DIM + k]!;
    let dot = 0, nm = 0, nt = 0;
    for (let k = 0; k < PATCH_DIM; k++) { dot += mean[k]! * a.textEmbedding[k]!; nm += mean[k]! ** 2; nt += a.textEmbedding[k]! ** 2; }
    expect(dot / Math.sqrt(nm * nt)).toBeGreaterThan(0.8);
    expect(a.layers).toBe(SCENE_LAYERS);
    expect(a.clsAttention.length).toBe(SCENE_LAYERS * 576);
    for (let l = 0; l < SCENE_LAYERS; l++) expect(a.clsAttention.subarray(l * 576, (l + 1) * 576).reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    expect(a.lastTokenAttention.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    const inRegion = a.region.reduce((s, x) => s + x, 0);
    expect(inRegion).toBeGreaterThan(0.25 * 0.25 * 576 * 0.7);
    expect(inRegion).toBeLessThan(0.4 * 0.4 * 576 * 1.3);
    // the 4 largest layer-0 CLS weights are the sinks, outside the region
    const order = [...a.clsAttention.subarray(0, 576)].map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]);
    for (const [, i] of order.slice(0, 4)) expect(a.region[i]).toBe(0);
    // late layers put more mass on the region than early ones
    const regionMass = (l: number) => a.clsAttention.subarray(l * 576, (l + 1) * 576).reduce((s, x, i) => s + (a.region[i] ? x : 0), 0);
    expect(regionMass(SCENE_LAYERS - 1)).toBeGreaterThan(regionMass(0));
  });

  test('regionRetained counts region tokens alone in their row', () => {
    const s = { ...plainScene(2, 3, 1), region: Uint8Array.from([1, 1, 0, 1, 0, 0]) };
    const r = { tokens: new Float32Array(3 * PATCH_DIM), m: 3, assignment: Int32Array.from([0, 1, 1, -1, 2, 2]) };
    expect(regionRetained(s, r)).toBeCloseTo(1 / 3, 12); // token 0 alone; 1 shares row 1; 3 dropped
  });
});

describe('the run, offline', () => {
  test('floors on a stand-in mate-backgrounds .deb: tables, JSON fields, plot', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tp-vision-'));
    try {
      // A 2-photo package with the real one's layout, built locally (no apt-get: the .deb is already cached).
      const pkg = join(dir, 'pkg');
      const photos = join(pkg, 'usr/share/backgrounds/mate/nature');
      mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
      mkdirSync(photos, { recursive: true });
      writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: mate-backgrounds\nVersion: 0.0-test\nArchitecture: all\nMaintainer: t <t@t>\nDescription: test\n');
      for (const [name, seed] of [['A.jpg', 1], ['B.jpg', 2]] as const) {
        const u = mulberry32(seed);
        const w = 400, h = 392; // smooth blobs + noise: pooling beats random keeping
        const data = new Uint8Array(w * h * 4);
        for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 4; c++) {
          data[(y * w + x) * 4 + c] = c === 3 ? 255 : Math.round(127 + 100 * Math.sin((x + 40 * c * seed) / 37) * Math.cos(y / 23) + 10 * (u() - 0.5));
        }
        writeFileSync(join(photos, name), jpeg.encode({ width: w, height: h, data }, 90).data);
      }
      mkdirSync(join(dir, 'cache', 'debs'), { recursive: true });
      execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-b', pkg, join(dir, 'cache', 'debs', 'mate-backgrounds_0.0-test_all.deb')], { stdio: 'pipe' });
      const progress: number[] = [];
      const report = runVisionEval({
        methods: floorMethods, layouts: ['base'], ratios: [0.5, 0.1], cacheDir: join(dir, 'cache'),
        onProgress: (done) => progress.push(done),
      });
      expect(report.source.images).toEqual(['A.jpg', 'B.jpg']);
      expect(report.source.description).toContain('mate-backgrounds 0.0-test: 2 nature photographs');
      expect(report.rows.map((r) => [r.method, r.ratio, r.keep])).toEqual([['random', 0.5, 288], ['random', 0.1, 58], ['pool', 0.5, 288], ['pool', 0.1, 58]]);
      const psnr = (m: string, ratio: number) => report.rows.find((r) => r.method === m && r.ratio === ratio)!.psnrDb;
      const spatial = (m: string, ratio: number) => report.rows.find((r) => r.method === m && r.ratio === ratio)!.psnrSpatialDb;
      for (const m of ['random', 'pool']) {
        expect(psnr(m, 0.5)).toBeGreaterThan(psnr(m, 0.1));
        expect(spatial(m, 0.5)).toBeGreaterThan(spatial(m, 0.1));
      }
      // pooling leaves nothing dropped: both fills agree; random's feature fill is the oracle one
      expect(spatial('pool', 0.1)).toBe(psnr('pool', 0.1));
      expect(psnr('random', 0.1)).toBeGreaterThan(spatial('random', 0.1));
      expect(report.rows.find((r) => r.method === 'pool' && r.ratio === 0.1)!.meanM).toBe(64); // 3x3 windows
      expect(report.region.map((r) => r.method)).toEqual(['random', 'random']);
      expect(progress.at(-1)).toBe(8);
      expect(formatVisionEvalTable(report)).toMatch(/\| pool \| floor \| [\d.]+ \| [\d.]+ \(m 64\) \|/);
      const svg = renderVisionEvalSvg(report);
      expect(svg.match(/<polyline/g)).toHaveLength(4);
      expect(svg).toContain('PSNR, base (576 tokens), spatial fill');
      expect(svg.trim().endsWith('</svg>')).toBe(true);
      // the resized photos are cached for the next run
      expect(readFileSync(join(dir, 'cache', 'rgb-384', 'A.rgb')).length).toBe(384 * 384 * 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bench vision', () => {
  test('rows per shape and dim, ratios from the same run, floors skipped, a throwing method reported', async () => {
    const { runVisionBench, formatVisionBenchTable } = await import('../../bench/vision.js');
    const seen: Array<[number, number, number, number]> = [];
    const fake = {
      name: 'fake', family: 'prune' as const, usesSideInputs: false, run: floorMethods[0]!.run,
      bench: {
        native: (t: Float32Array, frames: number, n: number, dim: number, keep: number) => { seen.push([frames, n, dim, keep]); return t[0]; },
        reference: (t: Float32Array) => t.reduce((s, x) => s + x, 0),
      },
    };
    const broken = { ...fake, name: 'broken', bench: { native: () => { throw new Error('boom'); }, reference: () => 0 } };
    const dir = mkdtempSync(join(tmpdir(), 'tp-vbench-'));
    try {
      const r = await runVisionBench({
        methods: [floorMethods[0]!, fake, broken], shapes: [{ frames: 1, n: 9 }, { frames: 3, n: 5 }], dims: [16],
        keepRatio: 0.5, reps: 2, refReps: 2, progress: false, outFile: join(dir, 'r.json'),
      });
      expect(r.rows.map((x) => [x.method, x.frames, x.n, x.dim, x.bytes])).toEqual([['fake', 1, 9, 16, 9 * 16 * 4], ['fake', 3, 5, 16, 3 * 5 * 16 * 4]]);
      for (const x of r.rows) {
        expect(x.nativeOverPass).toBeCloseTo(x.nativeMs / x.onePassMs, 12);
        expect(x.speedup).toBeCloseTo(x.referenceMs! / x.nativeMs, 12);
        expect(x.readGBs).toBeGreaterThan(0);
      }
      expect(seen[0]).toEqual([1, 9, 16, 0.5]);
      expect(r.skipped.map((s) => s.method)).toEqual(['random', 'broken', 'broken']);
      expect(r.skipped[1]!.reason).toBe('1x9x16: boom');
      expect(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')).rows).toHaveLength(2);
      expect(formatVisionBenchTable(r)).toContain('| fake | 3x5 | 16 |');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
