/**
 * Slow float64 references for lib/kv/eval/ranking.ts, written independently
 * of it: ranks by counting, Kendall's tau-b by visiting every pair.
 */

/** Rank of x[i] (1-based, ties averaged) = 1 + #{x_j < x_i} + #{j != i: x_j == x_i} / 2. */
export function ranksRef(x: readonly number[]): number[] {
  return x.map((xi, i) => {
    let less = 0;
    let equal = 0;
    x.forEach((xj, j) => { if (xj < xi) less++; else if (xj === xi && j !== i) equal++; });
    return 1 + less + equal / 2;
  });
}

/** Pearson correlation of the rank vectors; NaN for n < 2 or a constant input. */
export function spearmanRef(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  if (n < 2) return NaN;
  const rx = ranksRef(x);
  const ry = ranksRef(y);
  const mx = rx.reduce((a, b) => a + b, 0) / n;
  const my = ry.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (rx[i]! - mx) * (ry[i]! - my);
    sxx += (rx[i]! - mx) ** 2;
    syy += (ry[i]! - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

/** tau-b = (C - D) / sqrt((C + D + X) (C + D + Y)), X (Y): pairs tied in x (y) only, over all i < j. */
export function kendallTauBRef(x: readonly number[], y: readonly number[]): number {
  let c = 0, d = 0, tx = 0, ty = 0;
  for (let i = 0; i < x.length; i++) {
    for (let j = i + 1; j < x.length; j++) {
      const s = Math.sign(x[i]! - x[j]!) * Math.sign(y[i]! - y[j]!);
      if (s > 0) c++;
      else if (s < 0) d++;
      else if (x[i] === x[j] && y[i] !== y[j]) tx++;
      else if (y[i] === y[j] && x[i] !== x[j]) ty++;
    }
  }
  const denom = Math.sqrt((c + d + tx) * (c + d + ty));
  return denom === 0 ? NaN : (c - d) / denom;
}
