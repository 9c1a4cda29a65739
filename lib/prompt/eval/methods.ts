/**
 * The methods `tokenpress eval prompt` compares: one registry entry per
 * method, and the floors every real method must beat.
 *
 * A method takes a context (and, if it says `usesQuestion`, the question)
 * and a rate, and returns a CompressedPrompt (lib/prompt/types.ts) whose
 * `kept` spans the eval checks the answers against. Adding a method is one
 * entry in PROMPT_EVAL_METHODS, for example:
 *
 *   { name: 'llmlingua2:self-info', kind: 'scorer', description: '...',
 *     compress: (text, o) => compressPrompt(text, { scorer, rate: o.rate, countTokens: o.countTokens }) }
 *
 * The floors (LLMLingua's papers compare against random selection and
 * keeping the start or the end of a prompt) work on words (maximal runs of
 * non-whitespace) and return the kept words joined by one space, as
 * LLMLingua-2 joins its kept words. Each keeps as many words as fit a budget
 * of floor(rate * originalTokens) target tokens, counted on the joined text
 * with the caller's countTokens, then the longest part of the next word
 * that still fits (a prefix, or a suffix when keeping from the end): the
 * budget is never exceeded, and the achieved rate is short of the target by
 * about one token (a word cut in part counts as lost for the answers):
 *
 *   random      a seeded random subset of the words, in text order
 *   first       the first words
 *   last        the last words
 *   first+last  the first words up to half the budget, then the last words
 *               up to the rest
 */
import { typeError, rangeError } from '../../errors.js';
import { checkInteger, checkNumber, closestName } from '../../validate.js';
import { Rng } from '../../kv/eval/workload.js';
import type { CompressedPrompt, CountTokens, Span } from '../types.js';
import { MODEL_PROMPT_EVAL_METHODS } from './model-methods.js';

/** What the eval passes to every method. */
export interface PromptEvalCompressOptions {
  /** Target share of target-LLM tokens to keep, in (0, 1]. */
  rate: number;
  /** Counts target-LLM tokens (the budget's unit). */
  countTokens: CountTokens;
  /** Seed for methods that draw (an integer in [0, 2^32)); differs per context. */
  seed: number;
  /** Aborts a long compression. */
  signal?: AbortSignal;
  /** The question, given only to methods with `usesQuestion`. */
  question?: string;
}

/** floor: a baseline; scorer: token scores + selection rules; extractive: sentence selection; other. */
export type PromptEvalMethodKind = 'floor' | 'scorer' | 'extractive' | 'other';

export interface PromptEvalMethod {
  /** Unique name, as --methods takes it. */
  readonly name: string;
  readonly kind: PromptEvalMethodKind;
  /** One line for the report. */
  readonly description: string;
  /** true: compressed once per question, with `question` set; else once per context, question-agnostic. */
  readonly usesQuestion?: boolean;
  /** Loads models etc. once before timing starts. */
  prepare?(): Promise<void>;
  compress(text: string, opts: PromptEvalCompressOptions): Promise<CompressedPrompt>;
}

/** Target-token budget of a rate: floor(rate * originalTokens), the most a method may keep. */
export function tokenBudget(rate: number, originalTokens: number): number {
  return Math.floor(rate * originalTokens + 1e-9);
}

/** The words of text (maximal runs of non-whitespace), as spans. */
export function wordSpans(text: string): Span[] {
  const out: Span[] = [];
  for (const m of text.matchAll(/\S+/g)) out.push({ start: m.index!, end: m.index! + m[0].length });
  return out;
}

function checkArgs(text: unknown, opts: unknown): PromptEvalCompressOptions {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  if (opts === null || typeof opts !== 'object') throw typeError('opts', 'an options object', opts);
  const o = opts as PromptEvalCompressOptions;
  checkNumber('opts.rate', o.rate);
  if (!(o.rate > 0 && o.rate <= 1)) throw rangeError('opts.rate', 'a rate in (0, 1]', o.rate);
  if (typeof o.countTokens !== 'function') throw typeError('opts.countTokens', 'a function (text) => number of tokens', o.countTokens);
  checkInteger('opts.seed', o.seed, 0, 0xffffffff);
  return o;
}

function countChecked(countTokens: CountTokens, text: string): number {
  const n = countTokens(text);
  if (!Number.isInteger(n) || n < 0) throw rangeError('opts.countTokens(text)', 'a non-negative integer', n);
  return n;
}

/** The text of kept spans (in order) joined by one space. */
function joinSpans(text: string, spans: readonly Span[]): string {
  return spans.map((s) => text.slice(s.start, s.end)).join(' ');
}

