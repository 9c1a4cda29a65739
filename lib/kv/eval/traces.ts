/**
 * Real-model traces for `tokenpress eval kv --trace`: per-layer Q/K/V captured
 * from a model's prefill, in one safetensors file.
 *
 * Format (see README "tokenpress eval kv"):
 *   layers.<i>.q   [nHeads,   n, headDim]   F32 | F16 | BF16   post-RoPE queries,
 *                                                              scaled so logits are
 *                                                              q.k / sqrt(headDim)
 *   layers.<i>.k   [nKvHeads, n, headDim]   F32 | F16 | BF16   post-RoPE keys (as cached)
 *   layers.<i>.v   [nKvHeads, n, headDim]   F32 | F16 | BF16
 * for i = 0 .. nLayers-1 (every layer present, no other tensors), one sequence
 * of n tokens, nHeads % nKvHeads == 0. Optional __metadata__ "needles": a JSON
 * array of token ranges [{ "start": s, "end": e }, ...] (end exclusive) that
 * hold facts the prompt's question asks about. Optional __metadata__ "probes":
 * a decimal integer in [1, n - 1], the split the trace was made for (the
 * CLI's default --probes for it; traces from `--dump-trace` put the question
 * at the prompt's end and its answer in the probes). Other metadata is kept
 * as is (`--dump-trace` records model, context, source offset, seed).
 *
 * How a trace is evaluated (traceSource): the last nProbes rows are the
 * "future"; the first nKv = n - nProbes rows are the prompt whose cache is
 * compressed. The observation window is the prompt's last `window` query rows
 * (what snapkv / tova / h2o read); metrics use
 *   window  the window's own queries, causal (query i sees positions <= its own);
 *   probes  the later rows' queries over the prompt cache only (positions
 *           < nKv; their own keys are left out of both full and compressed
 *           attention, so the error is the prompt compression's alone).
 * Needles (if given) are judged by the fraction of their tokens each KV head keeps.
 */
import { TokenpressError } from '../../errors.js';
import { toF32, type FloatDType, type Tensor } from '../../tensor.js';
import { rangeError } from '../../errors.js';
import { readSafetensors, writeSafetensors, type SafetensorsContents } from './safetensors.js';
import type { EvalSource } from './source.js';

export interface KvTraceLayer {
  q: Tensor<'f32'>; // [nHeads, n, headDim]
  k: Tensor<FloatDType>; // [nKvHeads, n, headDim]
  v: Tensor<FloatDType>;
}

export interface KvTrace {
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  n: number;
  headDim: number;
  layers: KvTraceLayer[];
  needles?: { start: number; end: number }[];
  /** __metadata__ "probes" if present: the rows after the prompt the trace was made for (eval's default --probes). */
  probes?: number;
  metadata: Record<string, string>;
}

const NAME = /^layers\.(0|[1-9][0-9]{0,5})\.(q|k|v)$/;

function bad(file: string, what: string): TokenpressError {
  return new TokenpressError('ERR_BAD_FILE', `${file}: not a valid KV trace: ${what}`);
}

function parseNeedles(text: string, n: number, file: string): { start: number; end: number }[] {
  let json: unknown;
  try { json = JSON.parse(text); } catch { throw bad(file, '__metadata__ "needles" is not JSON'); }
  if (!Array.isArray(json)) throw bad(file, '__metadata__ "needles" is not an array of { start, end }');
  return json.map((r: unknown, i) => {
    const o = r as { start?: unknown; end?: unknown };
    const ok = r !== null && typeof r === 'object' && Number.isSafeInteger(o.start) && Number.isSafeInteger(o.end) &&
      (o.start as number) >= 0 && (o.start as number) < (o.end as number) && (o.end as number) <= n;
    if (!ok) throw bad(file, `needles[${i}] is not { start, end } with 0 <= start < end <= n = ${n}`);
    return { start: o.start as number, end: o.end as number };
  });
}

/** Checks a parsed safetensors file against the trace format and returns the trace. */
export function kvTraceFromContents(contents: SafetensorsContents, file = '<buffer>'): KvTrace {
  const byLayer = new Map<number, Partial<Record<'q' | 'k' | 'v', Tensor<FloatDType>>>>();
  for (const [name, t] of contents.tensors) {
    const m = NAME.exec(name);
    if (!m) throw bad(file, `unexpected tensor "${name}" (expected layers.<i>.q, layers.<i>.k, layers.<i>.v)`);
    const i = Number(m[1]);
    const entry = byLayer.get(i) ?? {};
    entry[m[2] as 'q' | 'k' | 'v'] = t;
    byLayer.set(i, entry);
  }
  const nLayers = byLayer.size;
  if (nLayers === 0) throw bad(file, 'no layers.<i>.q/k/v tensors');
  const layers: KvTraceLayer[] = [];
  let dims: { nHeads: number; nKvHeads: number; n: number; headDim: number } | undefined;
  for (let i = 0; i < nLayers; i++) {
    const e = byLayer.get(i);
    if (!e) throw bad(file, `layer ${i} is missing (layers must be numbered 0..${nLayers - 1})`);
    for (const part of ['q', 'k', 'v'] as const) {
      if (!e[part]) throw bad(file, `layers.${i}.${part} is missing`);
      if (e[part].shape.length !== 3) throw bad(file, `layers.${i}.${part} has shape [${e[part].shape.join(', ')}], expected 3 dimensions`);
    }
    const [nHeads, n, headDim] = e.q!.shape as [number, number, number];
    const [nKvHeads] = e.k!.shape as [number];
    if (dims === undefined) {
      if (nHeads < 1 || nKvHeads < 1 || n < 1 || headDim < 1) throw bad(file, `layers.0 has an empty dimension`);
      if (nHeads % nKvHeads !== 0) throw bad(file, `nHeads = ${nHeads} is not a multiple of nKvHeads = ${nKvHeads}`);
      dims = { nHeads, nKvHeads, n, headDim };
    }
    const want = { q: [dims.nHeads, dims.n, dims.headDim], k: [dims.nKvHeads, dims.n, dims.headDim], v: [dims.nKvHeads, dims.n, dims.headDim] };
    for (const part of ['q', 'k', 'v'] as const) {
      const got = e[part]!.shape;
      if (got.some((d, j) => d !== want[part][j])) {
        throw bad(file, `layers.${i}.${part} has shape [${got.join(', ')}], expected [${want[part].join(', ')}]`);
      }
    }
    layers.push({ q: toF32(e.q!), k: e.k!, v: e.v! });
  }
  const trace: KvTrace = { nLayers, ...dims!, layers, metadata: contents.metadata };
  if (contents.metadata.needles !== undefined) trace.needles = parseNeedles(contents.metadata.needles, dims!.n, file);
  const probes = contents.metadata.probes;
  if (probes !== undefined) {
    if (!/^[1-9][0-9]{0,9}$/.test(probes) || Number(probes) >= dims!.n) {
      throw bad(file, `__metadata__ "probes" is ${JSON.stringify(probes.slice(0, 40))}, expected an integer in [1, n - 1 = ${dims!.n - 1}]`);
    }
    trace.probes = Number(probes);
  }
  return trace;
}

