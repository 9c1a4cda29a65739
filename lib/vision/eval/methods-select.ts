// `tokenpress eval vision` adapters of group `select` (pruning): DivPrune,
// VTC-CLS, FastV, GlobalCom2, ToDRE (docs/vision-select.md). Each `run`
// reduces a PatchScene to about `keep` tokens; `bench` runs the native
// operator and its float64 JS reference (lib/vision/reference/) on made-up
// side inputs of the given sizes (deterministic).
import { divPrune } from '../divprune.js';
import { fastv, fastvSelect } from '../fastv.js';
import { globalCom2 } from '../globalcom2.js';
import { divPruneReference } from '../reference/divprune.js';
import { fastvReference } from '../reference/fastv.js';
import { globalCom2Reference } from '../reference/globalcom2.js';
import { vtcClsReference } from '../reference/vtc-cls.js';
import type { PatchScene, ReducedScene, VisionEvalMethod } from '../types.js';
import { vtcCls } from '../vtc-cls.js';

/** The scene reduced to the kept source rows `kept` (ascending); dropped tokens get -1. */
function keptScene(scene: PatchScene, kept: ArrayLike<number>): ReducedScene {
  const m = kept.length;
  const tokens = new Float32Array(m * scene.dim);
  const assignment = new Int32Array(scene.n).fill(-1);
  for (let j = 0; j < m; j++) {
    const i = kept[j]!;
    tokens.set(scene.tokens.subarray(i * scene.dim, (i + 1) * scene.dim), j * scene.dim);
    assignment[i] = j;
  }
  return { tokens, m, assignment };
}

const tensor = (data: Float32Array, shape: number[]) => ({ dtype: 'f32' as const, shape, data });
const clampKeep = (scene: PatchScene, keep: number): number => Math.max(0, Math.min(scene.n, Math.round(keep)));

/** Deterministic pseudo-random floats in [0, 1) (the bench's made-up attention). */
function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    out[i] = s / 4294967296;
  }
  return out;
}

/** JS gather of kept rows (the reference side of a bench). */
function gatherJs(x: Float32Array, base: number, dim: number, kept: ArrayLike<number>): Float32Array {
  const out = new Float32Array(kept.length * dim);
  for (let j = 0; j < kept.length; j++) for (let d = 0; d < dim; d++) out[j * dim + d] = x[(base + kept[j]!) * dim + d]!;
  return out;
}

const LAYERS = 24;
const HEADS = 32;

/**
 * GlobalCom2 on a single grid: the scene split into a 2 x 2 crop grid (one
 * crop when a side is odd), the last layer's [CLS] scores as crop scores,
 * and a synthetic thumbnail = the score grid area-averaged to side x side.
 * Only crop tokens are real, so only they are kept (the thumbnail is not).
 */
function globalCom2Scene(tokens: Float32Array, scores: Float32Array, gridH: number, gridW: number, dim: number, keepRatio: number) {
  const split = gridH % 2 === 0 && gridW % 2 === 0 && gridH >= 2 && gridW >= 2;
  const nph = split ? 2 : 1, npw = split ? 2 : 1;
  const h = gridH / nph, w = gridW / npw, nc = h * w;
  const crops = new Float32Array(gridH * gridW * dim);
  const cropScores = new Float32Array(gridH * gridW);
  const source = new Int32Array(gridH * gridW); // flat crop index -> scene index
  for (let c = 0; c < nph * npw; c++) {
    const ci = Math.floor(c / npw), cj = c % npw;
    for (let p = 0; p < nc; p++) {
      const i = (ci * h + Math.floor(p / w)) * gridW + cj * w + (p % w);
      source[c * nc + p] = i;
      cropScores[c * nc + p] = scores[i]!;
      crops.set(tokens.subarray(i * dim, (i + 1) * dim), (c * nc + p) * dim);
    }
  }
  const side = Math.max(1, Math.floor(Math.min(gridH, gridW) / 2));
  const thumb = new Float32Array(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const y0 = Math.floor((y * gridH) / side), y1 = Math.max(y0 + 1, Math.floor(((y + 1) * gridH) / side));
      const x0 = Math.floor((x * gridW) / side), x1 = Math.max(x0 + 1, Math.floor(((x + 1) * gridW) / side));
      let s = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += scores[yy * gridW + xx]!;
      thumb[y * side + x] = s / ((y1 - y0) * (x1 - x0));
    }
  }
  const input = {
    thumbnail: tensor(new Float32Array(side * side * dim), [side * side, dim]), thumbnailScores: thumb,
    crops: tensor(crops, [nph * npw, nc, dim]), cropScores, cropGrid: [nph, npw] as const, cropSize: [h, w] as const,
  };
  return { input, source, side, nph, npw, h, w, retention: Math.min(1, keepRatio) };
}

/**
 * The bench's GlobalCom2 inputs: each frame's first side^2 tokens (side =
 * floor(sqrt(n))) as one grid with made-up scores, built once per tokens
 * array and reused (the timed calls measure the operator, not this layout).
 */
const sceneCache = new WeakMap<Float32Array, { key: string; scenes: ReturnType<typeof globalCom2Scene>[] }>();
function benchScenes(x: Float32Array, frames: number, n: number, dim: number, ratio: number): ReturnType<typeof globalCom2Scene>[] {
  const key = `${frames},${n},${dim},${ratio}`;
  const hit = sceneCache.get(x);
  if (hit && hit.key === key) return hit.scenes;
  const side = Math.max(1, Math.floor(Math.sqrt(n)));
  const scenes = [];
  for (let f = 0; f < frames; f++) {
    scenes.push(globalCom2Scene(x.subarray(f * n * dim, f * n * dim + side * side * dim), noise(side * side, 3), side, side, dim, ratio));
  }
  sceneCache.set(x, { key, scenes });
  return scenes;
}

