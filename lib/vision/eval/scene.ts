/**
 * The synthetic side inputs of a PatchScene (lib/vision/types.ts): real photo
 * patches, plus attention maps and a text embedding that point at a known
 * object region. Everything is drawn from mulberry32 streams seeded by
 * `seed`, so a scene is the same on every run and machine.
 *
 *   region             an axis-aligned box in the unit square, width and
 *                      height uniform in [0.25, 0.4], position uniform; a
 *                      token is in the region when its patch centre (in the
 *                      whole square: AnyRes crops map to their quarter) lies
 *                      in the box.
 *   clsAttention       [24 layers, n] (ViT-L has 24): row l = softmax over
 *                      tokens of  a_l * region + N(0, 1) + 5 * sink, with
 *                      a_l = 0.5 for l < 16 and 1.5 for the last 8 layers (the
 *                      object shows in the late layers), and 4 "sink" tokens
 *                      outside the region (the high-attention artefact tokens
 *                      of ViTs, Darcet et al. 2024) on in every layer.
 *   lastTokenAttention [n] = softmax of 1.5 * region + N(0, 1) + 3 * sink
 *                      (the first 2 sinks), an independent noise draw.
 *   textEmbedding      [dim] = unit(mean of the region's tokens) + 0.5 * a
 *                      unit Gaussian direction: close to the region's patches
 *                      in cosine, not equal to any of them.
 */
import type { PatchScene } from '../types.js';
import type { PatchGrid } from './patches.js';
import { mixSeed, mulberry32, normal } from './rng.js';

export const SCENE_LAYERS = 24;
const LATE_FROM = 16;
const SINKS = 4;

function softmaxInPlace(row: Float64Array): void {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let s = 0;
  for (let i = 0; i < row.length; i++) {
    row[i] = Math.exp(row[i]! - max);
    s += row[i]!;
  }
  for (let i = 0; i < row.length; i++) row[i] = row[i]! / s;
}

/** The scene of one image's tokens with side inputs drawn from `seed` (see header). */
export function makeScene(grid: PatchGrid, seed: number): PatchScene {
  const { n, tokens, centres } = grid;
  const dim = tokens.length / n;
  if (!Number.isInteger(dim) || n < 1) throw new RangeError(`grid: expected tokens of n x dim values with n >= 1, received ${tokens.length} values for n = ${n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed: expected an integer in [0, 2^32), received ${String(seed)}`);
  const u = mulberry32(mixSeed(seed, 1));
  const bw = 0.25 + 0.15 * u();
  const bh = 0.25 + 0.15 * u();
  const bx = u() * (1 - bw);
  const by = u() * (1 - bh);
  const region = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = centres[2 * i]!;
    const y = centres[2 * i + 1]!;
    region[i] = x >= bx && x < bx + bw && y >= by && y < by + bh ? 1 : 0;
  }
  // Sinks: SINKS distinct tokens outside the region (fewer if there are not enough).
  const outside: number[] = [];
  for (let i = 0; i < n; i++) if (!region[i]) outside.push(i);
  const sink = new Uint8Array(n);
  const sinkOrder: number[] = [];
  for (let k = 0; k < SINKS && outside.length > 0; k++) {
    const j = Math.floor(u() * outside.length);
    sinkOrder.push(outside[j]!);
    sink[outside[j]!] = 1;
    outside.splice(j, 1);
  }
  const g = normal(mulberry32(mixSeed(seed, 2)));
  const clsAttention = new Float32Array(SCENE_LAYERS * n);
  const row = new Float64Array(n);
  for (let l = 0; l < SCENE_LAYERS; l++) {
    const a = l < LATE_FROM ? 0.5 : 1.5;
    for (let i = 0; i < n; i++) row[i] = a * region[i]! + g() + 5 * sink[i]!;
    softmaxInPlace(row);
    clsAttention.set(row, l * n);
  }
  const g2 = normal(mulberry32(mixSeed(seed, 3)));
  for (let i = 0; i < n; i++) row[i] = 1.5 * region[i]! + g2();
  for (const s of sinkOrder.slice(0, 2)) row[s] = row[s]! + 3;
  softmaxInPlace(row);
  const lastTokenAttention = Float32Array.from(row);
  // Text embedding: unit(mean of region tokens) + 0.5 * unit(Gaussian).
  const mean = new Float64Array(dim);
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (!region[i]) continue;
    count++;
    for (let k = 0; k < dim; k++) mean[k] = mean[k]! + tokens[i * dim + k]!;
  }
  const g3 = normal(mulberry32(mixSeed(seed, 4)));
  const noise = new Float64Array(dim);
  for (let k = 0; k < dim; k++) noise[k] = g3();
  const norm = (v: Float64Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  const nm = norm(mean);
  const nn = norm(noise);
  const textEmbedding = new Float32Array(dim);
  for (let k = 0; k < dim; k++) textEmbedding[k] = (count > 0 ? mean[k]! / nm : 0) + (0.5 * noise[k]!) / nn;
  return {
    tokens, n, dim, gridH: grid.gridH, gridW: grid.gridW,
    clsAttention, layers: SCENE_LAYERS, textEmbedding, lastTokenAttention, region,
  };
}
