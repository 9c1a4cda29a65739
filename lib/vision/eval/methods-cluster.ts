/**
 * Eval adapters of the clustering group (`tokenpress eval vision`):
 *
 *   vqtoken      k-means codebook with K = keep (VQToken). The codebook lives
 *                on the unit sphere (means of normalised tokens); to rebuild
 *                pixels the adapter returns, for the same clustering, the
 *                mean of each code's original patches. family 'merge'.
 *   recoverable  Recoverable Compression on the scene's summed [CLS]
 *                attention and text embedding. Its output count is chosen
 *                by the rule (LOF ratios), not by `keep`: the adapter
 *                ignores keep and reports the m it got. Summary tokens are
 *                the official attention-weighted sums. family 'merge'.
 *   corematching CoreMatching on synthetic FFN activations: a fixed seeded
 *                random projection (dim -> 256) of every patch and of the
 *                text embedding (the query row, last), so co-activation
 *                follows similarity to the text. Keep count by the elbow
 *                (keep ignored). family 'prune'.
 *   tokencorr    token-correlation compression with the scene's last [CLS]
 *                layer as the deep attention and the first as the shallow
 *                one; keep count by the crop's information density (keep
 *                ignored). family 'prune'.
 *
 * bench: native operator vs its JS reference on tokens [frames, n, dim],
 * with side inputs made up from a seeded generator.
 */
import { tensor } from '../../tensor.js';
import { coreMatchingFrames } from '../corematching.js';
import { recoverableCompressFrames } from '../recoverable.js';
import { coreMatchingReference } from '../reference/corematching.js';
import { recoverableReference, textScoresReference } from '../reference/recoverable.js';
import { tokenCorrReference } from '../reference/tokencorr.js';
import { vqTokenReference } from '../reference/vqtoken.js';
import { tokenCorrCompressFrames } from '../tokencorr.js';
import type { PatchScene, ReducedScene, VisionEvalMethod } from '../types.js';
import { vqToken } from '../vqtoken.js';
import { mulberry32 as uniform } from './rng.js';

const INTER = 256;

/** Summed [CLS] attention over the scene's layers [n]. */
function clsSum(scene: PatchScene): Float32Array {
  const s = new Float32Array(scene.n);
  for (let l = 0; l < scene.layers; l++) for (let i = 0; i < scene.n; i++) s[i] = s[i]! + scene.clsAttention[l * scene.n + i]!;
  return s;
}

/** Mean-centred rows projected by a seeded Gaussian-free +-1 matrix [dim, INTER]: rows [n + 1, INTER] (text last). */
function activations(tokens: Float32Array, n: number, dim: number, text: Float32Array): Float32Array {
  const u = uniform(0x5eed);
  const proj = new Float32Array(dim * INTER);
  for (let i = 0; i < proj.length; i++) proj[i] = u() < 0.5 ? -1 : 1;
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] = mean[j]! + tokens[i * dim + j]! / n;
  const out = new Float32Array((n + 1) * INTER);
  const row = new Float64Array(INTER);
  for (let i = 0; i <= n; i++) {
    row.fill(0);
    for (let j = 0; j < dim; j++) {
      const v = (i < n ? tokens[i * dim + j]! : text[j]!) - mean[j]!;
      for (let c = 0; c < INTER; c++) row[c] = row[c]! + v * proj[j * INTER + c]!;
    }
    for (let c = 0; c < INTER; c++) out[i * INTER + c] = row[c]!;
  }
  return out;
}

function meanText(tokens: Float32Array, n: number, dim: number): Float32Array {
  const t = new Float32Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) t[j] = t[j]! + tokens[i * dim + j]! / Math.max(n, 1);
  return t;
}

function fakeCls(frames: number, n: number): Float32Array {
  const u = uniform(7);
  const a = new Float32Array(frames * n);
  for (let i = 0; i < a.length; i++) a[i] = 0.01 + 0.002 * u() + (u() < 0.08 ? 0.05 * u() : 0);
  return a;
}

const vqtoken: VisionEvalMethod = {
  name: 'vqtoken',
  family: 'merge',
  usesSideInputs: false,
  run(scene: PatchScene, keep: number): ReducedScene {
    const { n, dim, tokens } = scene;
    const r = vqToken(tensor('f32', [n, dim], tokens), { k: Math.max(1, keep) });
    const m = r.k;
    const sums = new Float64Array(m * dim);
    const codes = r.assignment.data as Int32Array;
    for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) sums[codes[i]! * dim + j] = sums[codes[i]! * dim + j]! + tokens[i * dim + j]!;
    const out = new Float32Array(m * dim);
    for (let c = 0; c < m; c++) for (let j = 0; j < dim; j++) out[c * dim + j] = r.sizes.data[c]! > 0 ? sums[c * dim + j]! / r.sizes.data[c]! : 0;
    return { tokens: out, m, assignment: Int32Array.from(codes) };
  },
  bench: {
    native: (tokens, frames, n, dim) => vqToken(tensor('f32', [frames, n, dim], tokens)),
    reference: (tokens, frames, n, dim) => vqTokenReference(tokens, frames * n, dim),
  },
};

