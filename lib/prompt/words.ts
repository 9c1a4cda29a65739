/**
 * Scorer tokens -> words, and token scores -> word scores, as microsoft/
 * LLMLingua `__merge_token_to_word` and `__token_prob_to_word_prob`
 * (llmlingua/prompt_compressor.py, llmlingua/utils.py is_begin_of_new_word),
 * written on offsets instead of the tokenizers' "▁" / "##" markers:
 *
 * - a token starts a new word when it is the first of its chunk, when the
 *   character before it is whitespace (or it starts the text): that is the
 *   "▁" of SentencePiece and the absence of "##" in WordPiece; or when it is
 *   made only of ASCII punctuation (official: `token in string.punctuation`);
 *   or when it overlaps a force-token occurrence;
 * - a force-token occurrence is one word: the tokens overlapping it, and
 *   nothing after it (the official code appends a following piece that has
 *   no "▁" to the force word; we end it so a forced word is the forced text);
 *   an occurrence no token covers (e.g. "\n" between tokens) is a word of its
 *   own with no scorer token;
 * - each token's score: the force value F for a token overlapping a force
 *   occurrence, or holding a decimal digit when forceReserveDigit is on
 *   (official: 1.0); its scorer score otherwise. F = max(1, the chunk's
 *   largest scorer score): 1.0 for probability scorers, as the official code,
 *   and at least every other score for unbounded ones;
 * - word score: the mean (default) or the first of its token scores. The
 *   raw word score (context-level filter) uses scorer scores only, no forcing.
 */

/** How token scores combine into a word score. */
export type WordProbMode = 'mean' | 'first';

/** Words of one context, in order, over all its chunks. */
export interface WordTable {
  /** Number of words. */
  n: number;
  /** Word spans: UTF-16 offsets into the context, [start, end). */
  start: Int32Array;
  end: Int32Array;
  /** Word scores with forcing applied. */
  score: Float64Array;
  /** Word scores from the scorer only (no forcing); NaN for a word with no scorer token. */
  raw: Float64Array;
  /** 1 for a force-token occurrence word. */
  forced: Uint8Array;
  /** Words of chunk c are [chunkWordStart[c], chunkWordStart[c + 1]). Length chunks + 1. */
  chunkWordStart: Int32Array;
  /** The force value F of each chunk. */
  chunkForce: Float64Array;
  /** The floor of each chunk (drop_consecutive): min(0, the chunk's smallest scorer score). */
  chunkFloor: Float64Array;
}

/** JavaScript's \s (Python's str.isspace differs only on rare controls). */
export function isSpaceCode(c: number): boolean {
  if (c <= 32) return c === 32 || (c >= 9 && c <= 13);
  if (c < 160) return false;
  return c === 160 || c === 5760 || (c >= 8192 && c <= 8202) || c === 8232 || c === 8233 || c === 8239 || c === 8287 || c === 12288 || c === 65279;
}

function isAsciiPunctCode(c: number): boolean {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

/** text[s, e) is non-empty and only ASCII punctuation. */
export function isPunctuation(text: string, s: number, e: number): boolean {
  if (e <= s) return false;
  for (let i = s; i < e; i++) if (!isAsciiPunctCode(text.charCodeAt(i))) return false;
  return true;
}

const UNICODE_DIGIT = /\p{Nd}/u;

/** text[s, e) holds a decimal digit (Python's re \d on str: Unicode Nd). */
export function hasDigit(text: string, s: number, e: number): boolean {
  for (let i = s; i < e; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) return true;
    if (c >= 128 && UNICODE_DIGIT.test(text.slice(i, Math.min(e, i + 2)))) return true;
  }
  return false;
}

/**
 * Occurrences of the force tokens in `text`, leftmost first and, at one
 * position, the longest: sorted, non-overlapping [start, end) offsets.
 */
export function findForceOccurrences(text: string, forceTokens: readonly string[]): { start: Int32Array; end: Int32Array } {
  if (forceTokens.length === 0 || text.length === 0) return { start: new Int32Array(0), end: new Int32Array(0) };
  const sorted = [...new Set(forceTokens)].sort((a, b) => b.length - a.length);
  const re = new RegExp(sorted.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'gu');
  const s: number[] = [];
  const e: number[] = [];
  for (const m of text.matchAll(re)) {
    s.push(m.index);
    e.push(m.index + m[0].length);
  }
  return { start: Int32Array.from(s), end: Int32Array.from(e) };
}

/**
 * Groups the tokens of one context into words and scores them.
 * text: the context; tokStart/tokEnd/tokScore: its n scorer tokens and their
 * scores; bounds: chunk boundaries in token indices (chunk.ts); occStart/
 * occEnd: force occurrences (findForceOccurrences); reserveDigit: tokens with
 * a digit get F; mode: 'mean' or 'first'.
 */
