/**
 * Byte-level BPE of ONE pre-token, in TypeScript (the reference the native
 * encoder is tested against, and the fallback).
 *
 * - `mergeByRanks`: tiktoken's `byte_pair_merge` (openai/tiktoken src/lib.rs):
 *   start from single bytes, repeatedly join the adjacent pair whose
 *   concatenated bytes have the lowest rank (rank = token id), leftmost on
 *   ties, until no adjacent concatenation is a token.
 * - `mergeByPairs`: HF tokenizers' BPE model (huggingface/tokenizers
 *   tokenizers/src/models/bpe/word.rs `merge_all`): repeatedly apply the
 *   merge rule (left id, right id) with the lowest index in the merges list,
 *   leftmost on ties; only listed pairs merge.
 *
 * Both are O(n^2) in the pre-token's length n (pre-tokens are short; a long
 * whitespace run is the worst case).
 */

/** A piece's bytes as a latin1 key string -> ids, with `ids` a Map from latin1 keys of ordinary tokens to ids. */
export function mergeByRanks(piece: string, ids: ReadonlyMap<string, number>, out: number[]): void {
  const n = piece.length;
  const whole = ids.get(piece);
  if (whole !== undefined) { out.push(whole); return; }
  // bounds[k] = start of part k (bounds[parts] = n); rank[k] = rank of part k joined with part k + 1.
  const bounds: number[] = new Array(n + 1);
  for (let i = 0; i <= n; i++) bounds[i] = i;
  const rank: number[] = new Array(n);
  const rankAt = (k: number): number => {
    if (k + 2 >= bounds.length) return Infinity;
    const r = ids.get(piece.slice(bounds[k]!, bounds[k + 2]!));
    return r === undefined ? Infinity : r;
  };
  for (let k = 0; k < n - 1; k++) rank[k] = rankAt(k);
  rank[n - 1] = Infinity;
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let k = 0; k < rank.length; k++) if (rank[k]! < best) { best = rank[k]!; at = k; }
    if (at < 0) break;
    bounds.splice(at + 1, 1);
    rank.splice(at + 1, 1);
    rank[at] = rankAt(at);
    if (at > 0) rank[at - 1] = rankAt(at - 1);
  }
  for (let k = 0; k + 1 < bounds.length; k++) {
    const id = ids.get(piece.slice(bounds[k]!, bounds[k + 1]!));
    if (id === undefined) throw new Error(`BPE: byte 0x${piece.charCodeAt(bounds[k]!).toString(16)} is not a token`);
    out.push(id);
  }
}

import type { PairTable } from './pair-table.js';

/**
 * HF merges: `pairs` maps (left, right) to merge index * stride + merged id.
 * The pre-token starts as its single bytes' ids (`byteIds[b]`, -1 when absent).
 * `ignoreMerges` (the model's `ignore_merges`, Llama 3): a pre-token that is
 * itself a token is emitted whole.
 */
export function mergeByPairs(
  piece: string, ids: ReadonlyMap<string, number>, pairs: PairTable, stride: number,
  byteIds: Int32Array, ignoreMerges: boolean, out: number[],
): void {
  if (ignoreMerges) {
    const whole = ids.get(piece);
    if (whole !== undefined) { out.push(whole); return; }
  }
  const n = piece.length;
  const part: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const id = byteIds[piece.charCodeAt(i)]!;
    if (id < 0) throw new Error(`BPE: byte 0x${piece.charCodeAt(i).toString(16)} is not a token`);
    part[i] = id;
  }
  for (;;) {
    let best = Infinity;
    let at = -1;
    for (let k = 0; k + 1 < part.length; k++) {
      const m = pairs.get(part[k]!, part[k + 1]!);
      if (m >= 0 && m < best) { best = m; at = k; }
    }
    if (at < 0) break;
    part[at] = best % stride;
    part.splice(at + 1, 1);
  }
  for (const id of part) out.push(id);
}
