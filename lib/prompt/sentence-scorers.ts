// Query-sentence scorers for extractive selection (lib/prompt/extractive.ts):
// - BM25 over the candidate sentences (RECOMP's BM25 baseline, bm25.ts);
// - an embedding callback scored by dot product of query and sentence vectors
//   (RECOMP, carriex/recomp run_extractive_compressor.py get_contriever_scores:
//   one batch [query, ...sentences], score = q . s), or by cosine on request;
// - a Yes/No logits callback giving P(yes) = softmax(yes, no)[0] over EXIT's
//   relevance prompt (ThisIsHwang/EXIT compressors/baselines/exit/core.py
//   COMPRESSION_PROMPT_TEMPLATE and compressor.py _predict_batch: query, the
//   sentence's own document as "Full context", the sentence).
import { rangeError, typeError } from '../errors.js';
import { checkInteger, checkOptions } from '../validate.js';
import { bm25Scores, checkBm25Params, type Bm25Params } from './bm25.js';
import { callEmbed, checkEmbed, cosine, dot, norm, type EmbedFn } from './embeddings.js';

/** One candidate sentence as a scorer sees it. */
export interface SentenceCandidate {
  /** The sentence, trimmed. */
  text: string;
  /** Index of its document in the documents given to selectSentences. */
  doc: number;
  /** Its whole document, trimmed (EXIT's "Full context"). */
  context: string;
}

/** Scores candidate sentences against a query: higher means more worth keeping. */
export interface SentenceScorer {
  /** A short name for reports ('bm25', 'embedding:dot', 'yes-no', ...). */
  readonly name: string;
  /** The threshold selectSentences uses when given neither topK, threshold nor budgetTokens (yes/no: 0.5). */
  readonly defaultThreshold?: number;
  /** One score per candidate, same order and length; NaN is refused. */
  score(query: string, sentences: readonly SentenceCandidate[]): ArrayLike<number> | Promise<ArrayLike<number>>;
}

/** BM25 (okapibm25 with rank_bm25's k1 = 1.5, b = 0.75) with all candidates as the corpus. */
export function bm25Scorer(params?: Bm25Params): SentenceScorer {
  const checked = checkBm25Params('params', params);
  return {
    name: 'bm25',
    score: (query, sentences) => bm25Scores(query, sentences.map((s) => s.text), checked),
  };
}

export interface EmbeddingScorerOptions {
  /** 'dot' (RECOMP, default) or 'cosine'. */
  similarity?: 'dot' | 'cosine';
  /** The most texts per embed call (default 64); the query rides in the first call. */
  batchSize?: number;
}

/**
 * Scores sentences by the similarity of their embedding to the query's.
 * `embed(texts)` returns one vector per text (Float32Array, Float64Array or
 * number[]), all of one length; results are checked (count, lengths, finite).
 */
export function embeddingScorer(embed: EmbedFn, options?: EmbeddingScorerOptions): SentenceScorer {
  const fn = checkEmbed('embed', embed);
  const opts = checkOptions('options', options, ['similarity', 'batchSize']);
  const similarity = opts.similarity === undefined ? 'dot' : opts.similarity;
  if (similarity !== 'dot' && similarity !== 'cosine') throw typeError('options.similarity', '"dot" or "cosine"', similarity);
  const batchSize = opts.batchSize === undefined ? 64 : checkInteger('options.batchSize', opts.batchSize, 2);
  return {
    name: `embedding:${similarity}`,
    async score(query, sentences) {
      const texts = [query, ...sentences.map((s) => s.text)];
      const vectors: ArrayLike<number>[] = [];
      let dim: number | undefined;
      for (let start = 0; start < texts.length; start += batchSize) {
        const got = await callEmbed('embed', fn, texts.slice(start, start + batchSize), dim);
        dim = got.dim;
        vectors.push(...got.vectors);
      }
      const q = vectors[0]!;
      const qNorm = norm(q);
      const out = new Float64Array(sentences.length);
      for (let i = 0; i < out.length; i++) {
        const v = vectors[i + 1]!;
        out[i] = similarity === 'dot' ? dot(q, v) : cosine(q, v, qNorm);
      }
      return out;
    },
  };
}

/** EXIT's relevance prompt (paper Table 6, Gemma chat format); {query}, {context}, {sentence} are filled in. */
export const EXIT_TEMPLATE =
  '<start_of_turn>user\nQuery:\n{query}\nFull context:\n{context}\nSentence:\n{sentence}\n' +
  'Is this sentence useful in answering the query? Answer only "Yes" or "No".<end_of_turn>\n<start_of_turn>model\n';

