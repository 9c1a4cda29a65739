// Shared contracts of prompt compression (lib/prompt/): spans, scorers, token
// counters and results. Every offset is a UTF-16 code-unit index into the
// string the caller passed (what String.prototype.slice takes).

/** A half-open range [start, end) of UTF-16 offsets into the input text. */
export interface Span {
  start: number;
  end: number;
}

/** A span with a keep score: higher means "keep". */
export interface ScoredSpan extends Span {
  score: number;
}

/**
 * A token-level scorer: the scorer's own tokenization of a text, and one keep
 * score per token. LLMLingua-2's classifier gives probabilities in [0, 1];
 * other scorers (self-information, draft attention) give any real number
 * where larger means more worth keeping, and the selection rules only rank
 * them.
 */
export interface TokenScorer {
  /** A short name for reports ('callback', 'self-info:main', 'specpc:draft', ...). */
  readonly name: string;
  /** The most scorer tokens one `score` call takes (LLMLingua-2: 510), or undefined for no limit. */
  readonly maxTokens?: number;
  /** The scorer's tokens of `text`, in order, non-overlapping; text between them (whitespace) belongs to no token. */
  tokenize(text: string): Span[] | Promise<Span[]>;
  /** One keep score per token of `tokens` (what `tokenize(text)` returned), same order and length. */
  score(text: string, tokens: Span[]): ArrayLike<number> | Promise<ArrayLike<number>>;
}

/** Counts tokens of the target LLM (the budget's unit). */
export type CountTokens = (text: string) => number;

/** What every prompt compressor returns. */
export interface CompressedPrompt {
  /** The compressed text. */
  text: string;
  /** The kept spans of the input, in order, non-overlapping (offsets into the input). */
  kept: Span[];
  /** Target-LLM tokens of the input. */
  originalTokens: number;
  /** Target-LLM tokens of `text`. */
  compressedTokens: number;
  /** compressedTokens / originalTokens (1 for an empty input). */
  rate: number;
}
