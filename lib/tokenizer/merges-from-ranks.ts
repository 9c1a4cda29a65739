/**
 * The merge list of a byte-level BPE vocabulary given by ranks (tiktoken:
 * id = rank, lower merges first), as Hugging Face's conversion of tiktoken
 * files does (transformers convert_slow_tokenizer.py, TikTokenConverter
 * extract_vocab_merges_from_model, after tiktoken's educational
 * `bpe(mergeable_ranks, token, max_rank)`): token t's merge is the last pair
 * left when its bytes are encoded with the tokens of rank below t's only.
 * Applying the merges in list order then reproduces the rank encoder.
 *
 * Shapes: merges int32 [m, 3] = (left, right, result), in result-rank order;
 * byteIds int32 [256] = the id of each single byte.
 */
import { TokenpressError } from '../errors.js';

/** What the derivation reads of a vocabulary (TokenVocab satisfies it). */
export interface RankedVocab {
  readonly name: string;
  readonly size: number;
  tokenBytes(id: number): Uint8Array;
  isUsed(id: number): boolean;
  isSpecial(id: number): boolean;
}

export interface RankMerges {
  merges: Int32Array;
  byteIds: Int32Array;
  /** Tokens of two or more bytes that no pair of lower-ranked tokens builds (left out of the list). */
  unreachable: number[];
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** Derives the merge list; throws ERR_UNSUPPORTED when a single byte has no token (not byte-level). */
export function mergesFromRanks(vocab: RankedVocab): RankMerges {
  const rank = new Map<string, number>();
  for (let id = 0; id < vocab.size; id++) {
    if (!vocab.isUsed(id) || vocab.isSpecial(id)) continue;
    const key = latin1(vocab.tokenBytes(id));
    if (!rank.has(key)) rank.set(key, id);
  }
  const byteIds = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    const id = rank.get(String.fromCharCode(b));
    if (id === undefined) throw new TokenpressError('ERR_UNSUPPORTED', `vocab: expected a byte-level vocabulary with a token for every byte, "${vocab.name}" has none for byte ${b}`);
    byteIds[b] = id;
  }
  const out: number[] = [];
  const unreachable: number[] = [];
  for (let id = 0; id < vocab.size; id++) {
    if (!vocab.isUsed(id) || vocab.isSpecial(id)) continue;
    const bytes = vocab.tokenBytes(id);
    if (bytes.length < 2 || rank.get(latin1(bytes)) !== id) continue;
    // Rank-ordered BPE of the token's bytes with ranks < id: parts are latin1 strings.
    const parts = Array.from(bytes, (b) => String.fromCharCode(b));
    for (;;) {
      let best = -1;
      let bestRank = id;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = rank.get(parts[i]! + parts[i + 1]!);
        if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
      }
      if (best < 0) break;
      parts.splice(best, 2, parts[best]! + parts[best + 1]!);
    }
    if (parts.length !== 2) {
      unreachable.push(id);
      continue;
    }
    out.push(rank.get(parts[0]!)!, rank.get(parts[1]!)!, id);
  }
  return { merges: Int32Array.from(out), byteIds, unreachable };
}