/** The next-token logits (or log-probabilities) of "Yes" and "No" after a prompt. */
export type YesNoLogits = (prompt: string) => Promise<{ yes: number; no: number }> | { yes: number; no: number };

export interface YesNoScorerOptions {
  /** The prompt, with {query}, {context} and {sentence} placeholders ({sentence} required); default EXIT_TEMPLATE. */
  template?: string;
  /** The most logits calls in flight at once (default 8, EXIT's batch_size). */
  concurrency?: number;
}

/** Fills {query}, {context}, {sentence} in one pass (text inserted is never re-expanded). */
export function fillTemplate(template: string, values: { query: string; context: string; sentence: string }): string {
  return template.replace(/\{(query|context|sentence)\}/g, (_, key: 'query' | 'context' | 'sentence') => values[key]);
}

/** P(yes) = softmax([yes, no])[0] = 1 / (1 + exp(no - yes)), written to stay finite. */
export function yesProbability(yes: number, no: number): number {
  const d = no - yes;
  if (d >= 0) {
    const e = Math.exp(-d);
    return e / (1 + e);
  }
  return 1 / (1 + Math.exp(d));
}

function checkLogits(arg: string, got: unknown): { yes: number; no: number } {
  if (got === null || typeof got !== 'object') throw typeError(arg, 'an object { yes: number, no: number }', got);
  const { yes, no } = got as { yes: unknown; no: unknown };
  for (const [key, v] of [['yes', yes], ['no', no]] as const) {
    if (typeof v !== 'number') throw typeError(`${arg}.${key}`, 'a number', v);
    if (!Number.isFinite(v)) throw rangeError(`${arg}.${key}`, 'a finite number', v);
  }
  return { yes: yes as number, no: no as number };
}

/**
 * EXIT's classifier as a scorer: for each sentence, logits(prompt) with the
 * prompt built from the query, the sentence's document and the sentence; the
 * score is P(yes) in [0, 1]. Default threshold 0.5 (EXIT's). At most
 * `concurrency` calls run at once; scores come back in sentence order.
 */
export function yesNoScorer(logits: YesNoLogits, options?: YesNoScorerOptions): SentenceScorer {
  if (typeof logits !== 'function') throw typeError('logits', 'a function (prompt: string) => Promise<{ yes, no }>', logits);
  const opts = checkOptions('options', options, ['template', 'concurrency']);
  const template = opts.template === undefined ? EXIT_TEMPLATE : opts.template;
  if (typeof template !== 'string') throw typeError('options.template', 'a string', template);
  if (!template.includes('{sentence}')) throw rangeError('options.template', 'a template containing {sentence}', template);
  const concurrency = opts.concurrency === undefined ? 8 : checkInteger('options.concurrency', opts.concurrency, 1);
  return {
    name: 'yes-no',
    defaultThreshold: 0.5,
    async score(query, sentences) {
      const out = new Float64Array(sentences.length);
      let next = 0;
      let failed = false; // after one failure the other workers start no new call
      const worker = async (): Promise<void> => {
        while (next < sentences.length && !failed) {
          const i = next++;
          const s = sentences[i]!;
          const prompt = fillTemplate(template, { query, context: s.context, sentence: s.text });
          try {
            const { yes, no } = checkLogits(`logits() result for sentence ${i}`, await logits(prompt));
            out[i] = yesProbability(yes, no);
          } catch (err) {
            failed = true;
            throw err;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, sentences.length) }, worker));
      return out;
    },
  };
}

/** Resolves the scorer option: 'bm25' or a SentenceScorer object. */
export function checkScorer(arg: string, scorer: unknown): SentenceScorer {
  if (scorer === undefined || scorer === 'bm25') return bm25Scorer();
  if (scorer === null || typeof scorer !== 'object' || typeof (scorer as SentenceScorer).score !== 'function') {
    throw typeError(arg, '"bm25" or a SentenceScorer { name, score(query, sentences) }', scorer);
  }
  const t = (scorer as SentenceScorer).defaultThreshold;
  if (t !== undefined && (typeof t !== 'number' || Number.isNaN(t))) throw typeError(`${arg}.defaultThreshold`, 'a number or undefined', t);
  return scorer as SentenceScorer;
}
