// Straightforward reference of CoreMatching (../corematching.ts,
// native/reduce/corematch.h): full co-activation row, elbow of the sorted
// scores. Official: wangqinsi1/2025-ICML-CoreMatching,
// transformers/models/llama/modeling_llama.py (LlamaMLP.forward).

/** act [rows, inter] (or gate with up) -> scores [len], threshold, kept indices (score > threshold). */
export function coreMatchingReference(
  act: Float32Array, up: Float32Array | undefined, rows: number, inter: number, query: number, start: number, len: number,
): { scores: Float64Array; threshold: number; kept: number[] } {
  const on = (r: number, i: number): boolean => {
    const g = act[r * inter + i]!;
    return up ? (g / (1 + Math.exp(-g))) * up[r * inter + i]! > 0 : g > 0;
  };
  const scores = new Float64Array(len);
  for (let j = 0; j < len; j++) {
    let c = 0;
    for (let i = 0; i < inter; i++) if (on(query, i) && on(start + j, i)) c++;
    scores[j] = c;
  }
  if (len === 0) return { scores, threshold: Infinity, kept: [] };
  const s = Array.from(scores).sort((a, b) => b - a);
  const lx = len - 1;
  const ly = s[len - 1]! - s[0]!;
  const norm = Math.hypot(lx, ly);
  let threshold = s[0]!;
  if (norm > 0) {
    let best = -1;
    let at = 0;
    for (let i = 0; i < len; i++) {
      const px = i;
      const py = s[i]! - s[0]!;
      const ux = lx / norm;
      const uy = ly / norm;
      const proj = px * ux + py * uy;
      const ex = px - proj * ux;
      const ey = py - proj * uy;
      const dist = Math.sqrt(ex * ex + ey * ey);
      if (dist > best) { best = dist; at = i; }
    }
    threshold = s[at]!;
  }
  const kept: number[] = [];
  for (let j = 0; j < len; j++) if (scores[j]! > threshold) kept.push(j);
  return { scores, threshold, kept };
}