function lastLayer(scene: PatchScene): Float32Array {
  return scene.clsAttention.subarray((scene.layers - 1) * scene.n, scene.layers * scene.n);
}

export const selectMethods: VisionEvalMethod[] = [
  {
    name: 'divprune',
    family: 'prune',
    usesSideInputs: false,
    run(scene, keep) {
      const r = divPrune(tensor(scene.tokens, [scene.n, scene.dim]), { keep: clampKeep(scene, keep) });
      return keptScene(scene, r.indices.data);
    },
    bench: {
      native: (x, frames, n, dim, ratio) => divPrune(tensor(x, [frames, n, dim]), { keep: Math.round(ratio * n) }),
      reference: (x, frames, n, dim, ratio) => {
        const out = [];
        for (let f = 0; f < frames; f++) {
          const frame = x.subarray(f * n * dim, (f + 1) * n * dim);
          const kept = divPruneReference(frame, n, dim, Math.round(ratio * n));
          out.push(gatherJs(frame, 0, dim, kept));
        }
        return out;
      },
    },
  },
  {
    name: 'vtc-cls',
    family: 'prune',
    usesSideInputs: true,
    run(scene, keep) {
      const r = vtcCls(tensor(scene.tokens, [scene.n, scene.dim]), tensor(scene.clsAttention, [scene.layers, scene.n]), { keep: clampKeep(scene, keep) });
      return keptScene(scene, r.indices.data);
    },
    bench: {
      native: (x, frames, n, dim, ratio) =>
        vtcCls(tensor(x, [frames, n, dim]), tensor(noise(frames * LAYERS * n, 1), [frames, LAYERS, n]), { keep: Math.round(ratio * n) }),
      reference: (x, frames, n, dim, ratio) => {
        const att = noise(frames * LAYERS * n, 1);
        const out = [];
        for (let f = 0; f < frames; f++) {
          const r = vtcClsReference(att.subarray(f * LAYERS * n), LAYERS, n, 0, LAYERS - 1, Math.round(ratio * n));
          out.push(gatherJs(x, f * n, dim, r.indices));
        }
        return out;
      },
    },
  },
  {
    name: 'fastv',
    family: 'prune',
    usesSideInputs: true,
    run(scene, keep) {
      const k = clampKeep(scene, keep);
      const sel = fastvSelect(tensor(scene.lastTokenAttention, [1, scene.n]), { imageStart: 0, imageLength: scene.n, r: scene.n === 0 ? 0 : 1 - k / scene.n });
      return keptScene(scene, sel.imageKeep);
    },
    bench: {
      native: (x, frames, n, dim, ratio) => {
        const probs = noise(HEADS * n, 2);
        const out = [];
        for (let f = 0; f < frames; f++) {
          out.push(fastv(tensor(x.subarray(f * n * dim, (f + 1) * n * dim), [n, dim]), tensor(probs, [HEADS, n]), { imageStart: 0, imageLength: n, r: 1 - ratio }));
        }
        return out;
      },
      reference: (x, frames, n, dim, ratio) => {
        const probs = noise(HEADS * n, 2);
        const out = [];
        for (let f = 0; f < frames; f++) {
          const r = fastvReference(probs, HEADS, n, 0, n, Math.round(n * ratio));
          out.push(gatherJs(x, f * n, dim, r.imageKeep));
        }
        return out;
      },
    },
  },
  {
    name: 'globalcom2',
    family: 'prune',
    usesSideInputs: true,
    run(scene, keep) {
      const k = clampKeep(scene, keep);
      const g = globalCom2Scene(scene.tokens, lastLayer(scene), scene.gridH, scene.gridW, scene.dim, scene.n === 0 ? 0 : k / scene.n);
      const r = globalCom2(g.input, { retention: g.retention });
      const kept = Array.from(r.crops.indices.data, (i) => g.source[i]!).sort((a, b) => a - b);
      return keptScene(scene, kept);
    },
    bench: {
      native: (x, frames, n, dim, ratio) => {
        const out = [];
        for (const g of benchScenes(x, frames, n, dim, ratio)) out.push(globalCom2(g.input, { retention: g.retention }));
        return out;
      },
      reference: (x, frames, n, dim, ratio) => {
        const out = [];
        for (const g of benchScenes(x, frames, n, dim, ratio)) {
          const r = globalCom2Reference(g.input.thumbnailScores, g.side, g.input.cropScores, g.nph, g.npw, g.h, g.w, g.retention, 10);
          out.push(r.cropKeep.map((keep, c) => gatherJs(g.input.crops.data, c * g.h * g.w, dim, keep)));
        }
        return out;
      },
    },
  },
  {
    name: 'todre',
    family: 'prune',
    usesSideInputs: true,
    // Stage 1 keeps min(n, 2 keep) by diversity; stage 2 keeps the `keep` of
    // them the last text token attends most (lastTokenAttention).
    run(scene, keep) {
      const k = clampKeep(scene, keep);
      const s1 = divPrune(tensor(scene.tokens, [scene.n, scene.dim]), { keep: Math.min(scene.n, 2 * k) }).indices.data;
      const probs = Float32Array.from(s1, (i) => scene.lastTokenAttention[i]!);
      const sel = fastvSelect(tensor(probs, [1, s1.length]), { imageStart: 0, imageLength: s1.length, r: s1.length === 0 ? 0 : 1 - k / s1.length });
      return keptScene(scene, Array.from(sel.imageKeep, (j) => s1[j]!));
    },
  },
];
