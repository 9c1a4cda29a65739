/**
 * A TokenScorer from two callbacks (for example an onnxruntime-node token
 * classifier such as LLMLingua-2's, with its own tokenizer), and the checks
 * every scorer's output goes through: spans ordered, non-empty and inside the
 * text; one finite score per token.
 */
import { rangeError, typeError } from '../errors.js';
import { checkOptions } from '../validate.js';
import type { Span, TokenScorer } from './types.js';

/** A scorer's tokens as two offset arrays (UTF-16 code units), checked. */
export interface TokenOffsets {
  starts: Int32Array;
  ends: Int32Array;
}

/**
 * Checks a tokenize() result against its text: an array of {start, end}
 * integer spans with 0 <= start < end <= text.length, in order and not
 * overlapping (start >= the previous end). Returns them as offset arrays.
 * `what` names the producer in the errors (e.g. 'scorer "x" tokenize()').
 */
export function checkTokenSpans(what: string, spans: unknown, text: string): TokenOffsets {
  if (!Array.isArray(spans)) throw typeError(`${what} result`, 'an array of {start, end} spans', spans);
  const n = spans.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  let prevEnd = 0;
  for (let i = 0; i < n; i++) {
    const sp = spans[i] as Partial<Span> | null | undefined;
    if (sp === null || typeof sp !== 'object') throw typeError(`${what} result[${i}]`, 'a {start, end} span', sp);
    const { start, end } = sp;
    if (typeof start !== 'number' || !Number.isInteger(start)) throw typeError(`${what} result[${i}].start`, 'an integer offset', start);
    if (typeof end !== 'number' || !Number.isInteger(end)) throw typeError(`${what} result[${i}].end`, 'an integer offset', end);
    if (start < prevEnd) {
      throw rangeError(`${what} result[${i}].start`, `an offset >= ${prevEnd} (spans in order, not overlapping)`, start);
    }
    if (!(end > start && end <= text.length)) {
      throw rangeError(`${what} result[${i}].end`, `an offset in (${start}, ${text.length}] (a non-empty span inside the text)`, end);
    }
    starts[i] = start;
    ends[i] = end;
    prevEnd = end;
  }
  return { starts, ends };
}

/**
 * Checks a score() result: array-like of exactly `n` finite numbers. Copies
 * them into out[offset .. offset + n).
 */
export function checkTokenScores(what: string, scores: unknown, n: number, out: Float64Array, offset: number): void {
  if (scores === null || typeof scores !== 'object' || typeof (scores as ArrayLike<number>).length !== 'number') {
    throw typeError(`${what} result`, `an array of ${n} numbers`, scores);
  }
  const a = scores as ArrayLike<unknown>;
  if (a.length !== n) throw rangeError(`${what} result.length`, `${n} (one score per token)`, a.length);
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (typeof v !== 'number') throw typeError(`${what} result[${i}]`, 'a number', v);
    if (!Number.isFinite(v)) throw rangeError(`${what} result[${i}]`, 'a finite number', v);
    out[offset + i] = v;
  }
}

/** What callbackScorer takes. */
export interface CallbackScorerOptions {
  /** The scorer's tokens of `text`: spans of UTF-16 offsets, in order, non-overlapping, non-empty. */
  tokenize: (text: string) => Span[] | Promise<Span[]>;
  /** One keep score per token (higher = keep; a classifier's P(keep) in [0, 1], or any finite number). */
  score: (text: string, tokens: Span[]) => ArrayLike<number> | Promise<ArrayLike<number>>;
  /** The most tokens one score call takes (LLMLingua-2: 510); undefined for no limit. */
  maxTokens?: number;
  /** A short name for reports (default 'callback'). */
  name?: string;
}

const KNOWN = ['tokenize', 'score', 'maxTokens', 'name'] as const;

/**
 * A TokenScorer from callbacks; each call's output is checked (see
 * checkTokenSpans / checkTokenScores) and a bad one throws a TypeError or
 * RangeError naming the scorer, the callback and the offending element.
 */
export function callbackScorer(options: CallbackScorerOptions): TokenScorer {
  const o = checkOptions('callbackScorer options', options, KNOWN);
  if (options === undefined) throw typeError('callbackScorer options', 'an options object with tokenize and score', options);
  if (typeof o.tokenize !== 'function') throw typeError('tokenize', 'a function (text) => Span[]', o.tokenize);
  if (typeof o.score !== 'function') throw typeError('score', 'a function (text, tokens) => number[]', o.score);
  let maxTokens: number | undefined;
  if (o.maxTokens !== undefined) {
    if (typeof o.maxTokens !== 'number') throw typeError('maxTokens', 'an integer >= 1', o.maxTokens);
    if (!Number.isInteger(o.maxTokens) || o.maxTokens < 1) throw rangeError('maxTokens', 'an integer >= 1', o.maxTokens);
    maxTokens = o.maxTokens;
  }
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0)) throw typeError('name', 'a non-empty string', o.name);
  const name = (o.name as string | undefined) ?? 'callback';
  const tokenize = o.tokenize as CallbackScorerOptions['tokenize'];
  const score = o.score as CallbackScorerOptions['score'];
  return {
    name,
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    async tokenize(text: string): Promise<Span[]> {
      if (typeof text !== 'string') throw typeError('text', 'a string', text);
      const spans = await tokenize(text);
      checkTokenSpans(`scorer "${name}" tokenize()`, spans, text);
      return spans;
    },
    async score(text: string, tokens: Span[]): Promise<ArrayLike<number>> {
      if (typeof text !== 'string') throw typeError('text', 'a string', text);
      checkTokenSpans('tokens', tokens, text);
      if (maxTokens !== undefined && tokens.length > maxTokens) {
        throw rangeError('tokens.length', `at most maxTokens = ${maxTokens}`, tokens.length);
      }
      const scores = await score(text, tokens);
      const copy = new Float64Array(tokens.length);
      checkTokenScores(`scorer "${name}" score()`, scores, tokens.length, copy, 0);
      return copy;
    },
  };
}
