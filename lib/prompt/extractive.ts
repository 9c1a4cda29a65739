// Extractive selection for retrieval-augmented generation: split retrieved
// documents into sentences, score each against the query, keep the best.
//
// Follows, without their trained models (none are available offline):
// - RECOMP extractive (carriex/recomp run_extractive_compressor.py; the
//   top-n selection of ThisIsHwang/EXIT compressors/baselines/recomp_extr/
//   compressor.py): the candidate sentences of all documents are scored
//   together, the top k kept (RECOMP returns them by score; we keep document
//   order unless keepOrder is false), and an empty selection is a valid
//   result (RECOMP's "selective augmentation": prepend nothing).
// - EXIT (ThisIsHwang/EXIT compressors/baselines/exit/core.py
//   assemble_compression): keep every sentence with P(yes) >= threshold
//   (0.5), in source order; sentences of one document joined by " ",
//   documents by "\n\n", documents with nothing kept left out.
import { rangeError, typeError } from '../errors.js';
import { checkBoolean, checkInteger, checkNumber, checkOptions } from '../validate.js';
import { splitSentences } from './sentences.js';
import { checkScorer, type SentenceCandidate, type SentenceScorer } from './sentence-scorers.js';
import type { CompressedPrompt, CountTokens, Span } from './types.js';

/** Between kept sentences of one document (EXIT, RECOMP). */
export const SENTENCE_SEPARATOR = ' ';
/** Between documents, in the output and in the joined input that `kept` offsets refer to (EXIT). */
export const DOCUMENT_SEPARATOR = '\n\n';

export interface SelectSentencesOptions {
  /** 'bm25' (default) or a SentenceScorer (embeddingScorer, yesNoScorer, your own). */
  scorer?: 'bm25' | SentenceScorer;
  /** Keep at most this many sentences, the highest scored (RECOMP). An integer >= 1. */
  topK?: number;
  /** Keep only sentences with score >= threshold (EXIT: P(yes) >= 0.5). */
  threshold?: number;
  /** Keep only sentences with score > minScore (strict: minScore 0 drops BM25 sentences sharing no term with the query). */
  minScore?: number;
  /** true (default): output in document order; false: in score order, joined by " ". */
  keepOrder?: boolean;
  /** Target-LLM token counter (default: cl100k_base from gpt-tokenizer). */
  countTokens?: CountTokens;
  /** Keep, best first, only sentences that fit this many target-LLM tokens in the output. An integer >= 0. */
  budgetTokens?: number;
  /** Locale for sentence splitting (default 'en'). */
  locale?: string;
}

/** One sentence of the input with its score. */
export interface ScoredSentence {
  /** Index of its document. */
  doc: number;
  /** Its span in documents[doc] (trimmed, see splitSentences). */
  span: Span;
  score: number;
  kept: boolean;
}

export interface SelectedSentences extends CompressedPrompt {
  /** Every sentence of every document, in document order. */
  sentences: ScoredSentence[];
}

const OPTION_KEYS = ['scorer', 'topK', 'threshold', 'minScore', 'keepOrder', 'countTokens', 'budgetTokens', 'locale'] as const;

let cl100k: CountTokens | undefined;
/** gpt-tokenizer's cl100k_base counter (LLMLingua-2's target tokenizer), loaded on first use. */
export async function defaultCountTokens(): Promise<CountTokens> {
  if (cl100k === undefined) {
    const mod = await import('gpt-tokenizer/encoding/cl100k_base');
    cl100k = (text: string) => mod.countTokens(text);
  }
  return cl100k;
}

/** Checks a countTokens option and wraps it so every result is checked too. */
export async function resolveCountTokens(arg: string, value: unknown): Promise<CountTokens> {
  if (value === undefined) return defaultCountTokens();
  if (typeof value !== 'function') throw typeError(arg, 'a function (text: string) => number', value);
  const fn = value as CountTokens;
  return (text: string) => {
    const n: unknown = fn(text);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw rangeError(`${arg}() result`, 'an integer >= 0', n);
    return n;
  };
}

function checkDocuments(documents: unknown): string[] {
  if (typeof documents === 'string') return [documents];
  if (!Array.isArray(documents)) throw typeError('documents', 'a string or an array of strings', documents);
  documents.forEach((d, i) => {
    if (typeof d !== 'string') throw typeError(`documents[${i}]`, 'a string', d);
  });
  return documents.slice() as string[];
}

function checkScores(scores: unknown, n: number, name: string): ArrayLike<number> {
  const what = `scorer "${name}" result`;
  if (!Array.isArray(scores) && !(ArrayBuffer.isView(scores) && !(scores instanceof DataView))) {
    throw typeError(what, `an array of ${n} numbers`, scores);
  }
  const s = scores as ArrayLike<unknown>;
  if (s.length !== n) throw rangeError(what, `${n} scores (one per sentence)`, scores);
  for (let i = 0; i < n; i++) {
    const v = s[i];
    if (typeof v !== 'number' || Number.isNaN(v)) throw rangeError(`${what}[${i}]`, 'a number (not NaN)', v);
  }
  return s as ArrayLike<number>;
}

