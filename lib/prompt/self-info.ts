/**
 * Self-information scorers from the built-in byte LMs (Selective Context,
 * liyucheng09/Selective_Context src/selective_context/__init__.py; anchors D2).
 *
 *   bits[i] = -log2 p(byte_i | bytes before it)       one value per UTF-8 byte
 *   unit score = mean of bits over the unit's non-whitespace bytes
 *                ('token' unit = one character: the sum, i.e. -log2 p(char))
 *
 * Units (UTF-16 spans of the input; whitespace belongs to no unit):
 *   token     one character (code point); a byte cannot be a span
 *   word      a maximal run of non-whitespace
 *   phrase    an approximation of spaCy's merged noun chunks (we have no
 *             parser): see phraseSpans
 *   sentence  Intl.Segmenter sentences, trimmed
 *
 * Conditioning: 'sentence' (Selective Context's default: each sentence is
 * scored by a fresh model state, as if it were the whole text) or
 * 'document' (one pass; past the model's context limit the model restarts
 * from the last `contextOverlap` bytes).
 *
 * The model has no begin-of-text symbol: every pass starts after `startByte`
 * (default "\n"), as Selective Context starts each sentence after GPT-2's
 * <|endoftext|>. Official log base: e (nats); ours: bits (a constant factor,
 * the same ranking).
 */
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import { rangeError, typeError } from '../errors.js';
import { ByteLm, type LmSession } from '../model/byte-lm.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import type { CompressedPrompt, CountTokens, Span, TokenScorer } from './types.js';

export type ByteLmRef = 'main' | 'draft' | ByteLm;
export type SelfInfoUnit = 'token' | 'word' | 'phrase' | 'sentence';
export type SelfInfoConditioning = 'sentence' | 'document';

const LN2 = Math.LN2;
const UNITS: readonly SelfInfoUnit[] = ['token', 'word', 'phrase', 'sentence'];
const CONDITIONINGS: readonly SelfInfoConditioning[] = ['sentence', 'document'];

// ---------------------------------------------------------------------------
// Models

/** A model argument: 'main' | 'draft' | a loaded ByteLm (with stage graphs). */
export function checkModelRef(arg: string, value: unknown, fallback: 'main' | 'draft'): ByteLmRef {
  if (value === undefined) return fallback;
  if (value === 'main' || value === 'draft') return value;
  if (value instanceof ByteLm) {
    if (value.released) throw rangeError(arg, 'a ByteLm that is not released', 'a released ByteLm');
    return value;
  }
  throw typeError(arg, "'main', 'draft' or a loaded ByteLm", value);
}

/** Runs `use` with the model loaded (a name is loaded for the call and released after it). */
export async function withModel<T>(ref: ByteLmRef, use: (lm: ByteLm) => Promise<T>): Promise<T> {
  if (typeof ref !== 'string') return use(ref);
  const lm = await ByteLm.load(ref, { plain: false });
  try {
    return await use(lm);
  } finally {
    await lm.release();
  }
}

export function checkCountTokens(arg: string, value: unknown): CountTokens {
  if (value === undefined) return cl100kCount;
  if (typeof value !== 'function') throw typeError(arg, 'a function (text: string) => number', value);
  return value as CountTokens;
}

/** countTokens(text), checked: a finite integer >= 0. */
export function countChecked(count: CountTokens, text: string): number {
  const n = count(text);
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw rangeError('countTokens(text)', 'an integer >= 0', n);
  return n;
}

export function checkSignal(arg: string, value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || typeof (value as AbortSignal).aborted !== 'boolean') {
    throw typeError(arg, 'an AbortSignal', value);
  }
  return value as AbortSignal;
}

export function checkText(arg: string, value: unknown): string {
  if (typeof value !== 'string') throw typeError(arg, 'a string', value);
  return value;
}

export function checkEnum<T extends string>(arg: string, value: unknown, names: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(names as readonly string[]).includes(value)) {
    throw rangeError(arg, `one of ${names.map((n) => `'${n}'`).join(', ')}`, value);
  }
  return value as T;
}

// ---------------------------------------------------------------------------
// Text <-> bytes

