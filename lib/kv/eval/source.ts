/**
 * What `tokenpress eval kv` evaluates, whatever it came from (the synthetic
 * needle workload or a captured trace): per layer, the prompt's cache and the
 * observation window the policies read, and two sets of evaluation queries.
 *
 *   layers[l]          LayerInputs: k, v [nKvHeads, nKv, headDim], queries
 *                      (the window) [nHeads, window, headDim], seed
 *   question[l]        EvalQueries [nHeads, nQ, headDim] + positions
 *   probes[l]          EvalQueries [nHeads, nProbes, headDim] + positions
 */
import type { LayerInputs } from './compress.js';
import type { EvalQueries, NeedleWorkload } from './workload.js';

/** Synthetic needles: retrieval is judged by the output's cosine to the needle value. */
export interface RetrievalNeedles {
  kind: 'retrieval';
  /** retrievalHeads[l]: the query heads whose question rows look the needles up. */
  retrievalHeads: number[][];
  /** values[l][g][j]: needle j's value in layer l, KV head g (headDim). */
  values: Float32Array[][][];
}

/** Trace needles: token ranges [start, end) of the prompt; judged by how many of their tokens stay. */
export interface KeptNeedles {
  kind: 'kept';
  ranges: { start: number; end: number }[];
}

export interface EvalSource {
  kind: 'synthetic' | 'trace';
  /** One line saying what this is. */
  description: string;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  nKv: number;
  headDim: number;
  layers: LayerInputs[];
  /** Name of the first query set in tables: 'question' (synthetic) or 'window' (trace). */
  questionLabel: string;
  question: EvalQueries[];
  probes: EvalQueries[];
  needles?: RetrievalNeedles | KeptNeedles;
}

/** The synthetic workload as an EvalSource (question rows j = needle j). */
export function syntheticSource(w: NeedleWorkload): EvalSource {
  const o = w.options;
  return {
    kind: 'synthetic',
    description:
      `synthetic needles: ${o.nLayers} layers, ${o.nHeads}/${o.nKvHeads} heads, headDim ${o.headDim}, nKv ${o.nKv}, ` +
      `${o.dtype}, ${o.nNeedles} needles, window ${o.window}, ${o.nProbes} probes, seed ${o.seed}` +
      (o.questionsAfter > 0 ? `; multi-question: ${o.nNeedles - o.questionsAfter} question(s) in the window, ${o.questionsAfter} asked after the prompt` : ''),
    nLayers: o.nLayers,
    nHeads: o.nHeads,
    nKvHeads: o.nKvHeads,
    nKv: o.nKv,
    headDim: o.headDim,
    layers: w.layers.map((l) => ({ k: l.k, v: l.v, queries: l.window, seed: o.seed })),
    questionLabel: 'question',
    question: w.layers.map((l) => l.question),
    probes: w.layers.map((l) => l.probes),
    needles: { kind: 'retrieval', retrievalHeads: w.layers.map((l) => l.retrievalHeads), values: w.layers.map((l) => l.needleValues) },
  };
}
