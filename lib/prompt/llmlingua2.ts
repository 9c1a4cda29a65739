/**
 * compressPrompt: LLMLingua-2's compression rules with any token scorer.
 * Follows microsoft/LLMLingua `PromptCompressor.compress_prompt_llmlingua2`
 * and its helpers `__chunk_context` (chunk.ts), `__merge_token_to_word` and
 * `__token_prob_to_word_prob` (words.ts), `__compress` (select.ts) and
 * `__get_context_prob` (context scores here), in llmlingua/prompt_compressor.py.
 * The differences are listed in docs/prompt.md.
 *
 * Flow: count the target-LLM tokens of every context; tokenize each context
 * with the scorer; chunk; score each chunk; group tokens into words; with
 * several contexts and useContextLevelFilter, keep the contexts whose mean
 * word score reaches percentile(scores, trunc(100 * (1 - contextRate))); in
 * each kept context keep the words above the per-chunk threshold; join the
 * kept contexts with "\n\n".
 */
import { rangeError, typeError } from '../errors.js';
import { checkOptions } from '../validate.js';
import { checkTokenScores, checkTokenSpans } from './callback-scorer.js';
import { chunkBoundaries } from './chunk.js';
import { percentile } from './percentile.js';
import { fillToBudget, keptText, Scratch, selectWords } from './select.js';
import { cachedCounter, checkCount, cl100kCounter, SpanCounter } from './tokenizers.js';
import { findForceOccurrences, groupWords, type WordProbMode, type WordTable } from './words.js';
import type { CompressedPrompt, CountTokens, Span, TokenScorer } from './types.js';

/** The most force tokens (official: max_force_token = 100). */
export const MAX_FORCE_TOKENS = 100;

/** Options of compressPrompt. */
export interface CompressPromptOptions {
  /** Gives the tokens and their keep scores (required). */
  scorer: TokenScorer;
  /** Share of target tokens to keep, in (0, 1] (default 0.5, as the official code). Not with targetTokens. */
  rate?: number;
  /** Target-LLM token budget (integer >= 1): rate = min(targetTokens / originalTokens, 1). Not with rate. */
  targetTokens?: number;
  /** Counts target-LLM tokens (default cl100kCounter: tiktoken gpt-3.5-turbo, as LLMLingua-2). */
  countTokens?: CountTokens;
  /** Strings always kept (at most 100), e.g. ['\n', '?', '.']. */
  forceTokens?: string[];
  /** Keep every token that holds a decimal digit (default false). */
  forceReserveDigit?: boolean;
  /** Drop a force token repeated with nothing kept in between (default false). */
  dropConsecutive?: boolean;
  /** Strings a chunk is cut after (default ['.', '\n']). */
  chunkEndTokens?: string[];
  /** Word score from its token scores: 'mean' (default) or 'first'. */
  wordProb?: WordProbMode;
  /** With several contexts: drop the lowest-scoring contexts first (default false). */
  useContextLevelFilter?: boolean;
  /** Share of contexts kept by that filter, in (0, 1] (default: (rate + 1) / 2, or 2 x targetTokens / originalTokens). */
  contextRate?: number;
  /** Context indices the context-level filter always keeps. */
  forceContexts?: number[];
  /** Run word-level selection (default true; false keeps kept contexts whole). */
  useTokenLevelFilter?: boolean;
  /**
   * After the official rule, add the best-scoring dropped words while the
   * context stays within floor(rate x its tokens) (default false: the
   * official rule alone, which keeps about 1 point under the rate, and a
   * whole unit less with long units such as sentences).
   */
  fillBudget?: boolean;
  /** Aborts between scorer calls (the promise rejects with signal.reason). */
  signal?: AbortSignal;
  /** Called after each scored chunk: chunks done, chunks in all. */
  onProgress?: (done: number, total: number) => void;
}

/** A kept span of one context: offsets into `contexts[context]` (0 for a string input). */
export interface ContextSpan extends Span {
  context: number;
}

