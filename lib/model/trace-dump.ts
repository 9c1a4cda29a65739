/**
 * Real KV traces from the byte-level model (lib/model/byte-lm.ts) for
 * `tokenpress eval kv --trace`: `tokenpress eval kv --dump-trace file
 * --model main` runs the model over held-out text and writes every layer's
 * post-RoPE queries, keys and values in the trace format of
 * lib/kv/eval/traces.ts (writeKvTrace / loadKvTrace):
 *
 *   layers.<l>.q  f32 [nHeads,   n, headDim]   as LmSession.forward's onLayer gave them
 *   layers.<l>.k  f32 [nKvHeads, n, headDim]   (one forward over all n bytes,
 *   layers.<l>.v  f32 [nKvHeads, n, headDim]    positions 0 .. n-1, bit for bit)
 *
 * The text (lmTraceText), n = `context` bytes: held-out text from a seeded
 * offset (at a line start; a window without "key is" in any case, so the key
 * is the only one), with the copy task unless needle: false, in the format
 * of the real-model needle test (`eval kv --model`):
 *
 *   needle    "The key is 835124.\n" inserted at a line start at a seeded
 *             depth in [0.1, 0.3] of the prompt (the key: 6 digits, the
 *             first 1-9; the needle range is its digits)
 *   question  "\nThe key is 8" (the needle's phrase and the key's first
 *             digit) ending exactly at the prompt's end, row nKv - 1,
 *             nKv = n - probes
 *   answer    the other digits, ".\n", at rows nKv .. (the first probes);
 *             then the held-out text goes on
 *
 * so the eval's split (last `probes` rows = future, the prompt's last
 * `window` rows = observation window) puts the question at the end of the
 * window and the answer in the probes.
 *
 * Metadata (strings): format, generator, model, modelName, modelStep (the
 * card's training step), cacheDtype (the session cache's dtype: the model's
 * own attention read k, v rounded to it; the trace keeps them f32), context, probes, source, offset (first byte of the
 * source used), consumed (source bytes used), seed, needle ("1"/"0"), key,
 * keyStart, question (row of the question's last byte), needles (the key's
 * digit range, the existing needle metric), and the full-cache model's
 * results on this very text: bitsPerByte (mean next-byte loss in bits over
 * rows 1..n-1), copyCorrect ("c/d": answer digits whose argmax the model
 * got right, teacher-forced; the real test wants all d) and keyBits (mean
 * bits per answer digit, teacher-forced; chance is log2(10) = 3.32).
 */
