/**
 * ByteBpeVocab: the TokenVocab of a byte-level BPE tokenizer (tiktoken ranks
 * or an HF tokenizer.json with ByteLevel + Split regex), all in bytes.
 *
 * Layout: every token's bytes in one blob (`offsets[id] .. offsets[id + 1]`),
 * a flag per id (unused / ordinary / special), a Map from the latin1 key of an
 * ordinary token's bytes to its id. Encoding = regex pre-tokens
 * (pretokenize.ts), then BPE per pre-token (bpe-merge.ts).
 */
import { TokenpressError } from '../errors.js';
import { native, type NativeTokCore } from '../native.js';
import { checkBytes, checkId, checkIds, checkText } from './args.js';
import { mergeByPairs, mergeByRanks } from './bpe-merge.js';
import { PairTable } from './pair-table.js';
import { regexPretokenStarts } from './pretokenize.js';
import type { TokenVocabIndex, VocabKind } from './types.js';
import { bytesKey, utf8Decode, utf8Encode, validUtf8Prefix } from './utf8.js';

const UNUSED = 0;
const PIECE_START = Int32Array.of(0);
const ORDINARY = 1;
const SPECIAL = 2;

/** What a byte-level BPE vocabulary is built from. */
export interface ByteBpeSpec {
  name: string;
  /** Ordinary tokens' bytes by id (undefined: a hole). */
  tokens: readonly (Uint8Array | undefined)[];
  /** Special tokens: literal text and id (ids outside the ordinary ones). */
  specials: readonly (readonly [string, number])[];
  /**
   * The pre-tokenizer: JS regex sources for the `gu` flags, applied in
   * sequence (each splits the pieces of the previous one; one for tiktoken).
   */
  patterns: readonly string[];
  /**
   * HF merges as id pairs [left0, right0, left1, right1, ...] in priority
   * order; absent: tiktoken semantics (the rank of a byte string is its id).
   */
  merges?: Int32Array;
  /** HF `ignore_merges`: a pre-token that is a token is emitted whole (tiktoken always does). */
  ignoreMerges?: boolean;
  /** Unicode normalization encode(text) applies first (HF normalizer, e.g. Qwen's NFC); encodeBytes never normalizes. */
  normalize?: 'NFC';
  /**
   * 'native' (default): BPE, the byte-string hash and the token trie in C++
   * (native/text/bpe.h, token_trie.h). 'ts': the TypeScript reference
   * (bpe-merge.ts; tokensWithPrefix / tokensPrefixOf by a scan of every token).
   */
  engine?: 'native' | 'ts';
}

export class ByteBpeVocab implements TokenVocabIndex {
  readonly name: string;
  readonly kind: VocabKind = 'byte-bpe';
  readonly size: number;
  /** The pre-tokenizer regex sources (flags gu), applied in sequence. */
  readonly patterns: readonly string[];
  readonly normalize: 'NFC' | undefined;
  private readonly blob: Uint8Array;
  private readonly offsets: Int32Array;
  private readonly flags: Uint8Array;
  readonly engine: 'native' | 'ts';
  private readonly regexes: readonly RegExp[];
  private readonly ignoreMerges: boolean;
  // engine 'native'
  private readonly core: NativeTokCore | undefined;
  // engine 'ts'
  private readonly ids = new Map<string, number>();
  private readonly pairs: PairTable | undefined;
  private readonly byteIds = new Int32Array(256).fill(-1);