/** What compressPrompt returns. */
export interface LLMLingua2Result extends CompressedPrompt {
  /** Kept spans, in order: per kept context, runs of consecutive kept words. */
  kept: ContextSpan[];
  /** The compressed text of each kept context (`text` is these joined by "\n\n"). */
  texts: string[];
  /** Indices of the contexts the context-level filter kept (all when it is off). */
  keptContexts: number[];
  /** Words scored (0 when no scoring ran: rate 1 without the context-level filter). */
  words: number;
  /** Words kept, over the kept contexts (all words of a context kept whole). */
  keptWords: number;
  /** Scorer calls (chunks scored). */
  chunks: number;
  /** The word-level rate used (after targetTokens and the context-level filter). */
  tokenRate: number;
  /** The scorer's name. */
  scorer: string;
}

const KNOWN: readonly string[] = [
  'scorer', 'rate', 'targetTokens', 'countTokens', 'forceTokens', 'forceReserveDigit', 'dropConsecutive',
  'chunkEndTokens', 'wordProb', 'useContextLevelFilter', 'contextRate', 'forceContexts', 'useTokenLevelFilter',
  'fillBudget', 'signal', 'onProgress',
];

interface Checked {
  contexts: string[];
  scorer: TokenScorer;
  maxTokens: number;
  rate: number | undefined;
  targetTokens: number | undefined;
  count: CountTokens;
  forceTokens: string[];
  reserveDigit: boolean;
  dropConsecutive: boolean;
  chunkEndTokens: string[];
  wordProb: WordProbMode;
  contextFilter: boolean;
  contextRate: number | undefined;
  forceContexts: Set<number>;
  tokenLevel: boolean;
  fillBudget: boolean;
  signal: AbortSignal | undefined;
  onProgress: ((done: number, total: number) => void) | undefined;
}

function checkStrings(arg: string, v: unknown, max: number): string[] {
  if (!Array.isArray(v)) throw typeError(arg, 'an array of strings', v);
  if (v.length > max) throw rangeError(`${arg}.length`, `at most ${max}`, v.length);
  v.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0) throw typeError(`${arg}[${i}]`, 'a non-empty string', s);
  });
  return [...(v as string[])];
}

function checkRate(arg: string, v: unknown): number {
  if (typeof v !== 'number') throw typeError(arg, 'a number in (0, 1]', v);
  if (!(v > 0 && v <= 1)) throw rangeError(arg, 'a number in (0, 1]', v);
  return v;
}

function checkText(text: unknown): string[] {
  if (typeof text === 'string') return [text];
  if (!Array.isArray(text)) throw typeError('text', 'a string or an array of strings', text);
  if (text.length === 0) throw rangeError('text', 'a string or a non-empty array of strings', text);
  text.forEach((s, i) => {
    if (typeof s !== 'string') throw typeError(`text[${i}]`, 'a string', s);
  });
  return [...(text as string[])];
}

/** Options of compressScored: those of compressPrompt that act after scoring. */
export type CompressScoredOptions = Omit<CompressPromptOptions, 'scorer' | 'chunkEndTokens' | 'signal' | 'onProgress'>;

const SCORED_KNOWN = KNOWN.filter((k) => k !== 'scorer' && k !== 'chunkEndTokens' && k !== 'signal' && k !== 'onProgress');
const NO_SCORER: TokenScorer = { name: '', tokenize: () => [], score: () => [] };

