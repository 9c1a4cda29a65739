/**
 * The prompt scorers by name (the CLI's --scorer, the eval's scorer list):
 * one line per scorer, name -> async factory. Other scorers (self-info,
 * specpc, ...) register here with one line each.
 *
 * Built in here: `random` (seeded uniform keep scores: the floor any real
 * scorer must beat) and `length` (a token's length in characters: longer
 * words kept first), both over `simpleTokenize`; then the model scorers:
 * `self-info` (sentences, main byte LM), `self-info-word`, `self-info-draft`
 * (words) and `specpc` (draft byte LM).
 */
import { rangeError, typeError } from '../errors.js';
import { checkOptions } from '../validate.js';
import { Rng } from '../kv/eval/workload.js';
import type { Span, TokenScorer } from './types.js';
import { selfInfoScorer } from './self-info.js';
import { specpcScorer } from './specpc.js';

/** What a scorer factory takes (each uses what it needs). */
export interface ScorerFactoryOptions {
  /** Seed of random scorers (default 1). */
  seed?: number;
  /** Scorer tokens per chunk (default 510, LLMLingua-2's window). */
  maxTokens?: number;
}

export type ScorerFactory = (opts?: ScorerFactoryOptions) => Promise<TokenScorer>;

const WORD_PIECE = /[\p{L}\p{M}\p{N}_]+|[^\s\p{L}\p{M}\p{N}_]/gu;

/** Runs of letters / digits / marks / underscores, and every other non-space character alone: UTF-16 spans. */
export function simpleTokenize(text: string): Span[] {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  const out: Span[] = [];
  for (const m of text.matchAll(WORD_PIECE)) out.push({ start: m.index, end: m.index + m[0].length });
  return out;
}

function checkFactoryOptions(opts: ScorerFactoryOptions | undefined): { seed: number; maxTokens: number } {
  const o = checkOptions('scorer options', opts, ['seed', 'maxTokens']);
  const seed = o.seed ?? 1;
  if (typeof seed !== 'number' || !Number.isInteger(seed)) throw typeError('seed', 'an integer', seed);
  const maxTokens = o.maxTokens ?? 510;
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) throw rangeError('maxTokens', 'an integer >= 1', maxTokens);
  return { seed, maxTokens };
}


/** Seeded uniform keep scores in [0, 1): the same seed and calls give the same scores. */
export function randomScorer(opts?: ScorerFactoryOptions): TokenScorer {
  const { seed, maxTokens } = checkFactoryOptions(opts);
  const rng = new Rng(seed);
  const next = (): number => rng.uniform();
  return {
    name: `random:${seed}`,
    maxTokens,
    tokenize: simpleTokenize,
    score: (_text: string, tokens: Span[]) => Float64Array.from(tokens, () => next()),
  };
}

/** Keep score = the token's length in UTF-16 units. */
export function lengthScorer(opts?: ScorerFactoryOptions): TokenScorer {
  const { maxTokens } = checkFactoryOptions(opts);
  return {
    name: 'length',
    maxTokens,
    tokenize: simpleTokenize,
    score: (_text: string, tokens: Span[]) => Float64Array.from(tokens, (t) => t.end - t.start),
  };
}

/** name -> factory. Add a scorer with one line. */
export const PROMPT_SCORERS: Record<string, ScorerFactory> = {
  random: async (opts) => randomScorer(opts),
  length: async (opts) => lengthScorer(opts),
  // Self-information under the built-in byte LMs (self-info.ts), whole-document conditioning.
  'self-info': async () => selfInfoScorer({ model: 'main', unit: 'sentence', conditioning: 'document' }),
  'self-info-word': async () => selfInfoScorer({ model: 'main', unit: 'word', conditioning: 'document' }),
  'self-info-draft': async () => selfInfoScorer({ model: 'draft', unit: 'word', conditioning: 'document' }),
  // SpecPC's pooled attention of the draft byte LM (specpc.ts).
  specpc: async () => specpcScorer({ model: 'draft' }),
};
