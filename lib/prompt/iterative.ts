/**
 * LLMLingua-1 iterative token-level compression with a built-in byte LM
 * (microsoft/LLMLingua llmlingua/prompt_compressor.py: iterative_compress_prompt,
 * get_compressed_input, get_estimate_threshold_base_distribution; anchors D2).
 *
 * The text is cut into segments of about `iterativeSize` bytes (at unit
 * boundaries). For each segment, in order:
 *   1. the model runs [kept bytes of the previous segment] + [this segment]
 *      over the KV cache of the compressed prefix (LmSession.forwardTree with
 *      a chain, so positions are the compressed positions), which gives
 *      loss_i = -log2 p(byte_i | compressed prefix, bytes of this segment before i);
 *   2. only the previous segment's kept bytes stay in the cache (commitTree):
 *      the cache always holds exactly the compressed text, computed over
 *      itself, as in the official loop, which re-feeds the kept tokens;
 *   3. unit score = mean loss of its bytes; units ranked by score (ties:
 *      earlier first) are kept while the kept bytes stay nearest to
 *      rate x segment bytes (the official threshold "the loss at rank
 *      keep * len", with units of several bytes); keepSplit units first.
 *
 * Units. The official unit is one LLM token (~4 characters); ours are bytes,
 * and dropping single bytes inside words gives garbage, so the default unit
 * is a word with the whitespace before it ('word'); 'char' keeps whole
 * characters (never a partial UTF-8 sequence). With keepSplit a whitespace
 * run holding "\n\n" is a unit of its own and always kept.
 *
 * Differences from the official code (docs/prompt-scorers.md): the threshold
 * ranks only the current segment (the official ranks the compressed
 * history's losses too, which undershoots the rate); the decision uses each
 * byte's own loss (the official keeps token i on the loss of token i + 1);
 * the rate is a share of bytes per segment (the official budget controller
 * counts target-LLM tokens before this step; this function only reports
 * them). Past the context limit the cache keeps its first 10 tokens and the
 * most recent ones (the official cache_bos_num = 10 and KV-cache pop).
 */
import { rangeError, typeError } from '../errors.js';
import type { ByteLm, LmSession } from '../model/byte-lm.js';
import { checkInteger, checkNumber, checkOptions, checkBoolean } from '../validate.js';
import type { CompressedPrompt, CountTokens, Span } from './types.js';
import {
  checkCountTokens, checkEnum, checkModelRef, checkSignal, checkText, compressedResult, mergeAdjacent, utf8Map, withModel,
  type ByteLmRef,
} from './self-info.js';

export type IterativeUnit = 'word' | 'char';

