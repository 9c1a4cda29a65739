// Brute-force float64 reference of the 1-D Local Outlier Factor
// (native/reduce/lof.h): sklearn's LocalOutlierFactor rule with k =
// min(nNeighbors, n - 1) neighbours chosen by (distance, index).

/** LOF of every value; outliers = LOF > threshold. */
export function lofReference(values: ArrayLike<number>, nNeighbors = 10, threshold = 1.5): { lof: Float64Array; outliers: number } {
  const n = values.length;
  const lof = new Float64Array(n).fill(1);
  if (n < 2) return { lof, outliers: 0 };
  const k = Math.min(nNeighbors, n - 1);
  const nb: number[][] = [];
  const kd = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const others: number[] = [];
    for (let o = 0; o < n; o++) if (o !== p) others.push(o);
    others.sort((a, b) => Math.abs(values[p]! - values[a]!) - Math.abs(values[p]! - values[b]!) || a - b);
    nb.push(others.slice(0, k));
    kd[p] = Math.abs(values[p]! - values[nb[p]![k - 1]!]!);
  }
  const lrd = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    let s = 0;
    for (const o of nb[p]!) s += Math.max(kd[o]!, Math.abs(values[p]! - values[o]!));
    lrd[p] = 1 / (s / k + 1e-10);
  }
  let outliers = 0;
  for (let p = 0; p < n; p++) {
    let s = 0;
    for (const o of nb[p]!) s += lrd[o]! / lrd[p]!;
    lof[p] = s / k;
    if (lof[p]! > threshold) outliers++;
  }
  return { lof, outliers };
}
