/**
 * The question set of `tokenpress eval prompt`: contexts of consecutive
 * dictionary entries from the held-out corpus (bench/corpus.ts: GCIDE 0.48 in
 * dictd's text form, then fortunes), each with questions "What does
 * "<headword>" mean?" whose answer is a span of the context: the start of that
 * headword's first definition.
 *
 * The GCIDE text form (what heldout.txt holds), one entry after another:
 *
 *   Acritude \Ac"ri*tude\, n. [L. acritudo, from acer sharp.]     <- header at column 0:
 *      Acridity; pungency joined with heat. [Obs.]                 headword, \pronunciation\,
 *      [1913 Webster]                                              part of speech, [etymology]
 *                                                                  (which may run over lines)
 *   Configuration \Con*fig`u*ra"tion\, n. [L. configuratio.]
 *      1. Form, as depending on the relative disposition of the  <- numbered senses,
 *         parts of a thing; shape; figure.                         (a)/(b) sub-senses,
 *         [1913 Webster]                                           (Bot.)-style domains
 *
 * Body lines are indented; a line at column 0 of the form `Word \...\` starts
 * the next entry. Definitions end at a source tag ("[1913 Webster]",
 * "[WordNet 1.5]"), a blank line or the entry's end.
 *
 * The answer span: the first definition line of the entry after the header
 * (whose [ ] brackets may span lines), with leading sense markers ("1.",
 * "(a)", "(Astrol.)", "[R.]") skipped, running over continuation lines to the
 * end of its first sentence (a word ending in "." or ":", or before "--") and
 * clipped to at most `maxAnswerWords` words (default 10). Offsets are UTF-16
 * indices into the context; the span includes the line breaks and indentation
 * between its words, and it starts and ends on a word. An entry gives a
 * question only when its answer has at least `minAnswerWords` words (3),
 * is not a bare cross-reference ("Same as {X}.", "See {X}.", "Alt. of",
 * "pl. of", "imp. & p. p. of"), and its words occur only once in the context
 * (whitespace-normalized), so the span is distinctive.
 *
 * Contexts: the held-out file is a concatenation of 64 KiB blocks cut from the
 * corpus (CORPUS_BLOCK), so an entry can be cut at a block edge; entries are
 * parsed per block, and each block's text before its first header and its
 * last entry (it may be cut; the text's very last entry too) are dropped. A context is a maximal run of whole consecutive
 * entries of one block whose UTF-8 length is at most `contextBytes` (trailing
 * whitespace trimmed) and at least 3/4 of it (shorter runs, at a block's end
 * or before a used entry, are skipped). Start entries are drawn in a seeded order; contexts do
 * not overlap; each gets up to `questionsPerContext` questions drawn (seeded)
 * from its entries, listed in text order. Same text and options, same
 * dataset. Fortunes text has no `Word \...\` headers, so it gives no contexts.
 */
import { rangeError, typeError } from '../../errors.js';
import { checkInteger, checkOptions } from '../../validate.js';
import { Rng } from '../../kv/eval/workload.js';
import type { Span } from '../types.js';

/** The held-out file's block size (bench/corpus.ts CORPUS_BLOCK): entries never span a block edge. */
export const HELDOUT_BLOCK_BYTES = 64 * 1024;

export interface PromptEvalDatasetOptions {
  /** Seed of the context and question draws (default 0). */
  seed?: number;
  /** How many contexts (default 100); fewer when the text has fewer. */
  contexts?: number;
  /** Most UTF-8 bytes per context (default 4096). */
  contextBytes?: number;
  /** Most questions per context (default 4). */
  questionsPerContext?: number;
  /** Most words of an answer span (default 10). */
  maxAnswerWords?: number;
  /** Fewest words of an answer span (default 3). */
  minAnswerWords?: number;
  /** Block size the text was cut in, in UTF-8 bytes (default HELDOUT_BLOCK_BYTES; 0: one block). */
  blockBytes?: number;
}

export const PROMPT_EVAL_DATASET_DEFAULTS: Required<PromptEvalDatasetOptions> = {
  seed: 0,
  contexts: 100,
  contextBytes: 4096,
  questionsPerContext: 4,
  maxAnswerWords: 10,
  minAnswerWords: 3,
  blockBytes: HELDOUT_BLOCK_BYTES,
};

export interface PromptEvalQuestion {
  headword: string;
  /** `What does "<headword>" mean?` */
  question: string;
  /** The answer's offsets in the context's text. */
  answer: Span;
  /** context.text.slice(answer.start, answer.end). */
  answerText: string;
}

export interface PromptEvalContext {
  /** UTF-16 offset of the context in the source text. */
  offset: number;
  text: string;
  /** UTF-8 bytes of `text`. */
  bytes: number;
  /** Entries in the context. */
  entries: number;
  questions: PromptEvalQuestion[];
}

