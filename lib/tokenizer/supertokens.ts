/**
 * Supertokens: SuperBPE stage 2 on top of an existing byte-level BPE
 * tokenizer (Liu et al. 2025, "SuperBPE: Space Travel for Language Models";
 * official code github.com/PythonNut/superbpe: scripts/extend_existing_tokenizer.sh
 * resumes training from a tokenizer's merges with the stage-2 regex, utils.py
 * train_or_extend_tokenizer runs the Hugging Face BpeTrainer).
 *
 * Stage 1 is the base tokenizer's own merges (given). Stage 2: the training
 * text is split by the stage-2 pre-tokenizer (supertokens-pretokenize.ts),
 * which no longer splits at single spaces or newlines; each distinct chunk
 * is encoded with the base merges (counted once, weighted by how often it
 * occurs), then the most frequent adjacent pair inside a chunk is merged
 * into a new token, again and again, N times (native/text/pair_count.cpp).
 * Ties go to the smaller (left id, right id) pair, as in the BpeTrainer.
 *
 * Where we differ from the official code: a merge whose bytes already name a
 * token is skipped (the HF trainer would add a duplicate vocabulary string);
 * a new token may span at most `maxWords` whitespace-separated words (default
 * 4; the official scripts have no such cap, it is an option here, 0 = none);
 * pairs rarer than `minCount` (default 2) are never merged.
 *
 * The result encodes like Hugging Face tokenizers would with the written
 * tokenizer.json: the stage-2 Split, ByteLevel bytes, then all merges (base
 * first, then the new ones) in rank order over each piece.
 */
import { TokenpressError } from '../errors.js';
import { native } from '../native.js';
import { checkInteger, checkOptions } from '../validate.js';
import { bytesToByteLevel } from './byte-level-encode.js';
import { mergesFromRanks, type RankedVocab } from './merges-from-ranks.js';
import { splitStage2, STAGE2_PATTERN } from './supertokens-pretokenize.js';

export { STAGE2_PATTERN, splitStage2 } from './supertokens-pretokenize.js';
export type { RankedVocab } from './merges-from-ranks.js';

export interface SupertokenOptions {
  /** New tokens to learn (fewer if the pairs run out), in [0, 2^31 - vocab size). */
  tokens: number;
  /** Most whitespace-separated words in one new token; 0 = no limit. Default 4. */
  maxWords?: number;
  /** Stop when the best pair occurs fewer times. Default 2. */
  minCount?: number;
  /** Called every 64 merges with (done, total); return false to stop early. */
  onProgress?: (done: number, total: number) => boolean | void;
}

export interface SupertokenStats {
  textBytes: number;
  chunks: number;
  uniqueChunks: number;
  /** Base-merge tokens of the training text under the stage-2 split (before any new merge). */
  baseTokens: number;
  /** New tokens learned. */
  learned: number;
  /** Occurrence count of each new token's pair when it was merged [learned]. */
  mergeCounts: Float64Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A byte-level BPE tokenizer: base vocabulary + merges, plus new tokens,
 * with the stage-2 pre-tokenizer. Ids below `baseSize` are the base's.
 */
export class Supertokenizer {
  readonly name: string;
  readonly baseSize: number;
  /** baseSize + number of new tokens. */
  readonly size: number;
  /** All merges int32 [m, 3] (left, right, result): base merges, then the new ones. */
  readonly merges: Int32Array;
  readonly byteIds: Int32Array;
  readonly #bytes: Uint8Array[];
  readonly #special: Set<number>;
  readonly #base: RankedVocab;
  readonly #baseMerges: Int32Array;
  readonly #newPairs: Int32Array;

  /** @internal Use trainSupertokens. */
  constructor(name: string, base: RankedVocab, baseMerges: Int32Array, byteIds: Int32Array, newPairs: Int32Array) {
    this.name = name;
    this.#base = base;
    this.#baseMerges = baseMerges;
    this.#newPairs = newPairs;
    this.baseSize = base.size;
    this.byteIds = byteIds;
    const n = newPairs.length / 2;
    this.size = base.size + n;
    const bytes: Uint8Array[] = [];
    const special = new Set<number>();
    for (let id = 0; id < base.size; id++) {
      bytes.push(base.isUsed(id) ? base.tokenBytes(id).slice() : new Uint8Array(0));
      if (base.isUsed(id) && base.isSpecial(id)) special.add(id);
    }
    const merges = new Int32Array(baseMerges.length + 3 * n);
    merges.set(baseMerges);
    for (let k = 0; k < n; k++) {
      const a = newPairs[2 * k]!, b = newPairs[2 * k + 1]!;
      const joined = new Uint8Array(bytes[a]!.length + bytes[b]!.length);
      joined.set(bytes[a]!);
      joined.set(bytes[b]!, bytes[a]!.length);
      bytes.push(joined);
      merges.set([a, b, base.size + k], baseMerges.length + 3 * k);
    }
    this.merges = merges;
    this.#bytes = bytes;
    this.#special = special;
  }

