// JS reference of DivPrune (float64, straightforward): the test oracle and
// the speed baseline of native/reduce/divprune.h. Official rule: vbdi/divprune
// LLaVA/llava/model/llava_arch.py (`DivPrune`). Ties: lower index.
/** Kept indices (ascending) of one frame x [n, dim], keeping `keep`. */
export function divPruneReference(x: Float32Array, n: number, dim: number, keep: number): Int32Array {
  if (keep <= 0) return new Int32Array(0);
  const norm = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let d = 0; d < dim; d++) ss += x[i * dim + d]! * x[i * dim + d]!;
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let d = 0; d < dim; d++) norm[i * dim + d] = x[i * dim + d]! * inv;
  }
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += norm[i * dim + d]! * norm[j * dim + d]!;
      dist[i * n + j] = 1 - s;
    }
  }
  // A token with a non-finite value ranks below every candidate (picked
  // last, lowest index first); distances involving it are ignored.
  const bad = new Uint8Array(n);
  for (let i = 0; i < n; i++) for (let d = 0; d < dim; d++) if (!Number.isFinite(x[i * dim + d]!)) bad[i] = 1;
  const picks: number[] = [];
  const selected = new Uint8Array(n);
  let first = -1;
  let firstScore = -Infinity;
  for (let i = 0; i < n; i++) {
    if (bad[i]) continue;
    let nearest = Infinity;
    for (let j = 0; j < n; j++) if (j !== i && !bad[j]) nearest = Math.min(nearest, dist[i * n + j]!);
    if (first < 0 || nearest > firstScore) {
      firstScore = nearest;
      first = i;
    }
  }
  if (first < 0) first = 0;
  picks.push(first);
  selected[first] = 1;
  const minDist = new Float64Array(n).fill(Infinity);
  const update = (p: number): void => {
    if (bad[p]) return;
    for (let j = 0; j < n; j++) if (!bad[j]) minDist[j] = Math.min(minDist[j]!, dist[p * n + j]!);
  };
  update(first);
  const score = (j: number): number => (bad[j] ? -Infinity : minDist[j]!);
  while (picks.length < Math.min(keep, n)) {
    let pick = -1;
    for (let j = 0; j < n; j++) if (!selected[j] && (pick < 0 || score(j) > score(pick))) pick = j;
    picks.push(pick);
    selected[pick] = 1;
    update(pick);
  }
  return Int32Array.from(picks.sort((a, b) => a - b));
}
