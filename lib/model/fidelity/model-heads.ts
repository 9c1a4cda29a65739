/**
 * Inputs some policies take from the real model itself:
 *
 * - RazorAttention's retrieval heads (Tang et al. 2024, "RazorAttention:
 *   Efficient KV Cache Compression Through Retrieval Heads", ICLR 2025): the
 *   model reads a random block of `period` tokens repeated `repeats` times;
 *   echo and induction scores of every head come from its own attention on
 *   the repeats (lib/kv/retrieval-heads.ts scoreRetrievalHeads, per layer), and
 *   pickRetrievalHeads protects the paper's top 14% heads by induction score
 *   and top 1% by echo score, ranked over all layers. The paper draws random
 *   tokens from the whole vocabulary (2500 tokens, 4 repeats); this byte
 *   model draws printable ASCII bytes (0x20-0x7e, the bytes its text uses)
 *   and fits the repeats into its trained context (default 1000 x 4).
 *
 * - SpecKV's draft queries (Galim et al. 2025, "Draft-based Approximate
 *   Inference for LLMs"): a small draft model greedily continues the
 *   context; the target model reads that lookahead over the full cache and
 *   its queries for it (post-RoPE, positions C..C+n-1) score the context.
 */
import type { ByteLm } from '../byte-lm.js';
import { pickRetrievalHeads, scoreRetrievalHeads, type PickRetrievalHeadsOptions, type RetrievalHeadScores } from '../../kv/retrieval-heads.js';
import { checkInteger } from '../../validate.js';
import { rangeError } from '../../errors.js';
import { restoreSession, type CapturedContext } from './context.js';
import type { StageRunner } from './runner.js';
import { argmaxRow } from './metrics.js';
import { Rng } from './text.js';

export interface RetrievalHeadPick {
  period: number;
  repeats: number;
  /** Per layer: the echo / induction scores of its query heads. */
  layers: { echo: number[]; induction: number[] }[];
  /** [nLayers][nKvHeads]: KV heads RazorAttention keeps in full. */
  picked: boolean[][];
}

/** Runs the model on a repeated random block and picks the retrieval heads (see the module comment). */
export async function pickModelRetrievalHeads(
  model: ByteLm,
  opts: { period?: number; repeats?: number; seed?: number } & PickRetrievalHeadsOptions = {},
): Promise<RetrievalHeadPick> {
  const period = checkInteger('razor.period', opts.period ?? 1000, 1);
  const repeats = checkInteger('razor.repeats', opts.repeats ?? 4, 2);
  const n = period * repeats;
  if (n > model.config.context) {
    throw rangeError('razor.period * razor.repeats', `at most the model's trained context (${model.config.context} bytes)`, n);
  }
  const rng = new Rng(((opts.seed ?? 0) ^ 0x7a30) >>> 0);
  const block = new Uint8Array(period);
  for (let i = 0; i < period; i++) block[i] = rng.int(0x20, 0x7e);
  const seq = new Uint8Array(n);
  for (let r = 0; r < repeats; r++) seq.set(block, r * period);
  const { nHeads, nKvHeads, headDim } = model.config;
  const scores: RetrievalHeadScores[] = [];
  const session = model.session({ dtype: 'f16' });
  await session.forward(seq, {
    onLayer: (a) => {
      scores[a.layer] = scoreRetrievalHeads({
        queries: { dtype: 'f32', shape: [nHeads, n, headDim], data: a.q },
        keys: { dtype: 'f32', shape: [nKvHeads, n, headDim], data: a.k },
        period,
      });
    },
  });
  const pickOpts: PickRetrievalHeadsOptions = {};
  if (opts.induction !== undefined) pickOpts.induction = opts.induction;
  if (opts.echo !== undefined) pickOpts.echo = opts.echo;
  return {
    period,
    repeats,
    layers: scores.map((s) => ({ echo: [...s.echo], induction: [...s.induction] })),
    picked: pickRetrievalHeads(scores, pickOpts),
  };
}

/**
 * SpecKV draft queries for a captured context: `lookahead` bytes greedily
 * decoded by `draft` after the context, then read by the target model over
 * the full (restored) cache. Returns per layer f32 [nHeads, lookahead, headDim].
 */
export async function specKvDraftQueries(
  target: StageRunner, draft: ByteLm, context: Uint8Array, captured: CapturedContext, lookahead: number,
): Promise<{ dtype: 'f32'; shape: number[]; data: Float32Array }[]> {
  checkInteger('lookahead', lookahead, 1);
  const ds = draft.session({ dtype: 'f16' });
  let logits = await ds.forward(context);
  const bytes = new Uint8Array(lookahead);
  for (let i = 0; i < lookahead; i++) {
    const rows = logits.length / 256;
    bytes[i] = argmaxRow(logits, rows - 1);
    if (i + 1 < lookahead) logits = await ds.forward(bytes.subarray(i, i + 1));
  }
  const { nHeads, headDim } = target.model.config;
  const out: { dtype: 'f32'; shape: number[]; data: Float32Array }[] = [];
  const s = restoreSession(target, captured, 'f16');
  await s.forward(bytes, {
    onLayer: (a) => { out[a.layer] = { dtype: 'f32', shape: [nHeads, lookahead, headDim], data: a.q.slice() }; },
  });
  return out;
}