/** The largest m in [0, max] with fits(m) (fits(0) assumed; token counts grow with m, nearly monotone). */
function largestFitting(max: number, fits: (m: number) => boolean): number {
  let lo = 0;
  let hi = max;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

const byStart = (a: Span, b: Span): number => a.start - b.start;

/**
 * Adds words to `base` in the priority order `order` while the joined text
 * fits `budget` tokens, then the longest prefix (or, with `fromEnd`, suffix)
 * of the next word that still fits, so the budget is met to about a token.
 * Returns the kept spans in text order.
 */
function fill(
  text: string, words: readonly Span[], order: readonly number[], base: readonly Span[], budget: number,
  count: (text: string) => number, fromEnd: boolean,
): Span[] {
  const withWords = (m: number): Span[] => [...base, ...order.slice(0, m).map((k) => words[k]!)].sort(byStart);
  const fits = (spans: Span[]) => count(joinSpans(text, spans)) <= budget;
  const m = largestFitting(order.length, (x) => fits(withWords(x)));
  const kept = withWords(m);
  if (m === order.length) return kept.map((s) => ({ ...s }));
  const w = words[order[m]!]!;
  const part = (c: number): Span => (fromEnd ? { start: w.end - c, end: w.end } : { start: w.start, end: w.start + c });
  const withPart = (c: number): Span[] => [...kept, part(c)].sort(byStart);
  const c = largestFitting(w.end - w.start - 1, (x) => fits(withPart(x)));
  return (c > 0 ? withPart(c) : kept).map((s) => ({ ...s }));
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** Orders the words and fills the budget: `select` returns the kept spans in text order. */
type FloorSelect = (text: string, words: readonly Span[], budget: number, seed: number, count: (text: string) => number) => Span[];

/** Runs a floor: words, budget, selection, result. */
function runFloor(text: string, opts: PromptEvalCompressOptions, select: FloorSelect): CompressedPrompt {
  const o = checkArgs(text, opts);
  const count = (t: string) => countChecked(o.countTokens, t);
  const originalTokens = count(text);
  const words = wordSpans(text);
  const kept = select(text, words, tokenBudget(o.rate, originalTokens), o.seed, count);
  const out = joinSpans(text, kept);
  const compressedTokens = count(out);
  return { text: out, kept, originalTokens, compressedTokens, rate: originalTokens === 0 ? 1 : compressedTokens / originalTokens };
}

const selectFirst: FloorSelect = (text, words, budget, _seed, count) => fill(text, words, range(0, words.length), [], budget, count, false);
const selectLast: FloorSelect = (text, words, budget, _seed, count) =>
  fill(text, words, range(0, words.length).reverse(), [], budget, count, true);
const selectFirstLast: FloorSelect = (text, words, budget, _seed, count) => {
  const first = fill(text, words, range(0, words.length), [], Math.floor(budget / 2), count, false);
  // The last words, back to the first part's end (a partly kept word there is not taken again).
  const firstEnd = first.length > 0 ? first[first.length - 1]!.end : 0;
  const rest = range(0, words.length).filter((k) => words[k]!.start >= firstEnd).reverse();
  return fill(text, words, rest, first, budget, count, true);
};
const selectRandom: FloorSelect = (text, words, budget, seed, count) => {
  const rng = new Rng(seed);
  const perm = range(0, words.length);
  for (let k = perm.length - 1; k > 0; k--) {
    const j = rng.int(0, k);
    [perm[k], perm[j]] = [perm[j]!, perm[k]!];
  }
  return fill(text, words, perm, [], budget, count, false);
};

/** Keeps a seeded random subset of the words (the last one maybe in part), in text order, within floor(rate * tokens) target tokens. */
export function keepRandomWords(text: string, opts: PromptEvalCompressOptions): CompressedPrompt {
  return runFloor(text, opts, selectRandom);
}
/** Keeps the first words (the last of them maybe in part) within floor(rate * tokens) target tokens. */
export function keepFirstWords(text: string, opts: PromptEvalCompressOptions): CompressedPrompt {
  return runFloor(text, opts, selectFirst);
}
/** Keeps the last words (the first of them maybe in part) within floor(rate * tokens) target tokens. */
export function keepLastWords(text: string, opts: PromptEvalCompressOptions): CompressedPrompt {
  return runFloor(text, opts, selectLast);
}
/** Keeps the first words within half the budget, then the last words within the rest. */
export function keepFirstLastWords(text: string, opts: PromptEvalCompressOptions): CompressedPrompt {
  return runFloor(text, opts, selectFirstLast);
}

const floor = (name: string, description: string, f: (text: string, opts: PromptEvalCompressOptions) => CompressedPrompt): PromptEvalMethod => ({
  name,
  kind: 'floor',
  description,
  compress: async (text, opts) => f(text, opts),
});

/** The floors every real method must beat. */
export const PROMPT_EVAL_FLOORS: readonly PromptEvalMethod[] = [
  floor('random', 'a seeded random subset of the words', keepRandomWords),
  floor('first', 'the first words', keepFirstWords),
  floor('last', 'the last words', keepLastWords),
  floor('first+last', 'the first words to half the budget, then the last words', keepFirstLastWords),
];

/** Every method the eval knows: the floors, then the real methods (model-methods.ts), one entry each. */
export const PROMPT_EVAL_METHODS: readonly PromptEvalMethod[] = [...PROMPT_EVAL_FLOORS, ...MODEL_PROMPT_EVAL_METHODS];

export function promptEvalMethodNames(): string[] {
  return PROMPT_EVAL_METHODS.map((m) => m.name);
}

/** The method called `name`; a TypeError naming the known ones (and the closest) otherwise. */
export function findPromptEvalMethod(name: string): PromptEvalMethod {
  if (typeof name !== 'string') throw typeError('method', 'a method name', name);
  const m = PROMPT_EVAL_METHODS.find((x) => x.name === name);
  if (m) return m;
  const best = closestName(name, promptEvalMethodNames());
  throw new TypeError(`method: unknown method "${name}"${best ? ` (did you mean "${best}"?)` : ''}; known methods: ${promptEvalMethodNames().join(', ')}`);
}