export interface IterativeOptions {
  /** 'main' (default), 'draft' or a loaded ByteLm. */
  model?: ByteLmRef;
  /** Share of bytes kept per segment, in (0, 1] (default 0.5). */
  rate?: number;
  /** Segment length in bytes (default 800: about the official 200 LLM tokens of English text). At most 1024 (a forward holds up to 4x this many bytes, MAX_TREE_NODES = 4096). */
  iterativeSize?: number;
  /** Keep whitespace runs holding "\n\n" (default false, as the official). */
  keepSplit?: boolean;
  /** Default 'word'. */
  unit?: IterativeUnit;
  /** The byte before the text (default 10, "\n"): the model has no begin-of-text symbol. */
  startByte?: number;
  /** Most bytes in the cache plus one forward (default: the model's trained context). */
  contextLimit?: number;
  /** Target-LLM token counter for the statistics (default cl100k, gpt-tokenizer). */
  countTokens?: CountTokens;
  signal?: AbortSignal;
  /** Called after each segment with the input bytes done and the total. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

const OPTIONS = ['model', 'rate', 'iterativeSize', 'keepSplit', 'unit', 'startByte', 'contextLimit', 'countTokens', 'signal', 'onProgress'] as const;
const UNITS: readonly IterativeUnit[] = ['word', 'char'];
/** Tokens the cache keeps at its start when it must drop old ones (LLMLingua cache_bos_num). */
const CACHE_SINKS = 10;

/** A unit: a UTF-16 span, its UTF-8 byte range, whether it is forced kept. */
interface Unit { start: number; end: number; b0: number; b1: number; forced: boolean }

/** Units of the text: whitespace + word (or single characters), split so none exceeds maxBytes. */
function iterativeUnits(text: string, offset: Int32Array, unit: IterativeUnit, keepSplit: boolean, maxBytes: number): Unit[] {
  const units: Unit[] = [];
  const push = (start: number, end: number, forced: boolean) => {
    // Split an over-long unit at character boundaries.
    let a = start;
    while (a < end) {
      let b = a;
      while (b < end && offset[b + 1]! - offset[a]! <= maxBytes) b++;
      if (b === a) b = a + 1;
      if (b < end && (text.charCodeAt(b) & 0xfc00) === 0xdc00) b++; // never end inside a surrogate pair
      units.push({ start: a, end: b, b0: offset[a]!, b1: offset[b]!, forced });
      a = b;
    }
  };
  if (unit === 'char') {
    for (let i = 0; i < text.length;) {
      const n = text.codePointAt(i)! > 0xffff ? 2 : 1;
      push(i, i + n, false);
      i += n;
    }
    if (keepSplit) markSplits(text, units);
    return units;
  }
  const re = /(\s*)(\S*)/gu;
  for (let m = re.exec(text); m !== null && m.index < text.length; m = re.exec(text)) {
    const ws = m[1]!;
    const word = m[2]!;
    if (keepSplit && ws.includes('\n\n')) {
      push(m.index, m.index + ws.length, true);
      if (word.length > 0) push(m.index + ws.length, m.index + ws.length + word.length, false);
    } else if (ws.length + word.length > 0) push(m.index, m.index + ws.length + word.length, false);
    if (m[0].length === 0) re.lastIndex++;
  }
  return units;
}

/** char units: the characters of every whitespace run holding "\n\n" are forced kept. */
function markSplits(text: string, units: Unit[]): void {
  const re = /\s*\n\s*\n\s*/gu;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    for (const u of units) if (u.start >= m.index && u.end <= m.index + m[0].length) u.forced = true;
  }
}

