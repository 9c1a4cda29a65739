/**
 * The real photos of `tokenpress eval vision`: the 12 nature photographs of
 * Debian's mate-backgrounds package (/usr/share/backgrounds/mate/nature/*.jpg,
 * baseline and progressive JPEG, 1280x1024 to 2560x1920), fetched once with
 * `apt-get download` through the same code as the coding corpus
 * (bench/corpus.ts: aptDownload) and cached under .corpus/vision/.
 *
 * Why not gnome-backgrounds: in Debian 12 (gnome-backgrounds 43.1-1) it holds
 * only WebP renders and SVG drawings, no photographs, and WebP has no
 * maintained pure-JS decoder. mate-backgrounds' nature set is photographs in
 * JPEG, decoded here with jpeg-js (pure JS).
 *
 * Each photo is centre-cropped to a square and box-filtered (exact area
 * average) down to the side the layout needs (384 for the base image, 768 for
 * the AnyRes crops: lib/vision/eval/patches.ts); the resized RGB is cached as raw bytes next to the .deb,
 * so the slow JS decode runs once per photo.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import jpeg from 'jpeg-js';
import { aptDownload, debFor, debVersion, repoRoot } from '../../../bench/corpus.js';

export const VISION_IMAGE_PACKAGE = 'mate-backgrounds';
const PHOTO_DIR = 'usr/share/backgrounds/mate/nature';

/** An RGB image, u8 [height, width, 3] row-major. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface VisionImageSet {
  /** Absolute paths of the photos, sorted by name. */
  paths: string[];
  /** e.g. 'Debian mate-backgrounds 1.26.0-1: 12 nature photographs (JPEG)'. */
  description: string;
  /** The cache directory (.corpus/vision by default). */
  cacheDir: string;
}

export interface VisionImageOptions {
  /** Cache directory (default <repo>/.corpus/vision). */
  cacheDir?: string;
  log?: (message: string) => void;
}

/** Fetches and unpacks mate-backgrounds once; later calls only list the cache. */
export function ensureVisionImages(opts: VisionImageOptions = {}): VisionImageSet {
  const cacheDir = opts.cacheDir ?? join(repoRoot(), '.corpus', 'vision');
  const log = opts.log ?? (() => {});
  const debDir = join(cacheDir, 'debs');
  const root = join(cacheDir, 'root');
  const photoDir = join(root, PHOTO_DIR);
  mkdirSync(debDir, { recursive: true });
  aptDownload(debDir, [VISION_IMAGE_PACKAGE], log);
  const deb = debFor(debDir, VISION_IMAGE_PACKAGE)!;
  if (!existsSync(photoDir)) {
    log(`dpkg-deb -x ${deb}`);
    execFileSync('dpkg-deb', ['-x', deb, root], { stdio: 'pipe' });
  }
  const paths = readdirSync(photoDir).filter((f) => f.toLowerCase().endsWith('.jpg')).sort().map((f) => join(photoDir, f));
  if (paths.length === 0) throw new Error(`eval vision: no JPEG photos in ${photoDir}`);
  return {
    paths,
    description: `Debian ${VISION_IMAGE_PACKAGE} ${debVersion(deb)}: ${paths.length} nature photographs (JPEG)`,
    cacheDir,
  };
}

/** Decodes a JPEG file to RGB (jpeg-js, pure JS). */
export function decodeJpeg(bytes: Uint8Array): RgbImage {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes: expected a Uint8Array, received ${typeof bytes}`);
  const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`decodeJpeg: expected ${img.width * img.height * 3} RGB bytes, received ${img.data.length}`);
  }
  return { width: img.width, height: img.height, data: img.data };
}

/**
 * Centre crop to the largest square, then an exact area-average (box filter)
 * resize to side x side. Each output pixel averages the source area it
 * covers, with fractional weights on the border pixels; downscaling only
 * (side <= the square's side).
 */
export function squareResize(img: RgbImage, side: number): RgbImage {
  const s = Math.min(img.width, img.height);
  if (!Number.isInteger(side) || side < 1 || side > s) {
    throw new RangeError(`side: expected an integer in [1, ${s}] (the image's shorter side), received ${String(side)}`);
  }
  const x0 = Math.floor((img.width - s) / 2);
  const y0 = Math.floor((img.height - s) / 2);
  const scale = s / side; // source pixels per output pixel
  // Per output column/row: the source pixels it covers and their weights.
  const spans: Array<{ first: number; w: number[] }> = [];
  for (let o = 0; o < side; o++) {
    const a = o * scale;
    const b = (o + 1) * scale;
    const first = Math.floor(a);
    const w: number[] = [];
    for (let p = first; p < b - 1e-9; p++) w.push(Math.min(b, p + 1) - Math.max(a, p));
    spans.push({ first, w });
  }
  const out = new Uint8Array(side * side * 3);
  const area = scale * scale;
  for (let oy = 0; oy < side; oy++) {
    const sy = spans[oy]!;
    for (let ox = 0; ox < side; ox++) {
      const sx = spans[ox]!;
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < sy.w.length; j++) {
        const row = (y0 + sy.first + j) * img.width;
        for (let i = 0; i < sx.w.length; i++) {
          const w = sy.w[j]! * sx.w[i]!;
          const k = (row + x0 + sx.first + i) * 3;
          r += w * img.data[k]!;
          g += w * img.data[k + 1]!;
          b += w * img.data[k + 2]!;
        }
      }
      const o = (oy * side + ox) * 3;
      out[o] = Math.round(r / area);
      out[o + 1] = Math.round(g / area);
      out[o + 2] = Math.round(b / area);
    }
  }
  return { width: side, height: side, data: out };
}

/** The photo at `path`, square-resized to each side in `sides`, from the cache or decoded once. */
export function loadSquarePhoto(path: string, sides: readonly number[], cacheDir: string): RgbImage[] {
  let decoded: RgbImage | undefined;
  return sides.map((side) => {
    const dir = join(cacheDir, `rgb-${side}`);
    const file = join(dir, `${basename(path).replace(/\.[^.]+$/, '')}.rgb`);
    if (existsSync(file)) {
      const data = new Uint8Array(readFileSync(file));
      if (data.length === side * side * 3) return { width: side, height: side, data };
    }
    decoded ??= decodeJpeg(readFileSync(path));
    const img = squareResize(decoded, side);
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, img.data);
    return img;
  });
}
