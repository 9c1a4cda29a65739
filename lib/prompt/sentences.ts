// Sentence splitting for extractive selection (RECOMP, EXIT) and TCRA-LLM:
// Intl.Segmenter with granularity 'sentence' (ICU's implementation of the
// Unicode sentence-boundary rules, UAX #29), the only rule of ours being that
// whitespace is trimmed out of each span and all-whitespace segments dropped.
//
// Known behaviour of the segmenter (pinned by test/unit/prompt-extractive.test.ts):
// - it splits after an abbreviation followed by a capital: "Dr. Smith" gives
//   "Dr." and "Smith ..."; "e.g. this" and "U.S. troops" (lower case next) stay whole;
// - every line break ends a sentence, even without a full stop;
// - "?!" runs, "..." and closing quotes stay with the sentence they end;
// - decimals ("3.50") do not split.
import { typeError, rangeError } from '../errors.js';
import { checkOptions } from '../validate.js';
import type { Span } from './types.js';

export interface SplitSentencesOptions {
  /** A BCP 47 locale for the segmenter (default 'en', so results do not depend on the machine). */
  locale?: string;
}

const SPLIT_KEYS = ['locale'] as const;
const segmenters = new Map<string, Intl.Segmenter>();

function segmenterFor(locale: string): Intl.Segmenter {
  let seg = segmenters.get(locale);
  if (seg === undefined) {
    try {
      seg = new Intl.Segmenter(locale, { granularity: 'sentence' });
    } catch {
      throw rangeError('options.locale', 'a valid BCP 47 locale tag', locale);
    }
    if (segmenters.size >= 16) segmenters.clear(); // caller-chosen keys: keep the cache small
    segmenters.set(locale, seg);
  }
  return seg;
}

const isSpace = (code: number): boolean => /\s/.test(String.fromCharCode(code));

/**
 * The sentences of `text` as spans [start, end) of UTF-16 offsets, in order,
 * non-overlapping, each trimmed of leading and trailing whitespace and never
 * empty. An empty or all-whitespace text gives [].
 */
export function splitSentences(text: string, options?: SplitSentencesOptions): Span[] {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  const opts = checkOptions('options', options, SPLIT_KEYS);
  const locale = opts.locale === undefined ? 'en' : opts.locale;
  if (typeof locale !== 'string') throw typeError('options.locale', 'a string', locale);
  const segmenter = segmenterFor(locale);
  const spans: Span[] = [];
  for (const { segment, index } of segmenter.segment(text)) {
    let start = index;
    let end = index + segment.length;
    while (start < end && isSpace(text.charCodeAt(start))) start++;
    while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
    if (end > start) spans.push({ start, end });
  }
  return spans;
}
