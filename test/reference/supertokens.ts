/**
 * Slow, independent references for the supertoken tools
 * (lib/tokenizer/supertokens.ts, native/text/bpe_merges.h): pair counting by
 * a plain loop, BPE training by recounting every pair after every merge, and
 * BPE encoding by scanning every pair for the lowest rank at every step.
 */

export function pairKey(a: number, b: number): string {
  return `${a},${b}`;
}

/** Weighted adjacent-pair counts inside each chunk. */
export function referenceCountPairs(chunks: readonly number[][], counts: readonly number[]): Map<string, number> {
  const m = new Map<string, number>();
  chunks.forEach((c, i) => {
    for (let t = 0; t + 1 < c.length; t++) m.set(pairKey(c[t]!, c[t + 1]!), (m.get(pairKey(c[t]!, c[t + 1]!)) ?? 0) + counts[i]!);
  });
  return m;
}

function words(bytes: readonly number[]): number {
  let n = 0;
  let inWord = false;
  for (const b of bytes) {
    const space = b === 32 || b === 9 || b === 10 || b === 11 || b === 12 || b === 13;
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

/**
 * BPE training by brute force: recount all pairs, take the most frequent
 * (ties: smallest left id, then right id) that is allowed (bytes not already
 * a token, at most maxWords words when maxWords > 0), merge every occurrence
 * left to right, repeat. Returns the merged pairs [k] = [left, right].
 */
export function referenceTrain(
  chunksIn: readonly number[][], counts: readonly number[], vocab: readonly number[][], nMerges: number, maxWords: number, minCount: number,
): [number, number][] {
  const chunks = chunksIn.map((c) => [...c]);
  const bytes = vocab.map((b) => [...b]);
  const known = new Set(bytes.filter((b) => b.length > 0).map((b) => b.join(',')));
  const refused = new Set<string>();
  const out: [number, number][] = [];
  while (out.length < nMerges) {
    const m = referenceCountPairs(chunks, counts);
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [k, c] of m) {
      if (refused.has(k)) continue;
      const [a, b] = k.split(',').map(Number) as [number, number];
      if (c > bestCount || (c === bestCount && best && (a < best[0] || (a === best[0] && b < best[1])))) [best, bestCount] = [[a, b], c];
    }
    if (!best || bestCount < minCount) break;
    const joined = [...bytes[best[0]]!, ...bytes[best[1]]!];
    if ((maxWords > 0 && words(joined) > maxWords) || known.has(joined.join(','))) {
      refused.add(pairKey(best[0], best[1]));
      continue;
    }
    const id = bytes.length;
    bytes.push(joined);
    known.add(joined.join(','));
    out.push(best);
    for (const c of chunks) {
      const merged: number[] = [];
      for (let i = 0; i < c.length; i++) {
        if (i + 1 < c.length && c[i] === best[0] && c[i + 1] === best[1]) {
          merged.push(id);
          i++;
        } else merged.push(c[i]!);
      }
      c.splice(0, c.length, ...merged);
    }
  }
  return out;
}

/** Rank-ordered BPE by brute force: merges [[left, right, result]] (rank = index); start from byteIds[b]. */
export function referenceBpe(bytes: Uint8Array, merges: readonly (readonly [number, number, number])[], byteIds: ArrayLike<number>): number[] {
  const rank = new Map<string, number>();
  merges.forEach(([a, b], r) => {
    if (!rank.has(pairKey(a, b))) rank.set(pairKey(a, b), r);
  });
  const s = Array.from(bytes, (b) => byteIds[b]!);
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = rank.get(pairKey(s[i]!, s[i + 1]!));
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) return s;
    s.splice(best, 2, merges[bestRank]![2]);
  }
}

/** tiktoken's rank encoder by brute force: merge the adjacent pair whose bytes form the lowest-ranked token. */
export function referenceRankEncode(bytes: Uint8Array, tokens: readonly Uint8Array[]): number[] {
  const rank = new Map<string, number>();
  tokens.forEach((t, id) => {
    const k = Array.from(t).join(',');
    if (t.length > 0 && !rank.has(k)) rank.set(k, id);
  });
  const parts = Array.from(bytes, (b) => [b]);
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = rank.get([...parts[i]!, ...parts[i + 1]!].join(','));
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) return parts.map((p) => rank.get(p.join(','))!);
    parts.splice(best, 2, [...parts[best]!, ...parts[best + 1]!]);
  }
}
