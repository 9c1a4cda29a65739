/**
 * Photo -> visual tokens, and back, for `tokenpress eval vision`.
 *
 * A token is one 16x16 RGB patch, the input of a ViT's patch-embedding layer:
 * 768 values in the conv weight's order (channel, row, column), each pixel
 * normalised as CLIP's image processor does: (v / 255 - mean[c]) / std[c]
 * with OpenAI CLIP's mean and std (the LLaVA vision tower's). The inverse is
 * exact: patchesToPixels(imageToPatches(img)) rounds back to the same bytes.
 *
 * Sizes: LLaVA-1.5's CLIP ViT-L/14 at 336 pixels makes 24 x 24 = 576 tokens
 * of 14x14 pixels. The issue and the contract (PatchScene) want 576 tokens of
 * 16x16x3 = 768 values, so the image side here is 24 * 16 = 384 (the same
 * grid, a 16-pixel patch); AnyRes scales the same way (672 -> 768).
 *
 * Layouts (LLaVA-1.5 / LLaVA-NeXT):
 *   base    the 384x384 image: grid 24 x 24, n = 576.
 *   anyres  LLaVA-NeXT AnyRes with the 2x2 grid pinpoint (768x768 here): the
 *           thumbnail (the 384 image) then the 4 crops of the 768x768 image
 *           (top-left, top-right, bottom-left, bottom-right), each 576 rows
 *           row-major over its own 24 x 24 grid: n = 2,880, presented as a
 *           grid of 120 x 24 (the five 24 x 24 grids stacked). LLaVA-NeXT's
 *           newline tokens and unpadding are left out.
 */
import type { RgbImage } from './images.js';

export const PATCH = 16;
export const PATCH_DIM = 3 * PATCH * PATCH; // 768
export const BASE_SIDE = 384;
export const ANYRES_SIDE = 768;
/** OpenAI CLIP's per-channel mean and std (CLIPImageProcessor defaults). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export type VisionLayout = 'base' | 'anyres';
export const VISION_LAYOUTS: readonly VisionLayout[] = ['base', 'anyres'];

/** Tokens of one image (or of the stacked AnyRes sub-images). */
export interface PatchGrid {
  /** f32 [n, 768]. */
  tokens: Float32Array;
  n: number;
  gridH: number;
  gridW: number;
  /** f64 [n, 2]: each token's patch centre (x, y) in the original square, in [0, 1]. */
  centres: Float64Array;
}

/** Normalised tokens of `img` (side a multiple of 16), row-major over its grid. */
export function imageToPatches(img: RgbImage): PatchGrid {
  if (img.width % PATCH !== 0 || img.height % PATCH !== 0 || img.width < PATCH || img.height < PATCH) {
    throw new RangeError(`img: expected width and height positive multiples of ${PATCH}, received ${img.width}x${img.height}`);
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new RangeError(`img.data: expected ${img.width * img.height * 3} RGB bytes, received ${img.data.length}`);
  }
  const gridW = img.width / PATCH;
  const gridH = img.height / PATCH;
  const n = gridW * gridH;
  const tokens = new Float32Array(n * PATCH_DIM);
  const centres = new Float64Array(n * 2);
  for (let gy = 0; gy < gridH; gy++) {
    for (let gx = 0; gx < gridW; gx++) {
      const t = gy * gridW + gx;
      centres[2 * t] = (gx + 0.5) / gridW;
      centres[2 * t + 1] = (gy + 0.5) / gridH;
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < PATCH; y++) {
          for (let x = 0; x < PATCH; x++) {
            const v = img.data[((gy * PATCH + y) * img.width + gx * PATCH + x) * 3 + c]!;
            tokens[t * PATCH_DIM + c * PATCH * PATCH + y * PATCH + x] = (v / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;
          }
        }
      }
    }
  }
  return { tokens, n, gridH, gridW, centres };
}