/** UTF-8 bytes of text and, per UTF-16 index 0..length, the byte offset where it starts. */
export function utf8Map(text: string): { bytes: Uint8Array; offset: Int32Array } {
  const bytes = new TextEncoder().encode(text);
  const offset = new Int32Array(text.length + 1);
  let b = 0;
  for (let i = 0; i < text.length; i++) {
    offset[i] = b;
    const c = text.charCodeAt(i);
    if (c < 0x80) b += 1;
    else if (c < 0x800) b += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      b += 4;
      offset[++i] = b; // a low surrogate is never a span boundary; point it past the pair
    } else b += 3; // BMP, or a lone surrogate (encoded as U+FFFD, 3 bytes)
  }
  offset[text.length] = b;
  return { bytes, offset };
}

const WS = /\s/u;
export function isSpace(ch: string): boolean {
  return WS.test(ch);
}

/** Characters (code points) that are not whitespace. */
export function charSpans(text: string, from = 0, to = text.length): Span[] {
  const out: Span[] = [];
  for (let i = from; i < to;) {
    const cp = text.codePointAt(i)!;
    const n = cp > 0xffff ? 2 : 1;
    if (!isSpace(String.fromCodePoint(cp))) out.push({ start: i, end: i + n });
    i += n;
  }
  return out;
}

/** Maximal runs of non-whitespace. */
export function wordSpans(text: string, from = 0, to = text.length): Span[] {
  const out: Span[] = [];
  const re = /\S+/gu;
  re.lastIndex = from;
  for (let m = re.exec(text); m !== null && m.index < to; m = re.exec(text)) {
    out.push({ start: m.index, end: Math.min(to, m.index + m[0].length) });
  }
  return out;
}

/** Intl.Segmenter sentences, trimmed of surrounding whitespace; blank segments dropped. */
export function sentenceSpans(text: string, locale = 'en'): Span[] {
  const out: Span[] = [];
  for (const s of new Intl.Segmenter(locale, { granularity: 'sentence' }).segment(text)) {
    let a = s.index;
    let b = s.index + s.segment.length;
    while (a < b && isSpace(text[a]!)) a++;
    while (b > a && isSpace(text[b - 1]!)) b--;
    if (b > a) out.push({ start: a, end: b });
  }
  return out;
}

// Function words. Determiners and possessives open a chunk that absorbs the
// content words after them ("the lazy dog"); the others stand alone.
const OPENERS = new Set(('a an the this that these those my your his her its our their some any no every each all both ' +
  'either neither another such what which whose').split(' '));
const STOPWORDS = new Set(('i me we us you he him she it they them myself yourself himself herself itself ourselves themselves ' +
  'is am are was were be been being have has had having do does did doing will would shall should can could may might must ' +
  'and but or nor so yet if then else than because as while until although though unless since whether ' +
  'of at by for with about against between into through during before after above below to from up down in out on off ' +
  'over under again further once here there when where why how not only own same too very just also who whom').split(' '));
