/**
 * The stage-2 pre-tokenizer of SuperBPE: the split that still holds once
 * merges may cross whitespace. The pattern is the official one
 * (github.com/PythonNut/superbpe, scripts/extend_tokenizer.sh and
 * scripts/extend_existing_tokenizer.sh, `regex_string`), used as a
 * Hugging Face `Split` pre-tokenizer with behavior "isolated" (utils.py,
 * train_or_extend_tokenizer): every match is a piece of its own and so is the
 * text between two matches. Matches (never merged with their neighbours):
 *   - `\p{N}{1,3}`: digits, in groups of at most three;
 *   - ` ?[^\s\p{L}\p{N}]{2,}[\r\n/]*`: runs of two or more punctuation marks,
 *     with an optional leading space and trailing newlines or slashes;
 *   - ` +(?!\S)`: runs of spaces not followed by a word (the last space of a
 *     run stays with the next word, as in tiktoken's `\s+(?!\S)`).
 * Everything else (letters, single spaces, single punctuation marks,
 * newlines) may be merged into one token: that is what lets supertokens span
 * words. The cap on words per token is a training rule (maxWords), not part
 * of the split.
 */

/** The stage-2 pattern as written in the official scripts (Oniguruma / Rust regex syntax; the same in JS `u` mode). */
export const STAGE2_PATTERN = String.raw`\p{N}{1,3}| ?[^\s\p{L}\p{N}]{2,}[\r\n/]*| +(?!\S)`;

const STAGE2 = new RegExp(STAGE2_PATTERN, 'gu');

/** Splits text into stage-2 pieces (isolated matches and the gaps between them, no empty piece); their concatenation is the text. */
export function splitStage2(text: string): string[] {
  const pieces: string[] = [];
  let last = 0;
  STAGE2.lastIndex = 0;
  for (let m = STAGE2.exec(text); m !== null; m = STAGE2.exec(text)) {
    if (m[0].length === 0) {
      STAGE2.lastIndex++; // the pattern cannot match empty, but never loop
      continue;
    }
    if (m.index > last) pieces.push(text.slice(last, m.index));
    pieces.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) pieces.push(text.slice(last));
  return pieces;
}