  constructor(spec: ByteBpeSpec) {
    this.name = spec.name;
    this.engine = spec.engine ?? 'native';
    this.patterns = Object.freeze([...spec.patterns]);
    this.normalize = spec.normalize;
    if (spec.patterns.length === 0) throw new TokenpressError('ERR_BAD_FILE', `${spec.name}: no pre-tokenizer pattern`);
    this.regexes = spec.patterns.map((p) => new RegExp(p, 'gu'));
    let size = spec.tokens.length;
    for (const [, id] of spec.specials) size = Math.max(size, id + 1);
    this.size = size;
    this.flags = new Uint8Array(size);
    this.offsets = new Int32Array(size + 1);
    const specialBytes = new Map<number, Uint8Array>();
    for (const [text, id] of spec.specials) {
      if (spec.tokens[id] !== undefined) throw new TokenpressError('ERR_BAD_FILE', `${spec.name}: special token ${JSON.stringify(text)} reuses ordinary id ${id}`);
      specialBytes.set(id, utf8Encode(text));
    }
    let total = 0;
    for (let id = 0; id < size; id++) total += (spec.tokens[id] ?? specialBytes.get(id))?.length ?? 0;
    this.blob = new Uint8Array(total);
    let at = 0;
    const ts = this.engine === 'ts';
    const keys: string[] = ts ? new Array(size) : [];
    for (let id = 0; id < size; id++) {
      this.offsets[id] = at;
      const t = spec.tokens[id];
      const b = t ?? specialBytes.get(id);
      if (b === undefined) continue;
      this.blob.set(b, at);
      at += b.length;
      if (t === undefined) { this.flags[id] = SPECIAL; continue; }
      if (t.length === 0) throw new TokenpressError('ERR_BAD_FILE', `${spec.name}: token ${id} has no bytes`);
      this.flags[id] = ORDINARY;
      if (!ts) continue;
      const key = bytesKey(t);
      keys[id] = key;
      if (!this.ids.has(key)) this.ids.set(key, id); // a duplicate keeps the lowest id
      if (t.length === 1 && this.byteIds[t[0]!] === -1) this.byteIds[t[0]!] = id;
    }
    this.offsets[size] = at;
    this.ignoreMerges = spec.merges === undefined ? true : spec.ignoreMerges === true;
    if (!ts) {
      const ordinary = new Uint8Array(size);
      for (let id = 0; id < size; id++) ordinary[id] = this.flags[id] === ORDINARY ? 1 : 0;
      try {
        this.core = native().tokCoreNew(this.blob, this.offsets, ordinary, spec.merges, this.ignoreMerges);
      } catch (e) {
        throw new TokenpressError('ERR_BAD_FILE', `${spec.name}: ${(e as Error).message}`, { cause: e });
      }
      return;
    }
    for (let b = 0; b < 256; b++) {
      if (this.byteIds[b] === -1) throw new TokenpressError('ERR_BAD_FILE', `${spec.name}: bpe: byte ${b} is not a token (not a byte-level vocabulary)`);
    }
    if (spec.merges !== undefined) {
      const m = spec.merges;
      const pairs = new PairTable(m.length >> 1);
      for (let r = 0; 2 * r + 1 < m.length; r++) {
        const left = m[2 * r]!;
        const right = m[2 * r + 1]!;
        const kl = keys[left];
        const kr = keys[right];
        const merged = kl === undefined || kr === undefined ? undefined : this.ids.get(kl + kr);
        if (merged === undefined) throw new TokenpressError('ERR_BAD_FILE', `${spec.name}: bpe: merge ${r} gives a byte string that is not a token`);
        pairs.set(left, right, r * size + merged); // a later duplicate replaces an earlier one (HF builds a HashMap)
      }
      this.pairs = pairs;
    }
  }

  private bytesOf(id: number): Uint8Array {
    return this.blob.subarray(this.offsets[id]!, this.offsets[id + 1]!);
  }

  tokenBytes(id: number): Uint8Array {
    checkId('id', id, this.size);
    return this.bytesOf(id);
  }

  isSpecial(id: number): boolean {
    checkId('id', id, this.size);
    return this.flags[id] === SPECIAL;
  }

  isUsed(id: number): boolean {
    checkId('id', id, this.size);
    return this.flags[id] !== UNUSED;
  }

  /** Ordinary tokens only: a special token's literal text is not one token to encodeBytes. */
  idOf(bytes: Uint8Array): number {
    checkBytes('bytes', bytes);
    if (bytes.length === 0) return -1;
    if (this.core !== undefined) return native().tokCoreIdOf(this.core, bytes);
    return this.ids.get(bytesKey(bytes)) ?? -1;
  }

