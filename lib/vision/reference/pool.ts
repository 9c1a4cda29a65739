// Straightforward float64 JS LLaVolta pooling (one frame), the reference of
// lib/vision/pool.ts: torch avg_pool1d(kernel = stride = s), floor mode,
// positions pooled the same way and truncated (Beckschen/LLaVolta
// llava_llama.py visual_avg_pool1d).
export function refPoolFrame(x: ArrayLike<number>, n: number, d: number, s: number, positions?: ArrayLike<number>, sizes?: ArrayLike<number>) {
  const m = Math.floor(n / s);
  const tokens = new Float64Array(m * d), outSizes = new Float64Array(m), assignment = new Int32Array(n).fill(-1);
  const pos = positions ? new Int32Array(m) : undefined;
  for (let i = 0; i < m; i++) {
    let p = 0;
    for (let j = i * s; j < (i + 1) * s; j++) {
      for (let k = 0; k < d; k++) tokens[i * d + k]! += x[j * d + k]! / s;
      outSizes[i]! += sizes ? sizes[j]! : 1;
      if (positions) p += positions[j]!;
      assignment[j] = i;
    }
    if (pos) pos[i] = Math.trunc(p / s);
  }
  return { tokens, sizes: outSizes, assignment, positions: pos, m };
}
