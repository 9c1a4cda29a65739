/**
 * The mask of the exact byte-level probabilities (byte-probs.ts): "is a
 * prefix of some canonical encoding" instead of the official "is canonical"
 * (facebookresearch/Exact-Byte-Level-Probabilities-from-Tokenized-LMs,
 * src/string_processor/tokenizer_wrapper.py: _process_end_utf8 keeps t when
 * encode(decode(enc + [t])) == enc + [t]).
 *
 * Why: the official code assumes every prefix of a canonical encoding is
 * canonical. BPE inside one pre-token has that property, but a pre-tokenizer
 * regex with a lookahead does not: cl100k / o200k / Llama 3 split
 * `\s+(?!\S)` before a character that does not take the optional space, so
 * "         5" (9 spaces, "5") is [8 spaces, " ", "5"] while its prefix
 * [8 spaces, " "] decodes to 9 spaces, canonically ONE token. The "is
 * canonical" mask gives that text probability 0. A token sequence that may
 * still be extended (the prefix of a cover) must instead be a prefix of the
 * canonical encoding of SOME continuation of its bytes.
 *
 * Definition used here (and by the brute-force reference,
 * test/reference/tiny-bpe.ts): T is a canonical prefix when
 * encodeBytes(decode(T) y) starts with T for y = nothing or y = one of
 * CONTINUATION_PROBES (one character of each class the tiktoken / HF
 * ByteLevel regexes tell apart). The regexes look at most one character
 * ahead, so one character decides every boundary inside decode(T); what is
 * not covered: a continuation that completes a partial UTF-8 character (a
 * sequence ending inside a character counts only when it is canonical, as in
 * the official code).
 *
 * Rows (CanonicalPrefixRows.row): the mask over the vocabulary after a local
 * sequence L (the tokens from the last pre-token start), row[t] = 1 when
 * L t is a canonical prefix. Instead of one full check per token (vocab-size
 * encodes), for a ByteBpeVocab with one regex each token costs one sticky
 * regex match on decode(L) + token (the end e of the first pre-token), then:
 *   e = whole string: one piece, row[t] = (BPE of the bytes == L t), native;
 *   e inside the token: the token crosses a boundary, row[t] = 0;
 *   e <= |decode(L)|: L must split at e into BPE(first piece) + L', and
 *     row[t] = row(L')[t] (recursion; row([]) is computed once per vocab).
 * A regex with no look-behind restarts at e independently of what came
 * before, so this is encodeBytes(decode(L t)) == L t exactly. The probes can
 * only change a boundary decided by a look-ahead or `$` inside the trailing
 * whitespace run of the bytes: only tokens whose first piece reaches into
 * that run take the full check with the probes; a token that is not UTF-8
 * alone takes the check without them (a continuation joins an invalid tail's
 * segment, so it cannot help), and an L that is not UTF-8 takes the full
 * check for every token.
 *
 * Assumptions (the brute-force tests check them on a tiny BPE with the
 * same look-ahead): no look-behind in the regex; BPE of one piece is
 * prefix-closed (a prefix of BPE(w) ending at a token boundary is BPE of
 * those bytes).
 */
import { typeError } from '../errors.js';
import { checkInteger } from '../validate.js';
import { ByteBpeVocab } from './byte-bpe-vocab.js';
import type { TokenVocab } from './types.js';
import { utf8Decode, utf8Encode, validUtf8Prefix } from './utf8.js';

/** The continuations tried after the bytes (besides none): one character per class of the pre-tokenizer regexes. */
export const CONTINUATION_PROBES: readonly Uint8Array[] = Object.freeze(
  ['a', 'A', '0', ' ', '\n', '\r', '\t', '.', "'", '/'].map((c) => utf8Encode(c)),
);

function startsWith(enc: readonly number[], seq: readonly number[], last: number): boolean {
  const n = seq.length + (last >= 0 ? 1 : 0);
  if (enc.length < n) return false;
  for (let i = 0; i < seq.length; i++) if (enc[i] !== seq[i]) return false;
  return last < 0 || enc[seq.length] === last;
}