/** Reads and checks a trace file (see the module comment for the format). */
export function loadKvTrace(file: string): KvTrace {
  return kvTraceFromContents(readSafetensors(file), file);
}

/** Writes a trace file: layers[i].q/k/v contiguous, shapes as in the format; needles go to __metadata__. */
export function writeKvTrace(file: string, layers: KvTraceLayer[], needles?: { start: number; end: number }[], metadata: Record<string, string> = {}): void {
  const tensors: [string, Tensor<FloatDType>][] = [];
  layers.forEach((l, i) => tensors.push([`layers.${i}.q`, l.q], [`layers.${i}.k`, l.k], [`layers.${i}.v`, l.v]));
  const meta = { ...metadata };
  if (needles) meta.needles = JSON.stringify(needles);
  writeSafetensors(file, tensors, meta);
}

export interface TraceSplit {
  /** Observation window rows at the end of the prompt; default 32. */
  window?: number;
  /** Rows after the prompt used as probes; default 32. */
  nProbes?: number;
}

/** "; model main (step 4000), heldout.txt byte 123, seed 0" for traces that --dump-trace wrote, else "". */
function traceOrigin(m: Record<string, string>): string {
  if (m.model === undefined) return '';
  const parts = [`model ${m.model}${m.modelStep !== undefined ? ` (step ${m.modelStep})` : ''}`];
  if (m.source !== undefined && m.offset !== undefined) parts.push(`${m.source} byte ${m.offset}`);
  if (m.seed !== undefined) parts.push(`seed ${m.seed}`);
  if (m.copyCorrect !== undefined) parts.push(`full cache copies ${m.copyCorrect} answer digits`);
  return `; ${parts.join(', ')}`;
}

/** The trace as an EvalSource (see the module comment for which rows are what). */
export function traceSource(trace: KvTrace, split: TraceSplit = {}, seed = 0): EvalSource {
  const window = split.window ?? 32;
  const nProbes = split.nProbes ?? 32;
  const { n, nHeads, nKvHeads, headDim } = trace;
  const nKv = n - nProbes;
  if (!(nProbes >= 1 && nKv >= window && window >= 1)) {
    throw rangeError('trace', `n >= window + nProbes = ${window + nProbes} rows (window ${window}, probes ${nProbes})`, `n = ${n}`);
  }
  const rows = (q: Tensor<'f32'>, from: number, count: number): Tensor<'f32'> => {
    const out = new Float32Array(nHeads * count * headDim);
    for (let h = 0; h < nHeads; h++) out.set(q.data.subarray((h * n + from) * headDim, (h * n + from + count) * headDim), h * count * headDim);
    return { dtype: 'f32', shape: [nHeads, count, headDim], data: out };
  };
  const prompt = (t: Tensor<FloatDType>): Tensor<FloatDType> =>
    ({ dtype: t.dtype, shape: [nKvHeads, nKv, headDim], strides: [n * headDim, headDim, 1], data: t.data }) as Tensor<FloatDType>;
  const source: EvalSource = {
    kind: 'trace',
    description: `trace: ${trace.nLayers} layers, ${nHeads}/${nKvHeads} heads, headDim ${headDim}, ${n} rows = prompt ${nKv} + ${nProbes} probes, window ${window}` +
      traceOrigin(trace.metadata),
    nLayers: trace.nLayers,
    nHeads,
    nKvHeads,
    nKv,
    headDim,
    layers: trace.layers.map((l) => ({ k: prompt(l.k), v: prompt(l.v), queries: rows(l.q, nKv - window, window), seed })),
    questionLabel: 'window',
    question: trace.layers.map((l) => ({ q: rows(l.q, nKv - window, window), positions: Int32Array.from({ length: window }, (_, i) => nKv - window + i) })),
    probes: trace.layers.map((l) => ({ q: rows(l.q, nKv, nProbes), positions: Int32Array.from({ length: nProbes }, (_, i) => nKv + i) })),
  };
  if (trace.needles) {
    const inPrompt = trace.needles.filter((r) => r.end <= nKv);
    if (inPrompt.length > 0) source.needles = { kind: 'kept', ranges: inPrompt };
  }
  return source;
}
