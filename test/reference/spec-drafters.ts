/**
 * Slow, independent references for the drafters (test/unit/spec-drafters.test.ts).
 * They work on rank paths and sorted lists, not on the native walk's
 * parent/rank arrays or its insertion top-k.
 */

/**
 * Token Recycling's draft from the template's rank paths: a path is drafted
 * when every step reads a non-empty slot (-1 = empty) that does not repeat a
 * lower slot of its row; drafted paths keep template order, cut at maxNodes
 * (root included); a node's parent is the output index of its path prefix.
 */
export function referenceTrDraft(
  table: Int32Array, topK: number, paths: readonly (readonly number[])[], root: number, maxNodes: number,
): { tokens: number[]; parents: number[] } {
  const tokens = [root];
  const parents = [-1];
  const at = new Map<string, number>([['', 0]]);
  for (const path of paths) {
    if (tokens.length >= maxNodes) break;
    let tok = root;
    let ok = true;
    for (const r of path) {
      const row = Array.from(table.subarray(tok * topK, tok * topK + topK));
      const next = row[r]!;
      if (next === -1 || row.slice(0, r).includes(next)) {
        ok = false;
        break;
      }
      tok = next;
    }
    const parent = at.get(path.slice(0, -1).join(','));
    if (!ok || parent === undefined) continue;
    at.set(path.join(','), tokens.length);
    tokens.push(tok);
    parents.push(parent);
  }
  return { tokens, parents };
}

/**
 * Top-k ids of one logits row in float64 by k argmax passes: NaN and
 * -Infinity never chosen, larger first, ties to the lower id, padded with -1.
 */
export function referenceTopK(row: ArrayLike<number>, k: number): number[] {
  const out: number[] = [];
  let prevV = Infinity;
  let prevI = -1;
  for (let pass = 0; pass < k; pass++) {
    let best = -1;
    let bestV = -Infinity;
    for (let i = 0; i < row.length; i++) {
      const v = row[i]!;
      if (Number.isNaN(v) || v === -Infinity) continue;
      // Only entries after the previous pick in the order (value desc, id asc).
      if (v > prevV || (v === prevV && i <= prevI)) continue;
      if (best < 0 || v > bestV) [best, bestV] = [i, v]; // strict: an equal later id never wins
    }
    if (best >= 0) [prevV, prevI] = [bestV, best];
    else prevV = -Infinity; // nothing left: pad
    out.push(best);
  }
  return out;
}

/** Prompt lookup by brute force over every (n, start) pair: the transformers rule, earliest start. */
export function referencePromptLookup(ctx: readonly number[], maxNgram: number, maxTokens: number): number[] {
  const L = ctx.length;
  for (let n = Math.min(maxNgram, L - 1); n >= 1; n--) {
    const tail = ctx.slice(L - n).join(',');
    for (let s = 0; s + n < L; s++) {
      if (ctx.slice(s, s + n).join(',') === tail) return ctx.slice(s + n, Math.min(s + n + maxTokens, L));
    }
  }
  return [];
}