export function groupWords(
  text: string,
  tokStart: Int32Array,
  tokEnd: Int32Array,
  tokScore: Float64Array,
  n: number,
  bounds: Int32Array,
  occStart: Int32Array,
  occEnd: Int32Array,
  reserveDigit: boolean,
  mode: WordProbMode,
): WordTable {
  const nOcc = occStart.length;
  // Which occurrence each token overlaps (-1: none), and which occurrences some token covers.
  const tokOcc = nOcc > 0 ? new Int32Array(n).fill(-1) : new Int32Array(0);
  const covered = new Uint8Array(nOcc);
  if (nOcc > 0) {
    let o = 0;
    for (let i = 0; i < n; i++) {
      const s = tokStart[i]!;
      const e = tokEnd[i]!;
      while (o < nOcc && occEnd[o]! <= s) o++;
      for (let p = o; p < nOcc && occStart[p]! < e; p++) {
        if (tokOcc[i] === -1) tokOcc[i] = p;
        covered[p] = 1;
      }
    }
  }

  const nChunks = bounds.length - 1;
  const cap = n + nOcc;
  const start = new Int32Array(cap);
  const end = new Int32Array(cap);
  const score = new Float64Array(cap);
  const raw = new Float64Array(cap);
  const forced = new Uint8Array(cap);
  const chunkWordStart = new Int32Array(nChunks + 1);
  const chunkForce = new Float64Array(nChunks);
  const chunkFloor = new Float64Array(nChunks);
  const first = mode === 'first';

  // The current word's sums and counts live in locals (no closure, no per-token arrays); a word's mean is
  // written when the next word starts and after the loop.
  let sum = 0, cnt = 0, rawSum = 0, rawCnt = 0;
  let w = -1; // current word
  let uo = 0; // next occurrence to consider as a virtual (uncovered) word
  for (let c = 0; c < nChunks; c++) {
    const t0 = bounds[c]!;
    const t1 = bounds[c + 1]!;
    let F = 1, L = 0;
    for (let i = t0; i < t1; i++) {
      const v = tokScore[i]!;
      if (v > F) F = v;
      if (v < L) L = v;
    }
    chunkForce[c] = F;
    chunkFloor[c] = L;
    const cEnd = c === nChunks - 1 ? text.length : tokStart[t1]!;
    chunkWordStart[c] = w + 1;
    let prevOcc = -2; // occurrence of the previous item; -2 = no previous item in this chunk
    let i = t0;
    for (;;) {
      while (uo < nOcc && covered[uo] === 1) uo++;
      const haveTok = i < t1;
      const haveOcc = uo < nOcc && occStart[uo]! < cEnd;
      if (!haveTok && !haveOcc) break;
      let s: number, e: number, occ: number, v: number, rawV: number;
      if (haveOcc && (!haveTok || occStart[uo]! < tokStart[i]!)) {
        s = occStart[uo]!;
        e = occEnd[uo]!;
        occ = uo;
        v = F;
        rawV = NaN;
        uo++;
      } else {
        s = tokStart[i]!;
        e = tokEnd[i]!;
        occ = nOcc > 0 ? tokOcc[i]! : -1;
        rawV = tokScore[i]!;
        v = occ >= 0 || (reserveDigit && hasDigit(text, s, e)) ? F : rawV;
        i++;
      }
      let isNew: boolean;
      if (prevOcc === -2) isNew = true;
      else if (occ >= 0) isNew = occ !== prevOcc;
      else if (prevOcc >= 0) isNew = true;
      else isNew = s === 0 || isSpaceCode(text.charCodeAt(s - 1)) || isPunctuation(text, s, e);
      if (isNew) {
        if (w >= 0 && !first) {
          score[w] = sum / cnt;
          raw[w] = rawCnt > 0 ? rawSum / rawCnt : NaN;
        }
        sum = 0; cnt = 0; rawSum = 0; rawCnt = 0;
        w++;
        start[w] = s;
        forced[w] = occ >= 0 ? 1 : 0;
        if (first) {
          score[w] = v;
          raw[w] = rawV;
        }
      }
      end[w] = e;
      sum += v;
      cnt++;
      if (rawV === rawV) {
        if (first && rawCnt === 0 && raw[w] !== raw[w]) raw[w] = rawV;
        rawSum += rawV;
        rawCnt++;
      }
      prevOcc = occ;
    }
  }
  chunkWordStart[nChunks] = w + 1;
  if (w >= 0 && !first) {
    score[w] = sum / cnt;
    raw[w] = rawCnt > 0 ? rawSum / rawCnt : NaN;
  }
  const nw = w + 1;
  return {
    n: nw,
    start: start.subarray(0, nw),
    end: end.subarray(0, nw),
    score: score.subarray(0, nw),
    raw: raw.subarray(0, nw),
    forced: forced.subarray(0, nw),
    chunkWordStart,
    chunkForce,
    chunkFloor,
  };
}