/** Checks compressPrompt's arguments (scored: compressScored's, where the scorer already ran). */
function checkArgs(contexts: string[], options: unknown, scored = false): Checked {
  if (options === undefined && !scored) throw typeError('options', 'an options object with a scorer', options);
  const o = checkOptions('options', options, scored ? SCORED_KNOWN : KNOWN);
  const sc = (scored ? NO_SCORER : o.scorer) as Partial<TokenScorer> | undefined;
  if (sc === null || typeof sc !== 'object') throw typeError('options.scorer', 'a TokenScorer {name, tokenize, score}', sc);
  if (typeof sc.tokenize !== 'function' || typeof sc.score !== 'function') {
    throw typeError('options.scorer', 'a TokenScorer with tokenize and score functions', sc);
  }
  if (typeof sc.name !== 'string') throw typeError('options.scorer.name', 'a string', sc.name);
  let maxTokens = Infinity;
  if (sc.maxTokens !== undefined) {
    if (typeof sc.maxTokens !== 'number' || !Number.isInteger(sc.maxTokens) || sc.maxTokens < 1) {
      throw rangeError('options.scorer.maxTokens', 'an integer >= 1 or undefined', sc.maxTokens);
    }
    maxTokens = sc.maxTokens;
  }
  if (o.rate !== undefined && o.targetTokens !== undefined) {
    throw new TypeError(`options: expected rate or targetTokens, not both; received rate ${String(o.rate)} and targetTokens ${String(o.targetTokens)}`);
  }
  const rate = o.rate === undefined ? undefined : checkRate('options.rate', o.rate);
  let targetTokens: number | undefined;
  if (o.targetTokens !== undefined) {
    if (typeof o.targetTokens !== 'number') throw typeError('options.targetTokens', 'an integer >= 1', o.targetTokens);
    if (!Number.isSafeInteger(o.targetTokens) || o.targetTokens < 1) throw rangeError('options.targetTokens', 'an integer >= 1', o.targetTokens);
    targetTokens = o.targetTokens;
  }
  if (o.countTokens !== undefined && typeof o.countTokens !== 'function') throw typeError('options.countTokens', 'a function (text) => number', o.countTokens);
  const forceTokens = o.forceTokens === undefined ? [] : checkStrings('options.forceTokens', o.forceTokens, MAX_FORCE_TOKENS);
  const chunkEndTokens = o.chunkEndTokens === undefined ? ['.', '\n'] : checkStrings('options.chunkEndTokens', o.chunkEndTokens, 1000);
  for (const k of ['forceReserveDigit', 'dropConsecutive', 'useContextLevelFilter', 'useTokenLevelFilter', 'fillBudget'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw typeError(`options.${k}`, 'a boolean', o[k]);
  }
  if (o.wordProb !== undefined && o.wordProb !== 'mean' && o.wordProb !== 'first') throw typeError('options.wordProb', "'mean' or 'first'", o.wordProb);
  const contextRate = o.contextRate === undefined ? undefined : checkRate('options.contextRate', o.contextRate);
  const forceContexts = new Set<number>();
  if (o.forceContexts !== undefined) {
    if (!Array.isArray(o.forceContexts)) throw typeError('options.forceContexts', 'an array of context indices', o.forceContexts);
    o.forceContexts.forEach((i: unknown, k: number) => {
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= contexts.length) {
        throw rangeError(`options.forceContexts[${k}]`, `a context index in [0, ${contexts.length - 1}]`, i);
      }
      forceContexts.add(i);
    });
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw typeError('options.signal', 'an AbortSignal', o.signal);
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw typeError('options.onProgress', 'a function', o.onProgress);
  return {
    contexts,
    scorer: sc as TokenScorer,
    maxTokens,
    rate,
    targetTokens,
    count: (o.countTokens as CountTokens | undefined) ?? cl100kCounter,
    forceTokens,
    reserveDigit: o.forceReserveDigit === true,
    dropConsecutive: o.dropConsecutive === true,
    chunkEndTokens,
    wordProb: (o.wordProb as WordProbMode | undefined) ?? 'mean',
    contextFilter: o.useContextLevelFilter === true && contexts.length > 1,
    contextRate,
    forceContexts,
    tokenLevel: o.useTokenLevelFilter !== false,
    fillBudget: o.fillBudget === true,
    signal: o.signal as AbortSignal | undefined,
    onProgress: o.onProgress as Checked['onProgress'],
  };
}

/** One context's scorer tokens, chunk boundaries (token indices) and scores. */
interface ScoredContext {
  starts: Int32Array;
  ends: Int32Array;
  scores: Float64Array;
  bounds: Int32Array;
  chunks: number;
}

/** The scorer's output for some contexts (from scorePrompt): compress it at any rate with compressScored. */
export interface ScoredPrompt {
  readonly contexts: readonly string[];
  /** The scorer's name. */
  readonly scorer: string;
  /** Scorer calls made. */
  readonly chunks: number;
}

const SCORED = new WeakMap<ScoredPrompt, ScoredContext[]>();

/** Tokenizes every context, cuts it into chunks, then scores each chunk (in order, one scorer call at a time). */
async function scoreContexts(c: Checked): Promise<ScoredContext[]> {
  const tok: { starts: Int32Array; ends: Int32Array; bounds: Int32Array }[] = [];
  for (const text of c.contexts) {
    c.signal?.throwIfAborted();
    const spans = await c.scorer.tokenize(text);
    const { starts, ends } = checkTokenSpans(`scorer "${c.scorer.name}" tokenize()`, spans, text);
    tok.push({ starts, ends, bounds: chunkBoundaries(text, starts, ends, starts.length, c.maxTokens, c.chunkEndTokens) });
  }
  let total = 0;
  for (const t of tok) for (let k = 0; k + 1 < t.bounds.length; k++) if (t.bounds[k + 1]! > t.bounds[k]!) total++;
  let done = 0;
  const out: ScoredContext[] = [];
  for (let ci = 0; ci < c.contexts.length; ci++) {
    const text = c.contexts[ci]!;
    const { starts, ends, bounds } = tok[ci]!;
    const n = starts.length;
    const scores = new Float64Array(n);
    let chunks = 0;
    for (let k = 0; k + 1 < bounds.length; k++) {
      const t0 = bounds[k]!;
      const t1 = bounds[k + 1]!;
      if (t1 === t0) continue;
      c.signal?.throwIfAborted();
      // The chunk's text and its tokens relative to it (the whole context and its own spans when it is one chunk).
      const whole = t0 === 0 && t1 === n;
      const base = whole ? 0 : starts[t0]!;
      const chunkText = whole ? text : text.slice(base, ends[t1 - 1]!);
      const spans: Span[] = new Array(t1 - t0);
      for (let i = t0; i < t1; i++) spans[i - t0] = { start: starts[i]! - base, end: ends[i]! - base };
      const s = await c.scorer.score(chunkText, spans);
      checkTokenScores(`scorer "${c.scorer.name}" score()`, s, t1 - t0, scores, t0);
      chunks++;
      c.onProgress?.(++done, total);
    }
    out.push({ starts, ends, scores, bounds, chunks });
  }
  return out;
}

/** Mean raw word score of a context (its words without a scorer token left out); NaN when it has none. */
function contextScore(t: WordTable): number {
  let sum = 0, n = 0;
  for (let w = 0; w < t.n; w++) {
    const v = t.raw[w]!;
    if (v === v) {
      sum += v;
      n++;
    }
  }
  return n > 0 ? sum / n : NaN;
}

/**
 * Scores a prompt once (tokenize, chunk, one scorer call per chunk) for
 * compressScored, which then compresses it at any rate without the scorer.
 * options: scorer (required), chunkEndTokens, signal, onProgress, as in
 * compressPrompt.
 */
export async function scorePrompt(
  text: string | string[],
  options: Pick<CompressPromptOptions, 'scorer' | 'chunkEndTokens' | 'signal' | 'onProgress'>,
): Promise<ScoredPrompt> {
  const contexts = checkText(text);
  const o = checkOptions('options', options, ['scorer', 'chunkEndTokens', 'signal', 'onProgress']);
  const c = checkArgs(contexts, { ...o, rate: 1 });
  const scored = await scoreContexts(c);
  const result: ScoredPrompt = Object.freeze({ contexts: Object.freeze([...contexts]), scorer: c.scorer.name, chunks: scored.reduce((a, x) => a + x.chunks, 0) });
  SCORED.set(result, scored);
  return result;
}

/**
 * compressPrompt's selection on a prompt scorePrompt already scored:
 * synchronous, no scorer call. Same options as compressPrompt, less scorer,
 * chunkEndTokens, signal and onProgress.
 */
export function compressScored(scored: ScoredPrompt, options: CompressScoredOptions = {}): LLMLingua2Result {
  const data = SCORED.get(scored);
  if (data === undefined) throw typeError('scored', 'a ScoredPrompt from scorePrompt()', scored);
  const c = checkArgs([...scored.contexts], options, true);
  return finish(c, data, scored.scorer);
}

/**
 * Compresses a prompt (one string, or several contexts) with LLMLingua-2's
 * rules: the words whose scores rank above the rate's percentile, weighted by
 * target-LLM tokens, are kept. Resolves to the compressed text, the kept
 * spans (offsets into the input; `context` says which string) and the token
 * counts. Throws TypeError / RangeError on bad arguments before any scorer
 * call, and on a scorer output that breaks the TokenScorer contract.
 */
export async function compressPrompt(text: string | string[], options: CompressPromptOptions): Promise<LLMLingua2Result> {
  const c = checkArgs(checkText(text), options);
  // Rate 1 without the context-level filter needs no scores (official: reduce_rate <= 0 runs no model).
  const rate0 = c.targetTokens === undefined ? c.rate ?? 0.5 : 0;
  const skip = !c.contextFilter && (!c.tokenLevel || rate0 >= 1);
  const data = skip ? undefined : await scoreContexts(c);
  return finish(c, data, c.scorer.name);
}

/** Everything after scoring: counts, context-level filter, word selection, the kept text. */
function finish(c: Checked, data: ScoredContext[] | undefined, scorerName: string): LLMLingua2Result {
  const countWord = cachedCounter(c.count);
  const countText = (s: string): number => checkCount('countTokens() result', c.count(s));
  const origCounts = c.contexts.map(countText);
  const originalTokens = origCounts.reduce((a, b) => a + b, 0);
  let rate = c.rate ?? 0.5;
  if (c.targetTokens !== undefined) rate = originalTokens > 0 ? Math.min(c.targetTokens / originalTokens, 1) : 1;

  const needWords = c.contextFilter || (c.tokenLevel && rate < 1);
  const tables = needWords && data ? data.map((d, ci) => {
    const text = c.contexts[ci]!;
    const occ = findForceOccurrences(text, c.forceTokens);
    return groupWords(text, d.starts, d.ends, d.scores, d.starts.length, d.bounds, occ.start, occ.end, c.reserveDigit, c.wordProb);
  }) : undefined;

  // Context-level filter (official: only with several contexts).
  let keptContexts = c.contexts.map((_, i) => i);
  if (c.contextFilter && tables) {
    let contextRate = c.contextRate;
    if (contextRate === undefined) {
      if (c.targetTokens !== undefined) {
        const t = c.tokenLevel ? c.targetTokens * 2 : c.targetTokens;
        contextRate = originalTokens > 0 ? Math.min(t / originalTokens, 1) : 1;
      } else contextRate = rate < 1 && c.tokenLevel ? (rate + 1) / 2 : rate;
    }
    const scores = tables.map(contextScore);
    const valid = scores.filter((s) => s === s);
    const threshold = valid.length > 0 ? percentile(valid, Math.trunc(100 * (1 - contextRate))) : Infinity;
    keptContexts = keptContexts.filter((i) => scores[i]! >= threshold || c.forceContexts.has(i));
    if (c.targetTokens !== undefined) {
      const reserved = keptContexts.reduce((a, i) => a + origCounts[i]!, 0);
      rate = reserved > 0 ? Math.min(c.targetTokens / reserved, 1) : 1;
    }
  }

  const reduce = c.tokenLevel ? Math.max(0, 1 - rate) : 0;
  const forceSet = new Set(c.forceTokens);
  const scratch = new Scratch();
  const texts: string[] = [];
  const kept: ContextSpan[] = [];
  let words = 0, keptWords = 0;
  const chunks = data ? data.reduce((a, d) => a + d.chunks, 0) : 0;
  if (tables) for (const t of tables) words += t.n;
  for (const ci of keptContexts) {
    const ctx = c.contexts[ci]!;
    const table = tables?.[ci];
    if (reduce <= 0 || !table) {
      // Rate 1: the context verbatim (official: the chunks joined, no model call).
      texts.push(ctx);
      if (ctx.length > 0) kept.push({ context: ci, start: 0, end: ctx.length });
      keptWords += table?.n ?? 0;
      continue;
    }
    const spans = new SpanCounter(ctx, c.count);
    const keep = selectWords(ctx, table, { reduce, countSpan: (s, e) => spans.count(s, e), dropConsecutive: c.dropConsecutive, forceSet, scratch });
    if (c.fillBudget) fillToBudget(ctx, table, keep, Math.floor(rate * origCounts[ci]! + 1e-9), countWord, countText);
    for (let w = 0; w < keep.length; w++) keptWords += keep[w]!;
    texts.push(keptText(ctx, table, keep, (start, end): ContextSpan => ({ context: ci, start, end }), kept).text);
  }
  const out = texts.join('\n\n');
  const compressedTokens = countText(out);
  return {
    text: out,
    kept,
    originalTokens,
    compressedTokens,
    rate: originalTokens > 0 ? compressedTokens / originalTokens : 1,
    texts,
    keptContexts,
    words,
    keptWords,
    chunks,
    tokenRate: rate,
    scorer: scorerName,
  };
}