const WORD_OR_PUNCT = /[\p{L}\p{N}\p{M}]+(?:['’\-][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu;

/**
 * Phrases, an approximation of spaCy's tokens after merge_noun_chunks (what
 * Selective Context's phrase level masks): a determiner or possessive
 * starts a chunk, and consecutive content words join the open chunk; every
 * other function word and every punctuation mark is a unit of its own and
 * closes the chunk. Runs inside `from .. to`.
 */
export function phraseSpans(text: string, from = 0, to = text.length): Span[] {
  const out: Span[] = [];
  let open = false; // the last unit in `out` may still grow
  const re = new RegExp(WORD_OR_PUNCT.source, 'gu');
  re.lastIndex = from;
  for (let m = re.exec(text); m !== null && m.index < to; m = re.exec(text)) {
    const span = { start: m.index, end: Math.min(to, m.index + m[0].length) };
    const isWord = /[\p{L}\p{N}\p{M}]/u.test(m[0]);
    const lower = m[0].toLowerCase();
    if (!isWord) {
      out.push(span);
      open = false;
    } else if (OPENERS.has(lower)) {
      out.push(span);
      open = true;
    } else if (STOPWORDS.has(lower)) {
      out.push(span);
      open = false;
    } else if (open) {
      out[out.length - 1]!.end = span.end;
    } else {
      out.push(span);
      open = true;
    }
  }
  return out;
}

/** The units of `text` (inside from..to) at one granularity. */
export function unitSpans(text: string, unit: SelfInfoUnit, locale = 'en'): Span[] {
  switch (unit) {
    case 'token': return charSpans(text);
    case 'word': return wordSpans(text);
    case 'phrase': return sentenceSpans(text, locale).flatMap((s) => phraseSpans(text, s.start, s.end));
    case 'sentence': return sentenceSpans(text, locale);
  }
}

// ---------------------------------------------------------------------------
// Per-byte self-information

export interface ByteSelfInfoOptions {
  /** The byte the model sees before the text (default 10, "\n"); null: none (the first byte gets 8 bits). */
  startByte?: number | null;
  /** Most bytes the model attends at once (default: the model's trained context). */
  contextLimit?: number;
  /** Bytes of context kept when the model restarts at the limit (default contextLimit / 8: 512 bytes). */
  contextOverlap?: number;
  /** Bytes per forward call (default 1024). */
  chunk?: number;
}

/** -log2 of each row's probability of `next`: logits f32 [rows, 256], float64 log-softmax. */
function bitsOf(logits: Float32Array, row: number, next: number): number {
  const o = row * 256;
  let max = -Infinity;
  for (let j = 0; j < 256; j++) if (logits[o + j]! > max) max = logits[o + j]!;
  let sum = 0;
  for (let j = 0; j < 256; j++) sum += Math.exp(logits[o + j]! - max);
  return (Math.log(sum) + max - logits[o + next]!) / LN2;
}

export interface ResolvedContext { startByte: number | null; limit: number; overlap: number; chunk: number }

export function resolveContext(lm: ByteLm, o: ByteSelfInfoOptions, prefix: string): ResolvedContext {
  const startByte = o.startByte === undefined ? 10 : o.startByte === null ? null : checkInteger(`${prefix}.startByte`, o.startByte, 0, 255);
  const limit = o.contextLimit === undefined ? lm.config.context : checkInteger(`${prefix}.contextLimit`, o.contextLimit, 16, 1 << 24);
  const overlap = o.contextOverlap === undefined ? limit >> 3 : checkInteger(`${prefix}.contextOverlap`, o.contextOverlap, 0, limit >> 1);
  const chunk = o.chunk === undefined ? 1024 : checkInteger(`${prefix}.chunk`, o.chunk, 1, 1 << 20);
  return { startByte, limit, overlap, chunk };
}

/**
 * bits[i] = -log2 p(bytes[i] | bytes[0..i)) for every byte (f64 [n]), from one
 * pass of the model over `bytes` after the start byte. Past ctx.limit bytes
 * the model restarts from the last ctx.overlap bytes (no start byte then).
 */
export async function byteSelfInfo(lm: ByteLm, bytes: Uint8Array, ctx: ResolvedContext, signal?: AbortSignal): Promise<Float64Array> {
  const n = bytes.length;
  const bits = new Float64Array(n);
  if (n === 0) return bits;
  let session: LmSession = lm.session();
  let held = 0; // bytes in the session's cache
  let last: { logits: Float32Array; row: number } | null = null; // the row that predicts bytes[i]
  // The start byte rides in front of the first forward (one call per short text).
  let lead = ctx.startByte === null ? 0 : 1;
  let i = 0;
  while (i < n) {
    if (signal?.aborted) throw signal.reason ?? new Error('aborted');
    if (held >= ctx.limit) {
      // Restart from the last `overlap` bytes (the sliding schedule).
      session = lm.session();
      const from = Math.max(0, i - ctx.overlap);
      held = 0;
      last = null;
      for (let a = from; a < i; a += ctx.chunk) {
        const b = Math.min(i, a + ctx.chunk);
        last = { logits: await session.forward(bytes.subarray(a, b)), row: b - a - 1 };
        held += b - a;
      }
    }
    const take = Math.min(n - i, ctx.chunk, ctx.limit - held - lead);
    let feed = bytes.subarray(i, i + take);
    if (lead) {
      feed = new Uint8Array(take + 1);
      feed[0] = ctx.startByte!;
      feed.set(bytes.subarray(i, i + take), 1);
    }
    const logits = await session.forward(feed);
    for (let j = 0; j < take; j++) {
      const row = lead + j - 1;
      bits[i + j] = row >= 0 ? bitsOf(logits, row, bytes[i + j]!) : last ? bitsOf(last.logits, last.row, bytes[i]!) : 8;
    }
    last = { logits, row: lead + take - 1 };
    held += take + lead;
    lead = 0;
    i += take;
  }
  return bits;
}

/** Per-byte bits of `text` (f64 over its UTF-8 bytes; NaN where no pass scored a byte). */
async function textBits(
  lm: ByteLm, text: string, map: { bytes: Uint8Array; offset: Int32Array }, conditioning: SelfInfoConditioning,
  ctx: ResolvedContext, locale: string, signal?: AbortSignal,
): Promise<Float64Array> {
  if (conditioning === 'document') return byteSelfInfo(lm, map.bytes, ctx, signal);
  const bits = new Float64Array(map.bytes.length).fill(NaN);
  for (const s of sentenceSpans(text, locale)) {
    const a = map.offset[s.start]!;
    const b = map.offset[s.end]!;
    bits.set(await byteSelfInfo(lm, map.bytes.subarray(a, b), ctx, signal), a);
  }
  return bits;
}

/** Unit scores: the mean of the non-whitespace bytes' bits ('token' unit: their sum). */
export function aggregateUnits(text: string, map: { bytes: Uint8Array; offset: Int32Array }, bits: Float64Array, units: Span[], unit: SelfInfoUnit): Float64Array {
  const out = new Float64Array(units.length);
  for (let u = 0; u < units.length; u++) {
    const { start, end } = units[u]!;
    let sum = 0;
    let count = 0;
    for (let b = map.offset[start]!; b < map.offset[end]!; b++) {
      const byte = map.bytes[b]!;
      if (byte === 0x20 || (byte >= 0x09 && byte <= 0x0d)) continue; // ASCII whitespace inside a sentence or phrase
      sum += bits[b]!;
      count++;
    }
    out[u] = count === 0 ? NaN : unit === 'token' ? sum : sum / count;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The scorer

export interface SelfInfoScorerOptions extends ByteSelfInfoOptions {
  /** 'main' (default), 'draft' or a loaded ByteLm. */
  model?: ByteLmRef;
  /** Default 'word'. */
  unit?: SelfInfoUnit;
  /** Default 'sentence' (Selective Context). */
  conditioning?: SelfInfoConditioning;
  /** Intl.Segmenter locale for sentences (default 'en'). */
  locale?: string;
}

export interface SelfInfoScorer extends TokenScorer {
  tokenize(text: string): Span[];
  /** One score per token (f64), see the factory's comment. */
  score(text: string, tokens: Span[]): Promise<Float64Array>;
  readonly unit: SelfInfoUnit;
  readonly conditioning: SelfInfoConditioning;
  /** Releases a model the scorer loaded itself (by name); idempotent. */
  release(): Promise<void>;
}

const SCORER_OPTIONS = ['model', 'unit', 'conditioning', 'locale', 'startByte', 'contextLimit', 'contextOverlap', 'chunk'] as const;

function checkLocale(arg: string, value: unknown): string {
  if (value === undefined) return 'en';
  if (typeof value !== 'string') throw typeError(arg, 'a BCP 47 locale string', value);
  try {
    new Intl.Segmenter(value);
  } catch {
    throw rangeError(arg, 'a BCP 47 locale string', value);
  }
  return value;
}

/**
 * A TokenScorer whose tokens are `unit`s and whose scores are their
 * self-information in bits (higher = more informative = keep). The model is
 * loaded on the first score() when given by name.
 */
export function selfInfoScorer(options: SelfInfoScorerOptions = {}): SelfInfoScorer {
  const o = checkOptions('options', options, SCORER_OPTIONS) as SelfInfoScorerOptions;
  const model = checkModelRef('options.model', o.model, 'main');
  const unit = checkEnum('options.unit', o.unit, UNITS, 'word');
  const conditioning = checkEnum('options.conditioning', o.conditioning, CONDITIONINGS, 'sentence');
  const locale = checkLocale('options.locale', o.locale);
  const ctxOptions: ByteSelfInfoOptions = { startByte: o.startByte, contextLimit: o.contextLimit, contextOverlap: o.contextOverlap, chunk: o.chunk };
  if (typeof model !== 'string') resolveContext(model, ctxOptions, 'options'); // fail now, not at score()
  else if (o.startByte !== undefined && o.startByte !== null) checkInteger('options.startByte', o.startByte, 0, 255);
  let loaded: Promise<ByteLm> | undefined;
  const getLm = (): Promise<ByteLm> => {
    if (typeof model !== 'string') return Promise.resolve(model);
    loaded ??= ByteLm.load(model, { plain: false });
    return loaded;
  };
  return {
    name: `self-info:${typeof model === 'string' ? model : model.config.name}`,
    unit,
    conditioning,
    tokenize: (text: string) => unitSpans(checkText('text', text), unit, locale),
    async score(text: string, tokens: Span[]): Promise<Float64Array> {
      checkText('text', text);
      checkSpans('tokens', tokens, text.length);
      const lm = await getLm();
      const ctx = resolveContext(lm, ctxOptions, 'options');
      const map = utf8Map(text);
      const bits = await textBits(lm, text, map, conditioning, ctx, locale);
      return aggregateUnits(text, map, bits, tokens, unit);
    },
    async release() {
      if (loaded) {
        const lm = await loaded;
        loaded = undefined;
        await lm.release();
      }
    },
  };
}

/** Spans in order, non-overlapping, inside [0, length]. */
export function checkSpans(arg: string, spans: unknown, length: number): Span[] {
  if (!Array.isArray(spans)) throw typeError(arg, 'an array of { start, end } spans', spans);
  let prev = 0;
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i] as Span | null;
    if (s === null || typeof s !== 'object' || !Number.isInteger(s.start) || !Number.isInteger(s.end)) {
      throw typeError(`${arg}[${i}]`, 'a { start, end } span of integers', s);
    }
    if (s.start < prev || s.end < s.start || s.end > length) {
      throw rangeError(`${arg}[${i}]`, `an ordered, non-overlapping span inside [0, ${length}] starting at >= ${prev}`, `{ start: ${s.start}, end: ${s.end} }`);
    }
    prev = s.end;
  }
  return spans as Span[];
}

// ---------------------------------------------------------------------------
// Selective Context's own rule

/** numpy.nanpercentile with linear interpolation, q in [0, 100]. */
export function nanPercentile(values: ArrayLike<number>, q: number): number {
  const v = Array.from(values).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const pos = (q / 100) * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(v.length - 1, lo + 1);
  return v[lo]! + (v[hi]! - v[lo]!) * (pos - lo);
}

/**
 * The compressed text of kept spans: adjacent spans are concatenated; the
 * gap between two kept spans becomes "" when it holds no whitespace (a
 * dropped piece of a word), "\n" when its whitespace holds a newline, else " ".
 */
export function joinKept(text: string, kept: Span[]): string {
  let out = '';
  for (let i = 0; i < kept.length; i++) {
    const s = kept[i]!;
    if (i > 0) {
      const gap = text.slice(kept[i - 1]!.end, s.start);
      out += /\n/.test(gap) ? '\n' : /\s/u.test(gap) ? ' ' : '';
    }
    out += text.slice(s.start, s.end);
  }
  return out;
}

/** Spans merged where one ends exactly where the next starts. */
export function mergeAdjacent(spans: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of spans) {
    const last = out[out.length - 1];
    if (last && last.end === s.start) last.end = s.end;
    else out.push({ start: s.start, end: s.end });
  }
  return out;
}

export function compressedResult(text: string, kept: Span[], outText: string, count: CountTokens): CompressedPrompt {
  const originalTokens = countChecked(count, text);
  const compressedTokens = countChecked(count, outText);
  return { text: outText, kept, originalTokens, compressedTokens, rate: originalTokens === 0 ? 1 : compressedTokens / originalTokens };
}

export interface SelectiveContextOptions extends SelfInfoScorerOptions {
  /** Share of units to drop: units below this percentile of the scores go (default 0.35). */
  reduceRatio?: number;
  /** Target-LLM token counter for the statistics (default cl100k, gpt-tokenizer). */
  countTokens?: CountTokens;
}

/**
 * Selective Context: units (default 'phrase') scored by self-information,
 * those below the `reduceRatio` percentile (numpy nanpercentile, linear)
 * dropped. Units are kept whole; the text is the kept units joined (joinKept).
 */
export async function selectiveContext(text: string, options: SelectiveContextOptions = {}): Promise<CompressedPrompt> {
  checkText('text', text);
  const o = checkOptions('options', options, [...SCORER_OPTIONS, 'reduceRatio', 'countTokens']) as SelectiveContextOptions;
  const reduceRatio = o.reduceRatio === undefined ? 0.35 : checkNumber('options.reduceRatio', o.reduceRatio);
  if (!(reduceRatio >= 0 && reduceRatio <= 1)) throw rangeError('options.reduceRatio', 'a number in [0, 1]', reduceRatio);
  const count = checkCountTokens('options.countTokens', o.countTokens);
  const { reduceRatio: _r, countTokens: _c, ...scorerOptions } = o;
  const scorer = selfInfoScorer({ unit: 'phrase', ...scorerOptions });
  try {
    const units = await scorer.tokenize(text);
    const scores = await scorer.score(text, units);
    const threshold = nanPercentile(scores, reduceRatio * 100);
    const kept = units.filter((_, i) => !(scores[i]! < threshold));
    return compressedResult(text, mergeAdjacent(kept), joinKept(text, kept), count);
  } finally {
    await scorer.release();
  }
}