  /** The tokenizer with only the first n new tokens (BPE training is sequential: what training for n tokens would give). */
  withTokens(n: number): Supertokenizer {
    checkInteger('n', n, 0, this.size - this.baseSize);
    const name = this.name.replace(/\+super\d+$/, '') + `+super${n}`;
    return new Supertokenizer(name, this.#base, this.#baseMerges, this.byteIds, this.#newPairs.slice(0, 2 * n));
  }

  /** The bytes of token id (a copy). */
  tokenBytes(id: number): Uint8Array {
    checkInteger('id', id, 0, this.size - 1);
    return this.#bytes[id]!.slice();
  }

  /** Encodes text: stage-2 pieces, then rank-ordered BPE over all merges (no special tokens parsed). */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new TypeError(`text: expected a string, received ${typeof text}`);
    return Array.from(this.#encodePieces(splitStage2(text)).ids);
  }

  /** Concatenated token bytes decoded as UTF-8 (invalid sequences become U+FFFD). */
  decode(ids: ArrayLike<number>): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.size) {
        throw new RangeError(`ids[${i}]: expected an integer id in [0, ${this.size - 1}], received ${String(id)}`);
      }
      parts.push(this.#bytes[id]!);
      total += this.#bytes[id]!.length;
    }
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return decoder.decode(out);
  }

  /** @internal Encodes pieces in one native call: ids and the end of each piece's ids. */
  #encodePieces(pieces: readonly string[]): { ids: Int32Array; ends: Int32Array } {
    return encodePieces(this.merges, this.size, this.byteIds, pieces);
  }

  /** The Hugging Face tokenizer.json object (BPE model, Split(stage 2) + ByteLevel pre-tokenizer, ByteLevel decoder). */
  toTokenizerJson(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    const added: Record<string, unknown>[] = [];
    for (let id = 0; id < this.size; id++) {
      const b = this.#bytes[id]!;
      if (b.length === 0) continue; // a hole in the base ids
      if (this.#special.has(id)) {
        const content = decoder.decode(b);
        added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
        vocab[content] = id;
      } else {
        vocab[bytesToByteLevel(b)] = id;
      }
    }
    const merges: [string, string][] = [];
    for (let r = 0; r < this.merges.length; r += 3) {
      merges.push([bytesToByteLevel(this.#bytes[this.merges[r]!]!), bytesToByteLevel(this.#bytes[this.merges[r + 1]!]!)]);
    }
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: STAGE2_PATTERN }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges,
      },
    };
  }
}

/** Rank-ordered BPE of each piece (UTF-8) in one native call. */
function encodePieces(merges: Int32Array, nIds: number, byteIds: Int32Array, pieces: readonly string[]): { ids: Int32Array; ends: Int32Array } {
  const encoded = pieces.map((p) => encoder.encode(p));
  let total = 0;
  for (const e of encoded) total += e.length;
  if (total > 0x7fffffff) throw new RangeError(`text: expected under 2^31 bytes, received ${total}`);
  const bytes = new Uint8Array(total);
  const pieceOffsets = new Int32Array(encoded.length + 1);
  let o = 0;
  encoded.forEach((e, i) => {
    bytes.set(e, o);
    o += e.length;
    pieceOffsets[i + 1] = o;
  });
  return native().bpeEncodePieces({ merges, nIds, byteIds, bytes, pieceOffsets });
}

function checkVocab(base: unknown): RankedVocab {
  const v = base as RankedVocab;
  if (v === null || typeof v !== 'object' || typeof v.tokenBytes !== 'function' || typeof v.isUsed !== 'function' ||
      typeof v.isSpecial !== 'function' || !Number.isInteger(v.size) || v.size < 256) {
    throw new TypeError('base: expected a TokenVocab (size >= 256, tokenBytes, isUsed, isSpecial)');
  }
  return v;
}

/** Checked options, the base merges, and the native training arguments. */
interface Prepared {
  vocab: RankedVocab;
  tokens: number;
  baseMerges: Int32Array;
  byteIds: Int32Array;
  onProgress: SupertokenOptions['onProgress'];
  args: { tokens: Int32Array; offsets: Int32Array; counts: Int32Array; vocabBytes: Uint8Array; vocabOffsets: Int32Array; nMerges: number; maxWords: number; minCount: number };
  stats: Omit<SupertokenStats, 'learned' | 'mergeCounts'>;
}

