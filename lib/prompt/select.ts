/**
 * LLMLingua-2's word selection for one context and the kept text, as
 * microsoft/LLMLingua `PromptCompressor.__compress`
 * (llmlingua/prompt_compressor.py), per chunk:
 *
 * 1. drop_consecutive (optional): threshold0 = percentile(word scores,
 *    trunc(100 * reduce)); a force word equal to the previous force word,
 *    with no word scoring above threshold0 in between, gets the chunk floor
 *    (official: 0.0);
 * 2. each word's score repeated once per target-LLM token of its text;
 *    threshold = percentile(repeated, trunc(100 * reduce + 1)) with
 *    reduce = 1 - rate (numpy linear interpolation, percentile.ts);
 * 3. keep a word when score > threshold, or threshold == F and score == F
 *    (official: threshold == 1.0 and prob == 1.0, so forced words survive a
 *    threshold made of forced words); with drop_consecutive a kept force word
 *    equal to the last kept word of the chunk is dropped.
 */
import { percentileInPlace } from './percentile.js';
import { isSpaceCode, type WordTable } from './words.js';
import type { CountTokens, Span } from './types.js';

/** The reusable scratch buffer of the percentile (grown as needed). */
export class Scratch {
  buf = new Float64Array(1024);
  get(n: number): Float64Array {
    if (this.buf.length < n) this.buf = new Float64Array(Math.max(n, this.buf.length * 2));
    return this.buf;
  }
}

export interface SelectOptions {
  /** 1 - rate, > 0. */
  reduce: number;
  /** Target-LLM tokens of text[s, e) (SpanCounter: each distinct word counted once). */
  countSpan: (s: number, e: number) => number;
  dropConsecutive: boolean;
  /** The force tokens (drop_consecutive compares word texts with them). */
  forceSet: ReadonlySet<string>;
  scratch: Scratch;
}

/** keep[w] = 1 for the words of `table` that survive; modifies table.score under dropConsecutive. */
export function selectWords(text: string, table: WordTable, o: SelectOptions): Uint8Array {
  const { n, start, end, score, forced, chunkWordStart, chunkForce, chunkFloor } = table;
  const keep = new Uint8Array(n);
  const counts = new Int32Array(n);
  for (let w = 0; w < n; w++) counts[w] = o.countSpan(start[w]!, end[w]!);
  const q = Math.trunc(100 * o.reduce + 1);
  const nChunks = chunkWordStart.length - 1;
  for (let c = 0; c < nChunks; c++) {
    const w0 = chunkWordStart[c]!;
    const w1 = chunkWordStart[c + 1]!;
    if (w1 === w0) continue;
    const F = chunkForce[c]!;
    if (o.dropConsecutive) dropRepeatedForceWords(text, table, w0, w1, Math.trunc(100 * o.reduce), chunkFloor[c]!, o);
    let total = 0;
    for (let w = w0; w < w1; w++) total += counts[w]!;
    // Words that cost no target token at all are free: an empty weighting keeps the whole chunk.
    let threshold = -Infinity;
    if (total > 0) {
      const a = o.scratch.get(total);
      let k = 0;
      for (let w = w0; w < w1; w++) {
        const s = score[w]!;
        for (let r = counts[w]!; r > 0; r--) a[k++] = s;
      }
      threshold = percentileInPlace(a, total, q);
    }
    let lastKept = -1;
    for (let w = w0; w < w1; w++) {
      const s = score[w]!;
      if (!(s > threshold || (threshold === F && s === F))) continue;
      if (o.dropConsecutive && lastKept >= 0 && forced[w] === 1) {
        const word = text.slice(start[w]!, end[w]!);
        if (o.forceSet.has(word) && text.slice(start[lastKept]!, end[lastKept]!) === word) continue;
      }
      keep[w] = 1;
      lastKept = w;
    }
  }
  return keep;
}

/** Step 1 (drop_consecutive) on the words [w0, w1) of one chunk. */
function dropRepeatedForceWords(text: string, table: WordTable, w0: number, w1: number, q: number, floor: number, o: SelectOptions): void {
  const { start, end, score } = table;
  const m = w1 - w0;
  const a = o.scratch.get(m);
  for (let w = w0; w < w1; w++) a[w - w0] = score[w]!;
  const threshold = percentileInPlace(a, m, q);
  let between = false;
  let prev: string | undefined;
  for (let w = w0; w < w1; w++) {
    const word = text.slice(start[w]!, end[w]!);
    if (o.forceSet.has(word)) {
      if (between) between = false;
      else if (word === prev) score[w] = floor;
      prev = word;
    } else if (score[w]! > threshold) {
      between = true;
    }
  }
}

