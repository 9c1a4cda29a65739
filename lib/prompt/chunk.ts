/**
 * Chunking of a context's scorer tokens into windows a scorer can take, as
 * microsoft/LLMLingua `PromptCompressor.__chunk_context`
 * (llmlingua/prompt_compressor.py): windows of at most `maxTokens` tokens,
 * each cut back to the last chunk-end token inside it.
 *
 * Differences (docs/prompt.md): the official window holds max_len + 1 = 511
 * tokens when no chunk end is found (the classifier's truncation then drops
 * the last one); ours holds exactly `maxTokens`. The official code sees only
 * tokens, so "\n" cuts only with tokenizers that keep newlines as tokens;
 * here a chunk-end string that lies in the gap after a token (whitespace
 * between tokens) marks that token as a chunk end too.
 */

/** Is there a chunk-end after token i: its text is one, or the gap before the next token (or the text end) contains one. */
function endsChunk(
  text: string,
  starts: Int32Array,
  ends: Int32Array,
  i: number,
  n: number,
  exact: ReadonlySet<string>,
  inGap: readonly string[],
): boolean {
  const s = starts[i]!;
  const e = ends[i]!;
  if (exact.has(text.slice(s, e))) return true;
  if (inGap.length === 0) return false;
  const gapEnd = i + 1 < n ? starts[i + 1]! : text.length;
  if (gapEnd === e) return false;
  const gap = text.slice(e, gapEnd);
  for (const t of inGap) if (gap.includes(t)) return true;
  return false;
}

/**
 * Token-index boundaries of the chunks: [0, b1, ..., n] (length chunks + 1).
 * text: the context; starts/ends: its n scorer tokens (UTF-16 offsets, in
 * order); maxTokens: window size (Infinity for one chunk); chunkEndTokens:
 * the strings that end a chunk ('.', '\n' by default). n = 0 gives [0, 0]: one empty chunk (its force occurrences still become words).
 */
export function chunkBoundaries(
  text: string,
  starts: Int32Array,
  ends: Int32Array,
  n: number,
  maxTokens: number,
  chunkEndTokens: readonly string[],
): Int32Array {
  if (n <= maxTokens) return Int32Array.of(0, n);
  const exact = new Set(chunkEndTokens);
  const out: number[] = [0];
  let st = 0;
  while (st < n) {
    if (n - st <= maxTokens) {
      out.push(n);
      break;
    }
    // Window [st, st + maxTokens): search back from its last token for a chunk end, never to st itself (as the official loop).
    let cut = st + maxTokens; // exclusive end when no chunk end is found
    for (let i = st + maxTokens - 1; i > st; i--) {
      if (endsChunk(text, starts, ends, i, n, exact, chunkEndTokens)) {
        cut = i + 1;
        break;
      }
    }
    out.push(cut);
    st = cut;
  }
  return Int32Array.from(out);
}