function prepare(base: RankedVocab, text: string, options: SupertokenOptions): Prepared {
  const vocab = checkVocab(base);
  if (typeof text !== 'string') throw new TypeError(`text: expected a string, received ${typeof text}`);
  const o = checkOptions('options', options, ['tokens', 'maxWords', 'minCount', 'onProgress']);
  if (options === undefined) throw new TypeError('options: expected an object with tokens, received undefined');
  const tokens = checkInteger('options.tokens', o.tokens, 0, 0x7fffffff - vocab.size);
  const maxWords = o.maxWords === undefined ? 4 : checkInteger('options.maxWords', o.maxWords, 0, 1_000_000);
  const minCount = o.minCount === undefined ? 2 : checkInteger('options.minCount', o.minCount, 1);
  const onProgress = o.onProgress as SupertokenOptions['onProgress'];
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new TypeError(`options.onProgress: expected a function, received ${typeof onProgress}`);

  const { merges: baseMerges, byteIds } = mergesFromRanks(vocab);
  // Distinct chunks and their counts (the official trainer counts words the same way).
  const pieces = splitStage2(text);
  const freq = new Map<string, number>();
  for (const p of pieces) freq.set(p, (freq.get(p) ?? 0) + 1);
  const unique = [...freq.keys()];
  const { ids, ends } = encodePieces(baseMerges, vocab.size, byteIds, unique);
  // Keep chunks of two or more tokens (the others hold no pair).
  let baseTokens = 0;
  const keepOffsets: number[] = [0];
  const keepCounts: number[] = [];
  const keepTokens: number[] = [];
  let start = 0;
  unique.forEach((p, i) => {
    const end = ends[i]!;
    const c = freq.get(p)!;
    baseTokens += (end - start) * c;
    if (end - start >= 2) {
      if (c > 0x7fffffff) throw new RangeError(`text: a chunk repeats more than 2^31 - 1 times`);
      for (let t = start; t < end; t++) keepTokens.push(ids[t]!);
      keepOffsets.push(keepTokens.length);
      keepCounts.push(c);
    }
    start = end;
  });
  // Existing token bytes (specials included: a new token must not repeat any vocabulary string).
  const vb: Uint8Array[] = [];
  let vbTotal = 0;
  for (let id = 0; id < vocab.size; id++) {
    const b = vocab.isUsed(id) ? vocab.tokenBytes(id) : new Uint8Array(0);
    vb.push(b);
    vbTotal += b.length;
  }
  const vocabBytes = new Uint8Array(vbTotal);
  const vocabOffsets = new Int32Array(vocab.size + 1);
  let vo = 0;
  vb.forEach((b, i) => {
    vocabBytes.set(b, vo);
    vo += b.length;
    vocabOffsets[i + 1] = vo;
  });
  return {
    vocab, tokens, baseMerges, byteIds, onProgress,
    args: { tokens: Int32Array.from(keepTokens), offsets: Int32Array.from(keepOffsets), counts: Int32Array.from(keepCounts), vocabBytes, vocabOffsets, nMerges: tokens, maxWords, minCount },
    stats: { textBytes: encoder.encode(text).length, chunks: pieces.length, uniqueChunks: unique.length, baseTokens },
  };
}

function finish(p: Prepared, trained: { pairs: Int32Array; counts: Float64Array }): { tokenizer: Supertokenizer; stats: SupertokenStats } {
  if (trained.pairs.length !== 2 * trained.counts.length) throw new TokenpressError('ERR_NATIVE', 'trainSuperMerges: inconsistent result');
  const tokenizer = new Supertokenizer(`${p.vocab.name}+super${trained.counts.length}`, p.vocab, p.baseMerges, p.byteIds, trained.pairs);
  return { tokenizer, stats: { ...p.stats, learned: trained.counts.length, mergeCounts: trained.counts } };
}

/**
 * Learns `tokens` supertokens on `text` over the base vocabulary (ids =
 * ranks, byte-level: tiktoken's r50k/p50k/cl100k/o200k, Llama 3). Returns the
 * tokenizer and training statistics. Synchronous (blocks the event loop for
 * the whole training: minutes on tens of MB; see trainSupertokensAsync);
 * O(text) memory.
 */
export function trainSupertokens(base: RankedVocab, text: string, options: SupertokenOptions): { tokenizer: Supertokenizer; stats: SupertokenStats } {
  const p = prepare(base, text, options);
  const cb = p.onProgress;
  return finish(p, native().trainSuperMerges({ ...p.args, ...(cb ? { onProgress: (done: number) => cb(done, p.tokens) } : {}) }));
}

/**
 * trainSupertokens with the merge training off the main thread (the
 * stage-2 split and the base encoding still run on it first). onProgress's
 * return value is ignored here: the async form cannot be stopped early.
 */
export async function trainSupertokensAsync(base: RankedVocab, text: string, options: SupertokenOptions): Promise<{ tokenizer: Supertokenizer; stats: SupertokenStats }> {
  const p = prepare(base, text, options);
  const cb = p.onProgress;
  return finish(p, await native().trainSuperMergesAsync({ ...p.args, ...(cb ? { onProgress: (done: number) => void cb(done, p.tokens) } : {}) }));
}