function concat(a: Uint8Array, b: Uint8Array, c?: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length + (c?.length ?? 0));
  out.set(a, 0);
  out.set(b, a.length);
  if (c) out.set(c, a.length + b.length);
  return out;
}

/**
 * The definition: seq (then token `last` when >= 0) is a prefix of
 * encodeBytes(bytes y), bytes = decode(seq, last), for y = nothing or a probe.
 * `probes: false` tries y = nothing only (the canonical check).
 */
export function canonicalPrefixCheck(vocab: TokenVocab, seq: readonly number[], last = -1, probes = true): boolean {
  const ids = last >= 0 ? [...seq, last] : [...seq];
  for (const id of ids) if (!vocab.isUsed(id) || vocab.isSpecial(id)) return false;
  const bytes = vocab.decodeBytes(ids);
  if (startsWith(vocab.encodeBytes(bytes), seq, last)) return true;
  if (!probes) return false;
  for (const y of CONTINUATION_PROBES) if (startsWith(vocab.encodeBytes(concat(bytes, y)), seq, last)) return true;
  return false;
}

/** True when ids is a prefix of the canonical encoding of its bytes or of its bytes and one probe character. */
export function isCanonicalPrefix(vocab: TokenVocab, ids: readonly number[]): boolean {
  if (vocab === null || typeof vocab !== 'object' || typeof (vocab as TokenVocab).encodeBytes !== 'function') {
    throw typeError('vocab', 'a TokenVocab (loadVocab)', vocab);
  }
  if (!Array.isArray(ids)) throw typeError('ids', 'an array of token ids', ids);
  ids.forEach((id, i) => checkInteger(`ids[${i}]`, id, 0, vocab.size - 1));
  return canonicalPrefixCheck(vocab, ids);
}