import { rangeError, typeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { checkBoolean, checkInteger, checkOptions } from '../validate.js';
import { Rng } from '../kv/eval/workload.js';
import { writeKvTrace, type KvTraceLayer } from '../kv/eval/traces.js';
import type { ByteLm } from './byte-lm.js';

export const TRACE_FORMAT = 'tokenpress-lm-trace/1';
/** Digits in the copy task's key. */
export const KEY_DIGITS = 6;
const KEY_PHRASE = 'The key is ';
const DEFAULT_PROBES = 32;
/** Smallest prompt (n - probes) that leaves room for the fact, the gap and the question. */
export const MIN_NEEDLE_PROMPT = 128;

export interface LmTraceOptions {
  /** Rows n of the trace (bytes run through the model); default the model's context. */
  context?: number;
  /** Picks the source offset and the key; default 0. */
  seed?: number;
  /** Insert the copy task (default true). */
  needle?: boolean;
  /** Rows after the prompt (the eval's --probes); with a needle, the answer starts there. Default 32. */
  probes?: number;
}

export interface LmTraceText {
  /** The n bytes run through the model. */
  bytes: Uint8Array;
  /** First byte of the source used, and how many source bytes were used. */
  offset: number;
  consumed: number;
  /** The copy task, if any: the key, its digits' range [start, end) in bytes, the question's last row. */
  needle?: { key: string; start: number; end: number; question: number };
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/**
 * The trace's text: n bytes of `source` from a seeded offset, with the copy
 * task unless needle is false (see the module comment). Deterministic in
 * (source, n, probes, seed, needle).
 */
export function lmTraceText(source: Uint8Array, n: number, probes: number, seed: number, needle: boolean): LmTraceText {
  if (!(source instanceof Uint8Array)) throw typeError('source', 'a Uint8Array of text', source);
  checkInteger('context', n, 2);
  checkInteger('probes', probes, 1);
  checkInteger('seed', seed, 0, 0xffffffff);
  const nKv = n - probes;
  if (needle) {
    if (probes < KEY_DIGITS) throw rangeError('probes', `at least ${KEY_DIGITS} with the needle (the answer is in the probes)`, probes);
    if (nKv < MIN_NEEDLE_PROMPT) throw rangeError('context', `at least probes + ${MIN_NEEDLE_PROMPT} = ${probes + MIN_NEEDLE_PROMPT} with the needle`, n);
  } else if (nKv < 1) {
    throw rangeError('context', `more than probes = ${probes}`, n);
  }
  // Room to start anywhere and still read n bytes plus a line's worth of skipping.
  const slack = 256;
  if (source.length < n + slack) throw rangeError('source', `at least context + ${slack} = ${n + slack} bytes`, `${source.length} bytes`);
  const rng = new Rng((seed ^ 0x5bd1e995) >>> 0);
  const pickOffset = (): number => {
    const raw = Math.floor(rng.uniform() * (source.length - n - slack + 1));
    const nl = source.subarray(raw, raw + slack - 1).indexOf(NEWLINE);
    return nl >= 0 ? raw + nl + 1 : raw; // start at a line
  };
  let offset = pickOffset();
  if (!needle) return { bytes: source.slice(offset, offset + n), offset, consumed: n };

  for (let attempt = 1; containsKeyPhrase(source.subarray(offset, offset + n)); attempt++) {
    if (attempt === 1000) throw rangeError('source', 'text with windows free of "key is" (the needle must be the only key)', 'text where every window has one');
    offset = pickOffset();
  }
  let key = String(rng.int(1, 9));
  for (let i = 1; i < KEY_DIGITS; i++) key += String(rng.int(0, 9));
  const line = ascii(`${KEY_PHRASE}${key}.\n`);
  const question = ascii(`\n${KEY_PHRASE}${key[0]}`);
  const answer = ascii(`${key.slice(1)}.\n`);
  // The needle line: at the first line start at or after a depth in [0.1, 0.3] of the prompt (mid-line if none before 0.5).
  const target = Math.floor(rng.range([0.1, 0.3]) * nKv);
  let at = target;
  while (at < nKv / 2 && source[offset + at - 1] !== NEWLINE) at++;
  if (at >= nKv / 2) at = target;

  const bytes = new Uint8Array(n);
  let row = 0; // next row to fill
  let src = offset; // next source byte
  const copyText = (count: number) => { bytes.set(source.subarray(src, src + count), row); row += count; src += count; };
  const put = (b: Uint8Array) => { const m = Math.min(b.length, n - row); bytes.set(b.subarray(0, m), row); row += m; };
  copyText(at);
  const start = row + KEY_PHRASE.length;
  put(line);
  copyText(nKv - question.length - row);
  put(question);
  put(answer);
  copyText(n - row);
  return { bytes, offset, consumed: src - offset, needle: { key, start, end: start + KEY_DIGITS, question: nKv - 1 } };
}

const NEWLINE = 0x0a;

/** "key is" in any case (as the real-model needle test checks its haystack). */
function containsKeyPhrase(bytes: Uint8Array): boolean {
  const pat = [0x6b, 0x65, 0x79, 0x20, 0x69, 0x73];
  outer: for (let i = 0; i + pat.length <= bytes.length; i++) {
    for (let j = 0; j < pat.length; j++) {
      const b = bytes[i + j]!;
      if ((b >= 0x41 && b <= 0x5a ? b + 32 : b) !== pat[j]) continue outer;
    }
    return true;
  }
  return false;
}

export interface LmTraceCapture {
  /** Per layer: q [nHeads, n, headDim], k, v [nKvHeads, n, headDim], f32, copies of what onLayer gave. */
  layers: KvTraceLayer[];
  /** f32 [n, 256]: logits for the byte after each row. */
  logits: Float32Array;
  /** The session's KvCache dtype: what the model's own attention read k, v as (the trace keeps them f32, as onLayer gave them). */
  cacheDtype: string;
}

/**
 * Runs `bytes` (n >= 1) through a fresh session of the model in one forward
 * and keeps every layer's q, k, v (post-RoPE) and the logits.
 */
export async function captureLmTrace(model: ByteLm, bytes: Uint8Array): Promise<LmTraceCapture> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw typeError('bytes', 'a non-empty Uint8Array', bytes);
  const { nLayers, nHeads, nKvHeads, headDim } = model.config;
  const n = bytes.length;
  const layers: KvTraceLayer[] = [];
  const f32 = (shape: number[], data: Float32Array): Tensor<'f32'> => {
    if (data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw rangeError('onLayer data', `${shape.reduce((a, b) => a * b, 1)} floats for [${shape.join(', ')}]`, `${data.length} floats`);
    }
    return { dtype: 'f32', shape, data: data.slice() }; // copy: the runtime may reuse its buffers
  };
  const session = model.session(); // the default cache (f16), as the real-model evaluation runs it
  const logits = await session.forward(bytes, {
    onLayer: (a) => {
      if (a.layer !== layers.length) throw rangeError('onLayer layer', `layer ${layers.length} next`, a.layer);
      layers.push({ q: f32([nHeads, n, headDim], a.q), k: f32([nKvHeads, n, headDim], a.k), v: f32([nKvHeads, n, headDim], a.v) });
    },
  });
  if (layers.length !== nLayers) throw rangeError('onLayer calls', `${nLayers} (one per layer)`, layers.length);
  return { layers, logits: logits.slice(), cacheDtype: session.cache.dtype };
}

/** Mean of -log2 softmax(logits[i])[bytes[i + 1]] over rows 0..n-2 (bits per byte). */
export function bitsPerByte(logits: Float32Array, bytes: Uint8Array, vocab = 256): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i++) sum += -logSoftmaxAt(logits, i, vocab, bytes[i + 1]!) / Math.LN2;
  return bytes.length > 1 ? sum / (bytes.length - 1) : NaN;
}

