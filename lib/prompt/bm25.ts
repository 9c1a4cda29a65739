// BM25 scores of sentences against a query: a thin adapter over the okapibm25
// package (1.4.1), the scorer of RECOMP's BM25 baseline
// (carriex/recomp run_extractive_compressor.py get_bm25_scores: rank_bm25's
// BM25Okapi over the candidate sentences as the corpus, the query as keywords).
//
// What the package computes (dist/BM25.js, read for this adapter):
//   score(d) = sum over query terms t (duplicates counted again) of
//              idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))
//   idf(t)   = ln((N - n(t) + 0.5) / (n(t) + 0.5) + 1)      (always > 0)
// with N sentences, n(t) sentences containing t, |d| the count of /\w+/ runs.
// rank_bm25's BM25Okapi differs in the IDF only: ln((N - n + 0.5) / (n + 0.5)),
// with a negative IDF (a term in more than half the sentences) replaced by
// epsilon (0.25) times the mean IDF. Its defaults k1 = 1.5, b = 0.75 are ours
// (the package's own defaults are k1 = 1.2, b = 0.75).
//
// The package finds terms by substring and RegExp matching ("the" would count
// inside "there", and "c++" is not a valid pattern), and counts |d| with the
// ASCII-only \w. So the adapter gives it ids instead of words: every distinct
// term becomes "x<number>x", documents are their terms' ids joined by spaces.
// An id then matches whole terms only, contains no RegExp syntax, and is one
// \w run, so the package's counts are exactly the term counts.
//
// Terms: the text lower-cased, then maximal runs of letters, combining marks
// and digits (RECOMP splits on " " and keeps case and punctuation; we fold them
// so "Paris," matches "paris", and keep digits because years and numbers are
// often what a question is about).
import BM25Module from 'okapibm25';
import { rangeError, typeError } from '../errors.js';
import { checkOptions } from '../validate.js';

type Bm25Fn = (documents: string[], keywords: string[], constants?: { k1?: number; b?: number }) => number[];
// okapibm25 is CommonJS with `exports.default`: under Node's ESM loader the
// default import is the exports object.
const okapi = ((BM25Module as unknown as { default?: Bm25Fn }).default ?? (BM25Module as unknown as Bm25Fn));

/** rank_bm25 BM25Okapi's defaults, used by RECOMP's BM25 baseline. */
export const BM25_DEFAULTS = Object.freeze({ k1: 1.5, b: 0.75 });

export interface Bm25Params {
  /** Term-frequency saturation, > 0 (default 1.5). */
  k1?: number;
  /** Length normalisation, in (0, 1] (default 0.75). */
  b?: number;
}

const TERM = /[\p{L}\p{M}\p{N}]+/gu;

/** The BM25 terms of a text: lower-cased runs of letters, marks and digits. */
export function bm25Terms(text: string): string[] {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  return text.toLowerCase().match(TERM) ?? [];
}

/** Checks k1 and b; the package reads 0 as "use my default", so 0 is refused. */
export function checkBm25Params(arg: string, params: unknown): { k1: number; b: number } {
  const p = checkOptions(arg, params, ['k1', 'b']);
  const k1 = p.k1 === undefined ? BM25_DEFAULTS.k1 : p.k1;
  const b = p.b === undefined ? BM25_DEFAULTS.b : p.b;
  if (typeof k1 !== 'number') throw typeError(`${arg}.k1`, 'a number', k1);
  if (!(k1 > 0) || !Number.isFinite(k1)) throw rangeError(`${arg}.k1`, 'a finite number > 0', k1);
  if (typeof b !== 'number') throw typeError(`${arg}.b`, 'a number', b);
  if (!(b > 0 && b <= 1)) throw rangeError(`${arg}.b`, 'a number in (0, 1]', b);
  return { k1, b };
}

/**
 * BM25 score of each sentence (the corpus) against the query: Float64Array of
 * sentences.length, in sentence order. Query terms found in no sentence add 0
 * (as in rank_bm25); a query with no such term scores every sentence 0.
 */
export function bm25Scores(query: string, sentences: readonly string[], params?: Bm25Params): Float64Array {
  if (typeof query !== 'string') throw typeError('query', 'a string', query);
  if (!Array.isArray(sentences)) throw typeError('sentences', 'an array of strings', sentences);
  sentences.forEach((s, i) => {
    if (typeof s !== 'string') throw typeError(`sentences[${i}]`, 'a string', s);
  });
  const { k1, b } = checkBm25Params('params', params);
  const out = new Float64Array(sentences.length);
  if (sentences.length === 0) return out;

  const ids = new Map<string, string>();
  const idOf = (term: string): string => {
    let id = ids.get(term);
    if (id === undefined) ids.set(term, (id = `x${ids.size}x`));
    return id;
  };
  const documents = sentences.map((s) => bm25Terms(s).map(idOf).join(' '));
  const keywords = bm25Terms(query).flatMap((t) => {
    const id = ids.get(t);
    return id === undefined ? [] : [id];
  });
  if (keywords.length === 0) return out;
  const scores = okapi(documents, keywords, { k1, b });
  for (let i = 0; i < out.length; i++) out[i] = scores[i]!;
  return out;
}