/**
 * The kept spans (runs of consecutive kept words, with the input's text
 * between them) and the compressed text: the runs joined by " " where the
 * dropped stretch between two runs held whitespace and neither run already
 * ends / starts with whitespace, by "" otherwise. The text is assembled as
 * UTF-16 code units in one buffer (no per-run strings; lone surrogates kept).
 * The spans are appended to `spans` when given (the caller's result array).
 */
export function keptText<S extends Span>(
  text: string,
  table: WordTable,
  keep: Uint8Array,
  makeSpan: (start: number, end: number) => S,
  spans: S[] = [],
): { text: string; spans: S[] } {
  const { n, start, end } = table;
  // Runs as typed arrays first (a run per kept stretch; at most ceil(n / 2)).
  const cap = (n + 1) >> 1;
  const runStart = new Int32Array(cap);
  const runEnd = new Int32Array(cap);
  const runSpace = new Uint8Array(cap);
  let runs = 0;
  let total = 0;
  let w = 0;
  let prevEnd = -1;
  while (w < n) {
    if (keep[w] !== 1) {
      w++;
      continue;
    }
    const rs = start[w]!;
    let re = end[w]!;
    w++;
    while (w < n && keep[w] === 1) re = end[w++]!;
    const sp = prevEnd >= 0 && needsSpace(text, prevEnd, rs);
    runStart[runs] = rs;
    runEnd[runs] = re;
    runSpace[runs] = sp ? 1 : 0;
    runs++;
    total += re - rs + (sp ? 1 : 0);
    prevEnd = re;
  }
  const buf = new Uint16Array(total);
  let k = 0;
  for (let r = 0; r < runs; r++) {
    if (runSpace[r] === 1) buf[k++] = 32;
    const rs = runStart[r]!, re = runEnd[r]!;
    for (let i = rs; i < re; i++) buf[k++] = text.charCodeAt(i);
    spans.push(makeSpan(rs, re));
  }
  return { text: codeUnitsToString(buf), spans };
}

/** A string from UTF-16 code units, verbatim (fromCharCode in slices: no argument-count limit, no surrogate repair). */
function codeUnitsToString(buf: Uint16Array): string {
  const parts: string[] = [];
  for (let i = 0; i < buf.length; i += 8192) parts.push(String.fromCharCode.apply(null, buf.subarray(i, i + 8192) as unknown as number[]));
  return parts.join('');
}
function needsSpace(text: string, prevEnd: number, nextStart: number): boolean {
  if (isSpaceCode(text.charCodeAt(prevEnd - 1)) || isSpaceCode(text.charCodeAt(nextStart))) return false;
  for (let i = prevEnd; i < nextStart; i++) if (isSpaceCode(text.charCodeAt(i))) return true;
  return false;
}

/**
 * fillBudget (not in the official code): after the percentile rule, which
 * keeps just under the rate and a whole unit less where units are long
 * (sentences), the unkept words are added best score first while the
 * estimate (the kept text's tokens plus each added word's own count) stays
 * within `budget` target tokens; the real count of the kept text is then
 * checked and the last added words taken back until it fits. keep is
 * modified in place.
 */
export function fillToBudget(
  text: string,
  table: WordTable,
  keep: Uint8Array,
  budget: number,
  countWord: CountTokens,
  countText: CountTokens,
): void {
  const { n, start, end, score } = table;
  const keptCount = (): number => countText(keptText(text, table, keep, (s, e) => ({ start: s, end: e })).text);
  let estimate = keptCount();
  if (estimate >= budget) return;
  const order: number[] = [];
  for (let w = 0; w < n; w++) if (keep[w] !== 1) order.push(w);
  order.sort((a, b) => score[b]! - score[a]! || a - b);
  const added: number[] = [];
  for (const w of order) {
    const c = countWord(text.slice(start[w]!, end[w]!));
    if (estimate + c > budget) continue;
    keep[w] = 1;
    added.push(w);
    estimate += c;
  }
  while (added.length > 0 && keptCount() > budget) keep[added.pop()!] = 0;
}
