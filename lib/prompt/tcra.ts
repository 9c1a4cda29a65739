// TCRA-LLM semantic compression (Liu et al., EMNLP Industry 2023, "TCRA-LLM:
// Token Compression Retrieval Augmented Large Language Model for Inference
// Cost Reduction"), from the paper only: no official code was read (none was
// found). The paper removes, one at a time, the words whose removal perturbs
// the sentence embedding least, until the embedding moves too far.
//
// Our rules (where the paper is not specific, these are our choices):
// - text -> sentences (splitSentences) -> words (maximal non-whitespace runs,
//   so punctuation stays on its word);
// - each step tries deleting every remaining word of a sentence; a candidate's
//   similarity is cos(embed(candidate), embed(ORIGINAL sentence)); the
//   deletion with the highest similarity over all sentences is applied (ties:
//   earlier sentence, then earlier word);
// - stop when the length target is reached, or the best next deletion would
//   bring its sentence's similarity below similarityFloor, or every sentence
//   is down to one word (a sentence is never deleted whole);
// - one embed call per step: the candidates of the sentence changed in the
//   previous step (the others' candidates have not changed); the first step
//   embeds the original sentences, then all sentences' candidates.
// Rendering: runs of consecutive kept words are copied from the input with
// the whitespace between them; runs are joined by one space.
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkNumber, checkOptions } from '../validate.js';
import { callEmbed, checkEmbed, cosine, norm, type EmbedFn } from './embeddings.js';
import { resolveCountTokens } from './extractive.js';
import { splitSentences } from './sentences.js';
import type { CompressedPrompt, CountTokens, Span } from './types.js';

export interface SemanticCompressOptions {
  /** Embeds texts: one vector per text (Float32Array, Float64Array or number[]), all of one length. */
  embed: EmbedFn;
  /** Stop before a deletion that would bring a sentence's cosine similarity to its original below this, in [-1, 1]. */
  similarityFloor?: number;
  /** Stop once the text has at most this many target-LLM tokens (integer >= 0). */
  targetTokens?: number;
  /** Stop once compressedTokens <= targetRate * originalTokens, in (0, 1]. Not with targetTokens. */
  targetRate?: number;
  /** Target-LLM token counter (default: cl100k_base from gpt-tokenizer). */
  countTokens?: CountTokens;
  /** Locale for sentence splitting (default 'en'). */
  locale?: string;
}

export interface SemanticCompressed extends CompressedPrompt {
  /** The lowest similarity of a compressed sentence to its original (1 when nothing was deleted). */
  similarity: number;
  /** The sentences of the input (spans), and each one's similarity to its original. */
  sentences: { span: Span; similarity: number }[];
  /** Why deletion stopped: the floor, the length target, or no sentence with two words left. */
  stop: 'floor' | 'target' | 'exhausted';
  /** Number of embed calls made. */
  embedCalls: number;
}

const OPTION_KEYS = ['embed', 'similarityFloor', 'targetTokens', 'targetRate', 'countTokens', 'locale'] as const;
const WORD = /\S+/g;

interface SentenceState {
  span: Span;
  words: Span[];
  alive: boolean[];
  aliveCount: number;
  original: ArrayLike<number>;
  originalNorm: number;
  similarity: number;
  /** Best next deletion: word index and the similarity after it (-Infinity: none). */
  bestWord: number;
  bestSimilarity: number;
}

/** Text of `words` with alive[i] true (skipping `skip`): runs copied with their inner whitespace, runs joined by " ". */
function renderWords(text: string, words: readonly Span[], alive: (i: number) => boolean): string {
  let out = '';
  let runStart = -1;
  let runEnd = -1;
  const flush = (): void => {
    if (runStart < 0) return;
    out += (out === '' ? '' : ' ') + text.slice(runStart, runEnd);
    runStart = -1;
  };
  for (let i = 0; i < words.length; i++) {
    if (!alive(i)) {
      flush();
      continue;
    }
    if (runStart < 0) runStart = words[i]!.start;
    runEnd = words[i]!.end;
  }
  flush();
  return out;
}

function checkTcraOptions(options: unknown) {
  if (options === undefined) throw typeError('options', 'an options object with embed', options);
  const opts = checkOptions('options', options, OPTION_KEYS);
  const embed = checkEmbed('options.embed', opts.embed);
  let floor = -Infinity;
  if (opts.similarityFloor !== undefined) {
    floor = checkNumber('options.similarityFloor', opts.similarityFloor);
    if (floor < -1 || floor > 1) throw rangeError('options.similarityFloor', 'a number in [-1, 1]', floor);
  }
  const targetTokens = opts.targetTokens === undefined ? undefined : checkInteger('options.targetTokens', opts.targetTokens, 0);
  let targetRate: number | undefined;
  if (opts.targetRate !== undefined) {
    targetRate = checkNumber('options.targetRate', opts.targetRate);
    if (!(targetRate > 0 && targetRate <= 1)) throw rangeError('options.targetRate', 'a number in (0, 1]', targetRate);
  }
  if (targetTokens !== undefined && targetRate !== undefined) {
    throw typeError('options', 'targetTokens or targetRate, not both', opts);
  }
  if (opts.similarityFloor === undefined && targetTokens === undefined && targetRate === undefined) {
    throw typeError('options', 'at least one of similarityFloor, targetTokens, targetRate', opts);
  }
  if (opts.countTokens !== undefined && typeof opts.countTokens !== 'function') {
    throw typeError('options.countTokens', 'a function (text: string) => number', opts.countTokens);
  }
  if (opts.locale !== undefined) splitSentences('', { locale: opts.locale as string });
  return { embed, floor, targetTokens, targetRate, countTokensOption: opts.countTokens, locale: opts.locale as string | undefined };
}