/**
 * Splits each document into sentences, scores every sentence against `query`
 * and keeps the best: those with score >= threshold and > minScore, then the
 * topK highest (ties: earlier sentence first), then, best first, those that
 * still fit budgetTokens (a sentence that does not fit is skipped and the
 * next one tried). With none of topK, threshold and budgetTokens, the
 * scorer's defaultThreshold applies (yesNoScorer: 0.5); BM25 and embedding
 * scorers have none, so one of the three is required.
 *
 * Output: kept sentences of one document joined by " ", documents joined by
 * "\n\n" (keepOrder false: all in score order joined by " "). `kept` holds
 * the kept sentences' spans as offsets into the input string, or, for an
 * array, into documents.join("\n\n"). An empty selection is a valid result:
 * text "", kept [], compressedTokens countTokens(""), rate 0 for a non-empty
 * input (RECOMP's selective augmentation: prepend nothing).
 */
export async function selectSentences(query: string, documents: string | string[], options?: SelectSentencesOptions): Promise<SelectedSentences> {
  if (typeof query !== 'string') throw typeError('query', 'a string', query);
  if (query.trim() === '') throw rangeError('query', 'a non-empty query', query);
  const docs = checkDocuments(documents);
  const opts = checkOptions('options', options, OPTION_KEYS);
  const scorer = checkScorer('options.scorer', opts.scorer);
  const topK = opts.topK === undefined ? undefined : checkInteger('options.topK', opts.topK, 1);
  const threshold0 = opts.threshold === undefined ? undefined : checkNumber('options.threshold', opts.threshold);
  const minScore = opts.minScore === undefined ? undefined : checkNumber('options.minScore', opts.minScore);
  const keepOrder = checkBoolean('options.keepOrder', opts.keepOrder, true);
  const budget = opts.budgetTokens === undefined ? undefined : checkInteger('options.budgetTokens', opts.budgetTokens, 0);
  const locale = opts.locale;
  if (locale !== undefined) splitSentences('', { locale: locale as string }); // checks it before any work
  if (opts.countTokens !== undefined && typeof opts.countTokens !== 'function') {
    throw typeError('options.countTokens', 'a function (text: string) => number', opts.countTokens);
  }
  let threshold = threshold0;
  if (topK === undefined && threshold === undefined && budget === undefined) {
    threshold = scorer.defaultThreshold;
    if (threshold === undefined) {
      throw typeError('options', `topK, threshold or budgetTokens (scorer "${scorer.name}" has no default threshold)`, opts);
    }
  }
  const countTokens = await resolveCountTokens('options.countTokens', opts.countTokens);

  // Sentences of every document, with the document as EXIT's context.
  const candidates: SentenceCandidate[] = [];
  const sentences: ScoredSentence[] = [];
  docs.forEach((doc, d) => {
    const context = doc.trim();
    for (const span of splitSentences(doc, { locale: locale as string | undefined })) {
      candidates.push({ text: doc.slice(span.start, span.end), doc: d, context });
      sentences.push({ doc: d, span, score: 0, kept: false });
    }
  });
  const joined = docs.join(DOCUMENT_SEPARATOR);
  const originalTokens = countTokens(joined);

  if (candidates.length > 0) {
    const scores = checkScores(await scorer.score(query, candidates), candidates.length, scorer.name);
    for (let i = 0; i < sentences.length; i++) sentences[i]!.score = scores[i]!;
  }

  // Rank the eligible sentences, best first, ties by position.
  let ranked = sentences
    .map((_, i) => i)
    .filter((i) => {
      const s = sentences[i]!.score;
      return (threshold === undefined || s >= threshold) && (minScore === undefined || s > minScore);
    })
    .sort((a, b) => sentences[b]!.score - sentences[a]!.score || a - b);
  if (topK !== undefined) ranked = ranked.slice(0, topK);

  const render = (chosen: number[]): string => {
    const ordered = keepOrder ? [...chosen].sort((a, b) => a - b) : chosen;
    if (!keepOrder) return ordered.map((i) => candidates[i]!.text).join(SENTENCE_SEPARATOR);
    const parts: string[] = [];
    let lastDoc = -1;
    for (const i of ordered) {
      const c = candidates[i]!;
      if (c.doc !== lastDoc) parts.push(c.text);
      else parts[parts.length - 1] += SENTENCE_SEPARATOR + c.text;
      lastDoc = c.doc;
    }
    return parts.join(DOCUMENT_SEPARATOR);
  };

  let chosen = ranked;
  if (budget !== undefined) {
    // Greedy on each sentence's own count, then exact on the rendered text
    // (joining can change token counts): drop the lowest ranked until it fits.
    chosen = [];
    let used = 0;
    for (const i of ranked) {
      const cost = countTokens(candidates[i]!.text);
      if (used + cost <= budget) {
        chosen.push(i);
        used += cost;
      }
    }
    while (chosen.length > 0 && countTokens(render(chosen)) > budget) chosen.pop();
  }

  for (const i of chosen) sentences[i]!.kept = true;
  const text = render(chosen);
  const offsets: number[] = [];
  let base = 0;
  for (const doc of docs) {
    offsets.push(base);
    base += doc.length + DOCUMENT_SEPARATOR.length;
  }
  const kept = sentences
    .filter((s) => s.kept)
    .map((s) => ({ start: offsets[s.doc]! + s.span.start, end: offsets[s.doc]! + s.span.end }));
  const compressedTokens = countTokens(text);
  return {
    text,
    kept,
    originalTokens,
    compressedTokens,
    rate: originalTokens === 0 ? 1 : compressedTokens / originalTokens,
    sentences,
  };
}