/** Segments: consecutive units whose bytes add up to about `size` (a segment ends at the first unit that reaches it). */
function segmentsOf(units: Unit[], size: number): Unit[][] {
  const out: Unit[][] = [];
  let cur: Unit[] = [];
  let bytes = 0;
  for (const u of units) {
    cur.push(u);
    bytes += u.b1 - u.b0;
    if (bytes >= size) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** -log2 softmax(row)[next], float64. */
function bits(logits: Float32Array, row: number, next: number): number {
  const o = row * 256;
  let max = -Infinity;
  for (let j = 0; j < 256; j++) if (logits[o + j]! > max) max = logits[o + j]!;
  let sum = 0;
  for (let j = 0; j < 256; j++) sum += Math.exp(logits[o + j]! - max);
  return (Math.log(sum) + max - logits[o + next]!) / Math.LN2;
}

/**
 * Which units of a segment to keep: forced ones, then by score (descending;
 * ties: earlier first) while the kept bytes get nearer to `target` bytes.
 */
export function keepByScore(lengths: ArrayLike<number>, scores: ArrayLike<number>, forced: ArrayLike<boolean>, target: number): boolean[] {
  const n = lengths.length;
  const keep = new Array<boolean>(n).fill(false);
  let kept = 0;
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    if (forced[i]) {
      keep[i] = true;
      kept += lengths[i]!;
    } else order.push(i);
  }
  order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  for (const i of order) {
    if (kept + lengths[i]! / 2 > target) break;
    keep[i] = true;
    kept += lengths[i]!;
  }
  return keep;
}

/**
 * LLMLingua-1's iterative compression of `text` with a byte LM; see the
 * module comment. Returns the kept units' text (concatenated: units carry
 * their own whitespace), their spans and target-LLM token counts.
 */
export async function compressIterative(text: string, options: IterativeOptions = {}): Promise<CompressedPrompt> {
  checkText('text', text);
  const o = checkOptions('options', options, OPTIONS) as IterativeOptions;
  const model = checkModelRef('options.model', o.model, 'main');
  const rate = o.rate === undefined ? 0.5 : checkNumber('options.rate', o.rate);
  if (!(rate > 0 && rate <= 1)) throw rangeError('options.rate', 'a number in (0, 1]', rate);
  const size = o.iterativeSize === undefined ? 800 : checkInteger('options.iterativeSize', o.iterativeSize, 1, 1024);
  const keepSplit = checkBoolean('options.keepSplit', o.keepSplit, false);
  const unit = checkEnum('options.unit', o.unit, UNITS, 'word');
  const startByte = o.startByte === undefined ? 10 : checkInteger('options.startByte', o.startByte, 0, 255);
  const limitOpt = o.contextLimit === undefined ? undefined : checkInteger('options.contextLimit', o.contextLimit, 64, 1 << 24);
  const count = checkCountTokens('options.countTokens', o.countTokens);
  const signal = checkSignal('options.signal', o.signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  const onProgress = o.onProgress;

  const map = utf8Map(text);
  const units = iterativeUnits(text, map.offset, unit, keepSplit, size);
  const segments = segmentsOf(units, size);
  const keptUnits = await withModel(model, async (lm) => {
    const limit = limitOpt ?? lm.config.context;
    return runSegments(lm, map.bytes, segments, { rate, startByte, limit, signal, onProgress });
  });
  const kept = mergeAdjacent(keptUnits.map((u) => ({ start: u.start, end: u.end })));
  const outText = keptUnits.map((u) => text.slice(u.start, u.end)).join('');
  return compressedResult(text, kept, outText, count);
}

interface RunOptions {
  rate: number;
  startByte: number;
  limit: number;
  signal?: AbortSignal;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

async function runSegments(lm: ByteLm, bytes: Uint8Array, segments: Unit[][], r: RunOptions): Promise<Unit[]> {
  const session: LmSession = lm.session();
  // The row that predicts the next byte after the cache's newest token.
  let last = { logits: await session.forward(Uint8Array.of(r.startByte)), row: 0 };
  let prevKept = new Uint8Array(0);
  const keptUnits: Unit[] = [];
  for (const seg of segments) {
    if (r.signal?.aborted) throw r.signal.reason ?? new Error('aborted');
    const b0 = seg[0]!.b0;
    const b1 = seg[seg.length - 1]!.b1;
    const feed = new Uint8Array(prevKept.length + (b1 - b0));
    feed.set(prevKept, 0);
    feed.set(bytes.subarray(b0, b1), prevKept.length);
    makeRoom(session, feed.length, r.limit);
    const parents = new Int32Array(feed.length);
    for (let i = 0; i < feed.length; i++) parents[i] = i - 1;
    const logits = await session.forwardTree(feed, parents);
    // Losses of the segment's bytes.
    const p = prevKept.length;
    const loss = new Float64Array(b1 - b0);
    for (let j = 0; j < loss.length; j++) {
      const at = p + j - 1;
      loss[j] = at >= 0 ? bits(logits, at, feed[p + j]!) : bits(last.logits, last.row, feed[p + j]!);
    }
    // The cache keeps the previous segment's kept bytes, computed over the compressed prefix.
    const accept = new Int32Array(p);
    for (let i = 0; i < p; i++) accept[i] = i;
    session.commitTree(accept);
    if (p > 0) last = { logits, row: p - 1 };
    // Unit scores and the keep decision.
    const lengths = seg.map((u) => u.b1 - u.b0);
    const scores = seg.map((u) => {
      let s = 0;
      for (let b = u.b0; b < u.b1; b++) s += loss[b - b0]!;
      return u.b1 > u.b0 ? s / (u.b1 - u.b0) : 0;
    });
    const keep = keepByScore(lengths, scores, seg.map((u) => u.forced), r.rate * (b1 - b0));
    const keptBytes: number[] = [];
    seg.forEach((u, i) => {
      if (!keep[i]) return;
      keptUnits.push(u);
      for (let b = u.b0; b < u.b1; b++) keptBytes.push(bytes[b]!);
    });
    prevKept = Uint8Array.from(keptBytes);
    r.onProgress?.(b1, bytes.length);
  }
  return keptUnits;
}

/** Drops old cache entries (keeping the first CACHE_SINKS) so that `incoming` more fit under `limit`. */
function makeRoom(session: LmSession, incoming: number, limit: number): void {
  let held = 0;
  for (const len of session.cache.lengths().data) held = Math.max(held, len);
  if (held + incoming <= limit) return;
  const keep = Math.max(CACHE_SINKS, limit - incoming);
  if (keep >= held) return; // a forward longer than the limit: nothing old to drop
  session.compress({ name: 'streamingllm', sinks: CACHE_SINKS }, { keep });
}