export interface PromptEvalDataset {
  options: Required<PromptEvalDatasetOptions>;
  contexts: PromptEvalContext[];
}

/** One parsed entry: offsets into the source text. */
export interface DictEntry {
  start: number;
  end: number;
  headword: string;
  /** The answer candidate (offsets into the source text), or undefined when the entry has none. */
  answer?: Span;
}

const HEADER = /^([A-Za-z][^\\\n]{0,80}?) \\[^\\\n]*\\/gm;
const CROSS_REFERENCE = /^(?:Same as|See|Alt\.|pl\.|imp\.|p\. ?p\.|An? obsolete|Variant of)(?=[\s,]|$)/i;
const SENSE_MARKER = /^(?:\d+\.\s+|\d+\s+(?=[a-z])|\([a-z]\)\s+|\([A-Z][A-Za-z.& ]{0,30}\)\s+|\[[^\]\n]{0,20}\]\s+)/;

/** Offset just past the header: the end of the first line where the header's [ ] brackets are balanced. */
function headerEnd(text: string, start: number, limit: number): number {
  let depth = 0;
  for (let i = start; i < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b) depth++;
    else if (c === 0x5d) depth = Math.max(0, depth - 1);
    else if (c === 0x0a && depth === 0) return i + 1;
  }
  return limit;
}

function isWordChar(c: number): boolean {
  return c !== 0x20 && c !== 0x0a && c !== 0x09 && c !== 0x0d;
}

/**
 * The answer candidate of the entry whose body is text[from, limit): the
 * first definition's first sentence, at most maxWords words.
 */
function findAnswer(text: string, from: number, limit: number, minWords: number, maxWords: number): Span | undefined {
  let i = from;
  // The first non-blank body line.
  for (;;) {
    while (i < limit && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= limit) return undefined;
    if (text[i] !== '\n') break;
    i++;
  }
  // Skip sense markers at the start of the line.
  for (;;) {
    const m = SENSE_MARKER.exec(text.slice(i, Math.min(limit, i + 40)));
    if (m === null) break;
    i += m[0].length;
  }
  if (i >= limit || text[i] === '\n' || text[i] === '{' || text[i] === '[') return undefined;
  if (CROSS_REFERENCE.test(text.slice(i, Math.min(limit, i + 30)))) return undefined;
  const start = i;
  let end = i;
  let words = 0;
  while (i < limit && words < maxWords) {
    // At a word start: read the word.
    const w0 = i;
    while (i < limit && isWordChar(text.charCodeAt(i))) i++;
    const word = text.slice(w0, i);
    if (word === '--' || word.startsWith('[') || word.startsWith('--')) break;
    words++;
    end = i;
    if (/[.:]$/.test(word)) break;
    // Whitespace to the next word; a blank line or a source tag line ends the definition.
    let newlines = 0;
    while (i < limit && !isWordChar(text.charCodeAt(i))) {
      if (text.charCodeAt(i) === 0x0a) newlines++;
      i++;
    }
    if (newlines > 1 || i >= limit || text[i] === '[') break;
  }
  if (words < minWords) return undefined;
  return { start, end };
}

/** The entries of text[from, to): headers at column 0; the last entry (maybe cut at `to`) is dropped. */
export function parseDictEntries(text: string, from = 0, to = text.length, minWords = 3, maxWords = 10): DictEntry[] {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  const heads: { start: number; headword: string }[] = [];
  HEADER.lastIndex = from;
  for (let m = HEADER.exec(text); m !== null && m.index < to; m = HEADER.exec(text)) {
    if (m.index + m[0].length > to) break;
    heads.push({ start: m.index, headword: m[1]! });
  }
  const out: DictEntry[] = [];
  for (let k = 0; k + 1 < heads.length; k++) {
    const { start, headword } = heads[k]!;
    const end = heads[k + 1]!.start;
    const body = headerEnd(text, start, end);
    const answer = findAnswer(text, body, end, minWords, maxWords);
    out.push(answer ? { start, end, headword, answer } : { start, end, headword });
  }
  return out;
}

/** UTF-16 offsets where each `blockBytes`-byte block of the UTF-8 encoding of text starts (0 first). */
function blockStarts(text: string, blockBytes: number): number[] {
  const starts = [0];
  if (blockBytes === 0) return starts;
  let bytes = 0;
  let next = blockBytes;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (bytes >= next) {
      starts.push(i);
      next += blockBytes;
    }
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c < 0xdc00 ? 4 : c >= 0xdc00 && c < 0xe000 ? 0 : 3;
  }
  return starts;
}

const normalize = (s: string): string => s.split(/\s+/).filter((w) => w !== '').join(' ');

function countOccurrences(hay: string, needle: string): number {
  let n = 0;
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) n++;
  return n;
}

