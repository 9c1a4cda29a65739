/**
 * `tokenpress eval vision` adapters of the ToMe group (lib/vision/tome.ts,
 * transform.ts, pool.ts):
 *   tome             ToMe steps on the patches (metric = the patches), r per
 *                    step = min(n - keep, floor(n / 2)) until `keep` remain;
 *                    assignments composed across the steps.
 *   token-transform  Token Transforming with m = keep evenly spaced targets
 *                    (our reading of the paper; topK 4, tau 0.1).
 *   llavolta         LLaVolta 1-D average pooling, stride = ceil(n / keep)
 *                    (floor(n / stride) <= keep rows; the tail is dropped).
 * bench: one operator call on f32 [frames, n, dim] (ToMe: one step of
 * r = min(n - keep, floor(n / 2))) against the float64 JS reference.
 */
import { tomeLayers, tomeMerge } from '../tome.js';
import { llavoltaPool } from '../pool.js';
import { pickTargets, tokenTransform } from '../transform.js';
import { refTomeFrame } from '../reference/tome.js';
import { refPoolFrame } from '../reference/pool.js';
import { refTransformApply, refTransformW } from '../reference/transform.js';
import type { PatchScene, ReducedScene, VisionEvalMethod } from '../types.js';

/** ToMe's per-step r list that brings n tokens down to keep. */
export function tomeStepsTo(n: number, keep: number): number[] {
  const list: number[] = [];
  let cur = n;
  while (cur > keep && cur >= 2) {
    const r = Math.min(cur - keep, Math.floor(cur / 2));
    list.push(r);
    cur -= r;
  }
  return list.length > 0 ? list : [0];
}

function reduced(tokens: Float32Array, m: number, assignment: Int32Array): ReducedScene {
  return { tokens, m, assignment };
}

function tomeScene(scene: PatchScene, keep: number): ReducedScene {
  const list = tomeStepsTo(scene.n, keep);
  const res = tomeLayers({ dtype: 'f32', shape: [scene.n, scene.dim], data: scene.tokens }, { r: { list }, numLayers: list.length });
  return reduced(res.tokens.data, res.sizes.data.length, res.assignment.data);
}

function transformScene(scene: PatchScene, keep: number): ReducedScene {
  const m = Math.max(0, Math.min(keep, scene.n));
  const res = tokenTransform({ dtype: 'f32', shape: [scene.n, scene.dim], data: scene.tokens }, { m });
  return reduced(res.tokens.data, m, res.assignment.data);
}

function poolStride(n: number, keep: number): number {
  return keep <= 0 ? Math.max(1, n + 1) : Math.max(1, Math.ceil(n / keep));
}

function poolScene(scene: PatchScene, keep: number): ReducedScene {
  const res = llavoltaPool({ dtype: 'f32', shape: [scene.n, scene.dim], data: scene.tokens }, { stride: poolStride(scene.n, keep) });
  return reduced(res.tokens.data, res.sizes.data.length, res.assignment.data);
}

const keepOf = (n: number, ratio: number): number => Math.max(1, Math.round(n * ratio));

export const tomeMethods: VisionEvalMethod[] = [
  {
    name: 'tome',
    family: 'merge',
    usesSideInputs: false,
    run: tomeScene,
    bench: {
      native: (tokens, frames, n, dim, ratio) =>
        tomeMerge({ dtype: 'f32', shape: [frames, n, dim], data: tokens }, { r: Math.min(n - keepOf(n, ratio), Math.floor(n / 2)) }),
      reference: (tokens, frames, n, dim, ratio) => {
        const r = Math.min(n - keepOf(n, ratio), Math.floor(n / 2));
        const out = [];
        for (let f = 0; f < frames; f++) out.push(refTomeFrame(tokens.subarray(f * n * dim, (f + 1) * n * dim), n, dim, r));
        return out;
      },
    },
  },
  {
    name: 'token-transform',
    family: 'merge',
    usesSideInputs: false,
    run: transformScene,
    bench: {
      native: (tokens, frames, n, dim, ratio) => tokenTransform({ dtype: 'f32', shape: [frames, n, dim], data: tokens }, { m: keepOf(n, ratio) }),
      reference: (tokens, frames, n, dim, ratio) => {
        const m = keepOf(n, ratio);
        const targets = pickTargets('uniform', 1, n, m);
        const out = [];
        for (let f = 0; f < frames; f++) {
          const x = tokens.subarray(f * n * dim, (f + 1) * n * dim);
          out.push(refTransformApply(refTransformW(x, n, dim, targets, 4, 0.1), m, x, n, dim));
        }
        return out;
      },
    },
  },
  {
    name: 'llavolta',
    family: 'merge',
    usesSideInputs: false,
    run: poolScene,
    bench: {
      native: (tokens, frames, n, dim, ratio) =>
        llavoltaPool({ dtype: 'f32', shape: [frames, n, dim], data: tokens }, { stride: poolStride(n, keepOf(n, ratio)) }),
      reference: (tokens, frames, n, dim, ratio) => {
        const s = poolStride(n, keepOf(n, ratio));
        const out = [];
        for (let f = 0; f < frames; f++) out.push(refPoolFrame(tokens.subarray(f * n * dim, (f + 1) * n * dim), n, dim, s));
        return out;
      },
    },
  },
];
