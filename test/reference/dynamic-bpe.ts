/**
 * Slow reference of dynamic tokenization: the official loop of
 * DariusFeher/dynamic-tokenization (tokenizations/dynamic_bpe.py,
 * Dynamic_BPE.tokenize_batch) written out directly: each merge recounts every
 * valid adjacent pair of the batch in an insertion-ordered Map (Python's
 * Counter), takes the first pair of highest count (Python's max over the
 * Counter), then rewrites each sequence left to right. It also carries each
 * token's base start, so the native result's `starts` can be checked.
 * `onMerge` hears of each merge before the next count (new ids' bytes).
 */
export interface ReferenceDynamicResult {
  sequences: number[][];
  starts: number[][];
  merges: { a: number; b: number; id: number; count: number; applied: number }[];
}

export function referenceDynamicBpe(
  batch: readonly (readonly number[])[],
  isValid: (a: number, b: number) => boolean,
  firstNewId: number,
  maxMerges: number,
  opts: { targetTotal?: number; minCount?: number; onMerge?: (a: number, b: number, id: number) => void } = {},
): ReferenceDynamicResult {
  let seqs = batch.map((s) => [...s]);
  let starts = batch.map((s) => s.map((_, i) => i));
  const merges: ReferenceDynamicResult['merges'] = [];
  const total = () => seqs.reduce((n, s) => n + s.length, 0);
  while (merges.length < maxMerges && total() > (opts.targetTotal ?? 0)) {
    const counts = new Map<string, number>();
    for (const s of seqs) {
      for (let i = 0; i + 1 < s.length; i++) {
        if (!isValid(s[i]!, s[i + 1]!)) continue;
        const k = `${s[i]},${s[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    }
    let best = '';
    let bestCount = 0;
    for (const [k, c] of counts) {
      if (c > bestCount) [best, bestCount] = [k, c];
    }
    if (bestCount === 0 || bestCount < (opts.minCount ?? 1)) break;
    const [a, b] = best.split(',').map(Number) as [number, number];
    const id = firstNewId + merges.length;
    opts.onMerge?.(a, b, id);
    let applied = 0;
    const nextSeqs: number[][] = [];
    const nextStarts: number[][] = [];
    seqs.forEach((s, si) => {
      const out: number[] = [];
      const st: number[] = [];
      for (let i = 0; i < s.length; ) {
        st.push(starts[si]![i]!);
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
          out.push(id);
          applied++;
          i += 2;
        } else {
          out.push(s[i]!);
          i += 1;
        }
      }
      nextSeqs.push(out);
      nextStarts.push(st);
    });
    seqs = nextSeqs;
    starts = nextStarts;
    merges.push({ a, b, id, count: bestCount, applied });
  }
  return { sequences: seqs, starts, merges };
}

/** GPT-2's bytes_to_unicode: the ByteLevel character of each byte (the official code's token strings). */
function byteLevelChars(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const chars: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) chars[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return chars;
}
const BYTE_CHARS = byteLevelChars();

/**
 * is_valid_pair of the official code, over ByteLevel strings as it is
 * written there: spacelike characters 'ĉĠĊ', the "ĊĊ" exception, specials,
 * then UTF-8 decoding and the boundary test (`pieces` counts the pieces of
 * the decoded string: the pre-tokenizer or a whitespace split).
 */
export function referenceIsValidPair(
  bytesA: Uint8Array, bytesB: Uint8Array, specialA: boolean, specialB: boolean,
  boundary: 'pretoken' | 'word' | 'sentence', pieces: (text: string, bytes: Uint8Array) => number,
): boolean {
  const s = [...bytesA, ...bytesB].map((b) => BYTE_CHARS[b]!).join('');
  const spacelike = 'ĉĠĊ';
  const chars = [...s];
  if (chars.slice(1).some((c) => spacelike.includes(c)) && (s === 'ĊĊ' || !chars.every((c) => spacelike.includes(c)))) return false;
  if (specialA || specialB) return false;
  if (boundary === 'sentence') return true;
  const bytes = new Uint8Array([...bytesA, ...bytesB]);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return true;
  }
  return pieces(text, bytes) === 1;
}