/** A UTF-16 unit that is whitespace for the pre-tokenizer regexes (JS \s, plus U+0085 which Rust's \s has). */
function isSpace(c: number): boolean {
  if (c === 0x20 || (c >= 0x09 && c <= 0x0d)) return true;
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** Per vocabulary: token strings (null when not valid UTF-8 alone) and the sticky first-piece regex. */
interface FastTables {
  strs: (string | null)[];
  sticky: RegExp;
  vocab: ByteBpeVocab;
}

function fastTables(vocab: TokenVocab, first: Int16Array): FastTables | null {
  if (!(vocab instanceof ByteBpeVocab) || vocab.patterns.length !== 1) return null;
  const strs: (string | null)[] = new Array<string | null>(vocab.size).fill(null);
  for (let t = 0; t < vocab.size; t++) {
    if (first[t]! < 0) continue;
    const b = vocab.tokenBytes(t);
    if (validUtf8Prefix(b) === b.length) strs[t] = utf8Decode(b);
  }
  return { strs, sticky: new RegExp(vocab.patterns[0]!, 'uy'), vocab };
}

/**
 * Mask rows "L t is a canonical prefix" over the vocabulary, memoized by L
 * (LRU of `memo` rows; the row after the empty L is kept for good).
 * first[t] < 0 marks tokens never allowed (unused, special, empty).
 */
export class CanonicalPrefixRows {
  readonly vocab: TokenVocab;
  readonly #first: Int16Array;
  readonly #memoSize: number;
  readonly #memo = new Map<string, Uint8Array>();
  #base: Uint8Array | null = null;
  #fast: FastTables | null | undefined;
  /** Rows computed, memo hits, tokens that took the full check. */
  readonly stats = { rows: 0, hits: 0, slow: 0 };

  constructor(vocab: TokenVocab, first: Int16Array, memo: number) {
    this.vocab = vocab;
    this.#first = first;
    this.#memoSize = memo;
  }

  /** row[t] = 1 when local + [t] is a canonical prefix (local: tokens from the last pre-token start). */
  row(local: readonly number[]): Uint8Array {
    if (local.length === 0 && this.#base) return this.#base;
    const key = local.join(',');
    const hit = this.#memo.get(key);
    if (hit) {
      this.stats.hits++;
      this.#memo.delete(key);
      this.#memo.set(key, hit);
      return hit;
    }
    const row = this.#compute(local);
    this.stats.rows++;
    if (local.length === 0) this.#base = row;
    else if (this.#memoSize > 0) {
      if (this.#memo.size >= this.#memoSize) this.#memo.delete(this.#memo.keys().next().value!);
      this.#memo.set(key, row);
    }
    return row;
  }

  /** The full check for one token (the definition). */
  #slow(local: readonly number[], t: number): number {
    this.stats.slow++;
    return canonicalPrefixCheck(this.vocab, local, t) ? 1 : 0;
  }

  #compute(local: readonly number[]): Uint8Array {
    const first = this.#first;
    const row = new Uint8Array(first.length);
    if (this.#fast === undefined) this.#fast = fastTables(this.vocab, first);
    const fast = this.#fast;
    const u = this.vocab.decodeBytes(local);
    if (fast === null || validUtf8Prefix(u) !== u.length) {
      for (let t = 0; t < first.length; t++) if (first[t]! >= 0) row[t] = this.#slow(local, t);
      return row;
    }
    const uStr = utf8Decode(u);
    const { strs, sticky, vocab } = fast;
    // e (UTF-16 end of the first piece, <= |u|) -> [k, sub-row] or null: local splits there into BPE(u[0, e)) + local[k:].
    const splits = new Map<number, { sub: Uint8Array } | null>();
    const splitAt = (e: number): { sub: Uint8Array } | null => {
      let s = splits.get(e);
      if (s !== undefined) return s;
      s = null;
      const eb = Buffer.byteLength(uStr.slice(0, e), 'utf8');
      let acc = 0, k = 0;
      while (acc < eb && k < local.length) acc += vocab.tokenBytes(local[k++]!).length;
      if (acc === eb && k > 0) {
        const head = vocab.encodePiece(u.subarray(0, eb));
        let same = head.length === k;
        for (let i = 0; same && i < k; i++) same = head[i] === local[i];
        if (same) s = { sub: this.row(local.slice(k)) };
      }
      splits.set(e, s);
      return s;
    };
    const want = [...local, 0];
    let buf = new Uint8Array(u.length + 64);
    buf.set(u);
    for (let t = 0; t < first.length; t++) {
      if (first[t]! < 0) continue;
      const ts = strs[t];
      if (ts === null || ts === undefined) {
        // Not UTF-8 alone: the bytes end in an invalid tail, which encodeBytes
        // merges with the last pre-token; a continuation joins that segment, so
        // (BPE being prefix-closed) only the bytes as they are can make it canonical.
        this.stats.slow++;
        row[t] = canonicalPrefixCheck(vocab, local, t, false) ? 1 : 0;
        continue;
      }
      const z = uStr + ts;
      sticky.lastIndex = 0;
      const m = sticky.exec(z);
      const e = m === null ? 0 : m[0].length;
      // Bytes that end in whitespace: a continuation may move a boundary (look-ahead,
      // `$`) inside or at the start of that whitespace run, not a first piece ending before it.
      let wsAt = z.length;
      while (wsAt > 0 && isSpace(z.charCodeAt(wsAt - 1))) wsAt--;
      const ws = e > wsAt;
      if (e === 0) {
        row[t] = this.#slow(local, t); // no piece at 0 (a gap): not the tiktoken shape
      } else if (e >= z.length) {
        const tb = vocab.tokenBytes(t);
        if (buf.length < u.length + tb.length) {
          buf = new Uint8Array(u.length + tb.length);
          buf.set(u);
        }
        buf.set(tb, u.length);
        const enc = vocab.encodePiece(buf.subarray(0, u.length + tb.length));
        want[local.length] = t;
        let ok = enc.length === want.length;
        for (let i = 0; ok && i < want.length; i++) ok = enc[i] === want[i];
        row[t] = ok ? 1 : ws ? this.#slow(local, t) : 0;
      } else if (ws) {
        row[t] = this.#slow(local, t);
      } else if (e <= uStr.length) {
        const s = splitAt(e);
        row[t] = s !== null && s.sub[t] === 1 ? 1 : 0;
      } // else: the first piece ends inside the token, which crosses a boundary: 0
    }
    return row;
  }
}