function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function resolveOptions(options: unknown): Required<PromptEvalDatasetOptions> {
  const o = checkOptions('options', options, Object.keys(PROMPT_EVAL_DATASET_DEFAULTS)) as PromptEvalDatasetOptions;
  const r = { ...PROMPT_EVAL_DATASET_DEFAULTS };
  if (o.seed !== undefined) r.seed = checkInteger('options.seed', o.seed, 0, 0xffffffff);
  if (o.contexts !== undefined) r.contexts = checkInteger('options.contexts', o.contexts, 1, 1_000_000);
  if (o.contextBytes !== undefined) r.contextBytes = checkInteger('options.contextBytes', o.contextBytes, 64, 1 << 24);
  if (o.questionsPerContext !== undefined) r.questionsPerContext = checkInteger('options.questionsPerContext', o.questionsPerContext, 1, 1000);
  if (o.maxAnswerWords !== undefined) r.maxAnswerWords = checkInteger('options.maxAnswerWords', o.maxAnswerWords, 1, 1000);
  if (o.minAnswerWords !== undefined) r.minAnswerWords = checkInteger('options.minAnswerWords', o.minAnswerWords, 1, 1000);
  if (o.blockBytes !== undefined) r.blockBytes = checkInteger('options.blockBytes', o.blockBytes, 0, 1 << 30);
  if (r.minAnswerWords > r.maxAnswerWords) {
    throw rangeError('options.minAnswerWords', `at most options.maxAnswerWords = ${r.maxAnswerWords}`, r.minAnswerWords);
  }
  return r;
}

/**
 * Builds the dataset from GCIDE-format text (the held-out corpus, decoded as
 * UTF-8). Deterministic for (text, options). Throws RangeError when the text
 * gives no context with a question.
 */
export function buildPromptEvalDataset(text: string, options?: PromptEvalDatasetOptions): PromptEvalDataset {
  if (typeof text !== 'string') throw typeError('text', 'a string', text);
  const o = resolveOptions(options);
  // Entries, per block; `block[k]` names the block of entry k.
  const entries: DictEntry[] = [];
  const block: number[] = [];
  const starts = blockStarts(text, o.blockBytes);
  for (let b = 0; b < starts.length; b++) {
    const to = b + 1 < starts.length ? starts[b + 1]! : text.length;
    for (const e of parseDictEntries(text, starts[b]!, to, o.minAnswerWords, o.maxAnswerWords)) {
      entries.push(e);
      block.push(b);
    }
  }
  // Context candidates: a maximal run of entries from each start entry.
  const rng = new Rng((o.seed ^ 0x9e3779b9) >>> 0);
  const order = entries.map((_, k) => k);
  for (let k = order.length - 1; k > 0; k--) {
    const j = rng.int(0, k);
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  const used = new Uint8Array(entries.length);
  const contexts: PromptEvalContext[] = [];
  for (const first of order) {
    if (contexts.length >= o.contexts) break;
    if (used[first]) continue;
    const start = entries[first]!.start;
    let last = -1;
    let ctxText = '';
    for (let k = first; k < entries.length && block[k] === block[first] && !used[k]; k++) {
      const candidate = text.slice(start, entries[k]!.end).trimEnd();
      if (utf8Bytes(candidate) > o.contextBytes) break;
      last = k;
      ctxText = candidate;
    }
    if (last < 0 || utf8Bytes(ctxText) * 4 < o.contextBytes * 3) continue; // at least 3/4 full
    const norm = normalize(ctxText);
    const valid: PromptEvalQuestion[] = [];
    for (let k = first; k <= last; k++) {
      const e = entries[k]!;
      if (!e.answer || e.answer.end > start + ctxText.length) continue;
      const answer = { start: e.answer.start - start, end: e.answer.end - start };
      const answerText = ctxText.slice(answer.start, answer.end);
      if (countOccurrences(norm, normalize(answerText)) !== 1) continue;
      valid.push({ headword: e.headword, question: `What does "${e.headword}" mean?`, answer, answerText });
    }
    if (valid.length === 0) continue;
    for (let k = valid.length - 1; k > 0; k--) {
      const j = rng.int(0, k);
      [valid[k], valid[j]] = [valid[j]!, valid[k]!];
    }
    const questions = valid.slice(0, o.questionsPerContext).sort((a, b) => a.answer.start - b.answer.start);
    for (let k = first; k <= last; k++) used[k] = 1;
    contexts.push({ offset: start, text: ctxText, bytes: utf8Bytes(ctxText), entries: last - first + 1, questions });
  }
  if (contexts.length === 0) {
    throw rangeError('text', `GCIDE-format dictionary text with entries of at most options.contextBytes = ${o.contextBytes} bytes that have definitions`, text);
  }
  return { options: o, contexts };
}