/**
 * TCRA-LLM semantic compression of `text` (a sentence or several): deletes,
 * one word at a time, the word whose removal keeps its sentence's embedding
 * closest (cosine) to the original sentence's, until the length target
 * (targetTokens or targetRate, in countTokens units) is reached or the next
 * deletion would fall below similarityFloor. Give at least one of the three.
 * `kept` holds the kept runs of words as spans of `text`.
 */
export async function semanticCompress(text: string, options: SemanticCompressOptions): Promise<SemanticCompressed> {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  const { embed, floor, targetTokens, targetRate, countTokensOption, locale } = checkTcraOptions(options);
  const countTokens = await resolveCountTokens('options.countTokens', countTokensOption);
  const originalTokens = countTokens(text);
  const target = targetTokens ?? (targetRate === undefined ? undefined : targetRate * originalTokens);

  const spans = splitSentences(text, { locale });
  const states: SentenceState[] = spans.map((span) => ({
    span,
    words: [...text.slice(span.start, span.end).matchAll(WORD)].map((m) => ({ start: span.start + m.index!, end: span.start + m.index! + m[0].length })),
    alive: [],
    aliveCount: 0,
    original: [],
    originalNorm: 0,
    similarity: 1,
    bestWord: -1,
    bestSimilarity: -Infinity,
  }));
  for (const s of states) {
    s.alive = s.words.map(() => true);
    s.aliveCount = s.words.length;
  }
  const allWords = states.flatMap((s) => s.words);
  const allAlive = states.flatMap((s) => s.alive.map((_, i) => [s, i] as const));
  const renderAll = (): string => renderWords(text, allWords, (i) => allAlive[i]![0].alive[allAlive[i]![1]]!);

  let embedCalls = 0;
  let dim: number | undefined;
  const embedChecked = async (texts: string[]): Promise<ArrayLike<number>[]> => {
    embedCalls++;
    const got = await callEmbed('options.embed', embed, texts, dim);
    dim = got.dim;
    return got.vectors;
  };

  // Candidates of a set of sentences: [sentence, word, text] for every alive word.
  const candidatesOf = (list: SentenceState[]) =>
    list.flatMap((s) =>
      s.aliveCount < 2 ? [] : s.words.flatMap((_, w) => (s.alive[w] ? [{ s, w, text: renderWords(text, s.words, (i) => s.alive[i]! && i !== w) }] : [])),
    );
  const scoreCandidates = async (list: SentenceState[]): Promise<void> => {
    for (const s of list) {
      s.bestWord = -1;
      s.bestSimilarity = -Infinity;
    }
    const cands = candidatesOf(list);
    if (cands.length === 0) return;
    const vectors = await embedChecked(cands.map((c) => c.text));
    cands.forEach((c, i) => {
      const sim = cosine(vectors[i]!, c.s.original, undefined, c.s.originalNorm);
      if (sim > c.s.bestSimilarity) {
        c.s.bestSimilarity = sim;
        c.s.bestWord = c.w;
      }
    });
  };

  let currentTokens = originalTokens;
  let stop: SemanticCompressed['stop'] = 'exhausted';
  const reached = () => target !== undefined && currentTokens <= target;
  if (reached()) stop = 'target';
  else if (states.some((s) => s.aliveCount >= 2)) {
    const originals = await embedChecked(states.map((s) => text.slice(s.span.start, s.span.end)));
    states.forEach((s, i) => {
      s.original = originals[i]!;
      s.originalNorm = norm(s.original);
    });
    await scoreCandidates(states);
    for (;;) {
      let best: SentenceState | undefined;
      for (const s of states) if (s.bestWord >= 0 && (best === undefined || s.bestSimilarity > best.bestSimilarity)) best = s;
      if (best === undefined) break;
      if (best.bestSimilarity < floor) {
        stop = 'floor';
        break;
      }
      best.alive[best.bestWord] = false;
      best.aliveCount--;
      best.similarity = best.bestSimilarity;
      currentTokens = countTokens(renderAll());
      if (reached()) {
        stop = 'target';
        break;
      }
      await scoreCandidates([best]);
    }
  }

  const out = renderAll();
  const kept: Span[] = [];
  let open: Span | undefined;
  allWords.forEach((w, i) => {
    const [s, j] = allAlive[i]!;
    if (!s.alive[j]) {
      open = undefined;
      return;
    }
    if (open) open.end = w.end;
    else kept.push((open = { start: w.start, end: w.end }));
  });
  const compressedTokens = countTokens(out);
  return {
    text: out,
    kept,
    originalTokens,
    compressedTokens,
    rate: originalTokens === 0 ? 1 : compressedTokens / originalTokens,
    similarity: states.reduce((m, s) => Math.min(m, s.similarity), 1),
    sentences: states.map((s) => ({ span: s.span, similarity: s.similarity })),
    stop,
    embedCalls,
  };
}
