// Straightforward float64 JS Token Transforming (one frame), the reference
// of lib/vision/transform.ts (our reading of the paper: per-source softmax
// over its top-k targets by cosine / tau; columns sum to 1).
export function refTransformW(x: ArrayLike<number>, n: number, d: number, targets: ArrayLike<number>, topK: number, tau: number): Float64Array {
  const m = targets.length;
  const w = new Float64Array(m * n);
  const cos = (i: number, j: number): number => {
    let dot = 0, a = 0, b = 0;
    for (let k = 0; k < d; k++) {
      dot += x[i * d + k]! * x[j * d + k]!;
      a += x[i * d + k]! ** 2;
      b += x[j * d + k]! ** 2;
    }
    return a > 0 && b > 0 ? dot / Math.sqrt(a * b) : 0;
  };
  for (let j = 0; j < n; j++) {
    const sims = Array.from({ length: m }, (_, i) => ({ i, s: cos(targets[i]!, j) }));
    sims.sort((p, q) => q.s - p.s || p.i - q.i);
    const top = sims.slice(0, Math.min(topK, m));
    if (top.length === 0) continue;
    const e = top.map((p) => Math.exp((p.s - top[0]!.s) / tau));
    const z = e.reduce((a, b) => a + b, 0);
    top.forEach((p, q) => { w[p.i * n + j] = e[q]! / z; });
  }
  return w;
}

export function refTransformApply(w: ArrayLike<number>, m: number, x: ArrayLike<number>, n: number, d: number, sizes?: ArrayLike<number>) {
  const tokens = new Float64Array(m * d), outSizes = new Float64Array(m), assignment = new Int32Array(n).fill(-1);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      const c = w[i * n + j]! * (sizes ? sizes[j]! : 1);
      if (c === 0) continue;
      outSizes[i]! += c;
      for (let k = 0; k < d; k++) tokens[i * d + k]! += c * x[j * d + k]!;
    }
    if (outSizes[i]! > 0) for (let k = 0; k < d; k++) tokens[i * d + k]! /= outSizes[i]!;
  }
  for (let j = 0; j < n; j++) {
    let best = 0;
    for (let i = 0; i < m; i++) if (w[i * n + j]! > best) { best = w[i * n + j]!; assignment[j] = i; }
  }
  return { tokens, sizes: outSizes, assignment };
}