  /**
   * Ids of the ordinary tokens whose bytes start with `bytes` (all of them
   * for empty bytes), in byte-lexicographic order of their bytes: the
   * subtree of the token trie under `bytes`.
   */
  tokensWithPrefix(bytes: Uint8Array): Int32Array {
    checkBytes('bytes', bytes);
    if (this.core !== undefined) return native().tokCoreWithPrefix(this.core, bytes);
    const found: [string, number][] = [];
    for (let id = 0; id < this.size; id++) {
      if (this.flags[id] !== ORDINARY) continue;
      const t = this.bytesOf(id);
      if (t.length >= bytes.length && t.subarray(0, bytes.length).every((b, i) => b === bytes[i])) found.push([bytesKey(t), id]);
    }
    found.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]));
    return Int32Array.from(found, (f) => f[1]);
  }

  /** Ids of the ordinary tokens whose bytes are a prefix of `bytes` (non-empty), shortest first. */
  tokensPrefixOf(bytes: Uint8Array): Int32Array {
    checkBytes('bytes', bytes);
    if (this.core !== undefined) return native().tokCorePrefixOf(this.core, bytes);
    const out: number[] = [];
    for (let n = 1; n <= bytes.length; n++) {
      const id = this.ids.get(bytesKey(bytes, 0, n));
      if (id !== undefined) out.push(id);
    }
    return Int32Array.from(out);
  }

  pretokenStarts(bytes: Uint8Array): number[] {
    checkBytes('bytes', bytes);
    return this.segment(bytes).starts;
  }

  encodeBytes(bytes: Uint8Array): number[] {
    checkBytes('bytes', bytes);
    return this.segment(bytes).ids;
  }

  encode(text: string): number[] {
    checkText('text', text);
    return this.segment(utf8Encode(this.normalize ? text.normalize(this.normalize) : text)).ids;
  }

  /** Ids of the pieces bytes[starts[k], starts[k + 1] ?? bytes.length), appended to out. */
  private encodePieces(bytes: Uint8Array, starts: readonly number[], out: number[]): void {
    if (bytes.length === 0) return;
    if (this.core !== undefined) {
      const ids = native().tokCoreEncode(this.core, bytes, Int32Array.from(starts));
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
      return;
    }
    const all = bytesKey(bytes);
    for (let k = 0; k < starts.length; k++) {
      const piece = all.slice(starts[k]!, starts[k + 1] ?? bytes.length);
      if (this.pairs === undefined) mergeByRanks(piece, this.ids, out);
      else mergeByPairs(piece, this.ids, this.pairs, this.size, this.byteIds, this.ignoreMerges, out);
    }
  }

  /** Token ids made only of ' ', '\n', '\t' (tiktoken's token_is_all_space). */
  private isAllSpace(id: number): boolean {
    const end = this.offsets[id + 1]!;
    let at = this.offsets[id]!;
    if (at === end) return false;
    for (; at < end; at++) {
      const b = this.blob[at]!;
      if (b !== 0x20 && b !== 0x0a && b !== 0x09) return false;
    }
    return true;
  }

  /**
   * The canonical encoding and the starts of its independently merged
   * segments. Valid UTF-8: the regex pre-tokens. With an invalid or
   * incomplete tail (tiktoken `_encode_bytes`): the valid prefix is encoded,
   * the last pre-token's tokens are taken back, together with the all-space
   * tokens before them when its first token is all-space (tiktoken's
   * `_increase_last_piece_token_len`), and those bytes plus the tail are
   * merged as one segment.
   */
  private segment(bytes: Uint8Array): { ids: number[]; starts: number[] } {
    const n = bytes.length;
    const valid = validUtf8Prefix(bytes);
    const starts = regexPretokenStarts(valid === n ? bytes : bytes.subarray(0, valid), this.regexes);
    const ids: number[] = [];
    if (valid === n) {
      this.encodePieces(bytes, starts, ids);
      return { ids, starts };
    }
    let lastCount = 0;
    if (starts.length > 0) {
      const last = starts[starts.length - 1]!;
      this.encodePieces(bytes.subarray(0, last), starts.slice(0, -1), ids);
      const before = ids.length;
      this.encodePieces(bytes.subarray(last, valid), [0], ids);
      lastCount = ids.length - before;
    }
    if (lastCount > 0 && this.isAllSpace(ids[ids.length - lastCount]!)) {
      while (lastCount < ids.length && this.isAllSpace(ids[ids.length - lastCount - 1]!)) lastCount++;
    }
    let from = valid;
    for (let j = ids.length - lastCount; j < ids.length; j++) from -= this.offsets[ids[j]! + 1]! - this.offsets[ids[j]!]!;
    ids.length -= lastCount;
    while (starts.length > 0 && starts[starts.length - 1]! >= from) starts.pop();
    starts.push(from);
    this.encodePieces(bytes.subarray(from), [0], ids);
    return { ids, starts };
  }

  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    checkIds('ids', ids, this.size);
    let n = 0;
    for (let i = 0; i < ids.length; i++) n += this.offsets[ids[i]! + 1]! - this.offsets[ids[i]!]!;
    const out = new Uint8Array(n);
    let at = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.bytesOf(ids[i]!);
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    return utf8Decode(this.decodeBytes(ids));
  }

  /**
   * BPE of `bytes` as ONE pre-token (no regex split, no UTF-8 tail rule): the
   * merge step alone, for callers that found the pre-token boundaries
   * themselves (byte-probs' canonical-prefix rows). Empty bytes: [].
   */
  encodePiece(bytes: Uint8Array): ArrayLike<number> {
    checkBytes('bytes', bytes);
    if (bytes.length === 0) return [];
    if (this.core !== undefined) return native().tokCoreEncode(this.core, bytes, PIECE_START);
    const ids: number[] = [];
    this.encodePieces(bytes, [0], ids);
    return ids;
  }

  /** False for any unused or special id (encodeBytes never emits one). */
  isCanonical(ids: ArrayLike<number>): boolean {
    checkIds('ids', ids, this.size);
    for (let i = 0; i < ids.length; i++) if (this.flags[ids[i]!] !== ORDINARY) return false;
    const again = this.segment(this.decodeBytes(ids)).ids;
    if (again.length !== ids.length) return false;
    for (let i = 0; i < again.length; i++) if (again[i] !== ids[i]) return false;
    return true;
  }
}