/** f64 [n, 768] pixel values in [0, 255] (unclamped, unrounded) of tokens f32 [n, 768]. */
export function patchesToPixels(tokens: Float32Array, n: number): Float64Array {
  if (tokens.length !== n * PATCH_DIM) throw new RangeError(`tokens: expected ${n} x ${PATCH_DIM} values, received ${tokens.length}`);
  const out = new Float64Array(n * PATCH_DIM);
  const plane = PATCH * PATCH;
  for (let t = 0; t < n; t++) {
    for (let k = 0; k < PATCH_DIM; k++) {
      const c = Math.floor(k / plane);
      out[t * PATCH_DIM + k] = (tokens[t * PATCH_DIM + k]! * CLIP_STD[c]! + CLIP_MEAN[c]!) * 255;
    }
  }
  return out;
}

/** The image of a grid of tokens (each pixel rounded and clamped to a byte). */
export function patchesToImage(tokens: Float32Array, gridH: number, gridW: number): RgbImage {
  const px = patchesToPixels(tokens, gridH * gridW);
  const width = gridW * PATCH;
  const height = gridH * PATCH;
  const data = new Uint8Array(width * height * 3);
  for (let gy = 0; gy < gridH; gy++) {
    for (let gx = 0; gx < gridW; gx++) {
      const t = gy * gridW + gx;
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < PATCH; y++) {
          for (let x = 0; x < PATCH; x++) {
            const v = px[t * PATCH_DIM + c * PATCH * PATCH + y * PATCH + x]!;
            data[((gy * PATCH + y) * width + gx * PATCH + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(v)));
          }
        }
      }
    }
  }
  return { width, height, data };
}

/** Copies the side x side square at (x0, y0) of `img`. */
function crop(img: RgbImage, x0: number, y0: number, side: number): RgbImage {
  const data = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) {
    data.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x0 + side) * 3), y * side * 3);
  }
  return { width: side, height: side, data };
}

/**
 * The tokens of a layout: `base` from the 384 image; `anyres` from the 384
 * thumbnail and the 768 image's four 384 crops (see the header).
 */
export function layoutTokens(layout: VisionLayout, imgBase: RgbImage, imgAnyres?: RgbImage): PatchGrid {
  if (imgBase.width !== BASE_SIDE || imgBase.height !== BASE_SIDE) {
    throw new RangeError(`imgBase: expected ${BASE_SIDE}x${BASE_SIDE}, received ${imgBase.width}x${imgBase.height}`);
  }
  const base = imageToPatches(imgBase);
  if (layout === 'base') return base;
  if (layout !== 'anyres') throw new RangeError(`layout: expected 'base' or 'anyres', received ${String(layout)}`);
  if (!imgAnyres || imgAnyres.width !== ANYRES_SIDE || imgAnyres.height !== ANYRES_SIDE) {
    throw new RangeError(`imgAnyres: expected ${ANYRES_SIDE}x${ANYRES_SIDE} for the anyres layout, received ${imgAnyres ? `${imgAnyres.width}x${imgAnyres.height}` : 'none'}`);
  }
  const parts: PatchGrid[] = [base];
  for (const [cx, cy] of [[0, 0], [1, 0], [0, 1], [1, 1]] as const) {
    const g = imageToPatches(crop(imgAnyres, cx * BASE_SIDE, cy * BASE_SIDE, BASE_SIDE));
    for (let t = 0; t < g.n; t++) { // centres in the whole square
      g.centres[2 * t] = (cx + g.centres[2 * t]!) / 2;
      g.centres[2 * t + 1] = (cy + g.centres[2 * t + 1]!) / 2;
    }
    parts.push(g);
  }
  const n = parts.reduce((s, p) => s + p.n, 0);
  const tokens = new Float32Array(n * PATCH_DIM);
  const centres = new Float64Array(n * 2);
  let at = 0;
  for (const p of parts) {
    tokens.set(p.tokens, at * PATCH_DIM);
    centres.set(p.centres, at * 2);
    at += p.n;
  }
  return { tokens, n, gridH: base.gridH * parts.length, gridW: base.gridW, centres };
}