const recoverable: VisionEvalMethod = {
  name: 'recoverable',
  family: 'merge',
  usesSideInputs: true,
  run(scene: PatchScene): ReducedScene {
    const { n, dim, tokens } = scene;
    const r = recoverableCompressFrames(tensor('f32', [n, dim], tokens), { clsAttention: clsSum(scene), textEmbedding: scene.textEmbedding })[0]!;
    return { tokens: r.tokens.data as Float32Array, m: r.tokens.shape[0]!, assignment: r.assignment.data as Int32Array };
  },
  bench: {
    native: (tokens, frames, n, dim) =>
      recoverableCompressFrames(tensor('f32', [frames, n, dim], tokens), { clsAttention: fakeCls(frames, n), textEmbedding: meanText(tokens, n, dim) }),
    reference: (tokens, frames, n, dim) => {
      const cls = fakeCls(frames, n);
      const text = meanText(tokens, n, dim);
      const out = [];
      for (let f = 0; f < frames; f++) {
        const x = tokens.subarray(f * n * dim, (f + 1) * n * dim);
        out.push(recoverableReference(x, n, dim, cls.subarray(f * n, (f + 1) * n), Float32Array.from(textScoresReference(x, n, dim, text))));
      }
      return out;
    },
  },
};

const corematching: VisionEvalMethod = {
  name: 'corematching',
  family: 'prune',
  usesSideInputs: true,
  run(scene: PatchScene): ReducedScene {
    const { n, dim, tokens } = scene;
    const act = activations(tokens, n, dim, scene.textEmbedding);
    const r = coreMatchingFrames(tensor('f32', [n, dim], tokens), { activations: act, rows: n + 1, inter: INTER, queryRow: -1 })[0]!;
    const assignment = new Int32Array(n).fill(-1);
    (r.indices.data as Int32Array).forEach((src, row) => { assignment[src] = row; });
    return { tokens: r.tokens.data as Float32Array, m: r.indices.data.length, assignment };
  },
  bench: {
    native: (tokens, frames, n, dim) => {
      const act = new Float32Array(frames * (n + 1) * dim);
      for (let f = 0; f < frames; f++) act.set(tokens.subarray(f * n * dim, (f + 1) * n * dim), f * (n + 1) * dim);
      return coreMatchingFrames(tensor('f32', [frames, n, dim], tokens), { activations: act, rows: n + 1, inter: dim, queryRow: n - 1 < 0 ? 0 : n - 1 });
    },
    reference: (tokens, frames, n, dim) => {
      const out = [];
      for (let f = 0; f < frames; f++) {
        const act = new Float32Array((n + 1) * dim);
        act.set(tokens.subarray(f * n * dim, (f + 1) * n * dim));
        out.push(coreMatchingReference(act, undefined, n + 1, dim, Math.max(n - 1, 0), 0, n));
      }
      return out;
    },
  },
};

const tokencorr: VisionEvalMethod = {
  name: 'tokencorr',
  family: 'prune',
  usesSideInputs: true,
  run(scene: PatchScene): ReducedScene {
    const { n, dim, tokens, layers } = scene;
    const deep = scene.clsAttention.slice((layers - 1) * n, layers * n);
    const shallow = scene.clsAttention.slice(0, n);
    const r = tokenCorrCompressFrames(tensor('f32', [n, dim], tokens), { deepAttention: deep, shallowAttention: shallow })[0]!;
    const assignment = new Int32Array(n).fill(-1);
    (r.indices.data as Int32Array).forEach((src, row) => { assignment[src] = row; });
    return { tokens: r.tokens.data as Float32Array, m: r.indices.data.length, assignment };
  },
  bench: {
    native: (tokens, frames, n, dim) => {
      const a = fakeCls(frames, n);
      return tokenCorrCompressFrames(tensor('f32', [frames, n, dim], tokens), { deepAttention: a, shallowAttention: a });
    },
    reference: (tokens, frames, n, dim) => {
      const a = fakeCls(frames, n);
      const out = [];
      for (let f = 0; f < frames; f++) {
        const s = a.subarray(f * n, (f + 1) * n);
        out.push(tokenCorrReference(tokens.subarray(f * n * dim, (f + 1) * n * dim), n, dim, s, s));
      }
      return out;
    },
  },
};

export const clusterMethods: VisionEvalMethod[] = [vqtoken, recoverable, corematching, tokencorr];