function logSoftmaxAt(logits: Float32Array, row: number, vocab: number, index: number): number {
  const off = row * vocab;
  let max = -Infinity;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[off + j]!);
  let s = 0;
  for (let j = 0; j < vocab; j++) s += Math.exp(logits[off + j]! - max);
  return logits[off + index]! - max - Math.log(s);
}

function argmaxRow(logits: Float32Array, row: number, vocab: number): number {
  let best = 0;
  for (let j = 1; j < vocab; j++) if (logits[row * vocab + j]! > logits[row * vocab + best]!) best = j;
  return best;
}

export interface LmTraceResult {
  file: string;
  text: LmTraceText;
  metadata: Record<string, string>;
  /** Answer digits (all but the first) the full-cache model predicts right (teacher-forced argmax); null without a needle. */
  copyCorrect: number | null;
  bitsPerByte: number;
}

/**
 * Writes a trace of `model` over `source` (held-out text) to `file` (see the
 * module comment for the text, the tensors and the metadata). `modelArg` is
 * what the model was loaded as ('main', 'draft' or a directory), `sourceName`
 * names the source in the metadata.
 */
export async function dumpLmTrace(
  model: ByteLm, modelArg: string, source: Uint8Array, sourceName: string, file: string, options?: LmTraceOptions,
): Promise<LmTraceResult> {
  const o = checkOptions('options', options, ['context', 'seed', 'needle', 'probes']) as LmTraceOptions;
  const n = o.context === undefined ? model.config.context : checkInteger('options.context', o.context, 2, model.config.context);
  const seed = o.seed === undefined ? 0 : checkInteger('options.seed', o.seed, 0, 0xffffffff);
  const probes = o.probes === undefined ? DEFAULT_PROBES : checkInteger('options.probes', o.probes, 1, n - 1);
  const needle = checkBoolean('options.needle', o.needle, true);
  if (typeof file !== 'string' || file.length === 0) throw typeError('file', 'a file path', file);
  const text = lmTraceText(source, n, probes, seed, needle);
  const { layers, logits, cacheDtype } = await captureLmTrace(model, text.bytes);
  const vocab = model.config.vocab;
  const bpb = bitsPerByte(logits, text.bytes, vocab);
  let copyCorrect: number | null = null;
  const step = model.card.training?.step;
  const metadata: Record<string, string> = {
    format: TRACE_FORMAT,
    generator: 'tokenpress eval kv --dump-trace',
    model: modelArg,
    modelName: model.config.name,
    modelStep: typeof step === 'number' ? String(step) : 'unknown',
    cacheDtype,
    context: String(n),
    probes: String(probes),
    source: sourceName,
    offset: String(text.offset),
    consumed: String(text.consumed),
    seed: String(seed),
    needle: text.needle ? '1' : '0',
    bitsPerByte: bpb.toFixed(4),
  };
  let needles: { start: number; end: number }[] | undefined;
  if (text.needle) {
    const { key, start, end, question } = text.needle;
    // Row question + i - 1 predicts answer digit i (the question ends with the first digit).
    copyCorrect = 0;
    let bits = 0;
    for (let i = 1; i < key.length; i++) {
      if (argmaxRow(logits, question + i - 1, vocab) === key.charCodeAt(i)) copyCorrect++;
      bits -= logSoftmaxAt(logits, question + i - 1, vocab, key.charCodeAt(i)) / Math.LN2;
    }
    Object.assign(metadata, {
      key, keyStart: String(start), question: String(question), copyCorrect: `${copyCorrect}/${key.length - 1}`,
      keyBits: (bits / (key.length - 1)).toFixed(4),
    });
    needles = [{ start, end }];
  }
  writeKvTrace(file, layers, needles, metadata);
  return { file, text, metadata, copyCorrect, bitsPerByte: bpb };
}

/** One paragraph for the CLI: what was written. */
export function describeLmTrace(r: LmTraceResult, model: ByteLm): string {
  const c = model.config;
  const m = r.metadata;
  const lines = [
    `wrote ${r.file}: ${c.nLayers} layers, q [${c.nHeads}, ${m.context}, ${c.headDim}], k/v [${c.nKvHeads}, ${m.context}, ${c.headDim}] f32`,
    `model ${m.model} (${m.modelName}, training step ${m.modelStep}); source ${m.source} from byte ${m.offset} (${m.consumed} bytes), seed ${m.seed}`,
    `full cache on this text: ${m.bitsPerByte} bits/byte`,
  ];
  if (r.text.needle) {
    const nd = r.text.needle;
    lines.push(`needle: key ${nd.key} at bytes ${nd.start}..${nd.end}, question ends at row ${nd.question}, answer in the first probes; ` +
      `full cache copies ${m.copyCorrect} answer digits, ${m.keyBits} bits per digit (chance 3.32)`);
  }
  lines.push(`evaluate: tokenpress eval kv --trace ${r.file} --probes ${m.probes}`);
  return lines.join('\n');
}
